"""Every byte each node of a lattice sends, captured, holds no value a participant's policy withholds from its audience.

Four `plurigrid node`s (one process) clear the private world over a real nats-server, each through a relay that
records what it sends: home-a, home-b and home-c (who give the operator their meter per hour, the public per hour)
each on a node of their own, everyone else on the fourth. Every node serves the lattice's IBC chain (its credits
are public) and the operator's group totals (secure aggregation). The operator asks for bus2's total of every
interval and gets the exact sum; then every publication a node made is sorted by audience from its subject:

- the clearing log and heartbeats go to the lattice, which clears with everyone's data per interval;
- the IBC log and IBC answers go to the public: credits, per hour for the homes;
- replies to requests (`_INBOX`) go to whoever asked: the operator's totals rounds, relayers' IBC queries;

and the homes' per-interval meter values are searched for, in every encoding, in what went to the operator and
the public. The same search finds the homes' hourly sums in the IBC traffic and their decisions in the log, so a
capture that missed those channels would fail here too.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from urllib.parse import urlparse

import nats
import tomli_w

from plurigrid.engine.simulate import simulate
from plurigrid.engine.world import compile_world
from plurigrid.ibc.lattice import SETTLED_DENOM, subjects
from plurigrid.ibc.remote import RemoteChain
from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.lattice.natsd import NatsCluster
from plurigrid.microworld.loader import load
from plurigrid.microworld.privacy import merged
from plurigrid.privacy.totals import flexibility_wh, group_total, members_of
from plurigrid.state.identity import Identity
from plurigrid.state.ledger import history, prove
from tests.cli.test_cli import plurigrid as cli
from tests.lattice.test_transport import require_nats_server
from tests.privacy.capture import RecordingRelay, publications
from tests.privacy.worlds import HOMES, leaks, private_world

INTERVALS = 8  # two hours of 15 minutes: two hourly credits per home
OTHERS = ("load1", "load2", "load3", "solar", "wind", "hydro", "diesel")
HOSTED = [(home,) for home in HOMES] + [OTHERS]


def _wait_for(condition, what: str, process: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"the nodes stopped: {process.stderr.read() if process.stderr else ''}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _audience(subject: str, genesis: Genesis) -> str:
    log_prefix = genesis.stream.lower()
    ibc_stream, ibc_prefix = subjects(genesis)
    if subject in (f"{log_prefix}.log", f"{log_prefix}.broadcast"):
        return "lattice"
    if subject.startswith(f"{ibc_prefix}.") or subject == f"{ibc_stream.lower()}.log" or subject.startswith(f"{ibc_stream.lower()}."):
        return "public"
    if subject.startswith("_INBOX."):
        return "requester"  # the operator (totals rounds) or anyone (IBC queries): both may not see interval meters
    if subject.startswith("$JS.API."):
        return "broker"
    raise AssertionError(f"a publication on {subject!r}: which audience is it for? (classify it here)")


def test_no_byte_a_node_sends_carries_what_a_policy_withholds(tmp_path) -> None:
    require_nats_server()
    operator = Identity.from_seed(b"\x07" * 32)
    (tmp_path / "private.toml").write_text(tomli_w.dumps(private_world("private-lattice")), encoding="utf-8")
    with NatsCluster(1) as cluster:
        url = urlparse(cluster.urls[0])
        relays = [RecordingRelay((url.hostname, url.port)) for _ in HOSTED]
        members, configs = [], []
        for i, pids in enumerate(HOSTED):
            key = bytes([40 + i]) * 32
            (tmp_path / f"n{i}").mkdir()
            (tmp_path / f"n{i}" / "identity.key").write_bytes(key)
            members.append(Member(f"n{i}", Identity.from_seed(key).did, pids))
            configs.append(tmp_path / f"n{i}.toml")
            configs[-1].write_text(f'[node]\nname = "n{i}"\ndata_dir = "n{i}"\nparticipants = {json.dumps(list(pids))}\n'
                                   f'[transport]\nservers = ["{relays[i].url}"]\n[ibc]\nchain_id = "private"\n')
        genesis = Genesis("private.toml", tuple(members), close_after_s=5.0, operator=operator.did,
                          coalitions=(("homes", HOMES),))
        genesis.save(tmp_path / "genesis.json")
        for config in configs:
            config.write_text(config.read_text() + '[lattice]\ngenesis = "genesis.json"\n')
        # home-a's node narrows its policy further: the lattice records the new version as its consent
        configs[0].write_text(configs[0].read_text() + '[privacy.home-a]\nforecast = { public = "none" }\n')
        process = subprocess.Popen([sys.executable, "-m", "plurigrid.cli.main", "node",
                                    *[a for c in configs for a in ("--config", str(c))], "--intervals", str(INTERVALS)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            _wait_for(lambda: all((tmp_path / f"n{i}" / "report.json").exists() for i in range(len(HOSTED))),
                      "every node to clear its intervals", process)
            spec, name, base = load(str(tmp_path / "private.toml"))
            world = compile_world(spec, name, base, hours=INTERVALS / 4)
            bus2 = [world.ids[i] for rows in members_of(world, genesis, "bus:bus2").values() for i in rows]
            metered = {pid: [row["metered_wh"] for row in history(tmp_path / "n3", pid)] for pid in world.ids}
            chain = RemoteChain(cluster.urls, genesis, timeout_s=5.0)
            issued = lambda: {key.decode(): int(v) for key, v in chain.items(b"issued/") if SETTLED_DENOM.encode() in key}
            _wait_for(lambda: sum(f"/{home}/" in key for key in issued() for home in HOMES) == 2 * len(HOMES),
                      "each home's two hourly credits", process)
            credits = issued()
            chain.close()

            async def totals() -> list[tuple[int, dict]]:
                nc = await nats.connect(cluster.urls)
                try:
                    return [await group_total(nc, genesis, world, operator, group, k, timeout_s=5.0)
                            for group in ("bus:bus2", "coalition:homes") for k in range(INTERVALS - 1)]
                finally:
                    await nc.close()
            aggregated = asyncio.run(totals())
            # the same from the operator's command line; a node answers each bus and interval once: asked again, they decline
            (tmp_path / "operator.key").write_bytes(b"\x07" * 32)
            args = ["lattice", "totals", "--genesis", str(tmp_path / "genesis.json"), "--key", str(tmp_path / "operator.key"),
                    "--bus", "bus2", "--nats", cluster.urls[0], "--json"]
            last = cli(*args, "--intervals", str(INTERVALS - 1))
            assert last.returncode == 0, last.stderr
            again = cli(*args, "--intervals", "0")
            declined = "/totals/bus:bus2/0: only 0 members advertised keys, fewer than the threshold 2\n"
            assert again.returncode == 2 and again.stderr.endswith(declined), again.stderr
            wrong = cli(*args[:6], "--bus", "nowhere", "--nats", cluster.urls[0], "--intervals", str(INTERVALS - 1))
            assert wrong.returncode == 2 and wrong.stderr == ("plurigrid: error: no participant of the lattice is in 'bus:nowhere' "
                                                              "(expected bus:<bus> or coalition:<name>)\n")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            for relay in relays:
                relay.close()

    # every node recorded home-a's newer policy (the world's version 2, narrowed by its node's config) alike
    narrowed = merged(world.policies[world.ids.index("home-a")], {"forecast": {"public": "none"}, "version": 3})
    for i in range(len(HOSTED)):
        proof = prove(tmp_path / f"n{i}", "consents/home-a/000000000003")
        assert bytes.fromhex(proof["value"]).decode() == narrowed.digest()
    assert len({json.dumps(json.loads((tmp_path / f"n{i}" / "report.json").read_text())["roots"]) for i in range(len(HOSTED))}) == 1
    # the operator's group totals are exact: the lattice cleared as the simulator does, and its totals are the plain sums
    flexibility, simulated = [], {pid: [] for pid in world.ids}

    def after(state, k, result) -> None:
        flexibility.append(flexibility_wh(world, SimpleNamespace(soc_kwh=state.soc_kwh, result=result)))
        for i, pid in enumerate(world.ids):
            simulated[pid].append(int(result.settlement.metered_wh[i]))
    simulate(world, after_step=after)
    assert simulated == {pid: metered[pid][:INTERVALS] for pid in world.ids}
    groups = {"bus:bus2": bus2, "coalition:homes": list(HOMES)}
    for n, (totals, report) in enumerate(aggregated):
        group, k = list(groups)[n // (INTERVALS - 1)], n % (INTERVALS - 1)
        rows = [world.ids.index(pid) for pid in groups[group]]
        assert totals == {"net_wh": sum(metered[world.ids[i]][k] for i in rows), "flexibility_wh": int(flexibility[k][rows].sum())}
        assert report["answered"][-1] == sorted(members_of(world, genesis, group)), report["answered"]
    assert all(aggregated[n][0]["flexibility_wh"] > 0 for n in range(len(aggregated)))  # batteries and deferrable load
    [row] = json.loads(last.stdout)
    assert row["net_wh"] == sum(metered[pid][INTERVALS - 1] for pid in bus2) and not row["missing"] and len(row["members"]) == 4
    # the homes' credits are their hourly sums of energy fed in
    for home in HOMES:
        hours = [-sum(metered[home][h * 4:(h + 1) * 4]) for h in range(INTERVALS // 4)]
        assert sorted(v for key, v in credits.items() if f"/{home}/" in key) == sorted(hours), credits

    sent: dict[str, bytes] = {"lattice": b"", "public": b"", "requester": b"", "broker": b""}
    for relay in relays:
        for stream in relay.streams():
            for subject, payload in publications(stream):
                sent[_audience(subject, genesis)] += payload
    assert all(sent.values()), {k: len(v) for k, v in sent.items()}  # every channel was captured
    interval_values = {f"{home} metered_wh": [v for wh in metered[home][:INTERVALS] for v in (wh, -wh) if abs(v) >= 10_000]
                       for home in HOMES}
    assert not leaks(sent["public"] + sent["requester"] + sent["broker"], interval_values)
    # the search sees what may be there: the homes' hourly credits in the public bytes, their decisions in the log
    hourly = [v for key, v in credits.items() if any(f"/{h}/" in key for h in HOMES)]
    assert len(leaks(sent["public"], {"credits": hourly})) == len(hourly)
    assert len(leaks(sent["lattice"], {home: [home] for home in HOMES})) == len(HOMES)
