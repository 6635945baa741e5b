"""Pydantic models of the microworld spec: what a TOML/JSON microworld file may say.

Every model forbids unknown keys (typo protection), every number carries its unit in its name
and must be finite, and every quantity is bounded by what is physically possible (or, for sizes,
sensible: see the MAX_* limits). A model checks what its own fields imply together (a battery's
minimum charge at most its initial charge); what needs several sections (events inside the horizon,
buses reachable from the reference) is checked in `checks.py`. Validation errors are turned into
one line per problem by `loader.py`.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from pydantic import AfterValidator, Field, field_validator, model_validator

from plurigrid.microworld.names import KINDS, MECHANISMS, STRATEGIES, STRATEGY_CHOICES
from plurigrid.microworld.privacy import DataPolicy
from plurigrid.microworld.strict import Strict

# Bounds past anything physical: they catch a slip of units or digits (kwp = 1e300, vn_kv = 1e-300) before
# it becomes an overflow or a singular power flow deep inside a run.
MAX_POWER_KW = 1e8  # 100 GW: more than the largest power plant (22.5 GW) or a grid equivalent in MATPOWER's cases
# ... and below anything real, where a tiny rating or impedance turns into a singular or overflowing power flow
MIN_POWER_KW = 1e-3  # a rating of 1 W
MIN_EFFICIENCY = 0.1
MAX_ENERGY_KWH = 1e9  # 1 TWh, more than the largest storage
MAX_ANNUAL_KWH = 1e10  # 10 TWh a year, more than the largest single consumer
MAX_PRICE_EUR_PER_KWH = 1e3  # a tariff, fee or wear cost (1e6 per MWh)
MAX_VALUE_EUR_PER_MWH = 1e6  # a willingness to pay or a variable cost
MAX_COST_EUR = 1e9  # a start-up cost, or a no-load cost per hour
MAX_HORIZON = pd.Timedelta(days=36525)  # 100 years
MAX_INT64 = 2**63 - 1  # seeds and fuel: what the engine and wasmtime hold in a signed 64-bit integer
MIN_RESOLUTION, MAX_RESOLUTION = pd.Timedelta(minutes=1), pd.Timedelta(days=1)
FIRST_YEAR, LAST_YEAR = 1900, 2100  # start of a world; pandas' calendar ends in 2262
Kw = Annotated[float, Field(ge=-MAX_POWER_KW, le=MAX_POWER_KW)]  # a signed power value of a profile


def _parse_duration(value: object) -> pd.Timedelta:
    try:
        with warnings.catch_warnings():  # a unit pandas deprecates ('1l') is refused, not a warning on stderr
            warnings.simplefilter("error")
            td = pd.Timedelta(str(value))
    except (ValueError, TypeError, OverflowError, Warning):
        raise ValueError(f"expected a duration like '15min', '1h' or '7d', got {value!r}") from None
    if td is pd.NaT:
        raise ValueError(f"expected a duration like '15min', '1h' or '7d', got {value!r}")
    if td <= pd.Timedelta(0):
        raise ValueError("must be a positive duration")
    if td > MAX_HORIZON:
        raise ValueError(f"must be at most {MAX_HORIZON.days}d (100 years)")
    return td


def _duration(value: str) -> str:
    _parse_duration(value)
    return value


Duration = Annotated[str, AfterValidator(_duration), Field(description="duration such as '15min', '1h', '2d'")]


def clock_minutes(value: str) -> int:
    """Minutes after midnight of an "HH:MM" time of day (00:00 to 23:59)."""
    hours, minutes = int(value[:2]), int(value[3:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"expected a time of day from 00:00 to 23:59, got {value!r}")
    return hours * 60 + minutes


def _time_of_day(value: str) -> str:
    clock_minutes(value)
    return value


TimeOfDay = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$"), AfterValidator(_time_of_day)]


def _zero_or_at_least(floor: float) -> AfterValidator:
    """0 (lossless, no shunt), or at least `floor`: a value between underflows pandapower's admittance matrix."""
    def check(value: float) -> float:
        if 0 < value < floor:
            raise ValueError(f"must be 0 or at least {floor:g}")
        return value
    return AfterValidator(check)


