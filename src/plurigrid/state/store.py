"""Versioned, Merkle-committed key/value store on SQLite: snapshots, nested transactions, ICS-23 proofs.

Why: every settlement must be provable to a third party who holds only a state root (a participant
proving what it was paid, later a relayer proving a packet), a node killed mid-commit must come
back exactly where it was, and a grid's ledger rewrites ten thousand balances every 15 minutes.
Penumbra's cnidarium is the model; the layout is a log and checkpoints, because the Merkle tree is
derived state (a JMT's root depends only on the set of pairs):

- the latest version lives in memory as a native Jellyfish Merkle tree (`_native.Tree`, the JMT
  spec of ICS-23, tested root for root against the pure-Python `jmt`), so a commit hashes only
  what it changed and never reads a tree node from disk;
- each `commit` is a version: its write set goes to the `log` table and its root to `versions`,
  in one SQLite transaction (WAL, synchronous=FULL), so a crash at any point leaves the last
  committed version; a store opened with `log=False` keeps commits in memory until `checkpoint()`
  (for a state its owner can replay from elsewhere: the ledger replays its block file);
- a checkpoint is the whole state of one version; opening a store loads the latest checkpoint and
  replays the log after it, checking every root; once the log since the last checkpoint holds
  `_CHECKPOINT_FACTOR` times the state, the next commit writes a new checkpoint;
- a `Snapshot` reads one retained version and never changes: the latest from the tree, an older
  one rebuilt from the checkpoint at or below it and the log (retained: from `oldest` on, where a
  prune leaves a checkpoint); a `Transaction` buffers writes over a snapshot, nests, rolls back
  alone and `apply()`s into its parent;
- a side space of the same store holds indexes that need no proofs, versioned with the same
  snapshots but outside the root.

Stores written before this layout (format 1: one row per tree node and value version) are read by
`open_store` through `Format1Store`, which answers the same reads; they are not written to.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

from plurigrid.errors import PlurigridError
from plurigrid.state import jmt
from plurigrid.state._native import Tree, decode_batch, encode_batch
from plurigrid.state.ics23 import CommitmentProof, ExistenceProof, NonExistenceProof

FORMAT = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (version INTEGER PRIMARY KEY, root BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS log (version INTEGER PRIMARY KEY, writes BLOB NOT NULL, side BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (version INTEGER PRIMARY KEY, state BLOB NOT NULL, side BLOB NOT NULL);
"""
_CHECKPOINT_FACTOR = 4  # a new checkpoint once the log since the last one holds this many times the state
_CHECKPOINT_MIN_BYTES = 1 << 20  # and at least this much
_EMPTY_BATCH = encode_batch({})
_RESERVED_META = {"format", "log", "oldest"}  # the store's own meta rows


class StoreError(PlurigridError, ValueError):
    """A misuse of the store or a request it cannot answer (unknown version, empty value, …)."""


@dataclass(frozen=True)
class Commit:
    """A committed version and the root hash that commits to its verifiable space."""

    version: int
    root: bytes


def _prefix_items(pairs: dict[bytes, bytes], prefix: bytes) -> list[tuple[bytes, bytes]]:
    return sorted((k, v) for k, v in pairs.items() if k.startswith(prefix))


def _connect(path: str, durable: bool) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as err:
        raise StoreError(f"{path}: not a Plurigrid store ({err})") from None
    return db


def _is_format1(db: sqlite3.Connection) -> bool:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return "nodes" in tables and "log" not in tables


class _Version:
    """One version's full state, in memory: the tree (for roots and proofs) and the side space."""

    def __init__(self, tree: Tree, side: dict[bytes, bytes]) -> None:
        self.tree, self.side = tree, side


def proof_of(tree: Tree, key: bytes, version: int) -> CommitmentProof:
    """An ICS-23 proof (JMT spec) that `key` holds its value in `tree`, or that it is absent."""
    try:
        found = tree.prove(key)
    except ValueError as err:
        raise StoreError(f"version {version}: {err}") from None
    if found[0]:
        return CommitmentProof(exist=jmt.existence_proof(found[2], key, found[1]))

    def neighbour(leaf: tuple[bytes, bytes, list] | None) -> ExistenceProof | None:
        return None if leaf is None else jmt.existence_proof(leaf[2], leaf[0], leaf[1])

    return CommitmentProof(nonexist=NonExistenceProof(key, neighbour(found[1]), neighbour(found[2])))


