"""Every KPI stays in its range by definition: shares in [0, 1], counts and energies >= 0, bounded by what
the run could hold, on every library world (a few hours of each) and on small generated worlds.

The ranges are the README's list; a KPI added without a range here fails `test_every_kpi_has_a_range`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plurigrid
from plurigrid.microworld.loader import library_worlds
from plurigrid.microworld.names import MECHANISMS

INF = math.inf
# KPI -> (lowest, highest, must be an integer); "steps", "bus_steps" and "unit_steps" stand for the run's own bounds,
# "-meter_rounding" for the most that whole-Wh meters can put the losses below zero (losses are the upstream meter
# less the sum of the participants' meters, each rounded to the Wh: half a Wh each, a step)
RANGES: dict[str, tuple[float | str, float | str, bool]] = {
    "total_cost": (-INF, INF, False),
    "baseline_cost": (-INF, INF, False),
    "savings_frac": (-INF, INF, False),  # (baseline - total) / |baseline|: negative when dearer than the tariff
    "energy_traded_kwh": (0, INF, False),
    "self_sufficiency": (0, 1, False),
    "self_consumption": (0, 1, False),
    "peak_import_kw": (0, INF, False),
    "max_line_loading_pct": (0, INF, False),
    "max_trafo_loading_pct": (0, INF, False),
    "voltage_violations": (0, "bus_steps", True),
    "pf_nonconverged_steps": (0, "steps", True),
    "losses_kwh": ("-meter_rounding", INF, False),
    "welfare": (-INF, INF, False),
    "thermal_starts": (0, "unit_steps", True),
    "thermal_energy_kwh": (0, INF, False),
    "curtailed_kwh": (0, INF, False),
    "ev_unmet_kwh": (0, INF, False),
    "discomfort_cost": (0, INF, False),
}
LIBRARY_HOURS = 4.0


def check_ranges(run: plurigrid.Run) -> None:
    """Asserts every KPI of `run` is a finite number inside its range."""
    w = run.world.compiled
    bounds = {"steps": run.summary["steps"], "bus_steps": run.summary["steps"] * len(w.grid.net.bus),
              "-meter_rounding": -run.summary["steps"] * (w.n + 1) * 0.5 / 1000,
              "unit_steps": run.summary["steps"] * int(np.sum(w.thermal.p_max_kw > 0))}
    for name, value in run.kpis.items():
        lo, hi, integer = RANGES[name]
        top = bounds[hi] if isinstance(hi, str) else hi
        lo = bounds[lo] if isinstance(lo, str) else lo
        assert math.isfinite(value), f"{w.name} {w.mechanism}: {name} = {value}"
        assert lo <= value <= top, f"{w.name} {w.mechanism}: {name} = {value} outside [{lo}, {top}]"
        assert not integer or isinstance(value, int), f"{w.name}: {name} = {value!r} is not a count"


def test_every_kpi_has_a_range(hello_run: plurigrid.Run) -> None:
    assert set(hello_run.kpis) == set(RANGES)


@pytest.mark.parametrize("world", sorted(library_worlds()))
def test_library_world_kpis_stay_in_range(world: str) -> None:
    check_ranges(plurigrid.load(world, hours=LIBRARY_HOURS).run(ledger=False, record=()))


def test_self_sufficiency_counts_battery_charging_from_the_grid_as_use() -> None:
    # a January day in simbench-semiurb4: no sun, batteries charging in the cheap night hours from the grid,
    # so imports exceed the served demand (the old definition, 1 - imports / served, went negative)
    run = plurigrid.load("simbench-semiurb4", hours=8.0).run(ledger=False, record={"series"})
    s = {k: run.timeseries[k].to_numpy() for k in ("upstream_kw", "served_kw", "battery_kw")}
    assert np.sum(np.maximum(s["upstream_kw"], 0)) > np.sum(s["served_kw"])
    assert 0.0 <= run.kpis["self_sufficiency"] <= 1.0
    check_ranges(run)


@st.composite
def small_worlds(draw: st.DrawFn) -> dict:
    """A feeder of 1-3 LV buses behind a bus of its own (connected, or an island whose diesel is the reference),
    1-5 participants with load, PV, batteries and strategies, any mechanism, a few hours."""
    n_bus = draw(st.integers(1, 3))
    connected = draw(st.booleans())
    buses = [{"id": "b0", "vn_kv": 0.4}] + [{"id": f"b{i + 1}", "vn_kv": 0.4} for i in range(n_bus)]
    lines = [{"id": f"l{i}", "from_bus": f"b{i}", "to_bus": f"b{i + 1}", "length_km": draw(st.floats(0.01, 0.5)),
              "r_ohm_per_km": 0.2, "x_ohm_per_km": 0.08, "max_i_ka": 0.27} for i in range(n_bus)]
    strategies = st.sampled_from(["passive", "truthful", "zero-intelligence", "self-consumption", "battery-arbitrage",
                                  "demand-response"])
    participants = []
    for i in range(draw(st.integers(1, 5))):
        assets: dict = {"load": {"profile": {"source": "constant", "p_kw": draw(st.floats(0.0, 20.0))}}}
        if draw(st.booleans()):
            assets["pv"] = {"kwp": draw(st.floats(0.5, 30.0))}
        if draw(st.booleans()):
            assets["battery"] = {"capacity_kwh": draw(st.floats(1.0, 30.0)), "power_kw": draw(st.floats(0.5, 10.0)),
                                 "initial_soc_frac": draw(st.floats(0.0, 1.0))}
        participants.append({"id": f"p{i}", "bus": f"b{draw(st.integers(1, n_bus))}", "strategy": draw(strategies),
                             "assets": assets})
    if not connected:
        participants.append({"id": "diesel", "bus": "b0", "strategy": "truthful", "assets": {"thermal": {
            "p_max_kw": draw(st.floats(5.0, 100.0)), "p_min_kw": draw(st.floats(0.0, 5.0)),
            "variable_cost_eur_per_mwh": draw(st.floats(50.0, 500.0)), "reference": True}}})
    prices = st.floats(0.05, 0.6)
    return {
        "world": {"name": "generated", "start": "2024-06-21T06:00:00", "duration": f"{draw(st.integers(1, 6))}h",
                  "resolution": "15min", "timezone": "Europe/Berlin", "seed": draw(st.integers(0, 9))},
        "grid": {"bus": buses, "line": lines} | ({"connection": {"bus": "b0"}} if connected else {}),
        "market": {"mechanism": draw(st.sampled_from(MECHANISMS)),
                   "import_price_eur_per_kwh": draw(st.one_of(prices, st.lists(prices, min_size=24, max_size=24))),
                   "export_price_eur_per_kwh": draw(st.floats(0.0, 0.05))},
        "participant": participants,
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=small_worlds())
def test_generated_world_kpis_stay_in_range(spec: dict) -> None:
    check_ranges(plurigrid.load(spec).run(ledger=False, record={"series"}))


def test_losses_below_zero_only_by_meter_rounding() -> None:
    """An island whose PV nearly covers its load: the power flow's losses are a fraction of a Wh a step, and whole-Wh
    meters can put the measured losses 1 Wh below zero (found by the generated worlds above), never more."""
    spec = {"world": {"name": "generated", "start": "2024-06-21T06:00:00", "duration": "1h", "resolution": "15min",
                      "timezone": "Europe/Berlin", "seed": 0},
            "grid": {"bus": [{"id": "b0", "vn_kv": 0.4}, {"id": "b1", "vn_kv": 0.4}],
                     "line": [{"id": "l0", "from_bus": "b0", "to_bus": "b1", "length_km": 0.5, "r_ohm_per_km": 0.2,
                               "x_ohm_per_km": 0.08, "max_i_ka": 0.27}]},
            "market": {"mechanism": "tariff", "import_price_eur_per_kwh": 0.5, "export_price_eur_per_kwh": 0.0},
            "participant": [
                {"id": "p1", "bus": "b1", "assets": {"load": {"profile": {"source": "constant", "p_kw": 0.0}}, "pv": {"kwp": 10.0625}}},
                {"id": "p2", "bus": "b1", "assets": {"load": {"profile": {"source": "constant", "p_kw": 1.0}}, "pv": {"kwp": 10.9375}}},
                {"id": "diesel", "bus": "b0", "strategy": "truthful", "assets": {"thermal": {
                    "p_max_kw": 5.0, "variable_cost_eur_per_mwh": 50.0, "reference": True}}}]}
    run = plurigrid.load(spec).run(ledger=False, record={"series"})
    assert (run.timeseries["pf_losses_kw"] > 0).all()
    assert -0.001 <= run.kpis["losses_kwh"] <= 0.001
    check_ranges(run)
