"""Runs nexus nodes from their NODE.toml files: `plurigrid node --config NODE.toml` (one or several per process).

Why: a node is its own OS process on its own host; it needs nothing but its config, the lattice's
genesis file and a reachable NATS server. Several nodes may share one process (a flag of
`plurigrid lattice up`, for experiments at scale); they then share one compiled world when none
of them runs a WASM module (the world is read-only to the step, and each node keeps its own
replica state, ledger, hash graph, outbox and connection).
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from plurigrid.engine.world import World, compile_world
from plurigrid.lattice.genesis import Genesis, GenesisError
from plurigrid.lattice.replica import Cleared
from plurigrid.lattice.transport import NatsTransport
from plurigrid.microworld.loader import load
from plurigrid.microworld.privacy import DataPolicy, declared, merged
from plurigrid.microworld.privacy import problems as privacy_problems
from plurigrid.node.config import NodeConfig, detect_host, load_node_config
from plurigrid.node.nexus import Nexus, NodeReport
from plurigrid.privacy.views import periods
from plurigrid.state.identity import Identity

if TYPE_CHECKING:
    from plurigrid.devices.openadr import Ven
    from plurigrid.ibc.lattice import IbcService

REPORT = "report.json"


@dataclass(frozen=True)
class NodeSetup:
    config: NodeConfig
    data_dir: Path
    genesis: Genesis
    genesis_dir: Path
    identity: Identity


def prepare(config_path: Path) -> NodeSetup:
    """Reads the config, the genesis file and the node's key; checks the node is the member it claims to be."""
    config, data_dir = load_node_config(config_path)
    genesis_path = Path(config.lattice.genesis)
    genesis_path = genesis_path if genesis_path.is_absolute() else config_path.parent / genesis_path
    genesis = Genesis.load(genesis_path)
    identity = Identity.load_or_create(data_dir / "identity.key")
    member = genesis.member(identity.did, f"{config_path}: lattice.genesis")
    if tuple(config.node.participants) != member.participants:
        raise GenesisError(f"{config_path}: node.participants {config.node.participants} differ from the genesis "
                           f"file's {list(member.participants)} for this node")
    if config.transport.kind != "nats":
        raise GenesisError(f"{config_path}: transport.kind: a node process reaches its lattice over nats "
                           "(inproc exists only inside `plurigrid lattice up`)")
    return NodeSetup(config, data_dir, genesis, genesis_path.parent, identity)


class Timing(TypedDict):
    """Nexus's keyword arguments for the lattice's clock and gate rule."""

    close_after_s: float
    heartbeat_s: float
    interval_s: float | None
    sealed_bids: bool


def timing(genesis: Genesis) -> Timing:
    """The lattice's clock and gate rule, as every node must keep them (Nexus keyword arguments)."""
    return {"close_after_s": genesis.close_after_s, "heartbeat_s": genesis.heartbeat_s, "interval_s": genesis.interval_s,
            "sealed_bids": genesis.sealed_bids}


class SharedWorlds:
    """Compiled worlds for the nodes of one process: each with only its own participants' WASM modules.

    A world without modules is shared by every node of the process whose participants run none:
    the step only reads it, and each node keeps its own state (and runtime: power flows, modules).
    """

    def __init__(self) -> None:
        self._shared: dict[str, World] = {}

    def get(self, name: str, hosted: list[str] | tuple[str, ...]) -> World:
        cached = self._shared.get(name)
        if cached is not None and not any(cached.strategy[cached.ids.index(p)] == "module" for p in hosted):
            return cached
        spec, world_name, base = load(name)
        world = compile_world(spec, world_name, base, modules_for=hosted)
        if not world.modules:
            self._shared.setdefault(name, world)
        return world


def check_host(setup: NodeSetup, world: World, where: Path) -> None:
    """Refuses to start a node whose host cannot run one of its participants' modules (GenesisError, one line)."""
    host = detect_host([*setup.config.capabilities.devices, *(d.role for d in setup.config.device)])  # and its [[device]]s
    for plan in world.modules.values():
        reason = host.refuses(plan.manifest.capabilities, plan.manifest.limits.memory_mb)
        if reason is not None:
            raise GenesisError(f"{where}: participant {world.ids[plan.participant]!r}: module {plan.manifest.name}: {reason}")


