"""The `plurigrid` command: parse, call the library, print. User errors exit 2 with one line."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

try:  # typer >= 0.20 vendors click; older releases depend on it
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions
from rich.console import Console
from rich.table import Table

from plurigrid.cli.errors import UserError
from plurigrid.cli.lattice import lattice_app
from plurigrid.cli.ledger import ics23_app, ledger_app
from plurigrid.cli.module import module_app
from plurigrid.cli.node import node_app
from plurigrid.microworld.spec import MECHANISMS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Plurigrid: microworld simulator with markets and AC power flow.")
app.add_typer(module_app, name="module")
app.add_typer(ledger_app, name="ledger")
app.add_typer(ics23_app, name="ics23")
app.add_typer(node_app, name="node")
app.add_typer(lattice_app, name="lattice")
out_console = Console()
err_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out_console.print(f"plurigrid {version('plurigrid')}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="print the installed version and exit")) -> None:
    """Plurigrid: microworld simulator with markets and AC power flow."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from plurigrid.assets.profiles import ProfileError
    from plurigrid.lattice.faults import FaultError
    from plurigrid.lattice.genesis import GenesisError
    from plurigrid.lattice.identity import IdentityError
    from plurigrid.lattice.launcher import LatticeError
    from plurigrid.lattice.natsd import NatsError
    from plurigrid.lattice.transport import TransportDown
    from plurigrid.state.ledger import LedgerError
    from plurigrid.grid.build import GridError
    from plurigrid.microworld.loader import SpecError
    from plurigrid.grid.matpower import MatpowerError
    from plurigrid.opf.network import CaseError
    from plurigrid.strategies.wasm.authoring import AuthoringError
    from plurigrid.strategies.wasm.host import ModuleError
    from plurigrid.strategies.wasm.manifest import ManifestError

    return (UserError, SpecError, GridError, ProfileError, MatpowerError, CaseError, ModuleError, ManifestError,
            AuthoringError, LedgerError, LatticeError, FaultError, NatsError, GenesisError, IdentityError,
            TransportDown)


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
    from plurigrid.engine.world import compile_world
    from plurigrid.microworld.loader import load

    spec, name, base = load(path)
    world = compile_world(spec, name, base)
    out_console.print(f"{name}: valid ({world.n} participants, {len(world.grid.net.bus)} buses, {world.steps} steps)")


