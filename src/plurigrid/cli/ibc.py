"""`plurigrid ibc …` inspects and drives a lattice's IBC chain by hand; `plurigrid relayer` relays between two.

A chain is named by a node's NODE.toml (its NATS servers and genesis file) or by a genesis file with
`--nats URL` (default nats://127.0.0.1:4222); a member node with [ibc] must be running on it.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from plurigrid.cli import console
from plurigrid.errors import UsageError

if TYPE_CHECKING:
    from plurigrid.ibc.remote import RemoteChain

ibc_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Inspect and drive a lattice's IBC chain.")
client_app = typer.Typer(add_completion=False, no_args_is_help=True, help="ICS-02 clients.")
connection_app = typer.Typer(add_completion=False, no_args_is_help=True, help="ICS-03 connections.")
channel_app = typer.Typer(add_completion=False, no_args_is_help=True, help="ICS-04 channels.")
packet_app = typer.Typer(add_completion=False, no_args_is_help=True, help="ICS-04 packets.")
ibc_app.add_typer(client_app, name="client")
ibc_app.add_typer(connection_app, name="connection")
ibc_app.add_typer(channel_app, name="channel")
ibc_app.add_typer(packet_app, name="packet")
_out = console.out
DEFAULT_NATS = "nats://127.0.0.1:4222"

CHAIN = typer.Option(..., "--chain", help="a member's NODE.toml, or the lattice's genesis.json (with --nats)")
NATS = typer.Option(DEFAULT_NATS, "--nats", help="NATS server URL(s), comma-separated, for a genesis file")
JSON = typer.Option(False, "--json", help="print JSON")


def connect(path: Path, nats: str, option: str = "--chain") -> RemoteChain:
    """The chain a NODE.toml or genesis file names, reached over NATS (UsageError, one line, if it cannot be)."""
    from plurigrid.ibc.remote import RemoteChain
    from plurigrid.lattice.genesis import Genesis
    from plurigrid.node.config import load_node_config

    if not path.is_file():
        raise UsageError(f"{option}: {path}: no such file")
    if path.suffix == ".toml":
        config, _ = load_node_config(path)
        genesis_path = Path(config.lattice.genesis)
        genesis = Genesis.load(genesis_path if genesis_path.is_absolute() else path.parent / genesis_path)
        servers = config.transport.servers
    else:
        genesis, servers = Genesis.load(path), [s.strip() for s in nats.split(",") if s.strip()]
    return RemoteChain(servers, genesis)


def _print(value: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
    else:
        for line in lines:
            _out.print(line, highlight=False, soft_wrap=True, markup=False)


def _entries(chain: RemoteChain, prefix: bytes, suffix: bytes = b"") -> dict[str, dict]:
    return {key.decode(): json.loads(value) for key, value in chain.items(prefix) if key.endswith(suffix)}


@ibc_app.command("status")
def status(chain: Path = CHAIN, nats: str = NATS, as_json: bool = JSON) -> None:
    """The chain's id, latest height, time, root and signer set."""
    s = connect(chain, nats).status()
    _print(s, as_json, [f"{s['chain_id']}: height {s['height']}, root {s['root']}, {len(s['signers'])} signers"])


@client_app.command("list")
def client_list(chain: Path = CHAIN, nats: str = NATS, as_json: bool = JSON) -> None:
    """Every client on the chain: the chain it tracks, its latest height and status."""
    remote = connect(chain, nats)
    clients = {key.split("/")[1]: state for key, state in _entries(remote, b"clients/", b"/clientState").items()}
    for client_id, state in clients.items():
        state["status"] = remote.query("client_status", client_id=client_id)
    _print(clients, as_json, [f"{cid}: tracks {s['chain_id']} at height {s['latest_height']} ({s['status']})"
                              for cid, s in clients.items()] or ["no clients"])


@client_app.command("show")
def client_show(client_id: str = typer.Argument(..., help="e.g. plurigrid-0"), chain: Path = CHAIN, nats: str = NATS,
                as_json: bool = JSON) -> None:
    """A client's state, status and consensus states (heights, times, roots)."""
    remote = connect(chain, nats)
    entries = _entries(remote, f"clients/{client_id}/".encode())
    if not entries:
        raise UsageError(f"client {client_id!r} not found on {remote.chain_id}")
    state = entries.pop(f"clients/{client_id}/clientState")
    consensus = {int(k.rsplit("/", 1)[1]): v for k, v in entries.items()}
    shown = {"client_state": state, "status": remote.query("client_status", client_id=client_id),
             "consensus_states": {str(h): consensus[h] for h in sorted(consensus)}}
    _print(shown, as_json, [f"{client_id}: tracks {state['chain_id']}, latest height {state['latest_height']}, "
                            f"{shown['status']}, {len(consensus)} consensus states"])


OF = typer.Option(..., "--of", help="the chain the client tracks (NODE.toml or genesis.json)")
NATS_OF = typer.Option(DEFAULT_NATS, "--nats-of", help="NATS URL(s) of --of, for a genesis file")


