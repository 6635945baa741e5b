"""Jellyfish Merkle tree: roots against an independent sparse-Merkle oracle, versions, pruning, ICS-23 proofs.

The oracle (`ref_root`) is a plain binary sparse Merkle tree over sha256(key), written from the hashing
rules in the module docstring and nothing else, so the 16-ary storage layout, the batch updates and the
stale-node bookkeeping are all checked against something that does not share their code. The tests use
the tree only through apply_batch / prove / root_hash / decode_node and the reads it makes, not through
how it lays nodes out.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurigrid.state import jmt
from plurigrid.state.ics23 import (
    JMT_SPEC,
    CommitmentProof,
    ExistenceProof,
    NonExistenceProof,
    decode_commitment_proof,
    encode_commitment_proof,
    verify_membership,
    verify_non_membership,
)

LEAF = b"JMT::LeafNode"
INNER = b"JMT::IntrnalNode"
EMPTY = b"SPARSE_MERKLE_PLACEHOLDER_HASH__"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def bit(digest: bytes, i: int) -> int:
    return digest[i // 8] >> (7 - i % 8) & 1


def leaf_hash(key: bytes, value: bytes) -> bytes:
    return sha(LEAF + sha(key) + sha(value))


def inner_hash(left: bytes, right: bytes) -> bytes:
    return sha(INNER + left + right)


def ref_root(pairs: dict[bytes, bytes]) -> bytes:
    """Binary sparse Merkle root: empty → placeholder, one leaf → that leaf, else inner(left half, right half)."""

    def rec(items: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not items:
            return EMPTY
        if len(items) == 1:
            kh, vh = items[0]
            return sha(LEAF + kh + vh)
        left = [it for it in items if not bit(it[0], depth)]
        right = [it for it in items if bit(it[0], depth)]
        return inner_hash(rec(left, depth + 1), rec(right, depth + 1))

    return rec(sorted((sha(k), sha(v)) for k, v in pairs.items()), 0)


def prefix_bits(digest: bytes, n: int) -> int:
    return int.from_bytes(digest, "big") >> (256 - n)


def _key_pool() -> list[bytes]:
    """Keys whose hashes collide on leading bits, so trees get deep paths, in-node binary splits and
    nibble-boundary splits, and deletes make leaves move up several levels."""
    keys = [b"key-%d" % i for i in range(10)]
    clusters = [(b"key-0", 12, 3), (b"key-1", 5, 2), (b"key-2", 4, 2), (b"key-3", 9, 1), (b"key-4", 16, 1)]
    for anchor, n, count in clusters:
        target = prefix_bits(sha(anchor), n)
        i = found = 0
        while found < count:
            k = b"c%d-%d" % (n, i)
            if prefix_bits(sha(k), n) == target:
                keys.append(k)
                found += 1
            i += 1
    return keys


POOL = _key_pool()
VALUES = [b"a", b"b", b"\x00", b"v" * 70]
ABSENT = [b"absent-1", b"absent-2", b"c12-0-absent"]

keys_st = st.sampled_from(POOL)
value_st = st.sampled_from(VALUES)
batch_st = st.dictionaries(keys_st, st.one_of(value_st, value_st, st.none()), min_size=1, max_size=12)
batches_st = st.lists(batch_st, min_size=3, max_size=10)

class MemTree:
    """A JMT over a dict of nodes, recording every version's root and the stale-node log."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, str], object] = {}
        self.roots: dict[int, jmt.Child | None] = {0: None}
        self.stale: list[tuple[int, tuple[int, str]]] = []  # (since, (version, path))
        self.version = 0
        self.reads: set[tuple[int, str]] | None = None

    def read(self, version: int, path: str):
        if self.reads is not None:
            self.reads.add((version, path))
        return self.nodes[(version, path)]

    def apply(self, writes: dict[bytes, bytes | None]) -> jmt.Update:
        version = self.version + 1
        update = jmt.apply_batch(self.read, self.roots[self.version], version, writes)
        for where, node in update.written.items():
            assert where[0] == version, "a batch writes nodes only at its own version"
            assert where not in self.nodes, "nodes are immutable: a batch never overwrites one"
            data = node.encode()
            again = jmt.decode_node(data)
            assert again.encode() == data and again.hash == node.hash
        for where in update.stale:
            assert where in self.nodes, f"stale node {where} was never stored"
            assert where[0] < version
        already = {w for _, w in self.stale}
        assert not already & set(update.stale), "a node is superseded only once"
        assert len(set(update.stale)) == len(update.stale)
        self.nodes.update(update.written)
        self.stale.extend((version, w) for w in update.stale)
        self.roots[version] = update.root
        self.version = version
        return update

    def prune(self, keep_from: int) -> None:
        """What Store.prune does with the log: drop every node superseded at or before keep_from."""
        for since, where in self.stale:
            if since <= keep_from:
                del self.nodes[where]
        self.stale = [(s, w) for s, w in self.stale if s > keep_from]

    def root(self, version: int | None = None) -> bytes:
        return jmt.root_hash(self.roots[self.version if version is None else version])

    def prove(self, version: int, key: bytes, model: dict[bytes, bytes]):
        return jmt.prove(self.read, self.roots[version], key, model.__getitem__)

    def reachable(self, version: int, model: dict[bytes, bytes]) -> set[tuple[int, str]]:
        """Stored nodes of a version: those read while proving each of its keys (every node of a
        tree lies on the path to some key)."""
        self.reads = set()
        try:
            for key in model:
                self.prove(version, key, model)
            return self.reads
        finally:
            self.reads = None


