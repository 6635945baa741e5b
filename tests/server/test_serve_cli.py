"""`plurigrid serve` and `plurigrid token issue` as a user runs them: a real process on a real port."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from plurigrid.lattice.natsd import free_ports
from plurigrid.node.lifecycle import Lifecycle, State
from plurigrid.server._db import Database
from tests.node.test_lifecycle import CONFIG
from tests.server.conftest import start_service

PLURIGRID = [sys.executable, "-m", "plurigrid"]


def _port() -> int:
    return free_ports(1)[0]


def test_serve_prints_one_operator_token_and_answers(tmp_path: Path) -> None:
    data, port = tmp_path / "data", _port()
    node = tmp_path / "NODE.toml"
    node.write_text(CONFIG)
    life = Lifecycle(tmp_path / "kiosk", "did:key:zKiosk")
    life.to(State.JOIN, "transport up")
    proc = subprocess.Popen([*PLURIGRID, "serve", "--data", str(data), "--port", str(port), "--node", str(node)],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        token = re.search(r"operator token \(shown once; keep it\): (\S+)", proc.stderr.readline())
        assert token is not None
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/api/health")
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        assert httpx.get(base + "/api/library", headers=headers).status_code == 200
        node_view = httpx.get(base + "/api/node", headers=headers).json()
        assert node_view["node"] == "village-kiosk" and node_view["state"] == "join"
        assert node_view["participants"] == ["kiosk", "home-1"]
        issued = subprocess.run([*PLURIGRID, "token", "issue", "--data", str(data), "--role", "operator"],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert issued.startswith("pgt_") and issued != token.group(1)
        assert httpx.get(base + "/api/worlds", headers={"Authorization": f"Bearer {issued}"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # a second start of the same folder issues no new operator token
    again = subprocess.Popen([*PLURIGRID, "serve", "--data", str(data), "--port", str(_port())], stderr=subprocess.PIPE,
                             text=True)
    try:
        assert again.stderr is not None
        assert again.stderr.readline().startswith("serving http://")
    finally:
        again.terminate()
        again.wait(timeout=30)


def test_bad_flags_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cases = [
        (["serve", "--data", str(tmp_path / "file")], f"plurigrid: error: --data: {tmp_path / 'file'}: not a folder"),
        (["serve", "--node", str(tmp_path / "none.toml")], f"plurigrid: error: --node: {tmp_path / 'none.toml'}: no such file"),
        (["token", "issue", "--data", str(tmp_path), "--role", "admin"],
         "plurigrid: error: --role: expected one of operator, participant, got 'admin'"),
        (["token", "issue", "--data", str(tmp_path), "--role", "operator"],
         f"plurigrid: error: --data: {tmp_path}: no service database here (start plurigrid serve --data {tmp_path} once)"),
        (["token", "issue", "--data", str(tmp_path), "--role", "participant"],
         "plurigrid: error: --role participant: needs --world and --participant"),
    ]
    for args, line in cases:
        done = subprocess.run([*PLURIGRID, *args], capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.strip() == line, (args, done.stderr)


def test_a_run_cut_off_by_a_stopped_server_is_failed_on_restart(tmp_path: Path) -> None:
    db = Database(tmp_path / "plurigrid.db")
    db.add_run("r1", None, "hello", {})
    db.set_run("r1", status="running", steps_done=3)
    db.close()
    client, token = start_service(tmp_path)
    with client:
        row = client.get("/api/runs/r1", headers={"Authorization": f"Bearer {token}"}).json()
    assert row["status"] == "failed" and row["error"] == "the server stopped during the run" and row["steps_done"] == 3
