"""`plurigrid powerflow`: the JSON contract, agreement with pandapower, exit 3 without a solution, one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from tests.cli.test_cli import plurigrid


def test_json_gives_the_solution_in_net_bus_order(tmp_path):
    net = pn.example_multivoltage()  # T-model transformers, a 3-winding one, shunts, a gen, switches
    path = tmp_path / "net.json"
    pp.to_json(net, str(path))
    res = plurigrid("powerflow", str(path), "--json", "--compare-runpp")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"converged", "iterations", "vm_pu", "va_degree", "losses_mw", "bus", "line_loading_pct"} <= set(out)
    assert out["converged"] and out["iterations"] >= 1 and out["start"]
    pp.runpp(net, numba=False)
    assert out["bus"] == [int(b) for b in net.bus.index]
    vm = np.array([np.nan if v is None else v for v in out["vm_pu"]])
    np.testing.assert_allclose(vm, net.res_bus["vm_pu"].to_numpy(float), atol=1e-6)
    # losses: generation less what loads and the xwards' constant-power parts take (their impedance parts are losses)
    supplied = net.res_ext_grid["p_mw"].sum() + net.res_gen["p_mw"].sum() + net.res_sgen["p_mw"].sum()
    taken = net.res_load["p_mw"].sum() + net.xward["ps_mw"].sum()
    assert out["losses_mw"] == pytest.approx(supplied - taken, abs=1e-6)
    assert out["slack_p_mw"] == pytest.approx(net.res_ext_grid["p_mw"].sum(), abs=1e-6)
    assert out["runpp"]["converged"] and out["runpp"]["max_dvm_pu"] <= 1e-6


def test_a_case_without_a_solution_exits_3_naming_every_start():
    res = plurigrid("powerflow", "pandapower:case11_iwamoto")
    assert res.returncode == 3
    assert "did NOT converge" in res.stdout and "dc, no-load and flat" in res.stdout
    out = json.loads(plurigrid("powerflow", "pandapower:case11_iwamoto", "--json").stdout)
    assert out["converged"] is False and out["losses_mw"] is None and all(v is None for v in out["vm_pu"])


def test_matpower_file_with_reactive_limits(testdata):
    case = testdata / "pglib" / "pglib_opf_case118_ieee.m"
    free = json.loads(plurigrid("powerflow", str(case), "--json").stdout)
    held = json.loads(plurigrid("powerflow", str(case), "--json", "--enforce-q-lims").stdout)
    assert free["converged"] and held["converged"]
    assert free["q_limited_buses"] == 0 and held["q_limited_buses"] > 0
    assert max(abs(a - b) for a, b in zip(free["vm_pu"], held["vm_pu"])) > 1e-3


def test_a_microworld_interval(tmp_path):
    res = plurigrid("powerflow", "hello", "--step", "3", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["converged"] and out["case"].startswith("hello at step 3")
    assert all(v is not None and 0.9 < v < 1.1 for v in out["vm_pu"])
    assert math.isfinite(out["losses_mw"]) and out["losses_mw"] > 0


@pytest.mark.parametrize("args, line", [
    (["pandapower:nope"], "plurigrid: error: pandapower:nope: unknown pandapower network 'nope'; expected a network of "
                          "pandapower.networks such as 'mv_oberrhein' or 'case118'"),
    (["missing.m"], "plurigrid: error: missing.m: no such file; expected simbench:<code>, pandapower:<network>, or a .json/.m file"),
    (["simbench:1-XX-nope"], "plurigrid: error: simbench:1-XX-nope: unknown SimBench code"),
    (["hello", "--step", "9999"], "plurigrid: error: step: 9999 is outside the world's 24 steps (0..23)"),
    (["case9.m", "--tol-mva", "0"], "plurigrid: error: --tol-mva: must be a positive number, got 0.0"),
    (["hello", "--compare-runpp"], "plurigrid: error: --compare-runpp: needs a network case"),
])
def test_bad_input_is_one_line_and_exit_2(args, line):
    res = plurigrid("powerflow", *args)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(line) and res.stderr.count("\n") == 1
