"""`plurigrid lattice up` with its node processes in network namespaces: nodes that reach the brokers only through
veth pairs and a bridge, as nodes on other machines would, clear every interval identically."""

import json
import os
import subprocess
import sys

import pytest

from plurigrid.lattice.netns import VethNetwork, available
from tests.lattice.test_transport import require_nats_server


@pytest.fixture
def network():
    """Three namespaces on one bridge, made by the test; skipped without root, failed under PLURIGRID_REQUIRE_NETNS=1 (CI)."""
    require_nats_server()
    why = available()
    if why is not None:
        if os.environ.get("PLURIGRID_REQUIRE_NETNS") == "1":
            pytest.fail(f"PLURIGRID_REQUIRE_NETNS=1 but {why}")
        pytest.skip(why)
    with VethNetwork(3) as net:
        yield net


def lattice_up(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "lattice", "up", *args], capture_output=True, text=True,
                          timeout=600)


def test_nodes_in_three_namespaces_agree_through_a_kill_and_restart(network):
    before = network.rx_bytes()
    res = lattice_up("--nodes", "6", "--transport", "nats", "--nats", "auto", "--nats-host", network.host_ip,
                     "--netns", ",".join(network.namespaces), "--microworld", "residential", "--intervals", "6",
                     "--fault", "kill:4@2", "--fault", "restart:4@3", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert report["agreed"] and report["nodes"] == 6 and report["settled_intervals"] == 6
    assert report["lost_settlements"] == 0 and report["money_residual_micro"] == 0
    assert report["faults_applied"] == ["kill:4@2", "restart:4@3"]
    # every namespace's processes reached the brokers over their own interface: the kernel counted it
    after = network.rx_bytes()
    assert all(after[ns] - before[ns] > 20_000 for ns in network.namespaces), after


def test_netns_options_are_checked():
    for args, line in (
        (["--netns", "pg-none-such", "--transport", "nats", "--nats-host", "10.9.9.1"],
         "--netns: no network namespace 'pg-none-such' (ip netns list shows them)"),
        (["--netns", "x"], "--netns: network namespaces hold node processes; they need --transport nats"),
        (["--netns", "x", "--transport", "nats", "--nats", "auto"], "--netns: nodes in network namespaces cannot reach a "
         "cluster on 127.0.0.1; give --nats-host (an address they reach, such as their bridge's) or --nats URLs"),
        (["--nats-host", "10.0.0.1", "--transport", "nats", "--nats", "nats://127.0.0.1:4222"],
         "--nats-host: the address of a cluster started with --nats auto; give --nats URLs otherwise"),
    ):
        res = lattice_up(*args)
        assert res.returncode == 2 and res.stderr.strip() == f"plurigrid: error: {line}", res.stderr
