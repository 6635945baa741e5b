"""A local lattice for demos, tests and experiments: N nexus nodes on one transport, and what they agreed.

Why: `plurigrid lattice up` must show in one command that independent nodes, each deciding only
for its own participants, clear every interval identically: the same state roots everywhere,
nothing lost, energy and money conserved to the Wh and the micro-unit. With `--nats auto` it
starts a real 3-server JetStream cluster on free loopback ports and stops it afterwards.

On NATS every node is its own OS process (`plurigrid node --config NODE.toml`, with a genesis file
written here), or `nodes_per_process` of them share one; a kill is a SIGKILL, a partition cuts the
relays between the node and its servers (`proxy.Relay`), and the launcher follows the log itself
to apply each fault when the lattice reaches its interval. In-process (`inproc`), the nodes are
asyncio tasks of this process, each with its own world, replica, ledger, hash graph and identity.
Identities are derived from the node's index, so runs are reproducible.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from plurigrid.errors import PlurigridError
from plurigrid.lattice.aio import cancel
from plurigrid.lattice.faults import Fault, parse_fault
from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.lattice.hashgraph import Rejected, parse
from plurigrid.lattice.natsd import NatsCluster
from plurigrid.lattice.proxy import Relay
from plurigrid.lattice.replica import CLOSE
from plurigrid.lattice.transport import InprocBus, InprocTransport, NatsTransport
from plurigrid.node.nexus import Nexus, NodeReport
from plurigrid.node.runner import REPORT, SharedWorlds, check_clearable, timing
from plurigrid.state.identity import Identity
from plurigrid.state.ledger import BLOCKS, balances, verify

TRANSPORTS = ("inproc", "nats")


class LatticeError(PlurigridError, ValueError):
    """A bad launcher option (user error)."""


def node_seed(index: int) -> bytes:
    """The Ed25519 seed of the launcher's node `index` (reproducible runs)."""
    return hashlib.sha256(f"plurigrid-node-{index}".encode()).digest()


def node_identity(index: int) -> Identity:
    return Identity.from_seed(node_seed(index))


