"""KPIs and the summary of a run (the content of summary.json), from what the recorder kept as it streamed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plurigrid.engine.record import Totals
from plurigrid.engine.world import World
from plurigrid.market.properties import individual_rationality, mechanism_properties

MICRO = 1e-6


def _frac(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def _local_share(outside_kw: np.ndarray, local_kw: np.ndarray) -> float:
    """The share of a community's energy use (or supply) that stayed local: 1 - sum(min(outside, local)) / sum(local),
    with `local` clipped at 0 per step. In [0, 1] by construction; 0 where there is nothing to share."""
    local = np.maximum(local_kw, 0.0)
    total = float(local.sum())
    return 1.0 - float(np.minimum(outside_kw, local).sum()) / total if total > 0 else 0.0


def kpis(world: World, totals: Totals) -> dict[str, float | int]:
    """The headline numbers of a run; costs in the world's currency, energy in kWh."""
    s, dt_h = totals.series, world.dt_h
    thermal_cost = float(s["thermal_cost_eur"].sum())
    bills = totals.bill_micro.sum() * MICRO
    baseline = totals.baseline_micro.sum() * MICRO
    total_cost = bills + thermal_cost
    baseline_cost = baseline + thermal_cost
    imp_kwh = np.maximum(s["upstream_kw"], 0) * dt_h
    exp_kwh = np.maximum(-s["upstream_kw"], 0) * dt_h
    # per step: what the community used (served demand, HVAC, net battery charging, losses) and supplied itself
    # (renewables, thermal units, net battery discharging); imports can only cover the one, exports only drain the other
    used_kw = s["demand_kw"] - np.minimum(s["battery_kw"], 0.0) + s["losses_kw"]
    supplied_kw = s["renewable_kw"] + s["thermal_kw"] + np.maximum(-s["battery_kw"], 0.0)
    discomfort = float(s["discomfort_eur"].sum())
    premium = float(np.dot(world.demand.premium_eur_per_kwh, totals.green_kwh))
    welfare = (float(np.dot(world.demand.value_eur_per_kwh, totals.served_kwh)) + premium - thermal_cost - discomfort
               - float(np.dot(imp_kwh, s["import_eur_per_kwh"]) - np.dot(exp_kwh, s["export_eur_per_kwh"])))
    loading = s["max_line_loading_pct"]
    return {
        "total_cost": round(total_cost, 6),
        "baseline_cost": round(baseline_cost, 6),
        "savings_frac": round(_frac(baseline_cost - total_cost, abs(baseline_cost)), 9),
        "energy_traded_kwh": round(float(s["traded_kwh"].sum()), 3),
        "self_sufficiency": round(_local_share(np.maximum(s["upstream_kw"], 0.0), used_kw), 9),
        "self_consumption": round(_local_share(np.maximum(-s["upstream_kw"], 0.0), supplied_kw), 9),
        "peak_import_kw": round(float(max(s["upstream_kw"].max(initial=0.0), 0.0)), 3),
        "max_line_loading_pct": round(float(np.nanmax(loading, initial=0.0)), 3) if np.isfinite(loading).any() else 0.0,
        "max_trafo_loading_pct": round(float(np.nanmax(s["max_trafo_loading_pct"], initial=0.0)), 3)
        if np.isfinite(s["max_trafo_loading_pct"]).any() else 0.0,
        "voltage_violations": totals.voltage_violations,
        "pf_nonconverged_steps": int(np.sum(s["pf_converged"] == 0)),
        "losses_kwh": round(float(s["losses_kw"].sum() * dt_h), 3),
        "welfare": round(welfare, 6),
        "thermal_starts": int(s["thermal_starts"].sum()),
        "thermal_energy_kwh": round(float(s["thermal_kw"].sum() * dt_h), 3),
        "curtailed_kwh": round(float((s["renewable_available_kw"] - s["renewable_kw"]).sum() * dt_h), 3),
        "ev_unmet_kwh": round(totals.ev_unmet_kwh, 3),
        "discomfort_cost": round(discomfort, 6),
    }


