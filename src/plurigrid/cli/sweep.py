"""`plurigrid sweep`: run a sweep file's points on Dask (or in this process) and gather them into one table."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from plurigrid.cli import console
from plurigrid.errors import UsageError


def sweep(
    sweep_file: Path = typer.Argument(..., help="the sweep's TOML file (docs/sweeps.md)"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="address of a running Dask scheduler (tcp://host:8786)"),
    workers: int | None = typer.Option(None, "--workers", help="processes of the local Dask cluster (default: all cores)"),
    serial: bool = typer.Option(False, "--serial", help="run the points in this process, one after another"),
    out: Path | None = typer.Option(None, "--out", help="sweep folder (default sweeps/<sweep file's name>/); a sweep "
                                    "stopped there resumes"),
    as_json: bool = typer.Option(False, "--json", help="print the table as JSON records instead of the summary"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Run a microworld at every point of a sweep; write sweep.parquet and report.html."""
    from plurigrid.sweeps.executors import make_executor
    from plurigrid.sweeps.report import HIGHER_IS_BETTER, best_points
    from plurigrid.sweeps.runner import load_sweep, run_sweep

    spec = load_sweep(sweep_file)
    folder = out or Path("sweeps") / sweep_file.stem
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out: {folder} is a file; expected a folder for the sweep")
    executor = make_executor(serial=serial, workers=workers, scheduler=scheduler)
    bar = None if quiet or as_json else _bar()
    try:
        table = run_sweep(spec, folder, executor, None if bar is None else bar.update)
    finally:
        executor.close()
        if bar is not None:
            bar.close()
    if as_json:
        sys.stdout.write(table.reset_index().to_json(orient="records", indent=1) + "\n")
    else:
        ok = int((table["status"] == "ok").sum())
        console.out.print(f"{len(table):,} points: {ok:,} ok, {len(table) - ok:,} failed, on {executor.workers} worker(s)")
        kpi = spec.sweep.kpis[0]
        best = best_points(table, kpi, 3)
        if len(best):
            params = [c for c in table.columns if c in spec.axes or (spec.random is not None and c in spec.random.draws)]
            grid = Table(*["point", *params, kpi], box=None,
                         title=f"best {kpi} ({'highest' if kpi in HIGHER_IS_BETTER else 'lowest'})")
            for idx, row in best.iterrows():
                grid.add_row(str(idx), *(str(row[p]) for p in params), f"{row[kpi]:,.4g}")
            console.out.print(grid)
        console.out.print(f"sweep folder: {folder} (sweep.parquet, report.html)")
    failed = table[table["status"] != "ok"]
    for idx, row in failed.head(5).iterrows():
        console.err.print(f"plurigrid: point {idx} failed: {row['error']}", markup=False, highlight=False, soft_wrap=True)
    if len(failed) > 5:
        console.err.print(f"plurigrid: and {len(failed) - 5:,} more failed points (sweep.parquet: status, error)",
                          markup=False, highlight=False)


class _bar:
    """A rich progress bar over the sweep's points."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]}"),
                                  TimeRemainingColumn(), console=console.err, transient=True)
        self._task = self._progress.add_task("sweep", total=None, failed="")
        self._failed = 0
        self._progress.start()

    def update(self, done: int, total: int, row: dict) -> None:
        self._failed += row.get("status") == "failed"
        self._progress.update(self._task, completed=done, total=total,
                              failed=f"{self._failed} failed" if self._failed else "")

    def close(self) -> None:
        self._progress.stop()


