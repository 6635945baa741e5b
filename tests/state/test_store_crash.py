"""Crash safety: a writer process is SIGKILLed at random points during commits, again and again.

Each time, the store is reopened and must hold every version the writer acknowledged (and at most
the one it was committing), with the root, items and side items that an independent replay of
versions 1..v (`store_crash_writer.ops_for_version`) gives in a fresh in-memory store.

Kill points, seeded: (a) SIGKILL from here after a random delay while the writer commits; (b) the
writer kills itself as the N-th SQL statement of a commit starts, N chosen over the statements that
commit runs (its BEGIN, the log and version INSERTs, a checkpoint's INSERT and DELETE, the COMMIT;
both sides checkpoint often, `writer.FREQUENT_CHECKPOINTS`); (c) the writer kills itself right after a
commit returns, before acknowledging it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from plurigrid.state import store as store_module
from plurigrid.state.ics23 import JMT_SPEC, verify_membership, verify_non_membership
from plurigrid.state.store import Store

WRITER = Path(__file__).with_name("store_crash_writer.py")
_spec = importlib.util.spec_from_file_location("store_crash_writer", WRITER)
writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(writer)

SEED = 20240611
RUNS = 60
# statements every commit must run; kill points also cover any other kind a commit runs
REQUIRED = {"BEGIN", "log", "versions", "checkpoints", "COMMIT"}
LOOKAHEAD = 8  # commits searched ahead for one that runs a required kind of statement not yet killed at


def category(sql: str) -> str:
    """"BEGIN", "COMMIT", or the table an INSERT writes to."""
    words = sql.split()
    if words[0] == "INSERT":
        return words[words.index("INTO") + 1]
    return words[0]


def ref_root(pairs: dict[bytes, bytes]) -> bytes:
    """Binary sparse Merkle root over sha256(key) (JMT hashing), computed from scratch."""
    sha = hashlib.sha256

    def rec(items: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not items:
            return b"SPARSE_MERKLE_PLACEHOLDER_HASH__"
        if len(items) == 1:
            return sha(b"JMT::LeafNode" + items[0][0] + items[0][1]).digest()
        byte, shift = depth // 8, 7 - depth % 8
        left = [it for it in items if not it[0][byte] >> shift & 1]
        right = [it for it in items if it[0][byte] >> shift & 1]
        return sha(b"JMT::IntrnalNode" + rec(left, depth + 1) + rec(right, depth + 1)).digest()

    return rec(sorted((sha(k).digest(), sha(v).digest()) for k, v in pairs.items()), 0)


class Replay:
    """Versions 1..v replayed into a fresh in-memory store, plus the plain-dict state of each version
    and the SQL statements (by category) each commit ran, from its BEGIN on."""

    def __init__(self) -> None:
        self.store = Store(":memory:")
        self.states: dict[int, tuple[dict[bytes, bytes], dict[bytes, bytes]]] = {0: ({}, {})}
        self.statements: dict[int, list[str]] = {}
        self._log: list[str] | None = None
        self.store._db.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if self._log is not None:
            self._log.append(category(sql[:40]))

    def advance(self, to: int) -> None:
        while self.store.version < to:
            v = self.store.version + 1
            ops = writer.ops_for_version(v)
            tx = self.store.begin()
            writer.apply_ops(tx, ops)
            self._log = []
            self.store.commit(tx)
            log, self._log = self._log, None
            self.statements[v] = log[log.index("BEGIN"):]
            assert self.statements[v][-1] == "COMMIT"
            model, side = (dict(d) for d in self.states[v - 1])
            writer.apply_to_model(model, side, ops)
            self.states[v] = (model, side)

    def forget_before(self, v: int) -> None:
        """Drops what no later check needs (the writer never goes back before v - 1)."""
        for old in [k for k in self.states if k < v - 1]:
            del self.states[old]
            self.statements.pop(old, None)
        if v - 1 > self.store.oldest + 20:
            self.store.prune(v - 1)


def kill_point(rng: random.Random, statements: list[str], turn: int, want: str | None = None) -> tuple[int, str]:
    """1-based index of the statement to die at, and its kind: `want` if given, else turn by turn over the
    kinds of statement the commit runs; at the first, a random or the last statement of that kind."""
    kinds = list(dict.fromkeys(statements))
    kind = want or kinds[turn % len(kinds)]
    positions = [i for i, c in enumerate(statements) if c == kind]
    pick = (turn // len(kinds)) % 3
    i = positions[0] if pick == 0 else positions[-1] if pick == 2 else rng.choice(positions)
    return i + 1, kind


def run_writer(db: Path, *args: str, delay: float | None = None) -> tuple[list[str], str]:
    """Runs the writer until it dies; with `delay`, SIGKILLs it that long after it reports ready."""
    proc = subprocess.Popen([sys.executable, str(WRITER), str(db), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    if delay is not None:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError(f"writer never reported ready: {proc.communicate()[1].decode()}")
        lines.append(proc.stdout.readline().decode())
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode())
    lines += out.decode().splitlines()
    return [line.strip() for line in lines if line.strip()], err.decode()


def test_killed_writer_always_reopens_at_its_last_commit(tmp_path, monkeypatch):
    for name, value in writer.FREQUENT_CHECKPOINTS.items():  # the replay commits as the writer does
        monkeypatch.setattr(store_module, name, value)
    rng = random.Random(SEED)  # the plan: kinds of kill, delays, commits per run
    pick = random.Random(SEED + 1)  # statement positions and keys to prove (these depend on the versions reached)
    db = tmp_path / "crash.db"
    replay = Replay()
    plan = ["timer"] * 20 + ["statement"] * 34 + ["after"] * 6
    rng.shuffle(plan)
    version = 0  # what the store on disk holds
    turn = 0
    seen = {"statement": set(), "after": 0}

    for run, kind in enumerate(plan):
        expect_kill = None
        if kind == "timer":
            lines, err = run_writer(db, delay=rng.uniform(0.0, 0.25))
        elif kind == "statement":
            k = rng.choice([1, 1, 2])
            # a required kind not reached yet goes first, in the next commit that runs it (whether a commit
            # checkpoints depends on the versions the timed kills reached)
            replay.advance(version + LOOKAHEAD)
            want = next((c for c in sorted(REQUIRED - seen["statement"])
                         for j in range(1, LOOKAHEAD + 1) if c in replay.statements[version + j]), None)
            if want is not None:
                k = next(j for j in range(1, LOOKAHEAD + 1) if want in replay.statements[version + j])
            n, expect_kill = kill_point(pick, replay.statements[version + k], turn, want)
            turn += 1
            lines, err = run_writer(db, "--kill-commit", str(k), "--kill-stmt", str(n), "--commits", str(k))
        else:
            k = rng.choice([1, 2])
            lines, err = run_writer(db, "--kill-after-commit", str(k), "--commits", str(k))

        assert lines and lines[0] == f"ready {version}", (run, lines, err)
        acked = [int(line) for line in lines[1:] if line.isdigit()]
        assert acked == list(range(version + 1, version + 1 + len(acked))), (run, lines)
        last = acked[-1] if acked else version
        killed_at = [line.split(" ", 1)[1] for line in lines if line.startswith("kill ")]

        with Store(db) as store:
            reopened = store.version
            # nothing acknowledged is lost; at most the commit in flight landed
            assert last <= reopened <= last + 1, (run, kind, last, reopened)
            if kind == "statement":
                assert len(killed_at) == 1 and category(killed_at[0]) == expect_kill, (run, killed_at, expect_kill)
                assert reopened == version + k - 1 == last  # died before its COMMIT ran: rolled back
                seen["statement"].add(expect_kill)
            elif kind == "after":
                assert reopened == version + k == last + 1  # committed, never acknowledged: still there
                seen["after"] += 1

            replay.advance(reopened)
            model, side = replay.states[reopened]
            assert store.root() == replay.store.root(reopened), (run, reopened)
            if reopened > 0:
                assert store.root(reopened - 1) == replay.store.root(reopened - 1)
            snap = store.snapshot()
            assert list(snap.items()) == sorted(model.items()), (run, reopened)
            assert list(snap.side_items()) == sorted(side.items()), (run, reopened)
            # the tree's nodes came through too: proofs from the reopened store verify against the replay
            if model:
                for key in pick.sample(sorted(model), 2):
                    assert verify_membership(JMT_SPEC, replay.store.root(reopened), snap.prove(key), key, model[key])
                absent = next(b"key/%05d" % i for i in range(writer.KEY_SPACE) if b"key/%05d" % i not in model)
                assert verify_non_membership(JMT_SPEC, replay.store.root(reopened), snap.prove(absent), absent)
        version = reopened
        replay.forget_before(version)

    assert len(plan) >= 50
    # the plan did reach every kind of kill point it meant to
    assert seen["statement"] >= REQUIRED, seen
    assert seen["after"] == 6
    # the final state is also the independent sparse-Merkle root of the replayed map
    assert replay.store.root(version) == ref_root(replay.states[version][0])
