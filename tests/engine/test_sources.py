"""Referenced grids: participants are generated from the grid's own loads and generators."""

import numpy as np

from plurigrid.engine.results import summary
from plurigrid.engine.simulate import simulate
from plurigrid.engine.world import compile_world
from plurigrid.microworld.loader import validate_data


def world_for(source: str, hours: int = 3, **grid):
    spec = validate_data("t", {"world": {"name": "t", "duration": f"{hours}h", "resolution": "1h"},
                               "grid": {"source": source, **grid}, "market": {"mechanism": "pay-as-clear"}})
    return compile_world(spec, "t.toml", None)


def test_pandapower_network_generates_participants():
    w = world_for("pandapower:mv_oberrhein")
    net = w.grid.net
    assert w.n >= net.load.in_service.sum()
    rec = simulate(w)
    s = summary(rec, "t")
    assert s["kpis"]["pf_nonconverged_steps"] == 0
    assert s["balance"]["energy_residual_wh"] == 0


def test_matpower_case_generators_become_thermal_units(testdata):
    w = world_for(str(testdata / "pglib" / "pglib_opf_case14_ieee.m"))
    thermal = np.flatnonzero(w.thermal_max_kw > 0)
    # case14 has five generators; pandapower turns the reference one into the upstream connection (ext_grid)
    assert len(thermal) == 4 and len(w.grid.net.ext_grid) == 1
    rec = simulate(w)
    assert rec.series["pf_converged"].all()
    # cheap generators displace grid import: they run whenever their cost beats the tariff
    assert rec.series["thermal_kw"].min() > 0


def test_rule_gives_exact_share_of_households_a_battery():
    w = world_for("simbench:1-LV-rural1--0-sw", rule=[{"kind": "household", "fraction": 0.5,
                                                       "battery": {"capacity_kwh": 10.0, "power_kw": 5.0}}])
    households = w.kind == "household"
    with_battery = (w.battery_kwh > 0) & households
    assert with_battery.sum() == round(0.5 * households.sum())
    assert np.all(w.battery_kwh[~households] == 0)


def test_pandapower_json_file(tmp_path):
    import pandapower as pp
    import pandapower.networks as pn

    path = tmp_path / "net.json"
    pp.to_json(pn.example_simple(), str(path))
    w = world_for(str(path))
    assert simulate(w).series["pf_converged"].all()
