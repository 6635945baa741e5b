"""Power-flow cases people name on the command line, and the reference networks the sweeps run over.

A case is a MATPOWER ``.m`` file, a pandapower ``.json`` net, ``pandapower:NAME`` or
``simbench:CODE`` (a microworld is resolved by the caller, which simulates it). The sweeps compare
our power flow with ``pandapower.runpp`` on every network ``pandapower.networks`` builds offline and
on SimBench's grids; :func:`simbench_grids` loads many SimBench codes without their year-long
profiles, reading each scenario's tables once (``simbench.get_simbench_net`` re-reads all of them,
profiles included, for every code: 6-9 s each).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plurigrid.grid.build import GridError, pandapower_networks, referenced_net

__all__ = ["Comparison", "GridError", "compare_with_runpp", "is_grid_case", "load_net", "pandapower_networks",
           "simbench_codes", "simbench_grids"]


def is_grid_case(case: str) -> bool:
    """Whether ``case`` names a network (else it is a microworld: a library name, ``.toml`` or spec ``.json``)."""
    if case.startswith(("pandapower:", "simbench:")) or case.endswith(".m"):
        return True
    if not case.endswith(".json"):
        return False
    try:  # a pandapower net is a JSON object of class pandapowerNet; a microworld spec is not
        with open(case, encoding="utf-8") as fh:
            head = fh.read(4096)
    except OSError:
        return True  # referenced_net reports the missing file
    return '"pandapowerNet"' in head or json.dumps("pandapower.auxiliary") in head


def load_net(case: str) -> Any:
    """The pandapower net of a grid case; raises a one-line :class:`GridError` naming the case."""
    return referenced_net(case, Path.cwd(), where=case)


def simbench_codes() -> list[str]:
    """Every SimBench code, in SimBench's order."""
    import simbench

    return list(simbench.collect_all_simbench_codes())


