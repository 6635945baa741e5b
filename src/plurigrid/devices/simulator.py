"""A SunSpec site on Modbus TCP: a PV inverter, a home battery and a grid meter, with their physics.

Why: hardware-in-the-loop tests, benchmarks and demos need devices that behave like real ones over the
real protocol. One pymodbus server holds three units (1 inverter: models 1 + 103; 2 battery: 1 + 124 +
802; 3 meter: 1 + 203), each its own SunSpec map at 40000. `advance` integrates an interval: the PV
output, the battery following the setpoint written to its model-124 controls (within its power and
state-of-charge limits), and the meter's net power and its cumulative import and export registers in
whole Wh, carrying the fractions so that no energy is lost between intervals. `outage()` and
`restore()` take the server away and back; `corrupt` writes raw registers, as a faulty device would.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from plurigrid.devices import sunspec

BASE = 40000
INVERTER, BATTERY, METER = 1, 2, 3
STORAGE_SCALE = {"WChaMax_SF": 0, "WChaDisChaGra_SF": 0, "ChaState_SF": -1, "InOutWRte_SF": -1, "VAChaMax_SF": 0,
                 "MinRsvPct_SF": 0, "StorAval_SF": 0, "InBatV_SF": -1}


@dataclass
class Site:
    """The devices' physical state (what the registers show)."""

    pv_w: float = 0.0
    load_w: float = 0.0
    battery_w: float = 0.0  # + charging
    soc_wh: float = 5000.0
    capacity_wh: float = 10000.0
    rated_w: float = 5000.0
    efficiency: float = 1.0
    import_wh: int = 0
    export_wh: int = 0
    pv_wh: int = 0
    _carry_wh: dict[str, float] = field(default_factory=lambda: {"import": 0.0, "export": 0.0, "pv": 0.0})
    mode: int = 0  # model 124 StorCtl_Mod: 1 charge, 2 discharge
    in_rate_pct: float = 0.0
    out_rate_pct: float = 0.0

    @property
    def net_w(self) -> float:
        """What the meter sees: positive imported from the grid."""
        return self.load_w + self.battery_w - self.pv_w

    def setpoint_w(self) -> float:
        if self.mode & 1 and self.in_rate_pct:
            return self.rated_w * self.in_rate_pct / 100
        if self.mode & 2 and self.out_rate_pct:
            return -self.rated_w * self.out_rate_pct / 100
        return 0.0

    def advance(self, dt_s: float, load_w: float, pv_w: float) -> None:
        hours = dt_s / 3600
        self.load_w, self.pv_w = load_w, pv_w
        want = self.setpoint_w()
        room_w = (self.capacity_wh - self.soc_wh) / hours / self.efficiency
        stock_w = self.soc_wh * self.efficiency / hours
        self.battery_w = min(want, room_w) if want > 0 else max(want, -stock_w)
        self.soc_wh += (self.battery_w * self.efficiency if self.battery_w > 0 else self.battery_w / self.efficiency) * hours
        self.soc_wh = min(max(self.soc_wh, 0.0), self.capacity_wh)
        net_wh = self.net_w * hours
        self._count("import", max(net_wh, 0.0))
        self._count("export", max(-net_wh, 0.0))
        self._count("pv", pv_w * hours)

    def _count(self, register: str, wh: float) -> None:
        total = self._carry_wh[register] + wh
        whole = int(total)
        self._carry_wh[register] = total - whole
        setattr(self, f"{register}_wh", getattr(self, f"{register}_wh") + whole)


def _common(serial: str, model_name: str) -> list[int]:
    return sunspec.encode(sunspec.model(1), {"Mn": "Plurigrid", "Md": model_name, "Vr": "1.0", "SN": serial, "DA": 1})


def _map(*models: list[int]) -> list[int]:
    return [*sunspec.MARKER, *(r for m in models for r in m), sunspec.END_MODEL, 0]