def assign(ids: list[str], dids: list[str]) -> dict[str, tuple[str, ...]]:
    """Participants dealt round-robin over the nodes (in the world's order)."""
    return {did: tuple(ids[n::len(dids)]) for n, did in enumerate(dids)}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run_lattice(world: str, nodes: int, intervals: int | None, transport: str = "inproc",
                      nats: str | None = None, data_dir: Path | None = None, close_after_s: float = 2.0,
                      faults: Sequence[str] = (), nodes_per_process: int = 1, speed: float | None = None,
                      netns: Sequence[str] = (), nats_host: str | None = None, sealed_bids: bool = False) -> dict:
    """Runs the lattice (applying `faults` as it goes) and returns its report (`plurigrid lattice up --json`).

    `netns`: network namespaces the node processes run in, round-robin (on nats); their servers must be
    reachable from there, e.g. an auto cluster listening on `nats_host`, a bridge's address
    (`lattice.netns.VethNetwork`)."""
    if nodes < 1:
        raise LatticeError(f"--nodes: must be >= 1, got {nodes}")
    if speed is not None and not speed > 0:
        raise LatticeError(f"--speed: must be > 0, got {speed}")
    if nodes_per_process < 1:
        raise LatticeError(f"--nodes-per-process: must be >= 1, got {nodes_per_process}")
    if transport not in TRANSPORTS:
        raise LatticeError(f"--transport: unknown transport {transport!r}; expected one of {', '.join(TRANSPORTS)}")
    auto = transport == "nats" and (nats is None or nats == "auto")
    if netns and transport != "nats":
        raise LatticeError("--netns: network namespaces hold node processes; they need --transport nats")
    if nats_host is not None and not auto:
        raise LatticeError("--nats-host: the address of a cluster started with --nats auto; give --nats URLs otherwise")
    if netns and auto and nats_host is None:
        raise LatticeError("--netns: nodes in network namespaces cannot reach a cluster on 127.0.0.1; give --nats-host "
                           "(an address they reach, such as their bridge's) or --nats URLs")
    missing = _missing_namespaces(netns)
    if missing:
        raise LatticeError(f"--netns: no network namespace {missing!r} (ip netns list shows them)")
    if netns and any(f.startswith("partition:") for f in faults):
        raise LatticeError("--fault partition: cuts a node's relays on this host's loopback, which a node in --netns "
                           "cannot reach; take its link down instead")
    plan = [parse_fault(f, nodes, 3 if auto else 0) for f in faults]
    world = str(Path(world).resolve()) if world.endswith(".toml") else world  # node processes start elsewhere
    worlds = SharedWorlds()
    first = worlds.get(world, ())
    name = first.name
    steps = min(first.steps if intervals is None else intervals, first.steps)
    if steps < 1:
        raise LatticeError(f"--intervals: must be >= 1, got {intervals}")
    if first.n < nodes:
        raise LatticeError(f"--nodes: {name} has {first.n} participants, too few for {nodes} nodes")
    check_clearable(first, first.policies, f"--microworld {name}")
    identities = [node_identity(i) for i in range(nodes)]
    cluster = None
    tmp = tempfile.TemporaryDirectory(prefix="plurigrid-lattice-") if data_dir is None else None
    root = Path(tmp.name) if tmp is not None else data_dir
    assert root is not None  # tmp is made exactly when there is no data_dir
    root.mkdir(parents=True, exist_ok=True)
    hosts = assign(first.ids, [i.did for i in identities])
    genesis = Genesis(world, tuple(Member(f"node-{i}", ident.did, hosts[ident.did]) for i, ident in enumerate(identities)),
                      close_after_s, heartbeat_s=max(0.2, nodes / 100),  # every node hears every heartbeat
                      interval_s=None if speed is None else first.dt_h * 3600 / speed, sealed_bids=sealed_bids)
    lattice: _Lattice | _ProcessLattice
    try:
        if transport == "inproc":
            bus = InprocBus()
            lattice = _Lattice(genesis, worlds, identities, lambda: InprocTransport(bus), root, plan, None, steps)
            reports = await lattice.run()
        else:
            if auto:
                cluster = NatsCluster(3, nats_host or "127.0.0.1").start()
                urls = cluster.urls
            else:
                assert nats is not None  # not auto: --nats names the servers
                urls = [u.strip() for u in nats.split(",") if u.strip()]
            lattice = _ProcessLattice(genesis, identities, root, urls, plan, cluster, steps, nodes_per_process, list(netns))
            reports = await lattice.run()
        honest = [i for i in range(nodes) if i not in lattice.byzantine and i not in lattice.down]
        return _summary(name, steps, [reports[i] for i in honest], [lattice.folder(i) for i in honest],
                        [str(f) for f in lattice.applied], sum(r.rejected for r in reports.values()))
    finally:
        if cluster is not None:
            cluster.stop()
        if tmp is not None:
            tmp.cleanup()


def _missing_namespaces(names: Sequence[str]) -> str | None:
    """The first of `names` that is not a network namespace of this host (None if all are)."""
    if not names:
        return None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout if shutil.which("ip") else ""
    present = {line.split()[0] for line in listed.splitlines() if line.strip()}
    return next((n for n in names if n not in present), None)


class _Chaos:
    """The fault plan of a run, applied as the lattice reaches each fault's interval (by either kind of lattice)."""

    def __init__(self, root: Path, plan: list[Fault], cluster: NatsCluster | None, steps: int) -> None:
        self.root, self.cluster, self.steps = root, cluster, steps
        self.byzantine = {f.target for f in plan if f.kind == "byzantine"}
        self.applied: list[Fault] = [f for f in plan if f.kind == "byzantine"]
        self.pending = sorted((f for f in plan if f.kind != "byzantine"), key=lambda f: f.start)
        self.down: set[int] = set()
        self._healed: set[Fault] = set()

    def folder(self, i: int) -> Path:
        return self.root / f"node-{i}"

    async def advance(self, k: int) -> None:
        """Interval k starts: heal the partitions that ended before it and apply the faults due."""
        for fault in self.applied:
            if fault.kind == "partition" and fault not in self._healed:
                assert fault.end is not None  # parse_fault gives every partition its end
                if fault.end < k:
                    self._healed.add(fault)
                    self._heal(fault.target)
        while self.pending and self.pending[0].start <= k:
            fault = self.pending.pop(0)
            self.applied.append(fault)
            i = fault.target
            if fault.kind == "kill":
                self.down.add(i)
                self._kill(i)
            elif fault.kind == "restart" and i in self.down:
                self.down.discard(i)
                self._restart(i)
            elif fault.kind == "partition":
                self._cut(i)
            elif fault.kind == "nats-kill" and self.cluster is not None:
                self.cluster.servers[i - 1].kill()
            elif fault.kind == "nats-restart" and self.cluster is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.cluster.servers[i - 1].start)

    def _kill(self, i: int) -> None: ...

    def _restart(self, i: int) -> None: ...

    def _cut(self, i: int) -> None: ...

    def _heal(self, i: int) -> None: ...


