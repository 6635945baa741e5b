"""Pages of a run folder's tables as JSON columns: one step of every bus, a page of steps, one participant.

Reads go through the run folder's Parquet files (what `plurigrid.Run` reads), filtered to the rows asked
for, so that one step of a 10,000-bus grid is one row group's read, not the whole year.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from plurigrid.errors import UsageError


class NotRecorded(UsageError):
    """The run did not record the table asked for (see `record`)."""


def column(values: Any) -> list:
    """A JSON-safe list: NaN and infinities become null, numpy scalars Python ones, times ISO strings."""
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return [float(x) if math.isfinite(x) else None for x in array.tolist()]
    if array.dtype.kind == "M" or isinstance(values, pd.DatetimeIndex):
        return [t.isoformat() for t in pd.DatetimeIndex(values)]
    return [x if not isinstance(x, float) or math.isfinite(x) else None for x in array.tolist()]


def _path(folder: Path, name: str, kind: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise NotRecorded(f"this run did not record {kind} (no {name})")
    return path


@lru_cache(maxsize=64)
def _times(folder: Path, mtime: float) -> pd.DatetimeIndex:
    """Start time of every step the run planned (from its summary; `mtime` keys the cache to the file)."""
    from plurigrid.jsonfile import read_json

    summary: Any = read_json(folder / "summary.json", UsageError)
    start = pd.Timestamp(summary["start"])
    return pd.date_range(start, periods=int(summary["steps"]), freq=pd.Timedelta(hours=float(summary["resolution_h"])))


def times(folder: Path) -> pd.DatetimeIndex:
    path = folder / "summary.json"
    return _times(folder, path.stat().st_mtime)


def step_time(folder: Path, step: int) -> pd.Timestamp:
    index = times(folder)
    if not 0 <= step < len(index):
        raise UsageError(f"step: expected 0 to {len(index) - 1}, got {step}")
    return index[step]


def _one_step(path: Path, when: pd.Timestamp, columns: list[str] | None) -> pd.DataFrame:
    kind = pq.read_schema(path).field("time").type
    at = pa.scalar(when.tz_convert(kind.tz) if kind.tz else when.tz_localize(None), type=kind)
    table = pq.read_table(path, columns=columns, filters=pc.field("time") == at)
    return table.to_pandas()


def timeseries(folder: Path, offset: int, limit: int) -> dict:
    table = pq.read_table(_path(folder, "timeseries.parquet", "series"))
    total = table.num_rows
    page = table.slice(offset, limit).to_pandas()
    return {"total": total, "offset": offset, "time": column(page.pop("time")),
            "columns": {name: column(page[name]) for name in page.columns}}


def buses(folder: Path, step: int, offset: int, limit: int, names: Any) -> dict:
    """Voltage of every bus (by name) at one step."""
    when = step_time(folder, step)
    frame = _one_step(_path(folder, "grid_buses.parquet", "grid"), when, ["bus", "vm_pu"])
    page = frame.iloc[offset:offset + limit]
    return {"step": step, "time": when.isoformat(), "steps": len(times(folder)), "total": len(frame), "offset": offset,
            "bus": [str(names.get(int(b), b)) for b in page["bus"]], "vm_pu": column(page["vm_pu"])}


def branches(folder: Path, step: int, line_names: Any, trafo_names: Any) -> dict:
    """Loading of every line and transformer at one step, in %."""
    when = step_time(folder, step)
    frame = _one_step(_path(folder, "grid_branches.parquet", "grid"), when, ["element", "loading_pct", "kind"])
    out: dict[str, Any] = {"step": step, "time": when.isoformat(), "steps": len(times(folder))}
    for kind, names in (("line", line_names), ("trafo", trafo_names)):
        part = frame[frame["kind"] == kind]
        out[kind] = {"name": [str(names.get(int(e), e)) for e in part["element"]], "loading_pct": column(part["loading_pct"])}
    return out


def participants_at(folder: Path, step: int, offset: int, limit: int, only: set[str] | None = None) -> dict:
    """Every participant's values at one step (`only`: just these participants)."""
    when = step_time(folder, step)
    frame = _one_step(_path(folder, "participants.parquet", "participants"), when, None)
    frame["participant"] = frame["participant"].astype(str)
    if only is not None:
        frame = frame[frame["participant"].isin(only)]
    page = frame.iloc[offset:offset + limit]
    return {"step": step, "time": when.isoformat(), "total": len(frame), "offset": offset,
            "participant": page["participant"].tolist(),
            "columns": {c: column(page[c]) for c in page.columns if c not in ("time", "participant")}}


def participant_series(folder: Path, participant: str) -> dict:
    """One participant's values at every step."""
    path = _path(folder, "participants.parquet", "participants")
    table = pq.read_table(path)
    table = table.filter(pc.equal(table["participant"].cast("string"), participant))
    frame = table.to_pandas()
    return {"participant": participant, "time": column(frame.pop("time")),
            "columns": {c: column(frame[c]) for c in frame.columns if c != "participant"}}


def settlements(folder: Path, only: set[str] | None = None) -> list[dict]:
    """Each participant's energy and bill over the run, against the tariff baseline."""
    frame = pd.read_parquet(_path(folder, "settlements.parquet", "settlements"))
    if only is not None:
        frame = frame[frame["participant"].astype(str).isin(only)]
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v.item() if hasattr(v, "item") else v)
             for k, v in row.items()} for row in frame.to_dict("records")]
