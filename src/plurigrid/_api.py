"""The Python API: load a microworld, run it, read its results as labelled tables.

    import plurigrid
    world = plurigrid.load("residential", hours=24)
    run = world.run()
    run.kpis["savings_frac"], run.timeseries["price_eur_per_kwh"], run.participants["bill_micro"]

A run always streams into a run folder (a temporary one unless `out` is given; `Run.save` copies
it), so a year of a large grid runs in bounded memory, and reading a table back is reading its
Parquet file: the CLI is this API plus printing, and gives the same folder byte for byte.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plurigrid.errors import UsageError
from plurigrid.jsonfile import read_json

if TYPE_CHECKING:  # pandas is imported when a table is first read: `import plurigrid` stays light
    import pandas as pd

RECORD_HELP = "series, participants, trades, grid (default: all but grid for worlds over 1,000 buses), or summary"
Progress = Callable[[int, int], None]  # (steps done, steps in all)


def load(world: str | Path | Mapping[str, Any], *, hours: float | None = None, mechanism: str | None = None,
         seed: int | None = None, base: str | Path | None = None) -> World:
    """Compiles a microworld: a library name (`plurigrid list`), a `.toml`/`.json` path, or the spec as a dict.

    `hours` cuts the horizon to the first hours, `mechanism` and `seed` replace the spec's. `base`: the
    folder that relative paths in a dict spec (CSV profiles, modules) are read from. Raises a
    `PlurigridError` (one line naming the file and field) for anything a person must fix.
    """
    from plurigrid.microworld.loader import load as load_spec
    from plurigrid.microworld.loader import validate_data
    from plurigrid.microworld.spec import MECHANISMS

    if mechanism is not None and mechanism not in MECHANISMS:
        raise UsageError(f"mechanism: unknown mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}")
    if hours is not None and not hours > 0:
        raise UsageError(f"hours: must be > 0, got {hours}")
    if isinstance(world, Mapping):
        name = str(world.get("world", {}).get("name", "microworld")) if isinstance(world.get("world"), Mapping) else "microworld"
        spec, label = validate_data(name, dict(world)), name
        base = None if base is None else Path(base)
    else:
        spec, label, base = load_spec(str(world))
    from plurigrid.engine.world import compile_world  # after the spec: a bad one is refused before the grid stack loads

    compiled = compile_world(spec, label, base, hours=hours, mechanism=mechanism, seed=seed)
    return World(compiled, label.removesuffix(".toml").removesuffix(".json"))


def sweep(sweep: str | Path | Mapping[str, Any], *, workers: int | None = None, scheduler: str | None = None,
          serial: bool = False, out: str | Path | None = None,
          progress: Callable[[int, int, dict], None] | None = None) -> pd.DataFrame:
    """Runs a sweep (a sweep file or its tables as a dict) and returns its table: one row per point, its
    parameters, status and KPIs. Points run on a local Dask cluster of `workers` processes by default,
    on a running cluster's with `scheduler`, or in this process with `serial`; `out` keeps (and resumes)
    the sweep folder. See docs/sweeps.md and `plurigrid.sweeps`.
    """
    from plurigrid.sweeps.runner import sweep as run_sweep

    return run_sweep(sweep, workers=workers, scheduler=scheduler, serial=serial, out=out, progress=progress)


class World:
    """A compiled microworld: its grid, participants and clock, ready to `run`."""

    def __init__(self, compiled: Any, microworld: str) -> None:
        self._world, self.microworld = compiled, microworld

    @property
    def name(self) -> str:
        return self._world.name

    @property
    def mechanism(self) -> str:
        return self._world.mechanism

    @property
    def index(self) -> pd.DatetimeIndex:
        """Start time of every step (timezone-aware)."""
        return self._world.index

    @property
    def steps(self) -> int:
        return self._world.steps

    @property
    def resolution_h(self) -> float:
        return self._world.dt_h

    @property
    def net(self) -> Any:
        """The pandapower network of the grid."""
        return self._world.grid.net

    @property
    def compiled(self) -> Any:
        """The engine's compiled world (engine.world.World), for code that drives the step itself."""
        return self._world

    @cached_property
    def participants(self) -> pd.DataFrame:
        """One row per participant: kind, bus, strategy and asset ratings."""
        import pandas as pd

        w = self._world
        f = w.fleet
        return pd.DataFrame({
            "kind": w.kind, "bus": w.grid.net.bus.index[w.bus_pos], "strategy": w.strategy,
            "battery_kwh": f.batteries.capacity_kwh, "battery_kw": f.batteries.power_kw, "ev_kw": f.evs.power_kw,
            "hvac_kw": f.hvac.p_max_kw, "thermal_kw": f.thermal.p_max_kw,
            "value_eur_per_kwh": f.demand.value_eur_per_kwh,
        }, index=pd.Index(w.ids, name="participant"))

    def __repr__(self) -> str:
        w = self._world
        return (f"<plurigrid.World {self.microworld!r}: {w.n:,} participants, {len(w.grid.net.bus):,} buses, "
                f"{w.steps:,} steps of {w.dt_h:g} h from {w.index[0].isoformat()}, {w.mechanism}>")

    def run(self, *, ledger: bool = True, progress: Progress | None = None, record: Collection[str] | None = None,
            out: str | Path | None = None, signer_key: str | Path | None = None) -> Run:
        """Simulates the whole horizon and returns its results.

        `ledger`: commit every step's settlement to a Merkle-verifiable ledger (`ledger/` in the run
        folder). `progress(done, total)` is told each finished step. `record`: what per-step detail
        to keep (RECORD_HELP); KPIs, bills and the report are always there. `out`: the run folder
        (created; default a temporary one, see `Run.save`). `signer_key`: the file of the Ed25519 key
        that signs every block (default $PLURIGRID_SIGNER_KEY, else the user's own key, created on first
        use; see docs/ledger.md). A first Ctrl-C stops the run after the step it is in: the folder is
        complete, its ledger verifies and `summary["partial"]` says so.
        """
        from plurigrid.engine.record import RECORD_KINDS, Recorder

        kinds = None if record is None else set(record)
        if kinds is not None and kinds - set(RECORD_KINDS):
            bad = sorted(kinds - set(RECORD_KINDS))[0]
            raise UsageError(f"record: unknown kind {bad!r}; expected some of {', '.join(RECORD_KINDS)}")
        if progress is not None and not callable(progress):
            raise UsageError(f"progress: expected a function progress(done, total) or None, not {progress!r}")
        holder = None
        if out is None:
            holder = tempfile.TemporaryDirectory(prefix="plurigrid-run-")
            folder = Path(holder.name)
        else:
            folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        recorder = Recorder(self._world, folder, kinds)
        _simulate_into(self._world, folder, recorder, ledger, progress, self.microworld, signer_key)
        return Run(folder, holder, world=self)