def balance(world: World, totals: Totals) -> dict[str, int]:
    """Exact conservation residuals: energy delivered - received - losses, and payments over all parties."""
    s, dt_h = totals.series, world.dt_h
    upstream_wh = np.rint(s["upstream_kw"] * 1000 * dt_h).astype(np.int64)
    losses_wh = np.rint(s["losses_kw"] * 1000 * dt_h).astype(np.int64)
    delivered = int(totals.exported_wh.sum()) + int(np.maximum(upstream_wh, 0).sum())
    received = int(totals.imported_wh.sum()) + int(np.maximum(-upstream_wh, 0).sum())
    participants_pay = int(totals.bill_micro.sum())
    operator_receives = participants_pay  # every payment is a transfer with the operator (clearing house)
    return {
        "energy_residual_wh": int(delivered - received - losses_wh.sum()),
        "money_residual_micro": int(-participants_pay + operator_receives),
    }


def welfare_efficiency(welfare: float, optimal_welfare: float) -> dict[str, float | None]:
    """Welfare of a run against the `opf` optimum of the same world (the summary's `mechanism_properties.welfare`)."""
    ratio = welfare / optimal_welfare if optimal_welfare > 0 else None
    return {"welfare": round(welfare, 6), "optimal_welfare": round(optimal_welfare, 6),
            "efficiency": None if ratio is None else round(ratio, 9)}


def settlements_table(world: World, totals: Totals) -> pd.DataFrame:
    """Per-participant totals: energy (Wh), bill and tariff baseline (micro-units and currency)."""
    bill, base = totals.bill_micro, totals.baseline_micro
    return pd.DataFrame({
        "participant": world.ids,
        "kind": world.kind,
        "strategy": world.strategy,
        "bus": world.grid.net.bus.index[world.bus_pos],
        "imported_wh": totals.imported_wh,
        "exported_wh": totals.exported_wh,
        "bought_wh": totals.bought_wh,
        "sold_wh": totals.sold_wh,
        "bill_micro": bill,
        "baseline_micro": base,
        "bill": bill * MICRO,
        "baseline": base * MICRO,
        "savings": (base - bill) * MICRO,
    })


def baseline_kept(world: World, steps: int) -> np.ndarray:
    """Participants whose tariff baseline over a run of `steps` (their energy at a known tariff) the operator may not
    see: their policy keeps the meter from the operator at a granularity longer than the run."""
    run_h = steps * world.dt_h
    return np.array([not p.shows_total("meter", "operator", run_h) for p in world.policies], dtype=bool)


def summary(world: World, totals: Totals, microworld: str, *, modules: dict | None = None,
            host_faults: list[dict] | None = None, timings_s: dict[str, float] | None = None) -> dict:
    """The run's summary.json content (deterministic for a seed; timings are the only wall-clock numbers).

    `reproducible` is false when a host fault (a module call stopped by the wall-clock backstop,
    engine.modules) let the machine decide part of the run; `host_faults` lists them.
    """
    kept = {world.ids[i] for i in np.flatnonzero(baseline_kept(world, totals.steps))}
    out = {
        "microworld": microworld,
        "name": world.name,
        "mechanism": world.mechanism,
        "seed": world.seed,
        "start": world.index[0].isoformat(),
        "resolution_h": world.dt_h,
        "steps": totals.steps,
        "participants": world.n,
        "buses": int(len(world.grid.net.bus)),
        "currency": world.spec.world.currency,
        "recorded": sorted(totals.recorded),
        "kpis": kpis(world, totals),
        "balance": balance(world, totals),
        "mechanism_properties": mechanism_properties(totals.series, totals.bill_micro, totals.baseline_micro),
        "individual_rationality": [row | ({"baseline_micro": None, "excess_micro": None} if row["participant"] in kept else {})
                                   for row in individual_rationality(
            list(world.ids), totals.bill_micro, totals.baseline_micro, totals.tariff_gap, totals.steps,
            nodal=world.mechanism == "opf", currency=world.spec.world.currency)],
        "modules": modules or {},
        "reproducible": not host_faults,
        "host_faults": host_faults or [],
        "timings_s": {k: round(v, 4) for k, v in (timings_s or {}).items()},
    }
    if totals.steps < world.steps:
        out["partial"] = {"steps_done": totals.steps, "steps_planned": world.steps,
                          "stopped_at": world.index[totals.steps].isoformat()}
    return out