class _Progress:
    """A progress bar that appears only when a run takes longer than a second on a terminal."""

    def __init__(self, total: int) -> None:
        self.total, self.t0, self.bar, self.task = total, time.perf_counter(), None, None

    def __call__(self, k: int) -> None:
        if self.bar is None:
            if time.perf_counter() - self.t0 < 1.0 or not sys.stderr.isatty():
                return
            from rich.progress import Progress

            self.bar = Progress(console=err_console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("simulating", total=self.total)
        self.bar.update(self.task, completed=k + 1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command()
def run(
    world: str = typer.Argument(..., help="library microworld name or path to a .toml/.json file"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder (default runs/<world>-<timestamp>/)"),
    hours: Optional[float] = typer.Option(None, "--hours", help="simulate only the first H hours"),
    mechanism: Optional[str] = typer.Option(None, "--mechanism", help=f"one of {', '.join(MECHANISMS)}"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed (default: the world's)"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json instead of the table"),
    efficiency: bool = typer.Option(False, "--efficiency",
                                    help="also run the opf optimum of the same world and report welfare / optimal welfare"),
) -> None:
    """Simulate a microworld and write its run folder."""
    from plurigrid.engine.ledger_entries import RunLedger
    from plurigrid.engine.output import write_run
    from plurigrid.engine.results import summary as make_summary
    from plurigrid.engine.simulate import simulate
    from plurigrid.engine.world import compile_world
    from plurigrid.microworld.loader import load

    if mechanism is not None and mechanism not in MECHANISMS:
        raise UserError(f"--mechanism: unknown mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}")
    if hours is not None and hours <= 0:
        raise UserError(f"--hours: must be > 0, got {hours}")
    spec, name, base = load(world)
    w = compile_world(spec, name, base, hours=hours, mechanism=mechanism, seed=seed)
    microworld = name.removesuffix(".toml").removesuffix(".json")
    folder = out or Path("runs") / f"{microworld}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    progress = _Progress(w.steps)
    ledger = RunLedger(folder / "ledger")
    try:
        record = simulate(w, progress, after_step=ledger)
    finally:
        progress.close()
        ledger.close()
    summary = make_summary(record, microworld)
    summary["ledger"] = {"height": ledger.head.height, "head": ledger.head.hash, "state_root": ledger.head.state_root}
    if efficiency:
        from plurigrid.engine.results import kpis, welfare_efficiency

        welfare = summary["kpis"]["welfare"]
        optimal = welfare if w.mechanism == "opf" else kpis(simulate(compile_world(
            spec, name, base, hours=hours, mechanism="opf", seed=seed)))["welfare"]
        summary["mechanism_properties"]["welfare"] = welfare_efficiency(welfare, optimal)
    write_run(record, summary, folder)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    _print_summary(summary, folder)


@app.command()
def opf(
    case: Path = typer.Argument(..., help="MATPOWER .m case file or pandapower .json net"),
    model: str = typer.Option("dc", "--model", help="dc, ac or lindistflow"),
    dc_line_model: str = typer.Option("matpower", "--dc-line-model",
                                      help="DC branch model: matpower (b = 1/(x*tap), shifters) or powermodels (b = x/(r^2+x^2))"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Solve an optimal power flow; exit 3 if the problem has no optimum."""
    from plurigrid.opf.dc import LINE_MODELS
    from plurigrid.opf.network import load_case
    from plurigrid.opf.solve import MODELS, solve_case

    if model not in MODELS:
        raise UserError(f"--model: unknown model {model!r}; expected one of {', '.join(MODELS)}")
    if dc_line_model not in LINE_MODELS:
        raise UserError(f"--dc-line-model: unknown line model {dc_line_model!r}; expected one of {', '.join(LINE_MODELS)}")
    net = load_case(case)
    result = solve_case(net, model, dc_line_model)
    if as_json:
        sys.stdout.write(json.dumps({"case": net.name, **result.to_json()}) + "\n")
    else:
        out_console.print(f"{net.name}: {result.model} {result.status}, objective {result.objective:,.4f} per h, "
                          f"build {result.build_time_s * 1000:.1f} ms, solve {result.solve_time_s * 1000:.1f} ms")
        if result.ok:
            table = Table("bus", "LMP per MWh", box=None)
            for bus, price in zip(net.bus_id, result.lmp):
                table.add_row(str(bus), f"{price:,.4f}")
            out_console.print(table)
    if not result.ok:
        raise typer.Exit(3)


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
    total = sum(summary["timings_s"].values())
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in summary["timings_s"].items())
    out_console.print(f"step time {total:.2f}s ({stages})")
    ledger = summary["ledger"]
    out_console.print(f"ledger: {ledger['height']} blocks, state root {ledger['state_root']}", soft_wrap=True)
    out_console.print(f"run folder: {folder}")


def main() -> None:
    """Entry point: maps user errors to one line and exit 2, internal errors to exit 1."""
    user_errors = _user_errors()
    exits = tuple({typer.Exit, getattr(click_exceptions, "Exit", typer.Exit)})
    aborts = tuple({typer.Abort, getattr(click_exceptions, "Abort", typer.Abort)})
    try:
        code = app(standalone_mode=False, prog_name="plurigrid")
        sys.exit(code if isinstance(code, int) else 0)
    except user_errors as exc:
        err_console.print(f"plurigrid: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except click_exceptions.UsageError as exc:
        where = f" ({exc.ctx.command_path})" if exc.ctx else ""
        err_console.print(f"plurigrid: error{where}: {exc.format_message()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except exits as exc:
        sys.exit(exc.exit_code)
    except aborts:
        sys.exit(130)
    except Exception as exc:  # internal error: one line, traceback on request
        if os.environ.get("PLURIGRID_DEBUG"):
            raise
        err_console.print(f"plurigrid: internal error: {exc.__class__.__name__}: {exc} (set PLURIGRID_DEBUG=1 for a traceback)",
                          markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
