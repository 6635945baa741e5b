"""What a node needs of a real device, whatever the protocol: read measurements, write setpoints.

Why: the node's observe step reads meters and its dispatch writes battery and charger setpoints; the
protocol (Modbus/SunSpec, MQTT, …) is a detail of the adapter. Readings carry units in their names and
cumulative registers as integers (Wh), since the ledger settles what a meter's register says. Every
failure is a `DeviceError` of one kind, so the node can fall back to local control, record the gap
and settle it later from the cumulative register, whatever went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from plurigrid.errors import PlurigridError

FAULT_KINDS = ("unreachable", "timeout", "malformed", "out_of_range", "stale", "refused")


class DeviceError(PlurigridError):
    """A device that could not be read or written; `kind` is one of FAULT_KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        assert kind in FAULT_KINDS, kind
        self.kind = kind
        super().__init__(f"{kind}: {message}")


@dataclass(frozen=True)
class Reading:
    """One read of a device. Powers are AC, positive into the device (a meter: imported from the grid; a battery:
    charging); `None` where the device has no such measurement."""

    device: str
    power_w: float | None = None
    import_wh: int | None = None  # cumulative registers
    export_wh: int | None = None
    soc_frac: float | None = None
    capacity_wh: float | None = None
    max_charge_w: float | None = None
    max_discharge_w: float | None = None


class Device(Protocol):
    name: str

    async def read(self) -> Reading: ...

    async def write_power_w(self, power_w: float) -> None:
        """A setpoint: positive charges (or consumes), negative discharges (or feeds in)."""

    async def close(self) -> None: ...
