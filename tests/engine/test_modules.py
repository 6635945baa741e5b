"""WASM strategy modules inside a running world: decisions, fallbacks, failure counts, hot swap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plurigrid.assets.fleet import Batteries, Demand, EVs, Thermal
from plurigrid.engine.modules import plan_module, start_modules
from plurigrid.engine.simulate import simulate
from plurigrid.engine.world import compile_world
from plurigrid.microworld.loader import SpecError, validate_data
from plurigrid.microworld.spec import ModuleRef
from plurigrid.strategies.base import Decision, Observation
from plurigrid.strategies.wasm.host import compile_module

from .conftest import matrix, run_world


def run_steps(world, before=None):
    """Simulates `world`; returns each step's result and the run's module runner."""
    results = []
    outcome = simulate(world, before_step=before, after_step=lambda state, k, r: results.append(r))
    return results, outcome.state.runtime.modules


def conserved(results) -> bool:
    """Every step: metered energy plus losses is what the reference supplied, and the market balances."""
    return all(int(r.settlement.metered_wh.sum()) + r.losses_wh == r.upstream_wh and r.settlement.traded_wh.sum() == 0
               for r in results)

# decide: n = kv["n"] + 1 (n < 10), stores it, answers {"battery_kw":n}; VERSION only changes the hash
COUNTER = """(module
  (import "plurigrid" "kv_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "plurigrid" "kv_put" (func $put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (data (i32.const 100) "{\\"battery_kw\\":0}")
  (data (i32.const 200) "VERSION")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "decide") (param i32 i32) (result i64)
    (if (i32.eq (call $get (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 4)) (i32.const -1))
      (then (i32.store (i32.const 64) (i32.const 0))))
    (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))
    (drop (call $put (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 4)))
    (i32.store8 (i32.const 114) (i32.add (i32.const 48) (i32.load (i32.const 64))))
    (i64.or (i64.shl (i64.const 100) (i64.const 32)) (i64.const 16))))"""

LOOP = """(module (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "decide") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))"""


def _module(folder: Path, file: str, wat: str, name: str, capabilities: str = "[]", version: str = "1") -> Path:
    path = folder / f"{file}.wat"
    path.write_text(wat.replace("VERSION", version))
    sha = compile_module(path).sha256
    path.with_suffix(".toml").write_text(f'name = "{name}"\nversion = "{version}"\nsha256 = "{sha}"\n'
                                         f"capabilities = {capabilities}\n")
    return path


def _world(module: Path, steps: int = 8, **ref):
    data = {
        "world": {"name": "modules", "start": "2024-06-21T00:00:00", "duration": f"{steps * 15}min", "resolution": "15min"},
        "grid": {"bus": [{"id": "b", "vn_kv": 0.4}], "connection": {"bus": "b"}},
        "market": {"mechanism": "pay-as-clear"},
        "participant": [
            {"id": "agent", "bus": "b", "strategy": "module", "module": {"path": str(module), **ref},
             "assets": {"load": {"profile": {"source": "constant", "p_kw": 1.0}},
                        "battery": {"capacity_kwh": 100.0, "power_kw": 20.0, "efficiency": 1.0, "initial_soc_frac": 0.0}}},
            {"id": "neighbour", "bus": "b", "strategy": "truthful", "assets": {"pv": {"kwp": 5.0}}},
        ],
    }
    return compile_world(validate_data("modules", data), "modules", None)


def test_library_world_runs_its_c_and_wat_modules_without_failures():
    run = run_world("sandboxed-strategies")
    report = run.summary["modules"]
    assert set(report) == {"home01", "home02", "home03", "home04"}
    assert all(r["strategy_failures"] == 0 for r in report.values())
    assert len({r["sha256"] for r in report.values()}) == 2  # one C module, one WAT module
    assert run.summary["balance"] == {"energy_residual_wh": 0, "money_residual_micro": 0}
    soc = matrix(run, "soc_kwh")[:, 0]
    assert soc[20] > soc[0] + 1.0  # home01 (C battery arbitrage) charges in the cheap night hours


def test_hostile_module_falls_back_every_step_and_the_world_completes(tmp_path):
    world = _world(_module(tmp_path, "loop", LOOP, "loop"), limits={"fuel": 100_000})
    results, modules = run_steps(world)
    assert modules.report()["agent"]["strategy_failures"] == world.steps
    assert modules.report()["agent"]["fuel_used"] == world.steps * 100_000  # deterministic
    assert "fuel exhausted; fallback passive" in modules.log[0]
    assert not any(r.settlement.traded_wh[0] for r in results)  # passive: no trading
    assert conserved(results)


def test_module_decisions_drive_the_devices_and_hot_swap_keeps_kv_of_the_same_module(tmp_path):
    v1 = _module(tmp_path, "counter1", COUNTER, "counter", '["kv"]', version="1")
    v2 = _module(tmp_path, "counter2", COUNTER, "counter", '["kv"]', version="2")
    other = _module(tmp_path, "other", COUNTER, "other", '["kv"]')

    def soc_steps(swap_to: Path | None) -> np.ndarray:
        world = _world(v1)

        def before(state, k):
            if k == 4 and swap_to is not None:
                state.runtime.modules.swap("agent", swap_to, k)
        socs = []
        outcome = simulate(world, before_step=before, after_step=lambda state, k, r: socs.append(state.soc_kwh[0]))
        soc = np.r_[0.0, socs]
        return np.round(np.diff(soc) / 0.25, 9), outcome.state.runtime.modules.log  # battery kW the module asked for

    kept, log = soc_steps(v2)
    assert kept.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]  # the count goes on across the swap
    assert "step 4: agent: module counter" in log[0] and "(kv kept)" in log[0]
    reset, log = soc_steps(other)
    assert reset.tolist() == [1, 2, 3, 4, 1, 2, 3, 4]
    assert "(kv reset)" in log[0]


@pytest.mark.parametrize("ref, message", [
    ({"path": "missing.wasm"}, "participant[0].module: {dir}/missing.wasm: no such file"),
    ({"grants": ["prices"]}, "participant[0].module: {dir}/counter.toml: capabilities: the spec grants 'prices', "
                             "which the manifest does not declare"),
    ({"limits": {"fuel": 10**9}}, "participant[0].module: {dir}/counter.toml: limits.fuel: "),
])
def test_bad_module_reference_is_a_one_line_spec_error(tmp_path, ref, message):
    module = _module(tmp_path, "counter", COUNTER, "counter", '["kv"]')
    ref = dict(ref)
    path = Path(ref.pop("path", module))
    with pytest.raises(SpecError) as err:
        _world(path if path.is_absolute() else tmp_path / path, **ref)
    assert message.format(dir=tmp_path) in str(err.value)
    assert "\n" not in str(err.value)


HOSTILE = Path(__file__).resolve().parents[1] / "wasm" / "modules"


@pytest.mark.parametrize("module, limits, reason", [
    ("grow.wat", {"memory_mb": 1}, "memory limit"),
    ("huge.wat", {}, "invalid output: too large"),
    ("out_of_bounds.wat", {}, "invalid output: out of bounds"),
    ("not_json.wat", {}, "invalid output: not JSON"),
    ("trap.wat", {}, "trap: "),
    ("wasi_read.wat", {}, "invalid output: "),  # WASI granted, no directory: the open fails, "E…" is no decision
])
def test_each_hostile_module_only_costs_its_participant_the_step(tmp_path, module, limits, reason):
    capabilities = '["wasi"]' if module == "wasi_read.wat" else "[]"
    path = _module(tmp_path, Path(module).stem, (HOSTILE / module).read_text(), Path(module).stem, capabilities)
    (tmp_path / "secret.txt").write_text("the neighbour's secret")
    world = _world(path, steps=4, limits=limits)
    results, modules = run_steps(world)
    assert modules.report()["agent"]["strategy_failures"] == 4
    assert all(reason in line for line in modules.log), modules.log[0]
    assert all("secret" not in line for line in modules.log)
    assert conserved(results)


# the observation of docs/modules.md, in the order the engine writes it
OBSERVED = ("load_kw", "renewable_kw", "flexible_frac", "max_delay_steps", "backlog_kwh", "backlog_age_steps", "soc_kwh",
            "battery_kwh", "battery_kw", "battery_eff", "battery_min_kwh", "ev_remaining_kwh", "ev_kw", "ev_eff",
            "ev_plugged", "ev_steps_left", "indoor_c", "value_eur_per_kwh", "marginal_cost_eur_per_kwh")


def _observation(c: dict[str, np.ndarray], last_price: float) -> Observation:
    """An observation whose ABI fields (docs/modules.md names) are the given columns."""
    zero = np.zeros(len(c["load_kw"]))
    return Observation(
        step=40, dt_h=0.25, load_kw=c["load_kw"], renewable_kw=c["renewable_kw"], backlog_kwh=c["backlog_kwh"],
        backlog_age_steps=c["backlog_age_steps"], soc_kwh=c["soc_kwh"], ev_remaining_kwh=c["ev_remaining_kwh"],
        ev_plugged=c["ev_plugged"], ev_steps_left=c["ev_steps_left"], indoor_c=c["indoor_c"], outdoor_c=zero,
        offline=zero.astype(bool),
        demand=Demand(c["value_eur_per_kwh"], zero, c["flexible_frac"], c["max_delay_steps"]),
        batteries=Batteries(c["battery_kwh"], c["battery_kw"], c["battery_eff"], c["battery_min_kwh"], zero, zero),
        evs=EVs(c["ev_kw"], c["ev_eff"], zero, zero.astype(np.int64), zero.astype(np.int64)),
        thermal=Thermal(zero, zero, c["marginal_cost_eur_per_kwh"], zero, zero, zero.astype(bool)),
        import_forecast_eur_per_kwh=np.array([0.28, 0.3]), export_forecast_eur_per_kwh=np.array([0.08, 0.08]),
        last_price_eur_per_kwh=last_price)


def _plain(value):
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and not np.isfinite(value) else value


@pytest.mark.parametrize("online, time, last_price, inbox", [
    ([0, 1, 2, 3], "2024-06-21T10:00:00+02:00", float("nan"), {}),
    ([3, 1], "100% %s", 0.21, {1: [{"from": 'a"b', "message": "h\u00e9llo %s \u2603"}], 3: [{"from": "x", "message": ""}]}),
])
def test_engine_observations_are_the_json_of_the_observation_dict(tmp_path, online, time, last_price, inbox):
    """What a module receives is byte for byte json.dumps of its observation dict (non-finite values as null)."""
    ids = ["home01", 'q"uote\\d%s', "\u00fcn\u00efc\u00f6de \u2603", "%d%%"]
    path = _module(tmp_path, "fixed", (HOSTILE / "fixed.wat").read_text(), "fixed")
    runner = start_modules({i: plan_module(i, ModuleRef(path=str(path)), None) for i in range(4)}, ids)
    seen = []
    for slot in runner.slots.values():
        slot.instance.decide_payload = lambda payload, call=slot.instance.decide_payload: seen.append(payload) or call(payload)
    nan, inf = float("nan"), float("inf")
    columns = {name: np.full(4, 0.5) for name in OBSERVED}  # shared by all: written once for everyone
    columns |= {"load_kw": np.array([0.41, 1e-7, 1e22, 0.41]), "renewable_kw": np.array([0.0, -0.0, 0.0, -0.0]),
                "soc_kwh": np.array([nan, 6.5, inf, -inf]), "indoor_c": np.full(4, nan),
                "battery_kwh": np.array([13.5, 13.5, 0.1 + 0.2, 1 / 3]), "ev_plugged": np.array([True, False, True, True]),
                "ev_steps_left": np.array([34, 0, -1, 2**40]), "max_delay_steps": np.full(4, 12.0)}
    obs = _observation(columns, last_price)
    runner.inbox = {i: list(messages) for i, messages in inbox.items()}
    out = Decision.empty(4)
    runner.decide(obs, np.array(online), out, np.random.default_rng(0), 0, time)
    expected = [json.dumps({"participant": ids[i], "abi": 1, "step": 40, "time": time, "dt_h": 0.25,
                            "import_eur_per_kwh": 0.28, "export_eur_per_kwh": 0.08,
                            "last_price_eur_per_kwh": _plain(last_price),
                            **{name: _plain(columns[name][i]) for name in OBSERVED},
                            "inbox": inbox.get(i, [])}, separators=(",", ":")).encode() for i in online]
    assert seen == expected
    assert out.trades[online].all()  # fixed.wat decides to trade


LIFECYCLE = """(module
  (import "plurigrid" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{}went offlineback onlinean event")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "decide") (param i32 i32) (result i64) (i64.const 2))
  (func (export "on_offline") (param i32 i32) (result i64) (call $log (i32.const 2) (i32.const 12)) (i64.const 2))
  (func (export "on_online") (param i32 i32) (result i64) (call $log (i32.const 14) (i32.const 11)) (i64.const 2))
  (func (export "on_event") (param i32 i32) (result i64) (call $log (i32.const 25) (i32.const 8)) (i64.const 2)))"""


def test_lifecycle_handlers_run_on_events_and_when_the_participant_goes_offline_and_comes_back(tmp_path):
    path = _module(tmp_path, "lifecycle", LIFECYCLE, "lifecycle", '["log"]')
    world = _world(path, steps=6)
    data = world.spec.model_dump()
    data["event"] = [{"at": "30min", "kind": "participant_offline", "participant": "agent", "duration": "30min"},
                     {"at": "75min", "kind": "weather", "scale": 0.5}]
    world = compile_world(validate_data("modules", data), "modules", None)
    _, modules = run_steps(world)
    # the offline event starts at step 2 while the agent is cut off: only the online ones hear of it
    assert modules.log == ["step 2: agent: went offline", "step 4: agent: back online", "step 5: agent: an event"]
    assert modules.report()["agent"]["strategy_failures"] == 0


def test_a_module_whose_side_channels_reach_an_audience_reads_only_what_that_audience_may_see(tmp_path):
    """A module granted `send` can pass what it reads to other participants: the fields of a kind its participant
    keeps from the coalition per interval come as null, and `read_meter` as NaN; a module without it reads all."""
    from plurigrid.microworld.privacy import OPEN, DataPolicy

    ids = ["a", "b", "c"]
    policies = (DataPolicy(meter={"coalition": "hourly"}), OPEN, DataPolicy(devices={"coalition": "none"}))
    fixed = (HOSTILE / "fixed.wat").read_text()
    sends, silent = _module(tmp_path, "sends", fixed, "sends", '["send"]'), _module(tmp_path, "silent", fixed, "silent")
    plans = {0: plan_module(0, ModuleRef(path=str(sends)), None), 1: plan_module(1, ModuleRef(path=str(sends)), None),
             2: plan_module(2, ModuleRef(path=str(silent)), None)}
    runner = start_modules(plans, ids, policies=policies)
    seen, meters = {}, {}
    for i, slot in runner.slots.items():
        def spy(payload, i=i, call=slot.instance.decide_payload, ctx=slot.instance.context):
            seen[i], meters[i] = json.loads(payload), ctx.meter_kwh
            return call(payload)
        slot.instance.decide_payload = spy
    runner.meter_kwh = np.array([1.25, 2.5, 3.75])
    runner.decide(_observation({name: np.full(3, 0.5) for name in OBSERVED}, 0.2), np.arange(3), Decision.empty(3),
                  np.random.default_rng(0), 0, "t")
    meter_fields = ("load_kw", "renewable_kw", "backlog_kwh", "soc_kwh", "ev_remaining_kwh", "indoor_c")
    assert all(seen[0][f] is None for f in meter_fields) and np.isnan(meters[0])
    assert seen[0]["battery_kwh"] == 0.5 and seen[0]["flexible_frac"] == 0.5
    assert all(seen[1][f] == 0.5 for f in OBSERVED if f != "ev_plugged") and meters[1] == 2.5  # open policy
    assert seen[2]["battery_kwh"] == 0.5 and meters[2] == 3.75  # keeps devices from the coalition, but cannot send
