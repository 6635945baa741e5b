"""Benchmark of the OPF formulations against baselines run in the same process.

Usage: .venv/bin/python benchmarks/bench_opf.py [--repeat 5] [--steps 96] [--skip-cases] [--skip-clearing]
       [--skip-ac-baseline] [--skip-robustness] [--sweep 200]

1. DC-OPF on PGLib case118 and pandapower's case1354pegase: Plurigrid (model build + HiGHS solve)
   vs PyPSA's `Network.optimize` with HiGHS (if PyPSA is installed: `pip install -e '.[bench]'`)
   and pandapower's `rundcopp` (PYPOWER's solver), on the same networks and costs.
2. AC-OPF on the same two cases: Plurigrid (casadi + IPOPT) vs pandapower's `runopp` (PIPS).
3. The `opf` clearing per step inside the simulator: SimBench 1-LV-semiurb4--0-sw with 24 h
   look-ahead (96 periods) and 1-MVLV-semiurb-all-0-sw single-interval.
4. Robustness: DC-OPFs of pandapower's case118 and case300 with loads moved by up to 3 % (seeded):
   how many the first HiGHS attempt solves, how many need the retry ladder (and which step
   solved them), and the time of each kind against the first attempt's in the same run; then the
   time of `--explain` on infeasible cases (the relaxation MILP / elastic NLP).

Timings exclude file reading. case1354pegase comes from pandapower, whose conversion gives 64
transformers a 100 MVA rating that MATPOWER's file does not have (rateA = 0, unlimited); those
ratings are removed on both sides so the case is the published one.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from plurigrid.grid.matpower import MatpowerCase, read_matpower, to_pandapower
from plurigrid.opf.ac import solve_ac
from plurigrid.opf.dc import solve_dc
from plurigrid.opf.network import OpfNetwork, from_matpower

TESTDATA = Path(os.environ.get("PLURIGRID_TESTDATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall time of `repeat` calls and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def case1354() -> tuple[object, MatpowerCase]:
    from pandapower.converter.matpower.to_mpc import to_mpc

    net = pn.case1354pegase()
    mpc = to_mpc(net, init="flat")["mpc"]
    branch = np.asarray(mpc["branch"], float)
    n_line = len(net.line)
    false_limit = np.isclose(branch[n_line:, 5], 99.999, atol=0.01)
    branch[n_line:][false_limit, 5] = 0.0
    false_trafo = np.isclose(net.trafo.sn_mva.to_numpy(float), 99.999)
    net.trafo.loc[net.trafo.index[false_trafo], "max_loading_percent"] = 1e5  # same on pandapower's side
    case = MatpowerCase("case1354pegase", float(mpc["baseMVA"]), np.asarray(mpc["bus"], float),
                        np.asarray(mpc["gen"], float), branch, np.asarray(mpc["gencost"], float))
    return net, case


def case118() -> tuple[object, MatpowerCase]:
    case = read_matpower(TESTDATA / "pglib" / "pglib_opf_case118_ieee.m")
    return to_pandapower(case), case


def pypsa_dc(net: OpfNetwork) -> tuple[float, float] | None:
    """(seconds, objective) of PyPSA's linear OPF (HiGHS) on the same in-service network, or None.

    Lines carry PowerModels' DC susceptance (x_eff = (r^2 + x^2) / x, taps ignored) so both sides
    solve the same DC model; PyPSA has no angle-difference limits (they do not bind here).
    Timed: building the PyPSA network and `optimize` (its linopy model build and the solve).
    """
    try:
        import pypsa
    except ImportError:
        return None
    import logging

    for name in ("pypsa", "linopy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    base = net.base_mva
    t0 = time.perf_counter()
    n = pypsa.Network()
    buses = [str(b) for b in net.bus_id]
    n.add("Bus", buses, v_nom=1.0)
    n.add("Load", [f"load{b}" for b in buses], bus=buses, p_set=(net.pd + net.gs) * base)
    c2, c1, c0 = net.cost_poly.T
    n.add("Generator", [f"gen{g}" for g in range(net.n_gen)], bus=[buses[b] for b in net.gen_bus],
          p_nom=net.pmax * base, p_min_pu=np.divide(net.pmin, net.pmax, out=np.zeros(net.n_gen), where=net.pmax > 0),
          marginal_cost=c1, marginal_cost_quadratic=c2)
    x_eff = (net.r**2 + net.x**2) / net.x / base  # per unit on 100 MVA -> ohm at 1 kV, 1 MVA base
    n.add("Line", [f"line{k}" for k in range(net.n_branch)], bus0=[buses[b] for b in net.f],
          bus1=[buses[b] for b in net.t], x=x_eff, r=0.0, s_nom=np.where(np.isfinite(net.rate), net.rate * base, 1e6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n.optimize(solver_name="highs", solver_options={"output_flag": False})
    return time.perf_counter() - t0, float(n.objective) + float(c0.sum())


def bench_cases(repeat: int, ac_baseline: bool) -> None:
    print("\n## DC-OPF and AC-OPF (median of", repeat, "runs; build = model construction, solve = solver)\n")
    print("| case | model | Plurigrid build + solve (ms) | objective | baseline | baseline (ms) | baseline objective | ratio |")
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for name, make in (("case118 (PGLib)", case118), ("case1354pegase", case1354)):
        net_pp, case = make()
        net = from_matpower(case)
        dc_s, dc = timed(lambda: solve_dc(net, "powermodels"), repeat)
        rows = []
        pp_dc = copy.deepcopy(net_pp)
        t_pp, _ = timed(lambda: pp.rundcopp(pp_dc, verbose=False), 1)
        rows.append(("pandapower rundcopp", t_pp, float(pp_dc.res_cost)))
        ps = pypsa_dc(net)
        if ps is not None:
            rows.append(("PyPSA optimize (HiGHS)", *ps))
        for label, t_base, obj in rows:
            print(f"| {name} | DC | {dc_s * 1000:.1f} ({dc.build_time_s * 1000:.1f} + {dc.solve_time_s * 1000:.1f}) | "
                  f"{dc.objective:,.2f} | {label} | {t_base * 1000:.0f} | {obj:,.2f} | {t_base / dc_s:.0f}x |")
        ac_s, ac = timed(lambda: solve_ac(net), max(1, repeat // 2))
        line = (f"| {name} | AC | {ac_s * 1000:.0f} ({ac.build_time_s * 1000:.0f} + {ac.solve_time_s * 1000:.0f}) | "
                f"{ac.objective:,.2f} |")
        if ac_baseline:
            pp_ac = copy.deepcopy(net_pp)
            t0 = time.perf_counter()
            try:
                pp.runopp(pp_ac, verbose=False, init="flat")
                t_ac, obj = time.perf_counter() - t0, f"{float(pp_ac.res_cost):,.2f}"
            except Exception as exc:  # PIPS may not converge on large cases
                t_ac, obj = time.perf_counter() - t0, f"failed ({exc.__class__.__name__})"
            line += f" pandapower runopp (PIPS) | {t_ac * 1000:.0f} | {obj} | {t_ac / ac_s:.1f}x |"
        else:
            line += " - | - | - | - |"
        print(line)


def bench_clearing(steps: int) -> None:
    import plurigrid

    print("\n## `opf` clearing inside the simulator (per step: build + solve + AC check + settle)\n")
    print("| grid | buses | participants | look-ahead | steps | opf per step (ms) | solve per step (ms) | whole step (ms) "
          "| welfare opf / pay-as-clear | voltage violations opf / pay-as-clear (bus-steps) |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---|")
    for grid, horizon_h, n_steps in (("1-LV-semiurb4--0-sw", 24.0, steps), ("1-MVLV-semiurb-all-0-sw", 0.25, min(steps, 8))):
        welfare, violations = {}, {}
        for mechanism in ("pay-as-clear", "opf"):
            world = plurigrid.load({
                "world": {"name": f"bench-{grid}", "start": "2016-06-06T00:00:00", "duration": f"{n_steps * 15}min",
                          "resolution": "15min", "seed": 1},
                "grid": {"source": f"simbench:{grid}", "default_strategy": "truthful"},
                "market": {"mechanism": mechanism, "opf_horizon_h": horizon_h},
            })
            t0 = time.perf_counter()
            run = world.run(ledger=False, record={"series"})
            total = time.perf_counter() - t0
            welfare[mechanism] = run.kpis["welfare"]
            violations[mechanism] = run.kpis["voltage_violations"]
            if mechanism == "opf":
                clear = run.summary["timings_s"]["clear"] / n_steps
                solve = run.summary["timings_s"]["opf_solve"] / n_steps
                print(f"| {grid} | {len(world.net.bus)} | {len(world.participants)} | {horizon_h:g} h | {n_steps} | {clear * 1000:.0f} | "
                      f"{solve * 1000:.0f} | {total / n_steps * 1000:.0f} | {welfare['opf']:,.2f} / {welfare['pay-as-clear']:,.2f} | "
                      f"{violations['opf']} / {violations['pay-as-clear']} |")


def bench_robustness(sweep: int) -> None:
    import collections
    import dataclasses

    from plurigrid.opf.explain import explain
    from plurigrid.opf.network import from_pandapower

    print(f"\n## Retry ladder: {sweep} perturbed DC-OPFs per case (seeded; loads x U(0.97, 1.03))\n")
    print("| case | solved by | solves | share | median solve (ms) |")
    print("|---|---|---:|---:|---:|")
    nets = {}
    for name in ("case118", "case300"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = nets[name] = from_pandapower(getattr(pn, name)(), name)
        rng = np.random.default_rng(13)
        times: dict[str, list[float]] = collections.defaultdict(list)
        for _ in range(sweep):
            t0 = time.perf_counter()
            result = solve_dc(dataclasses.replace(net, pd=net.pd * rng.uniform(0.97, 1.03, net.n_bus)))
            times[" -> ".join(a.split(": ")[0] for a in result.attempts) + f" ({result.status})"].append(time.perf_counter() - t0)
        for path, ts in sorted(times.items()):
            print(f"| {name} | {path} | {len(ts)} | {len(ts) / sweep:.1%} | {statistics.median(ts) * 1000:.1f} |")

    print("\n## --explain on infeasible cases (build + solve + explanation)\n")
    print("| case | model | status | limits to relax | method | time (s) |")
    print("|---|---|---|---:|---|---:|")
    pglib = from_matpower(read_matpower(TESTDATA / "pglib" / "pglib_opf_case118_ieee.m"))
    leaf = int(np.flatnonzero(pglib.bus_id == 117)[0])
    rate = pglib.rate.copy()
    rate[(pglib.f == leaf) | (pglib.t == leaf)] = 0.05
    cases = [("case118 PGLib, line to bus 117 at 5 MW", dataclasses.replace(pglib, rate=rate)),
             ("case118 PGLib, ratings x 0.6", dataclasses.replace(pglib, rate=pglib.rate * 0.6)),
             ("case118 PGLib, load x 2 (above capacity)", dataclasses.replace(pglib, pd=pglib.pd * 2, qd=pglib.qd * 2))]
    for label, net in cases:
        for model, solve in (("dc", solve_dc), ("ac", solve_ac)):
            t0 = time.perf_counter()
            result = solve(net)
            why = explain(net, result, model)
            print(f"| {label} | {model} | {result.status} | {len(why.relaxations)} | {why.method} | {time.perf_counter() - t0:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument("--skip-clearing", action="store_true")
    parser.add_argument("--skip-ac-baseline", action="store_true")
    parser.add_argument("--skip-cases", action="store_true")
    parser.add_argument("--skip-robustness", action="store_true")
    parser.add_argument("--sweep", type=int, default=200)
    args = parser.parse_args()
    if not args.skip_cases:
        bench_cases(args.repeat, not args.skip_ac_baseline)
    if not args.skip_clearing:
        bench_clearing(args.steps)
    if not args.skip_robustness:
        bench_robustness(args.sweep)


if __name__ == "__main__":
    main()
