"""`plurigrid node --config NODE.toml`: separate OS processes, started as an operator would, clear together."""

import json
import subprocess
import sys

import pytest

from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.lattice.natsd import NatsCluster
from tests.cli.test_cli import plurigrid
from tests.lattice.test_transport import nats_server_binary  # noqa: F401  (fixture)

HOSTED = {"kiosk": ["kiosk", "genset", "hh-n1", "hh-n2"], "school": ["hh-n3", "hh-s1", "hh-s2", "hh-s3"]}


def _node(tmp_path, name: str, servers: list[str], participants: list[str] | None = None, kind: str = "nats"):
    config = tmp_path / f"{name}.toml"
    config.write_text(f'[node]\nname = "{name}"\ndata_dir = "{name}"\n'
                      f'participants = {json.dumps(participants or HOSTED[name])}\n'
                      f'[transport]\nkind = "{kind}"\nservers = {json.dumps(servers)}\n')
    return config


def _genesis(tmp_path, dids: dict[str, str]) -> None:
    members = tuple(Member(name, dids[name], tuple(HOSTED[name])) for name in HOSTED)
    Genesis("offgrid-battery-sharing", members, close_after_s=10.0).save(tmp_path / "genesis.json")


def test_two_node_processes_clear_together(tmp_path, nats_server_binary):  # noqa: F811
    with NatsCluster(1) as cluster:
        configs = [_node(tmp_path, name, cluster.urls) for name in HOSTED]
        ids = [plurigrid("node", "id", "--config", str(c)) for c in configs]
        assert all(r.returncode == 0 and r.stdout.startswith("did:key:z6Mk") for r in ids)
        assert plurigrid("node", "id", "--config", str(configs[0])).stdout == ids[0].stdout  # the key is kept
        _genesis(tmp_path, {name: r.stdout.strip() for name, r in zip(HOSTED, ids)})
        procs = [subprocess.Popen([sys.executable, "-m", "plurigrid.cli.main", "node", "--config", str(c),
                                   "--intervals", "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in configs]
        outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    reports = [json.loads((tmp_path / name / "report.json").read_text()) for name in HOSTED]
    assert len(reports[0]["roots"]) == 6 and reports[0]["roots"] == reports[1]["roots"]
    assert all(r["missing"] == 0 for r in reports)  # every decision made its cut
    for name in HOSTED:
        assert plurigrid("ledger", "verify", str(tmp_path / name)).returncode == 0
        shown = json.loads(plurigrid("node", "status", "--config", str(tmp_path / f"{name}.toml"), "--json").stdout)
        assert [h["to"] for h in shown["history"]] == ["boot", "join", "sync", "active", "stopped"]
        other = "school" if name == "kiosk" else "kiosk"  # the lattice view: who is up and what it hosts
        assert [m["hosts"] for m in shown["lattice"].values()] == [HOSTED[other]]


@pytest.mark.parametrize("change, message", [
    ({"participants": ["kiosk"]}, "node.participants ['kiosk'] differ from the genesis file's "
                                  "['kiosk', 'genset', 'hh-n1', 'hh-n2'] for this node"),
    ({"kind": "inproc"}, "transport.kind: a node process reaches its lattice over nats "
                         "(inproc exists only inside `plurigrid lattice up`)"),
    ({"stranger": True}, "lattice.genesis: this node ("),
    ({"genesis": "{not json"}, "genesis.json: not JSON ("),
])
def test_node_config_errors_are_one_line(tmp_path, change, message):
    kiosk = _node(tmp_path, "kiosk", ["nats://127.0.0.1:1"], change.get("participants"), change.get("kind", "nats"))
    did = plurigrid("node", "id", "--config", str(kiosk)).stdout.strip()
    if change.get("stranger"):
        (tmp_path / "kiosk" / "identity.key").write_bytes(b"\x01" * 32)  # a key the genesis file does not list
    _genesis(tmp_path, {"kiosk": did, "school": "did:key:z6MkrGkckHwZfdCKZHQTNyHKWdQPNQSHWKbakEDgtS5jJ7kr"})
    if "genesis" in change:
        (tmp_path / "genesis.json").write_text(change["genesis"])
    res = plurigrid("node", "--config", str(kiosk), "--intervals", "1")
    assert res.returncode == 2 and res.stderr.startswith("plurigrid: error: ") and res.stderr.count("\n") == 1
    assert message in res.stderr
