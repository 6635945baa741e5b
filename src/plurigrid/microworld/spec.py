"""Pydantic models of the microworld spec: what a TOML/JSON microworld file may say.

Every model forbids unknown keys (typo protection) and every number carries its unit in
its name. Validation errors are turned into one line per problem by `loader.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plurigrid.microworld.names import KINDS, MECHANISMS, STRATEGIES, STRATEGY_CHOICES


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_duration(value: object) -> pd.Timedelta:
    try:
        td = pd.Timedelta(str(value))
    except (ValueError, TypeError):
        raise ValueError(f"expected a duration like '15min', '1h' or '7d', got {value!r}") from None
    if td <= pd.Timedelta(0):
        raise ValueError("must be a positive duration")
    return td


Duration = Annotated[str, Field(description="duration such as '15min', '1h', '2d'")]


class Location(Strict):
    lat_deg: float = Field(52.52, ge=-90, le=90)
    lon_deg: float = Field(13.40, ge=-180, le=180)
    altitude_m: float = 0.0


class WorldSection(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    start: datetime = datetime(2024, 6, 21)
    duration: Duration = "1d"
    resolution: Duration = "15min"
    timezone: str = "Europe/Berlin"
    location: Location = Location()
    currency: str = Field("EUR", min_length=3, max_length=3)
    seed: int = 0

    @field_validator("duration", "resolution")
    @classmethod
    def _duration(cls, v: str) -> str:
        _parse_duration(v)
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


# ---------------------------------------------------------------- profiles


class ConstantProfile(Strict):
    source: Literal["constant"]
    p_kw: float


class ValuesProfile(Strict):
    """Inline values, one per `resolution_h` (default: one per hour), repeated to fill the horizon."""

    source: Literal["values"]
    p_kw: list[float] = Field(min_length=1)
    q_kvar: list[float] | None = None
    resolution: Duration = "1h"

    @model_validator(mode="after")
    def _same_length(self) -> ValuesProfile:
        if self.q_kvar is not None and len(self.q_kvar) != len(self.p_kw):
            raise ValueError(f"q_kvar has {len(self.q_kvar)} values but p_kw has {len(self.p_kw)}")
        return self


class BdewProfile(Strict):
    source: Literal["bdew"]
    slp: Literal["h0", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2"] = "h0"
    annual_kwh: float = Field(gt=0)


class CsvProfile(Strict):
    source: Literal["csv"]
    path: str
    column: str | None = None
    scale: float = 1.0


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
    mean_wind_speed_m_s: float = Field(7.0, gt=0)


class RunOfRiverProfile(Strict):
    source: Literal["run-of-river"]
    capacity_factor: float = Field(0.6, ge=0, le=1)


class PerUnitValues(Strict):
    """Inline per-unit availability values (0..1 of rated power), one per `resolution`."""

    source: Literal["values"]
    per_unit: list[float] = Field(min_length=1)
    resolution: Duration = "1h"

    @field_validator("per_unit")
    @classmethod
    def _unit_range(cls, v: list[float]) -> list[float]:
        if any(x < 0 or x > 1 for x in v):
            raise ValueError("per-unit availability must lie in [0, 1]")
        return v


GenProfile = Annotated[
    PvlibProfile | WindModelProfile | RunOfRiverProfile | PerUnitValues | CsvProfile | SimbenchProfile,
    Field(discriminator="source"),
]

# ---------------------------------------------------------------- assets


class Load(Strict):
    profile: LoadProfile
    power_factor: float = Field(0.95, gt=0, le=1)


class PV(Strict):
    kwp: float = Field(gt=0)
    profile: GenProfile = PvlibProfile(source="pvlib")


class Wind(Strict):
    p_kw: float = Field(gt=0)
    profile: GenProfile = WindModelProfile(source="wind-model")


class Hydro(Strict):
    p_kw: float = Field(gt=0)
    profile: GenProfile = RunOfRiverProfile(source="run-of-river")


class Battery(Strict):
    capacity_kwh: float = Field(gt=0)
    power_kw: float = Field(gt=0)
    efficiency: float = Field(0.95, gt=0, le=1, description="one-way (charge and discharge) efficiency")
    initial_soc_frac: float = Field(0.5, ge=0, le=1)
    min_soc_frac: float = Field(0.0, ge=0, lt=1)
    degradation_cost_eur_per_kwh: float = Field(0.0, ge=0, description="wear per kWh charged or discharged (opf)")


class EV(Strict):
    capacity_kwh: float = Field(60.0, gt=0)
    power_kw: float = Field(11.0, gt=0)
    arrival: str = Field("18:00", pattern=r"^\d{2}:\d{2}$")
    departure: str = Field("07:00", pattern=r"^\d{2}:\d{2}$")
    energy_kwh: float = Field(20.0, ge=0, description="energy needed by departure each day")
    efficiency: float = Field(0.92, gt=0, le=1)


class HVAC(Strict):
    """A heat pump or air conditioner keeping a building, a first-order (RC) thermal model, in a comfort band."""

    p_max_kw: float = Field(gt=0, description="electrical power")
    cop: float = Field(3.0, gt=0, description="heat moved per unit of electricity")
    mode: Literal["heat", "cool"] = "heat"
    capacitance_kwh_per_k: float = Field(10.0, gt=0, description="heat stored per kelvin of indoor temperature")
    resistance_k_per_kw: float = Field(4.0, gt=0, description="indoor-outdoor temperature difference per kW of heat loss")
    comfort_min_c: float = 20.0
    comfort_max_c: float = 23.0
    initial_c: float | None = Field(None, description="indoor temperature at the start (default: middle of the band)")
    outdoor_c: float | list[float] = Field(5.0, description="outdoor temperature: constant or 24 hourly values")
    discomfort_eur_per_kh: float = Field(0.5, ge=0, description="what a kelvin-hour outside the band costs the occupants")

    @model_validator(mode="after")
    def _band(self) -> HVAC:
        if self.comfort_min_c >= self.comfort_max_c:
            raise ValueError(f"comfort_min_c ({self.comfort_min_c}) must be below comfort_max_c ({self.comfort_max_c})")
        if isinstance(self.outdoor_c, list) and len(self.outdoor_c) != 24:
            raise ValueError(f"outdoor_c needs 24 hourly values, got {len(self.outdoor_c)}")
        return self


class Thermal(Strict):
    """A dispatchable thermal unit with three-part cost."""

    p_max_kw: float = Field(gt=0)
    p_min_kw: float = Field(0.0, ge=0)
    variable_cost_eur_per_mwh: float = Field(ge=0)
    no_load_cost_eur_per_h: float = Field(0.0, ge=0)
    startup_cost_eur: float = Field(0.0, ge=0)
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
    value_eur_per_mwh: float = Field(1000.0, gt=0, description="willingness to pay for energy (value of lost load)")
    flexible_frac: float = Field(0.0, ge=0, le=1, description="share of load that may be shifted")
    max_delay_h: float = Field(4.0, gt=0, description="how long shifted load may wait")
    local_renewable_premium_eur_per_mwh: float = Field(
        0.0, ge=0, description="extra willingness to pay for energy from the community's own renewables (opf)")


class ModuleLimits(Strict):
    """Per-call limits of a WASM strategy; each may only lower the manifest's."""

    fuel: int | None = Field(None, gt=0)
    memory_mb: float | None = Field(None, gt=0)
    deadline_ms: float | None = Field(None, gt=0)
    output_kb: float | None = Field(None, gt=0)


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

    @model_validator(mode="after")
    def _module_strategy(self) -> Participant:
        if self.strategy == "module" and self.module is None:
            raise ValueError("strategy 'module' needs a [participant.module] with a path")
        if self.module is not None and self.strategy != "module":
            raise ValueError(f"a module is given but strategy is {self.strategy!r}; set strategy = \"module\"")
        return self


