"""Crash safety of a run: a run SIGKILLed at any moment leaves a ledger that verifies as a prefix and continues.

A run is killed 100 times (seeded): forked from this process once `hello` is compiled, so that each
kill costs a fraction of a second; 70 times after a random delay over a whole run (half of them with
the ledger sealing its block file and checkpointing its state every few blocks, a few with the ledger on
its own thread), 30 times at a chosen point inside the ledger or the run folder's writing: half-way
through writing a block line, before and after a seal's rename, at a checkpoint's COMMIT, between the
final checkpoint and the close mark, while writing summary.json, and while a run into a reused folder
removes the earlier run's ledger. Three real `plurigrid run` processes are SIGKILLed too.

Each folder must then: verify (`ledger.check`, signatures pinned to the run's key) as a prefix whose
blocks are byte for byte the first blocks of an uninterrupted run with the same key; hold at least
every block the run had reported committed (and at most the one in flight); conserve money and energy
at its height; have a summary.json only if the run finished, naming the same head; and reopen with the
key to append the next block of the chain.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

import plurigrid
from plurigrid.engine import ledger_entries
from plurigrid.engine.ledger_entries import run_signer
from plurigrid.state import blocklog, store
from plurigrid.state import ledger as L
from plurigrid.state.blocklog import BlockLog

SEED = 20251206
TIMER_KILLS = 70
POINTS = [  # (kill point, occurrence): 30 targeted kills
    *[("torn-line", n) for n in (1, 2, 7, 13, 24)],
    *[("seal-before-rename", n) for n in (1, 2, 4)],
    *[("seal-after-rename", n) for n in (1, 3, 5)],
    *[("checkpoint-commit", n) for n in (1, 2, 5, 9)],
    ("close-mark", 1), ("close-mark", 1),
    ("summary", 1), ("summary", 1), ("summary", 1),
    *[("stale-removal", n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)],
]
FREQUENT = {"SEAL_BYTES": 4_000, "CHECKPOINT_FACTOR": 0.02}  # a seal every ~3 blocks, a checkpoint every ~2


def _frequent_seals_and_checkpoints() -> None:
    blocklog.SEAL_BYTES = FREQUENT["SEAL_BYTES"]
    L.CHECKPOINT_FACTOR = FREQUENT["CHECKPOINT_FACTOR"]


@dataclass
class Reference:
    world: plurigrid.World
    key: Path
    did: str
    lines: list[bytes]  # an uninterrupted run's block lines
    sealed: Path  # that run's folder, with sealed segments and several checkpoints
    run_s: float  # how long a forked run takes from fork to exit


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    root = tmp_path_factory.mktemp("reference")
    key = root / "signer.key"
    world = plurigrid.load("hello")
    saved = blocklog.SEAL_BYTES, L.CHECKPOINT_FACTOR
    try:
        _frequent_seals_and_checkpoints()
        world.run(out=root / "sealed", signer_key=key)
    finally:
        blocklog.SEAL_BYTES, L.CHECKPOINT_FACTOR = saved
    sealed = root / "sealed"
    assert list((sealed / "ledger").glob("blocks-*.jsonl.zst")), "the reference should have sealed segments"
    lines = list(BlockLog(sealed / "ledger", writable=False).lines())
    assert len(lines) == world.compiled.steps
    run_s = []
    for attempt in range(2):  # the quicker of two, so that the kills land within a run on a busy machine too
        start = time.perf_counter()
        status, _ = _fork_run(world, root / f"timed-{attempt}", key, None, lambda pid: None)
        assert status == 0
        run_s.append(time.perf_counter() - start)
    return Reference(world, key, run_signer(key).did, lines, sealed, min(run_s))


def _kill_at(point: str, occurrence: int, folder: Path) -> None:
    """Installs, in the child, a SIGKILL of itself at the `occurrence`-th time the run reaches `point`."""
    count = Counter()

    def due(name: str) -> bool:
        count[name] += 1
        return count[name] == occurrence

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "torn-line":
        real_append = BlockLog.append

        def append(self: BlockLog, line: bytes) -> None:
            if due(point):
                with self.head.open("ab") as f:  # a write the kernel cut short
                    f.write(line[: len(line) // 2])
                die()
            real_append(self, line)

        BlockLog.append = append
    elif point.startswith("seal-"):
        real_replace = blocklog.os.replace

        def replace(src: Path, dst: Path) -> None:  # os.replace, for every module of the child
            sealing = Path(dst).name.startswith("blocks-")
            if point == "seal-after-rename" or not sealing:
                real_replace(src, dst)
            if sealing and due(point):
                die()
            if point == "seal-before-rename" and sealing:
                real_replace(src, dst)

        blocklog.os.replace = replace
    elif point == "checkpoint-commit":
        real_checkpoint = store.Store.checkpoint

        def checkpoint(self: store.Store) -> None:
            if due(point):
                self._db.set_trace_callback(lambda sql: die() if sql.startswith("COMMIT") else None)
            real_checkpoint(self)

        store.Store.checkpoint = checkpoint
    elif point == "close-mark":
        real_set_meta = store.Store.set_meta

        def set_meta(self: store.Store, name: str, value: int) -> None:
            if value == 0 and due(point):
                die()
            real_set_meta(self, name, value)

        store.Store.set_meta = set_meta
    elif point == "summary":
        real_replace = os.replace

        def replace_summary(src: Path, dst: Path) -> None:  # os.replace, for every module of the child
            if Path(dst).name == "summary.json" and due(point):
                die()
            real_replace(src, dst)

        os.replace = replace_summary
    elif point == "stale-removal":
        real_unlink = Path.unlink
        ledger = folder / "ledger"

        def unlink(self: Path, missing_ok: bool = False) -> None:
            if self.parent == ledger and due(point):
                die()
            real_unlink(self, missing_ok=missing_ok)

        Path.unlink = unlink


def _fork_run(world: plurigrid.World, folder: Path, key: Path, setup, kill) -> tuple[int, list[int]]:
    """Runs `world` into `folder` in a forked child (after `setup()` there); `kill(pid)` runs here meanwhile.
    Returns the child's wait status and the steps it reported committed, in order."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            if setup is not None:
                setup()
            world.run(out=folder, signer_key=key, progress=lambda done, total: os.write(write, struct.pack("<I", done)))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        kill(pid)
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError("a forked run neither finished nor died within 60 s")
            time.sleep(0.005)
        data = b""
        while chunk := os.read(read, 1 << 16):
            data += chunk
    finally:
        os.close(read)
    return status, [v for (v,) in struct.iter_unpack("<I", data)]


