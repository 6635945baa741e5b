"""The sandbox holds against hostile modules: limits stop them with one clear reason, imports need
grants, output is bounds-checked and validated, and well-behaved modules decide what they say."""

import struct
from pathlib import Path

import pytest
import wasmtime

from plurigrid.strategies.wasm.capabilities import Import, check_imports, grant_problems
from plurigrid.strategies.wasm.host import (
    DEADLINE,
    HOST_CALL_FUEL,
    KV_CAP_BYTES,
    LOG_READ_BYTES,
    InvalidOutput,
    ModuleError,
    ModuleInstance,
    compile_module,
    parse_decision,
)
from plurigrid.strategies.wasm.manifest import (
    BACKSTOP_FACTOR,
    DEADLINE_FLOOR_MS,
    WORST_FUEL_PER_S,
    Limits,
    ManifestError,
    effective,
    load_manifest,
    verify_module,
)

MODULES = Path(__file__).parent / "modules"
DECISION = {"battery_kw": 2.5, "ev_kw": 0.0, "shift_kw": 0.1, "serve_kw": 0.0,
            "bid_eur_per_kwh": 0.25, "ask_eur_per_kwh": 0.1, "trade": True}


def instance(name: str, grants=(), **limits) -> ModuleInstance:
    return ModuleInstance(compile_module(MODULES / name), grants, Limits(**limits))


# --- well-behaved modules


def test_decision_round_trips_through_module_memory():
    echo = instance("echo.wat")
    decision, result = echo.decide({**DECISION, "ev_kw": 0})
    assert result.ok and result.error is None
    assert decision == DECISION and type(decision["ev_kw"]) is float
    again = echo.decide(DECISION)[1]
    assert again.fuel_used == result.fuel_used > 0  # fuel is deterministic


def test_fixed_module_decides_on_a_full_observation():
    observation = {"abi": 1, "participant": "home03", "step": 40, "time": "2024-06-21T10:00:00+02:00",
                   "dt_h": 0.25, "load_kw": 0.41, "ev_plugged": False, "indoor_c": None}
    decision, result = instance("fixed.wat").decide(observation)
    assert decision == {"battery_kw": 1.5, "trade": True}, result.error


@pytest.mark.parametrize("output, problem", [
    ([1, 2], "not an object"),
    ({"battery_kw": "high"}, "field battery_kw is not a number"),
    ({"battery_kw": True}, "field battery_kw is not a number"),
    ({"trade": 1}, "field trade is not a boolean"),
    ({"battery_kW": 1.0}, "unknown field 'battery_kW'"),
])
def test_invalid_decisions_are_named(output, problem):
    decision, result = instance("echo.wat").decide(output)
    assert decision is None and not result.ok
    assert result.error == f"invalid output: {problem}"


def test_non_finite_numbers_are_invalid():
    with pytest.raises(InvalidOutput, match="field bid_eur_per_kwh is not finite"):
        parse_decision(b'{"bid_eur_per_kwh": NaN}')
    with pytest.raises(InvalidOutput, match="not JSON"):
        parse_decision(b"[" * 100_000)


# --- limits


def test_infinite_loop_exhausts_fuel_at_the_same_count_every_time():
    first, second = instance("loop.wat", fuel=1_000_000), instance("loop.wat", fuel=1_000_000)
    results = [first.call("decide", b"{}"), first.call("decide", b"{}"), second.call("decide", b"{}")]
    assert {r.error for r in results} == {"fuel exhausted"}
    assert {r.fuel_used for r in results} == {1_000_000}
    assert not any(r.ok for r in results) and all(r.output is None for r in results)


def test_the_deadline_is_a_backstop_far_above_what_the_fuel_can_take():
    for fuel in (1, 10_000, 2_000_000, 10_000_000, 10**12):
        deadline_s = Limits(fuel=fuel).deadline_ms / 1000
        assert deadline_s >= BACKSTOP_FACTOR * fuel / WORST_FUEL_PER_S and deadline_s >= DEADLINE_FLOOR_MS / 1000
    assert BACKSTOP_FACTOR >= 100 and Limits().deadline_ms == 50_000  # 10 million fuel: half a second at worst, x100
    assert instance("loop.wat", fuel=2_000_000).deadline_ms == 10_000
    # a plain loop under the default limits ends by fuel, never by the clock
    assert instance("loop.wat").call("decide", b"{}").error == "fuel exhausted"


