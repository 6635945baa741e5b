"""A run's own report shows a participant's tariff baseline (its energy at a known tariff) only as
finely as its policy gives the operator its meter."""

from __future__ import annotations

import json

import plurigrid
from plurigrid.engine.results import baseline_kept
from tests.privacy.worlds import HOMES, POLICY, private_world


def test_baselines_follow_the_meter_policy(tmp_path) -> None:
    spec = private_world("reports")
    for p in spec["participant"]:
        if p["id"] in HOMES:
            p["privacy"] = {**POLICY, "meter": {"operator": "daily"}}
    world = plurigrid.load(spec, hours=2)
    kept = baseline_kept(world.compiled, 8)
    assert [world.compiled.ids[i] for i in kept.nonzero()[0]] == list(HOMES)  # two hours are finer than a day
    assert not baseline_kept(world.compiled, 96).any()  # a day's total is what "daily" allows
    run = world.run(out=tmp_path / "run")
    report = (tmp_path / "run" / "report.html").read_text()
    baselines = run.settlements["baseline_micro"]
    for home in HOMES:  # the bills figure has no baseline bar for them (in any rounding the report prints)
        value = baselines[home] * 1e-6
        assert f"{value:,.6f}" not in report and json.dumps(value) not in report
