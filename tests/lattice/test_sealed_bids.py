"""Sealed bids (replica rule 8): decisions committed as hashes before the gate closes, revealed after it; the same
ledger as open clearing when everyone reveals, tariff for whoever does not, and nothing counts out of turn."""

import json
import subprocess
import sys

from plurigrid.engine.ledger_entries import RunLedger
from plurigrid.engine.simulate import simulate
from plurigrid.engine.step import decide, observe
from plurigrid.lattice.hashgraph import Operation
from plurigrid.lattice.replica import CLOSE, COMMIT, DECISION, REVEAL, UNSEAL, Replica, commitment, decision_payload
from tests.lattice.test_replica import NODES, _hosts, _roots, _world


def _op(node, kind, payload, replica):
    return Operation.create(node, kind, payload, replica.graph.parents()).wire


def _drive_sealed(replica: Replica, withhold=frozenset(), tamper=frozenset(), before_close=lambda k: [],
                  after_unseal=lambda k: []) -> None:
    """Every node's part, sealed: commits, close, reveals (but for `withhold`; `tamper`ed ones changed), unseal."""
    who = {node.did: node for node in NODES}
    for k in range(replica.world.steps):
        obs = observe(replica.world, replica.state, k)
        d = decide(replica.world, replica.state, obs, k)
        rows = {}
        for did, pids in replica.hosts.items():
            for pid in pids:
                i = replica.world.ids.index(pid)
                rows[pid] = (who[did], decision_payload(replica.world, d, k, i), f"{k:08x}{i:024x}")
        for pid, (node, row, salt) in rows.items():
            replica.apply(_op(node, COMMIT, {"interval": k, "participant": pid, "digest": commitment(row, salt)}, replica))
        for data in before_close(k):
            replica.apply(data)
        replica.apply(_op(NODES[k % 3], CLOSE, {"interval": k}, replica))
        assert replica.next_interval == k and replica.gate_closed(k)  # the close fixes the commitments, clears nothing
        for pid, (node, row, salt) in rows.items():
            if pid in withhold:
                continue
            if pid in tamper:
                row = row | {"bid_eur_per_kwh": row["bid_eur_per_kwh"] + 0.01}  # a bid changed after seeing the others
            replica.apply(_op(node, REVEAL, row | {"salt": salt}, replica))
        replica.apply(_op(NODES[(k + 1) % 3], UNSEAL, {"interval": k}, replica))
        assert replica.next_interval == k + 1
        for data in after_unseal(k):
            replica.apply(data)


def test_sealed_clearing_gives_the_open_ledger_when_everyone_reveals(tmp_path):
    world = _world("residential")
    sim = RunLedger(tmp_path / "sim")
    simulate(world, ledger=sim)
    sim.close()
    replica = Replica(_world("residential"), _hosts(world), tmp_path / "sealed", sealed=True)
    _drive_sealed(replica)
    assert not replica.rejected and replica.ignored_reveals == 0
    assert all(len(c.decided) == world.n and c.unrevealed == 0 for c in replica.cleared)
    replica.close()
    assert _roots(tmp_path / "sealed") == _roots(tmp_path / "sim")


