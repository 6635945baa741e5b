"""Benchmark of the verifiable store: committed writes/s, proof time, size on disk, and the ledger.

Usage: .venv/bin/python benchmarks/bench_store.py [--keys 1000000] [--dir /tmp/plurigrid-bench-store]

1. Committed writes/s in batches of 1,000 / 10,000 / 100,000 random 40-byte values under
   account-like keys, into a file-backed store (WAL, synchronous=FULL: every commit is durable),
   until it holds --keys keys; against a plain SQLite key/value table written with the same
   batches and durability in the same run (the cost of persistence without authentication).
2. Proof generation and ICS-23 verification per key (JMT spec) in the full store, existence and
   non-existence, from bytes (decode + verify) and from a decoded proof; the official IAVL vector
   is verified in the same loop as a reference.
3. Size on disk per million keys, with every version kept and after pruning to the last one.
4. The ledger inside the simulator: `hello` and `residential` with and without `ledger/`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import time
from pathlib import Path

from plurigrid.state.ics23 import (
    IAVL_SPEC,
    JMT_SPEC,
    decode_commitment_proof,
    encode_commitment_proof,
    verify_membership,
    verify_non_membership,
)
from plurigrid.state.store import Store

SHARED = Path(os.environ.get("PLURIGRID_TESTDATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
VALUE_BYTES = 40


def _batches(seed: int, batch: int, total: int):
    rng = random.Random(seed)
    for _ in range(total // batch):
        yield [(f"accounts/{rng.randrange(10 ** 12):012d}".encode(), rng.randbytes(VALUE_BYTES)) for _ in range(batch)]


def plain_sqlite(path: Path, batch: int, total: int) -> float:
    """Writes/s of the same batches into a plain key/value table (WAL, synchronous=FULL)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID")
    elapsed = 0.0
    for rows in _batches(1, batch, total):
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", rows)
        db.execute("COMMIT")
        elapsed += time.perf_counter() - t0
    db.close()
    return total / elapsed


def merkle_store(path: Path, batch: int, total: int) -> tuple[float, Store]:
    store = Store(path)
    elapsed = 0.0
    for rows in _batches(1, batch, total):
        t0 = time.perf_counter()
        tx = store.begin()
        for key, value in rows:
            tx.set(key, value)
        store.commit(tx)
        elapsed += time.perf_counter() - t0
    return total / elapsed, store


def _size_mb(store: Store) -> float:
    """The store's file size once its write-ahead log is folded in."""
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in Path(store.path).parent.glob(Path(store.path).name + "*")) / 1e6


def bench_writes(folder: Path, keys: int) -> Store:
    print("## Committed writes/s\n")
    print("| batch | keys at end | commits | Merkle store (writes/s) | plain SQLite (writes/s) | store / plain |")
    print("|---:|---:|---:|---:|---:|---:|")
    big = None
    sizes = [(batch, total) for batch, total in ((1_000, min(keys, 100_000)), (10_000, min(keys, 300_000)),
                                                 (100_000, keys)) if total >= batch]
    for batch, total in sizes:
        for p in folder.glob("*.sqlite*"):
            p.unlink()
        plain = plain_sqlite(folder / "plain.sqlite", batch, total)
        rate, store = merkle_store(folder / f"store-{batch}.sqlite", batch, total)
        print(f"| {batch:,} | {total:,} | {total // batch} | {rate:,.0f} | {plain:,.0f} | {rate / plain:.2f} |")
        if (batch, total) == sizes[-1]:
            big = store
        else:
            store.close()
    print()
    return big


def _time_us(fn, repeat: int) -> float:
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        runs.append((time.perf_counter() - t0) / repeat * 1e6)
    return statistics.median(runs)


