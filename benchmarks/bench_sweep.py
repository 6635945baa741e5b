"""Benchmark of a sweep over 1,000 microworlds of the residential class, one day each.

Usage: .venv/bin/python benchmarks/bench_sweep.py [--points 1000] [--skip-serial]

Each point is the residential world with a seeded battery share, PV share, tariff scale and
mechanism (pay-as-clear, pay-as-bid, tariff): a whole run of 96 quarter hours with AC power flow and
settlement, compiled from its spec at the worker. Measured from this process, as `plurigrid sweep`
runs: in-process (the baseline), then a local Dask cluster of 1 and of 2 worker processes, each
into a fresh sweep folder, cluster start-up and the Parquet table and report included. Prints wall
time, points per second and the speed-up from 1 to 2 workers, and checks the three tables agree.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import pandas as pd

import plurigrid
from plurigrid.sweeps import TIMING_COLUMNS


def spec(points: int) -> dict:
    return {"sweep": {"name": "bench-residential", "world": "residential", "seed": 2024},
            "random": {"samples": points, "battery_share": {"uniform": [0.0, 1.0]}, "pv_share": {"uniform": [0.0, 1.0]},
                       "tariff_scale": {"uniform": [0.8, 1.3]}, "mechanism": {"choice": ["pay-as-clear", "pay-as-bid", "tariff"]}}}


def timed(points: int, **options) -> tuple[float, pd.DataFrame]:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        table = plurigrid.sweep(spec(points), out=out, **options)
        return time.perf_counter() - t0, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--skip-serial", action="store_true")
    args = parser.parse_args()
    print(f"## {args.points:,} residential microworlds, one day each ({os.cpu_count()} cores)\n")
    runs = {}
    if not args.skip_serial:
        runs["in-process (serial)"] = timed(args.points, serial=True)
    runs["Dask local cluster, 1 worker"] = timed(args.points, workers=1)
    runs["Dask local cluster, 2 workers"] = timed(args.points, workers=2)
    print("| executor | wall s | points/s | mean run s per point | failed |")
    print("|---|---|---|---|---|")
    for name, (wall, table) in runs.items():
        print(f"| {name} | {wall:.1f} | {len(table) / wall:.2f} | {table['run_s'].mean():.3f} | "
              f"{int((table['status'] != 'ok').sum())} |")
    one, two = runs["Dask local cluster, 1 worker"][0], runs["Dask local cluster, 2 workers"][0]
    print(f"\nspeed-up from 1 to 2 workers: {one / two:.2f}×")
    tables = [t.drop(columns=list(TIMING_COLUMNS)) for _, t in runs.values()]
    same = all(t.equals(tables[0]) for t in tables[1:])
    print(f"tables identical across executors: {same}")
    ok = tables[0][tables[0]["status"] == "ok"]
    print(f"savings_frac over the points: min {ok['savings_frac'].min():.3f}, median {ok['savings_frac'].median():.3f}, "
          f"max {ok['savings_frac'].max():.3f}")


if __name__ == "__main__":
    main()