def _conserved(folder: Path, lines: list[bytes]) -> None:
    """Money sums to zero over every account; participants' net energy plus losses is what the operator supplied."""
    height, accounts = L.balances(folder)
    assert sum(a["balance_micro"] for a in accounts.values()) == 0
    operator = accounts.pop(L.OPERATOR)
    losses = sum(json.loads(line)["entries"]["grid"]["losses_wh"] for line in lines[:height])
    net = sum(a["imported_wh"] - a["exported_wh"] for a in accounts.values())
    assert net + losses == operator["imported_wh"] - operator["exported_wh"]


def _check_folder(ref: Reference, folder: Path, acked: list[int], lag: int, stale: bool) -> str:
    """Checks one killed run's folder (see the module docstring); returns how it ended."""
    ledger = folder / "ledger"
    if not ledger.is_dir() or not (BlockLog.exists(ledger) or (ledger / L.STATE).is_file()):
        assert not acked and not stale, "a run that reported committed blocks left no ledger"
        return "no ledger yet"
    verdict = L.check(folder, expect_signer=ref.did)
    height = verdict.head.height
    assert list(BlockLog(ledger, writable=False).lines()) == ref.lines[:height]
    if not stale:
        last = acked[-1] if acked else 0
        assert last - lag <= height <= last + 1, (acked, height)
    finished = (folder / "summary.json").is_file()
    assert verdict.prefix is not finished
    if finished:
        assert height == len(ref.lines) and verdict.summary["ledger"]["signer"] == ref.did
    else:
        assert verdict.describe().startswith(f"valid prefix: height {height} is its last committed block (")
    if height:
        _conserved(folder, ref.lines)
    reopened = L.Ledger(ledger, signer=run_signer(ref.key))
    assert reopened.height == height
    reopened.append(height, "2024-06-22T00:00:00+02:00", {"grid": {"upstream_wh": 3, "losses_wh": 3}})
    reopened.close()
    after = L.check(ledger, expect_signer=ref.did)
    assert after.head.height == height + 1 and after.closed and not after.prefix
    assert after.head.prev_hash == (verdict.head.hash if height else L.GENESIS_HASH)
    return "finished" if finished else f"prefix{' torn' if verdict.torn_bytes else ''}"


