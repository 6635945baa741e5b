"""Our AC power flow against pandapower.runpp (and lightsim2grid) on every reference network.

    .venv/bin/python benchmarks/bench_powerflow.py                       # pandapower.networks + SimBench, one scenario per grid
    .venv/bin/python benchmarks/bench_powerflow.py --simbench all        # every one of SimBench's 246 codes (~1 h)
    .venv/bin/python benchmarks/bench_powerflow.py --only timing         # the large cases' timing table only

The sweep table gives, per network, whether each solver converges on the net's own elements, the
iterations (ours: over every start tried), times (ours: building the model once, then one solve;
runpp: one whole call) and the largest voltage differences. The timing table repeats solves of the
large cases: ours (a cold start each time, as the simulator solves), pandapower.runpp, and
lightsim2grid's Newton on its own model when it is installed (`pip install lightsim2grid`; it is not
a dependency, and runpp is told not to use it, so the baseline is pandapower's own Newton).
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
import warnings

import numpy as np

from plurigrid.grid.cases import compare_with_runpp, load_net, pandapower_networks, simbench_codes, simbench_grids
from plurigrid.grid.powerflow import FastPowerFlow

LARGE = ["pandapower:GBnetwork", "pandapower:case6515rte", "pandapower:case9241pegase",
         "simbench:1-MVLV-semiurb-all-0-sw", "simbench:1-EHVHVMVLV-mixed-all-0-sw"]


def _fmt(x: float, spec: str) -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


def sweep(names_and_nets) -> list[dict]:
    print("| network | buses | ours | iterations | start | model s | solve ms | runpp | iterations | runpp ms | "
          "max abs dVm pu | max abs dVa deg |")
    print("|---|---:|---|---:|---|---:|---:|---|---:|---:|---:|---:|")
    rows = []
    for name, net in names_and_nets:
        c = compare_with_runpp(net)
        rows.append({"name": name, **c.__dict__})
        print(f"| {name} | {c.buses:,} | {'yes' if c.converged else 'NO'} | {c.iterations} | {c.start or '-'} | {c.build_s:.3f} | "
              f"{c.solve_s * 1e3:.1f} | {'yes' if c.runpp_converged else 'NO'} | {c.runpp_iterations if c.runpp_converged else '-'} | "
              f"{c.runpp_s * 1e3:.0f} | {_fmt(c.max_dvm_pu, '.1e')} | {_fmt(c.max_dva_degree, '.1e')} |", flush=True)
    both = [r for r in rows if r["runpp_converged"]]
    missed = [r["name"] for r in both if not r["converged"]]
    worst = max((r["max_dvm_pu"] for r in both if r["converged"]), default=float("nan"))
    extra = [r["name"] for r in rows if r["converged"] and not r["runpp_converged"]]
    print(f"\n{len(rows)} networks; runpp converges on {len(both)}, ours on all of those but {len(missed)} {missed or ''}; "
          f"largest |dVm| {worst:.1e} pu; ours converges where runpp does not on {len(extra)} {extra or ''}\n")
    return rows


def _lightsim_solver(net):
    """lightsim2grid's Newton on its own model of ``net``, or None when it is not installed."""
    try:
        from lightsim2grid.network import init_from_pandapower
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = init_from_pandapower(net)
        except (TypeError, ValueError, RuntimeError) as exc:  # a net its converter cannot read
            print(f"(lightsim2grid cannot read this net: {exc.__class__.__name__})")
            return None
    v0 = np.ones(len(net.bus), dtype=complex)

    def solve() -> bool:
        return len(model.ac_pf(v0, 30, 1e-8)) > 0

    return solve


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def timing(cases: list[str], repeats: int) -> None:
    import pandapower as pp

    print(f"| network | buses | ours solve ms (cold start, median of {repeats}) | runpp ms | runpp / ours | "
          "lightsim2grid ms | lightsim2grid / ours |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        if case.startswith("simbench:"):
            [(_, net)] = simbench_grids([case.split(":", 1)[1]])
        else:
            net = load_net(case)
        flow = FastPowerFlow(net, warm_start=False)
        assert flow.solve_net().converged
        ours = _median_s(flow.solve_net, repeats)
        def runpp(theirs=copy.deepcopy(net)) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pp.runpp(theirs, lightsim2grid=False)

        runpp()  # numba's compilation is not the steady state
        runpp_s = _median_s(runpp, max(3, repeats // 5))
        lightsim = _lightsim_solver(net)
        ls = _median_s(lightsim, repeats) if lightsim is not None and lightsim() else float("nan")
        print(f"| {case} | {len(net.bus):,} | {ours * 1e3:.1f} | {runpp_s * 1e3:.0f} | {runpp_s / ours:.1f}x | "
              f"{_fmt(ls * 1e3, '.1f')} | {_fmt(ls / ours, '.2f')}{'x' if math.isfinite(ls) else ''} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simbench", choices=["ci", "all", "none"], default="ci",
                        help="ci: scenario 0 with switches of every grid (what the test sweeps); all: every code")
    parser.add_argument("--only", choices=["sweep", "timing"], default=None)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.only != "timing":
        print("## pandapower.networks\n")
        sweep((name, load_net(f"pandapower:{name}")) for name in pandapower_networks())
        if args.simbench != "none":
            codes = simbench_codes() if args.simbench == "all" else [c for c in simbench_codes() if c.endswith("-0-sw")]
            print(f"## SimBench ({len(codes)} codes)\n")
            sweep(simbench_grids(codes))
    if args.only != "sweep":
        print("## Large cases, repeated solves\n")
        timing(LARGE, args.repeats)


if __name__ == "__main__":
    main()