class _Lattice(_Chaos):
    """Nodes as asyncio tasks of this process on the in-process bus; the first node to reach an interval applies its faults."""

    def __init__(self, genesis: Genesis, worlds: SharedWorlds, identities: list[Identity], make_transport, root: Path,
                 plan: list[Fault], cluster: NatsCluster | None, steps: int) -> None:
        super().__init__(root, plan, cluster, steps)
        self.genesis, self.worlds, self.hosts = genesis, worlds, genesis.hosts
        self.identities, self.make_transport = identities, make_transport
        self.nexus: dict[int, Nexus] = {}
        self.tasks: dict[int, asyncio.Task] = {}
        self._closing: list[Nexus] = []
        self._lock = asyncio.Lock()

    def _start(self, i: int) -> None:
        victim = self.identities[(i + 1) % len(self.identities)].did if i in self.byzantine else None
        if i in self.nexus:  # a restart: the crashed instance's connections go once it has stopped
            self._closing.append(self.nexus[i])
            self.nexus[i].stopped = self.tasks[i]
        nexus = Nexus(self.identities[i], self.worlds.get(self.genesis.microworld, self.hosts[self.identities[i].did]),
                      self.hosts, self.make_transport(), self.folder(i), **timing(self.genesis), byzantine_victim=victim,
                      on_interval=self.at_interval)
        self.nexus[i] = nexus
        self.tasks[i] = asyncio.ensure_future(nexus.run(self.steps))

    async def run(self) -> dict[int, NodeReport]:
        for i in range(len(self.identities)):
            self._start(i)
        reports: dict[int, NodeReport] = {}
        try:
            while any(not t.done() for i, t in self.tasks.items() if i not in self.down):
                await asyncio.sleep(0.02)
            for i, task in self.tasks.items():
                if i not in self.down:
                    reports[i] = task.result()
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), *(n.stopped for n in self._closing), return_exceptions=True)
            for nexus in [*self._closing, *self.nexus.values()]:
                await nexus.close()
        return reports

    async def at_interval(self, k: int, nexus: Nexus) -> None:
        """Called by every node as it starts interval k: the first to get there applies the faults due."""
        async with self._lock:
            await self.advance(k)

    def _kill(self, i: int) -> None:
        self.nexus[i].crash()  # it dies at its next step; never wait for it under the lock

    def _restart(self, i: int) -> None:
        self._start(i)

    def _cut(self, i: int) -> None:
        transport = self.nexus[i].transport
        assert isinstance(transport, InprocTransport)  # this lattice's nodes are on the in-process bus
        transport.partition()

    def _heal(self, i: int) -> None:
        transport = self.nexus[i].transport
        assert isinstance(transport, InprocTransport)  # this lattice's nodes are on the in-process bus
        transport.heal()