@client_app.command("create")
def client_create(chain: Path = CHAIN, of: Path = OF, nats: str = NATS, nats_of: str = NATS_OF, as_json: bool = JSON) -> None:
    """Creates a client on --chain of the chain --of, trusting --of's latest consensus state."""
    from plurigrid.ibc.relayer import create_client

    host, tracked = connect(chain, nats), connect(of, nats_of, "--of")
    tracked.submit([])  # a fresh block, so the client starts from a recent consensus state
    client_id = create_client(host, tracked)
    _print({"client_id": client_id}, as_json, [f"{client_id}: tracks {tracked.chain_id} on {host.chain_id}"])


@client_app.command("update")
def client_update(client_id: str = typer.Argument(..., help="e.g. plurigrid-0"), chain: Path = CHAIN, of: Path = OF,
                  nats: str = NATS, nats_of: str = NATS_OF, as_json: bool = JSON) -> None:
    """Brings the client up to the tracked chain's latest height, with a header more than 2/3 of its members signed."""
    from plurigrid.ibc.relayer import bring_up_to_date

    host, tracked = connect(chain, nats), connect(of, nats_of, "--of")
    height = bring_up_to_date(tracked, host, client_id)
    _print({"client_id": client_id, "height": height}, as_json, [f"{client_id}: at height {height} of {tracked.chain_id}"])


@connection_app.command("list")
def connection_list(chain: Path = CHAIN, nats: str = NATS, as_json: bool = JSON) -> None:
    """Every connection end: state, client, counterparty."""
    ends = {key.split("/", 1)[1]: end for key, end in _entries(connect(chain, nats), b"connections/").items()}
    _print(ends, as_json, [f"{cid}: {e['state']} on {e['client_id']}, counterparty {e['counterparty']['connection_id'] or '-'}"
                           f" (client {e['counterparty']['client_id']})" for cid, e in ends.items()] or ["no connections"])


@channel_app.command("list")
def channel_list(chain: Path = CHAIN, nats: str = NATS, as_json: bool = JSON) -> None:
    """Every channel end: port, state, ordering, counterparty, connection."""
    ends = {key.split("/", 2)[2]: end for key, end in _entries(connect(chain, nats), b"channelEnds/").items()}
    _print(ends, as_json, [f"{name}: {e['state']} {e['ordering']} over {e['connection_hops'][0]}, counterparty "
                           f"{e['counterparty']['port_id']}/{e['counterparty']['channel_id'] or '-'}" for name, e in ends.items()]
           or ["no channels"])


@channel_app.command("open")
def channel_open(a: Path = typer.Option(..., "--a", help="one chain (NODE.toml or genesis.json)"),
                 b: Path = typer.Option(..., "--b", help="the other chain"),
                 nats_a: str = typer.Option(DEFAULT_NATS, "--nats-a", help="NATS URL(s) of --a, for a genesis file"),
                 nats_b: str = typer.Option(DEFAULT_NATS, "--nats-b", help="NATS URL(s) of --b, for a genesis file"),
                 ordering: str = typer.Option("ORDER_UNORDERED", "--ordering", help="ORDER_UNORDERED or ORDER_ORDERED"),
                 as_json: bool = JSON) -> None:
    """Creates a client on each chain, a connection and a transfer channel between them (every handshake step)."""
    from plurigrid.ibc.relayer import open_path

    if ordering not in ("ORDER_UNORDERED", "ORDER_ORDERED"):
        raise UsageError(f"--ordering: expected ORDER_UNORDERED or ORDER_ORDERED, got {ordering!r}")
    chain_a, chain_b = connect(a, nats_a, "--a"), connect(b, nats_b, "--b")
    side_a, side_b = open_path(chain_a, chain_b, ordering)
    shown = {s.end.chain_id: {"client": s.client, "channel": s.channel, "port": s.port} for s in (side_a, side_b)}
    _print(shown, as_json, [f"{chain_a.chain_id} {side_a.channel} <-> {chain_b.chain_id} {side_b.channel} ({ordering})"])


@packet_app.command("pending")
def packet_pending(chain: Path = CHAIN, channel: str = typer.Option(..., "--channel", help="e.g. channel-0"),
                   port: str = typer.Option("transfer", "--port"), nats: str = NATS, as_json: bool = JSON) -> None:
    """Packets sent on the channel and still committed: neither acknowledged nor timed out."""
    from plurigrid.ibc.messages import packet_json

    packets = [packet_json(p) for p in connect(chain, nats).packet_commitments(port, channel)]
    _print(packets, as_json, [f"{p['sequence']}: to {p['destination_port']}/{p['destination_channel']}, timeout height "
                              f"{p['timeout_height']} time {p['timeout_timestamp_ns']}" for p in packets] or ["none pending"])


