"""Two lattices of three nexus nodes each, over NATS, and `plurigrid relayer` between them as its own process.

Credits go back and forth 1,000 times while the relayer is killed (SIGKILL) and restarted mid-flight and
some packets time out while it is away. Afterwards every escrow equals the vouchers outstanding, each
lattice's own credits are conserved, nothing is in flight, every member of a lattice holds the same IBC
root, and a forged proof, a replayed packet, a thinly signed header and a transfer by a member that does
not host the sender are refused.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plurigrid.ibc import messages as msg
from plurigrid.ibc.channel import sequence_key
from plurigrid.ibc.client import Header
from plurigrid.ibc.packet import commitment_key
from plurigrid.ibc.relayer import Relayer, Side, client_height, find_path, open_path
from plurigrid.ibc.remote import RemoteChain
from plurigrid.ibc.transfer import PORT, escrow_account
from plurigrid.lattice.genesis import Genesis, Member
from plurigrid.state.identity import Identity
from plurigrid.state.store import Store
from tests.cli.test_cli import plurigrid
from tests.ibc.lattices import Lattice, two_lattices
from tests.lattice.test_transport import require_nats_server

MINTED = 1_000_000
TRANSFERS, PER_BLOCK = 1000, 20
SEED = 11


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    require_nats_server()
    root = tmp_path_factory.mktemp("lattices")
    with two_lattices(root) as (a, b):
        for lattice, holder in ((a, "kiosk"), (b, "hh-s1")):
            assert lattice.chain.submit([msg.issue(holder, "credit", MINTED)], lattice.member(holder)) == [{"code": "ok"}]
        yield a, b, root


class RelayerProcess:
    """`plurigrid relayer` as an operator runs it; killed with SIGKILL and started again by the test."""

    def __init__(self, a: Lattice, b: Lattice, root: Path) -> None:
        self.args = [sys.executable, "-m", "plurigrid.cli.main", "relayer", "--a", str(a.configs[0]), "--b",
                     str(b.configs[0]), "--interval-s", "0.05", "--json"]
        self.root = root
        self.process: subprocess.Popen | None = None
        self.starts = self.kills = 0

    @property
    def out(self) -> Path:
        return self.root / f"relayer-{self.starts}.out"

    def start(self) -> None:
        self.starts += 1
        self.process = subprocess.Popen(self.args, stdout=self.out.open("w"), stderr=(self.root / "relayer.log").open("a"))

    def kill_mid_flight(self, rng: random.Random) -> None:
        """Kills it a moment after it has delivered something (so, while it is relaying)."""
        assert self.process is not None and self.process.poll() is None, (self.root / "relayer.log").read_text()
        _wait_for(lambda: self.out.stat().st_size > 0, "the relayer to deliver", timeout_s=60)
        time.sleep(rng.uniform(0.0, 0.1))
        self.kill()
        self.kills += 1

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def _balances(chain: RemoteChain) -> dict[tuple[str, str], int]:
    held = {}
    for key, value in chain.items(b"balances/"):
        account, denom = key.decode().split("/", 2)[1:]
        held[(account, denom)] = int(value)
    return held


def _wait_for(condition, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_credits_cross_two_lattices_through_relayer_kills_and_timeouts(grids) -> None:
    a, b, root = grids
    relayer = RelayerProcess(a, b, root)
    relayer.start()
    _wait_for(lambda: find_path(a.chain, b.chain) is not None, "the relayer to open a channel")
    side_a, side_b = find_path(a.chain, b.chain)
    rng = random.Random(SEED)
    holders = {id(a): "kiosk", id(b): "hh-s1"}
    sent = timeouts_planned = 0
    rounds = 0
    while sent < TRANSFERS:
        rounds += 1
        away = relayer.process.poll() is not None
        batches: dict[int, list] = {id(a): [], id(b): []}
        for _ in range(PER_BLOCK):
            src, dst, side = (a, b, side_a) if rng.random() < 0.5 else (b, a, side_b)
            me, you = holders[id(src)], holders[id(dst)]
            batches[id(src)].append((src, dst, side, me, you))
        for planned in batches.values():
            if not planned:
                continue
            src, dst, side = planned[0][:3]
            held = {d: v for (who, d), v in _balances(src.chain).items() if who == planned[0][3]}
            dst_height = dst.chain.height
            batch = []
            for _, _, _, me, you in planned:
                denom = rng.choice(sorted(held))
                amount = rng.randint(1, max(1, held[denom] // 50))
                held[denom] -= amount
                if held[denom] <= 0:
                    del held[denom]
                timeout_height = dst_height + 1 if away and rng.random() < 0.3 else 0
                timeouts_planned += bool(timeout_height)
                batch.append(msg.transfer(side.channel, me, you, denom, amount, timeout_height,
                                          0 if timeout_height else time.time_ns() + 600 * 10**9))
            results = src.chain.submit(batch, src.member(planned[0][3]))
            assert all(r["code"] == "ok" for r in results), results
            sent += len(batch)
        if away:  # the destinations move past the near timeouts before the relayer is back
            a.chain.submit([])
            b.chain.submit([])
            relayer.start()
        elif rounds % 3 == 1:
            relayer.kill_mid_flight(rng)
    def in_flight() -> bool:
        return bool(a.chain.packet_commitments(PORT, side_a.channel) or b.chain.packet_commitments(PORT, side_b.channel))

    _wait_for(lambda: not in_flight(), "every packet to be acknowledged or timed out", timeout_s=180)
    relayer.kill()

    bal_a, bal_b = _balances(a.chain), _balances(b.chain)
    voucher_on_b, voucher_on_a = f"{PORT}/{side_b.channel}/credit", f"{PORT}/{side_a.channel}/credit"
    escrow_a, escrow_b = escrow_account(PORT, side_a.channel), escrow_account(PORT, side_b.channel)
    assert bal_a.get((escrow_a, "credit"), 0) == sum(v for (_, d), v in bal_b.items() if d == voucher_on_b) > 0
    assert bal_b.get((escrow_b, "credit"), 0) == sum(v for (_, d), v in bal_a.items() if d == voucher_on_a) > 0
    assert sum(v for (_, d), v in bal_a.items() if d == "credit") == MINTED
    assert sum(v for (_, d), v in bal_b.items() if d == "credit") == MINTED
    assert relayer.kills >= 10 and timeouts_planned >= 10, (relayer.kills, timeouts_planned)
    # timed-out packets were never received: on each side, receipts + timeouts = packets sent
    for src, dst, s_src, s_dst in ((a, b, side_a, side_b), (b, a, side_b, side_a)):
        sequences = list(range(1, int(src.chain.read(sequence_key("nextSequenceSend", PORT, s_src.channel)) or b"1")))
        unreceived = dst.chain.unreceived_packets(PORT, s_dst.channel, sequences)
        acks = dst.chain.packet_acknowledgements(PORT, s_dst.channel, sequences)
        assert len(acks) + len(unreceived) == len(sequences) and unreceived  # each once: received, or timed out
    # every member of a lattice applied the same log to the same root
    for lattice in (a, b):
        status = lattice.chain.status()  # nothing is submitted any more: every member reaches this height
        roots = set()
        for i in range(3):
            store = Store(lattice.folder / f"n{i}" / "ibc" / "ibc.sqlite", durable=False)
            _wait_for(lambda store=store, height=status["height"]: store.version >= height, "every member to apply the log")
            roots.add(store.root(status["height"]).hex())
            store.close()
        assert roots == {status["root"]}


def _path(a: Lattice, b: Lattice) -> tuple[Side, Side]:
    """The transfer channel the relayer opened, or (a test run alone) one opened as the relayer would."""
    return find_path(a.chain, b.chain) or open_path(a.chain, b.chain)


def test_forgeries_replays_thin_headers_and_strangers_are_refused(grids) -> None:
    a, b, _ = grids
    side_a, side_b = _path(a, b)
    # a member may not move credits of a participant it does not host
    stranger = next(m.did for m in a.genesis.members if "kiosk" not in m.participants)
    refused = a.chain.submit([msg.transfer(side_a.channel, "kiosk", "hh-s1", "credit", 5, 0, time.time_ns() + 10**12)], stranger)
    assert refused[0]["code"] == "ErrUnauthorized"
    before = _balances(b.chain)
    sent = a.chain.submit([msg.transfer(side_a.channel, "kiosk", "hh-s1", "credit", 500, 0, time.time_ns() + 10**12)],
                          a.member("kiosk"))
    sequence = sent[0]["sequence"]
    packet = next(p for p in a.chain.packet_commitments(PORT, side_a.channel) if p.sequence == sequence)
    # B's client of A is brought up to date by a header more than 2/3 of A's members signed
    trusted = client_height(b.chain, side_b.client)
    header = a.chain.header(trusted)
    assert len(header.signatures) == 3
    thin = Header(**{**header.__dict__, "signatures": header.signatures[:1]})
    assert b.chain.submit([msg.update_client(side_b.client, thin)])[0]["code"] == "ErrInvalidHeader"
    assert client_height(b.chain, side_b.client) == trusted  # the thin header moved nothing
    proof = a.chain.prove(commitment_key(PORT, side_a.channel, sequence), header.height)
    forged = type(packet)(**{**packet.__dict__, "data": packet.data.replace(b'"500"', b'"900"')})
    results = b.chain.submit([msg.update_client(side_b.client, header), msg.recv_packet(forged, proof, header.height),
                              msg.recv_packet(packet, proof, header.height), msg.recv_packet(packet, proof, header.height)])
    assert [r["code"] for r in results] == ["ok", "ErrInvalidProof", "ok", "ErrNoOpMsg"]
    voucher = f"{PORT}/{side_b.channel}/credit"
    assert _balances(b.chain).get(("hh-s1", voucher), 0) == before.get(("hh-s1", voucher), 0) + 500  # received once
    Relayer(Side(a.chain, side_a.client, side_a.channel), Side(b.chain, side_b.client, side_b.channel)).clear()
    assert not a.chain.packet_commitments(PORT, side_a.channel)  # acknowledged


def test_ibc_cli_shows_and_drives_the_chains(grids, tmp_path) -> None:
    a, b, _ = grids
    node_a = str(a.configs[0])
    status = json.loads(plurigrid("ibc", "status", "--chain", node_a, "--json").stdout)
    assert status["chain_id"] == "grid-a" and len(status["signers"]) == 3 and status["height"] > 1
    path = _path(a, b)
    side_a = path[0]
    clients = json.loads(plurigrid("ibc", "client", "list", "--chain", node_a, "--json").stdout)
    assert clients[side_a.client]["chain_id"] == "grid-b" and clients[side_a.client]["status"] == "Active"
    shown = json.loads(plurigrid("ibc", "client", "show", side_a.client, "--chain", node_a, "--json").stdout)
    assert shown["client_state"]["latest_height"] == max(map(int, shown["consensus_states"]))
    connections = json.loads(plurigrid("ibc", "connection", "list", "--chain", node_a, "--json").stdout)
    assert any(c["state"] == "STATE_OPEN" or c["state"] == "OPEN" for c in connections.values())
    channels = json.loads(plurigrid("ibc", "channel", "list", "--chain", node_a, "--json").stdout)
    assert channels[f"{PORT}/channels/{side_a.channel}"]["counterparty"]["channel_id"] == path[1].channel
    sent = plurigrid("ibc", "transfer", "--chain", node_a, "--channel", side_a.channel, "--from", "kiosk", "--to", "hh-s2",
                     "--denom", "credit", "--amount", "7", "--json")
    assert sent.returncode == 0, sent.stderr
    sequence = json.loads(sent.stdout)["sequence"]
    pending = json.loads(plurigrid("ibc", "packet", "pending", "--chain", node_a, "--channel", side_a.channel, "--json").stdout)
    assert sequence in [p["sequence"] for p in pending]
    relayed = plurigrid("relayer", "--a", node_a, "--b", str(b.configs[1]), "--once", "--json")
    assert relayed.returncode == 0, relayed.stderr
    assert json.loads(relayed.stdout.splitlines()[0])["recv"] >= 1
    held = json.loads(plurigrid("ibc", "balances", "--chain", str(b.configs[2]), "--json").stdout)
    assert held["hh-s2"][f"{PORT}/{path[1].channel}/credit"] >= 7
    # a client by hand: created on A of B, then brought up to B's latest height
    created = json.loads(plurigrid("ibc", "client", "create", "--chain", node_a, "--of", str(b.configs[0]), "--json").stdout)
    b.chain.submit([])
    updated = plurigrid("ibc", "client", "update", created["client_id"], "--chain", node_a, "--of", str(b.configs[0]), "--json")
    assert json.loads(updated.stdout) == {"client_id": created["client_id"], "height": b.chain.height}
    # a message by hand: a bad one gets ibc-go's error name and exit 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"@type": "MsgChannelOpenConfirm", "port_id": PORT, "channel_id": "channel-99",
                               "proof_ack": "", "proof_height": 1}))
    refused = plurigrid("ibc", "submit", str(bad), "--chain", node_a, "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)[0]["code"] == "ErrChannelNotFound"


@pytest.mark.parametrize("args, message", [
    (["ibc", "status", "--chain", "nowhere.toml"], "--chain: nowhere.toml: no such file"),
    (["ibc", "transfer", "--chain", "{genesis}", "--nats", "nats://127.0.0.1:1", "--channel", "channel-0", "--from", "kiosk",
      "--to", "x", "--denom", "credit", "--amount", "1"], "no NATS server reachable at nats://127.0.0.1:1"),
    (["ibc", "channel", "open", "--a", "{genesis}", "--b", "{genesis}", "--ordering", "sideways"],
     "--ordering: expected ORDER_UNORDERED or ORDER_ORDERED, got 'sideways'"),
])
def test_ibc_cli_errors_are_one_line(tmp_path, args, message) -> None:
    genesis = tmp_path / "genesis.json"
    Genesis("hello", (Member("n0", Identity.from_seed(b"\x01" * 32).did, ("kiosk",)),)).save(genesis)
    res = plurigrid(*[a.replace("{genesis}", str(genesis)) for a in args])
    assert res.returncode == 2 and res.stderr.startswith("plurigrid: error: ") and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr


def test_each_member_issues_what_its_participants_fed_in_once(grids) -> None:
    from plurigrid.ibc.lattice import SETTLED_DENOM
    from plurigrid.state.ledger import history

    a, _, _ = grids
    fed_in = {}
    for i, member in enumerate(a.genesis.members):  # the interval each node cleared, as its own ledger settled it
        _wait_for(lambda i=i: (a.folder / f"n{i}" / "report.json").exists(), "the nodes to clear their interval")
        for participant in member.participants:
            metered = history(a.folder / f"n{i}", participant)[0]["metered_wh"]
            if metered < 0:
                fed_in[participant] = -metered
    assert fed_in, "nobody fed in: the check would be empty"

    def issued() -> dict[str, int]:  # the issue records (balances move: the credits may have crossed to grid-b since)
        return {key.decode().split("/")[1]: int(value) for key, value in a.chain.items(b"issued/")
                if key.decode().endswith(f"/{SETTLED_DENOM}/interval-0")}

    _wait_for(lambda: issued() == fed_in, "every member to issue its participants' credits")
    # issued once: the host's issue of the same interval again is refused
    participant, wh = next(iter(fed_in.items()))
    again = a.chain.submit([msg.issue(participant, SETTLED_DENOM, wh, "interval-0")], a.member(participant))
    assert again[0]["code"] == "ErrNoOpMsg" and issued() == fed_in
