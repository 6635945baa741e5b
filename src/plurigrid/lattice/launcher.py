"""A local lattice for demos, tests and experiments: N nexus nodes on one transport, and what they agreed.

Why: `plurigrid lattice up` must show in one command that independent nodes, each deciding only
for its own participants, clear every interval identically: the same state roots everywhere,
nothing lost, energy and money conserved to the Wh and the micro-unit. With `--nats auto` it
starts a real 3-server JetStream cluster on free loopback ports and stops it afterwards.

The nodes run as asyncio tasks of this process (each with its own world, replica, ledger, hash
graph and identity); identities are derived from the node's index so runs are reproducible.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import tempfile
from pathlib import Path

from plurigrid.engine.world import compile_world
from plurigrid.lattice.identity import Identity
from plurigrid.lattice.natsd import NatsCluster
from plurigrid.lattice.transport import InprocBus, InprocTransport, NatsTransport, Transport
from plurigrid.microworld.loader import load
from plurigrid.node.nexus import Nexus, NodeReport
from plurigrid.state.ledger import balances, verify

TRANSPORTS = ("inproc", "nats")


class LatticeError(ValueError):
    """A bad launcher option (user error)."""


def node_identity(index: int) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"plurigrid-node-{index}".encode()).digest())


def assign(ids: list[str], dids: list[str]) -> dict[str, tuple[str, ...]]:
    """Participants dealt round-robin over the nodes (in the world's order)."""
    return {did: tuple(ids[n::len(dids)]) for n, did in enumerate(dids)}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run_lattice(world: str, nodes: int, intervals: int | None, transport: str = "inproc",
                      nats: str | None = None, data_dir: Path | None = None, close_after_s: float = 2.0) -> dict:
    """Runs the lattice and returns its report (see `plurigrid lattice up --json`)."""
    if nodes < 1:
        raise LatticeError(f"--nodes: must be >= 1, got {nodes}")
    if transport not in TRANSPORTS:
        raise LatticeError(f"--transport: unknown transport {transport!r}; expected one of {', '.join(TRANSPORTS)}")
    spec, name, base = load(world)
    worlds = [compile_world(spec, name, base) for _ in range(nodes)]
    steps = worlds[0].steps if intervals is None else min(intervals, worlds[0].steps)
    if steps < 1:
        raise LatticeError(f"--intervals: must be >= 1, got {intervals}")
    identities = [node_identity(i) for i in range(nodes)]
    hosts = assign(worlds[0].ids, [i.did for i in identities])
    cluster = None
    tmp = tempfile.TemporaryDirectory(prefix="plurigrid-lattice-") if data_dir is None else None
    root = Path(tmp.name) if tmp is not None else data_dir
    try:
        if transport == "inproc":
            bus = InprocBus()
            transports: list[Transport] = [InprocTransport(bus) for _ in range(nodes)]
        else:
            if nats is None or nats == "auto":
                cluster = NatsCluster(3).start()
                urls = cluster.urls
            else:
                urls = [u.strip() for u in nats.split(",") if u.strip()]
            stream = "PLURIGRID_" + hashlib.sha256(str(root).encode()).hexdigest()[:12].upper()
            transports = [NatsTransport(urls, stream=stream, prefix=stream.lower()) for _ in range(nodes)]
        nexuses = [Nexus(identity, w, hosts, t, root / f"node-{i}", close_after_s)
                   for i, (identity, w, t) in enumerate(zip(identities, worlds, transports))]
        try:
            reports: list[NodeReport] = await asyncio.gather(*(n.run(steps) for n in nexuses))
        finally:
            for n in nexuses:
                await n.close()
        return _summary(name, steps, reports, [n.data_dir for n in nexuses])
    finally:
        if cluster is not None:
            cluster.stop()
        if tmp is not None:
            tmp.cleanup()


def _summary(name: str, steps: int, reports: list[NodeReport], folders: list[Path]) -> dict:
    finals = {r.did: (r.roots[-1] if r.roots else "") for r in reports}
    money = []
    for folder in folders:
        verify(folder)  # every node's ledger replays to its roots (raises LedgerError if not)
        money.append(sum(a["balance_micro"] for a in balances(folder)[1].values()))
    latencies = [ms for r in reports for ms in r.latencies_ms]
    return {
        "microworld": name.removesuffix(".toml"),
        "nodes": len(reports),
        "intervals": steps,
        "agreed": len({tuple(r.roots) for r in reports}) == 1 and all(len(r.roots) == steps for r in reports),
        "state_roots": finals,
        "settled_intervals": min(len(r.roots) for r in reports),
        "lost_settlements": sum(steps - len(r.roots) for r in reports),
        "energy_residual_wh": 0,  # each block is refused unless metered + losses == upstream (ledger.apply_block)
        "money_residual_micro": max(money, key=abs),
        "rejected_messages": sum(r.rejected for r in reports),
        "late_decisions": sum(r.late for r in reports),
        "missing_decisions": max(r.missing for r in reports),
        "messages": sum(r.appended for r in reports),
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99),
                       "mean": statistics.fmean(latencies) if latencies else 0.0},
        "faults_applied": [],
    }
