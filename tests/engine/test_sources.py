"""Referenced grids: participants are generated from the grid's own loads and generators."""

import numpy as np

import plurigrid


def world_for(source: str, hours: int = 3, **grid) -> plurigrid.World:
    return plurigrid.load({"world": {"name": "t", "duration": f"{hours}h", "resolution": "1h"},
                           "grid": {"source": source, **grid}, "market": {"mechanism": "pay-as-clear"}})


def test_pandapower_network_generates_participants():
    w = world_for("pandapower:mv_oberrhein")
    assert len(w.participants) >= w.net.load.in_service.sum()
    s = w.run().summary
    assert s["kpis"]["pf_nonconverged_steps"] == 0
    assert s["balance"]["energy_residual_wh"] == 0


def test_matpower_case_generators_become_thermal_units(testdata):
    w = world_for(str(testdata / "pglib" / "pglib_opf_case14_ieee.m"))
    thermal = np.flatnonzero(w.participants["thermal_kw"] > 0)
    # case14 has five generators; pandapower turns the reference one into the upstream connection (ext_grid)
    assert len(thermal) == 4 and len(w.net.ext_grid) == 1
    series = w.run().timeseries
    assert series["pf_converged"].all()
    # cheap generators displace grid import: they run whenever their cost beats the tariff
    assert series["thermal_kw"].min() > 0


def test_rule_gives_exact_share_of_households_a_battery():
    w = world_for("simbench:1-LV-rural1--0-sw", rule=[{"kind": "household", "fraction": 0.5,
                                                       "battery": {"capacity_kwh": 10.0, "power_kw": 5.0}}])
    households = w.participants["kind"] == "household"
    with_battery = (w.participants["battery_kwh"] > 0) & households
    assert with_battery.sum() == round(0.5 * households.sum())
    assert np.all(w.participants["battery_kwh"][~households] == 0)


def test_pandapower_json_file(tmp_path):
    import pandapower as pp
    import pandapower.networks as pn

    path = tmp_path / "net.json"
    pp.to_json(pn.example_simple(), str(path))
    w = world_for(str(path))
    assert w.run().timeseries["pf_converged"].all()
