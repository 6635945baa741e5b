"""The command-line contract: library worlds run, --json prints summary.json, errors exit 2 with one line."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import plurigrid as plurigrid_api
from plurigrid.microworld.loader import library_worlds

LIBRARY = ["hello", "offgrid-battery-sharing", "residential", "commercial", "datacenter", "simbench-rural1",
           "simbench-semiurb4", "congested-feeder"]
KPIS = {"total_cost", "baseline_cost", "savings_frac", "energy_traded_kwh", "self_sufficiency", "self_consumption",
        "peak_import_kw", "max_line_loading_pct", "voltage_violations", "pf_nonconverged_steps", "losses_kwh", "welfare"}


def plurigrid(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plurigrid.cli.main", *args], capture_output=True, text=True, cwd=cwd)


def test_list_shows_every_library_world():
    assert set(LIBRARY) <= set(library_worlds())
    out = plurigrid("list").stdout
    for name in LIBRARY:
        assert name in out


@pytest.mark.parametrize("world", LIBRARY)
def test_library_world_runs_from_cli(world, tmp_path):
    res = plurigrid("run", world, "--json", "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["microworld"] == world
    assert set(summary["kpis"]) >= KPIS
    assert summary["balance"] == {"energy_residual_wh": 0, "money_residual_micro": 0}
    stages = {"observe", "decide", "clear", "powerflow", "settle", "whole_run"}
    assert set(summary["timings_s"]) == stages | ({"opf_solve"} if summary["mechanism"] == "opf" else set())
    assert summary["kpis"]["pf_nonconverged_steps"] == 0
    run = tmp_path / "run"
    for name in ("summary.json", "timeseries.parquet", "participants.parquet", "settlements.parquet", "trades.parquet",
                 "grid_buses.parquet", "grid_branches.parquet", "report.html"):
        assert (run / name).is_file(), name
    assert len(pd.read_parquet(run / "timeseries.parquet")) == summary["steps"]
    html = (run / "report.html").read_text()
    assert "<script>" in html and "cdn." not in html.split("</script>", 1)[1]  # opens offline
    # the Python API writes the same folder, byte for byte but for the wall-clock timings
    api = plurigrid_api.load(world).run(out=tmp_path / "api").folder
    files = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(api) for p in api.rglob("*") if p.is_file())
    for name in files:
        a, b = (run / name).read_bytes(), (api / name).read_bytes()
        if name == Path("summary.json"):
            a, b = (json.dumps({**json.loads(x), "timings_s": None}) for x in (a, b))
        assert a == b, name


def test_table_output_and_overrides(tmp_path):
    res = plurigrid("run", "hello", "--hours", "6", "--mechanism", "pay-as-bid", "--seed", "3", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert "pay-as-bid" in res.stdout and "6 steps" in res.stdout
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["mechanism"], summary["steps"], summary["seed"]) == ("pay-as-bid", 6, 3)


@pytest.mark.parametrize("args, message", [
    (["run", "hello", "--mechanism", "lottery"], "--mechanism: unknown mechanism 'lottery'"),
    (["run", "hello", "--hours", "-1"], "--hours: must be > 0"),
    (["run", "no-such-world"], "no-such-world: not a file and not a library microworld"),
    (["run", "missing.toml"], "missing.toml: no such file"),
    (["run", "hello", "--frobnicate"], "No such option: --frobnicate"),
    (["run", "hello", "--seed", "many"], "(plurigrid run): Invalid value for '--seed'"),
])
def test_user_errors_exit_2_with_one_line(args, message, tmp_path):
    res = plurigrid(*args, cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert message in lines[0]
    assert not (tmp_path / "runs").exists()


def test_efficiency_compares_the_run_with_the_opf_optimum(tmp_path):
    out = tmp_path / "run"
    result = plurigrid("run", "residential", "--efficiency", "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    welfare = json.loads(result.stdout)["mechanism_properties"]["welfare"]
    assert welfare["welfare"] == pytest.approx(welfare["efficiency"] * welfare["optimal_welfare"], rel=1e-6)
    assert 0.9 < welfare["efficiency"] < 1.0  # residential's truthful homes have flexibility the heuristic leaves unused
    assert json.loads((out / "summary.json").read_text())["mechanism_properties"]["welfare"] == welfare


def test_version_is_the_installed_distribution():
    from importlib.metadata import version

    res = plurigrid("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"plurigrid {version('plurigrid')}"