class SunSpecSimulator:
    """Serve with `async with SunSpecSimulator(port) as sim:`; `sim.site` is the physics."""

    def __init__(self, port: int, host: str = "127.0.0.1", site: Site | None = None) -> None:
        self.host, self.port = host, port
        self.site = site or Site()
        self.overrides: dict[tuple[int, int], int] = {}  # (unit, register) → raw value a faulty device shows
        self.requests = 0
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task | None = None

    # ---------------------------------------------------------------- register images, from the site
    def image(self, unit: int) -> list[int]:
        s = self.site
        if unit == INVERTER:
            return _map(_common("INV-1", "PV inverter"), sunspec.encode(sunspec.model(103), {
                "W": round(s.pv_w), "WH": s.pv_wh, "Hz": 50.0, "PhVphA": 230.0, "PhVphB": 230.0, "PhVphC": 230.0,
                "A": s.pv_w / 230 / 3, "TmpCab": 35.0, "St": 4, "Evt1": 0}, {"W_SF": 0, "WH_SF": 0, "Hz_SF": -2, "V_SF": -1,
                                                                             "A_SF": -2, "Tmp_SF": -1}))
        if unit == BATTERY:
            storage = sunspec.encode(sunspec.model(124), {
                "WChaMax": s.rated_w, "ChaState": s.soc_wh / s.capacity_wh * 100, "StorCtl_Mod": s.mode,
                "InWRte": s.in_rate_pct, "OutWRte": s.out_rate_pct, "ChaSt": 3}, STORAGE_SCALE)
            battery = sunspec.encode(sunspec.model(802), {
                "WHRtg": s.capacity_wh, "WChaRteMax": s.rated_w, "WDisChaRteMax": s.rated_w, "SoC": s.soc_wh / s.capacity_wh * 100,
                "W": round(s.battery_w), "ChaSt": 3, "Typ": 4, "State": 4}, {"WHRtg_SF": 0, "WChaDisChaMax_SF": 0, "SoC_SF": -1,
                                                                              "W_SF": 0})
            return _map(_common("BAT-1", "Home battery"), storage, battery)
        return _map(_common("MTR-1", "Grid meter"), sunspec.encode(sunspec.model(203), {
            "W": round(s.net_w), "Hz": 50.0, "TotWhImp": s.import_wh, "TotWhExp": s.export_wh, "PhV": 230.0},
            {"W_SF": 0, "Hz_SF": -2, "TotWh_SF": 0, "V_SF": -1}))

    def _control(self, register: int, values: list[int]) -> None:
        """A client's write to the battery's model-124 controls."""
        definition = sunspec.model(124)
        start = self.address(BATTERY, 124)
        scale = 10.0 ** STORAGE_SCALE["InOutWRte_SF"]
        for i, value in enumerate(values):
            offset = register + i - start
            if offset == definition.points["StorCtl_Mod"].offset:
                self.site.mode = value
            elif offset == definition.points["OutWRte"].offset:
                self.site.out_rate_pct = value * scale
            elif offset == definition.points["InWRte"].offset:
                self.site.in_rate_pct = value * scale

    async def _action(self, unit: int, function_code: int, start_address: int, address: int, count: int,
                      current: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        self.requests += 1
        image = self.image(unit)
        if address < BASE or address + count > BASE + len(image):
            return ExcCodes.ILLEGAL_ADDRESS
        if set_values is not None:
            if unit != BATTERY:
                return ExcCodes.ILLEGAL_ADDRESS
            self._control(address, [int(v) for v in set_values])
            return None
        for i in range(len(current)):
            register = start_address + i
            if BASE <= register < BASE + len(image):
                current[i] = self.overrides.get((unit, register), image[register - BASE])
        return None

    def corrupt(self, unit: int, model_id: int, point: str, raw: int) -> None:
        """Makes the device show `raw` in a point's first register (a faulty device)."""
        address = self.address(unit, model_id) + sunspec.model(model_id).points[point].offset
        self.overrides[(unit, address)] = raw

    def address(self, unit: int, model_id: int) -> int:
        image, address = self.image(unit), BASE + 2
        while image[address - BASE] != model_id:
            address += 2 + image[address - BASE + 1]
        return address

    # ---------------------------------------------------------------- serving
    def _devices(self) -> list[SimDevice]:
        size = max(len(self.image(u)) for u in (INVERTER, BATTERY, METER)) + 8
        return [SimDevice(unit, simdata=[SimData(BASE, count=size, values=0, datatype=DataType.REGISTERS)],
                          action=partial(self._action, unit)) for unit in (INVERTER, BATTERY, METER)]

    async def start(self) -> None:
        self._server = ModbusTcpServer(self._devices(), address=(self.host, self.port))
        self._task = asyncio.create_task(self._server.serve_forever())
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                return
            await asyncio.sleep(0.02)
        raise OSError(f"the SunSpec simulator did not start on {self.host}:{self.port}")

    async def outage(self) -> None:
        """The devices go away (the server closes every connection and stops listening)."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def restore(self) -> None:
        await self.start()

    async def __aenter__(self) -> SunSpecSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.outage()

