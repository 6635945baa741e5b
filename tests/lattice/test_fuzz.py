"""100,000 random and mutated messages at a node: each one accepted or rejected correctly, no crash, bounded memory."""

import json
import random

from plurigrid.engine.step import decide, observe
from plurigrid.engine.world import compile_world
from plurigrid.lattice import hashgraph
from plurigrid.lattice.hashgraph import Operation
from plurigrid.lattice.replica import CLOSE, DECISION, Replica, decision_payload
from plurigrid.microworld.loader import load
from plurigrid.state.identity import Identity

MESSAGES = 100_000


def test_fuzzed_messages(tmp_path, monkeypatch):
    monkeypatch.setattr(hashgraph, "MAX_PENDING", 500)  # small bounds so the test reaches them
    monkeypatch.setattr(hashgraph, "MAX_INVALID", 2_000)
    spec, name, base = load("hello")
    world = compile_world(spec, name, base)
    host = Identity.from_seed(b"\x90" * 32)
    stranger = Identity.from_seed(b"\x91" * 32)
    replica = Replica(world, {host.did: tuple(world.ids)}, tmp_path / "ledger")
    rng = random.Random(2026)
    d = decide(world, replica.state, observe(world, replica.state, 0), 0)
    valid = [Operation.create(host, DECISION, decision_payload(world, d, 0, i), []) for i in range(world.n)]
    templates = [op.wire for op in valid]
    expected_accepted = 0
    for n in range(MESSAGES):
        roll = rng.random()
        if roll < 0.3:  # random bytes
            data = rng.randbytes(rng.randrange(0, 300))
        elif roll < 0.6:  # a valid operation with bytes flipped, cut or grown
            data = bytearray(rng.choice(templates))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[: rng.randrange(len(data) + 1)]) if rng.random() < 0.3 else bytes(data)
        elif roll < 0.7:  # well signed, but from a node that hosts nobody, or for an impossible interval
            payload = dict(json.loads(rng.choice(templates))["payload"])
            author = stranger
            if rng.random() < 0.5:
                author, payload["interval"] = host, world.steps + rng.randrange(5)
            data = Operation.create(author, DECISION, payload, []).wire
        elif roll < 0.8:  # well signed on predecessors nobody has: waits, within the pending bound
            data = Operation.create(host, DECISION, json.loads(rng.choice(templates))["payload"],
                                    [rng.randbytes(32).hex()]).wire
        elif roll < 0.95:  # replays of accepted operations
            data = rng.choice(templates)
        else:  # a genuinely new valid decision for an open interval
            payload = dict(json.loads(rng.choice(templates))["payload"], battery_kw=float(n))
            data = Operation.create(host, DECISION, payload, []).wire
            expected_accepted += 1
        replica.apply(data)  # never raises
    # exactly the original decisions (replayed, so delivered once each) and the genuinely new ones
    delivered = {op.wire for op in replica.graph.ops.values()}
    assert set(templates) <= delivered
    assert len(delivered) == len(templates) + expected_accepted
    assert len(replica.graph._pending) <= 500 and len(replica.graph.invalid) <= 2_000
    assert len(replica.graph._waiting_on) <= 500 * hashgraph.MAX_PREDS
    replica.apply(Operation.create(host, CLOSE, {"interval": 0}, replica.graph.parents()).wire)
    assert replica.next_interval == 1  # still clears after the flood
    replica.close()
