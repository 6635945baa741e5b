"""Sweeps: a point is a deterministic run, a Dask cluster gives the serial table, a stopped sweep resumes, a failing
point is recorded without stopping the rest, and a bad sweep file is one line."""

import json
import subprocess
from importlib import resources
import sys

import pandas as pd
import pytest

import plurigrid
from plurigrid.microworld.loader import SpecError
from plurigrid.sweeps import TIMING_COLUMNS
from plurigrid.sweeps.points import apply, expand
from plurigrid.sweeps.runner import Task, tasks_of
from plurigrid.sweeps.spec import read_sweep, sweep_from_data

FIFTY = {
    "sweep": {"name": "fifty", "world": "residential", "hours": 12, "seed": 3, "ledger": True},
    "axes": {"battery_share": [0.0, 0.25, 0.5, 0.75, 1.0], "mechanism": ["pay-as-clear", "tariff"]},
    "random": {"samples": 5, "pv_share": {"uniform": [0.0, 1.0]}, "tariff_scale": {"uniform": [0.8, 1.25]}},
}


def test_fifty_points_on_a_two_worker_dask_cluster_equal_a_serial_run(tmp_path):
    serial = plurigrid.sweep(FIFTY, serial=True, out=tmp_path / "serial")
    dask = plurigrid.sweep(FIFTY, workers=2, out=tmp_path / "dask")
    assert len(serial) == 50 and (serial["status"] == "ok").all(), serial["error"].dropna().head()
    pd.testing.assert_frame_equal(serial.drop(columns=list(TIMING_COLUMNS)), dask.drop(columns=list(TIMING_COLUMNS)))
    assert serial["ledger_state_root"].nunique() == 50  # every point a different run, each committed to its ledger
    on_disk = pd.read_parquet(tmp_path / "dask" / "sweep.parquet")
    pd.testing.assert_frame_equal(on_disk.drop(columns=list(TIMING_COLUMNS)), dask.drop(columns=list(TIMING_COLUMNS)))
    report = (tmp_path / "dask" / "report.html").read_text()
    assert "KPIs against battery_share" in report and "Plotly.newPlot" in report
    # each combination of the axes is crossed with the same five draws
    assert serial.groupby(["battery_share", "mechanism"])["pv_share"].apply(tuple).nunique() == 1


def test_a_stopped_sweep_resumes_and_runs_only_what_is_missing(tmp_path):
    spec = {"sweep": {"world": "hello", "seed": 1}, "axes": {"market.fee_eur_per_kwh": [0.0, 0.01, 0.02, 0.03]}}
    first = plurigrid.sweep(spec, serial=True, out=tmp_path)
    (tmp_path / "points" / f"{first.index[2]}.json").unlink()
    (tmp_path / "points" / f"{first.index[3]}.json").write_text("{cut short")  # a crash while writing
    seen = []
    again = plurigrid.sweep(spec, serial=True, out=tmp_path, progress=lambda done, total, row: seen.append((done, row)))
    assert seen[0] == (2, {}) and [row["point"] for _, row in seen[1:]] == list(first.index[2:])
    pd.testing.assert_frame_equal(first.drop(columns=list(TIMING_COLUMNS)), again.drop(columns=list(TIMING_COLUMNS)))


def test_a_failing_point_is_recorded_and_the_sweep_goes_on_on_a_running_cluster(tmp_path):
    from distributed import LocalCluster

    spec = {"sweep": {"world": "hello"}, "axes": {"market.fee_eur_per_kwh": [0.01, -1.0, 0.02]}}
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:  # as a real cluster's scheduler
        table = plurigrid.sweep(spec, scheduler=cluster.scheduler_address, out=tmp_path)
    assert table["status"].tolist() == ["ok", "failed", "ok"]
    assert table["error"].iloc[1] == "hello: market.fee_eur_per_kwh: must be >= 0"
    assert table["total_cost"].iloc[[0, 2]].notna().all() and pd.isna(table["total_cost"].iloc[1])


def test_points_are_every_combination_crossed_with_seeded_draws():
    spec = sweep_from_data({"sweep": {"world": "residential", "seed": 5}, "axes": {"mechanism": ["tariff", "pay-as-clear"]},
                            "random": {"samples": 3, "battery_share": {"choice": [0.0, 1.0]}, "world.seed": {"integers": [1, 9]}}})
    points = expand(spec)
    assert len(points) == 6 and [p["mechanism"] for p in points] == ["tariff"] * 3 + ["pay-as-clear"] * 3
    assert points[:3] == [{k: v for k, v in p.items() if k != "mechanism"} | {"mechanism": "tariff"} for p in points[3:]]
    assert points == expand(spec)  # seeded
    assert all(1 <= p["world.seed"] <= 9 for p in points)
    ids = [t.id for t in tasks_of(spec)]
    assert len(set(ids)) == 6 and ids == [t.id for t in tasks_of(spec)]


