"""Hardware in the loop: a nexus node over NATS drives a simulated SunSpec battery over Modbus TCP, meters its
participant with a simulated SunSpec meter, answers an OpenADR demand-response event from an openleadr VTN,
survives a device outage of 10 intervals, and its ledger's metered energy equals the meter's register exactly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from plurigrid.devices.modbus import SunSpecModbus
from plurigrid.devices.openadr import Ven, Vtn
from plurigrid.devices.simulator import BATTERY, METER, Site, SunSpecSimulator
from plurigrid.engine.world import compile_world
from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.lattice.natsd import NatsCluster, free_ports
from plurigrid.lattice.transport import NatsTransport
from plurigrid.microworld.loader import load
from plurigrid.node.config import load_node_config
from plurigrid.node.devices import Attached, DeviceLink
from plurigrid.node.nexus import Nexus
from plurigrid.state.identity import Identity
from plurigrid.state.ledger import history
from tests.lattice.test_transport import require_nats_server

WORLD = """
[world]
name = "one-home"
start = {start}
duration = "25h"
resolution = "15min"
timezone = "UTC"
seed = 3

[grid]
bus = [{ id = "mv", vn_kv = 20.0 }, { id = "lv", vn_kv = 0.4 }]
transformer = [{ id = "t1", hv_bus = "mv", lv_bus = "lv", sn_mva = 0.25, r_pu = 0.012, x_pu = 0.04 }]
connection = { bus = "mv" }

[market]
mechanism = "pay-as-clear"
import_price_eur_per_kwh = 0.30
export_price_eur_per_kwh = 0.08

