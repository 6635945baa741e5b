"""Writes what a run folder holds besides the streamed Parquet files and the ledger: summary.json, the settlements
table, report.html and the modules' log."""

from __future__ import annotations

import json
from pathlib import Path

from plurigrid.engine.record import Totals
from plurigrid.engine.report import write_report
from plurigrid.engine.results import settlements_table
from plurigrid.engine.world import World
from plurigrid.jsonfile import write_text_atomic


def write_summary(folder: Path, summary: dict) -> None:
    """Writes summary.json whole or not at all (written aside, fsynced, renamed), so a run killed meanwhile leaves
    either the summary or none, never a torn one."""
    write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2, sort_keys=False) + "\n", durable=True)


def write_run(folder: Path, world: World, totals: Totals, summary: dict, modules_log: list[str] | None) -> None:
    """Writes the per-run files into `folder` (which the recorder already created); summary.json last, so a folder
    that has one holds every file of the run."""
    settlements_table(world, totals).to_parquet(folder / "settlements.parquet", index=False)
    if modules_log is not None:  # what the modules logged, their failures and swaps
        (folder / "modules.log").write_text("".join(line + "\n" for line in modules_log), encoding="utf-8")
    write_report(world, totals, summary, folder / "report.html")
    write_summary(folder, summary)
