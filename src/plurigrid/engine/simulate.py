"""The simulate driver: runs the step over a world's horizon on a virtual clock and records columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from plurigrid.engine.step import State, StepResult, initial_state, step
from plurigrid.engine.world import World
from plurigrid.market.properties import STEP_COLUMNS, step_properties


@dataclass
class RunRecord:
    """Per-step columns (T,), per-participant matrices (T, N) and per-element grid matrices (T, M)."""

    world: World
    series: dict[str, np.ndarray]
    participant: dict[str, np.ndarray]
    grid: dict[str, np.ndarray]
    trades: dict[str, np.ndarray]
    state: State
    timings_s: dict[str, float] = field(default_factory=dict)


_SERIES = ("price_eur_per_kwh", "import_eur_per_kwh", "export_eur_per_kwh", "demand_kw", "served_kw", "renewable_kw",
           "renewable_available_kw", "thermal_kw", "upstream_kw", "losses_kw", "pf_losses_kw", "traded_kwh", "vm_min_pu",
           "vm_max_pu", "max_line_loading_pct", "max_trafo_loading_pct", "pf_converged", "thermal_on",
           "thermal_starts", "soc_kwh", "thermal_cost_eur", "curtail_frac",
           "discomfort_eur", "opf_ok", "opf_solve_s", "opf_imbalance_kw", "opf_welfare_eur")  # opf_*: the opf mechanism's plan (else 0)
_PARTICIPANT = {"net_kw": float, "metered_wh": np.int64, "traded_wh": np.int64, "bill_micro": np.int64,
                "baseline_micro": np.int64, "soc_kwh": float, "thermal_kw": float, "served_kw": float,
                "indoor_c": float, "unit_price_eur_per_kwh": float, "green_kw": float}


def simulate(world: World, progress: Callable[[int], None] | None = None,
             before_step: Callable[[World, int], None] | None = None,
             after_step: Callable[[World, int, StepResult], None] | None = None) -> RunRecord:
    """Runs every step of the world and returns the recorded columns.

    `before_step(world, k)` runs before each step: the place to change the running world between
    steps, e.g. swap a participant's module (`world.modules.swap`). `after_step(world, k, result)`
    runs after it, e.g. to commit the step's settlement to a ledger (`engine.ledger_entries.RunLedger`).
    """
    T, N = world.steps, world.n
    net = world.grid.net
    series = {k: np.zeros(T) for k in _SERIES} | {k: np.zeros(T, dtype=dt) for k, dt in STEP_COLUMNS.items()}
    part = {k: np.zeros((T, N), dtype=dt) for k, dt in _PARTICIPANT.items()}
    grid = {"vm_pu": np.zeros((T, len(net.bus)), dtype=np.float32),
            "line_loading_pct": np.zeros((T, len(net.line)), dtype=np.float32),
            "trafo_loading_pct": np.zeros((T, len(net.trafo)), dtype=np.float32)}
    trades: dict[str, list[np.ndarray]] = {"step": [], "buyer": [], "seller": [], "wh": [], "price_eur_per_kwh": []}
    state = initial_state(world)
    for k in range(T):
        if before_step is not None:
            before_step(world, k)
        r = step(world, state, k)
        _record(world, k, r, state, series, part, grid, trades)
        if after_step is not None:
            after_step(world, k, r)
        if progress is not None:
            progress(k)
    return RunRecord(world, series, part, grid, {k: np.concatenate(v) if v else np.zeros(0) for k, v in trades.items()},
                     state, dict(state.timings_s))


def _record(world: World, k: int, r: StepResult, state: State, series: dict, part: dict, grid: dict, trades: dict) -> None:
    dt_h = world.dt_h
    st, pf = r.settlement, r.pf
    s = series
    s["price_eur_per_kwh"][k] = r.clearing.price_eur_per_kwh
    s["import_eur_per_kwh"][k] = world.import_eur_per_kwh[k]
    s["export_eur_per_kwh"][k] = world.export_eur_per_kwh[k]
    s["demand_kw"][k] = r.demand_kw.sum()
    s["served_kw"][k] = r.served_kw.sum()
    s["renewable_kw"][k] = r.renewable_kw.sum()
    s["renewable_available_kw"][k] = np.where(world.tripped[k], 0.0, world.variable_kw[k] + world.hydro_kw[k]).sum()
    s["thermal_kw"][k] = r.dispatch.thermal_kw.sum()
    s["upstream_kw"][k] = r.upstream_wh / 1000 / dt_h
    s["losses_kw"][k] = r.losses_wh / 1000 / dt_h
    s["pf_losses_kw"][k] = pf.losses_mw * 1000 if pf.converged else np.nan
    s["traded_kwh"][k] = r.clearing.bought_wh.sum() / 1000
    s["vm_min_pu"][k] = np.nanmin(pf.vm_pu) if pf.converged else np.nan
    s["vm_max_pu"][k] = np.nanmax(pf.vm_pu) if pf.converged else np.nan
    s["max_line_loading_pct"][k] = np.nanmax(pf.line_loading_pct, initial=0.0) if pf.converged else np.nan
    s["max_trafo_loading_pct"][k] = np.nanmax(pf.trafo_loading_pct, initial=0.0) if pf.converged else np.nan
    s["pf_converged"][k] = pf.converged
    s["thermal_on"][k] = r.dispatch.on.sum()
    s["thermal_starts"][k] = r.dispatch.started.sum()
    s["soc_kwh"][k] = state.soc_kwh.sum()
    s["thermal_cost_eur"][k] = r.thermal_cost_eur.sum()
    outside_k = np.maximum(world.hvac_min_c - state.indoor_c, 0.0) + np.maximum(state.indoor_c - world.hvac_max_c, 0.0)
    s["discomfort_eur"][k] = float(np.dot(world.hvac_discomfort_eur_per_kh, np.where(world.hvac_kw > 0, outside_k, 0.0))) * dt_h
    available = s["renewable_available_kw"][k]
    s["curtail_frac"][k] = 1.0 - s["renewable_kw"][k] / available if available > 0 else 0.0
    for key, value in step_properties(r.clearing).items():
        s[key][k] = value
    if r.opf is not None:
        s["opf_ok"][k], s["opf_solve_s"][k] = r.opf.ok, r.opf.solve_time_s
        s["opf_imbalance_kw"][k], s["opf_welfare_eur"][k] = (r.opf.imbalance_kw, r.opf.welfare_eur) if r.opf.ok else (0.0, 0.0)
    p = part
    p["net_kw"][k] = r.net_kw
    p["metered_wh"][k] = st.metered_wh
    p["traded_wh"][k] = st.traded_wh
    p["bill_micro"][k] = st.bill_micro
    p["baseline_micro"][k] = st.baseline_micro
    p["soc_kwh"][k] = state.soc_kwh
    p["indoor_c"][k] = np.where(world.hvac_kw > 0, state.indoor_c, np.nan)
    unit = r.clearing.unit_price_eur_per_kwh
    if r.opf is not None and r.opf.ok:
        p["green_kw"][k] = r.opf.green_kw
    p["unit_price_eur_per_kwh"][k] = np.nan if unit is None else unit
    p["thermal_kw"][k] = r.dispatch.thermal_kw
    p["served_kw"][k] = r.served_kw
    grid["vm_pu"][k] = pf.vm_pu
    grid["line_loading_pct"][k] = pf.line_loading_pct
    grid["trafo_loading_pct"][k] = pf.trafo_loading_pct
    c = r.clearing
    if len(c.trade_wh):
        trades["step"].append(np.full(len(c.trade_wh), k))
        trades["buyer"].append(c.trade_buyer)
        trades["seller"].append(c.trade_seller)
        trades["wh"].append(c.trade_wh)
        trades["price_eur_per_kwh"].append(c.trade_price_eur_per_kwh)
