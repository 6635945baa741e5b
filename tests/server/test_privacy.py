"""The operator's routes show each participant's data at the granularity its policy gives the operator.

The world's three homes give the operator their meter per hour and their bids per day (tests/privacy/
worlds.py); every operator route of a finished run is fetched and its bytes searched for the homes'
per-interval meter values in every encoding, after checking the same search finds them in the homes' own view.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import tomli_w

import plurigrid
from tests.cli.test_cli import plurigrid as cli
from tests.privacy.worlds import HOMES, POLICY, leaks, private_world


@pytest.fixture(scope="module")
def private_run(service):
    c, h = service.client, service.headers
    world = c.post("/api/worlds", json={"spec": private_world()}, headers=h).json()["id"]
    run = c.post("/api/runs", json={"world": world, "hours": 4}, headers=h).json()["id"]
    assert service.wait(run)["status"] == "done"
    return world, run


def rows_of(settlements: list[dict]) -> dict[str, dict]:
    return {r["participant"]: r for r in settlements}


def _interval_values(service, run: str, home: str) -> dict[str, list]:
    frames = plurigrid.open_run(service.data / "runs" / run).participants
    return {f"{home} metered_wh": [int(v) for v in frames["metered_wh"][home]],
            f"{home} net_kw": [float(v) for v in frames["net_kw"][home]]}


def test_operator_sees_hourly_meter_and_no_interval_value(service, private_run) -> None:
    c, h = service.client, service.headers
    world, run = private_run
    home = HOMES[0]
    series = c.get(f"/api/runs/{run}/participants/{home}", headers=h).json()
    assert series["granularity"] == "daily"  # its bids go to the operator per day: the coarsest kind shown sets it
    assert set(series["columns"]) == {"metered_wh", "net_kw", "baseline_micro", "bill_micro", "soc_kwh", "thermal_kw",
                                      "served_kw", "indoor_c", "green_kw", "ev_kw", "traded_wh", "unit_price_eur_per_kwh"}
    metered = plurigrid.open_run(service.data / "runs" / run).participants["metered_wh"][home]
    assert series["columns"]["metered_wh"] == [float(metered.sum())]  # one day: the run's sum
    step = c.get(f"/api/runs/{run}/participants", params={"step": 5}, headers=h).json()
    j = step["participant"].index(home)
    assert step["columns"]["metered_wh"][j] is None and step["columns"]["traded_wh"][j] is None
    assert step["columns"]["bill_micro"][j] is None  # money per step is energy times a known price
    assert rows_of(c.get(f"/api/runs/{run}/settlements", headers=h).json())[home]["bill_micro"] is not None  # the run's bill
    assert step["columns"]["metered_wh"][step["participant"].index("load1")] is not None
    rows = rows_of(c.get(f"/api/runs/{run}/settlements", headers=h).json())
    assert rows[home]["baseline"] is not None  # 4 h: a total of the meter at least an hour long
    assert rows[home]["imported_wh"] is not None and rows[home]["bought_wh"] is None  # 4 h: hourly yes, daily no
    refused = c.get(f"/api/runs/{run}/ledger/proof", params={"key": f"accounts/{home}"}, headers=h)
    assert refused.status_code == 403 and "privacy.meter.operator = 'hourly'" in refused.json()["detail"]
    assert c.get(f"/api/runs/{run}/ledger/proof", params={"key": "accounts/load1"}, headers=h).status_code == 200


def test_no_operator_route_carries_a_homes_interval_values(service, private_run) -> None:
    c, h = service.client, service.headers
    world, run = private_run
    secrets = {label: values for home in HOMES for label, values in _interval_values(service, run, home).items()}
    routes = [f"/api/runs/{run}", f"/api/runs/{run}/summary", f"/api/runs/{run}/settlements",
              f"/api/runs/{run}/timeseries", f"/api/runs/{run}/ledger/verify", f"/api/worlds/{world}"]
    routes += [f"/api/runs/{run}/{what}?step={k}" for k in range(16) for what in ("participants", "buses", "branches")]
    routes += [f"/api/runs/{run}/participants/{p}" for p in ("load1", "load2", *HOMES)]
    captured = b""
    for route in routes:
        response = c.get(route, headers=h)
        assert response.status_code == 200, (route, response.text)
        captured += response.content
    assert not leaks(captured, secrets)
    # the same search finds them where they may be seen: each home's own view, with its own token
    token = c.post("/api/tokens", json={"role": "participant", "world": world, "participant": HOMES[0]}, headers=h).json()
    own = c.get(f"/api/me/runs/{run}", headers={"Authorization": f"Bearer {token['token']}"}).content
    assert leaks(own, _interval_values(service, run, HOMES[0]))


def test_a_participant_edits_their_policy_and_the_next_run_records_the_consent(service, private_run) -> None:
    c, h = service.client, service.headers
    world, _ = private_run
    token = c.post("/api/tokens", json={"role": "participant", "world": world, "participant": HOMES[1]}, headers=h).json()
    me = {"Authorization": f"Bearer {token['token']}"}
    before = c.get("/api/me/privacy", headers=me).json()
    assert before["version"] == POLICY["version"] and before["policy"]["meter"]["operator"] == "hourly"
    after = c.put("/api/me/privacy", json={"forecast": {"public": "none"}, "meter": {"retention_days": 365}}, headers=me).json()
    assert after["version"] == POLICY["version"] + 1 and after["policy"]["forecast"]["public"] == "none"
    assert after["policy"]["meter"] == {**before["policy"]["meter"], "retention_days": 365.0}
    run = c.post("/api/runs", json={"world": world, "hours": 1}, headers=h).json()["id"]
    assert service.wait(run)["status"] == "done"
    proof = c.get(f"/api/runs/{run}/ledger/proof", params={"key": f"consents/{HOMES[1]}/{after['version']:012d}"},
                  headers=h).json()
    assert bytes.fromhex(proof["value"]).decode() == after["digest"]


@pytest.mark.parametrize(("participant", "change", "path", "message"), [
    ("load1", {"meter": {"operator": "hourly"}}, "participant[0].privacy.meter.operator",
     "load1: meter.operator = 'hourly': only one participant keeps their meter from the operator at bus bus1, whose power "
     "flow shows the bus's net power every interval; it takes at least 3"),
    (HOMES[2], {"meter": {"own": "daily"}}, "participant[9].privacy.meter.own",
     "home-c: meter.own = 'daily': the node that acts for the participant must see its meter per interval"),
    (HOMES[2], {"location": {"operator": "none"}}, "participant[9].privacy.location.operator",
     "home-c: location.operator = 'none': the world's spec states every participant's location, and the operator keeps the spec"),
    (HOMES[2], {"meter": {"public": "weekly"}}, "participant[9].privacy.meter.public",
     "expected one of 'interval', 'hourly', 'daily', 'aggregate' or 'none', got 'weekly'"),
])
def test_a_policy_that_cannot_hold_is_refused_with_its_field(service, private_run, participant, change, path, message) -> None:
    c, h = service.client, service.headers
    world, _ = private_run
    token = c.post("/api/tokens", json={"role": "participant", "world": world, "participant": participant}, headers=h).json()
    me = {"Authorization": f"Bearer {token['token']}"}
    before = c.get("/api/me/privacy", headers=me).json()
    refused = c.put("/api/me/privacy", json=change, headers=me)
    assert refused.status_code == 422 and refused.json()["detail"]["path"] == path, refused.text
    assert message in refused.json()["detail"]["message"]
    assert c.get("/api/me/privacy", headers=me).json() == before  # nothing stored


def test_a_world_file_with_such_a_policy_is_refused_in_one_line(tmp_path) -> None:
    spec = private_world()
    spec["participant"][0]["privacy"] = {"meter": {"operator": "daily"}}
    path = tmp_path / "w.toml"
    path.write_text(tomli_w.dumps(json.loads(json.dumps(spec))), encoding="utf-8")
    res = cli("run", str(path), "--hours", "1")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("plurigrid: error: w.toml: participant[0].privacy.meter.operator: load1: meter.operator = 'daily': ")


def test_per_step_records_leave_the_run_once_their_retention_passed(service) -> None:
    from plurigrid.server._retention import prune

    c, h = service.client, service.headers
    spec = private_world("retained")
    for p in spec["participant"]:
        if p["id"] in HOMES:
            p["privacy"] = {**POLICY, "meter": {**POLICY["meter"], "retention_days": 30}, "bids": {"retention_days": 30}}
    world = c.post("/api/worlds", json={"spec": spec}, headers=h).json()["id"]
    run = c.post("/api/runs", json={"world": world, "hours": 1}, headers=h).json()["id"]
    finished = service.wait(run)["finished"]
    ctx = service.client.app.state.context
    folder = service.data / "runs" / run
    traded = pd.read_parquet(folder / "trades.parquet")
    assert set(HOMES) & {*traded["buyer"].astype(str), *traded["seller"].astype(str)}  # they traded
    assert run not in prune(ctx.db, ctx.data_dir / "runs", now=finished + 29 * 86400)
    assert prune(ctx.db, ctx.data_dir / "runs", now=finished + 31 * 86400)[run] == {"meter": list(HOMES), "bids": list(HOMES)}
    assert not set(HOMES) & set(pd.read_parquet(folder / "participants.parquet")["participant"].astype(str))
    traded = pd.read_parquet(folder / "trades.parquet")
    assert not set(HOMES) & {*traded["buyer"].astype(str), *traded["seller"].astype(str)}
    gone = c.get(f"/api/runs/{run}/participants/{HOMES[0]}", headers=h)
    assert gone.status_code == 410 and "privacy.meter.retention_days = 30" in gone.json()["detail"]
    assert HOMES[0] not in c.get(f"/api/runs/{run}/participants", params={"step": 0}, headers=h).json()["participant"]
    bills = {r["participant"]: r for r in c.get(f"/api/runs/{run}/settlements", headers=h).json()}
    assert bills[HOMES[0]]["bill_micro"] is not None  # the operator's books keep the bill
    assert c.get(f"/api/runs/{run}/ledger/verify", headers=h).json()["valid"]
    assert prune(ctx.db, ctx.data_dir / "runs", now=finished + 400 * 86400).get(run) is None  # once only
