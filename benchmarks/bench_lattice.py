"""Benchmark of the lattice: gate closure → committed block latency, messages/s, CPU and memory per node.

Usage: .venv/bin/python benchmarks/bench_lattice.py [--nodes 3 10] [--intervals 12] [--world hello]

For each node count, runs `plurigrid lattice up` in-process and on a 3-server JetStream cluster
started on free ports (`--nats auto`), and prints the close→commit latency per interval (p50, p99),
log messages per second, process CPU seconds and peak memory divided by the node count. The baseline
in the same run is the simulator clearing the same intervals of the same world in one process.
The nodes run as asyncio tasks of this one process, so CPU and memory per node are shares of it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

from plurigrid.engine.simulate import simulate
from plurigrid.engine.world import compile_world
from plurigrid.lattice.launcher import run_lattice
from plurigrid.microworld.loader import load


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--intervals", type=int, default=12)
    parser.add_argument("--world", default="hello")
    parser.add_argument("--close-after-s", type=float, default=2.0)
    args = parser.parse_args()

    spec, name, base = load(args.world)
    world = compile_world(spec, name, base, hours=None)
    t0 = time.perf_counter()
    simulate(world)
    sim_per_interval_ms = (time.perf_counter() - t0) / world.steps * 1000
    print(f"baseline: the simulator clears one interval of {name} ({world.n} participants) in "
          f"{sim_per_interval_ms:.1f} ms\n")
    print("| nodes | transport | intervals | agreed | close→commit p50 (ms) | p99 (ms) | messages/s | "
          "CPU s per node | peak MB per node | wall (s) |")
    print("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for nodes in args.nodes:
        for transport in ("inproc", "nats"):
            cpu0, t0 = _cpu_s(), time.perf_counter()
            report = asyncio.run(run_lattice(args.world, nodes, args.intervals, transport,
                                             "auto" if transport == "nats" else None,
                                             close_after_s=args.close_after_s))
            wall = time.perf_counter() - t0
            cpu = _cpu_s() - cpu0
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            lat = report["latency_ms"]
            print(f"| {nodes} | {transport} | {report['settled_intervals']} | {report['agreed']} | {lat['p50']:.1f} | "
                  f"{lat['p99']:.1f} | {report['messages'] / wall:,.0f} | {cpu / nodes:.2f} | {peak_mb / nodes:.0f} | "
                  f"{wall:.1f} |")


if __name__ == "__main__":
    main()
