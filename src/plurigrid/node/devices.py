"""A node's real devices: its dispatch writes battery setpoints, its meters settle what they counted.

Why: a nexus beside a home battery and a smart meter must act on the device, not on a model of it,
and the ledger must settle what the meter's cumulative register says. Each interval the node writes
the decided battery power to each battery device (`dispatch`) and, once the lattice has closed the
interval, reads each meter (`meter`): the register's change since the last good read becomes a `meter`
operation over every interval since then (replica rule 7), so a meter that could not be read for a
while is settled over the whole gap at once when it is back, and no Wh is lost or counted twice.

A device that cannot be read or written leaves its participant on the device's own local control for
that interval; every such gap is recorded (`faults`: interval, device, kind, message) in the node's
report. `physics` is for hardware-in-the-loop tests: the simulated site's interval, run between the
dispatch and the metering.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plurigrid.devices.base import Device, DeviceError, Reading

if TYPE_CHECKING:
    from plurigrid.node.config import DeviceSection, MqttSection


@dataclass
class Attached:
    """One device of a participant: a meter or a battery."""

    device: Device
    participant: str
    role: str  # "meter" or "battery"


@dataclass
class DeviceLink:
    devices: list[Attached]
    physics: Callable[[int], Awaitable[None]] | None = None  # tests: the simulated site's interval k
    faults: list[dict] = field(default_factory=list)
    latest: dict[str, Reading | DeviceError] = field(default_factory=dict)  # device → its last read, or why it failed
    metered_wh: dict[str, float] = field(default_factory=dict)  # participant → its meter's Wh per interval, lately
    _baseline_wh: dict[str, int] = field(default_factory=dict)  # meter → net register (import − export) at its last read
    _from: dict[str, int] = field(default_factory=dict)  # meter → the first interval its next reading covers
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _done: dict[str, int] = field(default_factory=lambda: {"dispatch": -1, "meter": -1})  # the last interval of each


    def soc_frac(self) -> dict[str, float]:
        """Each participant's battery state of charge as its device last reported it."""
        return {a.participant: reading.soc_frac for a in self.devices if a.role == "battery"
                and isinstance(reading := self.latest.get(a.device.name), Reading) and reading.soc_frac is not None}

    def _fault(self, k: int, attached: Attached, err: DeviceError) -> None:
        self.latest[attached.device.name] = err
        self.faults.append({"interval": k, "device": attached.device.name, "participant": attached.participant,
                            "kind": err.kind, "message": str(err)})

    async def start(self, first_interval: int) -> None:
        """Reads every meter once (the registers the first interval's energy is counted from) and every battery."""
        for attached in self.devices:
            if attached.role == "meter":
                await self._baseline(attached, first_interval - 1)
            else:
                try:
                    self.latest[attached.device.name] = await attached.device.read()
                except DeviceError as err:
                    self._fault(first_interval - 1, attached, err)

    async def _baseline(self, attached: Attached, k: int) -> None:
        try:
            reading = await attached.device.read()
        except DeviceError as err:
            self._fault(k, attached, err)
            return
        self.latest[attached.device.name] = reading
        if reading.import_wh is None or reading.export_wh is None:
            self._fault(k, attached, DeviceError("malformed", f"{attached.device.name}: the meter has no import and export "
                                                               "registers"))
            return
        self._baseline_wh[attached.device.name] = reading.import_wh - reading.export_wh
        self._from[attached.device.name] = k + 1

    async def dispatch(self, k: int, battery_w: dict[str, float]) -> None:
        """Writes each participant's decided battery power (W, + charging) to its battery devices, once per interval (a
        node back from local control runs the intervals it ran locally again, with the same decisions)."""
        if k <= self._done["dispatch"]:
            return
        self._done["dispatch"] = k
        for attached in self.devices:
            if attached.role == "battery" and attached.participant in battery_w:
                try:
                    await attached.device.write_power_w(battery_w[attached.participant])
                except DeviceError as err:
                    self._fault(k, attached, err)

    async def meter(self, k: int) -> list[dict]:
        """After interval k: the `meter` payloads of every meter read now (the energy since its last good read); nothing
        for an interval already metered."""
        if k <= self._done["meter"]:
            return []
        self._done["meter"] = k
        if self.physics is not None:
            await self.physics(k)
        payloads = []
        for attached in self.devices:
            if attached.role != "meter":
                try:
                    self.latest[attached.device.name] = await attached.device.read()
                except DeviceError as err:
                    self._fault(k, attached, err)
                continue
            name = attached.device.name
            if name not in self._baseline_wh:  # never read yet: this read is where counting starts
                await self._baseline(attached, k)
                continue
            try:
                reading = await attached.device.read()
            except DeviceError as err:
                self._fault(k, attached, err)
                continue
            self.latest[name] = reading
            if reading.import_wh is None or reading.export_wh is None:
                self._fault(k, attached, DeviceError("malformed", f"{name}: the meter has no import and export registers"))
                continue
            net = reading.import_wh - reading.export_wh
            payloads.append({"interval": k, "participant": attached.participant, "from_interval": self._from[name],
                             "metered_wh": net - self._baseline_wh[name]})
            self.metered_wh[attached.participant] = (net - self._baseline_wh[name]) / (k + 1 - self._from[name])
            self._baseline_wh[name], self._from[name] = net, k + 1
        return payloads

    async def close(self) -> None:
        for attached in self.devices:
            await attached.device.close()
        for close in self.closers:
            await close()


async def connect(sections: list[DeviceSection], mqtt: MqttSection | None) -> DeviceLink:
    """The devices a NODE.toml's [[device]] entries name, with their protocol adapters."""
    from plurigrid.devices.modbus import SunSpecModbus

    link = DeviceLink([])
    bus = None
    for section in sections:
        device: Device
        if section.protocol == "sunspec":
            device = SunSpecModbus(section.name, section.host, section.port, section.unit_id, section.timeout_s)
        else:
            if bus is None:
                from plurigrid.devices.mqtt import MqttBus

                assert mqtt is not None  # the config's validation requires [mqtt] for mqtt devices
                bus = MqttBus(mqtt.host, mqtt.port, mqtt.prefix, mqtt.site, section.timeout_s)
                await bus.start()
                link.closers.append(bus.close)
            device = bus.device(section.name, section.stale_after_s)
        link.devices.append(Attached(device, section.participant, section.role))
    return link