class _StoreFile:
    """What both store formats share: a SQLite file holding versions `oldest..version`."""

    path: str
    version: int
    oldest: int

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _not_retained(self, version: int) -> StoreError:
        return StoreError(f"version {version} is not retained (this store holds {self.oldest}..{self.version})")

    def _retains(self, version: int) -> bool:
        return self.oldest <= version <= self.version

    def _check_retained(self, version: int) -> None:
        if not self._retains(version):
            raise self._not_retained(version)


class Store(_StoreFile):
    """A versioned store in one SQLite file (`":memory:"` for a throwaway one)."""

    def __init__(self, path: str | Path, durable: bool = True, *, log: bool | None = None) -> None:
        """`durable=False` skips the fsync of each commit (a crash may lose the last ones, never corrupt
        the store). `log=False` keeps commits in memory until `checkpoint()` (or `close()`): for a state
        its owner rebuilds from elsewhere after a crash, as the ledger does from its blocks. A new store
        records its mode; an existing one keeps it (`log=None` accepts either)."""
        self.path = str(path)
        self._db = _connect(self.path, durable)
        if _is_format1(self._db):
            self._db.close()
            raise StoreError(f"{self.path}: written by an earlier Plurigrid (store format 1): it can be read "
                             "(open_store) and verified, not written")
        # one transaction, so a process killed while creating the store leaves it whole or empty
        self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} INSERT OR IGNORE INTO meta VALUES ('format', {FORMAT}); "
                               f"INSERT OR IGNORE INTO meta VALUES ('log', {int(log is not False)}); COMMIT;")
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if meta["format"] != FORMAT:
            raise StoreError(f"{self.path}: store format {meta['format']}, this Plurigrid reads {FORMAT}")
        self.log = bool(meta["log"])
        if log is not None and log != self.log:
            raise StoreError(f"{self.path}: a store {'with' if self.log else 'without'} a log, opened as one "
                             f"{'with' if log else 'without'}")
        oldest = self._db.execute("SELECT value FROM meta WHERE name = 'oldest'").fetchone()
        self.oldest = 0 if oldest is None else oldest[0]
        self._pending: list[tuple[int, bytes]] = []  # (version, root) of commits not yet persisted (log=False)
        self._cache: dict[int, _Version] = {}  # older versions rebuilt for snapshots
        self._load()

    def _load(self) -> None:
        """The latest checkpoint, then the log after it, each root checked against `versions`."""
        try:
            self._replay_log()
        except ValueError as err:  # a batch that does not decode
            raise StoreError(f"{self.path}: {err}") from None

    def _replay_log(self) -> None:
        db = self._db
        row = db.execute("SELECT version, state, side FROM checkpoints ORDER BY version DESC LIMIT 1").fetchone()
        self._tree, self._side = Tree(), {}
        self.version = self._checkpoint = self._persisted = 0
        if row is not None:
            self._tree.apply(row[1])
            self._side = dict(decode_batch(row[2]))
            self.version = self._checkpoint = row[0]
            self._check_root(self.version, self._tree.root())
        self._log_bytes = 0
        for version, writes, side in db.execute("SELECT version, writes, side FROM log WHERE version > ? "
                                                "ORDER BY version", (self.version,)):
            if version != self.version + 1:
                raise StoreError(f"{self.path}: the log skips from version {self.version} to {version} (corrupt store)")
            self._tree.apply(writes)
            self._apply_side(self._side, side)
            self._log_bytes += len(writes) + len(side)
            self.version = version
            self._check_root(version, self._tree.root())
        latest = db.execute("SELECT MAX(version) FROM versions").fetchone()[0] or 0
        if latest != self.version:
            raise StoreError(f"{self.path}: versions go to {latest} but the log and checkpoints to {self.version} "
                             "(corrupt store)")
        self._persisted = self.version

    def _check_root(self, version: int, root: bytes) -> None:
        row = self._db.execute("SELECT root FROM versions WHERE version = ?", (version,)).fetchone()
        if row is None or row[0] != root:
            raise StoreError(f"{self.path}: version {version} does not rebuild to its recorded root (corrupt store)")

    @staticmethod
    def _apply_side(side: dict[bytes, bytes], batch: bytes) -> None:
        for key, value in decode_batch(batch):
            if value is None:
                side.pop(key, None)
            else:
                side[key] = value

    def close(self) -> None:
        """Persists what `log=False` commits hold in memory, then closes the file."""
        if self._pending:
            self.checkpoint()
        self._db.close()

    def discard(self) -> None:
        """Closes the file without persisting commits held in memory (a store opened to read or replay)."""
        self._db.close()

    def meta(self, name: str) -> int | None:
        """A named integer its owner recorded beside the versions (`set_meta`), or None."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, name: str, value: int) -> None:
        """Records a named integer beside the versions, durably and at once (outside any version: not in a
        root, not rolled back with one), e.g. whether the store's owner has it open."""
        if name in _RESERVED_META:
            raise StoreError(f"meta {name!r} is the store's own")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, int(value)))

    @property
    def state_bytes(self) -> int:
        """Bytes of the latest version's verifiable keys and values (what a checkpoint holds, roughly)."""
        return self._tree.state_bytes

    def provable(self, version: int) -> bool:
        """Whether `snapshot(version)` can read and prove: retained, and (without a log) checkpointed or the latest."""
        if not self._retains(version):
            return False
        return self.log or version == self.version or version == 0 or \
            self._db.execute("SELECT 1 FROM checkpoints WHERE version = ?", (version,)).fetchone() is not None

    @staticmethod
    def encode_side(side: dict[bytes, bytes]) -> bytes:
        """A side space as one batch, in key order (so equal spaces encode to equal bytes)."""
        return encode_batch({k: side[k] for k in sorted(side)})

    # ------------------------------------------------------------ versions

    def root(self, version: int | None = None) -> bytes:
        """Root hash of `version` (default: the latest)."""
        if version is None or version == self.version:
            return self._tree.root()
        self._check_retained(version)
        if version == 0:
            return jmt.PLACEHOLDER
        for pending, root in self._pending:
            if pending == version:
                return root
        row = self._db.execute("SELECT root FROM versions WHERE version = ?", (version,)).fetchone()
        if row is None:
            raise self._not_retained(version)
        return row[0]

    def snapshot(self, version: int | None = None) -> Snapshot:
        """An immutable view of `version` (default: the latest)."""
        version = self.version if version is None else version
        self._check_retained(version)
        return Snapshot(self, version)

    def begin(self) -> Transaction:
        """A transaction over the latest version; `commit` it to make the next version."""
        return Transaction(self.snapshot())

    def _state(self, version: int) -> _Version | None:
        """The full state of a retained older version (None: the latest, read from the tree)."""
        self._check_retained(version)
        if version == self.version:
            return None
        if version not in self._cache:
            if len(self._cache) >= 8:
                self._cache.clear()
            self._cache[version] = self._rebuild(version)
        return self._cache[version]

    def _rebuild(self, version: int) -> _Version:
        """A retained version from the checkpoint at or below it and the log up to it."""
        try:
            return self._replay_to(version)
        except ValueError as err:  # a batch that does not decode
            raise StoreError(f"{self.path}: {err}") from None

    def _replay_to(self, version: int) -> _Version:
        db = self._db
        tree, side = Tree(), {}
        row = db.execute("SELECT version, state, side FROM checkpoints WHERE version <= ? ORDER BY version DESC "
                         "LIMIT 1", (version,)).fetchone()
        base = 0
        if row is not None:
            base = row[0]
            tree.apply(row[1])
            side = dict(decode_batch(row[2]))
        if base < version and not self.log:
            raise StoreError(f"version {version} is not retained (a store without a log keeps its checkpoints "
                             f"and version {self.version})")
        for writes, side_writes in db.execute("SELECT writes, side FROM log WHERE version > ? AND version <= ? "
                                              "ORDER BY version", (base, version)):
            tree.apply(writes)
            self._apply_side(side, side_writes)
        return _Version(tree, side)

    # ------------------------------------------------------------ reads of a version

    def _get(self, version: int, key: bytes) -> bytes | None:
        state = self._state(version)
        return (self._tree if state is None else state.tree).get(key)

    def _items(self, version: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
        state = self._state(version)
        return (self._tree if state is None else state.tree).items(prefix)

    def _side_get(self, version: int, key: bytes) -> bytes | None:
        state = self._state(version)
        return (self._side if state is None else state.side).get(key)

    def _side_items(self, version: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
        state = self._state(version)
        return _prefix_items(self._side if state is None else state.side, prefix)

    def _prove(self, version: int, key: bytes) -> CommitmentProof:
        state = self._state(version)
        return proof_of(self._tree if state is None else state.tree, key, version)

    # ------------------------------------------------------------ writes

    def commit(self, tx: Transaction, before_commit: Callable[[Commit], None] | None = None) -> Commit:
        """Makes a top-level transaction the next version, atomically; returns its version and root.

        `before_commit(commit)` runs once the new root is known, just before the SQLite commit that
        makes it count: the place to record the root elsewhere first (if it raises, or the process
        dies, the version is not committed).
        """
        if tx.parent is not None:
            raise StoreError("commit the outermost transaction; nested ones apply() into their parent")
        if tx.closed:
            raise StoreError("this transaction was already committed or rolled back")
        if tx.snapshot.version != self.version:
            raise StoreError(f"transaction began at version {tx.snapshot.version}, the store is now at {self.version}")
        version = self.version + 1
        counters = self._log_bytes, self._checkpoint
        self._tree.update(tx.writes)
        commit = Commit(version, self._tree.root())
        side = self._side
        side_batch = _EMPTY_BATCH
        if tx.side_writes:
            side, side_batch = dict(self._side), encode_batch(tx.side_writes)
            self._apply_side(side, side_batch)
        try:
            if self.log:
                writes = encode_batch(tx.writes)
                self._write(commit, lambda db: self._append_log(db, commit, writes, side_batch, side), before_commit)
            else:
                if before_commit is not None:
                    before_commit(commit)
                self._pending.append((version, commit.root))
        except BaseException:
            self._tree.revert()
            self._log_bytes, self._checkpoint = counters
            raise
        self._side, self.version = side, version
        tx.closed = True
        return commit

    def _append_log(self, db: sqlite3.Connection, commit: Commit, writes: bytes, side_batch: bytes,
                    side: dict[bytes, bytes]) -> None:
        db.execute("INSERT INTO log VALUES (?, ?, ?)", (commit.version, writes, side_batch))
        db.execute("INSERT INTO versions VALUES (?, ?)", (commit.version, commit.root))
        self._log_bytes += len(writes) + len(side_batch)
        if self._log_bytes >= max(_CHECKPOINT_FACTOR * self._tree.state_bytes, _CHECKPOINT_MIN_BYTES):
            self._write_checkpoint(db, commit.version, side)

    def _write(self, commit: Commit, writes: Callable[[sqlite3.Connection], None],
               before_commit: Callable[[Commit], None] | None) -> None:
        """Runs `writes` and `before_commit` in one write transaction that commits `commit.version`."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            latest = db.execute("SELECT MAX(version) FROM versions").fetchone()[0] or 0
            if latest != self._persisted:
                raise StoreError(f"another writer committed version {latest} to {self.path}; reopen the store")
            writes(db)
            if before_commit is not None:
                before_commit(commit)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._persisted = commit.version

    def _write_checkpoint(self, db: sqlite3.Connection, version: int, side: dict[bytes, bytes]) -> None:
        """The full state of the latest version, replacing checkpoints no retained version needs."""
        db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (version, self._tree.encode(), self.encode_side(side)))
        db.execute("DELETE FROM checkpoints WHERE version < ? AND version != ?", (version, self.oldest))
        self._checkpoint, self._log_bytes = version, 0

    def checkpoint(self) -> None:
        """Persists the latest version in full (with the roots of commits kept in memory since the last one)."""
        if self._checkpoint == self.version and not self._pending:
            return
        pending = list(self._pending)

        def writes(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO versions VALUES (?, ?)", pending)
            self._write_checkpoint(db, self.version, self._side)

        self._write(Commit(self.version, self._tree.root()), writes, None)
        self._pending.clear()

    def prune(self, keep_from: int) -> int:
        """Forgets every version before `keep_from` (the latest is always kept); returns rows deleted."""
        keep_from = min(keep_from, self.version)
        if keep_from <= self.oldest:
            return 0
        if self._pending:
            self.checkpoint()
        base = self._state(keep_from)  # keep_from's state becomes the checkpoint the retained versions start from
        tree, side = (self._tree, self._side) if base is None else (base.tree, base.side)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (keep_from, tree.encode(), self.encode_side(side)))
            deleted = db.execute("DELETE FROM checkpoints WHERE version < ?", (keep_from,)).rowcount
            deleted += db.execute("DELETE FROM log WHERE version <= ?", (keep_from,)).rowcount
            deleted += db.execute("DELETE FROM versions WHERE version < ?", (keep_from,)).rowcount
            db.execute("INSERT OR REPLACE INTO meta VALUES ('oldest', ?)", (keep_from,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.oldest = keep_from
        self._checkpoint = max(self._checkpoint, keep_from)
        self._cache = {v: s for v, s in self._cache.items() if v >= keep_from}
        return deleted


class _Reads(Protocol):
    """What a snapshot reads a version through (a `Store`, or a `Format1Store`)."""

    def _check_retained(self, version: int) -> None: ...
    def _get(self, version: int, key: bytes) -> bytes | None: ...
    def _items(self, version: int, prefix: bytes) -> list[tuple[bytes, bytes]]: ...
    def _side_get(self, version: int, key: bytes) -> bytes | None: ...
    def _side_items(self, version: int, prefix: bytes) -> list[tuple[bytes, bytes]]: ...
    def _prove(self, version: int, key: bytes) -> CommitmentProof: ...
    def root(self, version: int | None = None) -> bytes: ...


class Snapshot:
    """One retained version: reads, prefix iteration and ICS-23 proofs against its root."""

    def __init__(self, store: _Reads, version: int) -> None:
        self.store, self.version = store, version
        self.root = store.root(version)

    def get(self, key: bytes) -> bytes | None:
        return self.store._get(self.version, key)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with `prefix`, in key order."""
        return iter(self.store._items(self.version, prefix))

    def side_get(self, key: bytes) -> bytes | None:
        return self.store._side_get(self.version, key)

    def side_items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return iter(self.store._side_items(self.version, prefix))

    def prove(self, key: bytes) -> CommitmentProof:
        """An ICS-23 proof (JMT spec) that `key` holds its value at this version, or that it is absent."""
        return self.store._prove(self.version, key)


class Transaction:
    """Buffered writes over a snapshot (or over a parent transaction, when nested)."""

    def __init__(self, snapshot: Snapshot, parent: Transaction | None = None) -> None:
        self.snapshot, self.parent = snapshot, parent
        self.writes: dict[bytes, bytes | None] = {}
        self.side_writes: dict[bytes, bytes | None] = {}
        self.closed = False

    def _chain(self, side: bool) -> list[dict[bytes, bytes | None]]:
        chain: list[dict[bytes, bytes | None]] = []
        tx: Transaction | None = self
        while tx is not None:
            chain.append(tx.side_writes if side else tx.writes)
            tx = tx.parent
        return chain

    def _lookup(self, side: bool, key: bytes) -> bytes | None:
        for writes in self._chain(side):
            if key in writes:
                return writes[key]
        return self.snapshot.side_get(key) if side else self.snapshot.get(key)

    def _merged(self, side: bool, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        base = self.snapshot.side_items(prefix) if side else self.snapshot.items(prefix)
        merged: dict[bytes, bytes | None] = dict(base)
        for writes in reversed(self._chain(side)):
            merged.update((k, v) for k, v in writes.items() if k.startswith(prefix))
        return ((k, v) for k, v in sorted(merged.items()) if v is not None)

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("this transaction was already committed, applied or rolled back")

    def get(self, key: bytes) -> bytes | None:
        return self._lookup(False, key)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs as this transaction sees them, in key order."""
        return self._merged(False, prefix)

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
        return self._lookup(True, key)

    def side_items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self._merged(True, prefix)

    def side_set(self, key: bytes, value: bytes) -> None:
        """Writes a key of the side space: versioned with the store, but outside the Merkle root."""
        self._check_open()
        if not key:
            raise StoreError("keys must be non-empty")
        self.side_writes[bytes(key)] = bytes(value)

    def side_delete(self, key: bytes) -> None:
        self._check_open()
        if not key:
            raise StoreError("keys must be non-empty")
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


# ---------------------------------------------------------------- format 1 (read only)

_F1_VERIFIABLE, _F1_SIDE = 0, 1


class Format1Store(_StoreFile):
    """A store written in format 1 (tables `nodes`, `kv`, `versions`, `stale_nodes`), read in place.

    Every retained version's tree nodes and values are rows, so reads and proofs come straight from
    them (proofs through the pure-Python `jmt`), exactly as that format's writer answered them.
    """

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self._db, self.path = db, path
        row = db.execute("SELECT MAX(version) FROM versions").fetchone()
        self.version = row[0] or 0
        oldest = db.execute("SELECT value FROM meta WHERE name = 'oldest'").fetchone()
        self.oldest = 0 if oldest is None else oldest[0]

    def close(self) -> None:
        self._db.close()

    def _root_ref(self, version: int) -> jmt.Child | None:
        self._check_retained(version)
        row = self._db.execute("SELECT root, root_version, root_key FROM versions WHERE version = ?", (version,)).fetchone()
        if row is None or row[1] is None:
            return None
        root, root_version, root_key = row
        if root_key is None:
            return jmt.internal_child(root, root_version)
        return jmt.leaf_child(root, hashlib.sha256(root_key).digest(), root_key)

    def root(self, version: int | None = None) -> bytes:
        return jmt.root_hash(self._root_ref(self.version if version is None else version))

    def snapshot(self, version: int | None = None) -> Snapshot:
        version = self.version if version is None else version
        self._check_retained(version)
        return Snapshot(self, version)

    def provable(self, version: int) -> bool:
        return self._retains(version)

    def _node(self, version: int, path: str) -> jmt.Internal:
        row = self._db.execute("SELECT data FROM nodes WHERE version = ? AND path = ?", (version, path)).fetchone()
        if row is None:
            raise StoreError(f"tree node {path or 'root'}@{version} is missing (pruned or corrupt store)")
        return jmt.decode_node(row[0])

    def _value(self, space: int, version: int, key: bytes) -> bytes | None:
        self._check_retained(version)
        row = self._db.execute("SELECT value FROM kv WHERE space = ? AND key = ? AND version <= ? "
                               "ORDER BY version DESC LIMIT 1", (space, key, version)).fetchone()
        return None if row is None else row[0]

    def _all(self, space: int, version: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
        self._check_retained(version)
        rows = self._db.execute("SELECT key, value, MAX(version) FROM kv WHERE space = ? AND version <= ? "
                                "GROUP BY key ORDER BY key", (space, version)).fetchall()
        return [(k, v) for k, v, _ in rows if v is not None and k.startswith(prefix)]

    def _get(self, version: int, key: bytes) -> bytes | None:
        return self._value(_F1_VERIFIABLE, version, key)

    def _items(self, version: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return self._all(_F1_VERIFIABLE, version, prefix)

    def _side_get(self, version: int, key: bytes) -> bytes | None:
        return self._value(_F1_SIDE, version, key)

    def _side_items(self, version: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return self._all(_F1_SIDE, version, prefix)

    def _prove(self, version: int, key: bytes) -> CommitmentProof:
        def value_of(k: bytes) -> bytes:
            value = self._get(version, k)
            if value is None:
                raise StoreError(f"the tree holds {k!r} but its value is missing (corrupt store)")
            return value

        try:
            proof = jmt.prove(self._node, self._root_ref(version), key, value_of)
        except ValueError as err:
            raise StoreError(f"version {version}: {err}") from None
        if isinstance(proof, ExistenceProof):
            return CommitmentProof(exist=proof)
        return CommitmentProof(nonexist=proof)


def open_store(path: str | Path, *, log: bool | None = None) -> Store | Format1Store:
    """Opens a store file for reading, whichever format wrote it. `log`: the mode a format-2 store must have
    (and an empty file is created with: its writer's mode, had it lived to create it)."""
    db = _connect(str(path), True)
    if _is_format1(db):
        return Format1Store(db, str(path))
    db.close()
    return Store(path, log=log)