def bench_proofs(store: Store, samples: int = 200) -> None:
    snap = store.snapshot()
    rng = random.Random(7)
    present = [k for k, _ in snap.items(b"accounts/0")][:samples]
    absent = [f"accounts/missing-{rng.randrange(10 ** 9)}".encode() for _ in range(samples)]
    root = snap.root
    values = {k: snap.get(k) for k in present}
    exist = {k: snap.prove(k) for k in present}
    nonexist = {k: snap.prove(k) for k in absent}
    encoded = {k: encode_commitment_proof(p) for k, p in (exist | nonexist).items()}
    assert all(verify_membership(JMT_SPEC, root, exist[k], k, values[k]) for k in present)
    assert all(verify_non_membership(JMT_SPEC, root, nonexist[k], k) for k in absent)
    ne, nn = itertools.cycle(present).__next__, itertools.cycle(absent).__next__
    depth = statistics.mean(len(p.exist.path) for p in exist.values())
    print(f"## Proofs ({sum(1 for _ in snap.items()):,} keys, {samples} present and {samples} absent keys; "
          f"mean existence proof depth {depth:.1f})\n")
    print("| operation | µs per key |")
    print("|---|---:|")
    rows = [
        ("generate existence proof", lambda: snap.prove(ne()), 200),
        ("generate non-existence proof", lambda: snap.prove(nn()), 200),
        ("verify existence (decoded proof)", lambda: (k := ne(), verify_membership(JMT_SPEC, root, exist[k], k, values[k])), 2000),
        ("verify existence (from protobuf bytes)", lambda: (k := ne(), verify_membership(
            JMT_SPEC, root, decode_commitment_proof(encoded[k]), k, values[k])), 2000),
        ("verify non-existence (decoded proof)", lambda: (k := nn(), verify_non_membership(JMT_SPEC, root, nonexist[k], k)), 2000),
        ("verify non-existence (from protobuf bytes)", lambda: (k := nn(), verify_non_membership(
            JMT_SPEC, root, decode_commitment_proof(encoded[k]), k)), 2000),
    ]
    vector = SHARED / "ics23" / "iavl" / "exist_middle.json"
    if vector.is_file():
        v = {k: bytes.fromhex(x) for k, x in json.loads(vector.read_text()).items()}
        rows.append(("reference: official IAVL vector exist_middle (from bytes)", lambda: verify_membership(
            IAVL_SPEC, v["root"], decode_commitment_proof(v["proof"]), v["key"], v["value"]), 2000))
    for label, fn, repeat in rows:
        print(f"| {label} | {_time_us(fn, repeat):,.1f} |")
    print()


def bench_size(store: Store) -> None:
    keys = sum(1 for _ in store.snapshot().items())
    history = _size_mb(store)
    store.prune(store.version)
    store._db.execute("VACUUM")
    pruned = _size_mb(store)
    print("## Size on disk\n")
    print("| store | keys | versions kept | MB | MB per million keys |")
    print("|---|---:|---:|---:|---:|")
    print(f"| every version kept | {keys:,} | {store.version} | {history:,.1f} | {history / keys * 1e6:,.1f} |")
    print(f"| pruned to the last version + VACUUM | {keys:,} | 1 | {pruned:,.1f} | {pruned / keys * 1e6:,.1f} |")
    print()


def bench_ledger(folder: Path) -> None:
    from plurigrid.engine.ledger_entries import RunLedger
    from plurigrid.engine.simulate import simulate
    from plurigrid.engine.world import compile_world
    from plurigrid.microworld.loader import load
    from plurigrid.state.ledger import verify

    print("## The ledger inside the simulator\n")
    print("| world | steps | participants | simulate (s) | simulate + ledger (s) | ledger per block (ms) | ledger verify (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("hello", "residential"):
        spec, n, base = load(name)
        simulate(compile_world(spec, n, base))  # warm caches
        world = compile_world(spec, n, base)
        t0 = time.perf_counter()
        simulate(world)
        plain = time.perf_counter() - t0
        world = compile_world(spec, n, base)
        writer = RunLedger(folder / name / "ledger")
        t0 = time.perf_counter()
        simulate(world, after_step=writer)
        with_ledger = time.perf_counter() - t0
        writer.close()
        t0 = time.perf_counter()
        verify(folder / name)
        checked = time.perf_counter() - t0
        print(f"| {name} | {world.steps} | {world.n} | {plain:.2f} | {with_ledger:.2f} | "
              f"{(with_ledger - plain) / world.steps * 1000:.2f} | {checked:.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/plurigrid-bench-store"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    store = bench_writes(args.dir, args.keys)
    bench_proofs(store)
    bench_size(store)
    store.close()
    bench_ledger(args.dir)
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
