"""Benchmark of the whole step against a plain pandapower.runpp loop over the same injections.

Usage: .venv/bin/python benchmarks/bench_step.py [--steps 96] [--baseline-steps 96] [--skip-households]

1. SimBench 1-MVLV-semiurb-all-0-sw (9,099 buses, 8,772 loads, 794 PV), one day at 15 min,
   pay-as-clear, AC power flow every step: Plurigrid's step (observe, decide, clear, power flow,
   settle) per step vs `pandapower.runpp` on the same per-bus injections, run in the same process.
   Reports steps/s, per-stage time, peak memory, the agreement of bus voltages, and the
   extrapolated time of a full year (35,136 steps) on this machine.
2. 25 households with load + PV + battery each on an LV feeder, one day at 15 min, including power flow.
"""

from __future__ import annotations

import argparse
import copy
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandapower as pp

import plurigrid
from plurigrid.engine.step import STAGES, initial_state, step

YEAR_STEPS = 35_136
MVLV = "1-MVLV-semiurb-all-0-sw"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mvlv_world(steps: int):
    return plurigrid.load({
        "world": {"name": "bench-mvlv", "start": "2016-06-06T00:00:00", "duration": f"{steps * 15}min",
                  "resolution": "15min", "seed": 1},
        "grid": {"source": f"simbench:{MVLV}", "default_strategy": "truthful"},
        "market": {"mechanism": "pay-as-clear"},
    }).compiled


def bench_mvlv(steps: int, baseline_steps: int) -> None:
    t0 = time.perf_counter()
    world = mvlv_world(steps)
    compile_s = time.perf_counter() - t0
    net = world.grid.net
    print(f"\n## {MVLV}: {len(net.bus)} buses, {len(net.load)} loads, {len(net.sgen)} sgens, "
          f"{world.n} participants, {steps} steps (compile {compile_s:.1f} s)")

    state = initial_state(world)
    step(world, state, 0)  # warm-up: builds the cached admittance model and JIT kernels
    state = initial_state(world)
    injections, vm = [], []
    t0 = time.perf_counter()
    for k in range(steps):
        r = step(world, state, k)
        injections.append((r.p_bus_mw, r.q_bus_mvar))
        vm.append(r.pf.vm_pu)
    ours_s = time.perf_counter() - t0
    per_step = ours_s / steps

    # Baseline: the same per-bus injections as one load per bus, solved by pandapower.runpp.
    base = copy.deepcopy(net)
    base.load.drop(base.load.index, inplace=True)
    base.sgen.drop(base.sgen.index, inplace=True)
    base.storage.drop(base.storage.index, inplace=True)
    pp.create_loads(base, base.bus.index, p_mw=0.0, q_mvar=0.0)
    pp.runpp(base)  # warm-up (numba compile)
    n_base = min(baseline_steps, steps)
    max_dvm = 0.0
    t0 = time.perf_counter()
    for k in range(n_base):
        p, q = injections[k]
        base.load["p_mw"] = -p
        base.load["q_mvar"] = -q
        pp.runpp(base)
        max_dvm = max(max_dvm, float(np.nanmax(np.abs(base.res_bus.vm_pu.to_numpy() - vm[k]))))
    base_s = time.perf_counter() - t0
    base_per_step = base_s / n_base

    print("\n| metric | Plurigrid whole step | pandapower.runpp loop |")
    print("|---|---:|---:|")
    print(f"| time per step | {per_step * 1000:.1f} ms | {base_per_step * 1000:.1f} ms |")
    print(f"| steps/s | {1 / per_step:.1f} | {1 / base_per_step:.2f} |")
    print(f"| speed-up | {base_per_step / per_step:.1f}x | 1x |")
    print(f"| full year ({YEAR_STEPS} steps), extrapolated | {per_step * YEAR_STEPS / 60:.1f} min | "
          f"{base_per_step * YEAR_STEPS / 60:.1f} min |")
    print(f"\nmax |vm difference| vs runpp: {max_dvm:.2e} pu over {n_base} steps; peak RSS {peak_rss_mib():.0f} MiB")
    t = state.timings_s
    print("\n| stage | ms per step |")
    print("|---|---:|")
    for name in STAGES:
        print(f"| {name} | {t[name] / steps * 1000:.2f} |")


def households_world(n: int = 25):
    buses = [{"id": "mv", "vn_kv": 20.0}] + [{"id": f"b{i}", "vn_kv": 0.4} for i in range(6)]
    lines = [{"id": f"l{i}", "from_bus": f"b{i}", "to_bus": f"b{i + 1}", "length_km": 0.05, "r_ohm_per_km": 0.206,
              "x_ohm_per_km": 0.08, "c_nf_per_km": 210, "max_i_ka": 0.27} for i in range(5)]
    participants = [{
        "id": f"h{i:02d}", "bus": f"b{1 + i % 5}", "strategy": "self-consumption",
        "assets": {"load": {"profile": {"source": "bdew", "slp": "h0", "annual_kwh": 3000 + 50 * i}},
                   "pv": {"kwp": 4.0 + (i % 4)},
                   "battery": {"capacity_kwh": 8.0, "power_kw": 4.0}},
    } for i in range(n)]
    return plurigrid.load({
        "world": {"name": "households", "start": "2024-06-21T00:00:00", "duration": "1d", "resolution": "15min"},
        "grid": {"bus": buses, "line": lines,
                 "transformer": [{"id": "t", "hv_bus": "mv", "lv_bus": "b0", "sn_mva": 0.4, "r_pu": 0.01, "x_pu": 0.04}],
                 "connection": {"bus": "mv"}},
        "market": {"mechanism": "pay-as-clear"},
        "participant": participants,
    })


def bench_households() -> None:
    print("\n## 25 households x 1 day (load + PV + battery each), pay-as-clear, AC power flow every step, ledger on")
    print("\n| run | compile + run 96 steps with ledger and files (s) | of which the step (s) |")
    print("|---|---:|---:|")
    for label in ("first in this process (profile caches)", "second, same process"):
        t0 = time.perf_counter()
        run = households_world().run()
        total = time.perf_counter() - t0
        stages = {k: v for k, v in run.summary["timings_s"].items() if k != "whole_run"}
        print(f"| {label} | {total:.3f} | {sum(stages.values()):.3f} |")
    code = f"import plurigrid, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_step; bench_step.households_world().run()"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    print(f"| whole process (python -c: import, compile, run, write) | {time.perf_counter() - t0:.3f} | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=96)
    ap.add_argument("--baseline-steps", type=int, default=96)
    ap.add_argument("--skip-households", action="store_true")
    args = ap.parse_args()
    if not args.skip_households:
        bench_households()
    bench_mvlv(args.steps, args.baseline_steps)


if __name__ == "__main__":
    main()