# ---------------------------------------------------------------- grid


class Bus(Strict):
    id: str = Field(min_length=1)
    vn_kv: float = Field(gt=0)
    min_vm_pu: float = 0.9
    max_vm_pu: float = 1.1


class Line(Strict):
    """A line, either physical (ohm per km) or in per unit of `base_mva` at the from-bus voltage."""

    id: str = Field(min_length=1)
    from_bus: str
    to_bus: str
    length_km: float = Field(1.0, gt=0)
    r_ohm_per_km: float | None = Field(None, ge=0)
    x_ohm_per_km: float | None = Field(None, gt=0)
    c_nf_per_km: float = Field(0.0, ge=0)
    r_pu: float | None = Field(None, ge=0)
    x_pu: float | None = Field(None, gt=0)
    b_pu: float = Field(0.0, ge=0)
    max_i_ka: float = Field(gt=0)

    @model_validator(mode="after")
    def _one_impedance_form(self) -> Line:
        ohm = self.r_ohm_per_km is not None and self.x_ohm_per_km is not None
        pu = self.r_pu is not None and self.x_pu is not None
        if ohm == pu:
            raise ValueError("give either r_ohm_per_km and x_ohm_per_km, or r_pu and x_pu")
        return self


class Transformer(Strict):
    id: str = Field(min_length=1)
    hv_bus: str
    lv_bus: str
    sn_mva: float = Field(gt=0)
    r_pu: float = Field(ge=0, description="series resistance on the transformer's own base")
    x_pu: float = Field(gt=0, description="series reactance on the transformer's own base")
    tap_step_percent: float = Field(1.25, ge=0)
    tap_min: int = -8
    tap_max: int = 8
    tap_pos: int = 0


