"""Signed hash graph: forgeries and malformed input are rejected, delivery is causal, honest nodes converge."""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurigrid.lattice import hashgraph
from plurigrid.lattice.hashgraph import MAX_OP_BYTES, HashGraph, Operation, Rejected, parse, sync
from plurigrid.state.identity import (
    Identity,
    IdentityError,
    b58decode,
    b58encode,
    did_of,
    public_key_of,
    verify,
)

ALICE, BOB, MALLORY = (Identity.from_seed(bytes([n]) * 32) for n in (1, 2, 3))


def test_did_key_matches_published_vectors():
    # RFC 8032 test 1: the seed gives this public key; did:key is multicodec 0xed01 + base58btc
    rfc = Identity.from_seed(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert rfc.public_key.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert public_key_of(rfc.did) == rfc.public_key
    # a did:key with its base58 public key as published by the DIF web-node fixtures
    assert did_of(b58decode("HrBXe7XnjMbscM1roSDTSMCcLNraetDQM9wSVjnzDxn3")) == \
        "did:key:z6MkwJSaEMnE4u6LiqrZV1BJHSkc9x8S4mTm3ArNL1m19BZR"
    assert b58encode(b"\0\0\x01") == "112" and b58decode("112") == b"\0\0\x01"


def test_signatures_verify_only_for_their_author_and_message():
    sig = ALICE.sign(b"order")
    assert verify(ALICE.did, sig, b"order")
    assert not verify(BOB.did, sig, b"order")
    assert not verify(ALICE.did, sig, b"order!")
    assert not verify("did:key:zNotAKey", sig, b"order")
    with pytest.raises(IdentityError, match="is not a did:key identifier"):
        public_key_of("did:web:example.com")


def test_identity_persists_with_private_permissions(tmp_path):
    path = tmp_path / "node" / "identity.key"
    first = Identity.load_or_create(path)
    assert Identity.load_or_create(path).did == first.did
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_bytes(b"short")
    with pytest.raises(IdentityError, match="expected a 32-byte Ed25519 seed, found 5 bytes"):
        Identity.load_or_create(path)


def _op(identity, kind="order", payload=None, preds=()):
    return Operation.create(identity, kind, payload or {"wh": 100}, preds)


def _forged(op: Operation, **changes) -> bytes:
    raw = json.loads(op.wire)
    raw.update(changes)
    return json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("mutate, reason", [
    (lambda op: _forged(op, payload={"wh": 1_000_000}), "bad signature"),  # altered after signing
    (lambda op: _forged(op, author=BOB.did), "bad signature"),  # attributed to someone else
    (lambda op: _forged(op, signature=MALLORY.sign(op.signed_bytes).hex()), "bad signature"),
    (lambda op: _forged(op, signature="zz"), "malformed"),
    (lambda op: _forged(op, signature=op.signature.upper()), "malformed"),  # same signature, another spelling
    (lambda op: op.wire[:-1], "malformed"),
    (lambda op: op.wire.replace(b":", b": ", 1), "malformed"),  # not canonical
    (lambda op: _forged(op, preds=["00" * 32, "00" * 32]), "malformed"),
    (lambda op: _forged(op, extra=1), "malformed"),
    (lambda op: b"\xff\xfe", "malformed"),
    (lambda op: b"{" + b" " * MAX_OP_BYTES + b"}", "oversized"),
])
def test_forged_and_malformed_operations_are_rejected(mutate, reason):
    graph = HashGraph()
    result = graph.add_wire(mutate(_op(ALICE)))
    assert [r for _, r in result.rejected] == [reason]
    assert not graph.ops and not graph.heads
    with pytest.raises(Rejected) as err:
        parse(mutate(_op(ALICE)))
    assert err.value.reason == reason


def test_replay_is_delivered_once():
    graph = HashGraph()
    op = _op(ALICE)
    assert len(graph.add_wire(op.wire).delivered) == 1
    again = graph.add_wire(op.wire)
    assert again.duplicate and not again.delivered
    assert graph.order == [op.id]


def test_delivery_waits_for_predecessors_and_is_causal():
    a = _op(ALICE)
    b = _op(BOB, preds=[a.id])
    c = _op(ALICE, preds=[b.id])
    graph = HashGraph()
    assert graph.add_wire(c.wire).waiting
    assert graph.missing() == {b.id}
    assert graph.add_wire(b.wire).waiting
    assert graph.missing() == {a.id}
    delivered = graph.add_wire(a.wire).delivered
    assert [op.id for op in delivered] == [a.id, b.id, c.id]
    assert graph.heads == {c.id} and not graph.missing()


def test_invalid_operations_and_their_descendants_are_rejected_everywhere():
    def only_small_orders(op, graph):
        return "too large" if op.payload.get("wh", 0) > 1000 else None

    big = _op(MALLORY, payload={"wh": 5000})
    child = _op(ALICE, preds=[big.id])
    for arrival in ([big, child], [child, big]):
        graph = HashGraph(validator=only_small_orders)
        rejected = []
        for op in arrival:
            rejected += graph.add_wire(op.wire).rejected
        assert dict(rejected) == {big.id: "too large", child.id: "invalid predecessor"}
        assert not graph.ops and not graph.missing()


def test_equivocation_is_kept_and_converges():
    """A node that signs two conflicting operations on the same past: both are kept, everywhere alike."""
    base = _op(ALICE)
    left, right = _op(MALLORY, payload={"wh": 1}, preds=[base.id]), _op(MALLORY, payload={"wh": 2}, preds=[base.id])
    one, two = HashGraph(), HashGraph()
    for op in (base, left, right):
        one.add(op)
    for op in (base, right, left):
        two.add(op)
    assert one.heads == two.heads == {left.id, right.id}
    assert one.topological() == two.topological()


def test_graph_survives_restart(tmp_path):
    path = tmp_path / "graph.sqlite"
    graph = HashGraph(path)
    first = graph.create(ALICE, "meter", {"wh": 5})
    second = graph.create(ALICE, "order", {"wh": 7})
    graph.close()
    reopened = HashGraph(path)
    assert reopened.order == [first.id, second.id] and reopened.heads == {second.id}
    assert second.preds == (first.id,)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nodes=st.integers(2, 4), steps=st.integers(5, 40))