def node_policies(setup: NodeSetup, world: World, where: Path) -> dict[str, DataPolicy]:
    """The node's participants' policies from its NODE.toml, on the world's (a version above the world's unless it
    names one); refuses (GenesisError, one line) any policy, the world's included, that a lattice cannot clear with."""
    policies = list(world.policies)
    own = {}
    for pid, declared_policy in setup.config.privacy.items():
        i = world.ids.index(pid)
        override = declared(declared_policy)
        own[pid] = policies[i] = merged(world.policies[i], override | {"version": override.get("version", world.policies[i].version + 1)})
    check_clearable(world, policies, str(where), set(own))
    return own


def check_clearable(world: World, policies: list[DataPolicy] | tuple[DataPolicy, ...], where: str,
                    from_node: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuses (GenesisError, one line) policies a lattice cannot clear with: every member reads what the clearing
    needs of every participant, per interval. `from_node`: the participants whose policy the node's config set."""
    buses = [str(b) for b in world.grid.net.bus.name.to_numpy()[world.bus_pos]]
    for problem in privacy_problems(policies, buses, lattice=True)[:1]:
        pid = world.ids[problem.participant]
        raise GenesisError(f"{where}: privacy.{pid}.{problem}" if pid in from_node else f"{where}: {pid}: privacy.{problem}")


def _world_name(setup: NodeSetup) -> str:
    name = setup.genesis.microworld
    return str(setup.genesis_dir / name) if name.endswith(".toml") and not Path(name).is_absolute() else name


async def _ibc_services(setups: list[NodeSetup], nodes: list[Nexus]) -> list:
    """The IBC services of the nodes whose config has [ibc], started (each follows the lattice's IBC log), each
    told of its node's cleared intervals to issue its participants' fed-in energy as credits."""
    from plurigrid.ibc.lattice import IbcService

    services = []
    for setup, node in zip(setups, nodes):
        if setup.config.ibc is None:
            continue
        service = IbcService(setup.identity, setup.genesis, setup.config.transport.servers, setup.data_dir / "ibc",
                             setup.config.ibc.chain_id)
        node.on_cleared.append(_issuer(service, node))
        await service.start()
        services.append(service)
    return services


async def _ven(setup: NodeSetup, node: Nexus) -> Ven:
    """The node's OpenADR VEN, registered with its VTN; participants with a battery or deferrable load can take part."""
    from plurigrid.devices.openadr import Ven

    section = setup.config.openadr
    assert section is not None
    world = node.world

    def flexible(pid: str) -> bool:
        i = world.ids.index(pid)
        return bool(world.batteries.capacity_kwh[i] > 0 or world.demand.flexible_frac[i] > 0)

    assert section.vtn_url is not None
    ven = Ven(section.vtn_url, section.ven_name or setup.config.node.name, tuple(setup.config.node.participants), flexible,
              tuple(section.opt_out))
    await ven.start()
    return ven


class _Totals:
    """A node's group-totals service on its own NATS connection (privacy/totals.py), closed with it."""

    def __init__(self, setup: NodeSetup, node: Nexus) -> None:
        from plurigrid.privacy.totals import TotalsService

        def cleared(k: int) -> Cleared | None:
            return node.replica.cleared[k] if k < node.replica.next_interval else None
        self.servers = setup.config.transport.servers
        self.service = TotalsService(setup.identity, setup.genesis, node.world, cleared)
        self.nc: Any = None

    async def start(self) -> None:
        import nats

        self.nc = await nats.connect(servers=self.servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        await self.service.start(self.nc)

    async def close(self) -> None:
        await self.service.close()
        if self.nc is not None:
            await self.nc.close()


async def _totals_services(setups: list[NodeSetup], nodes: list[Nexus]) -> list[_Totals]:
    """Where the genesis names an operator: each node answers its group totals (started here)."""
    services = [_Totals(setup, node) for setup, node in zip(setups, nodes) if setup.genesis.operator is not None]
    for service in services:
        await service.start()
    return services


def _issuer(service: IbcService, node: Nexus) -> Callable[[Cleared], None]:
    """What a node tells its IBC service of each cleared interval: what its own participants fed in (Wh), at the
    granularity each one's policy gives the public (other chains see the credits): each interval's, the sum of
    each hour or day once its last interval is cleared, or none at all (`aggregate` and `none`)."""
    world = node.world
    index = {pid: world.ids.index(pid) for pid in node.hosted}
    granularity = {pid: node.consents.get(pid, world.policies[i]).granularity("meter", "public") for pid, i in index.items()}
    period = {g: periods(world.index, g) for g in set(granularity.values()) if g in ("interval", "hourly", "daily")}
    sums: dict[str, int] = dict.fromkeys(index, 0)

    def settled(cleared: Cleared) -> None:
        k = cleared.header.interval
        metered = cleared.result.settlement.metered_wh
        due: dict[str, dict[str, int]] = {}
        for pid, i in index.items():
            g = granularity[pid]
            if g not in period:
                continue
            sums[pid] += -int(metered[i])
            of = period[g]
            if k + 1 == len(of) or of[k + 1] != of[k]:  # the period's last interval
                first = int(np.flatnonzero(of == of[k])[0])
                due.setdefault({"interval": f"interval-{k}", "hourly": f"hour-{first}", "daily": f"day-{first}"}[g], {})[pid] = sums[pid]
                sums[pid] = 0
        for memo, fed_in in due.items():
            service.settled(memo, fed_in)
    return settled


async def run_nodes(config_paths: list[Path], intervals: int | None = None, byzantine: bool = False,
                    join_timeout_s: float = 30.0) -> list[NodeReport]:
    """Runs the nodes until they have cleared `intervals` (default: the whole world); writes each one's report.json.
    Nodes with [ibc] go on serving their lattice's IBC chain afterwards, and nodes of a lattice with an operator
    its group totals, until the process is stopped."""
    setups = [prepare(path) for path in config_paths]
    worlds = SharedWorlds()
    nodes = []
    for path, setup in zip(config_paths, setups):
        genesis = setup.genesis
        world = worlds.get(_world_name(setup), setup.config.node.participants)
        check_host(setup, world, path)
        consents = node_policies(setup, world, path)
        dids = [m.did for m in genesis.members]
        victim = dids[(dids.index(setup.identity.did) + 1) % len(dids)] if byzantine else None
        transport = NatsTransport(setup.config.transport.servers, stream=genesis.stream, prefix=genesis.stream.lower())
        nodes.append(Nexus(setup.identity, world, genesis.hosts,
                           transport, setup.data_dir, **timing(genesis), fallback_strategy=setup.config.node.fallback_strategy,
                           join_timeout_s=join_timeout_s, byzantine_victim=victim, consents=consents))
        modules = nodes[-1].replica.state.runtime.modules
        if consents and modules is not None:  # its modules read what its participants' own policies allow
            modules.apply_policies(tuple(consents.get(pid, p) for pid, p in zip(world.ids, world.policies)))
    services = await _ibc_services(setups, nodes) + await _totals_services(setups, nodes)
    vtns: list = []
    for setup, node in zip(setups, nodes):
        if setup.config.device:
            from plurigrid.node.devices import connect

            node.devices = await connect(setup.config.device, setup.config.mqtt)
        openadr = setup.config.openadr
        if openadr is not None and openadr.vtn is not None:  # an aggregator: its VTN first, so its own VEN can register
            from plurigrid.devices.openadr import Vtn

            vtn = Vtn(openadr.vtn.host, openadr.vtn.port)
            await vtn.start()
            node.on_cleared.append(vtn.issue_when_dear(node.world.index, openadr.vtn.price_threshold_eur_per_kwh,
                                                       timedelta(minutes=openadr.vtn.event_minutes), openadr.vtn.level))
            vtns.append(vtn)
        if openadr is not None and openadr.vtn_url is not None:
            node.demand_response = await _ven(setup, node)
    servers = []
    for setup, node in zip(setups, nodes):
        if setup.config.grpc is not None:
            from plurigrid.node.grpc_api import serve

            servers.append(await serve(node, setup.config.grpc.host, setup.config.grpc.port))
    try:
        try:
            reports = await asyncio.gather(*(n.run(intervals if intervals is not None else n.world.steps) for n in nodes))
        finally:
            for n in nodes:
                await n.close()
                if n.devices is not None:
                    await n.devices.close()
                if n.demand_response is not None:
                    await n.demand_response.stop()
        _write_reports(setups, reports)
        if services:
            await asyncio.Event().wait()  # IBC and group totals go on until the process is stopped
    finally:
        for service in services:
            await service.close()
        for server in servers:
            await server.stop(grace=1.0)
        for vtn in vtns:
            await vtn.stop()
    return list(reports)


def _write_reports(setups: list[NodeSetup], reports: list[NodeReport]) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for setup, report in zip(setups, reports):
        report.cpu_s = (usage.ru_utime + usage.ru_stime) / len(reports)
        report.peak_mb = usage.ru_maxrss / 1024 / len(reports)
        (setup.data_dir / REPORT).write_text(json.dumps(report.to_json()) + "\n", encoding="utf-8")