class Connection(Strict):
    """The point of common coupling with the upstream grid (the slack)."""

    bus: str
    vm_pu: float = Field(1.0, gt=0.5, lt=1.5)
    max_import_kw: float | None = Field(None, gt=0)


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
    base_mva: float = Field(100.0, gt=0)
    bus: list[Bus] = []
    line: list[Line] = []
    transformer: list[Transformer] = []
    connection: Connection | None = None
    rule: list[ParticipantRule] = []
    default_strategy: Literal[STRATEGIES] = "passive"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _source_or_inline(self) -> GridSection:
        if self.source is None and not self.bus:
            raise ValueError("give either source = '...' or inline [[grid.bus]] entries")
        if self.source is not None and (self.bus or self.line or self.transformer):
            raise ValueError("source and inline buses/lines/transformers exclude each other")
        if self.source is None and self.rule:
            raise ValueError("rules apply to participants generated from a referenced grid (source)")
        return self


# ---------------------------------------------------------------- market and events


class MarketSection(Strict):
    mechanism: Literal[MECHANISMS] = "tariff"  # type: ignore[valid-type]
    import_price_eur_per_kwh: float | list[float] = 0.30
    export_price_eur_per_kwh: float | list[float] = 0.08
    fee_eur_per_kwh: float = Field(0.0, ge=0, description="network fee on peer-to-peer energy, paid by the buyer")
    k_price_k: float = Field(0.5, ge=0, le=1, description="k-price: price = k * marginal bid + (1 - k) * marginal ask")
    opf_horizon_h: float = Field(24.0, gt=0, description="opf: look-ahead of the rolling clearing (only its first interval settles)")

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
    at: str = Field(description="offset from the world start ('6h') or an ISO time")
    kind: Literal["line_outage", "generator_trip", "participant_offline", "weather"]
    duration: Duration | None = Field(None, description="how long it lasts; open-ended if omitted")
    line: str | None = None
    participant: str | None = None
    scale: float | None = Field(None, ge=0, description="weather: factor on PV and wind availability")

    @model_validator(mode="after")
    def _target(self) -> Event:
        need = {
            "line_outage": ("line", self.line),
            "generator_trip": ("participant", self.participant),
            "participant_offline": ("participant", self.participant),
            "weather": ("scale", self.scale),
        }[self.kind]
        if need[1] is None:
            raise ValueError(f"a {self.kind} event needs '{need[0]}'")
        return self


class Microworld(Strict):
    world: WorldSection
    grid: GridSection
    participant: list[Participant] = []
    market: MarketSection = MarketSection()
    event: list[Event] = []

    @model_validator(mode="after")
    def _has_participants(self) -> Microworld:
        if self.grid.source is None and not self.participant:
            raise ValueError("an inline grid needs at least one [[participant]]")
        return self