def test_a_lowered_backstop_stops_a_loop_that_fuel_would_not():
    looping = ModuleInstance(compile_module(MODULES / "loop.wat"), (), Limits(fuel=10**15), deadline_ms=10)
    assert looping.call("decide", b"{}").error == DEADLINE


def _logger(length: int) -> ModuleInstance:
    """A module that logs `length` bytes from address 0 once per decide (16 MiB of memory)."""
    return ModuleInstance(compile_module(
        '(module (import "plurigrid" "log" (func $log (param i32 i32))) (memory (export "memory") 256)'
        ' (func (export "alloc") (param i32) (result i32) (i32.const 0))'
        f' (func (export "decide") (param i32 i32) (result i64) (call $log (i32.const 0) (i32.const {length})) (i64.const 0)))'
        .encode(), "logger"), ("log",))


def test_host_functions_cost_fuel_by_the_call_and_the_bytes_they_move():
    calls = instance("host_calls.wat", ("now", "read_meter", "prices", "log", "send"))
    observation = b'{"step": 1}'
    result = calls.call("decide", observation)
    prices, sent, logged = len(calls.context.prices_json), 4 + len(observation), len(observation)
    assert result.ok and result.fuel_used >= 5 * HOST_CALL_FUEL + prices + sent + logged
    assert result.fuel_used - (5 * HOST_CALL_FUEL + prices + sent + logged) < 100  # the module's own instructions
    # a log line keeps at most LOG_MAX_CHARS characters, so only that much is read and paid for
    small, huge = _logger(10).call("decide", b""), _logger(16 << 20).call("decide", b"")
    assert huge.fuel_used - small.fuel_used == LOG_READ_BYTES - 10
    # a loop of host calls runs out of fuel like any other loop: at the same count every time
    looping = [instance("host_calls.wat", ("now", "read_meter", "prices", "log", "send"), fuel=3 * HOST_CALL_FUEL)
               .call("decide", observation) for _ in range(2)]
    assert [(r.error, r.fuel_used) for r in looping] == [("fuel exhausted", 3 * HOST_CALL_FUEL)] * 2


@pytest.mark.parametrize("feature, body", [
    ("exceptions", '(tag $e) (func (export "f") (try_table (catch $e 0) (throw $e)))'),
    ("gc", '(type $s (struct (field i64))) (func (export "f") (drop (struct.new $s (i64.const 1))))'),
])
def test_features_whose_time_fuel_does_not_bound_are_refused(feature, body):
    with pytest.raises(ModuleError, match="not a valid WebAssembly module"):
        compile_module(_minimal_module(body.encode()), feature)


def test_wasi_clocks_answer_simulation_time_and_its_randomness_comes_from_the_seed():
    def read(seed: int) -> bytes:
        module = ModuleInstance(compile_module(MODULES / "wasi_clock_random.wat"), ("wasi",), seed=seed)
        module.context.now_ms = 1_718_956_800_000
        result = module.call("decide", b"")
        assert result.ok, result.error
        return result.output

    first, again, other = read(1), read(1), read(2)
    realtime, monotonic = struct.unpack_from("<qq", first)
    assert realtime == monotonic == 1_718_956_800_000 * 1_000_000  # nanoseconds of simulation time
    assert first[16:32] == again[16:32] != other[16:32]  # the same seed draws the same bytes
    assert struct.unpack_from("<ii", first, 32) == (52, 28)  # no sleeping (ENOSYS); no clock 9 (EINVAL)


def test_memory_grow_loop_hits_the_memory_limit():
    grower = instance("grow.wat", memory_mb=2)
    assert grower.call("decide", b"{}").error == "memory limit"
    assert grower.call("decide", b"{}").error == "memory limit"  # the instance stays usable


def _minimal_module(head: bytes) -> bytes:
    """A WAT module with `head` (memory, start, …) and trivial alloc/decide exports."""
    return (b"(module " + head + b' (func (export "alloc") (param i32) (result i32) (i32.const 0))'
            b' (func (export "decide") (param i32 i32) (result i64) (i64.const 0)))')


def test_initial_memory_over_the_limit_is_refused():
    with pytest.raises(ModuleError, match="initial memory exceeds the limit of 1 MiB"):
        ModuleInstance(compile_module(_minimal_module(b'(memory (export "memory") 17)')), limits=Limits(memory_mb=1))


