"""Versioned store: a random mix of writes, nested transactions, commits and prunes against a reference model.

The model is a stack of dicts per open transaction over a dict per committed version; roots are checked
against an independent binary sparse-Merkle computation, proofs with the ICS-23 verifier and JMT_SPEC.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurigrid.state import jmt
from plurigrid.state import store as store_module
from plurigrid.state._native import decode_batch
from plurigrid.state.ics23 import (
    JMT_SPEC,
    Ics23Error,
    decode_commitment_proof,
    encode_commitment_proof,
    verify_membership,
    verify_non_membership,
)
from plurigrid.state.ics23_proto import read_varint
from plurigrid.state.store import Commit, Store, StoreError, Transaction

EMPTY = b"SPARSE_MERKLE_PLACEHOLDER_HASH__"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_root(pairs: dict[bytes, bytes]) -> bytes:
    """Binary sparse Merkle root over sha256(key) (JMT hashing), computed from scratch."""

    def rec(items: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not items:
            return EMPTY
        if len(items) == 1:
            return sha(b"JMT::LeafNode" + items[0][0] + items[0][1])
        bits = [it[0][depth // 8] >> (7 - depth % 8) & 1 for it in items]
        left = [it for it, b in zip(items, bits) if not b]
        right = [it for it, b in zip(items, bits) if b]
        return sha(b"JMT::IntrnalNode" + rec(left, depth + 1) + rec(right, depth + 1))

    return rec(sorted((sha(k), sha(v)) for k, v in pairs.items()), 0)


# keys that share prefixes and sit on 0x00/0xff boundaries, so prefix scans have edges to get wrong
KEYS = [b"a", b"ab", b"abc", b"a\xff", b"a\xff\xff", b"b", b"\xff", b"\xff\xff", b"\xff\x00",
        b"\x00", b"\x00\x00", b"k1", b"k2"]
PREFIXES = [b"", b"a", b"ab", b"a\xff", b"\xff", b"\xff\xff", b"\x00", b"b", b"z"]
VALUES = [b"1", b"2", b"\x00", b"xyz"]
SIDE_VALUES = [b"s", b"t", b""]  # the side space allows empty values: it needs no proofs
ABSENT = [b"nope", b"a\x00", b"\xff\xff\xff"]

key_st = st.sampled_from(KEYS)
_set = st.tuples(st.just("set"), key_st, st.sampled_from(VALUES))
_begin = st.tuples(st.just("begin"))
_commit = st.tuples(st.just("commit"))
op_st = st.one_of(
    _set, _set, _set,
    st.tuples(st.just("delete"), key_st),
    st.tuples(st.just("side_set"), key_st, st.sampled_from(SIDE_VALUES)),
    st.tuples(st.just("side_delete"), key_st),
    _begin, _begin, _begin,
    st.tuples(st.just("apply")),
    st.tuples(st.just("rollback")),
    _commit, _commit,
    st.tuples(st.just("prune"), st.integers(0, 4)),
    st.tuples(st.just("nested"), st.lists(st.tuples(key_st, st.sampled_from(VALUES)), max_size=3), st.booleans()),
    st.tuples(st.just("scan"), st.sampled_from(PREFIXES)),
)
# rounds of ops, each closed by a commit, so that examples reach several versions (a flat list of
# ops would average ~10 ops and a single version)
ops_st = st.lists(st.lists(op_st, max_size=10), min_size=2, max_size=10).map(
    lambda rounds: [op for r in rounds for op in [*r, ("commit",)]])


class Boom(Exception):
    pass


def overlay(base: dict[bytes, bytes], *levels: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    out = dict(base)
    for level in levels:
        for k, v in level.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
    return out


def by_prefix(model: dict[bytes, bytes], prefix: bytes) -> list[tuple[bytes, bytes]]:
    return sorted((k, v) for k, v in model.items() if k.startswith(prefix))


def check_proof(snap, key: bytes, model: dict[bytes, bytes]) -> None:
    """`key` has a verifying proof of the right kind at `snap`, before and after a protobuf round trip."""
    root = snap.root
    proof = snap.prove(key)
    again = decode_commitment_proof(encode_commitment_proof(proof))
    assert again == proof
    for p in (proof, again):
        if key in model:
            assert verify_membership(JMT_SPEC, root, p, key, model[key]), (snap.version, key)
            assert not verify_non_membership(JMT_SPEC, root, p, key)
        else:
            assert verify_non_membership(JMT_SPEC, root, p, key), (snap.version, key)
            assert not verify_membership(JMT_SPEC, root, p, key, b"1")


class Harness:
    """Runs ops against a Store and the model side by side, checking reads as it goes."""

    @classmethod
    def after(cls, ops: list) -> Harness:
        """A harness that has run `ops` and then committed whatever they left open."""
        h = cls()
        for op in ops:
            h.run(op)
        while h.txs:
            h._commit()
        return h

    def __init__(self) -> None:
        self.store = Store(":memory:")
        self.committed: dict[int, tuple[dict, dict]] = {0: ({}, {})}  # version → (verifiable, side)
        self.roots: dict[int, bytes] = {0: EMPTY}
        self.held = {0: self.store.snapshot(0)}  # Snapshot objects taken at commit time
        self.txs: list[Transaction] = []
        self.levels: list[tuple[dict, dict]] = []  # (writes, side writes) per open transaction
        self.oldest = 0

    # -- model views
    def view(self, depth: int, side: bool = False) -> dict[bytes, bytes]:
        base = self.committed[self.store.version][side]
        return overlay(base, *(level[side] for level in self.levels[:depth + 1]))

    def top(self) -> Transaction:
        if not self.txs:
            self.txs.append(self.store.begin())
            self.levels.append(({}, {}))
        return self.txs[-1]

    def check_reads(self, keys, prefix: bytes | None = None) -> None:
        """Every open level sees its own and its parents' writes, and nothing of its children's."""
        for depth, tx in enumerate(self.txs):
            model, side = self.view(depth), self.view(depth, True)
            for k in keys:
                assert tx.get(k) == model.get(k), (depth, k)
                assert tx.side_get(k) == side.get(k), (depth, k)
            if prefix is not None:
                assert list(tx.items(prefix)) == by_prefix(model, prefix)
                assert list(tx.side_items(prefix)) == by_prefix(side, prefix)

    # -- ops
    def run(self, op) -> None:
        kind = op[0]
        if kind in ("set", "delete", "side_set", "side_delete"):
            tx, (writes, side_writes) = self.top(), self.levels[-1]
            getattr(tx, kind)(*op[1:])
            target = side_writes if kind.startswith("side") else writes
            target[op[1]] = op[2] if kind.endswith("set") else None
            self.check_reads([op[1]])
        elif kind == "begin":
            if self.txs:
                self.txs.append(self.txs[-1].begin())
                self.levels.append(({}, {}))
            else:
                self.top()
        elif kind == "apply":
            if len(self.txs) == 1:
                with pytest.raises(StoreError):
                    self.txs[0].apply()  # an outermost transaction is committed, not applied
            elif self.txs:
                self._apply_top()
            self.check_reads(KEYS)
        elif kind == "rollback":
            if self.txs:
                self.txs.pop().rollback()
                self.levels.pop()
                self.check_reads(KEYS)
        elif kind == "nested":
            _, writes, fail = op
            parent = self.top()
            try:
                with parent.nested() as inner:
                    for k, v in writes:
                        inner.set(k, v)
                        assert inner.get(k) == v
                    if fail:
                        raise Boom
            except Boom:
                pass
            if not fail:
                self.levels[-1][0].update(writes)
            self.check_reads(KEYS)
        elif kind == "commit":
            self._commit()
        elif kind == "prune":
            self._prune(op[1])
        elif kind == "scan":
            if self.txs:
                self.check_reads([], op[1])
            else:
                snap = self.store.snapshot()
                model, side = self.committed[self.store.version]
                assert list(snap.items(op[1])) == by_prefix(model, op[1])
                assert list(snap.side_items(op[1])) == by_prefix(side, op[1])
        else:  # pragma: no cover
            raise AssertionError(kind)

    def _apply_top(self) -> None:
        self.txs.pop().apply()
        writes, side_writes = self.levels.pop()
        self.levels[-1][0].update(writes)
        self.levels[-1][1].update(side_writes)

    def _commit(self) -> None:
        if not self.txs:
            self.top()  # an empty commit: a new version with the same root
        if len(self.txs) > 1:
            with pytest.raises(StoreError):
                self.store.commit(self.txs[-1])
            while len(self.txs) > 1:
                self._apply_top()
        model, side = self.view(0), self.view(0, True)
        before = self.store.version
        commit = self.store.commit(self.txs.pop())
        self.levels.pop()
        assert commit == Commit(before + 1, ref_root(model))
        assert self.store.version == commit.version
        assert self.store.root() == commit.root
        self.committed[commit.version] = (model, side)
        self.roots[commit.version] = commit.root
        self.held[commit.version] = self.store.snapshot(commit.version)

    def _prune(self, lag: int) -> None:
        """Keeps the latest `lag` versions before the latest (an open transaction reads the latest
        version, which pruning always keeps)."""
        keep_from = max(0, self.store.version - lag)
        self.store.prune(keep_from)
        self.oldest = max(self.oldest, keep_from)
        assert self.store.oldest == self.oldest
        for version in [v for v in self.held if v < self.oldest]:
            del self.held[version]
            with pytest.raises(StoreError, match="not retained"):
                self.store.snapshot(version)
        for version in self.held:  # what is kept reads as it did
            model, side = self.committed[version]
            assert list(self.store.snapshot(version).items()) == sorted(model.items()), version
            assert list(self.held[version].side_items()) == sorted(side.items()), version

    # -- final checks
    def check_retained(self) -> None:
        assert self.store.version == max(self.committed)
        for version in range(self.oldest, self.store.version + 1):
            model, side = self.committed[version]
            assert self.store.root(version) == self.roots[version] == ref_root(model)
            for snap in (self.held[version], self.store.snapshot(version)):
                assert snap.version == version
                assert snap.root == self.roots[version]
                assert list(snap.items()) == sorted(model.items())
                assert list(snap.side_items()) == sorted(side.items())
                for k in KEYS + ABSENT:
                    assert snap.get(k) == model.get(k)
                    assert snap.side_get(k) == side.get(k)
            snap = self.store.snapshot(version)
            for prefix in PREFIXES:
                assert list(snap.items(prefix)) == by_prefix(model, prefix), (version, prefix)
                assert list(snap.side_items(prefix)) == by_prefix(side, prefix), (version, prefix)
            if not model:
                with pytest.raises(StoreError):
                    snap.prove(KEYS[0])
                continue
            for k in KEYS + ABSENT:
                check_proof(snap, k, model)


@settings(max_examples=60, deadline=None)
@given(ops=ops_st)
def test_store_matches_the_model(ops):
    h = Harness()
    for op in ops:
        h.run(op)
    # whatever is still open is committed, so the final state is checked too
    while len(h.txs) > 1:
        h._apply_top()
    if h.txs:
        h._commit()
    h.check_retained()


@settings(max_examples=40, deadline=None)
@given(ops=ops_st, seed=st.integers(0, 2**32 - 1))
def test_root_is_independent_of_history_and_side_space(ops, seed):
    h = Harness.after(ops)
    final, _ = h.committed[h.store.version]

    rng = random.Random(seed)
    pairs = list(final.items())
    rng.shuffle(pairs)
    with Store(":memory:") as one, Store(":memory:") as piecewise:
        tx = one.begin()
        for k, v in pairs:
            tx.set(k, v)
        assert one.commit(tx).root == h.store.root()
        rng.shuffle(pairs)
        for k, v in pairs:
            tx = piecewise.begin()
            tx.set(k, v)
            tx.side_set(k, v + b"side")
            piecewise.commit(tx)
        assert piecewise.root() == h.store.root()
        tx = piecewise.begin()
        for k in KEYS:
            tx.side_set(k, b"noise")
        assert piecewise.commit(tx).root == h.store.root()  # the side space is outside the root


@settings(max_examples=40, deadline=None)
@given(ops=ops_st)
def test_prune_to_latest_keeps_only_the_live_state(ops):
    h = Harness.after(ops)
    if h.store.version == 0:  # at least one version
        h._commit()
    store = h.store
    model, side = h.committed[store.version]
    store.prune(store.version)
    assert rows(store, "versions") == 1 and rows(store, "log") == 0
    # one checkpoint: exactly the live keys of each space
    (state, side_state), = store._db.execute("SELECT state, side FROM checkpoints").fetchall()
    assert sorted(decode_batch(state)) == sorted(model.items())
    assert sorted(decode_batch(side_state)) == sorted(side.items())
    h.oldest = store.version
    h.check_retained()


# ---------------------------------------------------------------- helpers for the unit tests


def rows(store: Store, table: str) -> int:
    return store._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def commit(store: Store, writes: dict[bytes, bytes | None], side: dict[bytes, bytes | None] | None = None) -> Commit:
    tx = store.begin()
    for k, v in writes.items():
        tx.set(k, v) if v is not None else tx.delete(k)
    for k, v in (side or {}).items():
        tx.side_set(k, v) if v is not None else tx.side_delete(k)
    return store.commit(tx)


# ---------------------------------------------------------------- unit tests


def test_empty_store():
    store = Store(":memory:")
    assert store.version == 0 and store.oldest == 0
    assert store.root() == store.root(0) == jmt.PLACEHOLDER
    snap = store.snapshot()
    assert snap.root == jmt.PLACEHOLDER and list(snap.items()) == [] and snap.get(b"k") is None
    with pytest.raises(StoreError):
        snap.prove(b"k")  # ICS-23 cannot state absence in an empty tree
    c = store.commit(store.begin())  # an empty commit is a version like any other
    assert c == Commit(1, jmt.PLACEHOLDER)
    with pytest.raises(StoreError):
        store.snapshot(2)
    with pytest.raises(StoreError):
        store.snapshot(-1)


def test_single_key_root_and_proof():
    store = Store(":memory:")
    c = commit(store, {b"k": b"v"})
    assert c.root == sha(b"JMT::LeafNode" + sha(b"k") + sha(b"v"))
    proof = store.snapshot().prove(b"k")
    assert proof.exist is not None and proof.exist.path == ()
    assert verify_membership(JMT_SPEC, c.root, proof, b"k", b"v")


def test_deleting_everything_empties_the_tree():
    store = Store(":memory:")
    commit(store, {b"a": b"1", b"b": b"2"})
    c = commit(store, {b"a": None, b"b": None})
    assert c.root == jmt.PLACEHOLDER
    assert list(store.snapshot().items()) == []
    with pytest.raises(StoreError):
        store.snapshot().prove(b"a")
    assert verify_membership(JMT_SPEC, store.root(1), store.snapshot(1).prove(b"a"), b"a", b"1")


@pytest.fixture
def populated() -> Store:
    store = Store(":memory:")
    commit(store, {b"key-%d" % i: b"value-%d" % i for i in range(40)})
    return store


def flips(data: bytes):
    for i in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            yield i, data[:i] + bytes([data[i] ^ mask]) + data[i + 1:]


def rejected(verify, blob: bytes) -> bool:
    try:
        proof = decode_commitment_proof(blob)
    except Ics23Error:
        return True
    return not verify(proof)


def test_membership_proof_is_bound_to_root_value_and_bytes(populated):
    snap = populated.snapshot()
    key, value = b"key-7", b"value-7"
    proof = snap.prove(key)
    assert proof.exist is not None and len(proof.exist.path) >= 4
    assert verify_membership(JMT_SPEC, snap.root, proof, key, value)
    assert not verify_membership(JMT_SPEC, sha(snap.root), proof, key, value)
    assert not verify_membership(JMT_SPEC, snap.root, proof, key, b"value-8")
    assert not verify_membership(JMT_SPEC, snap.root, proof, b"key-8", value)
    # an older root does not accept the newer proof, and vice versa
    c = commit(populated, {key: b"changed"})
    assert not verify_membership(JMT_SPEC, c.root, proof, key, value)
    assert not verify_membership(JMT_SPEC, c.root, populated.snapshot(1).prove(key), key, value)
    assert verify_membership(JMT_SPEC, c.root, populated.snapshot().prove(key), key, b"changed")

    blob = encode_commitment_proof(proof)
    survivors = [(i, m) for i, m in flips(blob)
                 if not rejected(lambda p: verify_membership(JMT_SPEC, snap.root, p, key, value), m)]
    assert survivors == []


def test_non_membership_proof_is_bound_to_root_and_bytes(populated):
    snap = populated.snapshot()
    hashes = sorted(sha(k) for k, _ in snap.items())
    key = next(b"missing-%d" % i for i in range(1000) if hashes[0] < sha(b"missing-%d" % i) < hashes[-1])
    proof = snap.prove(key)
    assert proof.nonexist is not None and proof.nonexist.left is not None and proof.nonexist.right is not None
    assert verify_non_membership(JMT_SPEC, snap.root, proof, key)
    assert not verify_non_membership(JMT_SPEC, sha(snap.root), proof, key)
    assert not verify_non_membership(JMT_SPEC, snap.root, proof, b"key-3")  # a present key is not absent
    c = commit(populated, {key: b"now here"})
    assert not verify_non_membership(JMT_SPEC, c.root, proof, key)

    blob = encode_commitment_proof(proof)
    # ICS-23 ignores the key field carried inside a NonExistenceProof (the caller names the key), so
    # flipping bytes of that field (tag, length or content) is not a forgery; every other byte counts
    assert blob[0] == 0x12  # field 2 of CommitmentProof: nonexist
    payload_len, start = read_varint(blob, 1)  # where the nonexist payload starts
    assert start + payload_len == len(blob)
    key_field = range(start, start + 2 + len(key))
    assert blob[start] == 0x0A and blob[start + 1] == len(key) and blob[start + 2:start + 2 + len(key)] == key
    survivors = [(i, m) for i, m in flips(blob)
                 if not rejected(lambda p: verify_non_membership(JMT_SPEC, snap.root, p, key), m)]
    assert [i for i, _ in survivors if i not in key_field] == []


def test_values_must_be_non_empty_and_keys_too():
    store = Store(":memory:")
    tx = store.begin()
    with pytest.raises(StoreError):
        tx.set(b"k", b"")
    with pytest.raises(StoreError):
        tx.set(b"", b"v")
    assert tx.get(b"k") is None
    assert store.commit(tx).root == jmt.PLACEHOLDER


def test_stale_transaction_cannot_commit():
    store = Store(":memory:")
    first, second = store.begin(), store.begin()
    first.set(b"a", b"1")
    second.set(b"b", b"2")
    c = store.commit(first)
    with pytest.raises(StoreError):
        store.commit(second)
    assert store.version == 1 and store.root() == c.root
    assert list(store.snapshot().items()) == [(b"a", b"1")]


def test_transaction_misuse():
    store = Store(":memory:")
    tx = store.begin()
    inner = tx.begin()
    inner.set(b"k", b"v")
    with pytest.raises(StoreError):
        store.commit(inner)  # nested transactions apply() into their parent
    with pytest.raises(StoreError):
        tx.apply()  # and outermost ones are committed, not applied
    inner.apply()
    with pytest.raises(StoreError):
        inner.set(b"x", b"y")  # an applied transaction is closed
    store.commit(tx)
    with pytest.raises(StoreError):
        store.commit(tx)  # committed once
    with pytest.raises(StoreError):
        tx.set(b"x", b"y")
    rolled = store.begin()
    rolled.set(b"z", b"1")
    rolled.rollback()
    with pytest.raises(StoreError):
        store.commit(rolled)
    assert list(store.snapshot().items()) == [(b"k", b"v")]
    # a child still open when its parent is committed is left out, and cannot apply afterwards
    tx = store.begin()
    child = tx.begin()
    child.set(b"late", b"1")
    store.commit(tx)
    with pytest.raises(StoreError):
        child.apply()
    assert store.snapshot().get(b"late") is None


def test_nested_context_manager():
    store = Store(":memory:")
    tx = store.begin()
    with tx.nested() as inner:
        inner.set(b"a", b"1")
        with inner.nested() as deeper:
            deeper.set(b"b", b"2")
        assert inner.get(b"b") == b"2" and tx.get(b"b") is None
    with pytest.raises(Boom), tx.nested() as inner:
        inner.set(b"c", b"3")
        inner.delete(b"a")
        raise Boom
    assert list(tx.items()) == [(b"a", b"1"), (b"b", b"2")]
    store.commit(tx)
    assert list(store.snapshot().items()) == [(b"a", b"1"), (b"b", b"2")]


def test_side_space_is_versioned_but_outside_the_root():
    store = Store(":memory:")
    c1 = commit(store, {b"k": b"v"}, {b"idx/1": b"a"})
    c2 = commit(store, {}, {b"idx/1": b"b", b"idx/2": b"c", b"k": b"shadow"})
    c3 = commit(store, {}, {b"idx/1": None})
    assert c1.root == c2.root == c3.root == sha(b"JMT::LeafNode" + sha(b"k") + sha(b"v"))
    assert store.snapshot(1).side_get(b"idx/1") == b"a"
    assert store.snapshot(2).side_get(b"idx/1") == b"b"
    assert store.snapshot(3).side_get(b"idx/1") is None
    assert list(store.snapshot(2).side_items(b"idx/")) == [(b"idx/1", b"b"), (b"idx/2", b"c")]
    assert list(store.snapshot(3).side_items(b"idx/")) == [(b"idx/2", b"c")]
    assert store.snapshot(2).get(b"k") == b"v"  # the spaces do not see each other
    assert store.snapshot(1).side_get(b"k") is None
    assert list(store.snapshot(3).items()) == [(b"k", b"v")]


def test_pruned_versions_are_gone_and_retained_ones_intact():
    store = Store(":memory:")
    roots = {}
    for v in range(1, 7):
        roots[v] = commit(store, {b"k%d" % (i % 9): b"%d-%d" % (v, i) for i in range(v, v + 6)},
                          {b"s%d" % v: b"x"}).root
    items = {v: list(store.snapshot(v).items()) for v in range(1, 7)}
    held = store.snapshot(4)
    before = rows(store, "log") + rows(store, "checkpoints") + rows(store, "versions")
    deleted = store.prune(4)
    after = rows(store, "log") + rows(store, "checkpoints") + rows(store, "versions")
    assert deleted > 0 and before - after == deleted - 1  # a checkpoint at version 4 replaces its log
    assert store.oldest == 4
    assert rows(store, "versions") == 3
    for v in (0, 1, 3):
        with pytest.raises(StoreError, match="not retained"):
            store.snapshot(v)
        with pytest.raises(StoreError, match="not retained"):
            store.root(v)
    for v in (4, 5, 6):
        snap = store.snapshot(v)
        assert snap.root == roots[v] and list(snap.items()) == items[v]
        for k, val in items[v]:
            assert verify_membership(JMT_SPEC, roots[v], snap.prove(k), k, val)
        assert verify_non_membership(JMT_SPEC, roots[v], snap.prove(b"zz"), b"zz")
    assert list(held.items()) == items[4]
    assert held.side_get(b"s1") == b"x"  # side rows older than the cut survive while still visible
    assert store.prune(2) == 0  # already pruned past that
    store.prune(100)  # clamps to the latest
    assert store.oldest == 6 and store.root() == roots[6] and list(store.snapshot().items()) == items[6]
    assert (rows(store, "log"), rows(store, "checkpoints"), rows(store, "versions")) == (0, 1, 1)


def test_reopen_file_backed_store(tmp_path):
    path = tmp_path / "state.db"
    with Store(path) as store:
        for v in range(1, 5):
            commit(store, {b"k%d" % i: b"v%d" % v for i in range(v * 3)}, {b"side": b"%d" % v})
        commit(store, {b"k0": None})
        store.prune(2)
        version, root, oldest = store.version, store.root(), store.oldest
        items = {v: list(store.snapshot(v).items()) for v in range(2, 6)}
        roots = {v: store.root(v) for v in range(2, 6)}
    with Store(path) as again:
        assert (again.version, again.root(), again.oldest) == (version, root, oldest)
        for v in range(2, 6):
            snap = again.snapshot(v)
            assert snap.root == roots[v] and list(snap.items()) == items[v]
            assert snap.side_get(b"side") == b"%d" % min(v, 4)  # version 5 wrote no side key
            check_proof(snap, b"k1", dict(items[v]))
            check_proof(snap, b"k0", dict(items[v]))
        with pytest.raises(StoreError, match="not retained"):
            again.snapshot(1)
        c = commit(again, {b"new": b"1"})
        assert c.version == version + 1
    with Store(path) as third:
        assert third.version == version + 1 and third.root() == c.root


def test_not_a_store(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(path)


def test_transaction_reads_see_committed_state_and_own_writes():
    store = Store(":memory:")
    commit(store, {b"a": b"1", b"b": b"2", b"c": b"3"})
    tx = store.begin()
    tx.delete(b"b")
    tx.set(b"d", b"4")
    inner = tx.begin()
    inner.set(b"b", b"again")
    assert list(inner.items()) == [(b"a", b"1"), (b"b", b"again"), (b"c", b"3"), (b"d", b"4")]
    assert list(tx.items()) == [(b"a", b"1"), (b"c", b"3"), (b"d", b"4")]
    assert list(store.snapshot().items()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    inner.rollback()
    assert tx.get(b"b") is None
    c = store.commit(tx)
    assert c.root == ref_root({b"a": b"1", b"c": b"3", b"d": b"4"})


def test_snapshot_held_across_a_prune_refuses_to_answer():
    store = Store(":memory:")
    for v in (b"1", b"2", b"3"):
        tx = store.begin()
        tx.set(b"k", v)
        tx.set(b"other" + v, v)
        store.commit(tx)
    held = store.snapshot(1)
    assert held.get(b"k") == b"1"
    store.prune(3)
    for read in (lambda: held.get(b"k"), lambda: list(held.items()), lambda: held.side_get(b"k"),
                 lambda: list(held.side_items()), lambda: held.prove(b"k")):
        with pytest.raises(StoreError, match="version 1 is not retained"):
            read()


def test_second_writer_on_the_same_file_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as a, Store(path) as b:
        tx = a.begin()
        tx.set(b"x", b"1")
        a.commit(tx)
        tx = b.begin()
        tx.set(b"y", b"2")
        with pytest.raises(StoreError, match="another writer committed version 1"):
            b.commit(tx)
    with Store(path) as reopened:
        assert reopened.version == 1
        assert dict(reopened.snapshot().items()) == {b"x": b"1"}


def test_empty_key_is_refused_for_delete_too():
    tx = Store(":memory:").begin()
    with pytest.raises(StoreError, match="keys must be non-empty"):
        tx.delete(b"")


@contextlib.contextmanager
def checkpoint_every_commit():
    saved = store_module._CHECKPOINT_FACTOR, store_module._CHECKPOINT_MIN_BYTES
    store_module._CHECKPOINT_FACTOR, store_module._CHECKPOINT_MIN_BYTES = 0, 0
    try:
        yield
    finally:
        store_module._CHECKPOINT_FACTOR, store_module._CHECKPOINT_MIN_BYTES = saved


@settings(max_examples=40, deadline=None)
@given(ops=ops_st)
def test_store_with_a_checkpoint_at_every_commit_matches_the_model(ops):
    with checkpoint_every_commit():
        h = Harness.after(ops)
        h.check_retained()


def test_reopening_replays_the_log_after_the_last_checkpoint(tmp_path):
    path = tmp_path / "s.sqlite"
    roots = {}
    with checkpoint_every_commit(), Store(path) as store:
        roots[1] = commit(store, {b"a": b"1"}).root  # checkpointed
    with Store(path) as store:
        roots[2] = commit(store, {b"b": b"2"}, {b"s": b"x"}).root  # logged only
        roots[3] = commit(store, {b"a": None}).root
    assert rows_of(path, "checkpoints") == [1] and rows_of(path, "log") == [1, 2, 3]  # the log keeps history
    with Store(path) as again:
        assert again.version == 3 and again.root() == roots[3]
        assert [again.root(v) for v in (1, 2, 3)] == [roots[1], roots[2], roots[3]]
        assert list(again.snapshot(2).items()) == [(b"a", b"1"), (b"b", b"2")]
        assert again.snapshot(3).side_get(b"s") == b"x"


def test_a_log_of_another_root_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        commit(store, {b"a": b"1"})
    db = sqlite3.connect(path)
    db.execute("UPDATE versions SET root = ?", (b"\x00" * 32,))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="version 1 does not rebuild to its recorded root"):
        Store(path)


def test_a_store_without_a_log_persists_at_checkpoints_only(tmp_path):
    path = tmp_path / "s.sqlite"
    store = Store(path, log=False)
    c1 = commit(store, {b"a": b"1"})
    store.checkpoint()
    c2 = commit(store, {b"b": b"2"})
    assert store.provable(1) and store.provable(2) and store.root(1) == c1.root
    c3 = commit(store, {b"c": b"3"})
    assert not store.provable(2)
    with pytest.raises(StoreError, match="not retained"):
        store.snapshot(2).get(b"a")
    store.discard()  # dies: versions 2 and 3 were never persisted
    with Store(path) as again:
        assert (again.version, again.root(), again.log) == (1, c1.root, False)
    with Store(path, log=False) as again:
        assert commit(again, {b"b": b"2"}) == c2 and commit(again, {b"c": b"3"}) == c3
    with Store(path) as third:  # close checkpointed them
        assert third.version == 3 and third.root(2) == c2.root
    with pytest.raises(StoreError, match="a store without a log, opened as one with"):
        Store(path, log=True)


def test_a_failed_commit_leaves_the_tree_as_it_was():
    store = Store(":memory:")
    c1 = commit(store, {b"a": b"1", b"b": b"2"})
    tx = store.begin()
    tx.set(b"a", b"changed")
    tx.delete(b"b")

    def refuse(commit: Commit) -> None:
        raise Boom

    with pytest.raises(Boom):
        store.commit(tx, before_commit=refuse)
    assert store.version == 1 and store.root() == c1.root
    assert list(store.snapshot().items()) == [(b"a", b"1"), (b"b", b"2")]


def rows_of(path, table: str) -> list[int]:
    db = sqlite3.connect(path)
    try:
        return [v for (v,) in db.execute(f"SELECT version FROM {table} ORDER BY version")]
    finally:
        db.close()