class _ProcessLattice(_Chaos):
    """Nodes as OS processes on NATS: writes their configs, starts them, follows the log, applies the faults."""

    def __init__(self, genesis: Genesis, identities: list[Identity], root: Path, urls: list[str], plan: list[Fault],
                 cluster: NatsCluster | None, steps: int, per_process: int, netns: list[str]) -> None:
        super().__init__(root, plan, cluster, steps)
        self.genesis, self.identities, self.urls, self.per_process = genesis, identities, urls, per_process
        self.netns = netns
        self.targets = {f.target for f in plan if not f.kind.startswith("nats-")}  # each in a process of its own
        self.partitioned = {f.target for f in plan if f.kind == "partition"}
        self.relays: dict[int, list[Relay]] = {}
        self.procs: dict[int, subprocess.Popen] = {}  # first node of a group → its process
        self.groups: dict[int, list[int]] = {}
        self._blocks_read: dict[int, tuple[int, int]] = {}  # node → (bytes of its block file read, blocks seen)

    def _write_node(self, i: int, servers: list[str]) -> None:
        folder = self.folder(i)
        folder.mkdir(parents=True, exist_ok=True)
        key = folder / "identity.key"
        if not key.exists():
            key.write_bytes(node_seed(i))
            key.chmod(0o600)
        member = self.genesis.members[i]
        config = folder / "NODE.toml"
        config.write_text(f'[node]\nname = "{member.name}"\ndata_dir = "."\nparticipants = {json.dumps(list(member.participants))}\n'
                          f'\n[lattice]\ngenesis = "../genesis.json"\n\n[transport]\nservers = {json.dumps(servers)}\n',
                          encoding="utf-8")

    def _spawn(self, first: int) -> None:
        group = self.groups[first]
        inside = ["ip", "netns", "exec", self.netns[list(self.groups).index(first) % len(self.netns)]] if self.netns else []
        args = [*inside, sys.executable, "-m", "plurigrid.cli.main", "node", "--intervals", str(self.steps),
                "--join-timeout-s", "120"]
        for i in group:
            args += ["--config", str(self.folder(i) / "NODE.toml")]
        if first in self.byzantine:
            args.append("--byzantine")
        log = (self.root / f"process-{first}.log").open("ab")
        self.procs[first] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    async def run(self) -> dict[int, NodeReport]:
        self.genesis.save(self.root / "genesis.json")
        for i in range(len(self.identities)):
            servers = self.urls
            if i in self.partitioned:
                self.relays[i] = [Relay(u.hostname, u.port or 4222) for u in map(urlparse, self.urls)]
                servers = [await relay.start() for relay in self.relays[i]]
            self._write_node(i, servers)
        others = [i for i in range(len(self.identities)) if i not in self.targets]
        self.groups = {i: [i] for i in sorted(self.targets)} | {
            others[n]: others[n:n + self.per_process] for n in range(0, len(others), self.per_process)}
        for first in self.groups:
            self._spawn(first)
        # the launcher follows the lattice through servers no fault kills: a failover of its own would stall the
        # fault schedule while the nodes go on (a restart due at interval 8 could come after the last interval)
        killed = {f.target for f in self.pending if f.kind == "nats-kill"}
        steady = [url for j, url in enumerate(self.urls, start=1) if j not in killed] or self.urls
        observer = NatsTransport(steady, stream=self.genesis.stream, prefix=self.genesis.stream.lower(),
                                 replicas=min(3, len(self.urls)))  # the stream spans the whole cluster
        await observer.start()
        progress: dict[str, Any] = {"next": 0, "at": time.monotonic()}  # the interval the lattice is in, and since when
        follower = asyncio.ensure_future(self._follow(observer, progress))
        try:
            while any(p.poll() is None for first, p in self.procs.items() if first not in self.down):
                committed = self._committed()
                if committed > progress["next"]:  # the log's view lags (a consumer moving to a new stream leader)
                    progress.update(next=committed, at=time.monotonic())
                await self.advance(progress["next"])
                if time.monotonic() - progress["at"] > 180:
                    raise LatticeError(f"the lattice made no progress for 180 s (see the logs in {self.root})")
                await asyncio.sleep(0.05)
        finally:
            await cancel(follower)
            await observer.close()
            for p in self.procs.values():
                if p.poll() is None:
                    p.kill()
                p.wait()
            for relays in self.relays.values():
                for relay in relays:
                    await relay.close()
        return {i: self._report(i) for i in range(len(self.identities)) if i not in self.down}

    async def _follow(self, observer: NatsTransport, progress: dict) -> None:
        """Tracks the lattice's interval: the first signed close of interval k by a member starts k + 1."""
        members = set(self.genesis.hosts)
        async for _, data in observer.read(0):
            try:
                op = parse(data)
            except Rejected:
                continue
            if (op.kind == CLOSE and op.author in members and type(op.payload.get("interval")) is int
                    and op.payload["interval"] + 1 > progress["next"]):
                progress.update(next=op.payload["interval"] + 1, at=time.monotonic())

    def _committed(self) -> int:
        """The interval the lattice is in by the nodes' own ledgers: the most blocks any node has written.

        A second view of progress beside the log: when the launcher's consumer stalls (a stream leader
        moving after a server is killed), the faults due still come while the nodes go on. It only ever
        moves progress forward, so a block file that shrinks (rebuilt or sealed) is simply counted afresh."""
        most = 0
        for i in range(len(self.identities)):
            path = self.folder(i) / "ledger" / BLOCKS
            read, seen = self._blocks_read.get(i, (0, 0))
            try:
                with path.open("rb") as fh:
                    if os.fstat(fh.fileno()).st_size < read:  # rebuilt after a restart, or sealed: count afresh
                        read, seen = 0, 0
                    fh.seek(read)
                    chunk = fh.read()
            except OSError:  # not written yet
                continue
            complete = chunk[:chunk.rfind(b"\n") + 1]
            self._blocks_read[i] = (read + len(complete), seen + complete.count(b"\n"))
            most = max(most, self._blocks_read[i][1])
        return most

    def _kill(self, i: int) -> None:
        os.kill(self.procs[i].pid, signal.SIGKILL)

    def _restart(self, i: int) -> None:
        self.procs[i].wait()
        self._spawn(i)

    def _cut(self, i: int) -> None:
        for relay in self.relays[i]:
            relay.cut()

    def _heal(self, i: int) -> None:
        for relay in self.relays[i]:
            relay.heal()

    def _report(self, i: int) -> NodeReport:
        path = self.folder(i) / REPORT
        if not path.exists():
            raise LatticeError(f"node {i} stopped without a report (see {self.root / 'process-*.log'})")
        return NodeReport(**json.loads(path.read_text(encoding="utf-8")))


