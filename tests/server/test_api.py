"""The HTTP API gives what the Python API and the CLI give: the same results, errors, ledger and proofs."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from datetime import datetime

import numpy as np
import pytest

import plurigrid
from plurigrid.microworld.loader import SpecError, parse_text, resolve, validate_data
from plurigrid.state.ics23 import JMT_SPEC, decode_commitment_proof, verify_membership
from tests.server.conftest import HOURS, Service


def test_health_and_schema_need_no_token(service: Service) -> None:
    c = service.client
    assert c.get("/api/health").json()["status"] == "ok"
    schema = c.get("/api/schema/microworld").json()
    assert {"world", "grid", "participant", "market"} <= set(schema["properties"])
    assert c.get("/api/worlds").status_code == 401
    assert c.get("/api/worlds", headers={"Authorization": "Bearer pgt_forged"}).status_code == 401


def test_openapi_is_3_1(service: Service) -> None:
    spec = service.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/runs/{run_id}/buses" in spec["paths"]


def test_validation_names_the_field_as_the_cli_does(service: Service) -> None:
    name, text, _ = resolve("hello")
    data = parse_text(name, text)
    data["participant"][0]["assets"]["load"]["power_factor"] = 2.0
    with pytest.raises(SpecError) as cli:
        validate_data("hello", data)
    got = service.client.post("/api/validate", json={"spec": json.loads(json.dumps(data, default=str))},
                              headers=service.headers).json()
    assert got["valid"] is False
    assert got["error"]["path"] == cli.value.path == "participant[0].assets.load.power_factor"
    assert got["error"]["message"] == cli.value.message == "must be <= 1"
    assert got["error"]["line"] == str(cli.value)
    # a compile error (a grid that cannot be built) comes back the same way
    bad = service.client.post("/api/validate", json={"toml": "[world]\nname = 'x'\n[grid]\nsource = 'pandapower:nope'\n"},
                              headers=service.headers).json()
    assert bad["error"]["path"] == "grid.source" and "unknown pandapower network 'nope'" in bad["error"]["message"]
    ok = service.client.post("/api/validate", json={"library": "hello"}, headers=service.headers).json()
    assert ok == {"valid": True, "participants": 7, "buses": 3, "steps": 24, "error": None}


def test_saving_a_bad_world_is_refused_with_its_path(service: Service) -> None:
    r = service.client.post("/api/worlds", json={"toml": "[world]\nname = 'x'\n[grid]\nbase_mva = -1\n"},
                            headers=service.headers)
    assert r.status_code == 422
    assert r.json()["detail"]["path"] == "grid.base_mva"


def test_toml_export_imports_back_to_the_same_world(service: Service) -> None:
    h = service.headers
    text = service.client.get(f"/api/worlds/{service.world}/toml", headers=h).text
    assert tomllib.loads(text)["world"]["start"] == datetime(2024, 6, 21)  # a TOML date-time, as in the library file
    copy = service.client.post("/api/worlds", json={"toml": text}, headers=h).json()
    original = service.client.get(f"/api/worlds/{service.world}", headers=h).json()
    assert validate_data("a", copy["spec"]) == validate_data("b", original["spec"])
    name, library_text, _ = resolve("hello")
    assert validate_data("c", copy["spec"]) == validate_data("d", parse_text(name, library_text))


def test_results_are_the_run_folders(service: Service) -> None:
    """Buses, branches, participants and bills per step are what plurigrid.open_run reads from the same folder."""
    c, h = service.client, service.headers
    run = plurigrid.open_run(service.data / "runs" / service.run)
    assert c.get(f"/api/runs/{service.run}/summary", headers=h).json() == run.summary
    for step in range(HOURS):
        buses = c.get(f"/api/runs/{service.run}/buses", params={"step": step}, headers=h).json()
        assert buses["bus"] == ["bus1", "bus2", "bus3"] and buses["steps"] == HOURS
        np.testing.assert_array_equal(buses["vm_pu"], run.buses["vm_pu"].iloc[step].to_numpy())
        branches = c.get(f"/api/runs/{service.run}/branches", params={"step": step}, headers=h).json()
        np.testing.assert_array_equal(branches["line"]["loading_pct"], run.branches["line"].iloc[step].to_numpy())
        assert branches["trafo"]["name"] == ["trafo1-3"]
    page = c.get(f"/api/runs/{service.run}/participants", params={"step": 2, "offset": 1, "limit": 2}, headers=h).json()
    assert page["total"] == 7 and page["participant"] == ["load2", "load3"]
    assert page["columns"]["bill_micro"] == run.participants["bill_micro"].iloc[2][["load2", "load3"]].tolist()
    bills = {row["participant"]: row for row in c.get(f"/api/runs/{service.run}/settlements", headers=h).json()}
    assert {p: row["bill_micro"] for p, row in bills.items()} == run.settlements["bill_micro"].to_dict()
    series = c.get(f"/api/runs/{service.run}/timeseries", params={"offset": 1, "limit": 2}, headers=h).json()
    assert series["total"] == HOURS and len(series["time"]) == 2
    assert series["columns"]["price_eur_per_kwh"] == run.timeseries["price_eur_per_kwh"].iloc[1:3].tolist()
    assert c.get(f"/api/runs/{service.run}/buses", params={"step": HOURS}, headers=h).status_code == 422


def test_ledger_verifies_and_proves(service: Service) -> None:
    c, h = service.client, service.headers
    verdict = c.get(f"/api/runs/{service.run}/ledger/verify", headers=h).json()
    assert verdict["valid"] and verdict["height"] == HOURS
    vector = c.get(f"/api/runs/{service.run}/ledger/proof", params={"key": "accounts/load1"}, headers=h).json()
    proof = decode_commitment_proof(bytes.fromhex(vector["proof"]))
    assert verify_membership(JMT_SPEC, bytes.fromhex(verdict["state_root"]), proof, b"accounts/load1",
                             bytes.fromhex(vector["value"]))
    forged = bytes.fromhex(vector["value"]).replace(b"-", b"+", 1)
    assert not verify_membership(JMT_SPEC, bytes.fromhex(verdict["state_root"]), proof, b"accounts/load1", forged)


def test_progress_streams_until_done(service: Service) -> None:
    c, h = service.client, service.headers
    run_id = c.post("/api/runs", json={"library": "hello", "hours": 3}, headers=h).json()["id"]
    with c.stream("GET", f"/api/runs/{run_id}/events", params={"token": service.token}) as stream:
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert events[-1]["status"] == "done" and events[-1]["steps_done"] == events[-1]["steps_total"] == 3
    done = [e["steps_done"] for e in events]
    assert done == sorted(done)
    assert c.get(f"/api/runs/{run_id}/events").status_code == 401


def test_a_cancelled_run_stops_and_keeps_a_valid_folder(service: Service) -> None:
    c, h = service.client, service.headers
    run_id = c.post("/api/runs", json={"library": "hello"}, headers=h).json()["id"]
    while c.get(f"/api/runs/{run_id}", headers=h).json()["steps_done"] < 1:
        pass
    c.delete(f"/api/runs/{run_id}", headers=h)
    row = service.wait(run_id)
    assert row["status"] == "cancelled" and 1 <= row["steps_done"] < 24
    run = plurigrid.open_run(service.data / "runs" / run_id)
    assert run.partial and run.verify()["height"] == run.summary["partial"]["steps_done"]


def test_a_failing_run_says_why_in_one_line(service: Service) -> None:
    c, h = service.client, service.headers
    name, text, _ = resolve("hello")
    data = json.loads(json.dumps(parse_text(name, text), default=str))
    data["participant"][0]["assets"]["load"]["profile"] = {"source": "csv", "path": "missing.csv"}
    world = c.post("/api/worlds", json={"spec": data}, headers=h).json()["id"]
    row = service.wait(c.post("/api/runs", json={"world": world}, headers=h).json()["id"])
    assert row["status"] == "failed" and "missing.csv" in row["error"] and "\n" not in row["error"]


def test_tokens_are_kept_hashed(service: Service) -> None:
    issued = service.client.post("/api/tokens", json={"role": "operator"}, headers=service.headers).json()
    dump = "\n".join(sqlite3.connect(service.data / "plurigrid.db").iterdump())
    assert issued["token"] not in dump and service.token not in dump
    assert service.client.get("/api/worlds", headers={"Authorization": f"Bearer {issued['token']}"}).status_code == 200
    service.client.delete(f"/api/tokens/{issued['id']}", headers=service.headers)
    assert service.client.get("/api/worlds", headers={"Authorization": f"Bearer {issued['token']}"}).status_code == 401


def test_preferences_take_effect_in_the_next_run(service: Service) -> None:
    """A participant's preference is written into the world; the next run's spec has it."""
    c, h = service.client, service.headers
    world = c.post("/api/worlds", json={"library": "hello"}, headers=h).json()["id"]
    token = c.post("/api/tokens", json={"role": "participant", "world": world, "participant": "load2"}, headers=h).json()
    me = {"Authorization": f"Bearer {token['token']}"}
    assert c.get("/api/me", headers=me).json() == {"role": "participant", "world": world, "participant": "load2"}
    got = c.put("/api/me/preferences", json={"local_renewable_premium_eur_per_mwh": 25}, headers=me).json()
    assert got["local_renewable_premium_eur_per_mwh"] == 25
    assert c.put("/api/me/preferences", json={"ev_departure": "06:30"}, headers=me).json()["detail"]["path"] == \
        "participant[1].assets.ev"
    assert c.put("/api/me/preferences", json={"data_sharing": "bills"}, headers=me).status_code == 422  # now /api/me/privacy
    run_id = c.post("/api/runs", json={"world": world, "hours": 2}, headers=h).json()["id"]
    assert service.wait(run_id)["status"] == "done"
    request = json.loads((service.data / "runs" / run_id / "request.json").read_text())
    assert request["spec"]["participant"][1]["preferences"]["local_renewable_premium_eur_per_mwh"] == 25
    mine = c.get(f"/api/me/runs/{run_id}", headers=me).json()
    assert mine["settlement"]["participant"] == "load2" and len(mine["time"]) == 2


def test_diagram_keeps_the_designers_positions(service: Service) -> None:
    c, h = service.client, service.headers
    name, text, _ = resolve("hello")
    data = json.loads(json.dumps(parse_text(name, text), default=str))
    data["grid"]["bus"][1]["diagram_xy"] = [12.5, -40.0]
    data["grid"]["bus"].append({"id": "bus4", "vn_kv": 20.0, "diagram_xy": [300, 10]})
    data["grid"]["line"].append({"id": "l24", "from_bus": "bus2", "to_bus": "bus4", "std_type": "NA2XS2Y 1x240 RM/25 12/20 kV"})
    data["grid"]["switch"] = [{"id": "s24", "bus": "bus4", "line": "l24", "closed": True},
                              {"id": "s13", "bus": "bus1", "to_bus": "bus3", "closed": False},
                              {"id": "s42", "bus": "bus2", "line": "l24", "closed": True}]
    world = c.post("/api/worlds", json={"spec": data}, headers=h).json()["id"]
    drawn = c.get("/api/diagram", params={"world": world}, headers=h).json()
    assert drawn["geo"] is False and drawn["bus"]["id"] == ["bus1", "bus2", "bus3", "bus4"]
    assert (drawn["bus"]["x"][1], drawn["bus"]["y"][1]) == (12.5, -40.0)
    assert drawn["line"]["std_type"] == [None, "NA2XS2Y 1x240 RM/25 12/20 kV"]
    assert drawn["switch"] == {"id": ["s24", "s13", "s42"], "bus": [3, 0, 1], "to": [1, 2, 3], "et": ["l", "b", "l"],
                               "closed": [True, False, True]}
    assert {p["id"]: p["assets"] for p in drawn["participant"]}["diesel"] == ["thermal"]
