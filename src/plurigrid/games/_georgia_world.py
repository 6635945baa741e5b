"""One turn's consequences in the `georgia-resilience` game: the library world `georgia` simulated for a day with
the turn's state applied (import capacities, the investors' assets, the shocks as events).

Why through the engine: unserved energy and prices come from the same dispatch, market and power flow as any
`plurigrid run georgia` (load shedding included), not from a formula of ours. A day depends only on its
`DayInputs`, and turns repeat the same inputs often (states saturate, learners settle), so days are cached.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from plurigrid.engine.simulate import simulate
from plurigrid.engine.step import State, StepResult
from plurigrid.engine.world import compile_world
from plurigrid.games._georgia_model import ImportCapacity, Stock
from plurigrid.microworld.loader import parse_text, resolve, validate_data

WORLD = "georgia"
MICRO_PER_EUR = 1_000_000
HYDRO = ("enguri", "hydro-rivers", "new-hydro-storage")  # the participants whose output is hydro
PARTNERS = {"azerbaijan": "import-azerbaijan", "armenia": "import-armenia", "turkey": "import-turkey",
            "russia": "import-russia"}
SHOCK_EVENTS: dict[str, dict[str, Any]] = {  # each lasts the whole day; a drought's hydro_scale is the spec's
    "drought": {"kind": "weather"},
    "import-cutoff": {"kind": "generator_trip", "participant": "import-russia"},
    "dam-outage": {"kind": "generator_trip", "participant": "enguri"},
}
# One lump of each investment (participant "new-<kind>"): a reservoir plant like a smaller Enguri (its release
# schedule), a utility PV plant, a wind farm (a windier site than Kartli's).
# Wind comes first: its seeded profile follows its participant's position, which so stays the same.
LUMPS: dict[str, dict[str, Any]] = {
    "wind": {"bus": "tbilisi", "kind": "producer", "strategy": "truthful", "per_lump": {"wind_kw": 150_000.0}},
    "hydro-storage": {"bus": "kutaisi", "kind": "producer", "strategy": "truthful", "per_lump": {"hydro_kw": 150_000.0}},
    "solar": {"bus": "tbilisi", "kind": "producer", "strategy": "truthful", "per_lump": {"pv_kwp": 200_000.0}},
}


@dataclass(frozen=True)
class DayInputs:
    """Everything a turn's day depends on (hashable: the cache's key)."""

    capacity: ImportCapacity
    stock: Stock
    shocks: frozenset[str]
    drought_hydro_scale: float
    hours: int


@dataclass(frozen=True)
class DayOutcome:
    """What a simulated day gives the game: hourly prices and shedding, energy by source, money by participant."""

    price_eur_per_mwh: np.ndarray  # (steps,) the market's uniform price (the marginal unit's ask)
    unserved_mw: np.ndarray  # (steps,) load shed
    dt_h: float
    demand_mwh: float  # what consumers wanted: served + unserved
    unserved_mwh: float
    hydro_mwh: float
    generation_mwh: float  # every unit's output, imports included
    imports_mwh: dict[str, float]  # by partner
    margin_eur: dict[str, float]  # per participant: market revenue less its bill and fuel (import) cost
    load_bill_eur: float  # what the three load centres paid

    @property
    def hydro_share(self) -> float:
        return self.hydro_mwh / self.generation_mwh if self.generation_mwh > 0 else 0.0

    def spike_hours(self, threshold_eur_per_mwh: float) -> float:
        """Hours with the price above the threshold."""
        return float(np.sum(self.price_eur_per_mwh > threshold_eur_per_mwh) * self.dt_h)

    def abnormal_hours(self, threshold_eur_per_mwh: float) -> float:
        """Hours with load shed or the price above the threshold."""
        bad = (self.unserved_mw > 0) | (self.price_eur_per_mwh > threshold_eur_per_mwh)
        return float(np.sum(bad) * self.dt_h)


@lru_cache(maxsize=1)
def _base_spec() -> dict[str, Any]:
    """The library world as parsed from its TOML (never modified: copied for each day)."""
    name, text, _ = resolve(WORLD)
    return parse_text(name, text)


def day_spec(inputs: DayInputs) -> dict[str, Any]:
    """The world's spec with the turn applied: partners' capacities (a partner with none is tripped for the day),
    the investors' lumps as participants after the world's own, and each shock as an event over the whole day."""
    spec = copy.deepcopy(_base_spec())
    cap = inputs.capacity
    mw = {"import-azerbaijan": cap.azerbaijan_mw, "import-armenia": cap.armenia_mw, "import-turkey": cap.turkey_mw}
    participants = spec["participant"]
    events = [{"at": "0h", **SHOCK_EVENTS[s]} | ({"hydro_scale": inputs.drought_hydro_scale} if s == "drought" else {})
              for s in sorted(inputs.shocks)]
    for p in participants:
        if p["id"] in mw:
            p["assets"]["thermal"]["p_max_kw"] = 1000.0 * max(mw[p["id"]], 1)
            if mw[p["id"]] <= 0:
                events.append({"at": "0h", "kind": "generator_trip", "participant": p["id"]})
    enguri = next(p for p in participants if p["id"] == "enguri")
    for kind, lump in LUMPS.items():
        n = inputs.stock.lumps(kind)
        if n:
            participants.append(_lump_participant(kind, lump, n, enguri["assets"]["hydro"]["profile"]))
    spec["event"] = events
    return spec


def _lump_participant(kind: str, lump: dict[str, Any], n: int, reservoir_profile: dict[str, Any]) -> dict[str, Any]:
    per = lump["per_lump"]
    if kind == "hydro-storage":
        assets: dict[str, Any] = {"hydro": {"p_kw": n * per["hydro_kw"], "profile": copy.deepcopy(reservoir_profile)}}
    elif kind == "solar":
        assets = {"pv": {"kwp": n * per["pv_kwp"]}}
    else:
        assets = {"wind": {"p_kw": n * per["wind_kw"], "profile": {"source": "wind-model", "mean_wind_speed_m_s": 8.0}}}
    return {"id": f"new-{kind}", "bus": lump["bus"], "kind": lump["kind"], "strategy": lump["strategy"], "assets": assets}


@lru_cache(maxsize=2048)
def simulate_day(inputs: DayInputs) -> DayOutcome:
    """Simulates the turn's day (the first `inputs.hours` hours) through the engine, without a ledger."""
    spec = validate_data(f"{WORLD}.toml", day_spec(inputs))
    world = compile_world(spec, f"{WORLD}.toml", None, hours=inputs.hours)
    n, steps, dt_h = world.n, world.steps, world.dt_h
    price, unserved, served = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    output_kwh, bill_micro, fuel_eur = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n)

    def record(state: State, k: int, r: StepResult) -> None:
        price[k] = r.clearing.price_eur_per_kwh * 1000
        unserved[k] = r.dispatch.shed_kw / 1000
        served[k] = r.served_kw.sum() / 1000
        output_kwh[:] += (r.renewable_kw + r.dispatch.thermal_kw) * dt_h
        bill_micro[:] += r.settlement.bill_micro
        fuel_eur[:] += r.thermal_cost_eur

    simulate(world, after_step=record)
    pos = {pid: i for i, pid in enumerate(world.ids)}
    mwh = lambda pid: float(output_kwh[pos[pid]]) / 1000 if pid in pos else 0.0
    margin = {pid: -float(bill_micro[i]) / MICRO_PER_EUR - float(fuel_eur[i]) for pid, i in pos.items()}
    loads = [i for pid, i in pos.items() if pid.startswith("load-")]
    for a in (price, unserved):
        a.flags.writeable = False  # shared by every cache hit
    return DayOutcome(
        price_eur_per_mwh=price, unserved_mw=unserved, dt_h=dt_h,
        demand_mwh=float((served.sum() + unserved.sum()) * dt_h), unserved_mwh=float(unserved.sum() * dt_h),
        hydro_mwh=sum(mwh(pid) for pid in HYDRO), generation_mwh=float(output_kwh.sum()) / 1000,
        imports_mwh={partner: mwh(pid) for partner, pid in PARTNERS.items()}, margin_eur=margin,
        load_bill_eur=float(bill_micro[loads].sum()) / MICRO_PER_EUR,
    )