def check_proofs(tree: MemTree, version: int, model: dict[bytes, bytes], keys) -> None:
    """Each key has a verifying ICS-23 proof of the right kind that survives a protobuf round trip.

    Over every key a tree could hold, this also pins the tree's content: each is proven present with
    its value, or absent."""
    root = tree.roots[version]
    root_hash = jmt.root_hash(root)
    for key in keys:
        if root is None:
            with pytest.raises(ValueError):
                tree.prove(version, key, model)
            continue
        proof = tree.prove(version, key, model)
        wrapped = CommitmentProof(exist=proof) if isinstance(proof, ExistenceProof) else CommitmentProof(nonexist=proof)
        again = decode_commitment_proof(encode_commitment_proof(wrapped))
        assert again == wrapped
        for p in (wrapped, again):
            if key in model:
                assert isinstance(proof, ExistenceProof), key
                assert verify_membership(JMT_SPEC, root_hash, p, key, model[key]), key
                assert not verify_membership(JMT_SPEC, root_hash, p, key, model[key] + b"!")
            else:
                assert isinstance(proof, NonExistenceProof), key
                assert verify_non_membership(JMT_SPEC, root_hash, p, key), key
                assert not verify_non_membership(JMT_SPEC, sha(root_hash), p, key)


def replay(batches: list[dict[bytes, bytes | None]]) -> list[dict[bytes, bytes]]:
    """Model maps after each batch (index 0: empty)."""
    states = [{}]
    for batch in batches:
        state = dict(states[-1])
        for k, v in batch.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        states.append(state)
    return states


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(batches=batches_st, seed=st.integers(0, 2**32 - 1))
def test_root_depends_only_on_the_final_map(batches, seed):
    states = replay(batches)
    tree = MemTree()
    for batch, state in zip(batches, states[1:]):
        tree.apply(batch)
        assert tree.root() == ref_root(state)
    final = states[-1]

    one = MemTree()
    one.apply(dict(final))
    assert one.root() == tree.root()

    rng = random.Random(seed)
    order = list(final.items())
    rng.shuffle(order)
    piecewise = MemTree()
    for k, v in order:
        piecewise.apply({k: v})
    assert piecewise.root() == tree.root()

    # the same map reached through noise: absent keys written then deleted, values overwritten
    noisy = MemTree()
    noise = {k: VALUES[0] for k in POOL if k not in final}
    noisy.apply({**noise, **dict.fromkeys(final, VALUES[1])})
    noisy.apply({**dict.fromkeys(noise), **final})
    assert noisy.root() == tree.root()
    check_proofs(noisy, noisy.version, final, POOL)