def test_unrevealed_and_altered_bids_settle_at_tariff_and_out_of_turn_messages_count_for_nothing(tmp_path):
    world = _world("residential")
    replica = Replica(world, _hosts(world), tmp_path / "sealed", sealed=True)
    who = {pid: node for node in NODES for pid in _hosts(world)[node.did]}

    def early(k):  # a reveal before the close, which would let the others react to it
        row = {"interval": k, "participant": "home05", "trades": True, **dict.fromkeys(
            ("battery_kw", "ev_kw", "hvac_kw", "shift_kw", "serve_kw", "bid_eur_per_kwh", "ask_eur_per_kwh"), 0.0)}
        return [_op(who["home05"], REVEAL, row | {"salt": "0" * 32}, replica)]

    def late(k):
        return [_op(who["home07"], COMMIT, {"interval": k, "participant": "home07", "digest": "a" * 64}, replica)]

    _drive_sealed(replica, withhold={"home02"}, tamper={"home03"}, before_close=early, after_unseal=late)
    steps = world.steps
    i2, i3, i5 = (world.ids.index(p) for p in ("home02", "home03", "home05"))
    for c in replica.cleared:
        assert c.decided == frozenset(range(world.n)) - {i2, i3} and c.unrevealed == 2
        st = c.result.settlement  # those two act passively and pay exactly the tariff for what they metered
        assert st.bill_micro[i2] == st.baseline_micro[i2] and st.bill_micro[i3] == st.baseline_micro[i3]
        assert i5 in c.decided
    assert replica.ignored_reveals == 2 * steps  # the early reveal and the altered one, every interval
    assert sum(c.late for c in replica.cleared) == steps - 1  # the commitment after the unseal of each interval
    replica.close()


def test_the_rules_refuse_the_wrong_kind_for_the_lattice(tmp_path):
    world = _world()
    pid = world.ids[0]
    node = next(n for n in NODES if pid in _hosts(world)[n.did])
    sealed = Replica(world, _hosts(world), tmp_path / "s", sealed=True)
    row = {"interval": 0, "participant": pid, "trades": False, **dict.fromkeys(
        ("battery_kw", "ev_kw", "hvac_kw", "shift_kw", "serve_kw", "bid_eur_per_kwh", "ask_eur_per_kwh"), 0.0)}
    sealed.apply(_op(node, DECISION, row, sealed))
    sealed.apply(_op(node, COMMIT, {"interval": 0, "participant": pid, "digest": "XYZ"}, sealed))
    sealed.apply(_op(node, REVEAL, row | {"salt": "short"}, sealed))
    assert [why for _, why in sealed.rejected] == ["sealed-bid lattice: decisions are committed, then revealed",
                                                   "malformed commit", "malformed reveal"]
    sealed.close()
    open_ = Replica(_world(), _hosts(world), tmp_path / "o")
    open_.apply(_op(node, UNSEAL, {"interval": 0}, open_))
    open_.apply(_op(node, COMMIT, {"interval": 0, "participant": pid, "digest": "a" * 64}, open_))
    assert [why for _, why in open_.rejected] == ["not a sealed-bid lattice"] * 2
    open_.close()


def test_lattice_up_with_sealed_bids_commits_the_open_lattice_s_roots(tmp_path):
    reports = []
    for flag in ([], ["--sealed-bids"]):
        res = subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "lattice", "up", "--nodes", "3", "--microworld",
                              "residential", "--intervals", "8", "--json", *flag], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        reports.append(json.loads(res.stdout))
    open_, sealed = reports
    assert sealed["agreed"] and sealed["settled_intervals"] == 8 and sealed["missing_decisions"] == 0
    assert sealed["state_roots"] == open_["state_roots"]
    assert sealed["messages"] > open_["messages"]  # a commit and a reveal for every decision, and an unseal
    assert sealed["money_residual_micro"] == 0


def test_genesis_carries_the_rule_and_keeps_earlier_ids(tmp_path):
    import pytest

    from plurigrid.lattice.genesis import Genesis, GenesisError, Member

    members = tuple(Member(f"n{i}", node.did, (f"p{i}",)) for i, node in enumerate(NODES))
    open_, sealed = Genesis("hello", members), Genesis("hello", members, sealed_bids=True)
    assert "sealed_bids" not in open_.to_json() and open_.id != sealed.id  # a sealed lattice has a log of its own
    sealed.save(tmp_path / "genesis.json")
    assert Genesis.load(tmp_path / "genesis.json") == sealed
    with pytest.raises(GenesisError, match="^g: sealed_bids must be true or false$"):
        Genesis.from_json(sealed.to_json() | {"sealed_bids": "yes"}, "g")
