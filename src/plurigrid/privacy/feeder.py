"""Feeder totals for the operator by secure aggregation: what a bus's participants metered in an interval, summed
over the lattice's nodes without the operator (or anyone) learning any node's part.

Why: the operator of a grid needs each feeder's net energy per interval (to plan and to bill the feeder's
losses), but participants may keep their own meter from the operator (`privacy.meter.operator` coarser than
`interval`). Each member node holds its participants' metered energy (its replica cleared every interval), so
the operator runs `secagg` with the nodes that host participants at the bus: each contributes the sum of its own
participants there, masked, and the operator unmasks only the total.

The operator is the genesis file's `operator` (its did:key signs every request); a node answers each bus and
interval once, only for intervals its replica has cleared, so the operator cannot learn a node's part by asking
twice over different member sets. A bus whose participants all sit on one node gives that node's sum: the
world's policies already require at least `MIN_GROUP` participants at a bus that keep their meter from the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from plurigrid.engine.world import World
from plurigrid.errors import UsageError
from plurigrid.lattice.genesis import Genesis
from plurigrid.privacy.secagg import SecAggError, Setup
from plurigrid.privacy.secagg_nats import SecAggService, aggregate_over_nats
from plurigrid.state.identity import Identity

SESSION = "feeder"


class FeederError(UsageError):
    """A feeder total that cannot be asked for or given (one line)."""


def prefix_of(genesis: Genesis) -> str:
    """The NATS subject prefix of the lattice's feeder aggregations."""
    return genesis.stream.lower() + "_feeder"


def session_of(genesis: Genesis, bus: str, interval: int) -> str:
    return f"{genesis.id[:16]}/{SESSION}/{bus}/{interval}"


def members_at(world: World, genesis: Genesis, bus: str) -> dict[str, list[int]]:
    """The nodes that host participants at `bus`, with those participants' indices."""
    at = {i for i, b in enumerate(world.grid.net.bus.name.to_numpy()[world.bus_pos]) if str(b) == bus}
    index = {pid: i for i, pid in enumerate(world.ids)}
    hosted = {did: sorted(index[p] for p in pids if index[p] in at) for did, pids in genesis.hosts.items()}
    return {did: rows for did, rows in hosted.items() if rows}


class FeederService:
    """A member node's side: answers the operator's feeder aggregations with its own participants' energy."""

    def __init__(self, identity: Identity, genesis: Genesis, world: World, metered_wh: Callable[[int], np.ndarray | None]) -> None:
        """`metered_wh(k)`: every participant's metered Wh of interval k as this node's replica settled it (None
        while k is not cleared)."""
        if genesis.operator is None:
            raise ValueError("the genesis file names no operator")
        self.identity, self.genesis, self.world, self.metered_wh = identity, genesis, world, metered_wh
        self.answered: set[tuple[str, int]] = set()
        self.service: SecAggService | None = None

    def value_of(self, setup: Setup) -> list[int] | None:
        lattice, kind, bus, interval = (setup.session.split("/") + ["", "", "", ""])[:4]
        if lattice != self.genesis.id[:16] or kind != SESSION or not interval.isdigit() or (bus, int(interval)) in self.answered:
            return None
        k = int(interval)
        rows = members_at(self.world, self.genesis, bus).get(self.identity.did)
        metered = self.metered_wh(k)
        if rows is None or metered is None or set(setup.members) != set(members_at(self.world, self.genesis, bus)):
            return None
        self.answered.add((bus, k))
        return [int(metered[rows].sum())]

    async def start(self, nc: Any) -> None:
        """Serves on `nc` (a connected NATS client)."""
        self.service = await SecAggService.serve(nc, prefix_of(self.genesis), self.identity.did, str(self.genesis.operator),
                                                 self.value_of)

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()


async def feeder_total(nc: Any, genesis: Genesis, world: World, operator: Identity, bus: str, interval: int,
                       timeout_s: float = 2.0) -> tuple[int, dict]:
    """The operator's side: the Wh the participants at `bus` metered in `interval`, and the aggregation's report
    (who answered each round, bytes, seconds). Nodes that do not answer drop out, and their part with them."""
    members = sorted(members_at(world, genesis, bus))
    if not members:
        raise FeederError(f"--bus: no participant of the lattice is at bus {bus!r}")
    total, report = await aggregate_over_nats(nc, prefix_of(genesis), Setup.of(session_of(genesis, bus, interval), members),
                                              operator, timeout_s)
    return int(total[0]), report


async def feeder_totals(servers: list[str], genesis: Genesis, world: World, operator: Identity, bus: str,
                        intervals: Iterable[int], timeout_s: float = 2.0) -> list[dict]:
    """`feeder_total` of each interval over one connection (`plurigrid lattice feeder`): interval, Wh, the nodes
    whose parts it sums, bytes sent and received, seconds."""
    import nats
    from nats.errors import NoServersError

    try:
        nc = await nats.connect(servers=servers, connect_timeout=timeout_s, max_reconnect_attempts=0)
    except (TimeoutError, NoServersError, OSError) as err:
        raise FeederError(f"--nats: no NATS server reachable at {', '.join(servers)} ({err})") from None
    try:
        rows = []
        for k in intervals:
            try:
                wh, report = await feeder_total(nc, genesis, world, operator, bus, k, timeout_s)
            except SecAggError as err:
                raise FeederError(f"interval {k}: {err}") from None
            everyone = sorted(members_at(world, genesis, bus))
            counted = sorted(report["counted"])
            rows.append({"interval": k, "wh": wh, "members": counted, "missing": sorted(set(everyone) - set(counted)),
                         "bytes_out": sum(report["bytes_out"]), "bytes_in": sum(report["bytes_in"]), "seconds": report["seconds"]})
        return rows
    finally:
        await nc.close()
