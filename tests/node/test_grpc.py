"""The node's gRPC API: generated modules current with nexus.proto, and the service answering from a running node
(status, device readings, published decisions, settlements from its ledger, a stream of cleared intervals)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from plurigrid.devices.modbus import SunSpecModbus
from plurigrid.devices.simulator import BATTERY, METER, SunSpecSimulator
from plurigrid.engine.world import compile_world
from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.lattice.natsd import NatsCluster, free_ports
from plurigrid.lattice.transport import NatsTransport
from plurigrid.microworld.loader import load
from plurigrid.node.devices import Attached, DeviceLink
from plurigrid.node.grpc_api import serve
from plurigrid.node.nexus import Nexus
from plurigrid.node.proto import nexus_pb2 as pb
from plurigrid.node.proto import nexus_pb2_grpc as rpc
from plurigrid.state.identity import Identity
from tests.devices.test_node_devices import WORLD
from tests.lattice.test_transport import require_nats_server

PROTO = Path(__file__).resolve().parents[2] / "src" / "plurigrid" / "node" / "proto"


def test_generated_modules_are_current_with_the_proto(tmp_path) -> None:
    pytest.importorskip("grpc_tools")
    out = tmp_path / "plurigrid" / "node" / "proto"
    out.mkdir(parents=True)
    (out / "nexus.proto").write_bytes((PROTO / "nexus.proto").read_bytes())
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(tmp_path), f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(out / "nexus.proto")], check=True)
    for name in ("nexus_pb2.py", "nexus_pb2.pyi", "nexus_pb2_grpc.py"):
        assert (out / name).read_text() == (PROTO / name).read_text(), f"{name} is stale: regenerate (see nexus.proto)"


def test_the_service_answers_from_a_running_node(tmp_path) -> None:
    require_nats_server()
    world_path = tmp_path / "one-home.toml"
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    world_path.write_text(WORLD.replace("{start}", (now - timedelta(minutes=now.minute % 15)).isoformat()))
    identity = Identity.from_seed(b"\x09" * 32)
    genesis = Genesis(str(world_path), (Member("home", identity.did, ("home01",)),), close_after_s=5.0)
    world = compile_world(*load(str(world_path)))

    async def scenario() -> None:
        sim_port, grpc_port = free_ports(2)
        sim = SunSpecSimulator(sim_port)
        await sim.start()

        async def physics(k: int) -> None:
            sim.site.advance(900, 800.0, 0.0)

        link = DeviceLink([Attached(SunSpecModbus("meter", "127.0.0.1", sim_port, METER), "home01", "meter"),
                           Attached(SunSpecModbus("battery", "127.0.0.1", sim_port, BATTERY), "home01", "battery")], physics=physics)
        with NatsCluster(1) as cluster:
            transport = NatsTransport(cluster.urls, stream=genesis.stream, prefix=genesis.stream.lower())
            nexus = Nexus(identity, world, genesis.hosts, transport, tmp_path / "node", close_after_s=5.0, devices=link)
            server = await serve(nexus, "127.0.0.1", grpc_port)
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                    stub = rpc.NexusStub(channel)
                    watched: list[pb.IntervalCleared] = []

                    async def watch() -> None:
                        async for event in stub.WatchIntervals(pb.WatchRequest()):
                            watched.append(event)

                    watcher = asyncio.create_task(watch())
                    await asyncio.sleep(0.2)
                    await nexus.run(8)
                    await asyncio.sleep(0.2)
                    watcher.cancel()
                    status = await stub.GetStatus(pb.StatusRequest())
                    assert (status.state, status.intervals_cleared, list(status.participants)) == ("stopped", 8, ["home01"])
                    assert status.state_root == nexus.replica.cleared[-1].header.state_root
                    assert [e.interval for e in watched] == list(range(8))
                    assert watched[-1].state_root == status.state_root
                    decisions = await stub.ListDecisions(pb.DecisionsRequest(interval=3))
                    assert [d.participant for d in decisions.decisions] == ["home01"]
                    assert decisions.decisions[0].battery_kw == nexus.published[3][0]["battery_kw"]
                    settlements = await stub.ListSettlements(pb.SettlementsRequest(participant="home01"))
                    assert [s.height for s in settlements.settlements] == list(range(1, 9))
                    readings = {r.device: r for r in (await stub.ListReadings(pb.ReadingsRequest())).readings}
                    assert readings["meter"].import_wh == sim.site.import_wh and readings["meter"].role == "meter"
                    assert readings["battery"].HasField("soc_frac") and not readings["battery"].error
                    for call, request, message in (
                        (stub.ListDecisions, pb.DecisionsRequest(interval=500), "no decisions of interval 500"),
                        (stub.ListSettlements, pb.SettlementsRequest(participant="home99"), "'home99' is not a participant"),
                    ):
                        with pytest.raises(grpc.aio.AioRpcError) as err:
                            await call(request)
                        assert err.value.code() == grpc.StatusCode.NOT_FOUND and message in err.value.details()
            finally:
                await server.stop(grace=None)
                await nexus.close()
                await link.close()
                await sim.outage()

    asyncio.run(scenario())
