"""`plurigrid module check|run`: exit 0 with a table, 2 with one line per problem a person must fix,
4 with one line when the module itself fails the call."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from plurigrid.cli.main import main
from plurigrid.strategies.wasm.host import compile_module

MODULES = Path(__file__).parent / "modules"


def plurigrid(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["plurigrid", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def wasm(tmp_path: Path, name: str) -> Path:
    """The test module `name`.wat compiled to `tmp_path/name.wasm`."""
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm((MODULES / f"{name}.wat").read_text()))
    return path


def manifest(module: Path, capabilities: list[str], sha256: str | None = None, fuel: int = 1_000_000) -> Path:
    path = module.with_suffix(".toml")
    digest = sha256 or compile_module(module).sha256
    path.write_text(f'name = "{module.stem}"\nversion = "1.0.0"\nsha256 = "{digest}"\n'
                    f'capabilities = {json.dumps(capabilities)}\n[limits]\nfuel = {fuel}\n')
    return path


@pytest.fixture
def observation(tmp_path: Path) -> Path:
    path = tmp_path / "obs.json"
    path.write_text(json.dumps({"abi": 1, "participant": "home03", "step": 40, "time": "2024-06-21T10:00:00+02:00",
                                "dt_h": 0.25, "load_kw": 0.41, "renewable_kw": 2.9, "ev_plugged": False}))
    return path


# --- check


def test_check_clean_module(monkeypatch, capsys):
    code, out, err = plurigrid(monkeypatch, capsys, "module", "check", MODULES / "echo.wat")
    assert code == 0, err
    assert "echo.wat: ABI 1 ok" in out and "no imports" in out


def test_check_lists_imports_and_their_capabilities(monkeypatch, capsys):
    code, out, err = plurigrid(monkeypatch, capsys, "module", "check", MODULES / "host_calls.wat")
    assert code == 0, err
    assert "plurigrid.read_meter" in out and "read_meter" in out and "plurigrid.send" in out


def test_check_unknown_import_exits_2_naming_it(monkeypatch, capsys):
    code, out, err = plurigrid(monkeypatch, capsys, "module", "check", MODULES / "unknown_import.wat")
    assert code == 2
    assert err.strip() == "plurigrid: error: unknown_import.wat: unknown import env.foo () -> ()"


def test_check_with_manifest_names_each_ungranted_import(monkeypatch, capsys, tmp_path):
    module = wasm(tmp_path, "host_calls")
    manifest(module, ["now", "log"])
    code, out, err = plurigrid(monkeypatch, capsys, "module", "check", module)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines == [f"plurigrid: error: host_calls.wasm: import plurigrid.{name} needs capability '{name}' (not granted)"
                     for name in ("read_meter", "prices", "send")]


def test_check_with_manifest_passes_and_shows_grants(monkeypatch, capsys, tmp_path):
    module = wasm(tmp_path, "kv")
    manifest(module, ["kv"])
    code, out, err = plurigrid(monkeypatch, capsys, "module", "check", module)
    assert code == 0, err
    assert "manifest" in out and "plurigrid.kv_put" in out and "yes" in out


def test_check_hash_mismatch_exits_2(monkeypatch, capsys, tmp_path):
    module = wasm(tmp_path, "echo")
    path = manifest(module, [], sha256="0" * 64)
    code, out, err = plurigrid(monkeypatch, capsys, "module", "check", module, "--manifest", path)
    assert code == 2
    assert err.strip().startswith(f"plurigrid: error: {path}: sha256: does not match echo.wasm")


def test_check_bad_abi_and_unreadable_file(monkeypatch, capsys, tmp_path):
    code, _, err = plurigrid(monkeypatch, capsys, "module", "check", MODULES / "bad_abi.wat")
    assert code == 2 and "missing export 'alloc'" in err and len(err.strip().splitlines()) == 2
    code, _, err = plurigrid(monkeypatch, capsys, "module", "check", tmp_path / "missing.wasm")
    assert code == 2 and err.strip() == f"plurigrid: error: {tmp_path / 'missing.wasm'}: cannot read: No such file or directory"


# --- run


def test_run_prints_decision_fuel_and_time(monkeypatch, capsys, observation):
    code, out, err = plurigrid(monkeypatch, capsys, "module", "run", MODULES / "fixed.wat", "--observation", observation)
    assert code == 0, err
    assert "battery_kw" in out and "1.5" in out and "fuel used" in out and "ms" in out


def test_run_json(monkeypatch, capsys, observation):
    code, out, err = plurigrid(monkeypatch, capsys, "module", "run", MODULES / "fixed.wat", "--observation", observation, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["decision"] == {"battery_kw": 1.5, "trade": True}
    assert result["fuel_used"] > 0 and result["seconds"] >= 0


@pytest.mark.parametrize("name, flags, reason", [
    ("loop", ["--fuel", "5000"], "fuel exhausted (fuel used 5,000)"),
    ("grow", ["--memory-mb", "1"], "memory limit"),
    ("loop", ["--fuel", "1000000000000", "--deadline-ms", "5"], "deadline"),
    ("not_json", [], "invalid output: not JSON"),
    ("trap", [], "trap: integer division by zero"),
])
def test_run_module_failure_exits_4_with_one_line(monkeypatch, capsys, observation, name, flags, reason):
    code, out, err = plurigrid(monkeypatch, capsys, "module", "run", MODULES / f"{name}.wat", "--observation", observation, *flags)
    assert code == 4
    assert len(err.strip().splitlines()) == 1 and f"plurigrid: {name}.wat: {reason}" in err


def test_run_with_grants_logs_and_sends(monkeypatch, capsys, observation, tmp_path):
    grants = [arg for cap in ("now", "read_meter", "prices", "log", "send") for arg in ("--grant", cap)]
    code, _, err = plurigrid(monkeypatch, capsys, "module", "run", MODULES / "host_calls.wat", "--observation", observation, *grants)
    assert code == 4 and "invalid output: not JSON" in err  # it answers raw bytes, but it did run with its grants


@pytest.mark.parametrize("args, message", [
    (["--grant", "now"], "host_calls.wat: import plurigrid.read_meter needs capability 'read_meter' (not granted)"),
    (["--grant", "clock"], "unknown capability 'clock'"),
    (["--fuel", "0"], "--fuel"),
])
def test_run_bad_grants_and_flags_exit_2(monkeypatch, capsys, observation, args, message):
    code, _, err = plurigrid(monkeypatch, capsys, "module", "run", MODULES / "host_calls.wat", "--observation", observation, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_run_bad_observation_files_exit_2(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "bad.json"
    for text, message in (("{not json", "bad.json: not JSON"), ("[1, 2]", "bad.json: expected a JSON object"),
                          ('{"battery_kw": NaN}', "NaN is not JSON"), ('{"time": "noon"}', "time: expected an ISO 8601 time")):
        bad.write_text(text)
        code, _, err = plurigrid(monkeypatch, capsys, "module", "run", MODULES / "echo.wat", "--observation", bad)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    code, _, err = plurigrid(monkeypatch, capsys, "module", "run", MODULES / "echo.wat", "--observation", tmp_path / "none.json")
    assert code == 2 and "none.json: cannot read" in err


def test_run_with_manifest_may_only_narrow_it(monkeypatch, capsys, observation, tmp_path):
    module = wasm(tmp_path, "fixed")
    path = manifest(module, ["log"], fuel=1_000)
    code, out, err = plurigrid(monkeypatch, capsys, "module", "run", module, "--observation", observation, "--fuel", "500")
    assert code == 0, err
    code, _, err = plurigrid(monkeypatch, capsys, "module", "run", module, "--observation", observation, "--fuel", "5000")
    assert code == 2 and err.strip() == f"plurigrid: error: {path}: limits.fuel: the spec asks for 5000, more than the manifest's 1000"
    code, _, err = plurigrid(monkeypatch, capsys, "module", "run", module, "--observation", observation, "--grant", "send")
    assert code == 2 and "capabilities: the spec grants 'send', which the manifest does not declare" in err


def test_module_command_is_installed():
    res = subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "module", "check", str(MODULES / "unknown_import.wat")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "unknown import env.foo" in res.stderr


def test_new_build_check_run_a_wat_module_from_the_cli(monkeypatch, capsys, tmp_path, observation):
    folder = tmp_path / "mine"
    code, out, _ = plurigrid(monkeypatch, capsys, "module", "new", "mine", "--lang", "wat", "--dir", str(folder))
    assert code == 0 and "new wat module" in out
    code, out, _ = plurigrid(monkeypatch, capsys, "module", "build", str(folder))
    assert code == 0 and "built, sha256" in out
    code, out, _ = plurigrid(monkeypatch, capsys, "module", "check", str(folder / "mine.wasm"))
    assert code == 0 and "ABI 1 ok" in out
    code, out, _ = plurigrid(monkeypatch, capsys, "module", "run", str(folder / "mine.wasm"),
                             "--observation", str(observation), "--json")
    assert code == 0, out
    code, _, err = plurigrid(monkeypatch, capsys, "module", "new", "mine", "--dir", str(folder))
    assert code == 2 and err.strip().endswith("already exists and is not empty: choose a new folder")
