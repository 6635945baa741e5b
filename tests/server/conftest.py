"""A service over a fresh data folder, with a run of `hello` (4 hours) done, shared by the API tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plurigrid.server.app import create_app, first_operator_token

HOURS = 4


@dataclass
class Service:
    client: TestClient
    data: Path
    token: str
    world: str  # a saved copy of the library world hello
    run: str  # a finished 4-hour run of it

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait(self, run_id: str, timeout_s: float = 120.0) -> dict:
        """The run's row once it is done, failed or cancelled."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = self.client.get(f"/api/runs/{run_id}", headers=self.headers).json()
            if row["status"] in ("done", "failed", "cancelled"):
                return row
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not finish in {timeout_s} s")


def start_service(data: Path) -> tuple[TestClient, str]:
    app = create_app(data)
    token = first_operator_token(app.state.context)
    assert token is not None  # a fresh folder has no operator yet
    return TestClient(app), token


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Service:
    data = tmp_path_factory.mktemp("service")
    client, token = start_service(data)
    with client:
        headers = {"Authorization": f"Bearer {token}"}
        world = client.post("/api/worlds", json={"library": "hello"}, headers=headers).json()["id"]
        run = client.post("/api/runs", json={"world": world, "hours": HOURS}, headers=headers).json()["id"]
        svc = Service(client, data, token, world, run)
        assert svc.wait(run)["status"] == "done"
        yield svc
