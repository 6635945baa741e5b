"""Results depend only on inputs: every library world writes the same run folder twice, byte for byte,
while the machine is loaded (nothing a slow machine does may change a result); no Parquet file
holds a wall-clock value; the seed changes a world's results exactly when the world has randomness,
and docs/microworld.md names the worlds that have none; a module call that only the wall-clock
backstop stops makes the run say it is not reproducible, in summary.json and on the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import wasmtime

import plurigrid
from plurigrid.cli.main import main
from plurigrid.microworld.loader import library_worlds
from plurigrid.strategies.wasm.host import compile_module

HOURS = 6  # of each run under load
SEED_HOURS = 24  # of each run with another seed: a whole day, where a world's randomness shows
LIBRARY = sorted(library_worlds())
# each world under its own mechanism, and the OPF clearing (the one with a solver) on two of them
UNDER_LOAD = [(world, None) for world in LIBRARY] + [("sandboxed-strategies", "opf"), ("simbench-rural1", "opf")]
PER_STEP_PARQUET = {"timeseries.parquet", "participants.parquet", "trades.parquet", "grid_buses.parquet",
                    "grid_branches.parquet"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "microworld.md"
SEED_FREE_MARK = "<!-- seed-free library worlds -->"


@pytest.fixture(scope="module")
def cpu_load():
    """A spinning process on every core for the tests that use it (killed afterwards)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(2, os.cpu_count() or 2))]
    yield
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder by its relative path; summary.json without its wall-clock `timings_s`."""
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    summary = json.loads(files["summary.json"])
    assert set(summary["timings_s"]) >= {"whole_run"}  # what is left out is there, and is timings
    files["summary.json"] = json.dumps({**summary, "timings_s": None}, sort_keys=True).encode()
    return files


@pytest.mark.parametrize("world, mechanism", UNDER_LOAD)
def test_a_library_world_writes_the_same_folder_twice_under_cpu_load(world, mechanism, cpu_load, tmp_path):
    runs = [plurigrid.load(world, hours=HOURS, mechanism=mechanism).run(out=tmp_path / name) for name in ("a", "b")]
    assert all(run.summary["reproducible"] and run.summary["host_faults"] == [] for run in runs)
    a, b = (folder_bytes(run.folder) for run in runs)
    assert sorted(a) == sorted(b)
    assert {"summary.json", "report.html", "settlements.parquet", "ledger/blocks.jsonl"} | PER_STEP_PARQUET <= set(a)
    for name in a:
        if name.endswith(".parquet"):  # each opens as a table of the same shape (and below, is the same bytes)
            tables = [pq.read_table(run.folder / name) for run in runs]
            assert tables[0].schema == tables[1].schema and tables[0].num_rows == tables[1].num_rows, name
        assert a[name] == b[name], name


# --- the seed


def seed_free_worlds() -> dict[str, str]:
    """The library worlds docs/microworld.md lists as having no randomness, with the reason it gives."""
    text = DOCS.read_text(encoding="utf-8")
    assert SEED_FREE_MARK in text, f"{DOCS.name} has no list of seed-free worlds"
    listed = text.split(SEED_FREE_MARK, 1)[1].strip().split("\n\n", 1)[0]
    return dict(re.findall(r"^- `([^`]+)`: (.+)$", listed, flags=re.MULTILINE))


def results(run: plurigrid.Run) -> dict[str, bytes]:
    """What a run produced: its Parquet tables and ledger blocks (summary.json also states the seed)."""
    return {name: data for name, data in folder_bytes(run.folder).items()
            if name.endswith(".parquet") or name == "ledger/blocks.jsonl"}


@pytest.mark.parametrize("world", LIBRARY)
def test_the_seed_changes_a_library_world_unless_the_docs_list_it_as_seed_free(world, tmp_path):
    seed = plurigrid.load(world).compiled.seed
    # under pay-as-clear, where every limit price counts (no mechanism draws anything itself)
    a, b = (results(plurigrid.load(world, hours=SEED_HOURS, seed=s, mechanism="pay-as-clear").run(out=tmp_path / str(s)))
            for s in (seed, seed + 1))
    documented = seed_free_worlds()
    assert set(documented) <= set(LIBRARY) and all(len(why) > 20 for why in documented.values())
    if a == b:
        assert world in documented, f"the seed changes nothing in {world}: docs/microworld.md must list it and say why"
    else:
        assert world not in documented, f"{world} is listed as seed-free, but its seed changes its results"


# --- a call stopped by the wall-clock backstop

# Lists a directory of its granted one over and over with WASI's fd_readdir. WASI's file functions
# run in wasmtime's own code, which fuel counts by the call (one unit), while a listing of 500
# entries takes milliseconds: fuel does not bound this module's time, and only the backstop stops it.
SLOW_LISTER = """(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "many")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "decide") (param i32 i32) (result i64)
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4)
      (i32.const 2) (i64.const 16384) (i64.const 16384) (i32.const 0) (i32.const 200)))
    (loop $again
      (drop (call $fd_readdir (i32.load (i32.const 200)) (i32.const 65536) (i32.const 65536) (i64.const 0) (i32.const 216)))
      (br $again))
    (i64.const 0)))"""


def slow_lister_world(tmp_path: Path) -> Path:
    """A one-interval world whose participant `lister` runs SLOW_LISTER (only the 1 s backstop stops it)."""
    many = tmp_path / "data" / "many"
    many.mkdir(parents=True)
    for i in range(500):
        (many / f"entry{i:03d}").touch()
    module = tmp_path / "lister.wasm"
    module.write_bytes(bytes(wasmtime.wat2wasm(SLOW_LISTER)))
    module.with_suffix(".toml").write_text(
        f'name = "lister"\nversion = "1"\nsha256 = "{compile_module(module).sha256}"\ncapabilities = ["wasi", "wasi-dir"]\n'
        "[limits]\nfuel = 100000\n")  # its backstop is the 1 s floor; the fuel buys over 10,000 listings
    spec = {
        "world": {"name": "slow", "start": "2024-06-21T00:00:00", "duration": "15min", "resolution": "15min"},
        "grid": {"bus": [{"id": "b", "vn_kv": 0.4}], "connection": {"bus": "b"}},
        "market": {"mechanism": "pay-as-clear"},
        "participant": [
            {"id": "lister", "bus": "b", "strategy": "module",
             "module": {"path": str(module), "grants": ["wasi", f"wasi-dir:{tmp_path / 'data'}"]},
             "assets": {"load": {"profile": {"source": "constant", "p_kw": 1.0}}}},
            {"id": "neighbour", "bus": "b", "strategy": "truthful", "assets": {"pv": {"kwp": 5.0}}},
        ],
    }
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(spec))
    return path


def test_a_call_only_the_backstop_stops_is_a_host_fault_that_makes_the_run_not_reproducible(tmp_path, monkeypatch, capsys):
    path = slow_lister_world(tmp_path)
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["plurigrid", "run", str(path), "--out", str(out), "--quiet"])
    with pytest.raises(SystemExit) as exited:
        main()  # the real entry point, in-process
    stderr = capsys.readouterr().err
    assert exited.value.code == 0, stderr
    warning = [line for line in stderr.splitlines() if "warning" in line]
    assert warning == ["plurigrid: warning: this run is not reproducible: 1 module call(s) ran past the wall-clock "
                       "backstop (first: step 0, lister); summary.json lists them under host_faults"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reproducible"] is False
    [fault] = summary["host_faults"]
    assert (fault["step"], fault["participant"], fault["module"]) == (0, "lister", "lister")
    assert "decide ran past the wall-clock backstop of 1,000 ms" in fault["fault"]
    assert summary["modules"]["lister"]["host_faults"] == 1
    assert summary["modules"]["lister"]["strategy_failures"] == 0  # not the module's failure
    log = (out / "modules.log").read_text()
    assert "host fault" in log and "fallback passive; the run is not reproducible" in log
