"""Benchmark of the verifiable store: committed writes/s, proof time, size on disk, and the ledger.

Usage: .venv/bin/python benchmarks/bench_store.py [--keys 1000000] [--dir /tmp/plurigrid-bench-store]

1. Committed writes/s in batches of 1,000 / 10,000 / 100,000 random 40-byte values under
   account-like keys, into a file-backed store (WAL, synchronous=FULL: every commit is durable),
   until it holds --keys keys: over the whole fill, and over its last tenth (the store then holds
   90-100 % of --keys); against a plain SQLite key/value table written with the same batches and
   durability in the same run (the cost of persistence without authentication), and against the
   pure-Python reference tree (`jmt`, in memory, nothing persisted) on the first 100,000 writes.
2. Proof generation and ICS-23 verification per key (JMT spec) in the full store, existence and
   non-existence, from bytes (decode + verify) and from a decoded proof; the official IAVL vector
   is verified in the same loop as a reference.
3. Size on disk per million keys, with every version kept and after pruning to the last one.
4. The ledger: one block that updates 10,000 account balances (settlements, meters and orders of
   10,000 participants, the block line fsynced), and `hello` and `residential` with and without
   `ledger/` inside the simulator.
5. Signing: appending and verifying blocks of 10 and of 10,000 accounts, signed (Ed25519) against
   unsigned, in the same run.
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

import numpy as np

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


def merkle_store(path: Path, batch: int, total: int) -> tuple[float, float, Store]:
    """Writes/s over the whole fill and over its last tenth, and the filled store."""
    store = Store(path)
    elapsed = tail = 0.0
    tail_from = total - max(total // 10, batch)
    for i, rows in enumerate(_batches(1, batch, total)):
        t0 = time.perf_counter()
        tx = store.begin()
        for key, value in rows:
            tx.set(key, value)
        store.commit(tx)
        dt = time.perf_counter() - t0
        elapsed += dt
        if i * batch >= tail_from:
            tail += dt
    return total / elapsed, (total - tail_from) / tail, store


def reference_tree(batch: int, total: int) -> float:
    """Writes/s of the pure-Python reference tree on the same batches, in memory (no persistence)."""
    from plurigrid.state import jmt

    nodes: dict = {}
    root = None
    elapsed = 0.0
    for version, rows in enumerate(_batches(1, batch, total), start=1):
        t0 = time.perf_counter()
        update = jmt.apply_batch(lambda v, p: nodes[(v, p)], root, version, dict(rows))
        nodes.update(update.written)
        root = update.root
        elapsed += time.perf_counter() - t0
    return total / elapsed


def _size_mb(store: Store) -> float:
    """The store's file size once its write-ahead log is folded in."""
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in Path(store.path).parent.glob(Path(store.path).name + "*")) / 1e6


