"""Benchmark of what a user runs: `plurigrid run` of SimBench 1-MVLV-semiurb-all-0-sw as a whole process.

Usage: .venv/bin/python benchmarks/bench_year.py [--hours 8784] [--day-only] [--skip-baselines]

1. A full year (2016: 35,136 quarter hours; 8,814 participants, 9,099 buses), ledger on, an AC power
   flow every step, pay-as-clear, default recording (no per-bus matrices): wall time, peak RSS of the
   process, its stages (summary.json's timings) and the size of the run folder.
2. One day (96 steps) of the same world as a whole process, against, on the same grid and the same
   96 quarter hours of SimBench profiles (loads and PV from `net.profiles`, as SimBench users run it):
   - a plain loop of `pandapower.runpp` (as a whole process, and its loop alone);
   - `pandapower.timeseries.run_timeseries` with `ConstControl`s on every load and sgen and an
     `OutputWriter` of bus voltages and line loadings (as a whole process, and its run alone).
   Every baseline runs in a fresh process of its own, measured the same way, in this run.
3. `simbench-semiurb4` (the library world: 1-LV-semiurb4--0-sw, 44 buses) for a full year.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORLD = HERE / "worlds" / "mvlv-semiurb.toml"
CODE = "1-MVLV-semiurb-all-0-sw"
PLURIGRID = [sys.executable, "-m", "plurigrid.cli.main"]

# the baselines, each a whole process; they print the seconds of their loop on the last line
RUNPP_LOOP = """
import time, sys
t0 = time.perf_counter()
import numpy as np, pandapower as pp, simbench as sb
net = sb.get_simbench_net("{code}")
profiles = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
first = {first}
loop = time.perf_counter()
for k in range(first, first + {steps}):
    net.load["p_mw"] = profiles[("load", "p_mw")].iloc[k].to_numpy()
    net.load["q_mvar"] = profiles[("load", "q_mvar")].iloc[k].to_numpy()
    net.sgen["p_mw"] = profiles[("sgen", "p_mw")].iloc[k].to_numpy()
    pp.runpp(net)
print(time.perf_counter() - loop)
"""
RUN_TIMESERIES = """
import time, tempfile
import pandas as pd, pandapower as pp, simbench as sb
from pandapower.control import ConstControl
from pandapower.timeseries import DFData, OutputWriter, run_timeseries
net = sb.get_simbench_net("{code}")
profiles = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
first, steps = {first}, {steps}
for (element, column), frame in profiles.items():
    if element in ("load", "sgen") and column in ("p_mw", "q_mvar") and not (element == "sgen" and column == "q_mvar"):
        data = DFData(frame.iloc[first:first + steps].reset_index(drop=True))
        ConstControl(net, element=element, variable=column, element_index=frame.columns, data_source=data,
                     profile_name=frame.columns)
ow = OutputWriter(net, output_path=tempfile.mkdtemp(), output_file_type=".p", log_variables=[])
ow.log_variable("res_bus", "vm_pu")
ow.log_variable("res_line", "loading_percent")
loop = time.perf_counter()
run_timeseries(net, time_steps=range(steps), verbose=False)
print(time.perf_counter() - loop)
"""


def whole_process(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one command run to its end in a fresh process."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    # the largest child so far: every measured command runs alone and children only grow this
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak, res.stdout


def rss_of(cmd: list[str]) -> tuple[float, float, str]:
    """As whole_process, but the peak RSS of this very command (through /usr/bin/time when present)."""
    timer = shutil.which("time") or "/usr/bin/time"
    if not Path(timer).exists():
        return whole_process(cmd)
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as f:
        wall, _, out = whole_process([timer, "-f", "%M", "-o", f.name, *cmd])
        return wall, int(f.read().split()[-1]) / 1024, out


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def plurigrid_run(world: Path | str, hours: float | None, out: Path) -> tuple[float, float, dict]:
    cmd = [*PLURIGRID, "run", str(world), "--out", str(out), "--quiet", "--json"]
    if hours is not None:
        cmd += ["--hours", str(hours)]
    wall, peak, stdout = rss_of(cmd)
    return wall, peak, json.loads(stdout)


def report_run(label: str, wall: float, peak: float, summary: dict, out: Path) -> None:
    t = summary["timings_s"]
    stages = {k: v for k, v in t.items() if k not in ("whole_run", "opf_solve")}  # opf_solve is part of clear
    print(f"\n## {label}\n")
    print("| steps | participants | buses | whole process (s) | of which the run (s) | peak RSS (MiB) | run folder (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {summary['steps']:,} | {summary['participants']:,} | {summary['buses']:,} | {wall:.1f} | "
          f"{t.get('whole_run', float('nan')):.1f} | {peak:,.0f} | {folder_mb(out):,.1f} |")
    print("\n| stage | s | ms per step |")
    print("|---|---:|---:|")
    for name, seconds in stages.items():
        print(f"| {name} | {seconds:.1f} | {seconds / summary['steps'] * 1000:.2f} |")
    rest = t.get("whole_run", 0.0) - sum(stages.values())
    print(f"| the rest of the run (recording, ledger, writing, on the main thread) | {rest:.1f} | "
          f"{rest / summary['steps'] * 1000:.2f} |")
    print(f"| before the run (imports, compile) and after it (summary, report) | {wall - t.get('whole_run', 0.0):.1f} | |")


def day_ratio(tmp: Path, steps: int = 96) -> None:
    first = 0  # the world starts on 2016-01-01 00:00, row 0 of SimBench's profiles
    wall, peak, summary = plurigrid_run(WORLD, steps / 4, tmp / "day")
    run = summary["timings_s"]["whole_run"]  # the step loop with its ledger and recording, as the baselines' loops
    rows = [("plurigrid run (whole process: ledger, AC power flow, pay-as-clear, files)", wall, run)]
    for name, script in (("pandapower.runpp loop", RUNPP_LOOP), ("pandapower.timeseries.run_timeseries", RUN_TIMESERIES)):
        code = script.format(code=CODE, first=first, steps=steps)
        base_wall, _, out = whole_process([sys.executable, "-c", code])
        rows.append((name, base_wall, float(out.strip().splitlines()[-1])))
    print(f"\n## One day ({steps} steps) of {CODE}, each a fresh process\n")
    print("| run | whole process (s) | its loop alone (s) | whole process ÷ plurigrid's | loop ÷ plurigrid's loop |")
    print("|---|---:|---:|---:|---:|")
    for label, whole, loop in rows:
        print(f"| {label} | {whole:.1f} | {loop:.1f} | {whole / wall:.1f}x | {loop / run:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=None, help="horizon of the long run (default: the full year)")
    parser.add_argument("--day-only", action="store_true")
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="plurigrid-bench-year-"))
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    try:
        if not args.skip_baselines:
            day_ratio(tmp)
        if not args.day_only:
            out = tmp / "year"
            wall, peak, summary = plurigrid_run(WORLD, args.hours, out)
            report_run(f"{CODE}, {summary['steps']:,} steps (plurigrid run, whole process)", wall, peak, summary, out)
            shutil.rmtree(out)
            out = tmp / "semiurb4"
            wall, peak, summary = plurigrid_run("simbench-semiurb4", args.hours if args.hours else 8784, out)
            report_run(f"simbench-semiurb4, {summary['steps']:,} steps (plurigrid run, whole process)", wall, peak,
                       summary, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
