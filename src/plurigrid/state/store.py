"""Versioned, Merkle-committed key/value store on SQLite: snapshots, nested transactions, ICS-23 proofs.

Why: every settlement must be provable to a third party who holds only a state root (a participant
proving what it was paid, later a relayer proving a packet), and a node killed mid-commit must come
back exactly where it was. Penumbra's cnidarium is the model; this is its shape in stdlib Python:

- each `commit` is a version (height) with a root, written in one SQLite transaction, so a crash at
  any point leaves the last committed version and its root intact (WAL, synchronous=FULL);
- a `Snapshot` reads one retained version; it never changes, because versions are append-only
  (values are rows keyed by (key, version), tree nodes by (version, path)) until pruned;
- a `Transaction` buffers writes over a snapshot; `begin()` nests one inside another, which sees
  its parent's writes, can roll back alone, and `apply()`s into its parent;
- the verifiable space is committed by a Jellyfish Merkle tree (`jmt`, ICS-23 JMT spec); a side
  space of the same store holds indexes that need no proofs, versioned with the same snapshots.
"""

from __future__ import annotations

import gc
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from plurigrid.state import jmt
from plurigrid.state.ics23 import CommitmentProof, ExistenceProof

_VERIFIABLE, _SIDE = 0, 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (version INTEGER PRIMARY KEY, root BLOB NOT NULL,
                                     root_version INTEGER, root_key BLOB);
