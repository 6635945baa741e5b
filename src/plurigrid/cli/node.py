"""`plurigrid node --config NODE.toml` runs a nexus node; `node status` shows its lifecycle and host; `node id` its did."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from plurigrid.cli import console
from plurigrid.errors import UsageError

node_app = typer.Typer(add_completion=False, no_args_is_help=True, invoke_without_command=True,
                       help="Run or inspect a nexus node.")
_out = console.out


@node_app.callback()
def run(
    ctx: typer.Context,
    config: list[Path] = typer.Option([], "--config", help="the node's NODE.toml (repeat to run several nodes in one process)"),
    intervals: int | None = typer.Option(None, "--intervals", help="stop after this many intervals (default: the whole world)"),
    join_timeout_s: float = typer.Option(30.0, "--join-timeout-s", help="how long interval 0 waits to hear every member"),
    byzantine: bool = typer.Option(False, "--byzantine", hidden=True, help="chaos runs: also send forgeries and garbage"),
) -> None:
    """Runs the node(s): join the lattice in the genesis file, clear every interval, write report.json."""
    if ctx.invoked_subcommand is not None:
        return
    if not config:
        raise UsageError("--config: give the node's NODE.toml")
    from plurigrid.node.runner import run_nodes

    reports = asyncio.run(run_nodes(config, intervals, byzantine, join_timeout_s))
    for path, report in zip(config, reports):
        _out.print(f"{path}: {len(report.roots)} intervals, state root {report.roots[-1] if report.roots else '-'}",
                   highlight=False, soft_wrap=True)


@node_app.command("id")
def node_id(config: Path = typer.Option(..., "--config", help="the node's NODE.toml")) -> None:
    """Prints the node's did:key (creating its key in the data folder if it has none), for the genesis file."""
    from plurigrid.node.config import load_node_config
    from plurigrid.state.identity import Identity

    _, data_dir = load_node_config(config)
    sys.stdout.write(Identity.load_or_create(data_dir / "identity.key").did + "\n")


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="seconds")


@node_app.command("status")
def status(
    config: Path = typer.Option(..., "--config", help="the node's NODE.toml"),
    history: int = typer.Option(10, "--history", min=0, help="how many recent transitions to show"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """The node's state (boot, join, sync, active, offline, reconcile, stopped), since when and why."""
    from plurigrid.node.config import detect_host, load_node_config
    from plurigrid.node.lifecycle import read_status, read_view

    node_config, data_dir = load_node_config(config)
    try:
        state, transitions = read_status(data_dir)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    host = detect_host(node_config.capabilities.devices)
    lattice = read_view(data_dir)
    if as_json:
        sys.stdout.write(json.dumps({"node": node_config.node.name, **state, "host": host.to_json(),
                                     "participants": node_config.node.participants, "lattice": lattice,
                                     "history": transitions[-history:] if history else []}, indent=2) + "\n")
        return
    _out.print(f"{node_config.node.name} ({state['did']}): {state['state']} since {_when(state['since'])} "
               f"({state['reason']})", highlight=False, soft_wrap=True)
    _out.print(f"participants: {', '.join(node_config.node.participants)}; host: {host.arch}, {host.cores} cores, "
               f"{host.memory_mb:,} MB, devices: {', '.join(host.devices) or 'none'}", highlight=False, soft_wrap=True)
    if lattice:
        up = sum(m["alive"] for m in lattice.values())
        _out.print(f"lattice: {up} of {len(lattice)} other members up", highlight=False)
        members = Table("member", "up", "hosts", "joined", box=None)
        for did, m in lattice.items():
            members.add_row(did, "yes" if m["alive"] else "no", ", ".join(m["hosts"]), _when(m["joined"]))
        _out.print(members)
    if history:
        table = Table("time", "from", "to", "reason", box=None)
        for row in transitions[-history:]:
            table.add_row(_when(row["time"]), row["from"] or "", row["to"], row["reason"])
        _out.print(table)
