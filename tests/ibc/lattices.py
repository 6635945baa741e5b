"""Two lattices of three nexus nodes each (one `plurigrid node` process per lattice, every node with [ibc]) on
one NATS server, as the IBC tests and benchmarks/bench_ibc.py run them."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plurigrid.ibc.remote import RemoteChain
from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.lattice.natsd import NatsCluster
from plurigrid.state.identity import Identity

PIDS = ["kiosk", "genset", "hh-n1", "hh-n2", "hh-n3", "hh-s1", "hh-s2", "hh-s3"]
HOSTED = [PIDS[:3], PIDS[3:5], PIDS[5:]]  # three members, each speaking for its own participants


@dataclass
class Lattice:
    name: str
    folder: Path
    genesis: Genesis
    configs: list[Path]
    process: subprocess.Popen
    chain: RemoteChain

    def member(self, participant: str) -> str:
        """The did of the member that hosts `participant` (the one that may move its credits)."""
        return next(m.did for m in self.genesis.members if participant in m.participants)


def _start(root: Path, name: str, seed: int, urls: list[str]) -> tuple[Path, Genesis, list[Path], subprocess.Popen]:
    folder = root / name
    members, configs = [], []
    for i, pids in enumerate(HOSTED):
        key = bytes([seed + i]) * 32
        (folder / f"n{i}").mkdir(parents=True)
        (folder / f"n{i}" / "identity.key").write_bytes(key)
        members.append(Member(f"n{i}", Identity.from_seed(key).did, tuple(pids)))
        configs.append(folder / f"n{i}.toml")
        configs[-1].write_text(f'[node]\nname = "n{i}"\ndata_dir = "n{i}"\nparticipants = {json.dumps(pids)}\n'
                               f'[transport]\nservers = {json.dumps(urls)}\n[ibc]\nchain_id = "{name}"\n')
    genesis = Genesis("offgrid-battery-sharing", tuple(members), close_after_s=5.0)
    genesis.save(folder / "genesis.json")
    args = [a for c in configs for a in ("--config", str(c))]
    process = subprocess.Popen([sys.executable, "-m", "plurigrid.cli.main", "node", *args, "--intervals", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return folder, genesis, configs, process


def _connect(genesis: Genesis, process: subprocess.Popen, urls: list[str], wait_s: float = 90.0) -> RemoteChain:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return RemoteChain(urls, genesis, timeout_s=5.0)
        except ConnectionError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@contextlib.contextmanager
def two_lattices(root: Path) -> Iterator[tuple[Lattice, Lattice]]:
    """grid-a and grid-b, running and reachable; stopped (SIGTERM) on exit."""
    with NatsCluster(1) as cluster:
        started = [(name, *_start(root, name, seed, cluster.urls)) for name, seed in (("grid-a", 10), ("grid-b", 50))]
        lattices: list[Lattice] = []
        try:
            for name, folder, genesis, configs, process in started:
                lattices.append(Lattice(name, folder, genesis, configs, process, _connect(genesis, process, cluster.urls)))
            yield lattices[0], lattices[1]
        finally:
            for lattice in lattices:
                lattice.chain.close()
            for *_, process in started:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
