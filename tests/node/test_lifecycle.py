"""Node lifecycle and config: only the documented transitions, every one on disk, `node status` shows them."""

import json

import pytest

from plurigrid.microworld.loader import SpecError
from plurigrid.node.config import load_node_config
from plurigrid.node.lifecycle import ALLOWED, Lifecycle, LifecycleError, State, read_status
from plurigrid.state.identity import Identity
from tests.cli.test_cli import plurigrid

CONFIG = """[node]
name = "village-kiosk"
data_dir = "kiosk"
participants = ["kiosk", "home-1"]

[transport]
servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]

[capabilities]
devices = ["meter", "battery"]
"""


def test_the_documented_path_and_every_transition_recorded(tmp_path):
    life = Lifecycle(tmp_path, Identity.from_seed(b"\x60" * 32).did)
    path = [(State.JOIN, "transport up"), (State.SYNC, "joined"), (State.ACTIVE, "caught up"),
            (State.OFFLINE, "lost all servers"), (State.RECONCILE, "reconnected"), (State.ACTIVE, "outbox settled"),
            (State.STOPPED, "shutdown")]
    for state, reason in path:
        life.to(state, reason)
    status, history = read_status(tmp_path)
    assert status["state"] == "stopped" and status["transitions"] == len(path)
    assert [(h["from"], h["to"]) for h in history] == [(None, "boot")] + [
        (a.value, b.value) for (a, _), (b, _) in zip([(State.BOOT, "")] + path, path)]
    assert history[-1]["reason"] == "shutdown"


@pytest.mark.parametrize("start, target", [(s, t) for s in State for t in State
                                           if t != State.STOPPED and t not in ALLOWED[s] and s != State.STOPPED])
def test_undocumented_transitions_are_refused(tmp_path, start, target):
    life = Lifecycle(tmp_path, "did:key:zTest")
    route = {State.BOOT: [], State.JOIN: [State.JOIN], State.SYNC: [State.JOIN, State.SYNC],
             State.ACTIVE: [State.JOIN, State.SYNC, State.ACTIVE], State.OFFLINE: [State.JOIN, State.OFFLINE],
             State.RECONCILE: [State.JOIN, State.OFFLINE, State.RECONCILE]}[start]
    for step in route:
        life.to(step, "setup")
    with pytest.raises(LifecycleError, match=f"{start.value} -> {target.value} is not a lifecycle transition"):
        life.to(target, "bad")
    assert read_status(tmp_path)[0]["state"] == start.value


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "NODE.toml"
    path.write_text(CONFIG.replace('participants = ["kiosk", "home-1"]', 'participants = ["kiosk", "kiosk"]'))
    with pytest.raises(SpecError, match=r"NODE.toml: node.participants: a participant is listed twice$"):
        load_node_config(path)
    path.write_text(CONFIG.replace('devices = ["meter", "battery"]', 'devices = ["toaster"]'))
    with pytest.raises(SpecError, match=r"capabilities.devices\[0\]: expected one of"):
        load_node_config(path)


def test_node_status_cli(tmp_path):
    path = tmp_path / "NODE.toml"
    path.write_text(CONFIG)
    missing = plurigrid("node", "status", "--config", str(path))
    assert missing.returncode == 2 and "no node has run here" in missing.stderr
    life = Lifecycle(tmp_path / "kiosk", Identity.from_seed(b"\x61" * 32).did)
    life.to(State.JOIN, "transport up")
    res = plurigrid("node", "status", "--config", str(path), "--json")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert (shown["node"], shown["state"], shown["did"]) == ("village-kiosk", "join", life.did)
    assert shown["host"]["cores"] >= 1 and shown["host"]["devices"] == ["meter", "battery"]
    assert [h["to"] for h in shown["history"]] == ["boot", "join"]
    table = plurigrid("node", "status", "--config", str(path))
    assert "village-kiosk" in table.stdout and "join" in table.stdout


def test_the_host_profile_decides_which_modules_run():
    from plurigrid.node.config import HostProfile
    pi = HostProfile("aarch64", 4, 8, ("battery",))
    assert pi.refuses(("prices", "log"), 8) is None
    assert pi.refuses(("read_meter",), 8) == ("its 'read_meter' capability needs the 'meter' device, which this host "
                                              "does not grant (capabilities.devices: ['battery'])")
    assert pi.refuses((), 16) == "its 16 MB memory limit exceeds this host's 8 MB"
    assert HostProfile("aarch64", 4, 8, ("meter",)).refuses(("read_meter",), 4) is None