def test_start_function_runs_under_the_limits():
    with pytest.raises(ModuleError, match="start function failed: fuel exhausted"):
        ModuleInstance(compile_module(_minimal_module(b'(memory (export "memory") 1) (func $s (loop $l (br $l)))'
                                                      b" (start $s)")), limits=Limits(fuel=1000))


# --- bad output and traps


@pytest.mark.parametrize("name, error", [
    ("out_of_bounds.wat", "invalid output: out of bounds"),
    ("not_json.wat", "invalid output: not JSON"),
    ("huge.wat", "invalid output: too large"),
    ("trap.wat", "trap: integer division by zero"),
])
def test_bad_output_and_traps_give_one_reason(name, error):
    decision, result = instance(name).decide({"step": 1})
    assert decision is None and result.error == error


def test_output_cap_follows_the_limit():
    assert instance("huge.wat", output_kb=128).call("decide", b"{}").ok  # 100,000 bytes fit in 128 KiB


def test_host_function_given_a_bad_pointer_traps():
    calls = instance("host_calls.wat", ("now", "read_meter", "prices", "log", "send"))
    assert calls.call("on_event", b"").error == "trap: log: pointer out of bounds"


# --- imports and capabilities


def test_unknown_import_is_refused_before_running():
    with pytest.raises(ModuleError, match=r"unknown_import.wat: unknown import env.foo \(\) -> \(\)"):
        instance("unknown_import.wat", ("log", "now", "kv", "read_meter", "forecast", "prices", "send", "wasi"))


def test_ungranted_import_is_refused_naming_import_and_grant():
    with pytest.raises(ModuleError) as caught:
        instance("host_calls.wat", ("now", "log", "read_meter", "prices"))
    assert str(caught.value) == "host_calls.wat: import plurigrid.send needs capability 'send' (not granted)"


def test_unknown_grant_is_refused():
    with pytest.raises(ModuleError, match="unknown capability 'clock'"):
        instance("echo.wat", ("clock",))


def test_check_imports_names_type_mismatches():
    problems = check_imports([Import("plurigrid", "now", "(i32) -> (i64)")], ["now"])
    assert problems == ["import plurigrid.now has type (i32) -> (i64), expected () -> (i64)"]
    assert grant_problems(["wasi-dir:/tmp"]) == ["grant 'wasi-dir:/tmp' needs the 'wasi' capability too"]


def test_bad_abi_is_named():
    with pytest.raises(ModuleError) as caught:
        instance("bad_abi.wat")
    assert str(caught.value) == ("bad_abi.wat: missing export 'alloc' (i32) -> (i32); "
                                 "export 'decide' has type (i32) -> (i32), expected (i32, i32) -> (i64)")


def test_missing_lifecycle_handler_does_nothing_and_unknown_export_is_an_error():
    echo = instance("echo.wat")
    assert echo.call("on_offline", b"{}").ok and echo.call("on_offline", b"{}").fuel_used == 0
    with pytest.raises(ValueError, match="'main' is not an ABI handler"):
        echo.call("main", b"{}")


# --- host functions


def test_kv_persists_across_calls_and_instances_and_respects_its_cap():
    counter = instance("kv.wat", ("kv",))
    counts = [int.from_bytes(counter.call("decide", b"").output, "little") for _ in range(3)]
    assert counts == [1, 2, 3]
    swapped = ModuleInstance(counter.compiled, ("kv",), kv=counter.kv)  # hot swap carries the store over
    assert int.from_bytes(swapped.call("decide", b"").output, "little") == 4
    assert swapped.call("on_online", b"").output == (0).to_bytes(4, "little")  # 60,000 bytes fit
    assert swapped.call("on_event", b"").output == (-1).to_bytes(4, "little", signed=True)  # 10,000 more do not
    assert set(swapped.kv) == {b"n", b"big"}
    assert sum(len(k) + len(v) for k, v in swapped.kv.items()) <= KV_CAP_BYTES


def test_host_functions_answer_from_the_context():
    calls = instance("host_calls.wat", ("now", "read_meter", "prices", "log", "send"))
    calls.context.now_ms = 1_718_956_800_000
    calls.context.meter_kwh = -0.75
    calls.context.prices_json = b'{"import_eur_per_kwh":[0.3],"export_eur_per_kwh":[0.08]}'
    result = calls.call("decide", b'{"step":7}')
    out = result.output
    assert int.from_bytes(out[0:8], "little") == 1_718_956_800_000  # simulation time, not the wall clock
    assert struct.unpack("<d", out[8:16])[0] == -0.75
    assert int.from_bytes(out[16:20], "little") == len(calls.context.prices_json)
    assert int.from_bytes(out[20:24], "little") == 0
    assert out[24:] == calls.context.prices_json
    assert calls.context.log_lines == ['{"step":7}']
    assert calls.context.outbox == [("peer", b'{"step":7}')]


