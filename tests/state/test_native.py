"""The native tree against the pure-Python reference tree: the same roots and the same proof bytes on random
workloads (small batches and large ones, which the native tree splits over two threads); the native
canonical JSON against the standard encoder; the batch encoding."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurigrid.state import _native, jmt
from plurigrid.state.ics23 import CommitmentProof, ExistenceProof, encode_commitment_proof
from plurigrid.state.store import proof_of


class Reference:
    """The pure-Python tree (`jmt`) over an in-memory node map, one version per batch."""

    def __init__(self) -> None:
        self.nodes: dict = {}
        self.root = None
        self.version = 0
        self.values: dict[bytes, bytes] = {}

    def apply(self, writes: dict[bytes, bytes | None]) -> None:
        self.version += 1
        update = jmt.apply_batch(lambda v, p: self.nodes[(v, p)], self.root, self.version, writes)
        self.nodes.update(update.written)
        self.root = update.root
        for k, v in writes.items():
            if v is None:
                self.values.pop(k, None)
            else:
                self.values[k] = v

    def proof(self, key: bytes) -> CommitmentProof:
        proof = jmt.prove(lambda v, p: self.nodes[(v, p)], self.root, key, self.values.__getitem__)
        return CommitmentProof(exist=proof) if isinstance(proof, ExistenceProof) else CommitmentProof(nonexist=proof)


def run_workload(rng: random.Random, n_keys: int, batches: int, batch_size: int, delete_share: float) -> None:
    keys = [b"accounts/%d" % rng.randrange(10**9) for _ in range(n_keys)]
    ref, tree = Reference(), _native.Tree()
    for _ in range(batches):
        writes: dict[bytes, bytes | None] = {}
        for _ in range(batch_size):
            key = rng.choice(keys)
            writes[key] = None if rng.random() < delete_share else rng.choice([b"same", rng.randbytes(rng.randrange(1, 90))])
        ref.apply(writes)
        previous, previous_len = tree.root(), len(tree)
        tree.update(writes)
        assert tree.root() == jmt.root_hash(ref.root)
        assert len(tree) == len(ref.values) and tree.state_bytes == sum(len(k) + len(v) for k, v in ref.values.items())
        if rng.random() < 0.3:  # a revert restores the root, and a revert of the revert the new one
            after = tree.root()
            tree.revert()
            assert tree.root() == previous and len(tree) == previous_len
            tree.revert()
            assert tree.root() == after
    assert tree.items() == sorted(ref.values.items())
    if ref.values:
        for key in rng.sample(keys, min(len(keys), 40)) + [b"absent/%d" % i for i in range(8)]:
            assert encode_commitment_proof(proof_of(tree, key, ref.version)) == encode_commitment_proof(ref.proof(key)), key
    rebuilt = _native.Tree()
    rebuilt.apply(tree.encode())  # a checkpoint rebuilds the same tree
    assert rebuilt.root() == tree.root() and rebuilt.items() == tree.items()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_keys=st.sampled_from([1, 2, 3, 17, 200]), batches=st.integers(1, 6),
       batch_size=st.integers(1, 60), delete_share=st.sampled_from([0.0, 0.2, 0.6]))
def test_small_workloads_match_the_reference(seed, n_keys, batches, batch_size, delete_share):
    run_workload(random.Random(seed), n_keys, batches, batch_size, delete_share)


@pytest.mark.parametrize("seed", range(3))
def test_large_batches_match_the_reference_on_two_threads(seed):
    run_workload(random.Random(seed), 30_000, 3, 12_000, 0.1)


def test_one_thread_and_two_give_the_same_tree():
    rng = random.Random(7)
    keys = [b"k%d" % i for i in range(20_000)]
    values = [rng.randbytes(30) for _ in keys]
    trees = []
    for threads in (1, 2):
        before = _native.set_threads(threads)
        try:
            tree = _native.Tree()
            tree.update(dict(zip(keys, values)))
            tree.update(dict.fromkeys(keys[::3]))
            trees.append(tree)
        finally:
            _native.set_threads(before)
    assert trees[0].root() == trees[1].root() and trees[0].items() == trees[1].items()


def test_a_batch_may_not_write_a_key_twice_nor_an_empty_value():
    tree = _native.Tree()
    twice = _native.encode_batch({b"a": b"1"})[4:]
    with pytest.raises(ValueError, match="same key twice"):
        tree.apply(b"\x02\x00\x00\x00" + twice + twice)
    with pytest.raises(ValueError, match="non-empty"):
        tree.update({b"a": b""})
    assert len(tree) == 0 and tree.root() == jmt.PLACEHOLDER
    with pytest.raises(ValueError, match="nothing to revert"):
        tree.revert()


def test_batches_round_trip_and_corrupt_ones_are_refused():
    writes = {b"a": b"1", b"bb": None, b"c": b""}
    blob = _native.encode_batch(writes)
    assert _native.decode_batch(blob) == list(writes.items())
    for cut in range(len(blob)):
        with pytest.raises(ValueError, match="not a write batch"):
            _native.decode_batch(blob[:cut])
    with pytest.raises(ValueError, match="not a write batch"):
        _native.decode_batch(blob + b"x")
    with pytest.raises(ValueError, match="no empty values"):
        _native.Tree().apply(blob)  # the side space may hold empty values, a tree may not


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_canonical_json_is_the_standard_encoders_bytes(value):
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert _native.canonical_json(value) == expected


def test_canonical_json_writes_int64_arrays_as_lists_and_refuses_floats():
    column = np.array([0, -1, 2**62, -(2**63)], dtype=np.int64)
    value = {"b": column, "a": [1, None, "x\n\u2028\x7f\x00é"]}
    assert _native.canonical_json(value) == json.dumps(
        {"b": column.tolist(), "a": value["a"]}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    for bad in (1.5, {"a": np.zeros(2)}, {1: 2}):
        with pytest.raises(TypeError):
            _native.canonical_json(bad)


def test_format_rows_writes_each_row_of_int64_columns():
    a, b = np.array([1, -20, 3], dtype=np.int64), np.array([0, 5, -(2**63)], dtype=np.int64)
    assert _native.format_rows([b"{", b",", b"}"], [a, b]) == [b"{1,0}", b"{-20,5}", b"{3,-9223372036854775808}"]
    with pytest.raises(ValueError):
        _native.format_rows([b"x"], [a])
    with pytest.raises(TypeError):
        _native.format_rows([b"", b""], [a.astype(float)])
