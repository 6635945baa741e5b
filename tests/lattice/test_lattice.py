"""A local lattice: nodes deciding only for their own participants agree with each other and with the simulator."""

import asyncio
import json
import shutil
import time

import pytest

from plurigrid.engine.ledger_entries import RunLedger
from plurigrid.engine.simulate import simulate
from plurigrid.engine.world import compile_world
from plurigrid.microworld.loader import load
from plurigrid.node.launcher import run_lattice
from plurigrid.state.ledger import BLOCKS
from tests.cli.test_cli import plurigrid
from tests.lattice.test_transport import nats_server_binary  # noqa: F401  (fixture)

INTERVALS = 12
# without faults every decision must make its cut; a generous close timeout keeps a loaded machine's
# slow node from being cut out (the timeout only matters when a node is missing)
REPORT_KEYS = {"nodes", "intervals", "agreed", "state_roots", "settled_intervals", "lost_settlements",
               "energy_residual_wh", "money_residual_micro", "rejected_messages", "latency_ms", "faults_applied",
               "reproducible", "host_faults"}


@pytest.fixture(scope="module")
def simulator_root(tmp_path_factory) -> str:
    spec, name, base = load("hello")
    folder = tmp_path_factory.mktemp("sim") / "ledger"
    writer = RunLedger(folder)
    simulate(compile_world(spec, name, base), ledger=writer)
    writer.close()
    return json.loads((folder / BLOCKS).read_text().splitlines()[INTERVALS - 1])["header"]["state_root"]


def _check(report: dict, nodes: int) -> str:
    assert set(report) >= REPORT_KEYS
    assert report["agreed"] and report["nodes"] == nodes and report["settled_intervals"] == INTERVALS
    assert report["lost_settlements"] == 0 and report["money_residual_micro"] == 0 and report["energy_residual_wh"] == 0
    assert report["rejected_messages"] == 0 and report["late_decisions"] == 0 and report["missing_decisions"] == 0
    roots = set(report["state_roots"].values())
    assert len(roots) == 1
    return roots.pop()


def test_inproc_lattice_equals_the_simulator(simulator_root):
    report = asyncio.run(run_lattice("hello", 3, INTERVALS, "inproc", close_after_s=10.0))
    assert _check(report, 3) == simulator_root


def test_nats_cluster_lattice_equals_inproc(simulator_root, nats_server_binary):  # noqa: F811
    report = asyncio.run(run_lattice("hello", 3, INTERVALS, "nats", "auto", close_after_s=10.0))
    assert _check(report, 3) == simulator_root


def test_lattice_cli_json_and_errors(tmp_path):
    res = plurigrid("lattice", "up", "--nodes", "2", "--intervals", "3", "--json", "--data", str(tmp_path / "data"))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["agreed"] and report["settled_intervals"] == 3
    for node in ("node-0", "node-1"):  # each node keeps its ledger and lifecycle
        assert plurigrid("ledger", "verify", str(tmp_path / "data" / node)).returncode == 0
        status = json.loads((tmp_path / "data" / node / "status.json").read_text())
        assert status["state"] == "stopped"
    bad = plurigrid("lattice", "up", "--transport", "carrier-pigeon")
    assert bad.returncode == 2
    assert bad.stderr == ("plurigrid: error: --transport: unknown transport 'carrier-pigeon'; "
                          "expected one of inproc, nats\n")
    if shutil.which("nats-server"):
        down = plurigrid("lattice", "up", "--transport", "nats", "--nats", "nats://127.0.0.1:1", "--intervals", "1")
        assert (down.returncode, down.stderr) == (2, "plurigrid: error: no NATS server reachable at nats://127.0.0.1:1\n")


def test_speed_paces_the_gates():
    """--speed 14400 on an hourly world: each gate closes 0.25 s after its interval began, never sooner."""
    started = time.monotonic()
    report = asyncio.run(run_lattice("hello", 2, 4, "inproc", speed=14400))
    assert report["agreed"] and report["settled_intervals"] == 4 and report["missing_decisions"] == 0
    assert time.monotonic() - started >= 4 * 0.25  # a lower bound set by the pacing, not a speed claim


def test_a_node_whose_module_only_the_backstop_stopped_says_so(tmp_path):
    """The lattice's report, like a run's summary, names the host fault and is not reproducible; the others agree."""
    from tests.engine.test_determinism import slow_lister_world

    world = slow_lister_world(tmp_path)
    report = asyncio.run(run_lattice(str(world), 2, 1, "inproc", data_dir=tmp_path / "lattice", close_after_s=5.0))
    assert report["agreed"] and report["reproducible"] is False
    [fault] = report["host_faults"]
    assert (fault["step"], fault["participant"]) == (0, "lister") and "wall-clock backstop" in fault["fault"]
    assert fault["node"] in report["state_roots"]  # the node that hosts lister, by its did