def test_nodes_converge_on_the_same_graph_and_order(seed, nodes, steps):
    rng = random.Random(seed)
    ids = [Identity.from_seed(bytes([n + 10]) * 32) for n in range(nodes)]
    graphs = [HashGraph() for _ in range(nodes)]
    for _ in range(steps):
        if rng.random() < 0.6:
            n = rng.randrange(nodes)
            graphs[n].create(ids[n], "order", {"wh": rng.randrange(1000)})
        else:
            i, j = rng.sample(range(nodes), 2)
            sync(graphs[i], graphs[j])
    for _ in range(2):  # a ring of syncs twice reaches everyone
        for i in range(nodes):
            sync(graphs[i], graphs[(i + 1) % nodes])
    reference = graphs[0]
    for g in graphs[1:]:
        assert set(g.ops) == set(reference.ops)
        assert g.heads == reference.heads
        assert g.topological() == reference.topological()
    for g in graphs:  # every node delivered causally
        position = {op_id: k for k, op_id in enumerate(g.order)}
        assert all(position[p] < position[i] for i in g.order for p in g.ops[i].preds)


def test_many_concurrent_heads_are_folded_in_within_the_preds_limit():
    graph = HashGraph()
    writers = [Identity.from_seed(bytes([100 + n]) * 32) for n in range(100)]
    for w in writers:  # 100 concurrent operations: 100 heads
        graph.add(Operation.create(w, "order", {"wh": 1}, []))
    assert len(graph.heads) == 100
    first = graph.create(ALICE, "close", {})
    assert len(first.preds) == hashgraph.NEW_PREDS and len(graph.heads) == 100 - hashgraph.NEW_PREDS + 1
    ops = [first]
    while len(graph.heads) > 1:  # each new operation folds in NEW_PREDS heads and adds itself
        ops.append(graph.create(ALICE, "close", {"n": len(ops)}))
        assert len(ops[-1].preds) <= hashgraph.NEW_PREDS
    assert len(ops) == 15 and graph.heads == {ops[-1].id}
    assert len(graph.ancestors(ops[-1].id)) == 100 + len(ops) - 1  # every concurrent operation is in its past
