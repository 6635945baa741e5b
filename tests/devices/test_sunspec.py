"""SunSpec over Modbus TCP: the standard's model definitions, the register codec with scale factors, and the
adapter against a simulated site (inverter, battery, meter) served by pymodbus on a loopback port, faults
included."""

from __future__ import annotations

import asyncio
import math

import pytest

from plurigrid.devices import sunspec
from plurigrid.devices.base import DeviceError
from plurigrid.devices.modbus import SunSpecModbus
from plurigrid.devices.simulator import BATTERY, INVERTER, METER, SunSpecSimulator
from plurigrid.lattice.natsd import free_ports


@pytest.mark.parametrize("model_id, name, length", [
    (1, "common", 66), (103, "inverter_three_phase", 50), (124, "storage_basic", 24), (203, "ac_meter_abcn", 105), (802, "battery", 62),
])
def test_model_definitions_are_the_standards(model_id: int, name: str, length: int) -> None:
    definition = sunspec.model(model_id)
    assert (definition.name, definition.length) == (name, length)


def test_codec_round_trips_with_scale_factors_and_not_implemented() -> None:
    meter = sunspec.model(203)
    values = {"W": -1834.5, "Hz": 49.98, "TotWhImp": 123456789, "TotWhExp": 0, "PhV": 231.7}
    scale = {"W_SF": -1, "Hz_SF": -2, "TotWh_SF": 0, "V_SF": -1}
    decoded = sunspec.decode(meter, sunspec.encode(meter, values, scale))
    assert decoded["W"] == pytest.approx(-1834.5) and decoded["Hz"] == pytest.approx(49.98)
    assert decoded["TotWhImp"] == 123456789 and decoded["TotWhExp"] == 0  # an accumulator at zero reads zero
    assert decoded["VA"] is None and decoded["PF"] is None  # not implemented (0x8000)
    assert decoded["W_SF"] == -1
    common = sunspec.decode(sunspec.model(1), sunspec.encode(sunspec.model(1), {"Mn": "Plurigrid", "SN": "X-1"}))
    assert (common["Mn"], common["SN"], common["Md"]) == ("Plurigrid", "X-1", None)


def test_a_short_model_or_an_absurd_scale_factor_is_refused_or_unreadable() -> None:
    meter = sunspec.model(203)
    with pytest.raises(DeviceError, match="malformed: model 203 .ac_meter_abcn.: 10 registers, expected 107"):
        sunspec.decode(meter, [0] * 10)
    registers = sunspec.encode(meter, {"W": 100}, {"W_SF": 0})
    registers[meter.points["W_SF"].offset] = 42  # 10 ** 42: no real meter says that
    assert sunspec.decode(meter, registers)["W"] is None


def _run(coroutine):
    return asyncio.run(coroutine)


async def _site():
    port = free_ports(1)[0]
    sim = SunSpecSimulator(port)
    await sim.start()
    devices = {name: SunSpecModbus(name, "127.0.0.1", port, unit) for name, unit in
               (("inverter", INVERTER), ("battery", BATTERY), ("meter", METER))}
    return sim, devices


def test_discovery_readings_and_a_battery_setpoint() -> None:
    async def scenario() -> None:
        sim, d = await _site()
        try:
            assert sorted(await d["battery"].discover()) == [1, 124, 802]
            assert sorted(await d["meter"].discover()) == [1, 203]
            sim.site.advance(900, load_w=1200, pv_w=3000)
            inverter, battery, meter = [await d[n].read() for n in ("inverter", "battery", "meter")]
            assert (inverter.power_w, inverter.export_wh) == (-3000, 750)
            assert (battery.soc_frac, battery.capacity_wh, battery.max_charge_w) == (0.5, 10000, 5000)
            assert (meter.power_w, meter.import_wh, meter.export_wh) == (-1800, 0, 450)
            await d["battery"].write_power_w(2500)  # charge at half its rating
            assert (sim.site.mode, sim.site.in_rate_pct) == (1, 50.0)
            sim.site.advance(900, load_w=1200, pv_w=3000)
            battery, meter = await d["battery"].read(), await d["meter"].read()
            assert battery.power_w == 2500 and battery.soc_frac == pytest.approx(0.5625, abs=0.001)
            assert (meter.power_w, meter.import_wh, meter.export_wh) == (700, 175, 450)
            await d["battery"].write_power_w(-1000)
            assert (sim.site.mode, sim.site.out_rate_pct, sim.site.setpoint_w()) == (2, 20.0, -1000.0)
            with pytest.raises(DeviceError, match="refused: meter: takes no power setpoint"):
                await d["meter"].write_power_w(100)
        finally:
            await sim.outage()

    _run(scenario())