def test_prices_too_small_a_buffer_reports_the_size_needed():
    calls = instance("host_calls.wat", ("now", "read_meter", "prices", "log", "send"))
    calls.context.prices_json = b"[" + b"0," * 600 + b"0]"  # 1,203 bytes; the module offers 1,000
    out = calls.call("decide", b"{}").output
    assert int.from_bytes(out[16:20], "little", signed=True) == -1203


# --- WASI


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    return tmp_path


def test_wasi_needs_its_grant(secret_dir):
    with pytest.raises(ModuleError, match=r"import wasi_snapshot_preview1.path_open needs capability 'wasi'"):
        instance("wasi_read.wat")


def test_wasi_without_a_directory_grant_sees_no_files(secret_dir):
    result = instance("wasi_read.wat", ("wasi",)).call("decide", b"{}")
    assert b"TOPSECRET" not in (result.output or b"")
    assert result.output == b"E\x08"  # EBADF: there is no preopened directory


def test_wasi_directory_grant_is_read_only(secret_dir):
    reader = instance("wasi_read.wat", ("wasi", f"wasi-dir:{secret_dir}"))
    assert reader.call("decide", b"{}").output == b"TOPSECRET"  # the module does read what it is granted
    created = reader.call("on_event", b"{}")
    assert created.output[:1] == b"E" and not (secret_dir / "new.txt").exists()


# --- compiling


def test_compile_once_per_content_hash():
    text = (MODULES / "echo.wat").read_text()
    binary = bytes(wasmtime.wat2wasm(text))
    a, b = compile_module(MODULES / "echo.wat"), compile_module(binary)
    assert a.sha256 == b.sha256 and a.module is b.module


def test_unreadable_and_invalid_modules_are_named(tmp_path):
    with pytest.raises(ModuleError, match=r"nope.wasm: cannot read"):
        compile_module(tmp_path / "nope.wasm")
    (tmp_path / "bad.wasm").write_bytes(b"\0asm\1\0\0\0\1")
    with pytest.raises(ModuleError, match=r"bad.wasm: not a valid WebAssembly module"):
        compile_module(tmp_path / "bad.wasm")


# --- manifests


def write_manifest(path: Path, sha256: str, extra: str = "") -> Path:
    path.write_text(f'name = "echo"\nversion = "0.1.0"\nsha256 = "{sha256}"\n'
                    f'capabilities = ["log", "kv", "wasi", "wasi-dir"]\n{extra}\n'
                    '[limits]\nfuel = 1000000\nmemory_mb = 8\n')
    return path


def test_manifest_loads_with_defaults_and_checks_the_hash(tmp_path):
    compiled = compile_module(MODULES / "echo.wat")
    manifest = load_manifest(write_manifest(tmp_path / "echo.toml", compiled.sha256))
    assert manifest.limits == Limits(fuel=1_000_000, memory_mb=8, output_kb=64)
    assert manifest.fallback == "passive"
    verify_module(manifest, compiled.sha256, "echo.wasm")
    with pytest.raises(ManifestError, match=r"echo.toml: sha256: does not match echo.wasm"):
        verify_module(manifest, "0" * 64, "echo.wasm")


def test_spec_may_only_narrow_the_manifest(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path / "echo.toml", "a" * 64))
    narrowed = effective(manifest, ["log", "wasi", "wasi-dir:/srv/data"], {"fuel": 500_000, "memory_mb": 4.5, "output_kb": None})
    assert narrowed.capabilities == ("log", "wasi", "wasi-dir:/srv/data")
    assert narrowed.limits == Limits(fuel=500_000, memory_mb=4.5, output_kb=64)
    assert narrowed.limits.memory_bytes == 4_718_592
    assert effective(manifest).capabilities == ("log", "kv", "wasi")  # a bare wasi-dir grants no directory
    with pytest.raises(ManifestError, match=r"echo.toml: capabilities: the spec grants 'send'"):
        effective(manifest, ["log", "send"])
    with pytest.raises(ManifestError, match=r"echo.toml: limits.memory_mb: the spec asks for 16, more than the manifest's 8"):
        effective(manifest, limits={"memory_mb": 16})