[[participant]]
id = "home01"
bus = "lv"
strategy = "self-consumption"
assets.load = { profile = { source = "bdew", slp = "h0", annual_kwh = 3800 } }
assets.pv = { kwp = 6.0 }
assets.battery = { capacity_kwh = 10.0, power_kw = 5.0, efficiency = 0.95, initial_soc_frac = 0.3 }
"""
INTERVALS, OUTAGE, EVENT = 97, range(40, 50), range(60, 64)


def test_node_controls_a_real_battery_and_settles_what_the_meter_counted(tmp_path) -> None:
    require_nats_server()
    world_path = tmp_path / "one-home.toml"  # simulated time starts now, so the VTN's event lies ahead of the wall clock
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    world_path.write_text(WORLD.replace("{start}", (now - timedelta(minutes=now.minute % 15)).isoformat()))
    identity = Identity.from_seed(b"\x07" * 32)
    genesis = Genesis(str(world_path), (Member("home", identity.did, ("home01",)),), close_after_s=5.0)
    world = compile_world(*load(str(world_path)))
    site = Site(soc_wh=3000, capacity_wh=10000, rated_w=5000, efficiency=0.95)
    registers: list[int] = []
    setpoints: list[float] = []

    async def scenario() -> dict:
        port = free_ports(1)[0]
        sim = SunSpecSimulator(port, site=site)
        await sim.start()

        async def physics(k: int) -> None:  # the interval passes at the site: after the dispatch, before the meter
            if k == OUTAGE.start:
                await sim.outage()
            if k == OUTAGE.stop:
                await sim.restore()
            row = nexus.replica.state.runtime.window.row(k)
            setpoints.append(site.setpoint_w())
            site.advance(world.dt_h * 3600, float(row.load_kw[0]) * 1000, float(row.available_kw[0]) * 1000)
            registers.append(site.import_wh - site.export_wh)

        vtn = Vtn("127.0.0.1", free_ports(1)[0], poll_s=0.2)
        await vtn.start()
        ven = Ven(vtn.url, "home-node", ("home01",), flexible=lambda participant: True)
        await ven.start()
        vtn.issue("home-node", world.index[EVENT.start].to_pydatetime(), timedelta(hours=1), level=2.0)
        for _ in range(100):  # the VEN polls the VTN
            if ven.events:
                break
            await asyncio.sleep(0.1)
        link = DeviceLink([Attached(SunSpecModbus("meter", "127.0.0.1", port, METER, timeout_s=0.3), "home01", "meter"),
                           Attached(SunSpecModbus("battery", "127.0.0.1", port, BATTERY, timeout_s=0.3), "home01", "battery")],
                          physics=physics)
        with NatsCluster(1) as cluster:
            transport = NatsTransport(cluster.urls, stream=genesis.stream, prefix=genesis.stream.lower())
            nexus = Nexus(identity, world, genesis.hosts, transport, tmp_path / "node", close_after_s=5.0, devices=link,
                          demand_response=ven)
            try:
                report = await nexus.run(INTERVALS)
            finally:
                await nexus.close()
                await link.close()
                await sim.outage()
                await ven.stop()
                await vtn.stop()
        assert vtn.responses and {r["answer"] for r in vtn.responses} == {"optIn"}
        return report.to_json()

    report = asyncio.run(scenario())
    # the battery followed the node's decisions: charged from the sun, discharged in the evening
    assert max(setpoints) > 1000 and min(setpoints) < -100
    # the demand-response event: the battery discharged at its full 5 kW for the hour it covered, and only then
    assert setpoints[EVENT.start:EVENT.stop] == [-5000.0] * 4
    assert setpoints[EVENT.start - 1] != -5000.0 and setpoints[EVENT.stop] != -5000.0
    # the outage: ten intervals the meter could not be read (and the battery not written), recorded as gaps
    meter_gaps = [f["interval"] for f in report["device_faults"] if f["device"] == "meter"]
    assert meter_gaps == list(OUTAGE)
    assert all(f["kind"] in ("timeout", "unreachable") for f in report["device_faults"])
    # the ledger settled exactly what the meter's register counted, through the last interval whose meter reading
    # landed in a block (the reading after interval 95 is settled in interval 96's block)
    rows = history(tmp_path / "node", "home01")
    assert len(rows) == INTERVALS
    settled_through_95 = sum(r["metered_wh"] for r in rows[:96]) + rows[96].get("readings_wh", 0)
    assert settled_through_95 == registers[95]
    # nothing was metered during the outage; the whole gap was settled at once when the meter was back
    assert all("readings_wh" not in rows[k] for k in range(OUTAGE.start + 1, OUTAGE.stop + 1)) and "readings_wh" in rows[51]
    config_path = tmp_path / "NODE.toml"  # the same devices as an operator writes them
    config_path.write_text('[node]\nname = "home"\ndata_dir = "node"\nparticipants = ["home01"]\n'
                           '[[device]]\nname = "meter"\nprotocol = "sunspec"\nport = 5020\nunit_id = 3\n'
                           'participant = "home01"\nrole = "meter"\n')
    assert load_node_config(config_path)[0].device[0].unit_id == 3


def test_the_node_decides_on_the_real_state_of_charge(tmp_path) -> None:
    """The replica's model says the battery holds 3 kWh; the device says it is empty: at night, self-consumption
    would discharge on the model, and does not on the device's word."""
    from plurigrid.engine.step import decide, initial_state, observe

    require_nats_server()
    world_path = tmp_path / "one-home.toml"
    world_path.write_text(WORLD.replace("{start}", "2024-06-21T00:00:00"))
    world = compile_world(*load(str(world_path)))
    model = initial_state(world)
    assert decide(world, model, observe(world, model, 0), 0).battery_kw[0] < 0  # the model would discharge
    identity = Identity.from_seed(b"\x08" * 32)
    genesis = Genesis(str(world_path), (Member("home", identity.did, ("home01",)),), close_after_s=5.0)

    async def scenario() -> dict:
        port = free_ports(1)[0]
        async with SunSpecSimulator(port, site=Site(soc_wh=0.0)) as sim:
            async def physics(k: int) -> None:
                sim.site.advance(900, 400.0, 0.0)

            link = DeviceLink([Attached(SunSpecModbus("battery", "127.0.0.1", port, BATTERY), "home01", "battery")],
                              physics=physics)
            with NatsCluster(1) as cluster:
                transport = NatsTransport(cluster.urls, stream=genesis.stream, prefix=genesis.stream.lower())
                nexus = Nexus(identity, world, genesis.hosts, transport, tmp_path / "node", close_after_s=5.0, devices=link)
                try:
                    await nexus.run(2)
                finally:
                    await nexus.close()
                    await link.close()
                return nexus.published

    published = asyncio.run(scenario())
    assert [published[k][0]["battery_kw"] for k in (0, 1)] == [0.0, 0.0]


