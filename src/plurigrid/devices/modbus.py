"""A SunSpec device over Modbus TCP (pymodbus): inverter (101–103, 701), storage (124, 802) or meter (201–204).

Why: the field's inverters, home batteries and meters speak SunSpec over Modbus TCP. The adapter finds
the device's model map on first use (`discover`), reads whole models in as few requests as Modbus
allows, applies the scale factors, checks what it read (a state of charge outside 0–100 %, a
cumulative register going backwards), and writes a battery's setpoint through model 124's storage
controls. Every failure is a `DeviceError`: unreachable, timeout, malformed, out_of_range or refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from plurigrid.devices import sunspec
from plurigrid.devices.base import DeviceError, Reading

INVERTERS, STORAGE, METERS = (101, 102, 103, 701), (124, 802), (201, 202, 203, 204)
# pymodbus logs a failed request with its last frames; the failure reaches the node as a DeviceError instead
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)
CHARGE, DISCHARGE = 1, 2  # model 124's StorCtl_Mod bits


class SunSpecModbus:
    def __init__(self, name: str, host: str, port: int = 502, unit_id: int = 1, timeout_s: float = 1.0) -> None:
        self.name, self.host, self.port, self.unit_id, self.timeout_s = name, host, port, unit_id, timeout_s
        self._client: AsyncModbusTcpClient | None = None
        self.models: dict[int, tuple[int, int]] = {}  # model id → (address of its ID register, length)
        self._last: dict[str, int] = {}  # cumulative registers last read: they only grow
        self._storage: tuple[float, int] | None = None  # model 124's WChaMax (W) and InOutWRte_SF, once read

    # ---------------------------------------------------------------- Modbus
    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is None or not self._client.connected:
            client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0,
                                          reconnect_delay=0, reconnect_delay_max=0)
            try:
                ok = await asyncio.wait_for(client.connect(), self.timeout_s + 1)
            except (TimeoutError, OSError, ModbusException):
                ok = False
            if not ok:
                client.close()
                raise DeviceError("unreachable", f"{self.name}: no Modbus TCP server at {self.host}:{self.port}")
            self._client = client
        return self._client

    async def _request(self, request: Any, what: str) -> Any:
        """One Modbus request (a coroutine of the client's), its failures as DeviceErrors naming `what` it was."""
        try:
            response = await asyncio.wait_for(request, self.timeout_s + 1)
        except (TimeoutError, ModbusIOException):
            self._drop()
            raise DeviceError("timeout", f"{self.name}: no answer within {self.timeout_s:g} s ({what})") from None
        except (ConnectionException, OSError):
            self._drop()
            raise DeviceError("unreachable", f"{self.name}: connection to {self.host}:{self.port} lost") from None
        if response.isError():
            raise DeviceError("refused", f"{self.name}: {what}: Modbus exception {getattr(response, 'exception_code', '?')}")
        return response

    async def _read(self, address: int, count: int) -> list[int]:
        client = await self._connected()
        words: list[int] = []
        for start in range(address, address + count, sunspec.MAX_READ):
            n = min(sunspec.MAX_READ, address + count - start)
            response = await self._request(client.read_holding_registers(start, count=n, device_id=self.unit_id),
                                           f"registers {start}–{start + n - 1}")
            if len(response.registers) != n:
                raise DeviceError("malformed", f"{self.name}: asked {n} registers at {start}, got {len(response.registers)}")
            words.extend(response.registers)
        return words

    async def _write(self, address: int, values: list[int]) -> None:
        client = await self._connected()
        await self._request(client.write_registers(address, values, device_id=self.unit_id), f"write at {address}")

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---------------------------------------------------------------- SunSpec
    async def discover(self) -> dict[int, tuple[int, int]]:
        """The device's models: id → (address, length), from its map."""
        for base in sunspec.BASES:
            try:
                if tuple(await self._read(base, 2)) == sunspec.MARKER:
                    break
            except DeviceError as err:
                if err.kind != "refused":
                    raise
        else:
            raise DeviceError("malformed", f"{self.name}: no SunSpec map (no 'SunS' at {', '.join(map(str, sunspec.BASES))})")
        models: dict[int, tuple[int, int]] = {}
        address = base + 2
        for _ in range(256):
            model_id, length = await self._read(address, 2)
            if model_id == sunspec.END_MODEL:
                self.models, self._storage = models, None
                return models
            models[model_id] = (address, length)
            address += 2 + length
        raise DeviceError("malformed", f"{self.name}: the SunSpec map has no end model")

    async def read_model(self, model_id: int) -> dict[str, Any]:
        if not self.models:
            await self.discover()
        if model_id not in self.models:
            raise DeviceError("malformed", f"{self.name}: has no SunSpec model {model_id} (has {sorted(self.models)})")
        address, length = self.models[model_id]
        definition = sunspec.model(model_id)
        if length < definition.length:
            raise DeviceError("malformed", f"{self.name}: model {model_id} is {length} registers long, the standard's "
                              f"{definition.length}")
        return sunspec.decode(definition, await self._read(address, definition.length + 2))

    def _kind(self) -> int:
        for group in (STORAGE, METERS, INVERTERS):
            for model_id in group:
                if model_id in self.models:
                    return model_id
        raise DeviceError("malformed", f"{self.name}: no inverter, storage or meter model (has {sorted(self.models)})")

    def _cumulative(self, name: str, value: Any) -> int | None:
        if value is None:
            return None
        wh = int(round(value))
        if wh < self._last.get(name, 0):
            raise DeviceError("malformed", f"{self.name}: {name} went back from {self._last[name]} to {wh} Wh")
        self._last[name] = wh
        return wh

    async def read(self) -> Reading:
        """One reading, by what the device is: storage, meter or inverter."""
        if not self.models:
            await self.discover()
        kind = self._kind()
        if kind in STORAGE:
            return await self._read_storage()
        v = await self.read_model(kind)
        if kind in METERS:
            return Reading(self.name, power_w=v["W"], import_wh=self._cumulative("TotWhImp", v["TotWhImp"]),
                           export_wh=self._cumulative("TotWhExp", v["TotWhExp"]))
        power = v["W"]  # an inverter's output: feeding in
        if kind == 701:  # DER AC measurements: energy injected and absorbed
            return Reading(self.name, power_w=None if power is None else -power,
                           export_wh=self._cumulative("TotWhInj", v["TotWhInj"]), import_wh=self._cumulative("TotWhAbs", v["TotWhAbs"]))
        return Reading(self.name, power_w=None if power is None else -power, export_wh=self._cumulative("WH", v["WH"]))

    async def _read_storage(self) -> Reading:
        """A battery: state of charge and ratings from model 802 (battery) where it has one, else 124 (storage)."""
        fields: dict[str, Any] = {}
        if 124 in self.models:
            v = await self.read_model(124)
            fields.update(soc_pct=v["ChaState"], max_charge_w=v["WChaMax"], max_discharge_w=v["WChaMax"])
        if 802 in self.models:
            v = await self.read_model(802)
            fields.update(soc_pct=v["SoC"], power_w=v["W"], capacity_wh=v["WHRtg"], max_charge_w=v["WChaRteMax"],
                          max_discharge_w=v["WDisChaRteMax"])
        soc = fields.pop("soc_pct", None)
        if soc is not None and not 0 <= soc <= 100:
            raise DeviceError("out_of_range", f"{self.name}: state of charge {soc:g} % outside 0–100 %")
        return Reading(self.name, soc_frac=None if soc is None else soc / 100, **fields)

    async def write_power_w(self, power_w: float) -> None:
        """A battery's setpoint through model 124: charge (positive) or discharge (negative) at this power, as a share
        of its rated power (StorCtl_Mod with InWRte or OutWRte)."""
        if 124 not in (self.models or await self.discover()):
            raise DeviceError("refused", f"{self.name}: takes no power setpoint (no SunSpec storage model 124)")
        if self._storage is None:  # its rating and the rates' scale factor: read once
            definition = sunspec.model(124)
            registers = await self._read(self.models[124][0], definition.length + 2)
            rated = sunspec.decode(definition, registers)["WChaMax"]
            exponent = sunspec.raw_value(definition.points["InOutWRte_SF"], registers)
            if not rated:
                raise DeviceError("malformed", f"{self.name}: model 124 has no WChaMax")
            self._storage = (float(rated), exponent if isinstance(exponent, int) else 0)
        rated, exponent = self._storage
        share = min(100.0, abs(power_w) / rated * 100)
        definition = sunspec.model(124)
        raw = round(share / 10.0 ** exponent)
        mode = CHARGE if power_w > 0 else DISCHARGE if power_w < 0 else 0
        address = self.models[124][0]
        points = definition.points
        await self._write(address + points["StorCtl_Mod"].offset, [mode])
        rates = [raw if power_w < 0 else 0, raw if power_w > 0 else 0]  # OutWRte, InWRte: adjacent registers
        await self._write(address + points["OutWRte"].offset, rates)

    async def close(self) -> None:
        self._drop()

