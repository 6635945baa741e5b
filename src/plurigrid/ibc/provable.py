"""The IBC keepers' view of a ledger's Merkle store: a mutable mapping over one open transaction.

Whatever a keeper writes through it (client and consensus states, connection ends) is committed with the
transaction, so the counterparty can be shown an ICS-23 proof of it at the committed version.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

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
