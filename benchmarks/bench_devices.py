"""Benchmark of real devices at the node: readings per second per protocol, and the latency a node's devices add.

Usage: .venv/bin/python benchmarks/bench_devices.py [--reads 2000] [--intervals 96]

1. SunSpec over Modbus TCP against the simulated site on loopback: a meter (model 203, 107 registers)
   and a battery (models 124 + 802) read whole through the adapter (discovery done once), against the
   baseline of the same registers read raw with pymodbus (no decoding, no checks).
2. MQTT through a Mosquitto broker started here: readings published by a field client and taken by
   the node's adapter; readings per second end to end.
3. A node on NATS running one day (96 intervals) of the one-home world: without devices, and with the
   simulated meter and battery (a setpoint written, the battery and meter read, a meter operation
   appended, each interval); the time per interval and what the devices add.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt
from pymodbus.client import AsyncModbusTcpClient
from tests.devices.broker import mosquitto
from tests.devices.test_node_devices import WORLD

from plurigrid.devices import sunspec
from plurigrid.devices.modbus import SunSpecModbus
from plurigrid.devices.mqtt import MqttBus
from plurigrid.devices.simulator import BATTERY, METER, SunSpecSimulator
from plurigrid.engine.world import compile_world
from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.lattice.natsd import NatsCluster, free_ports
from plurigrid.lattice.transport import NatsTransport
from plurigrid.microworld.loader import load
from plurigrid.node.devices import Attached, DeviceLink
from plurigrid.node.nexus import Nexus
from plurigrid.state.identity import Identity


def row(what: str, value: str) -> None:
    print(f"{what:52s} {value:>14s}")


async def modbus(reads: int) -> None:
    port = free_ports(1)[0]
    async with SunSpecSimulator(port) as sim:
        sim.site.advance(900, 1200, 3000)
        print(f"1. SunSpec over Modbus TCP, simulated site on loopback, {reads:,} reads each")
        row("what", "reads/s")
        for name, unit in (("meter", METER), ("battery", BATTERY)):
            device = SunSpecModbus(name, "127.0.0.1", port, unit)
            await device.discover()
            spans = [(address, sunspec.model(m).length + 2) for m, (address, _) in device.models.items() if m != 1]
            t0 = time.perf_counter()
            for _ in range(reads):
                await device.read()
            adapter = reads / (time.perf_counter() - t0)
            raw = AsyncModbusTcpClient("127.0.0.1", port=port)
            await raw.connect()
            t0 = time.perf_counter()
            for _ in range(reads):
                for address, count in spans:
                    await raw.read_holding_registers(address, count=count, device_id=unit)
            baseline = reads / (time.perf_counter() - t0)
            raw.close()
            await device.close()
            row(f"{name}: adapter (read, decode, scale, check)", f"{adapter:,.0f}")
            row(f"{name}: baseline, the same registers raw (pymodbus)", f"{baseline:,.0f}")


async def mqtt(reads: int) -> None:
    with mosquitto() as (port, _):
        bus = MqttBus("127.0.0.1", port, site="bench")
        await bus.start()
        meter = bus.device("meter", stale_after_s=60)
        async with aiomqtt.Client("127.0.0.1", port) as field:
            t0 = time.perf_counter()
            taken = 0
            for n in range(reads):
                await field.publish("plurigrid/bench/devices/meter/reading",
                                    json.dumps({"time_s": time.time() + n * 1e-6, "power_w": 500.0, "import_wh": n}), qos=0)
                while bus.latest.get("meter") is None or json.loads(bus.latest["meter"][1])["import_wh"] != n:
                    await asyncio.sleep(0)
                await meter.read()
                taken += 1
            seconds = time.perf_counter() - t0
        await bus.close()
    print(f"\n2. MQTT through Mosquitto on loopback: {reads:,} readings published one at a time and taken")
    row("what", "value")
    row("readings/s end to end (publish, broker, adapter read)", f"{taken / seconds:,.0f}")
    row("ms per reading", f"{seconds / taken * 1000:.3f}")


async def node(intervals: int) -> None:
    with tempfile.TemporaryDirectory(prefix="plurigrid-bench-devices-") as tmp:
        world_path = Path(tmp) / "one-home.toml"
        now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
        world_path.write_text(WORLD.replace("{start}", (now - timedelta(minutes=now.minute % 15)).isoformat()))
        world = compile_world(*load(str(world_path)))
        times = {}
        for label, with_devices in (("without devices", False), ("with a meter and a battery", True)):
            identity = Identity.from_seed(bytes([20 + with_devices]) * 32)
            genesis = Genesis(str(world_path), (Member("home", identity.did, ("home01",)),), close_after_s=5.0)
            port = free_ports(1)[0]
            async with SunSpecSimulator(port) as sim:
                async def physics(k: int, sim: SunSpecSimulator = sim) -> None:
                    sim.site.advance(900, 800.0, 0.0)

                link = DeviceLink([Attached(SunSpecModbus("meter", "127.0.0.1", port, METER), "home01", "meter"),
                                   Attached(SunSpecModbus("battery", "127.0.0.1", port, BATTERY), "home01", "battery")],
                                  physics=physics) if with_devices else None
                with NatsCluster(1) as cluster:
                    transport = NatsTransport(cluster.urls, stream=genesis.stream, prefix=genesis.stream.lower())
                    nexus = Nexus(identity, world, genesis.hosts, transport, Path(tmp) / label.replace(" ", "-"),
                                  close_after_s=5.0, devices=link)
                    t0 = time.perf_counter()
                    await nexus.run(intervals)
                    times[label] = (time.perf_counter() - t0) / intervals * 1000
                    await nexus.close()
                    if link is not None:
                        await link.close()
    print(f"\n3. A node on NATS, {intervals} intervals of the one-home world")
    row("what", "ms/interval")
    for label, ms in times.items():
        row(label, f"{ms:.2f}")
    row("added by the devices", f"{times['with a meter and a battery'] - times['without devices']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--intervals", type=int, default=96)
    args = parser.parse_args()
    asyncio.run(modbus(args.reads))
    asyncio.run(mqtt(args.reads))
    asyncio.run(node(args.intervals))


if __name__ == "__main__":
    main()
