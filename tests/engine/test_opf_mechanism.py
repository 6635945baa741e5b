"""The `opf` mechanism on every library world: an optimum never loses to the heuristic market,
conservation stays exact, and the AC power flow confirms the LinDistFlow dispatch."""

from __future__ import annotations

import numpy as np
import pytest

from plurigrid.microworld.loader import library_worlds

from ..recorded import recorded as run_world

HOURS = {"simbench-semiurb4": 12.0, "simbench-rural1": 12.0}  # the two SimBench worlds: half a day keeps CI short


@pytest.mark.parametrize("world", sorted(library_worlds()))
def test_opf_welfare_is_at_least_pay_as_clear_and_conserves(world: str) -> None:
    hours = HOURS.get(world)
    opf = run_world(world, mechanism="opf", hours=hours)
    heuristic = run_world(world, mechanism="pay-as-clear", hours=hours)
    assert opf.series["opf_ok"].all(), f"{world}: the OPF found no plan in some step"
    assert opf.kpis["welfare"] >= heuristic.kpis["welfare"] - 1e-6
    assert opf.run.summary['balance'] == {"energy_residual_wh": 0, "money_residual_micro": 0}
    # where the LinDistFlow plan was feasible without help, the AC power flow shows no violation
    assert opf.kpis["voltage_violations"] == 0
    assert opf.kpis["pf_nonconverged_steps"] == 0
    assert np.nanmax(opf.series["max_line_loading_pct"]) <= 100.0 + 1e-6