@ibc_app.command("submit")
def submit(message: Path = typer.Argument(..., help="a JSON file: one message or a list of them (docs/ibc.md)"),
                  chain: Path = CHAIN, nats: str = NATS,
                  member: str | None = typer.Option(None, "--member", help="the member (did) to append it: for "
                                                    "MsgTransfer and MsgIssue, the one hosting the account"),
                  as_json: bool = JSON) -> None:
    """Submits any IBC message(s) by hand, as one block; prints each result (code ok, or ibc-go's error name)."""
    from plurigrid.jsonfile import read_json

    body = read_json(message, UsageError)
    results = connect(chain, nats).submit(body if isinstance(body, list) else [body], member)
    _print(results, as_json, [f"{r['code']}: {r.get('log') or json.dumps({k: v for k, v in r.items() if k != 'code'})}"
                              for r in results])
    if any(r["code"] != "ok" for r in results):
        raise typer.Exit(1)


def _host_of(remote: RemoteChain, account: str) -> str:
    for m in remote.genesis.members:
        if account in m.participants:
            return m.did
    raise UsageError(f"{account!r} is not a participant of any member of {remote.chain_id}")


@ibc_app.command("transfer")
def transfer(chain: Path = CHAIN, channel: str = typer.Option(..., "--channel"),
             sender: str = typer.Option(..., "--from", help="a participant hosted on this lattice"),
             receiver: str = typer.Option(..., "--to", help="the account on the other chain"),
             denom: str = typer.Option(..., "--denom"), amount: int = typer.Option(..., "--amount", min=1),
             timeout_height: int = typer.Option(0, "--timeout-height", min=0, help="a height of the other chain (0: none)"),
             timeout_s: float = typer.Option(600.0, "--timeout-s", min=0, help="seconds from now (0: none)"),
             nats: str = NATS, as_json: bool = JSON) -> None:
    """Sends credits over a transfer channel (ICS-20): escrowed here, a voucher there once relayed."""
    from plurigrid.ibc import messages

    remote = connect(chain, nats)
    deadline = time.time_ns() + int(timeout_s * 1e9) if timeout_s else 0
    result = remote.submit([messages.transfer(channel, sender, receiver, denom, amount, timeout_height, deadline)],
                           _host_of(remote, sender))[0]
    _print(result, as_json, [f"sent as packet {result['sequence']}" if result["code"] == "ok" else result["log"]])
    if result["code"] != "ok":
        raise typer.Exit(1)


@ibc_app.command("balances")
def balances(chain: Path = CHAIN, nats: str = NATS, as_json: bool = JSON) -> None:
    """Every account's credits and vouchers on the chain (escrow accounts included)."""
    held: dict[str, dict[str, int]] = {}
    for key, value in connect(chain, nats).items(b"balances/"):
        account, denom = key.decode().split("/", 2)[1:]
        held.setdefault(account, {})[denom] = int(value)
    _print(held, as_json, [f"{account}: {denom} {amount}" for account, denoms in held.items() for denom, amount in denoms.items()]
           or ["no balances"])


def relayer(a: Path = typer.Option(..., "--a", help="one chain: a member's NODE.toml or the lattice's genesis.json"),
            b: Path = typer.Option(..., "--b", help="the other chain"),
            nats_a: str = typer.Option(DEFAULT_NATS, "--nats-a", help="NATS URL(s) of --a, for a genesis file"),
            nats_b: str = typer.Option(DEFAULT_NATS, "--nats-b", help="NATS URL(s) of --b, for a genesis file"),
            interval_s: float = typer.Option(0.5, "--interval-s", min=0.0, help="pause between passes with nothing to relay"),
            once: bool = typer.Option(False, "--once", help="clear what is pending, then stop"),
            as_json: bool = typer.Option(False, "--json", help="print one JSON line per pass that delivered something")) -> None:
    """Relays packets, acknowledgements and timeouts between two lattices over their transfer channel (opened
    first if there is none), updating each side's client of the other. Keeps no state: stop it at any moment."""
    from plurigrid.ibc.errors import IbcError
    from plurigrid.ibc.relayer import Relayer, find_path, open_path
    from plurigrid.ibc.remote import LatticeUnreachable

    chain_a, chain_b = connect(a, nats_a, "--a"), connect(b, nats_b, "--b")
    path = find_path(chain_a, chain_b)
    if path is None:
        for chain in (chain_a, chain_b):
            chain.submit([])  # a fresh block each, so the clients start from a recent consensus state
        path = open_path(chain_a, chain_b)
    side_a, side_b = path
    console.err.print(f"relaying {chain_a.chain_id} {side_a.channel} <-> {chain_b.chain_id} {side_b.channel}",
                      markup=False, highlight=False, soft_wrap=True)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    while not stopping:
        relay = Relayer(side_a, side_b)
        try:
            moved = relay.relay()
        except (LatticeUnreachable, IbcError) as err:  # a member restarting, a race with another relayer: try again
            console.err.print(f"plurigrid relayer: {err}", markup=False, highlight=False, soft_wrap=True)
            moved = 0
        if moved and as_json:
            sys.stdout.write(json.dumps(relay.delivered) + "\n")
            sys.stdout.flush()
        if once and not moved:
            break
        if not moved:
            time.sleep(interval_s)
    for chain in (chain_a, chain_b):
        chain.close()