def bench_writes(folder: Path, keys: int) -> Store:
    print("## Committed writes/s\n")
    print("| batch | keys at end | commits | Merkle store, whole fill (writes/s) | Merkle store, last tenth (writes/s) "
          "| plain SQLite (writes/s) | store / plain | reference Python tree, first 100,000 (writes/s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    big = None
    for batch in (1_000, 10_000, 100_000):
        if batch > keys:
            continue
        for p in [*folder.glob("plain.sqlite*"), *folder.glob(f"store-{batch}.sqlite*")]:
            p.unlink()
        plain = plain_sqlite(folder / "plain.sqlite", batch, keys)
        rate, tail, store = merkle_store(folder / f"store-{batch}.sqlite", batch, keys)
        python = reference_tree(batch, min(keys, 100_000)) if batch <= 100_000 else float("nan")
        print(f"| {batch:,} | {keys:,} | {keys // batch} | {rate:,.0f} | {tail:,.0f} | {plain:,.0f} | {rate / plain:.2f} "
              f"| {python:,.0f} |")
        if batch == 10_000:
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


def ledger_block_entries(rng: np.random.Generator, accounts: int, first: bool) -> dict:
    """One block's entries as the simulator writes them: every participant metered, settled and ordering."""
    p = np.arange(accounts, dtype=np.int64)
    wh = rng.integers(-3000, 3000, accounts)
    market, tariff, fee = rng.integers(-10**6, 10**6, accounts), rng.integers(0, 10**6, accounts), rng.integers(0, 1000, accounts)
    entries = {
        "settlements": {"participant": p, "traded_wh": wh, "market_micro": market, "tariff_micro": tariff,
                        "fee_micro": fee, "bill_micro": market + tariff + fee},
        "meters": {"participant": p, "wh": wh},
        "orders": {"participant": p, "side": ["buy"] * accounts, "wh": np.abs(wh),
                   "limit_micro_per_kwh": rng.integers(0, 400_000, accounts)},
        "grid": {"upstream_wh": int(wh.sum()) + 100, "losses_wh": 100},
    }
    if first:
        entries["accounts"] = [f"participant-{i}" for i in range(accounts)]
    return entries


def bench_ledger_block(folder: Path, accounts: int = 10_000, blocks: int = 60) -> None:
    from plurigrid.state.ledger import Ledger, verify

    rng = np.random.default_rng(1)
    all_entries = [ledger_block_entries(rng, accounts, k == 0) for k in range(blocks)]
    ledger = Ledger(folder / "block-bench", create=True)
    times = []
    for k, entries in enumerate(all_entries):
        t0 = time.perf_counter()
        ledger.append(k, f"t{k}", entries)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ledger.close()
    close = time.perf_counter() - t0
    t0 = time.perf_counter()
    verify(folder / "block-bench")
    checked = time.perf_counter() - t0
    steady = sorted(times[1:])
    print(f"## One ledger block that updates {accounts:,} account balances\n")
    print(f"{blocks} blocks; each has settlements, meter readings and orders of every participant; the block line "
          "is fsynced before `append` returns.\n")
    print("| median ms per block | p90 | max (a checkpoint) | committed balance writes/s (median) | close (ms) | "
          "ledger verify (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    median = statistics.median(steady)
    print(f"| {median * 1000:.1f} | {steady[int(len(steady) * 0.9)] * 1000:.1f} | {steady[-1] * 1000:.1f} | "
          f"{accounts / median:,.0f} | {close * 1000:.1f} | {checked:.2f} |")
    print()


def bench_signing(folder: Path, blocks: int = 200) -> None:
    from plurigrid.state.identity import Identity
    from plurigrid.state.ledger import Ledger, check

    print("## Signing\n")
    print(f"The same {blocks} blocks (40 of 10,000 accounts) appended in turn to an unsigned and to a signed ledger "
          "(group commit, as a simulation writes), then each verified three times (the best).\n")
    print("| accounts | append unsigned (µs per block, median) | append signed | verify unsigned (µs per block) | "
          "verify signed |")
    print("|---:|---:|---:|---:|---:|")
    signer = Identity.from_seed(b"\x07" * 32)
    for accounts, count in ((10, blocks), (10_000, 40)):
        rng = np.random.default_rng(2)
        all_entries = [ledger_block_entries(rng, accounts, k == 0) for k in range(count)]
        paths = [folder / f"signing-{accounts}-{name}" for name in ("unsigned", "signed")]
        ledgers = [Ledger(paths[0], create=True, sync_interval_s=0.5),
                   Ledger(paths[1], create=True, sync_interval_s=0.5, signer=signer)]
        times: list[list[float]] = [[], []]
        for k, entries in enumerate(all_entries):
            for ledger, spent in zip(ledgers, times):
                t0 = time.perf_counter()
                ledger.append(k, f"t{k}", entries)
                spent.append(time.perf_counter() - t0)
        verify_s = [float("inf"), float("inf")]
        for ledger in ledgers:
            ledger.close()
        for _ in range(3):
            for i, path in enumerate(paths):
                t0 = time.perf_counter()
                check(path)
                verify_s[i] = min(verify_s[i], (time.perf_counter() - t0) / count)
        append = [statistics.median(t[1:]) for t in times]
        print(f"| {accounts:,} | {append[0] * 1e6:,.0f} | {append[1] * 1e6:,.0f} | {verify_s[0] * 1e6:,.0f} | "
              f"{verify_s[1] * 1e6:,.0f} |")
    print()


def bench_ledger(folder: Path) -> None:
    import plurigrid

    print("## The ledger inside the simulator\n")
    print("| world | steps | participants | run without ledger (s) | run with ledger (s) | ledger per block (ms) | ledger verify (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("hello", "residential"):
        world = plurigrid.load(name)
        world.run(ledger=False)  # warm caches
        t0 = time.perf_counter()
        world.run(ledger=False)
        plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        run = world.run(out=folder / name)
        with_ledger = time.perf_counter() - t0
        t0 = time.perf_counter()
        run.verify()
        checked = time.perf_counter() - t0
        print(f"| {name} | {world.steps} | {len(world.participants)} | {plain:.2f} | {with_ledger:.2f} | "
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
    bench_ledger_block(args.dir)
    bench_signing(args.dir)
    bench_ledger(args.dir)
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
