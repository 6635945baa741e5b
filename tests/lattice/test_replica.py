"""Replicated clearing: replicas reading the same log commit the same roots, equal to the simulator's."""

import json
from pathlib import Path

import pytest

from plurigrid.engine.ledger_entries import RunLedger
from plurigrid.engine.simulate import simulate
from plurigrid.engine.step import decide, observe
from plurigrid.engine.world import compile_world
from plurigrid.lattice.hashgraph import Operation
from plurigrid.lattice.replica import CLOSE, DECISION, METER, READING, Replica, decision_payload, reading_payload
from plurigrid.microworld.loader import load
from plurigrid.state.identity import Identity
from plurigrid.state.ledger import BLOCKS, LedgerError, balances, verify

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
        d = decide(replica.world, replica.state, obs, k)
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
    simulate(world, ledger=sim_ledger)
    sim_ledger.close()
    replica = Replica(_world(), _hosts(world), tmp_path / "replica")
    log = _drive(replica)
    assert replica.next_interval == world.steps and not replica.rejected
    assert all(len(c.decided) == world.n for c in replica.cleared)
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
    assert len(replica.cleared[3].decided) == world.n - 1  # the victim settled passively at interval 3
    late = Operation.create(NODES[0], DECISION, json.loads(log[0])["payload"], replica.graph.parents())
    replica.apply(late.wire)  # a decision for interval 0, long closed
    assert replica.late == 1 and replica.next_interval == world.steps
    replica.close()


def test_a_reading_settles_an_offline_interval_once_at_its_tariff(tmp_path):
    """Node 0 was offline at interval 3: its participant settled passively, then its reading corrects it once."""
    world = _world()
    hosts = _hosts(world)
    victim = world.ids[0]
    replica = Replica(world, hosts, tmp_path / "r")
    extra_wh = 1500
    ops = {}

    def extra(k):
        if k != 4:
            return []
        settled = int(replica.cleared[3].result.settlement.metered_wh[0])
        reading = Operation.create(NODES[0], READING, reading_payload(world, 3, 0, settled + extra_wh, replica.state),
                                   replica.graph.parents())
        again = Operation.create(NODES[0], READING, reading_payload(world, 3, 0, settled + 9999, replica.state), [reading.id])
        decided = Operation.create(NODES[1], READING, reading_payload(world, 3, 1, 7, replica.state), [])
        early = Operation.create(NODES[0], READING, reading_payload(world, 9, 0, 7, replica.state), [])
        forged = Operation.create(NODES[1], READING, reading_payload(world, 2, 0, 7, replica.state), [])
        ops.update(reading=reading)
        return [reading.wire, again.wire, reading.wire, decided.wire, early.wire, forged.wire]

    _drive(replica, skip=lambda k, pid: k == 3 and pid == victim, extra=extra)
    assert replica.ignored_readings == 3  # the second reading of (victim, 3), a decided participant's, an early one
    assert [reason for _, reason in replica.rejected] == ["author does not host the participant"]
    replica.close()
    blocks = [json.loads(line) for line in (tmp_path / "r" / BLOCKS).read_text().splitlines()]
    rows = [b["entries"].get("readings") for b in blocks]
    settled_in = [h for h, r in enumerate(rows) if r]
    assert settled_in == [4]  # settled in the block of interval 4, once
    price = world.import_eur_per_kwh[3]
    assert rows[4] == {"participant": [0], "interval": [3], "wh": [extra_wh], "op": [ops["reading"].id],
                       "bill_micro": [round(extra_wh / 1000 * price * 1e6)]}
    verify(tmp_path / "r")
    _, accounts = balances(tmp_path / "r")
    assert sum(a["balance_micro"] for a in accounts.values()) == 0
    net_wh = {name: a["imported_wh"] - a["exported_wh"] for name, a in accounts.items()}
    upstream_wh = net_wh.pop("grid-operator")
    losses_wh = sum(b["entries"]["grid"]["losses_wh"] for b in blocks)
    assert sum(net_wh.values()) + losses_wh == upstream_wh  # the reading's energy came from upstream too

