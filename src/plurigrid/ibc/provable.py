"""The IBC keepers' view of a ledger's Merkle store: a mutable mapping over the open transaction.

Whatever a keeper writes through it (client and consensus states, connection and channel ends, packet
commitments, receipts, balances) is committed with the transaction, so the counterparty can be shown an
ICS-23 proof of it at the committed version. `side` is the transaction's side space (versioned, outside the
root): the log of packets sent and acknowledgements written that a relayer reads, as ibc-go's events.
`atomic()` makes one message all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from plurigrid.state.store import Transaction


class ProvableMapping(MutableMapping[bytes, bytes]):
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def __getitem__(self, key: bytes) -> bytes:
        value = self.tx.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.tx.set(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self.tx.get(key) is None:
            raise KeyError(key)
        self.tx.delete(key)

    def __iter__(self) -> Iterator[bytes]:
        return (key for key, _ in self.tx.items())

    def __len__(self) -> int:
        return sum(1 for _ in self.tx.items())

    def prefixed(self, prefix: bytes) -> Iterator[bytes]:
        """The keys under `prefix`, in order, without walking the rest of the store."""
        return (key for key, _ in self.tx.items(prefix))

    @property
    def side(self) -> SideMapping:
        return SideMapping(self)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Everything written inside lands together, or (on an exception) not at all."""
        outer = self.tx
        try:
            with outer.nested() as inner:
                self.tx = inner
                yield
        finally:
            self.tx = outer


class SideMapping(MutableMapping[bytes, bytes]):
    """The side space of whichever transaction `owner` has open."""

    def __init__(self, owner: ProvableMapping) -> None:
        self.owner = owner

    def __getitem__(self, key: bytes) -> bytes:
        value = self.owner.tx.side_get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.owner.tx.side_set(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self.owner.tx.side_get(key) is None:
            raise KeyError(key)
        self.owner.tx.side_delete(key)

    def __iter__(self) -> Iterator[bytes]:
        return (key for key, _ in self.owner.tx.side_items())

    def __len__(self) -> int:
        return sum(1 for _ in self.owner.tx.side_items())