def _summary(name: str, steps: int, reports: list[NodeReport], folders: list[Path], faults: list[str],
             rejected: int) -> dict:
    finals = {r.did: (r.roots[-1] if r.roots else "") for r in reports}
    money = []
    for folder, report in zip(folders, reports):
        verify(folder, expect_signer=report.did)  # every node's ledger replays to its roots, signed by it
        money.append(sum(a["balance_micro"] for a in balances(folder)[1].values()))
    latencies = [ms for r in reports for ms in r.latencies_ms]
    return {
        "microworld": name.removesuffix(".toml"),
        "nodes": len(reports),
        "intervals": steps,
        "agreed": len({tuple(r.roots) for r in reports}) == 1 and all(len(r.roots) == steps for r in reports),
        "state_roots": finals,
        "settled_intervals": min(len(r.roots) for r in reports),
        # intervals a node did not settle, plus local-control records neither in a cut nor settled by their reading
        "lost_settlements": sum(steps - len(r.roots) + r.outbox["records"] - r.outbox["settled"] for r in reports),
        "energy_residual_wh": 0,  # each block is refused unless metered + losses == upstream (ledger.apply_block)
        "money_residual_micro": max(money, key=abs),
        "rejected_messages": rejected,
        "late_decisions": sum(r.late for r in reports),
        "missing_decisions": max(r.missing for r in reports),
        "offline_intervals": sum(r.offline_intervals for r in reports),
        "readings_settled": max(r.readings_taken for r in reports),
        "messages": sum(r.appended for r in reports),
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99),
                       "mean": statistics.fmean(latencies) if latencies else 0.0,
                       # without each node's first interval (opening every account, first imports on a cold node)
                       "p99_after_first": _percentile([ms for r in reports for ms in r.latencies_ms[1:]], 0.99)},
        "faults_applied": faults,
        # a module call only the wall-clock backstop stopped makes that node's decisions machine-dependent
        "reproducible": not any(r.host_faults for r in reports),
        "host_faults": [dict(fault, node=r.did) for r in reports for fault in r.host_faults],
        # node processes only (on nats): each process's CPU time and peak memory shared out over its nodes
        "cpu_s_per_node": statistics.fmean(r.cpu_s for r in reports),
        "peak_mb_per_node": statistics.fmean(r.peak_mb for r in reports),
    }
