"""One ledger's side of IBC: its Merkle store, the keepers over it, and the members who sign its headers.

Every message runs atomically in the block being built (`execute`), and `commit` closes the block: the
store's new version is the height the counterparty's light client learns through `header`, and `prove`
shows any key at any retained height.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from plurigrid.ibc.channel import ChannelKeeper
from plurigrid.ibc.client import ConsensusState, Header
from plurigrid.ibc.connection import ConnectionKeeper
from plurigrid.ibc.keeper import ClientKeeper
from plurigrid.ibc.packet import PacketKeeper
from plurigrid.ibc.provable import ProvableMapping
from plurigrid.ibc.transfer import Transfer
from plurigrid.state.ics23 import encode_commitment_proof
from plurigrid.state.identity import Identity
from plurigrid.state.store import Store

T = TypeVar("T")
BLOCK_TIME_KEY = b"blocktime"


class LedgerEnd:
    def __init__(self, chain_id: str, members: Iterable[Identity], store: Store, block_time_ns: Callable[[int], int]) -> None:
        self.chain_id = chain_id
        self.members = list(members)
        self.store = store
        self._time_of = block_time_ns
        self.view = ProvableMapping(store.begin())
        self.clients = ClientKeeper(self.view)
        self.connections = ConnectionKeeper(self.clients)
        self.channels = ChannelKeeper(self.connections)
        self.packets = PacketKeeper(self.channels, log=self.view.side)
        self.transfer = Transfer(self.packets)
        self.times: dict[int, int] = {}
        if self.height == 0:
            self.commit()

    @property
    def height(self) -> int:
        return self.store.version

    @property
    def block_height(self) -> int:
        """The height of the block being built (what a message sees as this ledger's own height)."""
        return self.height + 1

    @property
    def block_time_ns(self) -> int:
        return self._time_of(self.block_height)

    @property
    def now_ns(self) -> int:
        return self.block_time_ns

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(m.did for m in self.members)

    def execute(self, message: Callable[[], T]) -> T:
        """Runs one message in the block being built: all its writes, or (on an exception) none."""
        with self.view.atomic():
            return message()

    def commit(self) -> int:
        """Closes the block (its time is written, so every height has its own root); returns its height."""
        height = self.block_height
        self.times[height] = self._time_of(height)
        self.view.tx.set(BLOCK_TIME_KEY, str(self.times[height]).encode())
        self.store.commit(self.view.tx)
        self.view.tx = self.store.begin()
        return self.height

    def time_at(self, height: int) -> int:
        return self.times[height] if height in self.times else int(self.store.snapshot(height).get(BLOCK_TIME_KEY) or b"0")

    def consensus_state(self) -> ConsensusState:
        return ConsensusState(self.time_at(self.height), self.store.root(self.height).hex(), self.signers)

    def header(self, trusted_height: int, signers: Iterable[Identity] | None = None) -> Header:
        """This ledger's latest height as a header, signed by its members (or by `signers`)."""
        return Header(self.chain_id, self.height, self.time_at(self.height), self.store.root(self.height).hex(), self.signers,
                      trusted_height).signed_by(self.members if signers is None else signers)

    def prove(self, key: bytes, height: int | None = None) -> bytes:
        return encode_commitment_proof(self.store.snapshot(self.height if height is None else height).prove(key))

    def read(self, key: bytes, height: int | None = None) -> bytes | None:
        return self.store.snapshot(self.height if height is None else height).get(key)

    def read_logged(self, key: bytes, height: int | None = None) -> bytes | None:
        return self.store.snapshot(self.height if height is None else height).side_get(key)

    def logged(self, prefix: bytes, height: int | None = None) -> list[tuple[bytes, bytes]]:
        """The side log (packets sent, acknowledgements written) under `prefix`, as committed at `height`."""
        return list(self.store.snapshot(self.height if height is None else height).side_items(prefix))