@pytest.mark.parametrize("extra, message", [
    ('[[device]]\nname = "m"\nprotocol = "sunspec"\nparticipant = "home02"\nrole = "meter"\n',
     "device[0].participant: 'home02' is not one of this node's participants ['home01']"),
    ('[[device]]\nname = "m"\nprotocol = "mqtt"\nparticipant = "home01"\nrole = "meter"\n',
     "device[0]: an mqtt device needs the [mqtt] section (the broker)"),
    ('[[device]]\nname = "m"\nprotocol = "modbus-rtu"\nparticipant = "home01"\nrole = "meter"\n', "device[0].protocol"),
    ('[openadr]\nopt_out = ["home01"]\n', "openadr: give vtn_url (this node's VEN polls that VTN) or [openadr.vtn]"),
    ('[openadr]\nvtn_url = "http://vtn:8080/OpenADR2/Simple/2.0b"\nopt_out = ["home09"]\n',
     "openadr.opt_out: ['home09'] are not this node's participants"),
])
def test_device_sections_are_checked_with_one_line(tmp_path, extra: str, message: str) -> None:
    from plurigrid.microworld.loader import SpecError

    config = tmp_path / "NODE.toml"
    config.write_text('[node]\nname = "home"\ndata_dir = "node"\nparticipants = ["home01"]\n' + extra)
    with pytest.raises(SpecError) as err:
        load_node_config(config)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_devices_follow_local_control_and_meter_the_offline_intervals(tmp_path) -> None:
    """The node loses its lattice for a few intervals: the battery follows local control, the meter goes on counting,
    and once the lattice has cleared those intervals the meter's readings settle them exactly."""
    from plurigrid.lattice.transport import InprocBus, InprocTransport

    world_path = tmp_path / "one-home.toml"
    world_path.write_text(WORLD.replace("{start}", "2024-06-21T00:00:00"))
    world = compile_world(*load(str(world_path)))
    identity = Identity.from_seed(b"\x0a" * 32)
    genesis = Genesis(str(world_path), (Member("home", identity.did, ("home01",)),), close_after_s=0.2)
    registers: dict[int, int] = {}

    async def scenario() -> dict:
        port = free_ports(1)[0]
        async with SunSpecSimulator(port) as sim:
            async def physics(k: int) -> None:
                sim.site.advance(900, 600.0 + 10 * k, 0.0)
                registers[k] = sim.site.import_wh - sim.site.export_wh

            link = DeviceLink([Attached(SunSpecModbus("meter", "127.0.0.1", port, METER), "home01", "meter"),
                               Attached(SunSpecModbus("battery", "127.0.0.1", port, BATTERY), "home01", "battery")],
                              physics=physics)
            transport = InprocTransport(InprocBus())

            cuts: list[int] = []

            async def cut(k: int, node: Nexus) -> None:
                if k == 5 and not cuts:  # once (the node comes back to interval 5: the lattice had not cleared it)
                    cuts.append(k)
                    transport.partition()
                    asyncio.get_running_loop().call_later(0.7, transport.heal)

            nexus = Nexus(identity, world, genesis.hosts, transport, tmp_path / "node", close_after_s=0.2, devices=link,
                          on_interval=cut)
            try:
                report = await nexus.run(20)
            finally:
                await nexus.close()
                await link.close()
            return report.to_json()

    report = asyncio.run(scenario())
    assert report["offline_intervals"] >= 2
    assert sorted(registers) == list(range(20))  # the meter was read after every interval, offline ones included
    rows = history(tmp_path / "node", "home01")
    assert sum(r["metered_wh"] for r in rows[:19]) + rows[19].get("readings_wh", 0) == registers[18]


def test_an_mqtt_meter_settles_the_node_exactly(tmp_path) -> None:
    """The node's meter is an MQTT gateway (a Mosquitto broker the test starts): its readings settle the ledger."""
    import json
    import time

    import aiomqtt

    from plurigrid.lattice.transport import InprocBus, InprocTransport
    from plurigrid.node.config import DeviceSection, MqttSection
    from plurigrid.node.devices import connect
    from tests.devices.broker import mosquitto

    world_path = tmp_path / "one-home.toml"
    world_path.write_text(WORLD.replace("{start}", "2024-06-21T00:00:00"))
    world = compile_world(*load(str(world_path)))
    identity = Identity.from_seed(b"\x0b" * 32)
    genesis = Genesis(str(world_path), (Member("home", identity.did, ("home01",)),), close_after_s=0.2)
    counted = {"import_wh": 5000, "export_wh": 100}
    registers: dict[int, int] = {}

    with mosquitto() as (port, _):
        async def scenario() -> None:
            link = await connect([DeviceSection(name="gw-meter", protocol="mqtt", participant="home01", role="meter")],
                                 MqttSection(port=port, site="farm"))
            bus = link.devices[0].device.bus  # type: ignore[attr-defined]
            async with aiomqtt.Client("127.0.0.1", port) as gateway:
                async def publish() -> None:
                    before = bus.latest.get("gw-meter")
                    await gateway.publish("plurigrid/farm/devices/gw-meter/reading",
                                          json.dumps({"time_s": time.time(), **counted}), qos=1)
                    while bus.latest.get("gw-meter") is before:
                        await asyncio.sleep(0.005)

                async def physics(k: int) -> None:  # the gateway reports the interval's energy
                    counted["import_wh"] += 137 + 11 * k
                    counted["export_wh"] += 3 * (k % 4)
                    registers[k] = counted["import_wh"] - counted["export_wh"] - 4900
                    await publish()

                await publish()  # the register before the first interval
                link.physics = physics
                nexus = Nexus(identity, world, genesis.hosts, InprocTransport(InprocBus()), tmp_path / "node",
                              close_after_s=0.2, devices=link)
                try:
                    await nexus.run(12)
                finally:
                    await nexus.close()
                    await link.close()

        asyncio.run(scenario())
    rows = history(tmp_path / "node", "home01")
    assert sum(r["metered_wh"] for r in rows[:11]) + rows[11].get("readings_wh", 0) == registers[10]