class Location(Strict):
    lat_deg: float = Field(52.52, ge=-90, le=90)
    lon_deg: float = Field(13.40, ge=-180, le=180)
    altitude_m: float = Field(0.0, ge=-500, le=9000)


class WorldSection(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    start: datetime = datetime(2024, 6, 21)
    duration: Duration = "1d"
    resolution: Duration = "15min"
    timezone: str = "Europe/Berlin"
    location: Location = Location()
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    seed: int = Field(0, ge=0, le=MAX_INT64)

    @field_validator("start")
    @classmethod
    def _calendar(cls, v: datetime) -> datetime:
        if not FIRST_YEAR <= v.year <= LAST_YEAR:
            raise ValueError(f"expected a start between {FIRST_YEAR} and {LAST_YEAR}, got {v.year}")
        return v

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: str) -> str:
        res = _parse_duration(v)
        if not MIN_RESOLUTION <= res <= MAX_RESOLUTION or res % MIN_RESOLUTION != pd.Timedelta(0):
            raise ValueError(f"expected whole minutes from 1min to 1d (energy is metered in whole Wh and EVs come "
                             f"and go on the minute), got {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            pd.Timestamp("2024-01-01").tz_localize(v)
        except Exception:
            raise ValueError(f"unknown timezone {v!r}; expected an IANA name like 'Europe/Berlin'") from None
        return v

    @model_validator(mode="after")
    def _whole_steps(self) -> WorldSection:
        dur, res = _parse_duration(self.duration), _parse_duration(self.resolution)
        if dur % res != pd.Timedelta(0):
            raise ValueError(f"duration {self.duration} is not a whole number of resolution steps ({self.resolution})")
        return self

    def start_time(self) -> pd.Timestamp:
        """The start as a time in the world's timezone; ValueError if that local time is skipped or repeated (DST)."""
        return _local_time(pd.Timestamp(self.start), self.timezone, f"start {self.start.isoformat()}")

    @property
    def end_time(self) -> pd.Timestamp:
        """The end of the horizon (the start of the step after the last)."""
        return self.start_time() + _parse_duration(self.duration)


# ---------------------------------------------------------------- profiles


class ConstantProfile(Strict):
    source: Literal["constant"]
    p_kw: Kw


class ValuesProfile(Strict):
    """Inline values, one per `resolution_h` (default: one per hour), repeated to fill the horizon."""

    source: Literal["values"]
    p_kw: list[Kw] = Field(min_length=1)
    q_kvar: list[Kw] | None = None
    resolution: Duration = "1h"

    @model_validator(mode="after")
    def _same_length(self) -> ValuesProfile:
        if self.q_kvar is not None and len(self.q_kvar) != len(self.p_kw):
            raise ValueError(f"q_kvar has {len(self.q_kvar)} values but p_kw has {len(self.p_kw)}")
        return self


class BdewProfile(Strict):
    source: Literal["bdew"]
    slp: Literal["h0", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2"] = "h0"
    annual_kwh: float = Field(ge=1e-3, le=MAX_ANNUAL_KWH)


class CsvProfile(Strict):
    source: Literal["csv"]
    path: str = Field(min_length=1)
    column: str | None = None
    scale: float = Field(1.0, ge=-1e6, le=1e6)


class SimbenchProfile(Strict):
    """A SimBench element's own profile (set by generated participants of `simbench:` grids)."""

    source: Literal["simbench"]
    element: Literal["load", "sgen", "storage"]
    index: int


LoadProfile = Annotated[
    ConstantProfile | ValuesProfile | BdewProfile | CsvProfile | SimbenchProfile,
    Field(discriminator="source"),
]


class PvlibProfile(Strict):
    source: Literal["pvlib"]
    tilt_deg: float = Field(30.0, ge=0, le=90)
    azimuth_deg: float = Field(180.0, ge=0, le=360)


class WindModelProfile(Strict):
    source: Literal["wind-model"]
    mean_wind_speed_m_s: float = Field(7.0, ge=0.1, le=50)


class RunOfRiverProfile(Strict):
    source: Literal["run-of-river"]
    capacity_factor: float = Field(0.6, ge=0, le=1)


class PerUnitValues(Strict):
    """Inline per-unit availability values (0..1 of rated power), one per `resolution`."""

    source: Literal["values"]
    per_unit: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1)
    resolution: Duration = "1h"


GenProfile = Annotated[
    PvlibProfile | WindModelProfile | RunOfRiverProfile | PerUnitValues | CsvProfile | SimbenchProfile,
    Field(discriminator="source"),
]

# ---------------------------------------------------------------- assets


class Load(Strict):
    profile: LoadProfile
    power_factor: float = Field(0.95, ge=0.05, le=1)


class PV(Strict):
    kwp: float = Field(ge=MIN_POWER_KW, le=MAX_POWER_KW)
    profile: GenProfile = PvlibProfile(source="pvlib")


class Wind(Strict):
    p_kw: float = Field(ge=MIN_POWER_KW, le=MAX_POWER_KW)
    profile: GenProfile = WindModelProfile(source="wind-model")


class Hydro(Strict):
    p_kw: float = Field(ge=MIN_POWER_KW, le=MAX_POWER_KW)
    profile: GenProfile = RunOfRiverProfile(source="run-of-river")


class Battery(Strict):
    capacity_kwh: float = Field(ge=1e-3, le=MAX_ENERGY_KWH)
    power_kw: float = Field(ge=MIN_POWER_KW, le=MAX_POWER_KW)
    efficiency: float = Field(0.95, ge=MIN_EFFICIENCY, le=1, description="one-way (charge and discharge) efficiency")
    initial_soc_frac: float = Field(0.5, ge=0, le=1)
    min_soc_frac: float = Field(0.0, ge=0, lt=1)
    degradation_cost_eur_per_kwh: float = Field(0.0, ge=0, le=MAX_PRICE_EUR_PER_KWH,
                                                description="wear per kWh charged or discharged (opf)")

    @model_validator(mode="after")
    def _start_above_minimum(self) -> Battery:
        if self.initial_soc_frac < self.min_soc_frac:
            raise ValueError(f"initial_soc_frac ({self.initial_soc_frac:g}) is below min_soc_frac ({self.min_soc_frac:g})")
        return self


class EV(Strict):
    capacity_kwh: float = Field(60.0, ge=0.1, le=1e4)
    power_kw: float = Field(11.0, ge=0.1, le=1e4)
    arrival: TimeOfDay = "18:00"
    departure: TimeOfDay = "07:00"
    energy_kwh: float = Field(20.0, ge=0, description="energy needed by departure each day")
    efficiency: float = Field(0.92, ge=MIN_EFFICIENCY, le=1)

    @model_validator(mode="after")
    def _chargeable(self) -> EV:
        if self.energy_kwh > self.capacity_kwh:
            raise ValueError(f"energy_kwh ({self.energy_kwh:g}) exceeds capacity_kwh ({self.capacity_kwh:g})")
        plugged_min = (clock_minutes(self.departure) - clock_minutes(self.arrival)) % (24 * 60)
        if plugged_min == 0:
            raise ValueError(f"arrival and departure are both {self.arrival}: the EV is never plugged in")
        reachable_kwh = self.power_kw * self.efficiency * plugged_min / 60
        if self.energy_kwh > reachable_kwh:
            raise ValueError(f"energy_kwh ({self.energy_kwh:g}) cannot be charged from {self.arrival} to {self.departure} "
                             f"at {self.power_kw:g} kW and efficiency {self.efficiency:g} (at most {reachable_kwh:.4g} kWh)")
        return self


IndoorC = Annotated[float, Field(ge=-50, le=60)]
OutdoorC = Annotated[float, Field(ge=-90, le=60)]


class HVAC(Strict):
    """A heat pump or air conditioner keeping a building, a first-order (RC) thermal model, in a comfort band."""

    p_max_kw: float = Field(ge=MIN_POWER_KW, le=MAX_POWER_KW, description="electrical power")
    cop: float = Field(3.0, ge=0.1, le=20, description="heat moved per unit of electricity")
    mode: Literal["heat", "cool"] = "heat"
    capacitance_kwh_per_k: float = Field(10.0, ge=1e-3, le=1e6, description="heat stored per kelvin of indoor temperature")
    resistance_k_per_kw: float = Field(4.0, ge=1e-3, le=1e3,
                                       description="indoor-outdoor temperature difference per kW of heat loss")
    comfort_min_c: IndoorC = 20.0
    comfort_max_c: IndoorC = 23.0
    initial_c: IndoorC | None = Field(None, description="indoor temperature at the start (default: middle of the band)")
    outdoor_c: OutdoorC | list[OutdoorC] = Field(5.0, description="outdoor temperature: constant or 24 hourly values")
    discomfort_eur_per_kh: float = Field(0.5, ge=0, le=1e6,
                                         description="what a kelvin-hour outside the band costs the occupants")

    @model_validator(mode="after")
    def _band(self) -> HVAC:
        if self.comfort_min_c >= self.comfort_max_c:
            raise ValueError(f"comfort_min_c ({self.comfort_min_c}) must be below comfort_max_c ({self.comfort_max_c})")
        if isinstance(self.outdoor_c, list) and len(self.outdoor_c) != 24:
            raise ValueError(f"outdoor_c needs 24 hourly values, got {len(self.outdoor_c)}")
        return self


class Thermal(Strict):
    """A dispatchable thermal unit with three-part cost."""

    p_max_kw: float = Field(ge=MIN_POWER_KW, le=MAX_POWER_KW)
    p_min_kw: float = Field(0.0, ge=0)
    variable_cost_eur_per_mwh: float = Field(ge=0, le=MAX_VALUE_EUR_PER_MWH)
    no_load_cost_eur_per_h: float = Field(0.0, ge=0, le=MAX_COST_EUR)
    startup_cost_eur: float = Field(0.0, ge=0, le=MAX_COST_EUR)
    initially_on: bool = False
    reference: bool = Field(False, description="the voltage/frequency reference when the grid is islanded")

    @model_validator(mode="after")
    def _min_below_max(self) -> Thermal:
        if self.p_min_kw > self.p_max_kw:
            raise ValueError(f"p_min_kw ({self.p_min_kw}) exceeds p_max_kw ({self.p_max_kw})")
        return self


class Assets(Strict):
    load: Load | None = None
    pv: PV | None = None
    wind: Wind | None = None
    hydro: Hydro | None = None
    battery: Battery | None = None
    ev: EV | None = None
    hvac: HVAC | None = None
    thermal: Thermal | None = None


class Preferences(Strict):
    value_eur_per_mwh: float = Field(1000.0, gt=0, le=MAX_VALUE_EUR_PER_MWH,
                                     description="willingness to pay for energy (value of lost load)")
    flexible_frac: float = Field(0.0, ge=0, le=1, description="share of load that may be shifted")
    max_delay_h: float = Field(4.0, gt=0, le=168, description="how long shifted load may wait (at most a week)")
    local_renewable_premium_eur_per_mwh: float = Field(
        0.0, ge=0, le=MAX_VALUE_EUR_PER_MWH,
        description="extra willingness to pay for energy from the community's own renewables (opf)")
    data_sharing: Literal["detail", "bills"] = Field(
        "detail", description="what the operator sees of this participant: per-step series, or bills only "
                              "(short for privacy.meter.operator = privacy.bids.operator = \"aggregate\")")


class ModuleLimits(Strict):
    """Per-call limits of a WASM strategy; each may only lower the manifest's."""

    fuel: int | None = Field(None, gt=0, le=MAX_INT64)
    memory_mb: float | None = Field(None, gt=0, le=4096, description="a 32-bit module addresses at most 4 GiB")
    output_kb: float | None = Field(None, gt=0, le=4096 * 1024)


class ModuleRef(Strict):
    """A participant's strategy as a sandboxed WebAssembly module (see docs/modules.md)."""

    path: str = Field(min_length=1, description="the .wasm (or .wat) file, relative to the microworld file")
    manifest: str | None = Field(None, description="its manifest TOML (default: beside the module, same name)")
    grants: list[str] | None = Field(None, description="capabilities granted; may only narrow the manifest's")
    limits: ModuleLimits = ModuleLimits()
    fallback: Literal[STRATEGIES] | None = Field(None, description="safe strategy when a call fails (default: the manifest's)")  # type: ignore[valid-type]


class Participant(Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    bus: str | int
    kind: Literal[KINDS] = "household"  # type: ignore[valid-type]
    assets: Assets = Assets()
    preferences: Preferences = Preferences()
    strategy: Literal[STRATEGY_CHOICES] = "passive"  # type: ignore[valid-type]
    module: ModuleRef | None = None
    privacy: DataPolicy | None = Field(None, description="who may see which of its data, how finely (on the world's [privacy])")
    markup_eur_per_kwh: float = Field(
        0.0, ge=-MAX_PRICE_EUR_PER_KWH, le=MAX_PRICE_EUR_PER_KWH,
        description="strategic mark-up on the strategy's limit prices: asks this much above them, bids this much below")

    @model_validator(mode="after")
    def _module_strategy(self) -> Participant:
        if self.strategy == "module" and self.module is None:
            raise ValueError("strategy 'module' needs a [participant.module] with a path")
        if self.module is not None and self.strategy != "module":
            raise ValueError(f"a module is given but strategy is {self.strategy!r}; set strategy = \"module\"")
        return self


# ---------------------------------------------------------------- grid


DiagramCoordinate = Annotated[float, Field(ge=-1e7, le=1e7)]


class Bus(Strict):
    id: str = Field(min_length=1)
    vn_kv: float = Field(ge=0.01, le=1200, description="10 V to 1,200 kV (the highest transmission voltages are 1,100 kV)")
    min_vm_pu: float = Field(0.9, gt=0.5, le=1)
    max_vm_pu: float = Field(1.1, ge=1, lt=1.5)
    diagram_xy: tuple[DiagramCoordinate, DiagramCoordinate] | None = Field(
        None, description="where the designer draws the bus (no physical meaning)")

    @model_validator(mode="after")
    def _band(self) -> Bus:
        if self.min_vm_pu >= self.max_vm_pu:
            raise ValueError(f"min_vm_pu ({self.min_vm_pu:g}) must be below max_vm_pu ({self.max_vm_pu:g})")
        return self


class Line(Strict):
    """A line, either physical (ohm per km, or a pandapower standard type) or in per unit of `base_mva` at the
    from-bus voltage."""

    id: str = Field(min_length=1)
    from_bus: str
    to_bus: str
    length_km: float = Field(1.0, ge=1e-3, le=1e4)
    r_ohm_per_km: Annotated[float, _zero_or_at_least(1e-6)] | None = Field(None, ge=0, le=1e4)
    x_ohm_per_km: float | None = Field(None, ge=1e-4, le=1e4)
    c_nf_per_km: Annotated[float, _zero_or_at_least(1e-6)] = Field(0.0, ge=0, le=1e5)
    r_pu: Annotated[float, _zero_or_at_least(1e-9)] | None = Field(None, ge=0, le=1e6)
    x_pu: float | None = Field(None, ge=1e-6, le=1e6)
    b_pu: Annotated[float, _zero_or_at_least(1e-9)] = Field(0.0, ge=0, le=1e3)
    max_i_ka: float | None = Field(None, ge=1e-4, le=100, description="thermal limit (default: the standard type's)")
    std_type: str | None = Field(None, min_length=1, description="a pandapower line standard type, e.g. 'NAYY 4x150 SE'")

    @model_validator(mode="after")
    def _one_impedance_form(self) -> Line:
        ohm = self.r_ohm_per_km is not None and self.x_ohm_per_km is not None
        pu = self.r_pu is not None and self.x_pu is not None
        if self.std_type is not None:
            if ohm or pu or self.r_ohm_per_km is not None or self.x_ohm_per_km is not None:
                raise ValueError("std_type gives the impedance; leave out r_ohm_per_km/x_ohm_per_km and r_pu/x_pu")
        elif ohm == pu:
            raise ValueError("give either std_type, r_ohm_per_km and x_ohm_per_km, or r_pu and x_pu")
        elif self.max_i_ka is None:
            raise ValueError("max_i_ka is required unless std_type gives it")
        if self.from_bus == self.to_bus:
            raise ValueError(f"from_bus and to_bus are both {self.from_bus!r}; a line joins two buses")
        return self


class Transformer(Strict):
    id: str = Field(min_length=1)
    hv_bus: str
    lv_bus: str
    sn_mva: float = Field(ge=1e-4, le=1e4)
    r_pu: Annotated[float, _zero_or_at_least(1e-6)] = Field(ge=0, le=10, description="series resistance on the transformer's own base")
    x_pu: float = Field(ge=1e-4, le=10, description="series reactance on the transformer's own base")
    tap_step_percent: float = Field(1.25, ge=0, le=50)
    tap_min: int = Field(-8, ge=-100, le=100)
    tap_max: int = Field(8, ge=-100, le=100)
    tap_pos: int = Field(0, ge=-100, le=100)

    @model_validator(mode="after")
    def _taps(self) -> Transformer:
        if self.hv_bus == self.lv_bus:
            raise ValueError(f"hv_bus and lv_bus are both {self.hv_bus!r}; a transformer joins two buses")
        if not self.tap_min <= self.tap_pos <= self.tap_max:
            raise ValueError(f"tap_pos ({self.tap_pos}) must lie from tap_min ({self.tap_min}) to tap_max ({self.tap_max})")
        return self


class Switch(Strict):
    """A switch from `bus` to another bus (`to_bus`) or at `bus`'s end of a line (`line`)."""

    id: str = Field(min_length=1)
    bus: str
    to_bus: str | None = None
    line: str | None = None
    closed: bool = True

    @model_validator(mode="after")
    def _one_target(self) -> Switch:
        if (self.to_bus is None) == (self.line is None):
            raise ValueError("give either to_bus (a bus-bus switch) or line (a line switch)")
        if self.to_bus == self.bus:
            raise ValueError(f"bus and to_bus are both {self.bus!r}; a switch joins two buses")
        return self


class Connection(Strict):
    """The point of common coupling with the upstream grid (the slack)."""

    bus: str
    vm_pu: float = Field(1.0, gt=0.5, lt=1.5)
    max_import_kw: float | None = Field(None, gt=0, le=MAX_POWER_KW)


class ParticipantRule(Strict):
    """Adds assets or a strategy to a share of generated participants (referenced grids)."""

    kind: Literal[KINDS] = "household"  # type: ignore[valid-type]
    fraction: float = Field(1.0, ge=0, le=1)
    battery: Battery | None = None
    ev: EV | None = None
    pv: PV | None = None
    strategy: Literal[STRATEGIES] | None = None  # type: ignore[valid-type]
    preferences: Preferences | None = None


class GridSection(Strict):
    source: str | None = Field(
        None, description="simbench:<code>, pandapower:<network>, or a path to a pandapower .json or MATPOWER .m file"
    )
    base_mva: float = Field(100.0, ge=1e-3, le=1e5)
    bus: list[Bus] = []
    line: list[Line] = []
    transformer: list[Transformer] = []
    switch: list[Switch] = []
    connection: Connection | None = None
    rule: list[ParticipantRule] = []
    default_strategy: Literal[STRATEGIES] = "passive"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _source_or_inline(self) -> GridSection:
        if self.source is None and not self.bus:
            raise ValueError("give either source = '...' or inline [[grid.bus]] entries")
        if self.source is not None and (self.bus or self.line or self.transformer or self.switch):
            raise ValueError("source and inline buses/lines/transformers/switches exclude each other")
        if self.source is None and self.rule:
            raise ValueError("rules apply to participants generated from a referenced grid (source)")
        return self


# ---------------------------------------------------------------- market and events


Tariff = Annotated[float, Field(ge=-MAX_PRICE_EUR_PER_KWH, le=MAX_PRICE_EUR_PER_KWH)]


class MarketSection(Strict):
    mechanism: Literal[MECHANISMS] = "tariff"  # type: ignore[valid-type]
    import_price_eur_per_kwh: Tariff | list[Tariff] = 0.30
    export_price_eur_per_kwh: Tariff | list[Tariff] = 0.08
    fee_eur_per_kwh: float = Field(0.0, ge=0, le=MAX_PRICE_EUR_PER_KWH,
                                   description="network fee on peer-to-peer energy, paid by the buyer")
    k_price_k: float = Field(0.5, ge=0, le=1, description="k-price: price = k * marginal bid + (1 - k) * marginal ask")
    opf_horizon_h: float = Field(24.0, gt=0, le=168,
                                 description="opf: look-ahead of the rolling clearing (only its first interval settles)")

    @field_validator("import_price_eur_per_kwh", "export_price_eur_per_kwh")
    @classmethod
    def _hourly(cls, v: float | list[float]) -> float | list[float]:
        if isinstance(v, list) and len(v) != 24:
            raise ValueError(f"a time-of-use tariff needs 24 hourly values, got {len(v)}")
        return v

    @model_validator(mode="after")
    def _no_free_arbitrage(self) -> MarketSection:
        imp = self.import_price_eur_per_kwh
        exp = self.export_price_eur_per_kwh
        imp_l = imp if isinstance(imp, list) else [imp] * 24
        exp_l = exp if isinstance(exp, list) else [exp] * 24
        if any(e > i for e, i in zip(exp_l, imp_l)):
            raise ValueError("export price exceeds import price in some hour")
        return self


class Event(Strict):
    at: str = Field(min_length=1, description="offset from the world start ('6h') or an ISO time")
    kind: Literal["line_outage", "generator_trip", "participant_offline", "weather"]
    duration: Duration | None = Field(None, description="how long it lasts; open-ended if omitted")
    line: str | None = None
    participant: str | None = None
    scale: float | None = Field(None, ge=0, le=1, description="weather: factor on PV and wind availability")
    hydro_scale: float | None = Field(None, ge=0, le=1, description="weather: factor on hydro availability (a drought)")

    @model_validator(mode="after")
    def _target(self) -> Event:
        targets = {"line_outage": "line", "generator_trip": "participant", "participant_offline": "participant",
                   "weather": "scale"}
        need = targets[self.kind]
        if self.kind == "weather" and self.scale is None and self.hydro_scale is None:
            raise ValueError("a weather event needs 'scale' (PV and wind) or 'hydro_scale', or both")
        if self.kind != "weather" and getattr(self, need) is None:
            raise ValueError(f"a {self.kind} event needs '{need}'")
        takes = {need, "hydro_scale"} if self.kind == "weather" else {need}
        extra = sorted(key for key in (set(targets.values()) | {"hydro_scale"}) - takes if getattr(self, key) is not None)
        if extra:
            raise ValueError(f"a {self.kind} event takes '{need}', not '{extra[0]}'")
        return self

    def start_in(self, world: WorldSection) -> pd.Timestamp:
        """When the event starts: `at` as an offset from the world's start, or an ISO time (the world's local
        time unless it gives an offset). ValueError if it is neither (never the wall clock: 'now' is refused)."""
        start = world.start_time()
        try:
            offset = pd.Timedelta(self.at)
        except (ValueError, OverflowError):
            offset = None
        if offset is not None and offset is not pd.NaT:
            return start + offset
        try:
            t0 = pd.Timestamp(datetime.fromisoformat(self.at))
        except (ValueError, OverflowError):
            raise ValueError(f"expected an offset like '6h' or an ISO time, got {self.at!r}") from None
        return _local_time(t0, world.timezone, self.at)


def _local_time(t: pd.Timestamp, timezone: str, what: str) -> pd.Timestamp:
    """``t`` in ``timezone``: converted if it has an offset, else read as local time there; ValueError naming
    ``what`` if that local time is skipped or repeated by a daylight-saving change."""
    if t.tzinfo is not None:
        return t.tz_convert(timezone)
    try:
        return t.tz_localize(timezone, nonexistent="raise", ambiguous="raise")
    except Exception:  # pytz's NonExistentTimeError and AmbiguousTimeError share no base with ValueError
        raise ValueError(f"{what} does not exist or happens twice in {timezone} (a daylight-saving change); "
                         "give another time or a UTC offset") from None


class Microworld(Strict):
    world: WorldSection
    grid: GridSection
    participant: list[Participant] = []
    market: MarketSection = MarketSection()
    event: list[Event] = []
    privacy: DataPolicy | None = Field(None, description="every participant's data policy unless it declares its own")

    @model_validator(mode="after")
    def _has_participants(self) -> Microworld:
        if self.grid.source is None and not self.participant:
            raise ValueError("an inline grid needs at least one [[participant]]")
        return self
