"""Physical dispatch of dispatchable units: merit-order commitment of thermal units and curtailment.

Islanded grids must balance locally: thermal units start in order of full-load average cost
(variable + no-load / p_max) to cover the residual demand; a committed unit runs at least at
p_min; surplus renewable power is curtailed pro rata. Connected grids run a unit only when its
average cost beats the import tariff, or when the import limit forces it.

An islanded grid whose renewables and available thermal units together fall short of its demand
has nothing left to supply the rest: that shortfall is shed (involuntary load shedding, see
`shed_load`); a connected grid's upstream supplies it instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Dispatch:
    thermal_kw: np.ndarray  # (N,) output of each participant's thermal unit
    on: np.ndarray  # (N,) bool, committed this step
    started: np.ndarray  # (N,) bool, started this step
    curtail_frac: float | np.ndarray  # share of available renewable power curtailed (one for all, or per participant)
    shed_kw: float = 0.0  # islanded: load shed because renewables and every available unit at full output fall short


def dispatch_thermal(demand_kw: np.ndarray, renewable_kw: np.ndarray, p_max_kw: np.ndarray, p_min_kw: np.ndarray,
                     avg_cost_eur_per_kwh: np.ndarray, was_on: np.ndarray, *, islanded: bool,
                     import_eur_per_kwh: float, max_import_kw: float | None) -> Dispatch:
    """Commits and dispatches thermal units for one step (see the module docstring)."""
    residual_kw = float(demand_kw.sum() - renewable_kw.sum())
    units = np.flatnonzero(p_max_kw > 0)
    thermal = np.zeros_like(demand_kw)
    if len(units) and residual_kw > 0:
        economic = islanded | (avg_cost_eur_per_kwh[units] < import_eur_per_kwh)
        order = units[np.lexsort((units, avg_cost_eur_per_kwh[units], ~economic))]
        cap_economic = p_max_kw[units[economic]].sum()
        forced = residual_kw - max_import_kw if max_import_kw is not None else 0.0
        target = max(min(residual_kw, cap_economic), forced, 0.0)
        cum_before = np.concatenate(([0.0], np.cumsum(p_max_kw[order])[:-1]))
        share = np.clip(target - cum_before, 0.0, p_max_kw[order])
        share = np.where(share > 0, np.maximum(share, p_min_kw[order]), 0.0)
        thermal[order] = share
    on = thermal > 0
    surplus_kw = thermal.sum() - residual_kw  # > 0: more supply than demand
    available = renewable_kw.sum()
    curtail = min(max(surplus_kw, 0.0) / available, 1.0) if islanded and available > 0 else 0.0
    shortfall = max(residual_kw - float(p_max_kw[units].sum()), 0.0) if islanded else 0.0  # exactly 0 when it suffices
    return Dispatch(thermal, on, on & ~was_on, curtail, shortfall)


def shed_load(served_kw: np.ndarray, dispatch: Dispatch) -> tuple[np.ndarray, Dispatch]:
    """Sheds an island's shortfall (`dispatch.shed_kw`) from the served load, pro rata to each participant's.

    Returns the load still served and the dispatch with `shed_kw` the load actually shed: at most all of
    it (what is left beyond, e.g. batteries charging, stays a mismatch the island's reference covers).
    Whoever is shed is metered, and so billed, only for what it got: energy and money stay balanced.
    """
    total_kw = float(served_kw.sum())
    share = min(dispatch.shed_kw / total_kw, 1.0) if total_kw > 0 else 0.0
    served = served_kw * (1.0 - share)
    return served, replace(dispatch, shed_kw=total_kw - float(served.sum()))
