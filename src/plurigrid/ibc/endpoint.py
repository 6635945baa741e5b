"""One ledger's side of IBC: its Merkle store, the keepers over it, and the members who sign its headers.

Every message runs atomically in the block being built (`execute`; `submit` runs a batch of messages as
data and closes the block), and `commit` closes the block: the store's new version is the height the
counterparty's light client learns through `header`, and `prove` shows any key at any retained height.
A lattice's replica of it (`plurigrid.ibc.lattice`) holds only its own member's key, so its headers carry
one signature; the relayer gathers the others'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar

from plurigrid.ibc.channel import ChannelKeeper, sequence_key
from plurigrid.ibc.client import ConsensusState, Header
from plurigrid.ibc.connection import ORDERED, ConnectionKeeper
from plurigrid.ibc.errors import IbcError
from plurigrid.ibc.keeper import ClientKeeper
from plurigrid.ibc.messages import Authority, execute
from plurigrid.ibc.packet import Packet, PacketKeeper, ack_log_key, commitment_key, receipt_key, sent_log_key
from plurigrid.ibc.provable import ProvableMapping
from plurigrid.ibc.transfer import Transfer
from plurigrid.ibc.wasm_app import PORT_PREFIX, WasmApplication, code_key
from plurigrid.state.ics23 import encode_commitment_proof
from plurigrid.state.identity import Identity
from plurigrid.state.store import Store
from plurigrid.strategies.wasm.host import compile_module

T = TypeVar("T")
BLOCK_TIME_KEY = b"blocktime"


class LedgerEnd:
    def __init__(self, chain_id: str, members: Iterable[Identity], store: Store, block_time_ns: Callable[[int], int],
                 signers: Iterable[str] | None = None) -> None:
        """`members` are the keys this process holds; `signers` the lattice's whole signer set (default: theirs)."""
        self.chain_id = chain_id
        self.members = list(members)
        self._signers = tuple(signers) if signers is not None else tuple(m.did for m in self.members)
        self.store = store
        self._time_of = block_time_ns
        self.view = ProvableMapping(store.begin())
        self.clients = ClientKeeper(self.view)
        self.connections = ConnectionKeeper(self.clients)
        self.channels = ChannelKeeper(self.connections)
        self.packets = PacketKeeper(self.channels, log=self.view.side)
        self.transfer = Transfer(self.packets)
        self.times: dict[int, int] = {}
        self.events: list[dict] = []  # what applications emitted during the message being executed
        self._modules: dict[str, tuple[bytes, WasmApplication]] = {}  # port → (code hash, its module)
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
        return self._signers

    def application(self, port: str) -> Transfer | WasmApplication:
        """The application bound to `port`: the transfer application, or the module bound to `wasm.{name}`."""
        if port == self.transfer.port:
            return self.transfer
        code = self.view.get(code_key(port[len(PORT_PREFIX):])) if port.startswith(PORT_PREFIX) else None
        if code is None:
            raise IbcError("ErrInvalidPacket", f"no application is bound to port {port!r}")
        digest = hashlib.sha256(code).digest()
        cached = self._modules.get(port)
        if cached is None or cached[0] != digest:
            cached = (digest, WasmApplication(self, port[len(PORT_PREFIX):], compile_module(code, port)))
            self._modules[port] = cached
        return cached[1]

    def execute(self, message: Callable[[], T]) -> T:
        """Runs one message in the block being built: all its writes, or (on an exception) none."""
        with self.view.atomic():
            return message()

    def submit(self, messages: list, may_act_for: Authority = lambda account: True) -> list[dict]:
        """Runs each message (as data, `plurigrid.ibc.messages`) in one new block; their results, in order."""
        results = [execute(self, message, may_act_for) for message in messages]
        self.commit()
        return results

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

    def header(self, trusted_height: int, signers: Iterable[Identity] | None = None, height: int | None = None) -> Header:
        """This ledger's latest height (or `height`) as a header, signed by the keys held here (or by `signers`)."""
        height = self.height if height is None else height
        return Header(self.chain_id, height, self.time_at(height), self.store.root(height).hex(), self.signers,
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

    def items(self, prefix: bytes, height: int | None = None) -> list[tuple[bytes, bytes]]:
        """The provable keys under `prefix` and their values at `height`."""
        return list(self.store.snapshot(self.height if height is None else height).items(prefix))

    # ---------------------------------------------------------------- ibc-go's packet queries (what relayers ask)
    def packet_commitments(self, port: str, channel: str, height: int | None = None) -> list[Packet]:
        """The packets sent on the channel that are still committed (neither acknowledged nor timed out)."""
        height = self.height if height is None else height
        snapshot = self.store.snapshot(height)
        packets = []
        for key, _ in snapshot.items(commitment_key(port, channel, 0)[:-1]):
            raw = snapshot.side_get(sent_log_key(port, channel, int(key.rsplit(b"/", 1)[1])))
            if raw is None:
                raise IbcError("ErrInvalidPacket", f"{key.decode()} is committed but the packet is not in the sent log")
            packets.append(Packet.from_bytes(raw))
        return sorted(packets, key=lambda p: p.sequence)

    def unreceived_packets(self, port: str, channel: str, sequences: list[int], height: int | None = None) -> list[int]:
        """Which of `sequences` (sent by the counterparty to this channel end) this side has not received."""
        snapshot = self.store.snapshot(self.height if height is None else height)
        if self.channels.channel(port, channel).ordering == ORDERED:
            next_recv = int(snapshot.get(sequence_key("nextSequenceRecv", port, channel)) or b"1")
            return [s for s in sequences if s >= next_recv]
        return [s for s in sequences if snapshot.get(receipt_key(port, channel, s)) is None]

    def packet_acknowledgements(self, port: str, channel: str, sequences: list[int],
                                height: int | None = None) -> dict[int, bytes]:
        """The acknowledgements this side wrote for `sequences` (received from the counterparty)."""
        snapshot = self.store.snapshot(self.height if height is None else height)
        acks = {s: snapshot.side_get(ack_log_key(port, channel, s)) for s in sequences}
        return {s: ack for s, ack in acks.items() if ack is not None}
