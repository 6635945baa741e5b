"""The participants' assets and preferences as columns: one table per kind of asset, one row per participant.

Why: the step, the strategies, the OPF, the module ABI and the recorder all read the same device
parameters; each kind is built here once, from the spec, with one name per quantity, and every
consumer reads these tables (a participant without the asset has zeros: no capacity, no rating).
Arrays are (N,) over participants, in the world's participant order; units are in the names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from plurigrid.assets.devices import hvac_decay
from plurigrid.microworld.spec import Participant, clock_minutes

NO_TIME = -1  # an EV without an arrival or departure time


def _columns(cls: type, n: int) -> dict[str, np.ndarray]:
    return {f.name: np.zeros(n, dtype=bool if f.name == "initially_on" else np.int64 if f.name.endswith("_min") else float)
            for f in fields(cls)}


@dataclass(frozen=True)
class Demand:
    """What served energy is worth to each participant and how flexible its load is."""

    value_eur_per_kwh: np.ndarray  # willingness to pay (value of lost load)
    premium_eur_per_kwh: np.ndarray  # extra value of energy from the community's own renewables
    flexible_frac: np.ndarray  # share of load that may be shifted
    max_delay_steps: np.ndarray  # how long shifted load may wait


@dataclass(frozen=True)
class Batteries:
    capacity_kwh: np.ndarray
    power_kw: np.ndarray
    efficiency: np.ndarray  # one-way, charge and discharge
    min_kwh: np.ndarray
    initial_kwh: np.ndarray
    degradation_eur_per_kwh: np.ndarray  # wear per kWh charged or discharged


@dataclass(frozen=True)
class EVs:
    power_kw: np.ndarray  # charger rating
    efficiency: np.ndarray
    need_kwh: np.ndarray  # energy needed by each departure
    arrival_min: np.ndarray  # minute of the day it arrives (NO_TIME: no EV)
    departure_min: np.ndarray


@dataclass(frozen=True)
class HVAC:
    p_max_kw: np.ndarray  # electrical rating (0: no HVAC)
    gain_k_per_kw: np.ndarray  # indoor temperature change per kW over one step (+ heating, - cooling)
    decay: np.ndarray  # share of the indoor-outdoor difference left after one step: exp(-dt / RC)
    comfort_min_c: np.ndarray
    comfort_max_c: np.ndarray
    initial_c: np.ndarray
    discomfort_eur_per_kh: np.ndarray

    def outside_comfort_k(self, indoor_c: np.ndarray) -> np.ndarray:
        """How far each building's indoor temperature is outside its comfort band (K; 0 inside it or without HVAC)."""
        outside = np.maximum(self.comfort_min_c - indoor_c, 0.0) + np.maximum(indoor_c - self.comfort_max_c, 0.0)
        return np.where(self.p_max_kw > 0, outside, 0.0)


@dataclass(frozen=True)
class Thermal:
    p_max_kw: np.ndarray
    p_min_kw: np.ndarray
    marginal_cost_eur_per_kwh: np.ndarray
    no_load_eur_per_h: np.ndarray
    startup_eur: np.ndarray
    initially_on: np.ndarray  # bool


@dataclass(frozen=True)
class Fleet:
    """Every participant's assets and preferences, one table per kind."""

    demand: Demand
    batteries: Batteries
    evs: EVs
    hvac: HVAC
    thermal: Thermal


def fleet_of(participants: Sequence[Participant], dt_h: float) -> Fleet:
    """The asset tables of `participants` for a world stepping `dt_h` hours at a time."""
    n = len(participants)
    d, b, e, h, t = (_columns(cls, n) for cls in (Demand, Batteries, EVs, HVAC, Thermal))
    e["arrival_min"][:] = e["departure_min"][:] = NO_TIME
    for i, p in enumerate(participants):
        a, pref = p.assets, p.preferences
        d["value_eur_per_kwh"][i] = pref.value_eur_per_mwh / 1000
        d["premium_eur_per_kwh"][i] = pref.local_renewable_premium_eur_per_mwh / 1000
        d["flexible_frac"][i] = pref.flexible_frac
        d["max_delay_steps"][i] = max(1, round(pref.max_delay_h / dt_h))
        if a.battery is not None:
            bat = a.battery
            b["capacity_kwh"][i], b["power_kw"][i], b["efficiency"][i] = bat.capacity_kwh, bat.power_kw, bat.efficiency
            b["min_kwh"][i] = bat.min_soc_frac * bat.capacity_kwh
            b["initial_kwh"][i] = max(bat.initial_soc_frac, bat.min_soc_frac) * bat.capacity_kwh
            b["degradation_eur_per_kwh"][i] = bat.degradation_cost_eur_per_kwh
        if a.ev is not None:
            ev = a.ev
            e["power_kw"][i], e["efficiency"][i], e["need_kwh"][i] = ev.power_kw, ev.efficiency, min(ev.energy_kwh, ev.capacity_kwh)
            e["arrival_min"][i], e["departure_min"][i] = clock_minutes(ev.arrival), clock_minutes(ev.departure)
        if a.hvac is not None:
            hv = a.hvac
            decay = float(hvac_decay(dt_h, hv.resistance_k_per_kw, hv.capacitance_kwh_per_k))
            sign = 1.0 if hv.mode == "heat" else -1.0
            h["p_max_kw"][i], h["decay"][i] = hv.p_max_kw, decay
            h["gain_k_per_kw"][i] = (1 - decay) * sign * hv.resistance_k_per_kw * hv.cop
            h["comfort_min_c"][i], h["comfort_max_c"][i] = hv.comfort_min_c, hv.comfort_max_c
            h["initial_c"][i] = hv.initial_c if hv.initial_c is not None else (hv.comfort_min_c + hv.comfort_max_c) / 2
            h["discomfort_eur_per_kh"][i] = hv.discomfort_eur_per_kh
        if a.thermal is not None:
            th = a.thermal
            t["p_max_kw"][i], t["p_min_kw"][i] = th.p_max_kw, th.p_min_kw
            t["marginal_cost_eur_per_kwh"][i] = th.variable_cost_eur_per_mwh / 1000
            t["no_load_eur_per_h"][i], t["startup_eur"][i] = th.no_load_cost_eur_per_h, th.startup_cost_eur
            t["initially_on"][i] = th.initially_on
    return Fleet(Demand(**d), Batteries(**b), EVs(**e), HVAC(**h), Thermal(**t))