def _simulate_into(world: Any, folder: Path, recorder: Any, ledger: bool, progress: Progress | None,
                   microworld: str, signer_key: str | Path | None = None) -> None:
    """Runs `world` with its recorder and ledger, then writes the run folder's summary, tables and report
    (summary.json last: a folder without it is a run that did not finish)."""
    from plurigrid.engine.ledger_entries import THREAD_MIN_PARTICIPANTS, RunLedger, run_signer
    from plurigrid.engine.output import write_run
    from plurigrid.engine.results import summary as make_summary
    from plurigrid.engine.simulate import Stop, simulate, stop_on_interrupt
    from plurigrid.state.ledger import ledger_summary

    (folder / "summary.json").unlink(missing_ok=True)  # an earlier run's, in a reused folder
    signer = run_signer(signer_key) if ledger else None
    writer = RunLedger(folder / "ledger", threaded=world.n >= THREAD_MIN_PARTICIPANTS, signer=signer) if signer is not None else None
    stop = Stop()
    total = world.steps
    tick = None if progress is None else (lambda k: progress(k + 1, total))
    t0 = time.perf_counter()
    outcome = None
    try:
        with stop_on_interrupt(stop):
            outcome = simulate(world, recorder=recorder, ledger=writer, progress=tick, stop=stop)
    finally:
        totals = recorder.close(outcome.state if outcome is not None else None)
        if writer is not None:
            writer.close()
    timings = dict(outcome.state.timings_s) | {"whole_run": time.perf_counter() - t0}
    modules = outcome.state.runtime.modules
    summary = make_summary(world, totals, microworld, modules={} if modules is None else modules.report(),
                           host_faults=[] if modules is None else modules.host_faults, timings_s=timings)
    if writer is not None and signer is not None:
        summary["ledger"] = ledger_summary(writer.head, signer.did)
    write_run(folder, world, totals, summary, None if modules is None else modules.log)


class Frames(Mapping[str, "pd.DataFrame"]):
    """Per-step values of many elements read from a run's Parquet file: one DataFrame (time × element) per quantity."""

    def __init__(self, path: Path, element: str, quantities: list[str], filters: list | None = None) -> None:
        self._path, self._element, self._quantities, self._filters = path, element, quantities, filters
        self._cache: dict[str, pd.DataFrame] = {}

    def __getitem__(self, quantity: str) -> pd.DataFrame:
        import pandas as pd

        if quantity not in self._quantities:
            raise KeyError(f"{quantity!r}; expected one of {', '.join(self._quantities)}")
        if quantity not in self._cache:
            table = pd.read_parquet(self._path, columns=["time", self._element, quantity], filters=self._filters)
            order = pd.unique(table[self._element].astype(object))  # in the order the run has its elements
            frame = table.pivot(index="time", columns=self._element, values=quantity)
            frame.columns = frame.columns.astype(object)
            self._cache[quantity] = frame[list(order)]
        return self._cache[quantity]

    def __iter__(self) -> Iterator[str]:
        return iter(self._quantities)

    def __len__(self) -> int:
        return len(self._quantities)

    def __repr__(self) -> str:
        return f"<Frames of {self._element}: {', '.join(self._quantities)}>"


