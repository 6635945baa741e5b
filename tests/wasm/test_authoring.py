"""Module authoring: every template builds into an ABI-1 module that decides as it says, the example
strategies decide as documented, and rebuilding an example reproduces the committed .wasm.

The WAT toolchain is always present (the wasmtime package). C must build where
PLURIGRID_REQUIRE_TOOLCHAINS=1 (CI installs clang); elsewhere, and for Rust and AssemblyScript,
a missing toolchain skips with the reason `missing_toolchain` gives.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from pathlib import Path

import pytest
import wasmtime

from plurigrid.strategies.wasm.authoring import (
    LANGUAGES,
    AuthoringError,
    build_module,
    missing_toolchain,
    new_module,
)
from plurigrid.strategies.wasm.manifest import load_manifest, manifest_path_for

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "plurigrid" / "microworld" / "library" / "modules"
ARBITRAGE = EXAMPLES / "battery-arbitrage"
DEMAND_RESPONSE = EXAMPLES / "price-capped-demand-response"
DEFAULT_FUEL = 10_000_000  # the host's default per-call limit (docs/modules.md)

# 24 h at 15 min: import 0.10 .. 1.05 EUR/kWh; its 30 % quantile is 0.385, its 70 % quantile 0.765.
FORECAST = {"import_eur_per_kwh": [round(0.10 + 0.01 * k, 2) for k in range(96)], "export_eur_per_kwh": [0.08] * 96}

OBSERVATION = {
    "abi": 1, "participant": "home03", "step": 40, "time": "2024-06-21T10:00:00+02:00", "dt_h": 0.25,
    "load_kw": 0.41, "renewable_kw": 2.9, "flexible_frac": 0.2, "max_delay_steps": 12,
    "backlog_kwh": 0.0, "backlog_age_steps": 0,
    "soc_kwh": 6.5, "battery_kwh": 13.5, "battery_kw": 5.0, "battery_eff": 0.95, "battery_min_kwh": 0.0,
    "ev_remaining_kwh": 0.0, "ev_kw": 11.0, "ev_eff": 0.92, "ev_plugged": False, "ev_steps_left": 34,
    "indoor_c": None, "value_eur_per_kwh": 1.0, "marginal_cost_eur_per_kwh": 0.0,
    "import_eur_per_kwh": 0.28, "export_eur_per_kwh": 0.08, "last_price_eur_per_kwh": 0.21,
}


def observe(**changes: object) -> dict:
    return {**OBSERVATION, **changes}


def require_toolchain(lang: str) -> None:
    """Skips (or, for C under PLURIGRID_REQUIRE_TOOLCHAINS=1, fails) when `lang` cannot be built here."""
    missing = missing_toolchain(lang)
    if missing is None:
        return
    if lang == "c" and os.environ.get("PLURIGRID_REQUIRE_TOOLCHAINS") == "1":
        pytest.fail(f"PLURIGRID_REQUIRE_TOOLCHAINS=1 but {missing}")
    pytest.skip(missing)


def decide(wasm: bytes, observation: dict, prices: dict | None = FORECAST) -> tuple[dict, int]:
    """Runs one `decide` call the way the host does (alloc, write, call, read); returns the decision
    and the fuel it used. `plurigrid.prices` answers `prices`, or -1 (no forecast) when it is None."""
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    store.set_fuel(DEFAULT_FUEL)
    payload = json.dumps(prices).encode() if prices is not None else b""

    def host_prices(caller: wasmtime.Caller, out_ptr: int, out_cap: int) -> int:
        if prices is None:
            return -1
        if out_cap < len(payload):
            return -len(payload)
        caller["memory"].write(caller, payload, out_ptr)
        return len(payload)

    linker = wasmtime.Linker(engine)
    i32 = wasmtime.ValType.i32()
    linker.define_func("plurigrid", "prices", wasmtime.FuncType([i32, i32], [i32]), host_prices, access_caller=True)
    exports = linker.instantiate(store, wasmtime.Module(engine, wasm)).exports(store)
    data = json.dumps(observation).encode()
    ptr = exports["alloc"](store, len(data))
    exports["memory"].write(store, data, ptr)
    packed = exports["decide"](store, ptr, len(data)) & 0xFFFF_FFFF_FFFF_FFFF
    out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
    decision = json.loads(bytes(exports["memory"].read(store, out_ptr, out_ptr + out_len)))
    return decision, DEFAULT_FUEL - store.get_fuel()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_template_builds_into_a_self_consumption_module(lang: str, tmp_path: Path) -> None:
    if lang != "wat":
        require_toolchain(lang)
    project = new_module("my-strategy", lang, tmp_path / "my-strategy")
    wasm_path = build_module(project)
    assert wasm_path == project / "my-strategy.wasm"
    module = wasmtime.Module(wasmtime.Engine(), wasm_path.read_bytes())
    assert {"memory", "alloc", "decide"} <= {export.name for export in module.exports}
    assert list(module.imports) == []  # the template needs no capability
    manifest = load_manifest(project / "my-strategy.toml")  # as the host reads it
    assert manifest.name == "my-strategy" and manifest.sha256 == sha256(wasm_path) and manifest.capabilities == ()

    # PV surplus 2.49 kW fits the battery's room: stored; bid min(value, import), ask max(cost, export).
    surplus, _ = decide(wasm_path.read_bytes(), observe())
    assert surplus["battery_kw"] == pytest.approx(2.49)
    assert surplus["bid_eur_per_kwh"] == pytest.approx(0.28) and surplus["ask_eur_per_kwh"] == pytest.approx(0.08)
    assert surplus["trade"] is True
    # a 3 kW deficit with 0.1 kWh stored: discharge is capped by the energy left (0.1 * 0.95 / 0.25 kW).
    deficit, _ = decide(wasm_path.read_bytes(), observe(load_kw=3.5, renewable_kw=0.5, soc_kwh=0.1))
    assert deficit["battery_kw"] == pytest.approx(-0.38)


def test_new_module_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(AuthoringError, match="already exists and is not empty"):
        new_module("ok", "wat", tmp_path / "taken")
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(("name", "lang", "message"), [
    ("Bad Name", "wat", "invalid module name"),
    ("ok", "cobol", "unknown module language 'cobol'"),
])
def test_new_module_rejects_bad_names_and_languages(name: str, lang: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(AuthoringError, match=message):
        new_module(name, lang, tmp_path / "project")


def test_compiler_error_is_one_line_with_its_location(tmp_path: Path) -> None:
    project = new_module("broken", "wat", tmp_path / "broken")
    source = project / "strategy.wat"
    source.write_text(source.read_text().replace("(global.set $out_len (i32.const 0))", "(global.sett $out_len)"))
    with pytest.raises(AuthoringError) as raised:
        build_module(project)
    message = str(raised.value)
    assert "\n" not in message and "strategy.wat:" in message and "failed" in message
    assert not (project / "broken.wasm").exists()


def test_c_compiler_error_names_the_line(tmp_path: Path) -> None:
    require_toolchain("c")
    project = new_module("broken", "c", tmp_path / "broken")
    source = project / "strategy.c"
    source.write_text(source.read_text().replace("out_begin();", "out_begin(); out_number(\"x\", undeclared_name);"))
    with pytest.raises(AuthoringError, match=r"strategy\.c:\d+:\d+: error:.*undeclared_name") as raised:
        build_module(project)
    assert "\n" not in str(raised.value)


def test_build_needs_a_manifest_named_after_the_module_and_sources(tmp_path: Path) -> None:
    with pytest.raises(AuthoringError, match="no manifest NAME.toml"):
        build_module(tmp_path)
    (tmp_path / "other.toml").write_text('name = "empty"\n')
    with pytest.raises(AuthoringError, match="must match the file name, empty.toml"):
        build_module(tmp_path)
    (tmp_path / "other.toml").rename(tmp_path / "empty.toml")
    with pytest.raises(AuthoringError, match="no module sources"):
        build_module(tmp_path)


def test_build_adds_sha256_to_a_manifest_without_one(tmp_path: Path) -> None:
    project = new_module("plain", "wat", tmp_path / "plain")
    manifest = project / "plain.toml"
    manifest.write_text('name = "plain"\nversion = "1.0.0"\n\n[limits]\nfuel = 1000\n')
    wasm_path = build_module(project)
    written = tomllib.loads(manifest.read_text())
    assert written["sha256"] == sha256(wasm_path) and written["limits"] == {"fuel": 1000}


def test_build_refuses_a_manifest_the_host_would_refuse(tmp_path: Path) -> None:
    project = new_module("greedy", "wat", tmp_path / "greedy")
    manifest = project / "greedy.toml"
    manifest.write_text(manifest.read_text().replace("capabilities = []", 'capabilities = ["root"]'))
    with pytest.raises(AuthoringError, match="greedy.toml: capabilities:"):
        build_module(project)
    assert not (project / "greedy.wasm").exists()


@pytest.mark.parametrize("example", [ARBITRAGE, DEMAND_RESPONSE], ids=lambda p: p.name)
def test_example_manifest_matches_its_committed_module(example: Path) -> None:
    wasm_path = example / f"{example.name}.wasm"
    manifest = load_manifest(manifest_path_for(wasm_path))  # where the host finds it
    assert manifest.sha256 == sha256(wasm_path)
    module = wasmtime.Module(wasmtime.Engine(), wasm_path.read_bytes())
    assert sorted(f"{i.module}.{i.name}" for i in module.imports) == [f"plurigrid.{c}" for c in manifest.capabilities]


@pytest.mark.parametrize(("example", "lang"), [(DEMAND_RESPONSE, "wat"), (ARBITRAGE, "c")], ids=["wat", "c"])
def test_rebuilding_an_example_reproduces_the_committed_wasm(example: Path, lang: str, tmp_path: Path) -> None:
    if lang != "wat":
        require_toolchain(lang)
    copy = shutil.copytree(example, tmp_path / example.name)
    committed = sha256(example / f"{example.name}.wasm")
    (copy / f"{example.name}.wasm").unlink()
    assert sha256(build_module(copy)) == committed


class TestBatteryArbitrage:
    wasm = (ARBITRAGE / "battery-arbitrage.wasm").read_bytes()

    def test_charges_at_full_power_in_a_cheap_hour(self) -> None:
        decision, fuel = decide(self.wasm, observe(import_eur_per_kwh=0.12, renewable_kw=0.0, load_kw=1.0))
        assert decision["battery_kw"] == pytest.approx(5.0)
        assert decision["bid_eur_per_kwh"] == pytest.approx(0.12) and decision["ask_eur_per_kwh"] == pytest.approx(0.08)
        assert decision["trade"] is True
        assert fuel < DEFAULT_FUEL / 10

    def test_discharges_only_its_own_deficit_in_a_dear_hour(self) -> None:
        deficit, _ = decide(self.wasm, observe(import_eur_per_kwh=0.90, renewable_kw=0.2, load_kw=1.4))
        assert deficit["battery_kw"] == pytest.approx(-1.2)
        surplus, _ = decide(self.wasm, observe(import_eur_per_kwh=0.90))
        assert surplus["battery_kw"] == pytest.approx(0.0)  # keeps its charge for dear hours, sells the PV

    def test_self_consumes_between_the_quantiles_and_without_a_forecast(self) -> None:
        middle, _ = decide(self.wasm, observe(import_eur_per_kwh=0.50))
        assert middle["battery_kw"] == pytest.approx(2.49)
        blind, _ = decide(self.wasm, observe(import_eur_per_kwh=0.12), prices=None)
        assert blind["battery_kw"] == pytest.approx(2.49)

    def test_bids_its_value_when_below_the_import_price(self) -> None:
        decision, _ = decide(self.wasm, observe(value_eur_per_kwh=0.2, marginal_cost_eur_per_kwh=0.1))
        assert decision["bid_eur_per_kwh"] == pytest.approx(0.2) and decision["ask_eur_per_kwh"] == pytest.approx(0.1)


class TestPriceCappedDemandResponse:
    wasm = (DEMAND_RESPONSE / "price-capped-demand-response.wasm").read_bytes()
    waiting = {"load_kw": 2.0, "flexible_frac": 0.2, "backlog_kwh": 0.5, "backlog_age_steps": 3}

    def test_shifts_the_flexible_share_above_the_cap(self) -> None:
        decision, _ = decide(self.wasm, observe(import_eur_per_kwh=0.35, **self.waiting))
        assert decision == pytest.approx({"shift_kw": 0.4, "serve_kw": 0.0})

    def test_serves_the_backlog_below_the_cap(self) -> None:
        decision, _ = decide(self.wasm, observe(import_eur_per_kwh=0.25, **self.waiting))
        assert decision == pytest.approx({"shift_kw": 0.0, "serve_kw": 2.0})

    def test_serves_a_due_backlog_even_above_the_cap(self) -> None:
        decision, _ = decide(self.wasm, observe(import_eur_per_kwh=0.35, **{**self.waiting, "backlog_age_steps": 11}))
        assert decision == pytest.approx({"shift_kw": 0.4, "serve_kw": 2.0})


@pytest.mark.parametrize("example", [ARBITRAGE, DEMAND_RESPONSE], ids=lambda p: p.name)
def test_keys_inside_nested_values_are_not_the_participants_own(example: Path) -> None:
    wasm = (example / f"{example.name}.wasm").read_bytes()
    plain, _ = decide(wasm, observe(import_eur_per_kwh=0.35))
    inbox = [{"from": f"home{k:02d}", "load_kw": 99.0, "import_eur_per_kwh": 0.01} for k in range(3)]
    nested, _ = decide(wasm, {"inbox": inbox, **observe(import_eur_per_kwh=0.35)})
    assert nested == plain


@pytest.mark.parametrize("example", [ARBITRAGE, DEMAND_RESPONSE], ids=lambda p: p.name)
def test_an_observation_larger_than_the_input_buffer_still_decides(example: Path) -> None:
    """A long inbox (last, as the host writes it) makes the observation larger than the modules'
    static input buffer (64 KiB): `alloc` grows memory, and the decision stays within the fuel limit."""
    wasm = (example / f"{example.name}.wasm").read_bytes()
    plain, _ = decide(wasm, observe(import_eur_per_kwh=0.35))
    inbox = [{"from": f"home{k:04d}", "text": "x" * 100} for k in range(1000)]
    crowded, _ = decide(wasm, {**observe(import_eur_per_kwh=0.35), "inbox": inbox})
    assert len(json.dumps(inbox)) > 2 * 65536
    assert crowded == plain