def _residential_data() -> dict:
    from plurigrid.microworld.loader import parse_text, resolve

    name, text, _ = resolve("residential")
    return parse_text(name, text)


def test_asset_shares_nest_and_strategy_mix_splits_the_participants():
    task = Task("x", {}, "residential", None, 7, False, {"battery": {"capacity_kwh": 9.0, "power_kw": 4.0}, "pv": {"kwp": 3.0}})
    owners = {}
    for share in (0.25, 0.5, 1.0):
        data = apply(_residential_data(), {"battery_share": share, "pv_share": 0.0}, task)
        owners[share] = {p["id"] for p in data["participant"] if "battery" in p["assets"]}
        assert len(owners[share]) == round(share * 12)
        assert not any("pv" in p["assets"] for p in data["participant"])
        gained = [p for p in data["participant"] if p["id"] in owners[share] and p["id"] in ("home02", "home06")]
        assert all(p["assets"]["battery"] == {"capacity_kwh": 9.0, "power_kw": 4.0} and p["strategy"] != "passive" for p in gained)
    assert owners[0.25] < owners[0.5] < owners[1.0]
    data = apply(_residential_data(), {"strategy_mix": {"passive": 0.5, "truthful": 0.25, "battery-arbitrage": 0.25}}, task)
    counts = pd.Series([p["strategy"] for p in data["participant"]]).value_counts().to_dict()
    assert counts == {"passive": 6, "truthful": 3, "battery-arbitrage": 3}


def test_a_sweep_over_worlds_and_simbench_grids(tmp_path):
    table = plurigrid.sweep({"sweep": {"world": "simbench-rural1", "hours": 2},
                             "axes": {"simbench": ["1-LV-rural1--0-sw", "1-LV-semiurb4--0-sw"], "battery_share": [0.0, 0.5]}},
                            serial=True)
    assert (table["status"] == "ok").all(), table["error"].tolist()
    assert table.groupby("simbench")["peak_import_kw"].nunique().to_dict() == {"1-LV-rural1--0-sw": 2, "1-LV-semiurb4--0-sw": 2}
    worlds = plurigrid.sweep({"sweep": {"world": "hello", "hours": 2}, "axes": {"world": ["hello", "residential"]}}, serial=True)
    assert worlds["world"].tolist() == ["hello", "residential"] and worlds["status"].eq("ok").all()


@pytest.mark.parametrize(("data", "message"), [
    ({"sweep": {"world": "residential"}, "axes": {"batery_share": [0.5]}},
     "s.toml: axes: unknown parameter 'batery_share'; expected one of world, simbench, mechanism, strategy_mix, "
     "battery_share, pv_share, tariff_scale, outage, or a dotted path into world, grid, market (such as market.fee_eur_per_kwh)"),
    ({"sweep": {"world": "residential"}}, "s.toml: a sweep needs [axes], [random] or both"),
    ({"sweep": {"world": "residential"}, "random": {"samples": 2, "pv_share": {"uniform": [1.0, 0.0]}}},
     "s.toml: random.pv_share: expected [low, high] with low <= high, got [1.0, 0.0]"),
    ({"sweep": {"world": "residential"}, "axes": {"mechanism": []}},
     "s.toml: axes.mechanism: needs at least 1 item(s)"),
    ({"sweep": {"world": "residential"}, "random": {"samples": 2, "pv_share": {"uniform": [0.0, 1.0], "choice": [1]}}},
     "s.toml: random.pv_share: expected exactly one of uniform = [low, high], integers = [low, high], choice = [...]"),
])
def test_a_bad_sweep_file_is_one_line(tmp_path, data, message):
    import tomli_w

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(SpecError) as err:
        read_sweep(path)
    assert str(err.value) == message