def test_a_real_meter_settles_its_ranges_exactly_and_once(tmp_path):
    """Rule 7: a meter's ranges correct what the blocks settled to what it counted; ranges that overlap or leave a
    gap are ignored, and once metered a participant's readings are too."""
    world = _world()
    replica = Replica(world, _hosts(world), tmp_path / "r")
    counted = {(0, 2): 4000, (3, 3): -250, (4, 6): 900}  # (from, to) → Wh the register counted

    def meter(first, last, wh, author=NODES[0]):
        payload = {"interval": last, "participant": world.ids[0], "from_interval": first, "metered_wh": wh}
        return Operation.create(author, METER, payload, replica.graph.parents()).wire

    def extra(k):
        if k == 3:
            return [meter(0, 2, counted[0, 2]), meter(0, 2, 1), meter(2, 2, 1)]  # the range, then an overlap twice
        if k == 4:
            return [meter(3, 3, counted[3, 3]), meter(5, 3, 1),  # (5, 3) is malformed: from after to
                    Operation.create(NODES[0], READING, reading_payload(world, 3, 0, 1, replica.state), []).wire]
        if k == 7:
            return [meter(5, 6, 1), meter(4, 6, counted[4, 6]), meter(0, 3, 1, NODES[1])]  # a gap, the range, a stranger
        return []

    _drive(replica, extra=extra)
    assert replica.ignored_readings == 4  # two overlaps, a gap, the reading of a metered participant
    assert sorted(reason for _, reason in replica.rejected) == ["author does not host the participant", "malformed meter reading"]
    replica.close()
    blocks = [json.loads(line) for line in (tmp_path / "r" / BLOCKS).read_text().splitlines()]
    settled = [b["entries"]["meters"]["wh"][b["entries"]["meters"]["participant"].index(0)] for b in blocks]
    corrections = {h: sum(b["entries"]["readings"]["wh"]) for h, b in enumerate(blocks) if "readings" in b["entries"]}
    assert sorted(corrections) == [3, 4, 7]  # each range corrected once, in the next block
    for (first, last), wh in counted.items():
        assert sum(settled[first:last + 1]) + corrections[last + 1] == wh
    verify(tmp_path / "r")


def test_the_ledger_refuses_a_reading_settled_twice(tmp_path):
    from plurigrid.state.ledger import Ledger
    ledger = Ledger(tmp_path / "l", create=True)
    op = "ab" * 32
    ledger.append(0, "t0", {"accounts": ["a"], "grid": {"upstream_wh": 0, "losses_wh": 0}})
    row = {"participant": [0], "interval": [0], "wh": [10], "bill_micro": [3], "op": [op]}
    ledger.append(1, "t1", {"readings": row, "grid": {"upstream_wh": 0, "losses_wh": 0}})
    with pytest.raises(LedgerError, match="the reading of a for interval 0 is settled twice or is not of an earlier interval"):
        ledger.append(2, "t2", {"readings": row, "grid": {"upstream_wh": 0, "losses_wh": 0}})
    with pytest.raises(LedgerError, match="readings.op must be SHA-256 digests"):
        ledger.append(2, "t2", {"readings": row | {"op": ["AB" * 32]}, "grid": {"upstream_wh": 0, "losses_wh": 0}})
    ledger.close()


def test_history_includes_readings_so_bills_add_up_to_the_balance(tmp_path):
    from plurigrid.state.ledger import history
    world = _world()
    replica = Replica(world, _hosts(world), tmp_path / "r")

    def extra(k):
        if k != 4:
            return []
        settled = int(replica.cleared[3].result.settlement.metered_wh[0])
        return [Operation.create(NODES[0], READING, reading_payload(world, 3, 0, settled + 2000, replica.state),
                                 replica.graph.parents()).wire]

    _drive(replica, skip=lambda k, pid: k == 3 and pid == world.ids[0], extra=extra)
    replica.close()
    _, accounts = balances(tmp_path / "r")
    for account in (world.ids[0], "grid-operator"):
        rows = history(tmp_path / "r", account)
        assert -sum(r["bill_micro"] for r in rows) == accounts[account]["balance_micro"]
    assert [r.get("readings_wh") for r in history(tmp_path / "r", world.ids[0])][4] == 2000


def test_consents_land_once_per_newer_version_by_the_participants_host_only(tmp_path):
    """Rule 9: a host's `consent` lands in the next block (provable, on every replica alike); an equal or older
    version, or one from a node that does not host the participant, changes nothing."""
    from plurigrid.lattice.replica import CONSENT
    from plurigrid.state.ledger import prove

    world = _world()
    hosts = _hosts(world)
    pid = hosts[NODES[1].did][0]
    host, stranger = NODES[1], NODES[2]

    def consent(who, version, digest):
        return Operation.create(who, CONSENT, {"interval": 0, "participant": pid, "version": version, "digest": digest},
                                ()).wire
    extra = {0: [consent(host, 2, "a" * 64), consent(host, 2, "b" * 64), consent(stranger, 5, "c" * 64)],
             2: [consent(host, 1, "d" * 64), consent(host, 3, "e" * 64)]}
    replicas = [Replica(_world(), hosts, tmp_path / f"r{n}") for n in range(2)]
    log = _drive(replicas[0], extra=lambda k: extra.get(k, []))
    for data in log:
        replicas[1].apply(data)
    assert [r.root for r in replicas][0] == replicas[1].root
    assert replicas[0].ignored_consents == 2 and [reason for _, reason in replicas[0].rejected] == \
        ["author does not host the participant"]
    for r in replicas:
        r.close()
    recorded = {version: prove(tmp_path / "r0", f"consents/{pid}/{version:012d}")["value"] for version in (1, 2, 3, 5)}
    assert {v: bytes.fromhex(x).decode() if x else None for v, x in recorded.items()} == \
        {1: None, 2: "a" * 64, 3: "e" * 64, 5: None}
