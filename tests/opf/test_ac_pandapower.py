"""AC-OPF on pandapower nets: its optimum is a power flow that pandapower's runpp reproduces.

pandapower models transformers as T circuits (iron losses, magnetising current) and converts them
to pi branches that have a shunt conductance, which a MATPOWER branch table cannot hold. The
AC-OPF must keep it: run pandapower's own power flow at the OPF's set points (generator P and
voltage, reference voltage) and every bus voltage and the slack's power must come out as the OPF
has them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import warnings

import numpy as np
import pytest

from plurigrid.opf.ac import solve_ac
from plurigrid.opf.network import OpfNetwork, from_pandapower
from plurigrid.opf.result import OpfResult

VOLTAGE_ATOL_PU = 1e-6  # magnitude in pu, angle in radians
SLACK_ATOL_MW = 1e-5


def _pandapower(name: str):
    """A fresh copy of a pandapower example net (the tests change set points and run power flows on it)."""
    return copy.deepcopy(_loaded(name))


@functools.cache
def _loaded(name: str):
    import pandapower.networks as pn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(pn, name)()


def _runpp_at_optimum(net, opf: OpfNetwork, res: OpfResult) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """runpp with the OPF's set points: (|V| and angle per OPF bus, slack P in MW, OPF bus positions)."""
    import pandapower as pp

    gen_of = {label.split(" at bus ")[0]: g for g, label in enumerate(opf.gen_label)}
    position = {int(b): i for i, b in enumerate(opf.bus_id)}
    for table in ("gen", "ext_grid"):
        for index, bus in zip(net[table].index, net[table].bus):
            net[table].at[index, "vm_pu"] = res.vm_pu[position[int(bus)]]
            if table == "gen":
                net.gen.at[index, "p_mw"] = res.pg_mw[gen_of[f"gen {index}"]]
    net.ext_grid["va_degree"] = 0.0  # the OPF's reference angle
    pp.runpp(net, calculate_voltage_angles=True, init="dc", tolerance_mva=1e-9, max_iteration=30, trafo_model="t",
              numba=False)  # numba would compile for seconds; the result is the same
    named = [b for b in net.bus.index if int(b) in position]
    rows = np.array([position[int(b)] for b in named])
    return (net.res_bus.vm_pu.loc[named].to_numpy(), np.deg2rad(net.res_bus.va_degree.loc[named].to_numpy()),
            float(net.res_ext_grid.p_mw.sum()), rows)


def _assert_runpp_agrees(net, opf: OpfNetwork, res: OpfResult) -> None:
    assert res.ok, res.extra
    vm, va, slack_mw, rows = _runpp_at_optimum(net, opf, res)
    np.testing.assert_allclose(vm, res.vm_pu[rows], rtol=0, atol=VOLTAGE_ATOL_PU)
    np.testing.assert_allclose(va, np.deg2rad(res.va_deg[rows]), rtol=0, atol=VOLTAGE_ATOL_PU)
    ext = [g for g, label in enumerate(opf.gen_label) if label.startswith("ext_grid ")]
    assert slack_mw == pytest.approx(res.pg_mw[ext].sum(), abs=SLACK_ATOL_MW)


def test_case118_optimum_is_pandapowers_power_flow_with_t_model_transformers() -> None:
    net = _pandapower("case118")
    opf = from_pandapower(net, "case118")
    assert np.count_nonzero(opf.g) >= 4  # its transformers' T-to-pi conversion gives them conductance
    _assert_runpp_agrees(net, opf, solve_ac(opf))


def test_dropping_the_conductance_is_visible_to_the_same_check() -> None:
    """The check above is sharp enough: without g the OPF's voltages miss runpp's by more than the tolerance."""
    net = _pandapower("case118")
    opf = from_pandapower(net, "case118")
    res = solve_ac(dataclasses.replace(opf, g=np.zeros(opf.n_branch)))
    vm, va, _, rows = _runpp_at_optimum(net, opf, res)
    worst = max(np.max(np.abs(vm - res.vm_pu[rows])), np.max(np.abs(va - np.deg2rad(res.va_deg[rows]))))
    assert worst > 10 * VOLTAGE_ATOL_PU


def test_mv_grid_with_a_150_degree_transformer_and_iron_losses() -> None:
    """pandapower's example_simple: a 110/20 kV Dyn5 transformer (14 kW iron losses), a line behind an open switch."""
    import pandapower as pp

    net = _pandapower("example_simple")
    net.gen["min_p_mw"], net.gen["max_p_mw"] = 0.0, 10.0
    net.gen["min_q_mvar"], net.gen["max_q_mvar"] = -10.0, 10.0
    net.ext_grid["min_p_mw"], net.ext_grid["max_p_mw"] = -100.0, 100.0
    net.ext_grid["min_q_mvar"], net.ext_grid["max_q_mvar"] = -100.0, 100.0
    net.bus["min_vm_pu"], net.bus["max_vm_pu"] = 0.95, 1.05
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=50.0)
    pp.create_poly_cost(net, 0, "gen", cp1_eur_per_mw=20.0, cq2_eur_per_mvar2=0.0)
    opf = from_pandapower(net, "example_simple")
    trafo = [k for k, label in enumerate(opf.branch_label) if label.startswith("trafo 0 ")]
    assert len(trafo) == 1 and opf.g[trafo[0]] > 0 and np.rad2deg(opf.shift[trafo[0]]) == pytest.approx(150.0)
    res = solve_ac(opf)
    assert res.pg_mw[opf.gen_label.index("gen 0 at bus 5")] == pytest.approx(10.0, abs=1e-5)  # the cheaper unit runs flat out
    _assert_runpp_agrees(net, opf, res)


def test_a_net_without_costs_is_a_feasibility_problem() -> None:
    """No poly_cost: pandapower converts in power-flow mode (external grid without Q limits); the OPF still runs."""
    opf = from_pandapower(_pandapower("example_simple"), "example_simple")
    assert np.all(opf.cost_poly == 0)
    res = solve_ac(opf)
    assert res.ok and res.objective == 0.0