@pytest.mark.parametrize("extra, message", [
    ('colour = "blue"', r"colour: unknown field"),
    ('fallback = "pasive"', r"fallback: expected a built-in strategy \(passive, .*\), got 'pasive'"),
    ('abi = 2', r"abi: unsupported ABI version 2"),
])
def test_manifest_problems_name_file_and_field(tmp_path, extra, message):
    with pytest.raises(ManifestError, match=rf"echo.toml: {message}"):
        load_manifest(write_manifest(tmp_path / "echo.toml", "a" * 64, extra))


def test_manifest_limits_and_hash_are_validated(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\nversion = "1"\nsha256 = "abc"\n')
    with pytest.raises(ManifestError, match=r"m.toml: sha256: expected 64 lowercase hex digits"):
        load_manifest(path)
    path.write_text(f'name = "m"\nversion = "1"\nsha256 = "{"a" * 64}"\n[limits]\nfuel = -1\n')
    with pytest.raises(ManifestError, match=r"m.toml: limits.fuel: expected a positive integer, got -1"):
        load_manifest(path)
    path.write_text(f'name = "m"\nversion = "1"\nsha256 = "{"a" * 64}"\n[limits]\nmemory_mb = "lots"\n')
    with pytest.raises(ManifestError, match=r"m.toml: limits.memory_mb: expected a positive number, got 'lots'"):
        load_manifest(path)
    path.write_text(f'name = "m"\nversion = "1"\nsha256 = "{"a" * 64}"\n[limits]\ndeadline_ms = 100\n')
    with pytest.raises(ManifestError, match=r"m.toml: limits.deadline_ms: not a limit: the wall-clock deadline is a "
                                            r"backstop derived from fuel"):
        load_manifest(path)


def test_set_setpoint_records_the_battery_commands_of_a_granted_module():
    module = instance("setpoint.wat", ("set_setpoint",))
    decision, result = module.decide({"abi": 1})
    assert result.ok and decision == {"battery_kw": 1.5, "trade": True}
    assert module.context.setpoints == [-1500.0, 2000.5]  # the infinite one was refused (-1), nothing recorded
    with pytest.raises(ModuleError, match=r"import plurigrid.set_setpoint needs capability 'set_setpoint' \(not granted\)"):
        instance("setpoint.wat", ())


def test_the_last_setpoint_replaces_the_battery_decision_in_a_run(tmp_path):
    import shutil

    import plurigrid

    shutil.copy(MODULES / "setpoint.wat", tmp_path / "setpoint.wat")
    sha = compile_module(tmp_path / "setpoint.wat").sha256
    (tmp_path / "setpoint.toml").write_text(f'name = "setpoint"\nversion = "0.1.0"\nabi = 1\nsha256 = "{sha}"\n'
                                            'capabilities = ["set_setpoint"]\nfallback = "passive"\n')
    (tmp_path / "world.toml").write_text("""
[world]
name = "setpoint"
start = 2024-06-21T00:00:00
duration = "2h"
resolution = "15min"
[grid]
bus = [{ id = "mv", vn_kv = 20.0 }, { id = "lv", vn_kv = 0.4 }]
transformer = [{ id = "t1", hv_bus = "mv", lv_bus = "lv", sn_mva = 0.25, r_pu = 0.012, x_pu = 0.04 }]
connection = { bus = "mv" }
[market]
mechanism = "pay-as-clear"
import_price_eur_per_kwh = 0.30
export_price_eur_per_kwh = 0.08
[[participant]]
id = "home"
bus = "lv"
strategy = "module"
module = { path = "setpoint.wat" }
assets.load = { profile = { source = "bdew", slp = "h0", annual_kwh = 3800 } }
assets.battery = { capacity_kwh = 10.0, power_kw = 5.0, efficiency = 1.0, initial_soc_frac = 0.5 }
""")
    run = plurigrid.load(tmp_path / "world.toml").run()
    soc_kwh = [5.0, *run.participants["soc_kwh"]["home"]]
    charged_kw = [(after - before) / 0.25 for before, after in zip(soc_kwh, soc_kwh[1:])]
    assert charged_kw == [pytest.approx(2.0005)] * 8  # the last command, 2000.5 W, not the decided 1.5 kW
