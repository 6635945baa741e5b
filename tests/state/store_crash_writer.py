"""Writer process for the crash test (tests/state/test_store_crash.py); not a test module itself.

    python store_crash_writer.py DB_PATH [--commits N] [--kill-commit K --kill-stmt S] [--kill-after-commit K]

Opens the store at DB_PATH, prints "ready VERSION", then commits versions one after another, printing
each committed version number (flushed) once `Store.commit` has returned. The content of version v is
a pure function of v (`ops_for_version`), so anyone can replay versions 1..v into a fresh store and
get the root that version must have.

Kill points (the process SIGKILLs itself, so nothing gets to clean up):
  --kill-commit K --kill-stmt S   in this run's K-th commit, as the S-th SQL statement counted from the
                                  commit's BEGIN starts (printing "kill <statement start>" first);
  --kill-after-commit K           right after this run's K-th commit returns, before it is printed.
Without a kill point it commits --commits versions (default: until killed from outside) and exits 0.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys

KEY_SPACE = 3000
SIDE_SPACE = 400
# a checkpoint every few commits (once the log since the last one holds as much as the state), so kills
# land inside checkpoints too
FREQUENT_CHECKPOINTS = {"_CHECKPOINT_FACTOR": 1, "_CHECKPOINT_MIN_BYTES": 0}


def ops_for_version(v: int) -> list[tuple]:
    """The writes of version v: ("set", k, value) / ("delete", k) / ("side_set", k, value) / ("side_delete", k)
    and ("junk", k, value), a write made in a nested transaction that is then rolled back."""
    rng = random.Random(v)
    ops: list[tuple] = []
    for _ in range(rng.randint(200, 1500)):
        key = b"key/%05d" % rng.randrange(KEY_SPACE)
        if rng.random() < 0.7:
            ops.append(("set", key, b"v%d.%d" % (v, rng.randrange(1000))))
        else:
            ops.append(("delete", key))
    for _ in range(rng.randint(0, 60)):
        key = b"idx/%04d" % rng.randrange(SIDE_SPACE)
        if rng.random() < 0.8:
            ops.append(("side_set", key, b"%d" % v))
        else:
            ops.append(("side_delete", key))
    ops.append(("junk", b"key/%05d" % rng.randrange(KEY_SPACE), b"never committed"))
    return ops


def apply_ops(tx, ops: list[tuple]) -> None:
    """Writes `ops` into a store transaction."""
    for op in ops:
        if op[0] == "junk":
            inner = tx.begin()
            inner.set(op[1], op[2])
            inner.rollback()
        else:
            getattr(tx, op[0])(*op[1:])


def apply_to_model(model: dict[bytes, bytes], side: dict[bytes, bytes], ops: list[tuple]) -> None:
    """Applies `ops` to plain dicts (the verifiable and the side space)."""
    for op in ops:
        kind = op[0]
        if kind == "set":
            model[op[1]] = op[2]
        elif kind == "delete":
            model.pop(op[1], None)
        elif kind == "side_set":
            side[op[1]] = op[2]
        elif kind == "side_delete":
            side.pop(op[1], None)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--commits", type=int, default=1 << 30)
    parser.add_argument("--kill-commit", type=int, default=0)
    parser.add_argument("--kill-stmt", type=int, default=0)
    parser.add_argument("--kill-after-commit", type=int, default=0)
    args = parser.parse_args(argv)

    from plurigrid.state import store as store_module
    from plurigrid.state.store import Store

    for name, value in FREQUENT_CHECKPOINTS.items():
        setattr(store_module, name, value)
    store = Store(args.db)
    print("ready", store.version, flush=True)

    counting = {"on": False, "n": 0}

    def trace(sql: str) -> None:
        if not counting["on"]:
            return
        if counting["n"] == 0 and not sql.startswith("BEGIN"):
            return  # reads before the write transaction starts
        counting["n"] += 1
        if counting["n"] == args.kill_stmt:
            print("kill", sql[:40], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    if args.kill_commit:
        store._db.set_trace_callback(trace)

    for i in range(1, args.commits + 1):
        tx = store.begin()
        apply_ops(tx, ops_for_version(store.version + 1))
        counting["on"] = i == args.kill_commit
        commit = store.commit(tx)
        counting["on"] = False
        if i == args.kill_after_commit:
            os.kill(os.getpid(), signal.SIGKILL)
        print(commit.version, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
