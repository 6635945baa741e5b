"""Runs a sweep: each point a deterministic run on an executor, each finished point a file, all of them one table.

The sweep folder holds `points/<id>.json` (one per finished point, written as it finishes, so a
stopped sweep resumes where it was), `sweep.parquet` (one row per point: parameters, status, KPIs),
`report.html` and `sweep.json` (the sweep as it ran). A point that fails is recorded with its error
line and the sweep goes on; a resumed sweep runs the failed points again.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plurigrid.errors import PlurigridError, UsageError
from plurigrid.sweeps.points import Point, apply, canonical, expand, point_id
from plurigrid.sweeps.spec import SweepSpec, read_sweep, resolve_world, sweep_from_data

if TYPE_CHECKING:
    import pandas as pd

    from plurigrid.sweeps.executors import Executor

SweepProgress = Callable[[int, int, dict], None]  # (points done, points in all, the row just finished)
TIMING_COLUMNS = ("run_s",)  # the only columns that differ between two runs of one sweep


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one point (plain data: it travels to other machines)."""

    id: str
    point: Point  # the parameters as the sweep gives them (a `world` value as written)
    world: str  # the base world: a library name or an absolute path
    hours: float | None
    seed: int
    ledger: bool
    assets: dict = field(default_factory=dict)
    base: str | None = None  # the sweep file's folder: relative `world` values are read from there

    def asset(self, name: str) -> dict:
        return self.assets[name]


@lru_cache(maxsize=32)
def _base_data(world: str) -> tuple[str, dict, str | None]:
    """A world's plain data, parsed once per worker process: (display name, data, folder of its relative paths)."""
    from plurigrid.microworld.loader import parse_text, resolve

    name, text, base = resolve(world)
    return name, parse_text(name, text), None if base is None else str(base)


def run_point(task: Task) -> dict:
    """Runs one point; returns its row (status "ok" with KPIs, or "failed" with one error line). Never raises."""
    import plurigrid

    t0 = time.perf_counter()
    row: dict[str, Any] = {"point": task.id, "status": "ok", "error": None}
    try:
        world = resolve_world(str(task.point["world"]), task.base) if "world" in task.point else task.world
        name, data, base = _base_data(world)
        try:
            data = apply(copy.deepcopy(data), task.point, task)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        data.setdefault("world", {}).setdefault("name", name.removesuffix(".toml").removesuffix(".json"))
        run = plurigrid.load(data, hours=task.hours, base=base).run(ledger=task.ledger, record=())
        row.update(run.kpis)
        if task.ledger and run.ledger is not None:
            row["ledger_state_root"] = run.ledger["state_root"]
    except PlurigridError as exc:
        row.update(status="failed", error=str(exc))
    except Exception as exc:  # a bug or a solver's failure in one point must not stop the other 999
        row.update(status="failed", error=f"internal error: {exc.__class__.__name__}: {exc}")
    row["run_s"] = round(time.perf_counter() - t0, 6)
    return row


def tasks_of(spec: SweepSpec) -> list[Task]:
    """One task per point, in the sweep's order."""
    s = spec.sweep
    world = spec.world_path()
    settings = {"world": world, "hours": s.hours, "seed": s.seed, "ledger": s.ledger,
                "battery": s.battery.model_dump(), "pv": s.pv.model_dump()}
    return [Task(point_id(point, settings), point, world, s.hours, s.seed, s.ledger,
                 {"battery": settings["battery"], "pv": settings["pv"]}, spec.base) for point in expand(spec)]


def check_worlds(spec: SweepSpec) -> None:
    """Refuses a sweep whose base world, or a world it lists, cannot be found (one line), before any point runs."""
    from plurigrid.microworld.loader import SpecError, resolve

    listed = [("sweep.world", spec.sweep.world)]
    listed += [(f"axes.world[{i}]", str(w)) for i, w in enumerate(spec.axes.get("world", []))]
    draw = spec.random.draws.get("world") if spec.random is not None else None
    listed += [(f"random.world.choice[{i}]", str(w)) for i, w in enumerate(draw.choice or [])] if draw is not None else []
    for where, world in listed:
        try:
            resolve(resolve_world(world, spec.base))
        except SpecError as exc:
            raise SpecError(spec.source, where, f"{world!r}: {exc.message}" if exc.path == "" else str(exc)) from None


