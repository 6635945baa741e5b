"""Policies that cannot hold are refused before anything runs, in one line that names the field."""

from __future__ import annotations

import pytest

from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.microworld.loader import resolve
from plurigrid.state.identity import Identity
from tests.cli.test_cli import plurigrid

HELLO = ["load1", "load2", "load3", "solar", "wind", "hydro", "diesel"]


@pytest.mark.parametrize(("privacy", "message"), [
    ('[privacy.load1]\nmeter = { lattice = "hourly" }\n',
     "n.toml: privacy.load1.meter.lattice = 'hourly': every lattice node clears with each participant's meter per "
     "interval; clearing is impossible without it"),
    ('[privacy.load1]\nbids = { own = "none" }\n',
     "n.toml: privacy.load1.bids.own = 'none': the node that acts for the participant must see its bids per interval"),
    ('[privacy.stranger]\nmeter = { public = "daily" }\n', "privacy: ['stranger'] are not this node's participants"),
    ('[privacy.load1]\nmeter = { public = "weekly" }\n', "privacy.load1.meter.public: expected one of 'interval', 'hourly', "
                                                         "'daily', 'aggregate' or 'none', got 'weekly'"),
])
def test_a_node_refuses_a_policy_it_cannot_keep_in_one_line(tmp_path, privacy, message) -> None:
    key = b"\x21" * 32
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "identity.key").write_bytes(key)
    Genesis("hello", (Member("n", Identity.from_seed(key).did, tuple(HELLO)),)).save(tmp_path / "genesis.json")
    config = tmp_path / "n.toml"
    config.write_text(f'[node]\nname = "n"\ndata_dir = "n"\nparticipants = {HELLO!r}\n'.replace("'", '"')
                      + '[transport]\nservers = ["nats://127.0.0.1:1"]\n' + privacy)
    res = plurigrid("node", "--config", str(config))
    assert res.returncode == 2 and res.stderr.startswith("plurigrid: error: ") and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr, res.stderr


def test_lattice_up_refuses_a_world_whose_policies_stop_the_clearing(tmp_path) -> None:
    text = tmp_path / "w.toml"
    _, source, _ = resolve("hello")
    text.write_text(source.replace('id = "load3"', 'id = "load3"\nprivacy = { location = { lattice = "none" } }', 1))
    res = plurigrid("lattice", "up", "--microworld", str(text), "--nodes", "2", "--intervals", "1")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr == ("plurigrid: error: --microworld hello: load3: privacy.location.lattice = 'none': every lattice "
                          "node clears with each participant's location per interval; clearing is impossible without it\n")
