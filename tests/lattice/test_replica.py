"""Replicated clearing: replicas reading the same log commit the same roots, equal to the simulator's."""

import json
from pathlib import Path

import pytest

from plurigrid.engine.ledger_entries import RunLedger
from plurigrid.engine.simulate import simulate
from plurigrid.engine.step import decide, observe
from plurigrid.engine.world import compile_world
from plurigrid.lattice.hashgraph import Operation
from plurigrid.lattice.identity import Identity
from plurigrid.lattice.replica import CLOSE, DECISION, Replica, decision_payload
from plurigrid.microworld.loader import load
from plurigrid.state.ledger import BLOCKS

NODES = [Identity.from_seed(bytes([70 + n]) * 32) for n in range(3)]


def _world(name="hello"):
    spec, n, base = load(name)
    return compile_world(spec, n, base)


def _hosts(world) -> dict[str, tuple[str, ...]]:
    return {node.did: tuple(world.ids[n::len(NODES)]) for n, node in enumerate(NODES)}


def _roots(ledger_dir: Path) -> list[str]:
    return [json.loads(line)["header"]["state_root"] for line in (ledger_dir / BLOCKS).read_text().splitlines()]


def _drive(replica: Replica, skip=lambda k, pid: False, extra=lambda k: []) -> list[bytes]:
    """Plays every node's part: for each interval, publish each hosted participant's decision, then close."""
    log: list[bytes] = []
    host_identity = {node.did: node for node in NODES}
    for k in range(replica.world.steps):
        obs = observe(replica.world, replica.state, k)
        d = decide(replica.world, obs, k)
        entries = []
        for did, pids in replica.hosts.items():
            for pid in pids:
                if skip(k, pid):
                    continue
                i = replica.world.ids.index(pid)
                op = Operation.create(host_identity[did], DECISION, decision_payload(replica.world, d, k, i),
                                      replica.graph.parents())
                entries.append(op.wire)
        entries += extra(k)
        entries.append(Operation.create(NODES[k % len(NODES)], CLOSE, {"interval": k}, replica.graph.parents()).wire)
        for data in entries:
            replica.apply(data)
        log += entries
    return log


def test_replica_equals_the_simulator(tmp_path):
    world = _world()
    sim_ledger = RunLedger(tmp_path / "sim")
    simulate(world, after_step=sim_ledger)
    sim_ledger.close()
    replica = Replica(_world(), _hosts(world), tmp_path / "replica")
    log = _drive(replica)
    assert replica.next_interval == world.steps and not replica.rejected
    assert all(c.decided == world.n for c in replica.cleared)
    replica.close()
    assert _roots(tmp_path / "replica") == _roots(tmp_path / "sim")
    # a second replica reading the same log (as a node catching up would) gets the same roots
    other = Replica(_world(), _hosts(world), tmp_path / "other")
    for data in log:
        other.apply(data)
    other.close()
    assert _roots(tmp_path / "other") == _roots(tmp_path / "sim")


def test_missing_late_forged_and_foreign_decisions(tmp_path):
    world = _world()
    hosts = _hosts(world)
    mallory = Identity.from_seed(b"\x7f" * 32)
    victim = world.ids[0]

    def extra(k):  # mallory speaks for a participant it does not host; a forged copy of a real op
        wire = []
        if k == 2:
            wire.append(Operation.create(mallory, DECISION, {"interval": k, "participant": victim, "battery_kw": 0.0,
                                                             "ev_kw": 0.0, "hvac_kw": 0.0, "shift_kw": 0.0,
                                                             "serve_kw": 0.0, "bid_eur_per_kwh": 9.0,
                                                             "ask_eur_per_kwh": 0.0, "trades": True}, []).wire)
            wire.append(b'{"author":"did:key:zX","kind":"close","payload":{"interval":2},"preds":[],"signature":"00"}')
        return wire

    replica = Replica(world, hosts, tmp_path / "r")
    log = _drive(replica, skip=lambda k, pid: k == 3 and pid == victim, extra=extra)
    reasons = sorted(reason for _, reason in replica.rejected)
    assert reasons == ["author does not host the participant", "bad signature"]
    assert replica.cleared[3].decided == world.n - 1  # the victim settled passively at interval 3
    late = Operation.create(NODES[0], DECISION, json.loads(log[0])["payload"], replica.graph.parents())
    replica.apply(late.wire)  # a decision for interval 0, long closed
    assert replica.late == 1 and replica.next_interval == world.steps
    replica.close()
