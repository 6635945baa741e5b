"""A participant reads nothing of another participant: every route of the API is tried with a participant's
token and another participant's ids, and what comes back is refused or holds only the caller's own data."""

from __future__ import annotations

import json
import re

from tests.server.conftest import Service

PUBLIC = {"/api/health", "/api/schema/microworld", "/api/std_types"}  # reference data, no participant's
OWN = {"/api/me", "/api/me/chat", "/api/me/preferences", "/api/me/privacy", "/api/me/runs", "/api/me/runs/{run_id}"}  # the caller's own data
OTHERS = ["load1", "load3", "solar", "wind", "hydro", "diesel"]  # hello's participants but the caller (load2)


def _routes(service: Service) -> list[tuple[str, str]]:
    """Every operation of the API, from its own OpenAPI document."""
    paths = service.client.get("/openapi.json").json()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


def _fill(path: str, service: Service, token_id: str) -> str:
    values = {"run_id": service.run, "world_id": service.world, "participant": "load1", "name": "hello",
              "token_id": token_id}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_every_route_is_refused_or_own_data_only(service: Service) -> None:
    c, h = service.client, service.headers
    issued = c.post("/api/tokens", json={"role": "participant", "world": service.world, "participant": "load2"},
                    headers=h).json()
    me = {"Authorization": f"Bearer {issued['token']}"}
    body = {"world": service.world, "library": "hello", "case": "pandapower:case9", "role": "operator",
            "spec": {}, "participant": "load1"}
    routes = _routes(service)
    assert len(routes) >= 30
    for method, path in routes:
        url = _fill(path, service, issued["id"])
        params = {"step": 0, "key": "accounts/load1", "world": service.world, "token": service.token}
        r = c.request(method, url, headers=me, params=params, json=body if method in ("POST", "PUT") else None)
        if path in PUBLIC:
            assert r.status_code == 200, (method, path)
        elif path in OWN:
            assert r.status_code in (200, 422), (method, path, r.text)
            text = json.dumps(r.json())
            leaked = [p for p in OTHERS if f'"{p}"' in text]
            assert not leaked, (method, path, leaked)
        else:
            assert r.status_code == 403, (method, path, r.status_code, r.text)
    # the operator's token given as ?token= does not lift a participant's header
    assert c.get(f"/api/runs/{service.run}/events", headers=me, params={"token": service.token}).status_code == 403
    # and nothing was changed by the attempts
    assert c.get(f"/api/worlds/{service.world}", headers=h).status_code == 200
    assert c.get(f"/api/runs/{service.run}", headers=h).json()["status"] == "done"


def test_a_participants_run_view_is_their_own(service: Service) -> None:
    c, h = service.client, service.headers
    issued = c.post("/api/tokens", json={"role": "participant", "world": service.world, "participant": "load2"},
                    headers=h).json()
    mine = c.get(f"/api/me/runs/{service.run}", headers={"Authorization": f"Bearer {issued['token']}"}).json()
    operator_view = {r["participant"]: r for r in c.get(f"/api/runs/{service.run}/settlements", headers=h).json()}
    assert mine["settlement"] == operator_view["load2"]
    series = c.get(f"/api/runs/{service.run}/participants/load2", headers=h).json()
    assert mine["columns"]["bill_micro"] == series["columns"]["bill_micro"]
    # a participant of another world cannot open this world's runs
    other_world = c.post("/api/worlds", json={"library": "hello"}, headers=h).json()["id"]
    stranger = c.post("/api/tokens", json={"role": "participant", "world": other_world, "participant": "load2"},
                      headers=h).json()
    assert c.get(f"/api/me/runs/{service.run}", headers={"Authorization": f"Bearer {stranger['token']}"}).status_code == 404
