"""`plurigrid node status`: where a nexus node is in its lifecycle, and what its host can do."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from plurigrid.cli.errors import UserError

node_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Inspect a nexus node.")
_out = Console()


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="seconds")


@node_app.command("status")
def status(
    config: Path = typer.Option(..., "--config", help="the node's NODE.toml"),
    history: int = typer.Option(10, "--history", min=0, help="how many recent transitions to show"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """The node's state (boot, join, sync, active, offline, reconcile, stopped), since when and why."""
    from plurigrid.node.config import detect_host, load_node_config
    from plurigrid.node.lifecycle import read_status

    node_config, data_dir = load_node_config(config)
    try:
        state, transitions = read_status(data_dir)
    except FileNotFoundError as err:
        raise UserError(str(err)) from None
    host = detect_host(node_config.capabilities.devices)
    if as_json:
        sys.stdout.write(json.dumps({"node": node_config.node.name, **state, "host": host.to_json(),
                                     "participants": node_config.node.participants,
                                     "history": transitions[-history:] if history else []}, indent=2) + "\n")
        return
    _out.print(f"{node_config.node.name} ({state['did']}): {state['state']} since {_when(state['since'])} "
               f"({state['reason']})", highlight=False, soft_wrap=True)
    _out.print(f"participants: {', '.join(node_config.node.participants)}; host: {host.arch}, {host.cores} cores, "
               f"{host.memory_mb:,} MB, devices: {', '.join(host.devices) or 'none'}", highlight=False, soft_wrap=True)
    if history:
        table = Table("time", "from", "to", "reason", box=None)
        for row in transitions[-history:]:
            table.add_row(_when(row["time"]), row["from"] or "", row["to"], row["reason"])
        _out.print(table)
