"""Benchmark of secure aggregation: rounds, bytes and time per aggregation at 10, 100 and 1,000 members.

Usage: .venv/bin/python benchmarks/bench_secagg.py [--members 10 100 1000] [--length 2] [--dropout 0.1]

Each aggregation sums `length` integers per member (a feeder's net demand and flexibility offered,
in Wh) with `dropout` of the members vanishing, spread over the rounds. All parties run in this
process, one after another, so the time is the whole protocol's compute on one core (key
agreement, Shamir shares, AES-GCM, the masks); the bytes are the JSON messages each would send.
The baseline in the same run is the plain sum: every member sends its numbers in clear.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from plurigrid.privacy.secagg import ROUNDS, Setup, aggregate, wire_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--length", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    args = parser.parse_args()
    print(f"## {args.length} numbers per member, {args.dropout:.0%} dropping out\n")
    print("| members | neighbours k | threshold t | rounds | exact | time s | ms per member | bytes up per member | "
          "bytes down per member | plain sum: bytes per member | plain sum: time ms |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in args.members:
        ids = [f"node{i:04d}" for i in range(n)]
        rng = np.random.default_rng(n)
        values = {m: rng.integers(-50_000, 200_000, args.length) for m in ids}
        dropped = rng.choice(ids, int(round(args.dropout * n)), replace=False)
        drop_after = {m: r for m, r in zip(dropped, np.resize([-1, 0, 1, 2], len(dropped)).tolist())}
        setup = Setup.of(f"bench/{n}", ids, length=args.length)
        t0 = time.perf_counter()
        total, traffic = aggregate(setup, values, drop_after)
        seconds = time.perf_counter() - t0
        counted = [m for m in ids if drop_after.get(m, ROUNDS) >= 2]
        exact = total.tolist() == np.sum([values[m] for m in counted], axis=0).tolist()
        t1 = time.perf_counter()
        messages = [{"member": m, "value": values[m].tolist()} for m in counted]
        plain = np.sum([msg["value"] for msg in messages], axis=0)
        plain_ms = (time.perf_counter() - t1) * 1000
        plain_bytes = sum(map(wire_bytes, messages)) / len(counted)
        assert plain.tolist() == total.tolist()
        print(f"| {n:,} | {setup.neighbours} | {setup.threshold} | {ROUNDS} | {exact} | {seconds:.2f} | {seconds / n * 1000:.2f} | "
              f"{sum(traffic['up']) / n:,.0f} | {sum(traffic['down']) / n:,.0f} | {plain_bytes:,.0f} | {plain_ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