CREATE TABLE IF NOT EXISTS nodes (version INTEGER NOT NULL, path TEXT NOT NULL, data BLOB NOT NULL,
                                  PRIMARY KEY (version, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (space INTEGER NOT NULL, key BLOB NOT NULL, version INTEGER NOT NULL, value BLOB,
                               PRIMARY KEY (space, key, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stale_nodes (since INTEGER NOT NULL, path TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS stale_nodes_since ON stale_nodes (since);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
"""
_CACHE_NODES = 400_000


class StoreError(ValueError):
    """A misuse of the store or a request it cannot answer (unknown version, empty value, …)."""


@dataclass(frozen=True)
class Commit:
    """A committed version and the root hash that commits to its verifiable space."""

    version: int
    root: bytes


def _prefix_end(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key starting with `prefix` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes((trimmed[-1] + 1,)) if trimmed else None


class Store:
    """A versioned store in one SQLite file (`":memory:"` for a throwaway one)."""

    def __init__(self, path: str | Path, durable: bool = True) -> None:
        """`durable=False` skips the fsync of each commit (a crash may lose the last ones, never corrupt the store):
        for stores that are rebuilt from elsewhere after a restart."""
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: not a Plurigrid store ({err})") from None
        self._cache: dict[tuple[int, str], jmt.Internal] = {}
        row = self._db.execute("SELECT version, root, root_version, root_key FROM versions "
                               "ORDER BY version DESC LIMIT 1").fetchone()
        self.version = 0 if row is None else row[0]
        self._root = None if row is None else self._ref(*row[1:])
        oldest = self._db.execute("SELECT value FROM meta WHERE name = 'oldest'").fetchone()
        self.oldest = 0 if oldest is None else oldest[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ versions

    @staticmethod
    def _ref(root: bytes, root_version: int | None, root_key: bytes | None) -> jmt.Child | None:
        if root_version is None:
            return None
        if root_key is None:
            return jmt.internal_child(root, root_version)
        return jmt.leaf_child(root, hashlib.sha256(root_key).digest(), root_key)

    def _root_at(self, version: int) -> jmt.Child | None:
        if version == self.version:
            return self._root
        self._check_retained(version)
        row = self._db.execute("SELECT root, root_version, root_key FROM versions WHERE version = ?", (version,)).fetchone()
        return None if row is None else self._ref(*row)

    def _check_retained(self, version: int) -> None:
        if not self.oldest <= version <= self.version:
            raise StoreError(f"version {version} is not retained (this store holds {self.oldest}..{self.version})")

    def root(self, version: int | None = None) -> bytes:
        """Root hash of `version` (default: the latest)."""
        return jmt.root_hash(self._root_at(self.version if version is None else version))

    def snapshot(self, version: int | None = None) -> Snapshot:
        """An immutable view of `version` (default: the latest)."""
        version = self.version if version is None else version
        self._check_retained(version)
        return Snapshot(self, version, self._root_at(version))

    def begin(self) -> Transaction:
        """A transaction over the latest version; `commit` it to make the next version."""
        return Transaction(self.snapshot())

    # ------------------------------------------------------------ reads

    def _node(self, version: int, path: str) -> jmt.Internal:
        node = self._cache.get((version, path))
        if node is None:
            row = self._db.execute("SELECT data FROM nodes WHERE version = ? AND path = ?", (version, path)).fetchone()
            if row is None:
                raise StoreError(f"tree node {path or 'root'}@{version} is missing (pruned or corrupt store)")
            node = jmt.decode_node(row[0])
            self._remember(version, path, node)
        return node

    def _remember(self, version: int, path: str, node: jmt.Internal) -> None:
        if len(self._cache) >= _CACHE_NODES:
            self._cache.clear()
        self._cache[(version, path)] = node

    def _get(self, space: int, key: bytes, version: int) -> bytes | None:
        row = self._db.execute("SELECT value FROM kv WHERE space = ? AND key = ? AND version <= ? "
                               "ORDER BY version DESC LIMIT 1", (space, key, version)).fetchone()
        return None if row is None else row[0]

    def _items(self, space: int, prefix: bytes, version: int) -> Iterator[tuple[bytes, bytes]]:
        end = _prefix_end(prefix)
        sql = ("SELECT key, value, MAX(version) FROM kv WHERE space = ? AND key >= ? AND version <= ?"
               + ("" if end is None else " AND key < ?") + " GROUP BY key ORDER BY key")
        args = (space, prefix, version) + (() if end is None else (end,))
        for key, value, _ in self._db.execute(sql, args).fetchall():
            if value is not None:
                yield key, value

    # ------------------------------------------------------------ writes

    def commit(self, tx: Transaction, before_commit: Callable[[Commit], None] | None = None) -> Commit:
        """Writes a top-level transaction as the next version, atomically; returns its version and root.

        `before_commit(commit)` runs once the new root is known and written, just before the SQLite
        commit that makes it count: the place to record the root elsewhere first (if it raises, or
        the process dies, the version is not committed).
        """
        if tx.parent is not None:
            raise StoreError("commit the outermost transaction; nested ones apply() into their parent")
        if tx.closed:
            raise StoreError("this transaction was already committed or rolled back")
        if tx.snapshot.version != self.version:
            raise StoreError(f"transaction began at version {tx.snapshot.version}, the store is now at {self.version}")
        version = self.version + 1
        was_enabled = gc.isenabled()
        gc.disable()  # the batch allocates many small objects that never form cycles
        try:
            update = jmt.apply_batch(self._node, self._root, version, tx.writes)
            root = update.root
            self._db.execute("BEGIN IMMEDIATE")
            try:
                latest = self._db.execute("SELECT MAX(version) FROM versions").fetchone()[0] or 0
                if latest != self.version:
                    raise StoreError(f"another writer committed version {latest} to {self.path}; reopen the store")
                self._db.executemany("INSERT INTO nodes VALUES (?, ?, ?)",
                                     [(v, p, n.encode()) for (v, p), n in update.written.items()])
                self._db.executemany("INSERT INTO stale_nodes VALUES (?, ?, ?)",
                                     [(version, p, v) for v, p in update.stale])
                self._db.executemany("INSERT INTO kv VALUES (?, ?, ?, ?)",
                                     [(_VERIFIABLE, k, version, v) for k, v in tx.writes.items()]
                                     + [(_SIDE, k, version, v) for k, v in tx.side_writes.items()])
                self._db.execute("INSERT INTO versions VALUES (?, ?, ?, ?)",
                                 (version, jmt.root_hash(root), None if root is None else root.version,
                                  None if root is None else root.key))
                if before_commit is not None:
                    before_commit(Commit(version, jmt.root_hash(root)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for superseded in update.stale:  # old versions' nodes are rarely read again
                self._cache.pop(superseded, None)
            if len(self._cache) + len(update.written) > _CACHE_NODES:
                self._cache.clear()
            self._cache.update(update.written)
        finally:
            if was_enabled:
                gc.enable()
        self.version, self._root = version, root
        tx.closed = True
        return Commit(version, jmt.root_hash(root))

    def prune(self, keep_from: int) -> int:
        """Forgets every version before `keep_from` (the latest is always kept); returns rows deleted."""
        keep_from = min(keep_from, self.version)
        if keep_from <= self.oldest:
            return 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = db.execute("DELETE FROM nodes WHERE (version, path) IN "
                                 "(SELECT version, path FROM stale_nodes WHERE since <= ?)", (keep_from,)).rowcount
            db.execute("DELETE FROM stale_nodes WHERE since <= ?", (keep_from,))
            # a value row is dead once a newer row of its key is visible at keep_from
            deleted += db.execute("DELETE FROM kv WHERE version < ? AND EXISTS (SELECT 1 FROM kv AS newer WHERE "
                                  "newer.space = kv.space AND newer.key = kv.key AND newer.version > kv.version "
                                  "AND newer.version <= ?)", (keep_from, keep_from)).rowcount
            # a deletion marker with nothing older left to hide is no longer needed
            deleted += db.execute("DELETE FROM kv WHERE value IS NULL AND version <= ? AND NOT EXISTS (SELECT 1 FROM kv "
                                  "AS older WHERE older.space = kv.space AND older.key = kv.key AND older.version < "
                                  "kv.version)", (keep_from,)).rowcount
            deleted += db.execute("DELETE FROM versions WHERE version < ?", (keep_from,)).rowcount
            db.execute("INSERT OR REPLACE INTO meta VALUES ('oldest', ?)", (keep_from,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._cache.clear()
        self.oldest = keep_from
        return deleted


class Snapshot:
    """One retained version: reads, prefix iteration and ICS-23 proofs against its root."""

    def __init__(self, store: Store, version: int, root: jmt.Child | None) -> None:
        self.store, self.version, self._root = store, version, root

    @property
    def root(self) -> bytes:
        return jmt.root_hash(self._root)

    def _retained(self) -> Store:
        """The store, once it is known to still hold this version (a prune may have dropped it since)."""
        self.store._check_retained(self.version)
        return self.store

    def get(self, key: bytes) -> bytes | None:
        return self._retained()._get(_VERIFIABLE, key, self.version)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with `prefix`, in key order."""
        return self._retained()._items(_VERIFIABLE, prefix, self.version)

    def side_get(self, key: bytes) -> bytes | None:
        return self._retained()._get(_SIDE, key, self.version)

    def side_items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self._retained()._items(_SIDE, prefix, self.version)

    def prove(self, key: bytes) -> CommitmentProof:
        """An ICS-23 proof (JMT spec) that `key` holds its value at this version, or that it is absent."""
        def value_of(k: bytes) -> bytes:
            value = self.get(k)
            if value is None:
                raise StoreError(f"the tree holds {k!r} but its value is missing (corrupt store)")
            return value
        try:
            proof = jmt.prove(self._retained()._node, self._root, key, value_of)
        except ValueError as err:
            raise StoreError(f"version {self.version}: {err}") from None
        if isinstance(proof, ExistenceProof):
            return CommitmentProof(exist=proof)
        return CommitmentProof(nonexist=proof)


class Transaction:
    """Buffered writes over a snapshot (or over a parent transaction, when nested)."""

    def __init__(self, snapshot: Snapshot, parent: Transaction | None = None) -> None:
        self.snapshot, self.parent = snapshot, parent
        self.writes: dict[bytes, bytes | None] = {}
        self.side_writes: dict[bytes, bytes | None] = {}
        self.closed = False

    def _lookup(self, space: int, key: bytes) -> bytes | None:
        tx: Transaction | None = self
        while tx is not None:
            writes = tx.writes if space == _VERIFIABLE else tx.side_writes
            if key in writes:
                return writes[key]
            tx = tx.parent
        return self.snapshot.store._get(space, key, self.snapshot.version)

    def _merged(self, space: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        chain = []
        tx: Transaction | None = self
        while tx is not None:
            chain.append(tx.writes if space == _VERIFIABLE else tx.side_writes)
            tx = tx.parent
        merged = dict(self.snapshot.store._items(space, prefix, self.snapshot.version))
        for writes in reversed(chain):
            merged.update((k, v) for k, v in writes.items() if k.startswith(prefix))
        return ((k, merged[k]) for k in sorted(merged) if merged[k] is not None)

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("this transaction was already committed, applied or rolled back")

    def get(self, key: bytes) -> bytes | None:
        return self._lookup(_VERIFIABLE, key)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs as this transaction sees them, in key order."""
        return self._merged(_VERIFIABLE, prefix)

    def set(self, key: bytes, value: bytes) -> None:
        """Writes a verifiable key; values must be non-empty (ICS-23 reads an empty value as absence)."""
        self._check_open()
        if not key:
            raise StoreError("keys must be non-empty")
        if not value:
            raise StoreError(f"empty value for {key!r}: ICS-23 cannot prove it; delete the key instead")
        self.writes[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._check_open()
        if not key:
            raise StoreError("keys must be non-empty")
        self.writes[bytes(key)] = None

    def side_get(self, key: bytes) -> bytes | None:
        return self._lookup(_SIDE, key)

    def side_items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self._merged(_SIDE, prefix)

    def side_set(self, key: bytes, value: bytes) -> None:
        """Writes a key of the side space: versioned with the store, but outside the Merkle root."""
        self._check_open()
        self.side_writes[bytes(key)] = bytes(value)

    def side_delete(self, key: bytes) -> None:
        self._check_open()
        self.side_writes[bytes(key)] = None

    def begin(self) -> Transaction:
        """A nested transaction: sees this one's writes; `apply()` folds it in, `rollback()` drops it."""
        self._check_open()
        return Transaction(self.snapshot, self)

    def apply(self) -> None:
        """Folds a nested transaction's writes into its parent."""
        self._check_open()
        if self.parent is None:
            raise StoreError("an outermost transaction is committed with Store.commit, not applied")
        self.parent._check_open()
        self.parent.writes.update(self.writes)
        self.parent.side_writes.update(self.side_writes)
        self.closed = True

    def rollback(self) -> None:
        """Drops this transaction's writes (and leaves its parent as it was)."""
        self.writes.clear()
        self.side_writes.clear()
        self.closed = True

    @contextmanager
    def nested(self) -> Iterator[Transaction]:
        """`with tx.nested() as inner:` applies `inner` on success and rolls it back on an exception."""
        inner = self.begin()
        try:
            yield inner
        except BaseException:
            inner.rollback()
            raise
        inner.apply()
