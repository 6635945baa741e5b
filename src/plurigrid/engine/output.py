"""Writes what a run folder holds besides the streamed Parquet files and the ledger: summary.json, the settlements
table, report.html and the modules' log."""

from __future__ import annotations

import json
from pathlib import Path

from plurigrid.engine.record import Totals
from plurigrid.engine.report import write_report
from plurigrid.engine.results import settlements_table
from plurigrid.engine.world import World


def write_summary(folder: Path, summary: dict) -> None:
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_run(folder: Path, world: World, totals: Totals, summary: dict, modules_log: list[str] | None) -> None:
    """Writes the per-run files into `folder` (which the recorder already created)."""
    settlements_table(world, totals).to_parquet(folder / "settlements.parquet", index=False)
    write_summary(folder, summary)
    if modules_log is not None:  # what the modules logged, their failures and swaps
        (folder / "modules.log").write_text("".join(line + "\n" for line in modules_log), encoding="utf-8")
    write_report(world, totals, summary, folder / "report.html")