@settings(max_examples=50, deadline=None)
@given(batches=batches_st, keep=st.floats(0, 1))
def test_versions_stay_readable_and_provable_until_pruned(batches, keep):
    states = replay(batches)
    tree = MemTree()
    for batch in batches:
        tree.apply(batch)

    def check(version: int) -> None:
        assert tree.root(version) == ref_root(states[version])
        check_proofs(tree, version, states[version], POOL + ABSENT)

    for version in range(tree.version + 1):
        check(version)

    keep_from = round(keep * tree.version)
    tree.prune(keep_from)
    for version in range(keep_from, tree.version + 1):
        check(version)

    # once everything before the latest is pruned, exactly the latest tree's nodes remain (no leaks)
    tree.prune(tree.version)
    assert set(tree.nodes) == tree.reachable(tree.version, states[-1])


# ---------------------------------------------------------------- known answers


def _find(pred, stem: bytes = b"k") -> bytes:
    i = 0
    while not pred(sha(stem + b"%d" % i)):
        i += 1
    return stem + b"%d" % i


def _two_key_root(a: bytes, va: bytes, b: bytes, vb: bytes) -> bytes:
    """Root of {a, b} by hand: inner(left, right) where the hashes part, padded up the shared bits."""
    ha, hb = sha(a), sha(b)
    common = next(i for i in range(256) if bit(ha, i) != bit(hb, i))
    la, lb = leaf_hash(a, va), leaf_hash(b, vb)
    node = inner_hash(la, lb) if ha < hb else inner_hash(lb, la)
    for depth in reversed(range(common)):
        node = inner_hash(EMPTY, node) if bit(ha, depth) else inner_hash(node, EMPTY)
    return node


def test_empty_tree():
    tree = MemTree()
    update = tree.apply({})
    assert update.root is None and not update.written and not update.stale
    assert tree.root() == jmt.PLACEHOLDER == EMPTY
    assert tree.apply({b"k": None}).root is None  # deleting from an empty tree leaves it empty
    with pytest.raises(ValueError):
        tree.prove(tree.version, b"k", {})


def test_single_key_known_answer():
    tree = MemTree()
    tree.apply({b"k": b"v"})
    assert tree.root() == hashlib.sha256(b"JMT::LeafNode" + sha(b"k") + sha(b"v")).digest()
    assert tree.roots[1].leaf
    proof = tree.prove(1, b"k", {b"k": b"v"})
    assert proof.path == () and proof.key == b"k" and proof.value == b"v"
    assert verify_membership(JMT_SPEC, tree.root(), CommitmentProof(exist=proof), b"k", b"v")
    assert not verify_membership(JMT_SPEC, tree.root(), CommitmentProof(exist=proof), b"k", b"w")
    # a lone leaf proves absence of every other key (as the left or right neighbour)
    absent = tree.prove(1, b"other", {b"k": b"v"})
    assert verify_non_membership(JMT_SPEC, tree.root(), CommitmentProof(nonexist=absent), b"other")


def test_two_keys_split_on_first_bit_known_answer():
    k0 = _find(lambda h: bit(h, 0) == 0)
    k1 = _find(lambda h: bit(h, 0) == 1)
    expected = hashlib.sha256(b"JMT::IntrnalNode" + leaf_hash(k0, b"x") + leaf_hash(k1, b"y")).digest()
    for order in ([(k0, b"x"), (k1, b"y")], [(k1, b"y"), (k0, b"x")]):
        tree = MemTree()
        for k, v in order:
            tree.apply({k: v})
        assert tree.root() == expected
    proof = tree.prove(tree.version, k0, {k0: b"x", k1: b"y"})
    assert len(proof.path) == 1
    assert proof.path[0].prefix == INNER and proof.path[0].suffix == leaf_hash(k1, b"y")


