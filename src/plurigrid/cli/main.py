"""The `plurigrid` command: parse, call the library, print. User errors exit 2 with one line."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

try:  # typer >= 0.20 vendors click; older releases depend on it
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]  # the same module, where older typer has it
from rich.table import Table

from plurigrid.cli import console
from plurigrid.cli.chat import chat
from plurigrid.cli.game import game_app
from plurigrid.cli.ibc import ibc_app, relayer
from plurigrid.cli.kanban import kanban
from plurigrid.cli.lattice import lattice_app
from plurigrid.cli.ledger import ics23_app, ledger_app
from plurigrid.cli.module import module_app
from plurigrid.cli.node import node_app
from plurigrid.cli.opf import opf
from plurigrid.cli.powerflow import powerflow
from plurigrid.cli.serve import serve, token_app
from plurigrid.cli.sweep import sweep
from plurigrid.errors import PlurigridError, UsageError
from plurigrid.microworld.names import MECHANISMS

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Plurigrid: microworld simulator with markets and AC power flow.")
app.add_typer(module_app, name="module")
app.add_typer(ledger_app, name="ledger")
app.add_typer(ics23_app, name="ics23")
app.add_typer(node_app, name="node")
app.add_typer(lattice_app, name="lattice")
app.add_typer(game_app, name="game")
app.add_typer(token_app, name="token")
app.add_typer(ibc_app, name="ibc")
app.command("relayer")(relayer)
app.command("powerflow")(powerflow)
app.command("opf")(opf)
app.command("kanban")(kanban)
app.command("serve")(serve)
app.command("sweep")(sweep)
app.command("chat")(chat)
out_console = console.out
err_console = console.err


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out_console.print(f"plurigrid {version('plurigrid')}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="print the installed version and exit")) -> None:
    """Plurigrid: microworld simulator with markets and AC power flow."""


@app.command("list")
def list_worlds() -> None:
    """List the library microworlds."""
    from plurigrid.microworld.loader import library_worlds

    table = Table("microworld", "description", box=None)
    for name, desc in library_worlds().items():
        table.add_row(name, desc)
    out_console.print(table)


@app.command()
def validate(path: str = typer.Argument(..., help="microworld file or library name")) -> None:
    """Check a microworld spec (and that its grid and participants compile)."""
    from plurigrid.microworld.loader import load

    spec, name, base = load(path)
    from plurigrid.engine.world import compile_world  # after the spec: a bad one is refused before the grid stack loads

    world = compile_world(spec, name, base)
    out_console.print(f"{name}: valid ({world.n} participants, {len(world.grid.net.bus)} buses, {world.steps} steps)")


class _Progress:
    """A progress bar with ETA on stderr, shown once a run has taken 2 s, on a terminal and unless quiet."""

    def __init__(self, quiet: bool) -> None:
        self.show = not quiet and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if not self.show or time.perf_counter() - self.t0 < 2.0:
                return
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("simulating"), BarColumn(), TaskProgressColumn(),
                                TextColumn("{task.completed:,}/{task.total:,} steps"), TimeRemainingColumn(),
                                console=err_console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("simulating", total=total)
        assert self.task is not None  # added with the bar
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _record_kinds(value: str | None) -> set[str] | None:
    """`--record` as the API's `record` (None: the default; "summary": no per-step detail)."""
    if value is None:
        return None
    from plurigrid.engine.record import RECORD_KINDS

    kinds = {v.strip() for v in value.split(",") if v.strip()}
    unknown = sorted(kinds - set(RECORD_KINDS) - {"summary"})
    if unknown or not kinds:
        raise UsageError(f"--record: unknown kind {unknown[0] if unknown else value!r}; expected a comma-separated "
                         f"list of {', '.join(RECORD_KINDS)}, or summary")
    return kinds - {"summary"}