def test_cli_sweep_writes_the_folder_and_refuses_bad_input(tmp_path):
    (tmp_path / "s.toml").write_text('[sweep]\nworld = "hello"\nhours = 2\n[axes]\nmechanism = ["tariff", "pay-as-clear", "opf"]\n')
    cli = [sys.executable, "-m", "plurigrid.cli.main", "sweep"]
    res = subprocess.run([*cli, str(tmp_path / "s.toml"), "--serial", "--json", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["mechanism"] for r in rows] == ["tariff", "pay-as-clear", "opf"] and all(r["status"] == "ok" for r in rows)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"points", "sweep.parquet", "report.html", "sweep.json"}
    for args, line in ((["--serial", "--workers", "2"], "plurigrid: error: --serial runs in this process; it takes neither "
                                                          "--workers nor --scheduler"),
                       (["--workers", "0"], "plurigrid: error: --workers: expected at least 1, got 0"),
                       (["--scheduler", "tcp://127.0.0.1:9"], "plurigrid: error: --scheduler: cannot reach a Dask scheduler at "
                                                               "tcp://127.0.0.1:9")):
        res = subprocess.run([*cli, str(tmp_path / "s.toml"), *args], capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.strip().startswith(line), res.stderr
    res = subprocess.run([*cli, str(tmp_path / "nope.toml")], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip() == f"plurigrid: error: {tmp_path / 'nope.toml'}: no such file"


def test_tariff_scale_and_outage_change_the_world_as_named():
    task = Task("x", {}, "residential", None, 0, False, {"battery": {}, "pv": {}})
    base = _residential_data()
    event = {"kind": "line_outage", "line": "l23", "at": "18h", "duration": "2h"}
    data = apply(_residential_data(), {"tariff_scale": 1.5, "outage": [event], "market.fee_eur_per_kwh": 0.03}, task)
    assert data["market"]["import_price_eur_per_kwh"] == [round(p * 1.5, 9) for p in base["market"]["import_price_eur_per_kwh"]]
    assert data["event"] == [*base.get("event", []), event] and data["market"]["fee_eur_per_kwh"] == 0.03
    table = plurigrid.sweep({"sweep": {"world": "residential"}, "axes": {"outage": [[], [event]]}}, serial=True)
    assert table["outage"].tolist() == ["[]", '[{"at":"18h","duration":"2h","kind":"line_outage","line":"l23"}]']
    assert table["status"].eq("ok").all() and table["losses_kwh"].nunique() == 2  # the outage changes the flows


def test_worlds_are_read_relative_to_the_sweep_file_and_a_missing_one_is_refused_up_front(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.toml").write_text(resources.files("plurigrid.microworld.library").joinpath("hello.toml").read_text())
    (tmp_path / "sub" / "s.toml").write_text('[sweep]\nworld = "mine.toml"\nhours = 1\n[axes]\nworld = ["mine.toml", "hello"]\n')
    table = plurigrid.sweep(tmp_path / "sub" / "s.toml", serial=True)
    assert table["world"].tolist() == ["mine.toml", "hello"] and table["status"].eq("ok").all()
    assert table["total_cost"].nunique() == 1  # the same world, found by its path and by its library name
    (tmp_path / "sub" / "t.toml").write_text('[sweep]\nworld = "hello"\n[axes]\nworld = ["hello", "gone.toml"]\n')
    with pytest.raises(SpecError, match=r"^t.toml: axes.world\[1\]: 'gone.toml': no such file$"):
        plurigrid.sweep(tmp_path / "sub" / "t.toml", serial=True)


def test_a_parameter_of_mixed_kinds_is_a_json_text_column_and_huge_sweeps_are_refused(tmp_path):
    hourly = [0.3] * 24
    table = plurigrid.sweep({"sweep": {"world": "hello", "hours": 1},
                             "axes": {"market.import_price_eur_per_kwh": [0.3, hourly], "mechanism": ["tariff"]}},
                            serial=True, out=tmp_path)
    assert table["market.import_price_eur_per_kwh"].tolist() == ["0.3", json.dumps(hourly, separators=(",", ":"))]
    assert table["total_cost"].nunique() == 1 and pd.read_parquet(tmp_path / "sweep.parquet").shape[0] == 2
    with pytest.raises(SpecError, match=r"^sweep: 6,553,600,000,000 points: more than 1,000,000; split the sweep or draw "):
        sweep_from_data({"sweep": {"world": "hello"}, "axes": {f"world.seed{i}": list(range(40)) for i in range(8)}})
    with pytest.raises(SpecError, match=r"^sweep: sweep.kpis: needs at least 1 item\(s\)$"):
        sweep_from_data({"sweep": {"world": "hello", "kpis": []}, "axes": {"mechanism": ["tariff"]}})
