"""KPIs and the summary of a run (the content of summary.json)."""

from __future__ import annotations

import numpy as np

from plurigrid.engine.simulate import RunRecord
from plurigrid.market.properties import mechanism_properties

MICRO = 1e-6


def _frac(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def voltage_violations(record: RunRecord) -> int:
    """Bus-steps outside each bus's band (net.bus min/max_vm_pu, default 0.9-1.1 pu)."""
    bus = record.world.grid.net.bus
    lo = bus.get("min_vm_pu", 0.9)
    hi = bus.get("max_vm_pu", 1.1)
    lo = np.nan_to_num(np.asarray(lo, dtype=float), nan=0.9)
    hi = np.nan_to_num(np.asarray(hi, dtype=float), nan=1.1)
    vm = record.grid["vm_pu"].astype(float)
    ok = np.asarray(record.series["pf_converged"], dtype=bool)
    vm = vm[ok]
    return int(np.sum(((vm < lo - 1e-9) | (vm > hi + 1e-9)) & np.isfinite(vm)))


def kpis(record: RunRecord) -> dict[str, float | int]:
    """The headline numbers of a run; costs in the world's currency, energy in kWh."""
    w, s, p = record.world, record.series, record.participant
    dt_h = w.dt_h
    thermal_cost = float(s["thermal_cost_eur"].sum())
    bills = p["bill_micro"].sum() * MICRO
    baseline = p["baseline_micro"].sum() * MICRO
    total_cost = bills + thermal_cost
    baseline_cost = baseline + thermal_cost
    imp_kwh = np.maximum(s["upstream_kw"], 0) * dt_h
    exp_kwh = np.maximum(-s["upstream_kw"], 0) * dt_h
    served_kwh = float(s["served_kw"].sum() * dt_h)
    local_gen_kwh = float((s["renewable_kw"] + s["thermal_kw"]).sum() * dt_h)
    served_by_participant_kwh = p["served_kw"].sum(axis=0) * dt_h
    discomfort = float(s["discomfort_eur"].sum())
    premium = float(np.dot(w.premium_eur_per_kwh, p["green_kw"].sum(axis=0) * dt_h))
    welfare = (float(np.dot(w.value_eur_per_kwh, served_by_participant_kwh)) + premium - thermal_cost - discomfort
               - float(np.dot(imp_kwh, s["import_eur_per_kwh"]) - np.dot(exp_kwh, s["export_eur_per_kwh"])))
    loading = s["max_line_loading_pct"]
    return {
        "total_cost": round(total_cost, 6),
        "baseline_cost": round(baseline_cost, 6),
        "savings_frac": round(_frac(baseline_cost - total_cost, abs(baseline_cost)), 9),
        "energy_traded_kwh": round(float(s["traded_kwh"].sum()), 3),
        "self_sufficiency": round(1.0 - _frac(float(imp_kwh.sum()), served_kwh), 9) if served_kwh > 0 else 0.0,
        "self_consumption": round(1.0 - _frac(float(exp_kwh.sum()), local_gen_kwh), 9) if local_gen_kwh > 0 else 0.0,
        "peak_import_kw": round(float(max(s["upstream_kw"].max(initial=0.0), 0.0)), 3),
        "max_line_loading_pct": round(float(np.nanmax(loading, initial=0.0)), 3) if np.isfinite(loading).any() else 0.0,
        "max_trafo_loading_pct": round(float(np.nanmax(s["max_trafo_loading_pct"], initial=0.0)), 3)
        if np.isfinite(s["max_trafo_loading_pct"]).any() else 0.0,
        "voltage_violations": voltage_violations(record),
        "pf_nonconverged_steps": int(np.sum(s["pf_converged"] == 0)),
        "losses_kwh": round(float(s["losses_kw"].sum() * dt_h), 3),
        "welfare": round(welfare, 6),
        "thermal_starts": int(s["thermal_starts"].sum()),
        "thermal_energy_kwh": round(float(s["thermal_kw"].sum() * dt_h), 3),
        "curtailed_kwh": round(float((s["renewable_available_kw"] - s["renewable_kw"]).sum() * dt_h), 3),
        "ev_unmet_kwh": round(float(record.state.ev_unmet_kwh.sum()), 3),
        "discomfort_cost": round(discomfort, 6),
    }


def balance(record: RunRecord) -> dict[str, int]:
    """Exact conservation residuals: energy delivered - received - losses, and payments over all parties."""
    s, p = record.series, record.participant
    dt_h = record.world.dt_h
    metered = p["metered_wh"]
    upstream_wh = np.rint(s["upstream_kw"] * 1000 * dt_h).astype(np.int64)
    losses_wh = np.rint(s["losses_kw"] * 1000 * dt_h).astype(np.int64)
    delivered = np.maximum(-metered, 0).sum() + np.maximum(upstream_wh, 0).sum()
    received = np.maximum(metered, 0).sum() + np.maximum(-upstream_wh, 0).sum()
    participants_pay = int(p["bill_micro"].sum())
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


def summary(record: RunRecord, microworld: str) -> dict:
    """The run's summary.json content (deterministic for a seed; timings are the only wall-clock numbers)."""
    w = record.world
    return {
        "microworld": microworld,
        "name": w.name,
        "mechanism": w.mechanism,
        "seed": w.seed,
        "start": w.index[0].isoformat(),
        "resolution_h": w.dt_h,
        "steps": w.steps,
        "participants": w.n,
        "buses": int(len(w.grid.net.bus)),
        "currency": w.spec.world.currency,
        "kpis": kpis(record),
        "balance": balance(record),
        "mechanism_properties": mechanism_properties(record.series, record.participant["bill_micro"],
                                                     record.participant["baseline_micro"]),
        "modules": {} if w.modules is None else w.modules.report(),
        "timings_s": {k: round(v, 4) for k, v in record.timings_s.items()},
    }