@app.command()
def run(
    world: str = typer.Argument(..., help="library microworld name or path to a .toml/.json file"),
    out: Path | None = typer.Option(None, "--out", help="run folder (default runs/<world>-<timestamp>/)"),
    hours: float | None = typer.Option(None, "--hours", help="simulate only the first H hours"),
    mechanism: str | None = typer.Option(None, "--mechanism", help=f"one of {', '.join(MECHANISMS)}"),
    seed: int | None = typer.Option(None, "--seed", help="random seed (default: the world's)"),
    record: str | None = typer.Option(None, "--record", help="per-step detail to keep: comma-separated series, "
                                         "participants, trades, grid, or summary (default: all but grid over 1,000 buses)"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json instead of the table"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    efficiency: bool = typer.Option(False, "--efficiency",
                                    help="also run the opf optimum of the same world and report welfare / optimal welfare"),
    signer_key: Path | None = typer.Option(None, "--signer-key", help="file of the Ed25519 key that signs the ledger "
                                           "(default $PLURIGRID_SIGNER_KEY, else ~/.config/plurigrid/signer.key; "
                                           "created if missing)"),
) -> None:
    """Simulate a microworld and write its run folder."""
    import plurigrid

    if mechanism is not None and mechanism not in MECHANISMS:
        raise UsageError(f"--mechanism: unknown mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}")
    if hours is not None and hours <= 0:
        raise UsageError(f"--hours: must be > 0, got {hours}")
    kinds = _record_kinds(record)
    w = plurigrid.load(world, hours=hours, mechanism=mechanism, seed=seed)
    from plurigrid.engine.output import write_summary  # after the world: a bad spec is refused before these load
    from plurigrid.engine.record import default_record
    from plurigrid.engine.results import welfare_efficiency

    folder = out or Path("runs") / f"{w.microworld}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if kinds is None and "grid" not in default_record(w._world) and not as_json:
        err_console.print(f"{w.microworld}: {len(w.net.bus):,} buses: per-bus and per-branch results are not kept "
                          "(--record series,participants,trades,grid keeps them)", markup=False, highlight=False)
    from plurigrid.grid.powerflow import kernels_cached

    if not quiet and not as_json and not kernels_cached():
        err_console.print("plurigrid: first run after install: compiling the power-flow kernels (once, a few seconds)",
                          markup=False, highlight=False)
    progress = _Progress(quiet)
    try:
        result = w.run(out=folder, progress=progress, record=kinds, signer_key=signer_key)
    finally:
        progress.close()
    summary = result.summary
    if efficiency:
        welfare = summary["kpis"]["welfare"]
        optimal = welfare if w.mechanism == "opf" else plurigrid.load(
            world, hours=hours, mechanism="opf", seed=seed).run(ledger=False, record=()).kpis["welfare"]
        summary["mechanism_properties"]["welfare"] = welfare_efficiency(welfare, optimal)
        write_summary(folder, summary)
    if result.partial:
        err_console.print(f"stopped after {summary['partial']['steps_done']:,} of {summary['partial']['steps_planned']:,} "
                          f"steps; the run folder holds them (summary.json says partial)", markup=False, highlight=False)
    if not summary["reproducible"]:
        first = summary["host_faults"][0]
        faults = sum(m["host_faults"] for m in summary["modules"].values())
        err_console.print(f"plurigrid: warning: this run is not reproducible: {faults:,} module call(s) ran past the "
                          f"wall-clock backstop (first: step {first['step']}, {first['participant']}); summary.json "
                          "lists them under host_faults", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        _print_summary(summary, folder)
    _warn_individual_rationality(summary)
    if result.partial:
        raise typer.Exit(130)


IR_WARNINGS = 10  # lines at most; summary.json lists every participant


def _warn_individual_rationality(summary: dict) -> None:
    """One warning line on stderr per participant whose bill exceeds its tariff baseline, dearest first, and why."""
    above, currency = summary.get("individual_rationality", []), summary["currency"]

    def money(micro: int) -> str:
        return f"{micro * 1e-6:,.2f}" if abs(micro) >= 5_000 else f"{micro * 1e-6:.6f}"

    for p in above[:IR_WARNINGS]:
        why = "; ".join(p["reasons"]) or "rounding"
        err_console.print(f"plurigrid: warning: {p['participant']} paid {money(p['bill_micro'])} {currency} against a "
                          f"tariff baseline of {money(p['baseline_micro'])} (+{money(p['excess_micro'])}): {why}",
                          markup=False, highlight=False, soft_wrap=True)
    if len(above) > IR_WARNINGS:
        err_console.print(f"plurigrid: warning: and {len(above) - IR_WARNINGS:,} more participants above their tariff "
                          "baseline (summary.json: individual_rationality)", markup=False, highlight=False, soft_wrap=True)


def _print_summary(summary: dict, folder: Path) -> None:
    table = Table(title=f"{summary['name']} · {summary['mechanism']} · {summary['steps']} steps · "
                        f"{summary['participants']} participants", box=None)
    table.add_column("kpi")
    table.add_column("value", justify="right")
    for key, value in summary["kpis"].items():
        table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else str(value))
    for key, value in summary["balance"].items():
        table.add_row(key, str(value))
    out_console.print(table)
    stages = {k: v for k, v in summary["timings_s"].items() if k not in ("whole_run", "opf_solve")}  # opf_solve is part of clear
    listed = ", ".join(f"{k} {v:.2f}s" for k, v in stages.items())
    out_console.print(f"step time {sum(stages.values()):.2f}s ({listed}); whole run "
                      f"{summary['timings_s'].get('whole_run', 0.0):.2f}s")
    ledger = summary.get("ledger")
    if ledger is not None:
        signer = f", signed by {ledger['signer']}" if ledger.get("signer") else ""
        out_console.print(f"ledger: {ledger['height']} blocks, state root {ledger['state_root']}{signer}", soft_wrap=True)
    out_console.print(f"run folder: {folder}")


def main() -> None:
    """Entry point: maps user errors to one line and exit 2, internal errors to exit 1."""
    exits = tuple({typer.Exit, getattr(click_exceptions, "Exit", typer.Exit)})
    aborts = tuple({typer.Abort, getattr(click_exceptions, "Abort", typer.Abort)})
    try:
        code = app(standalone_mode=False, prog_name="plurigrid")
        sys.exit(code if isinstance(code, int) else 0)
    except PlurigridError as exc:
        err_console.print(f"plurigrid: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except click_exceptions.UsageError as exc:
        where = f" ({exc.ctx.command_path})" if exc.ctx else ""
        err_console.print(f"plurigrid: error{where}: {exc.format_message()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except exits as exc:
        sys.exit(exc.exit_code)
    except (*aborts, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # internal error: one line, traceback on request
        if os.environ.get("PLURIGRID_DEBUG"):
            raise
        err_console.print(f"plurigrid: internal error: {exc.__class__.__name__}: {exc} (set PLURIGRID_DEBUG=1 for a traceback)",
                          markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


def run_main() -> None:
    """The `plurigrid` console script: `main`, then a quick exit.

    Every file a command writes is closed by then; tearing down the interpreter's modules (pandapower,
    numba, scipy) would only add half a second to every command.
    """
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
