"""`plurigrid lattice up`: run N nexus nodes on one transport and report whether they agreed."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import typer

from plurigrid.cli import console

lattice_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run a local lattice of nexus nodes.")
_out = console.out


@lattice_app.command("up")
def up(
    nodes: int = typer.Option(3, "--nodes", help="how many nexus nodes"),
    microworld: str = typer.Option("hello", "--microworld", help="library name or path of the world they share"),
    transport: str = typer.Option("inproc", "--transport", help="inproc (one process) or nats"),
    nats: str | None = typer.Option(None, "--nats", help="'auto' (start a 3-server JetStream cluster) or URL[,URL...]"),
    intervals: int | None = typer.Option(None, "--intervals", help="intervals to clear (default: the whole world)"),
    data: Path | None = typer.Option(None, "--data", help="keep each node's data folder (ledger, status) here"),
    close_after_s: float = typer.Option(2.0, "--close-after-s", help="close an interval after this long without all decisions"),
    fault: list[str] = typer.Option([], "--fault", help="kill:N@I, restart:N@I, partition:N@I-J, nats-kill:S@I, "
                                                        "nats-restart:S@I, byzantine:N (repeatable)"),
    speed: float | None = typer.Option(None, "--speed", help="pace intervals at this multiple of real time "
                                                               "(default: each closes as soon as all decided)"),
    nodes_per_process: int = typer.Option(1, "--nodes-per-process", help="on nats: pack this many nodes into each OS process"),
    netns: str | None = typer.Option(None, "--netns", help="on nats: run the node processes in these network namespaces "
                                     "(NAME[,NAME...], round-robin; `ip netns exec`, needs root)"),
    nats_host: str | None = typer.Option(None, "--nats-host", help="with --nats auto: the address the cluster listens on "
                                         "(default 127.0.0.1; a bridge's address for nodes in --netns)"),
    sealed_bids: bool = typer.Option(False, "--sealed-bids", help="nodes commit to their decisions (a hash) before the "
                                     "gate closes and reveal them after; unrevealed ones settle at tariff"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Every node decides for its own participants; all must commit the same state root per interval."""
    from plurigrid.node.launcher import run_lattice

    report = asyncio.run(run_lattice(microworld, nodes, intervals, transport, nats, data, close_after_s, fault,
                                     nodes_per_process, speed,
                                     [n.strip() for n in netns.split(",") if n.strip()] if netns else (), nats_host,
                                     sealed_bids))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        root = next(iter(report["state_roots"].values()), "")
        verdict = "agreed" if report["agreed"] else "DISAGREED"
        _out.print(f"{report['nodes']} nodes on {transport}, {report['settled_intervals']}/{report['intervals']} intervals "
                   f"settled: {verdict} on state root {root}", highlight=False, soft_wrap=True)
        _out.print(f"lost settlements {report['lost_settlements']}, money residual {report['money_residual_micro']} micro, "
                   f"rejected messages {report['rejected_messages']}, close→commit p50 {report['latency_ms']['p50']:.1f} ms "
                   f"p99 {report['latency_ms']['p99']:.1f} ms", highlight=False, soft_wrap=True)
    if not report["agreed"]:
        raise typer.Exit(1)


@lattice_app.command("totals")
def totals(
    genesis: Path = typer.Option(..., "--genesis", help="the lattice's genesis.json (its operator is this key's did)"),
    key: Path = typer.Option(..., "--key", help="the operator's Ed25519 key (32-byte seed file)"),
    bus: str | None = typer.Option(None, "--bus", help="a feeder: the participants at this bus"),
    coalition: str | None = typer.Option(None, "--coalition", help="a coalition the genesis file names"),
    intervals: str = typer.Option("0", "--intervals", help="an interval K or a range K-L (cleared ones)"),
    nats: str = typer.Option("nats://127.0.0.1:4222", "--nats", help="NATS server URL(s), comma-separated"),
    timeout_s: float = typer.Option(2.0, "--timeout-s", help="how long a round waits for the nodes' answers"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """The operator's totals of a feeder or coalition per interval: net Wh metered and Wh of flexibility offered,
    by secure aggregation over the nodes that host its participants (no node's part is revealed; docs/privacy.md)."""
    from plurigrid.errors import UsageError
    from plurigrid.lattice.genesis import Genesis
    from plurigrid.node.runner import SharedWorlds
    from plurigrid.privacy.totals import group_totals
    from plurigrid.state.identity import Identity

    if (bus is None) == (coalition is None):
        raise UsageError("give --bus or --coalition (one of them)")
    group = f"bus:{bus}" if bus is not None else f"coalition:{coalition}"
    first, _, last = intervals.partition("-")
    if not first.isdigit() or not (last or first).isdigit() or int(last or first) < int(first):
        raise UsageError(f"--intervals: expected K or K-L with K <= L, got {intervals!r}")
    lattice = Genesis.load(genesis)
    operator = Identity.load(key)
    if lattice.operator != operator.did:
        raise UsageError(f"--key: {operator.did} is not the operator the genesis names ({lattice.operator})")
    name = lattice.microworld
    world = SharedWorlds().get(str(genesis.parent / name) if name.endswith(".toml") and not Path(name).is_absolute() else name, ())
    rows = asyncio.run(group_totals([s.strip() for s in nats.split(",") if s.strip()], lattice, world, operator, group,
                                    range(int(first), int(last or first) + 1), timeout_s))
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    for row in rows:
        missing = f"; missing {len(row['missing'])} that did not answer: {', '.join(row['missing'])}" if row["missing"] else ""
        _out.print(f"interval {row['interval']}: {group} net {row['net_wh']:,} Wh, flexibility offered {row['flexibility_wh']:,} Wh, "
                   f"from {len(row['members'])} nodes ({row['seconds']:.2f} s{missing})", highlight=False, soft_wrap=True)
