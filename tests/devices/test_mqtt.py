"""Devices over MQTT, against a Mosquitto broker the test starts: readings checked (stale, repeated, malformed,
out of range, registers going back), setpoints and the node's state published on the documented topics."""

from __future__ import annotations

import asyncio
import json
import time

import aiomqtt
import pytest

from plurigrid.devices.base import DeviceError
from plurigrid.devices.mqtt import MqttBus
from plurigrid.lattice.natsd import free_ports
from tests.devices.broker import mosquitto


async def _until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_readings_setpoints_and_state_over_a_real_broker() -> None:
    with mosquitto() as (port, _):
        async def scenario() -> None:
            bus = MqttBus("127.0.0.1", port, site="farm")
            await bus.start()
            meter = bus.device("meter", stale_after_s=5)
            async with aiomqtt.Client("127.0.0.1", port) as field:  # the meter's gateway, and a device listening
                await field.subscribe("plurigrid/farm/devices/battery/setpoint", qos=1)
                await field.subscribe("plurigrid/farm/node/state", qos=1)
                with pytest.raises(DeviceError, match="stale: meter: no reading yet on plurigrid/farm/devices/meter/reading"):
                    await meter.read()

                async def publish(body: dict | bytes) -> None:
                    count = len(bus.latest)
                    before = bus.latest.get("meter")
                    await field.publish("plurigrid/farm/devices/meter/reading", body if isinstance(body, bytes) else json.dumps(body),
                                        qos=1)
                    await _until(lambda: bus.latest.get("meter") is not before or len(bus.latest) > count)

                now = time.time()
                await publish({"time_s": now, "power_w": 812.5, "import_wh": 1200, "export_wh": 30})
                reading = await meter.read()
                assert (reading.power_w, reading.import_wh, reading.export_wh) == (812.5, 1200, 30)
                with pytest.raises(DeviceError, match="stale: meter: the same reading again"):
                    await meter.read()
                await publish({"time_s": now - 60, "power_w": 1.0})
                with pytest.raises(DeviceError, match=r"stale: meter: the latest reading is 6\d s old \(more than 5 s\)"):
                    await meter.read()
                for body, message in (
                    (b"not json", "malformed: meter: the reading is not JSON"),
                    ({"time_s": now + 1, "power_kw": 1.0}, "malformed: meter: unknown fields ['power_kw']"),
                    ({"time_s": now + 1, "import_wh": 12.5}, "malformed: meter: import_wh must be a whole number of Wh"),
                    ({"time_s": now + 1, "soc_frac": 1.4}, "out_of_range: meter: soc_frac 1.4 outside 0–1"),
                    ({"time_s": now + 1, "import_wh": 1100}, "malformed: meter: import_wh went back from 1200 to 1100 Wh"),
                ):
                    await publish(body)
                    with pytest.raises(DeviceError) as err:
                        await meter.read()
                    assert str(err.value).startswith(message), err.value
                await bus.device("battery").write_power_w(-1500.0)
                await bus.publish_state({"interval": 7, "price_eur_per_kwh": 0.21})
                got = {}
                async with asyncio.timeout(5):
                    async for message in field.messages:
                        got[str(message.topic)] = json.loads(message.payload)
                        if len(got) == 2:
                            break
                assert got["plurigrid/farm/devices/battery/setpoint"]["power_w"] == -1500.0
                assert got["plurigrid/farm/node/state"] == {"interval": 7, "price_eur_per_kwh": 0.21}
            await bus.close()

        asyncio.run(scenario())


def test_no_broker_is_unreachable() -> None:
    async def scenario() -> None:
        with pytest.raises(DeviceError, match="unreachable: no MQTT broker at 127.0.0.1:"):
            await MqttBus("127.0.0.1", free_ports(1)[0], timeout_s=1).start()

    asyncio.run(scenario())
