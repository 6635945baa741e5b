"""Benchmark of WASM strategy modules against the same logic as a built-in Python strategy.

Usage: .venv/bin/python benchmarks/bench_modules.py [--participants 10000] [--calls 20000]

1. Per-call overhead of a trivial `decide` (a module that answers a fixed decision): the raw ABI
   call with a small payload, and `decide` with the full observation of docs/modules.md (JSON
   encoding, the call, decoding and validation).
2. One step's decide stage for N participants on one bus: every participant runs the library's WAT
   module `price-capped-demand-response` (defer the flexible share above 0.30 per kWh, serve the
   backlog below it or at its deadline), against the same rule written as a vectorised built-in
   Python strategy, in the same process. Once with identical participants, once with varied ones
   (their own load, flexible share, PV and battery), as the engine writes a field's JSON once per
   distinct value and the module reads longer numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from plurigrid.engine.step import decide, initial_state, observe
from plurigrid.engine.world import compile_world
from plurigrid.microworld.loader import validate_data
from plurigrid.strategies.base import Decision, Observation
from plurigrid.strategies.wasm.host import ModuleInstance, compile_module

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "plurigrid" / "microworld" / "library"
DR_MODULE = LIBRARY / "modules" / "price-capped-demand-response" / "price-capped-demand-response.wasm"
TRIVIAL = """(module (memory (export "memory") 1)
  (data (i32.const 1024) "{\\"battery_kw\\":1.5,\\"trade\\":true}")
  (func (export "alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "decide") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 31))))"""
CAP_EUR_PER_KWH = 0.30


def price_capped_demand_response(obs: Observation, m: np.ndarray, out: Decision) -> None:
    """The WAT module's rule as a vectorised Python strategy (the baseline)."""
    dear = obs.import_forecast_eur_per_kwh[0] > CAP_EUR_PER_KWH
    out.shift_kw[m] = obs.flexible_frac[m] * obs.load_kw[m] if dear else 0.0
    must = obs.backlog_age_steps[m] >= obs.max_delay_steps[m] - 1
    out.serve_kw[m] = np.where(must | (not dear), obs.backlog_kwh[m] / obs.dt_h, 0.0)


def bench_calls(calls: int, observation: dict) -> None:
    instance = ModuleInstance(compile_module(TRIVIAL.encode(), "trivial"))
    payload = b'{"step":1}'
    for _ in range(1000):  # warm up
        instance.call("decide", payload)
    rows = []
    for label, fn in (("raw ABI call, 10-byte input", lambda: instance.call("decide", payload)),
                      ("decide() with the full observation (JSON in and out)", lambda: instance.decide(observation))):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            runs.append((time.perf_counter() - t0) / calls)
        rows.append((label, statistics.median(runs)))
    print(f"\n## Per-call overhead of a trivial module (median of 5 x {calls:,} calls)\n")
    print("| call | µs per call |\n|---|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1e6:.1f} |")


def dr_world(n: int, varied: bool):
    """n participants on one bus running the WAT module; `varied`: each with its own load, PV and battery."""
    def participant(i: int) -> dict:
        p_kw, flexible_frac, assets = 1.0, 0.3, {}
        if varied:  # spread values, as in a real neighbourhood: most observed fields differ between participants
            p_kw, flexible_frac = 0.5 + (i % 1013) / 713, 0.1 + 0.3 * (i % 97) / 97
            assets = {"pv": {"kwp": 3.0 + (i % 13) / 7},
                      "battery": {"capacity_kwh": 5.0 + i % 11, "power_kw": 3.0 + (i % 7) / 3,
                                  "efficiency": 0.9 + (i % 5) / 100, "initial_soc_frac": (i % 89) / 89}}
        return {"id": f"p{i}", "bus": "b", "preferences": {"flexible_frac": flexible_frac, "max_delay_h": 2},
                "assets": {"load": {"profile": {"source": "constant", "p_kw": p_kw}}, **assets},
                "strategy": "module", "module": {"path": str(DR_MODULE)}}

    spec = validate_data("bench", {
        "world": {"name": "bench-modules", "start": "2024-06-21T17:00:00", "duration": "1h", "resolution": "15min"},
        "grid": {"bus": [{"id": "b", "vn_kv": 0.4}], "connection": {"bus": "b"}},
        "market": {"import_price_eur_per_kwh": 0.40, "export_price_eur_per_kwh": 0.05},
        "participant": [participant(i) for i in range(n)],
    })
    return compile_world(spec, "bench", None)


def bench_participants(n: int) -> None:
    print(f"\n## {n:,} participants deciding one step (median of 5)\n")
    print("| participants | strategy | decide stage (s) | µs per participant |\n|---|---|---:|---:|")
    notes = []
    for label, varied in (("identical", False), ("varied (load, PV, battery)", True)):
        t0 = time.perf_counter()
        world = dr_world(n, varied)
        setup = time.perf_counter() - t0
        state = initial_state(world)
        obs = observe(world, state, 0)
        module_runs, decisions = [], None
        for _ in range(5):
            t0 = time.perf_counter()
            decisions = decide(world, state, obs, 0)
            module_runs.append(time.perf_counter() - t0)
        members = np.arange(n)
        python_runs = []
        for _ in range(5):
            out = Decision.empty(n)
            t0 = time.perf_counter()
            price_capped_demand_response(obs, members, out)
            python_runs.append(time.perf_counter() - t0)
        for strategy, runs in (("WASM module (price-capped-demand-response.wasm)", module_runs),
                               ("same rule, built-in vectorised Python", python_runs)):
            m = statistics.median(runs)
            print(f"| {label} | {strategy} | {m:.4f} | {m / n * 1e6:.2f} |")
        same = np.allclose(decisions.shift_kw, out.shift_kw) and np.allclose(decisions.serve_kw, out.serve_kw)
        failures = sum(r["strategy_failures"] for r in state.runtime.modules.report().values())
        notes.append(f"{label}: same decisions: {same}; module failures: {failures}; "
                     f"{n:,} instances created in {setup:.2f} s incl. compile")
    print("\n" + "\n".join(notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    observation = {"abi": 1, "participant": "home03", "step": 40, "time": "2024-06-21T10:00:00+02:00", "dt_h": 0.25,
                   "load_kw": 0.41, "renewable_kw": 2.9, "flexible_frac": 0.2, "max_delay_steps": 12, "backlog_kwh": 0.0,
                   "backlog_age_steps": 0, "soc_kwh": 6.5, "battery_kwh": 13.5, "battery_kw": 5.0, "battery_eff": 0.95,
                   "battery_min_kwh": 0.0, "ev_remaining_kwh": 0.0, "ev_kw": 11.0, "ev_eff": 0.92, "ev_plugged": False,
                   "ev_steps_left": 34, "indoor_c": None, "value_eur_per_kwh": 1.0, "marginal_cost_eur_per_kwh": 0.0,
                   "import_eur_per_kwh": 0.28, "export_eur_per_kwh": 0.08, "last_price_eur_per_kwh": 0.21, "inbox": []}
    bench_calls(args.calls, observation)
    bench_participants(args.participants)


if __name__ == "__main__":
    main()
