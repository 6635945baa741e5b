"""Group totals for the operator by secure aggregation: a feeder's or a coalition's net energy and the flexibility its
participants offer, per interval, summed over the lattice's nodes without anyone learning a node's part.

Why: a grid operator needs each feeder's net energy per interval (to plan, and to settle its losses) and the
flexibility on offer there; a coalition needs its own totals. Participants may keep their meter from the operator
(`privacy.meter.operator` coarser than `interval`). Each member node holds its participants' cleared intervals, so
the operator runs `secagg` with the nodes that host the group's participants: each contributes the sums of its own
ones there, masked, and the operator unmasks only the group's totals.

A group is `bus:<bus>` (a feeder: the participants at that bus) or `coalition:<name>` (the genesis file's
`coalitions`). The operator is the genesis file's `operator` (its did:key signs every request). A node answers
each group and interval once, only for cleared intervals and only when asked together with every node of the
group, so the operator cannot learn a node's part by asking twice over different sets. A group whose participants
sit on fewer than three nodes cannot be aggregated (secure aggregation needs three members).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from plurigrid.engine.world import World
from plurigrid.errors import UsageError
from plurigrid.lattice.genesis import Genesis
from plurigrid.lattice.replica import Cleared
from plurigrid.privacy.secagg import SecAggError, Setup
from plurigrid.privacy.secagg_nats import SecAggService, aggregate_over_nats
from plurigrid.state.identity import Identity

SESSION = "totals"
QUANTITIES = ("net_wh", "flexibility_wh")


class TotalsError(UsageError):
    """Group totals that cannot be asked for or given (one line)."""


def prefix_of(genesis: Genesis) -> str:
    """The NATS subject prefix of the lattice's group aggregations."""
    return genesis.stream.lower() + "_totals"


def session_of(genesis: Genesis, group: str, interval: int) -> str:
    return f"{genesis.id[:16]}/{SESSION}/{group}/{interval}"


def participants_of(world: World, genesis: Genesis, group: str) -> set[int]:
    """The participants (indices) of `bus:<bus>` or `coalition:<name>`; empty for an unknown group."""
    kind, _, name = group.partition(":")
    if kind == "bus":
        buses = world.grid.net.bus.name.to_numpy()[world.bus_pos]
        return {i for i, b in enumerate(buses) if str(b) == name}
    if kind == "coalition":
        index = {pid: i for i, pid in enumerate(world.ids)}
        return {index[p] for p in dict(genesis.coalitions).get(name, ()) if p in index}
    return set()


def members_of(world: World, genesis: Genesis, group: str) -> dict[str, list[int]]:
    """The nodes that host the group's participants, with those participants' indices."""
    inside = participants_of(world, genesis, group)
    index = {pid: i for i, pid in enumerate(world.ids)}
    hosted = {did: sorted(index[p] for p in pids if index[p] in inside) for did, pids in genesis.hosts.items()}
    return {did: rows for did, rows in hosted.items() if rows}


def flexibility_wh(world: World, cleared: Cleared) -> np.ndarray:
    """The upward flexibility each participant offers for the interval after `cleared` (Wh): what its battery could
    deliver in one interval (power- and charge-limited, after losses) plus the deferrable share of its served load."""
    b = world.batteries
    battery_kwh = np.minimum(b.power_kw * world.dt_h, np.maximum(cleared.soc_kwh - b.min_kwh, 0.0) * b.efficiency)
    deferrable_kwh = world.demand.flexible_frac * np.maximum(cleared.result.served_kw, 0.0) * world.dt_h
    return np.rint((battery_kwh + deferrable_kwh) * 1000).astype(np.int64)


class TotalsService:
    """A member node's side: answers the operator's group aggregations with its own participants' numbers."""

    def __init__(self, identity: Identity, genesis: Genesis, world: World, cleared: Callable[[int], Cleared | None]) -> None:
        """`cleared(k)`: interval k as this node's replica cleared it (None while it is not cleared)."""
        if genesis.operator is None:
            raise ValueError("the genesis file names no operator")
        self.identity, self.genesis, self.world, self.cleared = identity, genesis, world, cleared
        self.answered: set[tuple[str, int]] = set()
        self.service: SecAggService | None = None

    def value_of(self, setup: Setup) -> list[int] | None:
        lattice, kind, rest = (setup.session.split("/", 2) + ["", ""])[:3]
        group, _, interval = rest.rpartition("/")
        if lattice != self.genesis.id[:16] or kind != SESSION or not interval.isdigit() or (group, int(interval)) in self.answered \
                or setup.length != len(QUANTITIES):
            return None
        members = members_of(self.world, self.genesis, group)
        rows = members.get(self.identity.did)
        cleared = self.cleared(int(interval))
        if rows is None or cleared is None or set(setup.members) != set(members):
            return None
        self.answered.add((group, int(interval)))
        return [int(cleared.result.settlement.metered_wh[rows].sum()), int(flexibility_wh(self.world, cleared)[rows].sum())]

    async def start(self, nc: Any) -> None:
        """Serves on `nc` (a connected NATS client)."""
        self.service = await SecAggService.serve(nc, prefix_of(self.genesis), self.identity.did, str(self.genesis.operator),
                                                 self.value_of)

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()


async def group_total(nc: Any, genesis: Genesis, world: World, operator: Identity, group: str, interval: int,
                      timeout_s: float = 2.0) -> tuple[dict[str, int], dict]:
    """The operator's side: the group's net Wh and flexibility Wh in `interval`, and the aggregation's report (who
    answered each round, bytes, seconds). Nodes that do not answer drop out, and their parts with them."""
    members = sorted(members_of(world, genesis, group))
    if not members:
        raise TotalsError(f"no participant of the lattice is in {group!r} (expected bus:<bus> or coalition:<name>)")
    total, report = await aggregate_over_nats(nc, prefix_of(genesis), Setup.of(session_of(genesis, group, interval), members,
                                                                            length=len(QUANTITIES)), operator, timeout_s)
    return dict(zip(QUANTITIES, map(int, total))), report


async def group_totals(servers: list[str], genesis: Genesis, world: World, operator: Identity, group: str,
                       intervals: Iterable[int], timeout_s: float = 2.0) -> list[dict]:
    """`group_total` of each interval over one connection (`plurigrid lattice totals`): interval, net and flexibility
    Wh, the nodes counted and missing, bytes sent and received, seconds."""
    import nats
    from nats.errors import NoServersError

    try:
        nc = await nats.connect(servers=servers, connect_timeout=timeout_s, max_reconnect_attempts=0)
    except (TimeoutError, NoServersError, OSError) as err:
        raise TotalsError(f"--nats: no NATS server reachable at {', '.join(servers)} ({err})") from None
    try:
        rows = []
        everyone = sorted(members_of(world, genesis, group))
        for k in intervals:
            try:
                totals, report = await group_total(nc, genesis, world, operator, group, k, timeout_s)
            except SecAggError as err:
                raise TotalsError(f"interval {k}: {err}") from None
            counted = sorted(report["counted"])
            rows.append({"interval": k, **totals, "members": counted, "missing": sorted(set(everyone) - set(counted)),
                         "bytes_out": sum(report["bytes_out"]), "bytes_in": sum(report["bytes_in"]), "seconds": report["seconds"]})
        return rows
    finally:
        await nc.close()