def test_runs_killed_at_100_moments_leave_verifiable_prefixes_that_continue(reference, tmp_path):
    rng = random.Random(SEED)
    plan = [("timer", n) for n in range(TIMER_KILLS)] + POINTS
    rng.shuffle(plan)
    outcomes: Counter[str] = Counter()
    for run, (kind, n) in enumerate(plan):
        folder = tmp_path / f"run-{run}"
        stale = kind == "stale-removal"
        if stale:
            shutil.copytree(reference.sealed, folder)  # an earlier run's folder, reused
        threaded = kind == "timer" and n % 10 == 9
        frequent = kind != "timer" or n % 2 == 0

        def setup(kind: str = kind, n: int = n, folder: Path = folder, frequent: bool = frequent,
                  threaded: bool = threaded) -> None:
            if frequent:
                _frequent_seals_and_checkpoints()
            if threaded:
                ledger_entries.THREAD_MIN_PARTICIPANTS = 0
            if kind != "timer":
                _kill_at(kind, n, folder)

        delay = rng.uniform(0, reference.run_s)
        timer = (lambda pid, d=delay: (time.sleep(d), os.kill(pid, signal.SIGKILL))) if kind == "timer" else (lambda pid: None)
        status, acked = _fork_run(reference.world, folder, reference.key, setup, timer)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert killed or status == 0, (run, kind, status)
        if kind != "timer":
            assert killed, f"run {run}: never reached its kill point {kind} #{n}"
        ending = _check_folder(reference, folder, acked, 9 if threaded else 0, stale)
        outcomes[f"{kind if kind != 'timer' else 'timer'}: {ending if killed else 'not killed'}"] += 1
        if kind == "torn-line":
            assert ending == "prefix torn"
        shutil.rmtree(folder, ignore_errors=True)  # (a run killed before it made its folder has none)
    assert sum(outcomes.values()) == 100
    timer_prefixes = sum(c for k, c in outcomes.items() if k.startswith("timer: prefix"))
    assert timer_prefixes >= 20, outcomes  # the timer kills do land mid-run


def test_real_run_processes_killed_mid_run(tmp_path):
    """Three `plurigrid run` processes, each SIGKILLed a random moment after its first block."""
    rng = random.Random(SEED + 1)
    key = Path(os.environ["PLURIGRID_SIGNER_KEY"])
    did = run_signer(key).did
    folders = [tmp_path / f"run-{i}" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-m", "plurigrid.cli.main", "run", "residential", "--hours", "240",
                               "--quiet", "--out", str(f)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for f in folders]
    try:
        for proc, folder in zip(procs, folders):
            blocks = folder / "ledger" / L.BLOCKS
            deadline = time.monotonic() + 120
            while not (blocks.is_file() and blocks.stat().st_size) and proc.poll() is None:
                assert time.monotonic() < deadline, "no block within 120 s"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.5))
            proc.send_signal(signal.SIGKILL)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert all(p.returncode == -signal.SIGKILL for p in procs), [p.stderr.read() for p in procs]
    for folder in folders:
        res = subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "ledger", "verify", str(folder),
                              "--expect-signer", did], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        height = L.check(folder).head.height
        assert res.stdout.startswith(f"valid prefix: height {height} is its last committed block (its writer stopped "
                                     "before closing it; the run wrote no summary.json")
        assert 0 < height < 960 and not (folder / "summary.json").exists()
        _conserved(folder, list(BlockLog(folder / "ledger", writable=False).lines()))
        reopened = L.Ledger(folder / "ledger", signer=run_signer(key))
        reopened.append(height, "t", {"grid": {"upstream_wh": 0, "losses_wh": 0}})
        reopened.close()
        assert L.check(folder / "ledger", expect_signer=did).head.height == height + 1


def test_a_stopped_run_is_partial_and_a_folder_without_summary_is_not_finished(reference, tmp_path):
    """Ctrl-C: the ledger is closed and summary.json says partial; verify says so. A killed run's summary.json is
    never half-written: it is there whole, or not at all."""
    def interrupt(done: int, total: int) -> None:
        if done == 5:
            os.kill(os.getpid(), signal.SIGINT)

    run = reference.world.run(out=tmp_path / "run", signer_key=reference.key, progress=interrupt)
    verdict = L.check(run.folder, expect_signer=reference.did)
    assert not verdict.prefix and verdict.describe().startswith(
        "valid: height 5 of a partial run (stopped after 5 of 24 steps), state root ")
    summary = run.folder / "summary.json"
    summary.write_text(summary.read_text()[:100])
    with pytest.raises(L.LedgerError, match=r"summary.json: not JSON"):
        L.check(run.folder)
    summary.unlink()
    assert L.check(run.folder).describe().startswith("valid prefix: height 5 is its last committed block (the run "
                                                     "wrote no summary.json)")
    db = sqlite3.connect(run.folder / "ledger" / L.STATE)
    assert db.execute("SELECT value FROM meta WHERE name = 'ledger_open'").fetchone() == (0,)
    db.close()
