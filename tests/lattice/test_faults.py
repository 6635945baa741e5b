"""Chaos runs of 12 intervals: whatever fails, every honest node ends on the same root and nothing is lost."""

import asyncio
import json
import re
import sqlite3

import pytest

from plurigrid.lattice.faults import FaultError, parse_fault
from plurigrid.node.launcher import run_lattice
from plurigrid.state.ledger import BLOCKS
from tests.lattice.test_transport import nats_server_binary  # noqa: F401  (fixture)

INTERVALS = 12
# gates 0.3 s apart (15-min intervals): a node back from a partition has its readings taken in time for a block of
# the run; unpaced, the other nodes can race through the last intervals before it has reconnected
SETTLE_SPEED = 3000


def _honest_agree(report: dict, honest: int) -> None:
    assert report["agreed"], report
    assert len(report["state_roots"]) == honest and len(set(report["state_roots"].values())) == 1
    assert report["settled_intervals"] == INTERVALS and report["lost_settlements"] == 0
    assert report["energy_residual_wh"] == 0 and report["money_residual_micro"] == 0


@pytest.mark.parametrize("faults, honest, check", [
    (["kill:1@3", "restart:1@7"], 3, lambda r: r["missing_decisions"] > 0),  # node 1's participants acted passively
    (["kill:0@4"], 2, lambda r: r["missing_decisions"] > 0),
    (["partition:2@2-5"], 3, lambda r: r["missing_decisions"] > 0),
    (["byzantine:1"], 2, lambda r: r["rejected_messages"] > 0),  # forged, malformed and oversized are refused
])
def test_inproc_faults(faults, honest, check):
    report = asyncio.run(run_lattice("hello", 3, INTERVALS, "inproc", close_after_s=0.5, faults=faults))
    _honest_agree(report, honest)
    assert report["faults_applied"] == sorted(faults, key=lambda f: ("byzantine" not in f, f))
    assert check(report)


@pytest.mark.parametrize("faults, honest, check", [
    (["kill:1@3", "restart:1@7"], 3, lambda r: r["missing_decisions"] > 0),  # a real SIGKILL of node 1's process
    (["partition:2@3-6"], 3, lambda r: r["offline_intervals"] > 0 and r["readings_settled"] > 0),  # relays cut
    (["nats-kill:2@3", "nats-restart:2@8"], 3, None),  # a node on server 2 may briefly run locally: settled too
    (["byzantine:1"], 2, lambda r: r["rejected_messages"] > 0),
])
def test_nats_faults_with_node_processes(nats_server_binary, faults, honest, check):  # noqa: F811
    """Each node is its own OS process on a 3-server JetStream cluster."""
    report = asyncio.run(run_lattice("offgrid-battery-sharing", 3, INTERVALS, "nats", "auto", close_after_s=1.0,
                                     faults=faults))
    _honest_agree(report, honest)
    assert report["faults_applied"] == sorted(faults, key=lambda f: ("byzantine" not in f, f))
    assert check is None or check(report), report


@pytest.mark.parametrize("spec, message", [
    ("explode:1@2", "is not KIND:TARGET@I[-J]"),
    ("kill:5@2", "nodes are 0..2"),
    ("partition:1@4", "a partition needs @I-J with J >= I"),
    ("kill:1", "say when, e.g. kill:1@3"),
    ("nats-kill:1@2", "NATS servers are 1..0"),
])
def test_bad_fault_specs(spec, message):
    with pytest.raises(FaultError, match=re.escape(message)):
        parse_fault(spec, 3, 0)


def test_offline_node_settles_its_local_intervals_once(tmp_path):
    """Cut off for intervals 3..7, node 1 runs its batteries on self-consumption and records every interval in its
    outbox; back online, each of those participant-intervals is settled by its reading exactly once."""
    report = asyncio.run(run_lattice("offgrid-battery-sharing", 3, INTERVALS, "inproc", data_dir=tmp_path,
                                     close_after_s=0.5, faults=["partition:1@3-7"], speed=SETTLE_SPEED))
    _honest_agree(report, 3)
    assert report["offline_intervals"] >= 5
    blocks = [json.loads(line) for line in (tmp_path / "node-0" / "ledger" / BLOCKS).read_text().splitlines()]
    settled = [(p, k) for b in blocks for p, k in zip(b["entries"].get("readings", {}).get("participant", []),
                                                        b["entries"].get("readings", {}).get("interval", []))]
    assert len(settled) == len(set(settled)) == report["readings_settled"]  # each reading once
    hosted = {1, 4, 7}  # node 1's participants (dealt round-robin)
    assert {p for p, _ in settled} == hosted and {3, 4, 5, 6, 7} <= {k for _, k in settled}
    corrections = [wh for b in blocks for wh in b["entries"].get("readings", {}).get("wh", [])]
    assert any(corrections), "self-consumption should meter differently from the passive settlement"
    outbox = sqlite3.connect(tmp_path / "node-1" / "outbox.sqlite")
    records, settled_records = outbox.execute("SELECT COUNT(*), SUM(settled) FROM records").fetchone()
    assert records == settled_records >= len(settled)  # each settled by its reading or, if it made a cut, by the market
