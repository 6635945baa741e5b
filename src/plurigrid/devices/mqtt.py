"""Devices over MQTT (aiomqtt): meters and IoT devices publish readings, the node publishes setpoints and state.

Why: many meters (through a gateway such as Tasmota, Shelly or an OBIS reader) and home devices speak
MQTT, not Modbus. The topic layout, under a prefix and a site name (docs/devices.md):

    {prefix}/{site}/devices/{device}/reading    device → node  {"time_s": …, "power_w": …, "import_wh": …, …}
    {prefix}/{site}/devices/{device}/setpoint   node → device  {"time_s": …, "power_w": …}          (QoS 1)
    {prefix}/{site}/node/state                  node → anyone  the node's latest interval, retained  (QoS 1)

A reading's fields are `Reading`'s, units in their names; `time_s` is when the device measured (Unix
seconds). A reading older than `stale_after_s`, or the same reading again (same `time_s`), is a
`DeviceError` of kind stale; fields that are not numbers, or unknown, are malformed; a state of charge
outside 0–1 or a negative register is out_of_range; a cumulative register going back is malformed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import Any

import aiomqtt

from plurigrid.devices.base import DeviceError, Reading

NUMBERS = ("power_w", "soc_frac", "capacity_wh", "max_charge_w", "max_discharge_w")
REGISTERS = ("import_wh", "export_wh")


class MqttBus:
    """A node's MQTT connection: it keeps every device's latest reading and publishes setpoints and state."""

    def __init__(self, host: str, port: int = 1883, prefix: str = "plurigrid", site: str = "site", timeout_s: float = 2.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.root = f"{prefix}/{site}"
        self.latest: dict[str, tuple[float, bytes]] = {}  # device → (wall time received, payload)
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._reader is not None and not self._reader.done()

    async def start(self) -> None:
        client = aiomqtt.Client(self.host, self.port, timeout=self.timeout_s, identifier=f"plurigrid-{id(self):x}")
        try:
            await client.__aenter__()
        except (aiomqtt.MqttError, OSError) as err:
            raise DeviceError("unreachable", f"no MQTT broker at {self.host}:{self.port} ({err})") from None
        self._client = client
        await client.subscribe(f"{self.root}/devices/+/reading", qos=1)
        self._reader = asyncio.create_task(self._read(client))

    async def _read(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                device = str(message.topic).split("/")[-2]
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                self.latest[device] = (time.time(), payload)

    def device(self, name: str, stale_after_s: float = 60.0) -> MqttDevice:
        return MqttDevice(name, self, stale_after_s)

    async def publish(self, topic: str, body: dict, retain: bool = False) -> None:
        if not self.connected:
            raise DeviceError("unreachable", f"the MQTT broker at {self.host}:{self.port} is not connected")
        assert self._client is not None
        try:
            await self._client.publish(f"{self.root}/{topic}", json.dumps(body, separators=(",", ":")), qos=1, retain=retain,
                                       timeout=self.timeout_s)
        except aiomqtt.MqttError as err:
            raise DeviceError("unreachable", f"publish to {self.host}:{self.port} failed ({err})") from None

    async def publish_state(self, state: dict) -> None:
        """The node's latest interval (price, decisions of its participants), retained for late subscribers."""
        await self.publish("node/state", state, retain=True)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await self._client.__aexit__(None, None, None)
        self._client = self._reader = None


class MqttDevice:
    """One device on the bus: its readings checked, its setpoints published."""

    def __init__(self, name: str, bus: MqttBus, stale_after_s: float) -> None:
        self.name, self.bus, self.stale_after_s = name, bus, stale_after_s
        self._last_time_s: float | None = None
        self._last: dict[str, int] = {}

    async def read(self) -> Reading:
        entry = self.bus.latest.get(self.name)
        if entry is None:
            if not self.bus.connected:
                raise DeviceError("unreachable", f"{self.name}: the MQTT broker is not connected")
            raise DeviceError("stale", f"{self.name}: no reading yet on {self.bus.root}/devices/{self.name}/reading")
        received, payload = entry
        fields = _parse(self.name, payload)
        measured = fields.pop("time_s")
        age = time.time() - measured
        if age > self.stale_after_s or time.time() - received > self.stale_after_s:
            raise DeviceError("stale", f"{self.name}: the latest reading is {age:.0f} s old (more than {self.stale_after_s:g} s)")
        if measured == self._last_time_s:
            raise DeviceError("stale", f"{self.name}: the same reading again (time_s {measured})")
        for register in REGISTERS:
            value = fields.get(register)
            if value is not None and value < self._last.get(register, 0):
                raise DeviceError("malformed", f"{self.name}: {register} went back from {self._last[register]} to {value} Wh")
        self._last_time_s = measured
        self._last.update({r: fields[r] for r in REGISTERS if fields.get(r) is not None})
        return Reading(self.name, **fields)

    async def write_power_w(self, power_w: float) -> None:
        await self.bus.publish(f"devices/{self.name}/setpoint", {"time_s": time.time(), "power_w": power_w})

    async def close(self) -> None:
        return None


def _parse(name: str, payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise DeviceError("malformed", f"{name}: the reading is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("time_s"), (int, float)) or isinstance(body["time_s"], bool):
        raise DeviceError("malformed", f"{name}: a reading is an object with a numeric time_s")
    unknown = set(body) - {"time_s", *NUMBERS, *REGISTERS}
    if unknown:
        raise DeviceError("malformed", f"{name}: unknown fields {sorted(unknown)}")
    for key in NUMBERS:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise DeviceError("malformed", f"{name}: {key} must be a number, not {value!r}")
    for key in REGISTERS:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise DeviceError("malformed", f"{name}: {key} must be a whole number of Wh, not {value!r}")
        if value is not None and value < 0:
            raise DeviceError("out_of_range", f"{name}: {key} is negative ({value})")
    soc = body.get("soc_frac")
    if soc is not None and not 0 <= soc <= 1:
        raise DeviceError("out_of_range", f"{name}: soc_frac {soc:g} outside 0–1")
    return body
