"""The nexus node's core API over gRPC (`proto/nexus.proto`): status, device readings, decisions, settlements,
and a stream of cleared intervals.

Why: building management systems and aggregators' back ends integrate over gRPC more often than over
REST; the service answers from the running node itself (its lifecycle, devices, published decisions
and ledger), beside the HTTP API. Enabled by `[grpc]` in NODE.toml.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import grpc

from plurigrid.devices.base import DeviceError
from plurigrid.node.proto import nexus_pb2 as pb
from plurigrid.node.proto import nexus_pb2_grpc as rpc
from plurigrid.state.ledger import LedgerError, has_ledger, history

if TYPE_CHECKING:
    from plurigrid.lattice.replica import Cleared
    from plurigrid.node.nexus import Nexus


class NexusService(rpc.NexusServicer):
    def __init__(self, nexus: Nexus) -> None:
        self.nexus = nexus
        self._watchers: list[asyncio.Queue] = []
        nexus.on_cleared.append(self._cleared)

    def _cleared(self, cleared: Cleared) -> None:
        price = cleared.result.clearing.price_eur_per_kwh
        event = pb.IntervalCleared(interval=cleared.header.interval, state_root=cleared.header.state_root,
                                   price_eur_per_kwh=0.0 if math.isnan(price) else price)
        for queue in self._watchers:
            queue.put_nowait(event)

    async def GetStatus(self, request: pb.StatusRequest, context: Any) -> pb.Status:
        n = self.nexus
        cleared = n.replica.cleared
        return pb.Status(did=n.identity.did, state=n.lifecycle.state.value, reason=n.lifecycle.reason,
                         participants=list(n.hosted), intervals_cleared=len(cleared),
                         state_root=cleared[-1].header.state_root if cleared else "",
                         device_faults=0 if n.devices is None else len(n.devices.faults))

    async def ListReadings(self, request: pb.ReadingsRequest, context: Any) -> pb.Readings:
        link = self.nexus.devices
        readings = []
        for attached in [] if link is None else link.devices:
            latest = link.latest.get(attached.device.name) if link is not None else None
            row = pb.Reading(device=attached.device.name, participant=attached.participant, role=attached.role)
            if isinstance(latest, DeviceError):
                row.error = str(latest)
            elif latest is not None:
                for name in ("power_w", "import_wh", "export_wh", "soc_frac"):
                    value = getattr(latest, name)
                    if value is not None:
                        setattr(row, name, int(value) if name.endswith("_wh") else float(value))
            readings.append(row)
        return pb.Readings(readings=readings)

    async def ListDecisions(self, request: pb.DecisionsRequest, context: Any) -> pb.Decisions:
        rows = self.nexus.published.get(request.interval)
        if rows is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no decisions of interval {request.interval} are kept here "
                                f"(kept: {sorted(self.nexus.published)[:1]}…{sorted(self.nexus.published)[-1:]})")
        assert rows is not None
        ids = self.nexus.world.ids
        return pb.Decisions(interval=request.interval, decisions=[
            pb.Decision(participant=ids[i], battery_kw=row["battery_kw"], ev_kw=row["ev_kw"], shift_kw=row["shift_kw"],
                        bid_eur_per_kwh=row["bid_eur_per_kwh"], ask_eur_per_kwh=row["ask_eur_per_kwh"], trades=row["trades"])
            for i, row in sorted(rows.items())])

    async def ListSettlements(self, request: pb.SettlementsRequest, context: Any) -> pb.Settlements:
        folder = self.nexus.data_dir
        if request.participant not in self.nexus.hosted:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.participant!r} is not a participant of this node "
                                f"({', '.join(self.nexus.hosted)})")
        if not has_ledger(folder / "ledger"):
            return pb.Settlements(participant=request.participant)
        try:
            rows = history(folder, request.participant)
        except LedgerError as err:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        return pb.Settlements(participant=request.participant, settlements=[
            pb.Settlement(height=r["height"], time=str(r["time"]), metered_wh=int(r["metered_wh"]), bill_micro=int(r["bill_micro"]))
            for r in rows])

    async def WatchIntervals(self, request: pb.WatchRequest, context: Any):
        queue: asyncio.Queue = asyncio.Queue()
        self._watchers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(queue)


async def serve(nexus: Nexus, host: str, port: int) -> grpc.aio.Server:
    """The node's gRPC server, started on host:port."""
    server = grpc.aio.server()
    rpc.add_NexusServicer_to_server(NexusService(nexus), server)
    if not server.add_insecure_port(f"{host}:{port}"):
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    return server
