"""Retention: a participant's per-step records leave the service's run folders once their policy's period has passed.

Each finished run keeps per-step tables (participants.parquet, trades.parquet); a participant whose policy keeps
a kind for `retention_days` has its rows of that kind removed once the run finished longer ago than that:
their meter and state per step (participants.parquet) for `meter`, the trades they took part in for `bids`.
Their bills stay (settlements.parquet: the operator's books), and so does the run's ledger, whose blocks are the
verifiable record every policy consents to (docs/privacy.md). What was removed is noted in the run's
`retention.json`, so the API can say why it is gone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from plurigrid.jsonfile import write_text_atomic
from plurigrid.server import _privacy as privacy
from plurigrid.server._db import Database

RECORD = "retention.json"
DAY_S = 86400.0
TABLES = {"meter": ("participants.parquet", ("participant",)), "bids": ("trades.parquet", ("buyer", "seller"))}


def expired(folder: Path) -> dict[str, list[str]]:
    """What retention removed from a run folder: kind → participants."""
    path = folder / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _drop(path: Path, columns: tuple[str, ...], participants: set[str]) -> None:
    table = pq.read_table(path)
    keep = None
    for column in columns:
        inside = pc.is_in(table[column].cast(pa.string()), value_set=pa.array(sorted(participants)))
        keep = pc.invert(inside) if keep is None else pc.and_(keep, pc.invert(inside))
    pruned = table.filter(keep)
    temporary = path.with_suffix(".pruning")
    pq.write_table(pruned, temporary)
    temporary.replace(path)


def _participants(folder: Path) -> list[str]:
    path = folder / "settlements.parquet"
    return [str(p) for p in pq.read_table(path, columns=["participant"])["participant"].to_pylist()] if path.is_file() else []


def prune(db: Database, runs_dir: Path, now: float | None = None) -> dict[str, dict[str, list[str]]]:
    """Removes every expired participant's per-step rows from the finished runs; returns run → kind → participants
    removed now."""
    now = time.time() if now is None else now
    removed: dict[str, dict[str, list[str]]] = {}
    for row in db.runs():
        folder = runs_dir / row["id"]
        if row["finished"] is None or not (folder / "request.json").is_file():
            continue
        age_days = (now - row["finished"]) / DAY_S
        done = expired(folder)
        due: dict[str, set[str]] = {}
        for participant in _participants(folder):
            policy = privacy.policy(folder, participant)
            for kind in TABLES:
                days = getattr(policy, kind).retention_days
                if days is not None and age_days > days and participant not in done.get(kind, []):
                    due.setdefault(kind, set()).add(participant)
        for kind, participants in due.items():
            name, columns = TABLES[kind]
            if (folder / name).is_file():
                _drop(folder / name, columns, participants)
            done[kind] = sorted({*done.get(kind, []), *participants})
            removed.setdefault(row["id"], {})[kind] = sorted(participants)
        if due:
            write_text_atomic(folder / RECORD, json.dumps(done, indent=1) + "\n")
    return removed