def test_the_meters_registers_count_every_wh_across_intervals() -> None:
    async def scenario() -> None:
        sim, d = await _site()
        try:
            net_wh = 0.0
            for k in range(96):
                load, pv = 800 + 37.3 * (k % 7), 2500 * max(0.0, math.sin(math.pi * k / 96))
                sim.site.advance(900, load, pv)
                net_wh += (load - pv) * 0.25
            meter = await d["meter"].read()
            assert meter.import_wh - meter.export_wh == pytest.approx(net_wh, abs=2)  # whole Wh, fractions carried
        finally:
            await sim.outage()

    _run(scenario())


def test_faults_are_device_errors_of_their_kind() -> None:
    async def scenario() -> None:
        nowhere = SunSpecModbus("ghost", "127.0.0.1", free_ports(1)[0], timeout_s=0.3)
        with pytest.raises(DeviceError, match="unreachable: ghost: no Modbus TCP server at 127.0.0.1:"):
            await nowhere.read()

        async def silent(reader, writer):  # accepts, never answers
            await asyncio.sleep(30)

        port = free_ports(1)[0]
        server = await asyncio.start_server(silent, "127.0.0.1", port)
        try:
            with pytest.raises(DeviceError, match="timeout: mute: no answer within 0.3 s"):
                await SunSpecModbus("mute", "127.0.0.1", port, timeout_s=0.3).read()
        finally:
            server.close()

        sim, d = await _site()
        try:
            await d["battery"].read()
            sim.corrupt(BATTERY, 802, "SoC", 1500)  # 150.0 %
            with pytest.raises(DeviceError, match="out_of_range: battery: state of charge 150 % outside 0–100 %"):
                await d["battery"].read()
            sim.site.advance(900, 2000, 0)
            await d["meter"].read()
            sim.corrupt(METER, 203, "TotWhImp", 0)  # the high word of a 32-bit register: the count goes back
            sim.overrides[(METER, sim.address(METER, 203) + sunspec.model(203).points["TotWhImp"].offset + 1)] = 1
            with pytest.raises(DeviceError, match="malformed: meter: TotWhImp went back from 500 to 1 Wh"):
                await d["meter"].read()
            sim.overrides[(INVERTER, 40000)] = 0  # no "SunS": not a SunSpec device
            with pytest.raises(DeviceError, match="malformed: fresh: no SunSpec map"):
                await SunSpecModbus("fresh", "127.0.0.1", sim.port, INVERTER, timeout_s=0.5).discover()
            sim.overrides.clear()
            await sim.outage()
            with pytest.raises(DeviceError) as err:
                await d["meter"].read()
            assert err.value.kind in ("timeout", "unreachable")
            await sim.restore()  # the device is back: the adapter reconnects
            assert (await d["meter"].read()).import_wh == 500
        finally:
            await sim.outage()

    _run(scenario())


def test_a_der_inverter_of_model_701_reads_its_injected_and_absorbed_energy() -> None:
    from plurigrid.devices.simulator import _common, _map

    async def scenario() -> None:
        port = free_ports(1)[0]
        sim = SunSpecSimulator(port)
        der = sunspec.encode(sunspec.model(701), {"W": 4200, "TotWhInj": 987654, "TotWhAbs": 321}, {"W_SF": 0, "TotWh_SF": 0})
        sim.image = lambda unit: _map(_common("DER-1", "DER inverter"), der)  # type: ignore[method-assign]
        await sim.start()
        try:
            reading = await SunSpecModbus("der", "127.0.0.1", port, INVERTER).read()
            assert (reading.power_w, reading.export_wh, reading.import_wh) == (-4200, 987654, 321)
        finally:
            await sim.outage()

    _run(scenario())