@pytest.mark.parametrize("shared", [1, 3, 4, 5, 8, 9, 12])
def test_two_keys_sharing_leading_bits_known_answer(shared):
    a = _find(lambda h: True, b"anchor")
    b = _find(lambda h: prefix_bits(h, shared) == prefix_bits(sha(a), shared)
              and bit(h, shared) != bit(sha(a), shared), b"b")
    tree = MemTree()
    tree.apply({a: b"1", b: b"2"})
    assert tree.root() == _two_key_root(a, b"1", b, b"2") == ref_root({a: b"1", b: b"2"})
    proof = tree.prove(1, a, {a: b"1", b: b"2"})
    assert len(proof.path) == shared + 1  # one step per shared bit, sibling the placeholder
    assert verify_membership(JMT_SPEC, tree.root(), CommitmentProof(exist=proof), a, b"1")
    # deleting one key moves the other's leaf back up to the root
    tree.apply({b: None})
    assert tree.root() == leaf_hash(a, b"1")
    assert tree.roots[2].leaf
    check_proofs(tree, 2, {a: b"1"}, [a, b])
    check_proofs(tree, 1, {a: b"1", b: b"2"}, [a, b])  # version 1 is still there
    tree.prune(2)
    assert set(tree.nodes) == tree.reachable(2, {a: b"1"})


def test_three_keys_known_answer():
    k0 = _find(lambda h: bit(h, 0) == 0)
    k10 = _find(lambda h: bit(h, 0) == 1 and bit(h, 1) == 0)
    k11 = _find(lambda h: bit(h, 0) == 1 and bit(h, 1) == 1)
    tree = MemTree()
    tree.apply({k11: b"c"})
    tree.apply({k0: b"a", k10: b"b"})
    assert tree.root() == inner_hash(leaf_hash(k0, b"a"), inner_hash(leaf_hash(k10, b"b"), leaf_hash(k11, b"c")))
    tree.apply({k10: b"B"})  # overwrite
    assert tree.root() == inner_hash(leaf_hash(k0, b"a"), inner_hash(leaf_hash(k10, b"B"), leaf_hash(k11, b"c")))
    tree.apply({k0: None})
    assert tree.root() == inner_hash(EMPTY, inner_hash(leaf_hash(k10, b"B"), leaf_hash(k11, b"c")))
    # the old versions are still there, unchanged
    assert tree.root(1) == leaf_hash(k11, b"c")
    assert tree.root(2) == inner_hash(leaf_hash(k0, b"a"), inner_hash(leaf_hash(k10, b"b"), leaf_hash(k11, b"c")))
    check_proofs(tree, 2, {k0: b"a", k10: b"b", k11: b"c"}, [k0, k10, k11, b"zz"])


def test_rewriting_the_same_value_keeps_the_root_and_writes_nothing():
    tree = MemTree()
    tree.apply(dict.fromkeys(POOL, b"v"))
    before = tree.root()
    update = tree.apply({POOL[3]: b"v"})
    assert tree.root() == before
    assert not update.written and not update.stale
    update = tree.apply({b"never-there": None})
    assert tree.root() == before and not update.written and not update.stale


def test_node_encoding_round_trip():
    tree = MemTree()
    model = {k: b"v%d" % i for i, k in enumerate(POOL)}
    update = tree.apply(model)
    # the 12-bit cluster puts internal nodes three nibbles down
    assert max(len(path) for _, path in update.written) >= 3
    # a tree read back only through decoded nodes gives the same proofs, and the same root after an update
    decoded = MemTree()
    decoded.nodes = {where: jmt.decode_node(node.encode()) for where, node in tree.nodes.items()}
    decoded.roots, decoded.version = dict(tree.roots), tree.version
    check_proofs(decoded, 1, model, POOL + ABSENT)
    change = {POOL[0]: None, POOL[11]: b"x", POOL[12]: None, b"new": b"n"}
    decoded.apply(change)
    tree.apply(change)
    assert decoded.root() == tree.root() == ref_root(replay([model, change])[-1])