def simbench_grids(codes: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Each SimBench code's net, without profiles (for power flows of its base case).

    Uses SimBench's own extraction and conversion (so each net equals ``get_simbench_net``'s but for
    ``net.profiles``) with each scenario's tables read once; a ``no_sw`` code is derived from its
    ``sw`` sibling with SimBench's own ``generate_no_sw_variant`` when that was loaded just before.
    """
    import pandas as pd
    from simbench.converter import csv_data2pp, csv_tablenames, read_csv_data
    from simbench.networks.extract_simbench_grids_from_csv import (  # SimBench's internals: pinned in pyproject
        _extract_csv_table_by_subnet,
        complete_data_path,
        generate_no_sw_variant,
        get_bus_bus_switch_indices_from_csv,
        get_relevant_subnets,
    )
    from simbench.networks.loadcases import filter_loadcases
    from simbench.networks.simbench_code import get_simbench_code_and_parameters

    scenarios: dict[int, tuple[str, dict, set]] = {}
    last: tuple[str, Any] | None = None
    for code in codes:
        _, params = get_simbench_code_and_parameters(code)
        with_switches = bool(params[6])
        sibling = code.removesuffix("-no_sw") + "-sw"
        if not with_switches and last is not None and last[0] == sibling:
            net = copy.deepcopy(last[1])
        else:
            scenario = int(params[5])
            if scenario not in scenarios:
                path = complete_data_path(scenario)
                tables = {name: read_csv_data(path, sep=";", tablename=name)
                          for name in csv_tablenames(["elements", "types", "cases"])}
                tables |= {name: pd.DataFrame() for name in csv_tablenames(["profiles"])}
                switches = set(get_bus_bus_switch_indices_from_csv(tables["Switch"], tables["Node"]))
                scenarios[scenario] = (path, tables, switches)
            path, tables, switches = scenarios[scenario]
            subnets = get_relevant_subnets(params, path)
            extracted = {name: _extract_csv_table_by_subnet(table, name, subnets, bus_bus_switches=switches)
                         for name, table in tables.items()}
            filter_loadcases(extracted)
            net = csv_data2pp(extracted)
            if with_switches:
                last = (code, copy.deepcopy(net))
        if not with_switches:
            generate_no_sw_variant(net)
        yield code, net



@dataclass(frozen=True)
class Comparison:
    """Our power flow of a net's own elements against ``pandapower.runpp`` on the same net.

    ``max_dvm_pu``/``max_dva_degree``: largest differences over energised buses when both converged
    (angles only where runpp models phase shifts, i.e. computes voltage angles; else NaN).
    Times in seconds: ``build_s`` (our model, once per topology), ``solve_s`` (one solve),
    ``runpp_s`` (one whole ``runpp``).
    """

    buses: int
    converged: bool
    iterations: int
    start: str
    build_s: float
    solve_s: float
    runpp_converged: bool
    runpp_iterations: int
    runpp_s: float
    max_dvm_pu: float
    max_dva_degree: float


def compare_with_runpp(net: Any, *, tol_mva: float = 1e-8, enforce_q_lims: bool = False, numba: bool = True,
                       flow: Any = None) -> Comparison:
    """Solves ``net`` with :class:`FastPowerFlow` and with ``runpp`` (pandapower's own Newton with its
    defaults, the same tolerance and reactive-limit rule) and compares the voltages; ``net`` is not modified.
    ``flow``: our model of ``net`` when the caller has built it already (its options then apply)."""
    import warnings

    import numpy as np
    import pandapower as pp

    from plurigrid.grid.powerflow import FastPowerFlow

    t0 = time.perf_counter()
    if flow is None:
        flow = FastPowerFlow(net, tol_mva=tol_mva, enforce_q_lims=enforce_q_lims)
    t1 = time.perf_counter()
    ours = flow.solve_net()
    t2 = time.perf_counter()
    theirs = copy.deepcopy(net)
    t3 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # runpp compares its tolerance_mva with the mismatch in p.u. of sn_mva
            pp.runpp(theirs, tolerance_mva=tol_mva / float(net.sn_mva), enforce_q_lims=enforce_q_lims, numba=numba,
                     lightsim2grid=False)  # pandapower's own Newton, whatever else is installed
        runpp_ok = bool(theirs.converged)
    except Exception:  # pandapower raises LoadflowNotConverged and others when it fails
        runpp_ok = False
    t4 = time.perf_counter()
    dvm = dva = float("nan")
    if runpp_ok and ours.converged:
        vm = theirs.res_bus["vm_pu"].to_numpy(float)
        both = np.isfinite(vm) & np.isfinite(ours.vm_pu)
        dvm = float(np.max(np.abs(ours.vm_pu[both] - vm[both]), initial=0.0))
        if theirs._options["calculate_voltage_angles"]:
            diff = ours.va_degree[both] - theirs.res_bus["va_degree"].to_numpy(float)[both]
            dva = float(np.max(np.abs((diff + 180.0) % 360.0 - 180.0), initial=0.0))
    return Comparison(
        buses=len(net.bus), converged=ours.converged, iterations=ours.iterations, start=ours.start,
        build_s=t1 - t0, solve_s=t2 - t1, runpp_converged=runpp_ok,
        runpp_iterations=int(theirs._ppc["iterations"]) if runpp_ok else -1, runpp_s=t4 - t3,
        max_dvm_pu=dvm, max_dva_degree=dva,
    )


def json_numbers(a: Any) -> list[float | None]:
    """JSON numbers, with None where the value is NaN (a dead bus or branch) or infinite (a 0-rated line)."""
    import numpy as np

    return [float(x) if math.isfinite(x) else None for x in np.asarray(a, dtype=float)]


def powerflow_json(what: str, net: Any, r: Any, flow: Any = None, comparison: Any = None) -> dict:
    """A power flow result as JSON (what `plurigrid powerflow --json` prints and the HTTP API returns)."""
    out = {
        "case": what, "converged": r.converged, "iterations": r.iterations, "start": r.start or None,
        "tol_mva": None if flow is None else flow.tol_mva,
        "mismatch_mva": r.mismatch_mva if math.isfinite(r.mismatch_mva) else None,
        "losses_mw": r.losses_mw if r.converged else None,
        "slack_p_mw": r.slack_p_mw if r.converged else None, "slack_q_mvar": r.slack_q_mvar if r.converged else None,
        "q_limited_buses": r.q_limited_buses,
        "voltage_dependent_loads": None if flow is None else flow.voltage_dependent_loads,
        "bus": [int(b) for b in net.bus.index], "vm_pu": json_numbers(r.vm_pu), "va_degree": json_numbers(r.va_degree),
        "line": [int(i) for i in net.line.index], "line_loading_pct": json_numbers(r.line_loading_pct),
        "trafo": [int(i) for i in net.trafo.index], "trafo_loading_pct": json_numbers(r.trafo_loading_pct),
    }
    if comparison is not None:
        c = comparison
        out["runpp"] = {"converged": c.runpp_converged, "iterations": c.runpp_iterations, "seconds": c.runpp_s,
                        "max_dvm_pu": c.max_dvm_pu if math.isfinite(c.max_dvm_pu) else None,
                        "max_dva_degree": c.max_dva_degree if math.isfinite(c.max_dva_degree) else None}
    return out
