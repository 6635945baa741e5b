"""A node process SIGKILLed mid-run: its replica ledger is a signed prefix that continues, its outbox reopens whole.

The process runs an in-process lattice of three nexus nodes (forked from this process once everything is
imported), with node 1 cut off for a few intervals so that its outbox fills; it is killed at seeded
random moments after its first block. A replica's ledger is not fsynced (it is rebuilt from the log after a restart), yet what a
killed process leaves must verify: each node's blocks signed by that node's own key, the same headers on
every node as far as both got, conserved at their height, and appendable on reopen. The outbox, a SQLite
file written a record per transaction, must reopen with every record whole and every stored reading a
valid operation signed by its node for that record.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

from plurigrid.lattice.hashgraph import parse
from plurigrid.lattice.replica import READING
from plurigrid.node.launcher import node_identity, run_lattice
from plurigrid.node.outbox import Outbox
from plurigrid.state import ledger as L
from plurigrid.state.blocklog import BlockLog

SEED = 4242
KILLS = 4
NODES = 3
INTERVALS = 10
FAULTS = ["partition:1@2-5"]


def _lattice(folder: Path) -> dict:
    return asyncio.run(run_lattice("offgrid-battery-sharing", NODES, INTERVALS, "inproc", data_dir=folder,
                                   close_after_s=0.5, faults=FAULTS))


def _killed_at(folder: Path, delay_s: float) -> bool:
    """Runs the lattice in a forked process and SIGKILLs it `delay_s` after node 0 committed its first block;
    whether it was still running."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _lattice(folder)
            code = 0
        finally:
            os._exit(code)
    blocks = folder / "node-0" / "ledger" / L.BLOCKS
    deadline = time.monotonic() + 120
    done, status = os.waitpid(pid, os.WNOHANG)
    while not done and not (blocks.is_file() and blocks.stat().st_size):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("no block within 120 s")
        time.sleep(0.01)
        done, status = os.waitpid(pid, os.WNOHANG)
    if not done:
        time.sleep(delay_s)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, status
    return os.WIFSIGNALED(status)


def _check_ledgers(root: Path, killed: bool) -> int:
    """Checks every node's replica ledger; returns the height the furthest one reached."""
    headers = {}
    for i in range(NODES):
        folder = root / f"node-{i}" / "ledger"
        if not (BlockLog.exists(folder) or (folder / L.STATE).is_file()):
            continue
        identity = node_identity(i)
        verdict = L.check(folder, expect_signer=identity.did)
        assert verdict.prefix == killed or verdict.head.height == INTERVALS
        headers[i] = [json.loads(line)["header"] for line in BlockLog(folder, writable=False).lines()]
        assert len(headers[i]) == verdict.head.height
        if verdict.head.height:
            height, accounts = L.balances(folder)
            assert sum(a["balance_micro"] for a in accounts.values()) == 0
        reopened = L.Ledger(folder, durable=False, signer=identity)
        assert reopened.height == verdict.head.height
        reopened.append(INTERVALS + 1, "t", {"grid": {"upstream_wh": 0, "losses_wh": 0}})
        reopened.close()
        assert L.check(folder, expect_signer=identity.did).head.height == verdict.head.height + 1
    for a in headers.values():  # replicas of one log: the same blocks as far as each got
        for b in headers.values():
            n = min(len(a), len(b))
            assert a[:n] == b[:n]
    return max((len(h) for h in headers.values()), default=0)


def _check_outbox(root: Path) -> int:
    """Checks node 1's outbox; returns its records."""
    path = root / "node-1" / "outbox.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    outbox = Outbox(path)
    did = node_identity(1).did
    last = outbox.last_interval()
    records = [r for k in range(0 if last is None else last + 1) for r in outbox.at(k).values()]
    assert len(records) == outbox.counts()["records"]
    for record in records:
        assert record.reading["interval"] == record.interval and record.reading["participant"] == record.participant
        if record.wire is not None:
            op = parse(record.wire)  # raises if the stored operation is torn or its signature does not check
            assert (op.author, op.kind, op.payload) == (did, READING, record.reading)
    outbox.close()
    return len(records)


def test_a_node_process_killed_mid_run_leaves_consistent_ledgers_and_outbox(tmp_path):
    report = _lattice(tmp_path / "whole")  # warm: everything imported and compiled before the forks
    assert report["agreed"] and _check_ledgers(tmp_path / "whole", killed=False) == INTERVALS
    assert _check_outbox(tmp_path / "whole") > 0
    rng = random.Random(SEED)
    reached = []
    for kill in range(KILLS):
        root = tmp_path / f"kill-{kill}"
        killed = _killed_at(root, rng.uniform(0.0, 1.5))  # a warm run takes ~3 s here
        reached.append((killed, _check_ledgers(root, killed), _check_outbox(root)))
    assert sum(1 for killed, height, _ in reached if killed and 0 < height < INTERVALS) >= 2, reached
