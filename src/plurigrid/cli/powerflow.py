"""`plurigrid powerflow`: one AC power flow of a network case or of a microworld's interval."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import typer
from rich.table import Table

from plurigrid.cli import console
from plurigrid.errors import UsageError

out_console = console.out
_SHOWN = 5  # buses and branches listed at each extreme


def powerflow(
    case: str = typer.Argument(..., help="MATPOWER .m, pandapower .json, pandapower:NAME, simbench:CODE, or a microworld"),
    step: int = typer.Option(0, "--step", help="for a microworld: the interval whose power flow is shown"),
    enforce_q_lims: bool = typer.Option(False, "--enforce-q-lims",
                                        help="hold generators within their reactive limits (PV buses become PQ at a limit)"),
    tol_mva: float = typer.Option(1e-8, "--tol-mva", help="largest accepted power mismatch at a bus, in MVA"),
    compare: bool = typer.Option(False, "--compare-runpp", help="also run pandapower.runpp and report the differences"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Solve an AC power flow: convergence, iterations, losses, bus voltages and branch loading; exit 3 if it does not converge."""
    from plurigrid.grid.cases import is_grid_case, load_net
    from plurigrid.grid.powerflow import FastPowerFlow, UnsupportedElementError

    if not (math.isfinite(tol_mva) and tol_mva > 0):
        raise UsageError(f"--tol-mva: must be a positive number, got {tol_mva}")
    if is_grid_case(case):
        net = load_net(case)
        try:
            flow = FastPowerFlow(net, tol_mva=tol_mva, enforce_q_lims=enforce_q_lims)
        except UnsupportedElementError as exc:
            raise UsageError(f"{case}: {exc}") from None
        result, what = flow.solve_net(), case
    else:
        if compare:
            raise UsageError("--compare-runpp: needs a network case; a microworld's injections come from its participants")
        import plurigrid
        from plurigrid.engine.simulate import step_result

        world = plurigrid.load(case)
        net = world.net
        result = step_result(world.compiled, step).pf
        flow = None
        what = f"{world.microworld} at step {step} ({world.index[step].isoformat()})"
    comparison = None
    if compare:
        from plurigrid.grid.cases import compare_with_runpp

        comparison = compare_with_runpp(net, tol_mva=tol_mva, enforce_q_lims=enforce_q_lims, flow=flow)
    if as_json:
        from plurigrid.grid.cases import powerflow_json

        sys.stdout.write(json.dumps(powerflow_json(what, net, result, flow, comparison), allow_nan=False) + "\n")
    else:
        _print(what, net, result, flow, comparison)
    if not result.converged:
        raise typer.Exit(3)


def _print(what: str, net: Any, r: Any, flow: Any, comparison: Any) -> None:
    buses = f"{len(net.bus):,} buses, {len(net.line):,} lines, {len(net.trafo):,} transformers"
    if not r.converged:
        out_console.print(f"{what}: did NOT converge ({buses}) after {r.iterations} iterations from every start "
                          "(dc, no-load and flat, each with and without a line search)", soft_wrap=True)
    else:
        tol = "" if flow is None else f", tolerance {flow.tol_mva:.1e} MVA"
        out_console.print(f"{what}: converged in {r.iterations} iterations (start: {r.start}{tol}, largest mismatch "
                          f"{r.mismatch_mva:.1e} MVA); {buses}", soft_wrap=True)
        out_console.print(f"losses {r.losses_mw:,.4f} MW; reference buses supply {r.slack_p_mw:,.4f} MW, {r.slack_q_mvar:,.4f} Mvar"
                          + (f"; {r.q_limited_buses} generator bus(es) held at a reactive limit" if r.q_limited_buses else ""))
        if flow is not None and flow.voltage_dependent_loads:
            out_console.print("loads: voltage-dependent shares (const_z / const_i) modelled as in pandapower")
        _extremes(net, r)
    if comparison is not None:
        c = comparison
        out_console.print(f"pandapower.runpp: {'converged' if c.runpp_converged else 'did NOT converge'}"
                          + (f" in {c.runpp_iterations} iterations, {c.runpp_s:.3f} s; largest difference "
                             f"|dVm| {c.max_dvm_pu:.1e} pu, |dVa| {c.max_dva_degree:.1e} deg" if c.runpp_converged else "")
                          + f" (ours: {c.solve_s:.3f} s)")


def _extremes(net: Any, r: Any) -> None:
    import numpy as np

    vm = np.asarray(r.vm_pu)
    live = np.flatnonzero(np.isfinite(vm))
    order = live[np.argsort(vm[live], kind="stable")]
    table = Table("bus", "vm_pu", "va_degree", box=None, title="lowest and highest voltages")
    for pos in order if order.size <= 2 * _SHOWN else np.r_[order[:_SHOWN], order[-_SHOWN:]]:
        table.add_row(str(net.bus.index[pos]), f"{vm[pos]:.5f}", f"{r.va_degree[pos]:.3f}")
    out_console.print(table)
    loading = np.r_[np.asarray(r.line_loading_pct), np.asarray(r.trafo_loading_pct)]
    names = [f"line {i}" for i in net.line.index] + [f"trafo {i}" for i in net.trafo.index]
    shown = np.flatnonzero(np.isfinite(loading))
    if shown.size:
        top = shown[np.argsort(-loading[shown], kind="stable")[:_SHOWN]]
        table = Table("branch", "loading %", box=None, title="most loaded branches")
        for pos in top:
            table.add_row(names[pos], f"{loading[pos]:.2f}")
        out_console.print(table)