class Run:
    """A finished (or stopped) run and its run folder: summary, KPIs and per-step tables."""

    def __init__(self, folder: str | Path, holder: tempfile.TemporaryDirectory | None = None, *,
                 world: World | None = None) -> None:
        self.folder = Path(folder)
        self.world = world  # the World this run came from (None for a folder read back)
        self._holder = holder
        if holder is not None:  # the temporary folder lives as long as this Run
            weakref.finalize(self, holder.cleanup)
        path = self.folder / "summary.json"
        if not path.is_file():
            raise UsageError(f"{self.folder}: not a run folder (no summary.json)")
        summary = read_json(path, UsageError)
        if not isinstance(summary, dict):
            raise UsageError(f"{path}: expected a JSON object (a run's summary)")
        self.summary: dict = summary

    def _file(self, name: str, kind: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise UsageError(f"{self.folder}: this run did not record {kind} (no {name}; see record=)")
        return path

    @property
    def kpis(self) -> dict[str, float | int]:
        """The headline numbers (units in the names; see the README's KPI list)."""
        return self.summary["kpis"]

    @property
    def partial(self) -> bool:
        """Whether the run was stopped before the end of its horizon."""
        return "partial" in self.summary

    @cached_property
    def timeseries(self) -> pd.DataFrame:
        """One row per step (a tz-aware DatetimeIndex): prices, demand, renewables, grid import, losses, voltages."""
        import pandas as pd

        return pd.read_parquet(self._file("timeseries.parquet", "series")).set_index("time")

    @cached_property
    def participants(self) -> Frames:
        """Per-step values of every participant: `run.participants["bill_micro"]` is time × participant."""
        from plurigrid.engine.record import PARTICIPANT

        return Frames(self._file("participants.parquet", "participants"), "participant", list(PARTICIPANT))

    @cached_property
    def buses(self) -> Frames:
        """Voltage of every bus at every step: `run.buses["vm_pu"]` is time × bus."""
        return Frames(self._file("grid_buses.parquet", "grid"), "bus", ["vm_pu"])

    @cached_property
    def branches(self) -> dict[str, pd.DataFrame]:
        """Loading of every branch at every step: `run.branches["line"]` and `["trafo"]`, time × element, in %."""
        path = self._file("grid_branches.parquet", "grid")
        return {kind: Frames(path, "element", ["loading_pct"], filters=[("kind", "==", kind)])["loading_pct"]
                for kind in ("line", "trafo")}

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Every matched trade: time, buyer, seller, Wh, price."""
        import pandas as pd

        table = pd.read_parquet(self._file("trades.parquet", "trades"))
        return table.astype({"buyer": object, "seller": object})

    @cached_property
    def settlements(self) -> pd.DataFrame:
        """Per participant over the run: energy in and out, bought and sold, bill against the tariff baseline."""
        import pandas as pd

        return pd.read_parquet(self._file("settlements.parquet", "settlements")).set_index("participant")

    @property
    def ledger(self) -> dict | None:
        """The ledger's height, head block hash and state root (None without a ledger)."""
        return self.summary.get("ledger")

    def verify(self) -> dict:
        """Replays the run's ledger from nothing; returns its head header (raises LedgerError if any byte is off)."""
        from plurigrid.state.ledger import verify

        return verify(self.folder).to_json()

    def save(self, folder: str | Path) -> Run:
        """Copies the run folder to `folder` (which must not exist yet); returns the Run read from there."""
        target = Path(folder)
        if target.exists() and any(target.iterdir()):
            raise UsageError(f"{target}: exists and is not empty; expected a new folder for the run")
        if target.resolve() != self.folder.resolve():
            shutil.copytree(self.folder, target, dirs_exist_ok=True)
        return Run(target, world=self.world)

    def report(self, path: str | Path | None = None) -> Path:
        """The run's self-contained HTML report (copied to `path` if given)."""
        source = self.folder / "report.html"
        if path is None:
            return source
        shutil.copyfile(source, path)
        return Path(path)

    def __repr__(self) -> str:
        s = self.summary
        state = " (partial)" if self.partial else ""
        return (f"<plurigrid.Run {s['microworld']!r}{state}: {s['steps']:,} steps, {s['participants']:,} participants, "
                f"{s['mechanism']}, savings {s['kpis']['savings_frac']:.1%}, folder {self.folder}>")


def open_run(folder: str | Path) -> Run:
    """Reads a run folder back (one that `plurigrid run` or `World.run`/`Run.save` wrote)."""
    return Run(folder)


__all__ = ["Frames", "Run", "World", "load", "open_run"]
