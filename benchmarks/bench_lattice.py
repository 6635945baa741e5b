"""Benchmark of the lattice: gate closure → committed block latency, messages/s, CPU and memory per node.

Usage:
    .venv/bin/python benchmarks/bench_lattice.py [--nats 10 50 100] [--inproc 1000] [--intervals 4]
        [--nats-world benchmarks/worlds/mv-urban.toml] [--inproc-world benchmarks/worlds/hvmv-urban.toml]
        [--nodes-per-process 10] [--netns 4]

Over NATS, each run starts a 3-server JetStream cluster on free ports (`--nats auto`) and the nodes
as OS processes (`--nodes-per-process` of them per process; CPU and peak memory per node are each
process's shared out over its nodes). In-process, all nodes are asyncio tasks of this process
sharing one compiled world; CPU and memory per node are this process's divided by the node count.
Every node replicates the whole clearing, so the total work grows with nodes × participants.
The baseline in the same run is the simulator clearing the same intervals of the same world alone.
With `--netns K` (root), the NATS runs put their node processes in K network namespaces joined by veth
pairs to a bridge the cluster listens on (`plurigrid.lattice.netns`), so every message crosses a real
interface; the table then also gives the bytes the namespaces sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
from pathlib import Path

from plurigrid.engine.ledger_entries import RunLedger
from plurigrid.engine.step import initial_state, step
from plurigrid.engine.world import compile_world
from plurigrid.lattice.netns import VethNetwork
from plurigrid.microworld.loader import load
from plurigrid.node.launcher import run_lattice


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _baseline(world_name: str, intervals: int) -> str:
    """The simulator alone stepping the same intervals into its ledger (what each node's replica repeats)."""
    spec, name, base = load(world_name)
    world = compile_world(spec, name, base)
    state = initial_state(world)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = RunLedger(Path(tmp) / "ledger")
        t0 = time.perf_counter()
        for k in range(intervals):
            ledger.commit(world, k, step(world, state, k))
        per_interval_ms = (time.perf_counter() - t0) / intervals * 1000
        ledger.close()
    return f"{name}: {world.n} participants; the simulator alone clears and commits one interval in {per_interval_ms:.1f} ms"


def _row(nodes: int, transport: str, world: str, intervals: int, close_after_s: float, per_process: int,
         net: VethNetwork | None = None) -> str:
    cpu0, t0 = _cpu_s(), time.perf_counter()
    sent0 = net.rx_bytes() if net is not None else {}
    report = asyncio.run(run_lattice(world, nodes, intervals, transport, "auto" if transport == "nats" else None,
                                     close_after_s=close_after_s, nodes_per_process=per_process,
                                     netns=net.namespaces if net is not None else (),
                                     nats_host=net.host_ip if net is not None else None))
    wall = time.perf_counter() - t0
    if transport == "nats":
        cpu, peak_mb = report["cpu_s_per_node"], report["peak_mb_per_node"]
    else:
        cpu, peak_mb = (_cpu_s() - cpu0) / nodes, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / nodes
    lat = report["latency_ms"]
    if net is not None:
        sent = sum(net.rx_bytes().values()) - sum(sent0.values())
        transport = f"nats in {len(net.namespaces)} namespaces ({sent / 2**20:.1f} MiB over veth)"
    return (f"| {nodes} | {transport} | {report['microworld']} | {report['settled_intervals']} | {report['agreed']} | "
            f"{lat['p50']:.0f} | {lat['p99']:.0f} | {lat['p99_after_first']:.0f} | {report['messages'] / wall:,.0f} | {cpu:.2f} | {peak_mb:.1f} | "
            f"{wall:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats", type=int, nargs="*", default=[10, 50, 100])
    parser.add_argument("--inproc", type=int, nargs="*", default=[1000])
    parser.add_argument("--intervals", type=int, default=4)
    parser.add_argument("--nats-world", default="benchmarks/worlds/mv-urban.toml")
    parser.add_argument("--inproc-world", default="benchmarks/worlds/hvmv-urban.toml")
    parser.add_argument("--nodes-per-process", type=int, default=10)
    parser.add_argument("--close-after-s", type=float, default=30.0)
    parser.add_argument("--netns", type=int, default=0, help="run the NATS nodes' processes in this many network namespaces")
    args = parser.parse_args()

    for world in {args.nats_world: None, args.inproc_world: None}:
        print("baseline:", _baseline(world, args.intervals))
    print("\n| nodes | transport | world | intervals | agreed | close→commit p50 (ms) | p99 (ms) | p99 after the first interval (ms) | messages/s | "
          "CPU s per node | peak MB per node | wall (s) |")
    print("|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(VethNetwork(args.netns)) if args.netns else None
        for nodes in args.nats:
            print(_row(nodes, "nats", args.nats_world, args.intervals, args.close_after_s, args.nodes_per_process, net), flush=True)
    for nodes in args.inproc:
        print(_row(nodes, "inproc", args.inproc_world, args.intervals, args.close_after_s, 1), flush=True)


if __name__ == "__main__":
    main()