def load_sweep(sweep: str | Path | Mapping[str, Any] | SweepSpec) -> SweepSpec:
    """A sweep file, its tables as a dict (relative paths from the working folder), or a SweepSpec, checked: a bad
    field or a world that cannot be found is one SpecError line, before any point runs."""
    if isinstance(sweep, SweepSpec):
        spec = sweep
    elif isinstance(sweep, Mapping):
        spec = sweep_from_data(dict(sweep), "sweep", os.getcwd())
    else:
        spec = read_sweep(sweep)
    check_worlds(spec)
    return spec


def _finished(points_dir: Path) -> dict[str, dict]:
    """Rows of points an earlier run of this sweep finished (failed ones are run again)."""
    out = {}
    for path in points_dir.glob("*.json"):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a file cut short by a crash: the point runs again
        if isinstance(row, dict) and row.get("status") == "ok":
            out[path.stem] = row
    return out


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_sweep(sweep: str | Path | Mapping[str, Any] | SweepSpec, out: str | Path, executor: Executor,
              progress: SweepProgress | None = None) -> pd.DataFrame:
    """Runs every point not finished in `out` yet on `executor`, then writes the table and the report."""
    spec = load_sweep(sweep)
    tasks = tasks_of(spec)
    folder = Path(out)
    points_dir = folder / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "sweep.json", spec.model_dump(mode="json") | {"base_world": spec.world_path()})
    done = _finished(points_dir)
    todo = [t for t in tasks if t.id not in done]
    count = len(tasks) - len(todo)
    if progress is not None:
        progress(count, len(tasks), {})
    for i, result in executor.run(run_point, todo):
        task = todo[i]
        row = result if isinstance(result, dict) else {"point": task.id, "status": "failed", "error": result.error,
                                                       "run_s": math.nan}  # a Lost task
        _write_json(points_dir / f"{task.id}.json", row)
        done[task.id] = row
        count += 1
        if progress is not None:
            progress(count, len(tasks), row)
    table = sweep_table(spec, tasks, done)
    table.to_parquet(folder / "sweep.parquet")
    from plurigrid.sweeps.report import write_report

    write_report(spec, table, folder / "report.html")
    return table


def sweep_table(spec: SweepSpec, tasks: list[Task], rows: dict[str, dict]) -> pd.DataFrame:
    """One row per point in the sweep's order: point id, parameters (lists and tables as JSON text), status, KPIs."""
    import pandas as pd

    params = list(spec.axes) + ([] if spec.random is None else list(spec.random.draws))
    as_text = {name for name in params if _needs_text([task.point[name] for task in tasks])}
    records = []
    for task in tasks:
        row = rows.get(task.id, {"status": "missing", "error": "not run"})
        values = {name: canonical(task.point[name]) if name in as_text else task.point[name] for name in params}
        records.append({"point": task.id, **values, **{k: v for k, v in row.items() if k != "point"}})
    table = pd.DataFrame.from_records(records)
    front = ["point", *params, "status", "error"]
    return table[front + [c for c in table.columns if c not in front]].set_index("point")


def _needs_text(values: list) -> bool:
    """Whether a parameter's column must hold JSON text: it has lists or tables, or mixes kinds (numbers and names),
    which a Parquet column cannot hold."""
    kinds = {"number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__ for v in values}
    return len(kinds) > 1 or bool(kinds & {"list", "dict"})


def sweep(sweep: str | Path | Mapping[str, Any] | SweepSpec, *, workers: int | None = None, scheduler: str | None = None,
          serial: bool = False, out: str | Path | None = None, progress: SweepProgress | None = None) -> pd.DataFrame:
    """Runs a sweep (a sweep file, its tables as a dict, or a SweepSpec) and returns its table, one row per point.

    By default the points run on a local Dask cluster of `workers` processes (all cores if None);
    `scheduler` ("tcp://host:8786") uses a running cluster's; `serial` runs them in this process.
    `out` keeps the sweep folder (points, sweep.parquet, report.html) and resumes a sweep stopped there;
    without it the folder is temporary.
    """
    from plurigrid.sweeps.executors import make_executor

    spec = load_sweep(sweep)  # a bad sweep is refused before a cluster starts
    executor = make_executor(serial=serial, workers=workers, scheduler=scheduler)
    try:
        if out is not None:
            return run_sweep(spec, out, executor, progress)
        with tempfile.TemporaryDirectory(prefix="plurigrid-sweep-") as tmp:
            return run_sweep(spec, tmp, executor, progress)
    finally:
        executor.close()
