"""Records a run as it goes: per-step detail streamed to Parquet, and the totals the summary needs.

Why: a year of a 9,000-participant grid is 310 million participant-steps; held in memory that is
tens of GB. So each step's detail goes to Parquet in row groups (a day of steps each, written on
a background thread, which pyarrow runs without the GIL), and what the KPIs, the balance, the
mechanism report and the HTML report need is kept as it streams: the per-step series (T,) and
per-participant sums (N,). What to keep per step is chosen with `record` (`RECORD_KINDS`); the
summary, the settlements table, the report and the ledger are always written.

Files (see the README's run-folder table): timeseries.parquet (series), participants.parquet
(participants), trades.parquet (trades), grid_buses.parquet and grid_branches.parquet (grid).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from plurigrid.engine.step import State, StepResult
from plurigrid.engine.world import World
from plurigrid.market.properties import GAP_PARTS, ROUNDING_MICRO, STEP_COLUMNS, step_properties, tariff_gap_micro

RECORD_KINDS = ("series", "participants", "trades", "grid")
LARGE_GRID_BUSES = 1_000  # above this, per-bus matrices are left out unless asked for
GROUP_DAYS = 1  # steps per Parquet row group: one day

SERIES = ("price_eur_per_kwh", "import_eur_per_kwh", "export_eur_per_kwh", "demand_kw", "served_kw", "renewable_kw",
          "renewable_available_kw", "thermal_kw", "upstream_kw", "losses_kw", "pf_losses_kw", "traded_kwh", "vm_min_pu",
          "vm_max_pu", "max_line_loading_pct", "max_trafo_loading_pct", "pf_converged", "thermal_on",
          "thermal_starts", "soc_kwh", "battery_kw", "thermal_cost_eur", "curtail_frac",
          "discomfort_eur", "opf_ok", "opf_imbalance_kw", "opf_welfare_eur",  # opf_*: the opf mechanism's plan (else 0)
          "unserved_kw")  # load an island shed (engine.dispatch.shed_load); a column of the file only if any was
PARTICIPANT = {"net_kw": np.float64, "metered_wh": np.int64, "traded_wh": np.int64, "bill_micro": np.int64,
               "baseline_micro": np.int64, "soc_kwh": np.float64, "thermal_kw": np.float64, "served_kw": np.float64,
               "indoor_c": np.float64, "unit_price_eur_per_kwh": np.float64, "green_kw": np.float64, "ev_kw": np.float64}
FILES = {"series": ("timeseries.parquet",), "participants": ("participants.parquet",), "trades": ("trades.parquet",),
         "grid": ("grid_buses.parquet", "grid_branches.parquet")}


def default_record(world: World) -> frozenset[str]:
    """Everything, except per-bus and per-branch matrices of grids over LARGE_GRID_BUSES buses."""
    if len(world.grid.net.bus) > LARGE_GRID_BUSES:
        return frozenset(RECORD_KINDS) - {"grid"}
    return frozenset(RECORD_KINDS)


@dataclass
class Totals:
    """What a run's summary and report are computed from: per-step series and per-participant sums."""

    steps: int  # steps recorded (fewer than the world's when a run was stopped)
    series: dict[str, np.ndarray]  # (T,) each, the first `steps` filled
    imported_wh: np.ndarray  # (N,) sums over steps
    exported_wh: np.ndarray
    bought_wh: np.ndarray
    sold_wh: np.ndarray
    bill_micro: np.ndarray
    baseline_micro: np.ndarray
    served_kwh: np.ndarray
    green_kwh: np.ndarray
    voltage_violations: int  # bus-steps outside each bus's band, over converged steps
    ev_unmet_kwh: float = 0.0
    recorded: frozenset[str] = field(default_factory=frozenset)
    # why bills differ from the tariff baseline (market.properties.GAP_PARTS), (N,) each: f"{part}_above_micro"
    # summed over the steps it exceeded rounding, f"{part}_steps" how many those were
    tariff_gap: dict[str, np.ndarray] = field(default_factory=dict)


def _write_options(table: pa.Table) -> dict:
    """Dictionary-encode the name columns only (numbers rarely repeat enough to pay for trying), zstd-compressed."""
    return {"use_dictionary": [f.name for f in table.schema if pa.types.is_dictionary(f.type)], "compression": "zstd"}


class _ParquetStream:
    """Appends row groups to Parquet files on one background thread (at most a few groups waiting)."""

    def __init__(self) -> None:
        self._writers: dict[Path, pq.ParquetWriter] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="plurigrid-parquet", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            path, table = item
            try:
                if self._error is None:
                    writer = self._writers.get(path)
                    if writer is None:
                        writer = self._writers[path] = pq.ParquetWriter(path, table.schema, **_write_options(table))
                    writer.write_table(table)
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc

    def write(self, path: Path, table: pa.Table) -> None:
        self._raise()
        self._queue.put((path, table))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        for writer in self._writers.values():
            writer.close()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def _times(world: World, steps: np.ndarray) -> pa.Array:
    """The steps' start times as tz-aware timestamps."""
    ns = world.index.asi8[steps] if world.index.unit == "ns" else world.index.as_unit("ns").asi8[steps]
    return pa.array(ns, type=pa.timestamp("ns", tz=str(world.index.tz)))


def _names(names: list, rows: int) -> pa.DictionaryArray:
    """Element names repeated for `rows` steps, dictionary-encoded (one copy of each name)."""
    indices = np.tile(np.arange(len(names), dtype=np.int32), rows)
    return pa.DictionaryArray.from_arrays(indices, pa.array([str(n) for n in names]) if names and isinstance(names[0], str)
                                          else pa.array(names))


class Recorder:
    """Records each step of a run (`add`), streaming what `record` asks for into `folder`; `close` returns the Totals."""

    def __init__(self, world: World, folder: Path, record: Collection[str] | None = None) -> None:
        self.world, self.folder = world, Path(folder)
        self.record = default_record(world) if record is None else frozenset(record)
        unknown = self.record - set(RECORD_KINDS)
        if unknown:
            raise ValueError(f"unknown record kind {sorted(unknown)[0]!r}; expected some of {', '.join(RECORD_KINDS)}")
        self.folder.mkdir(parents=True, exist_ok=True)
        T, N, net = world.steps, world.n, world.grid.net
        self.series = {k: np.zeros(T) for k in SERIES} | {k: np.zeros(T, dtype=dt) for k, dt in STEP_COLUMNS.items()}
        z = lambda dtype=np.int64: np.zeros(N, dtype=dtype)
        self.totals = {"imported_wh": z(), "exported_wh": z(), "bought_wh": z(), "sold_wh": z(), "bill_micro": z(),
                       "baseline_micro": z(), "served_kwh": z(float), "green_kwh": z(float)}
        self.violations = 0
        self.gap = {f"{part}_{kind}": z() for part in GAP_PARTS for kind in ("above_micro", "steps")}
        lo = np.nan_to_num(np.asarray(net.bus.get("min_vm_pu", 0.9), dtype=float), nan=0.9)
        hi = np.nan_to_num(np.asarray(net.bus.get("max_vm_pu", 1.1), dtype=float), nan=1.1)
        self._band = np.broadcast_to(lo, len(net.bus)) - 1e-9, np.broadcast_to(hi, len(net.bus)) + 1e-9
        self.steps = 0
        self.group_steps = max(1, int(round(GROUP_DAYS * 24 / world.dt_h)))
        self._rows: dict[str, list] = {"participants": [], "trades": [], "grid": []}
        self._first = 0  # first step of the group being gathered
        self._wrote_trades = False
        self._stream = _ParquetStream()
        self._names = {"participant": list(world.ids), "bus": net.bus.index.to_list(),
                       "line": net.line.index.to_list(), "trafo": net.trafo.index.to_list()}
        for kind in RECORD_KINDS:  # a folder reused for another run must not keep this kind's old files
            for name in FILES[kind]:
                (self.folder / name).unlink(missing_ok=True)

    # ---------------------------------------------------------------- per step

    def add(self, k: int, r: StepResult, state: State) -> None:
        world, s, dt_h = self.world, self.series, self.world.dt_h
        st, pf = r.settlement, r.pf
        now = state.runtime.window.row(k)
        s["price_eur_per_kwh"][k] = r.clearing.price_eur_per_kwh
        s["import_eur_per_kwh"][k] = world.import_eur_per_kwh[k]
        s["export_eur_per_kwh"][k] = world.export_eur_per_kwh[k]
        s["demand_kw"][k] = r.demand_kw.sum()
        s["served_kw"][k] = r.served_kw.sum()
        s["renewable_kw"][k] = r.renewable_kw.sum()
        s["renewable_available_kw"][k] = now.available_kw.sum()
        s["thermal_kw"][k] = r.dispatch.thermal_kw.sum()
        s["upstream_kw"][k] = r.upstream_wh / 1000 / dt_h
        s["losses_kw"][k] = r.losses_wh / 1000 / dt_h
        s["pf_losses_kw"][k] = pf.losses_mw * 1000 if pf.converged else np.nan
        s["traded_kwh"][k] = r.clearing.bought_wh.sum() / 1000
        s["vm_min_pu"][k] = np.nanmin(pf.vm_pu) if pf.converged else np.nan
        s["vm_max_pu"][k] = np.nanmax(pf.vm_pu) if pf.converged else np.nan
        s["max_line_loading_pct"][k] = np.nanmax(pf.line_loading_pct, initial=0.0) if pf.converged else np.nan
        s["max_trafo_loading_pct"][k] = np.nanmax(pf.trafo_loading_pct, initial=0.0) if pf.converged else np.nan
        s["pf_converged"][k] = pf.converged
        s["thermal_on"][k] = r.dispatch.on.sum()
        s["thermal_starts"][k] = r.dispatch.started.sum()
        s["soc_kwh"][k] = state.soc_kwh.sum()
        s["battery_kw"][k] = r.decision.battery_kw.sum()  # net AC power into all batteries (+ charging)
        s["thermal_cost_eur"][k] = r.thermal_cost_eur.sum()
        s["unserved_kw"][k] = r.dispatch.shed_kw
        hv = world.hvac
        s["discomfort_eur"][k] = float(np.dot(hv.discomfort_eur_per_kh, hv.outside_comfort_k(state.indoor_c))) * dt_h
        available = s["renewable_available_kw"][k]
        s["curtail_frac"][k] = 1.0 - s["renewable_kw"][k] / available if available > 0 else 0.0
        for key, value in step_properties(r.clearing).items():
            s[key][k] = value
        if r.opf is not None:
            s["opf_ok"][k] = r.opf.ok
            s["opf_imbalance_kw"][k], s["opf_welfare_eur"][k] = (r.opf.imbalance_kw, r.opf.welfare_eur) if r.opf.ok else (0.0, 0.0)

        t = self.totals
        metered, traded = st.metered_wh, st.traded_wh
        t["imported_wh"] += np.maximum(metered, 0)
        t["exported_wh"] += np.maximum(-metered, 0)
        t["bought_wh"] += np.maximum(traded, 0)
        t["sold_wh"] += np.maximum(-traded, 0)
        t["bill_micro"] += st.bill_micro
        t["baseline_micro"] += st.baseline_micro
        c = r.clearing
        premium = c.premium_micro if c.premium_micro is not None else np.zeros(world.n, dtype=np.int64)
        for part, micro in tariff_gap_micro(st, r.scheduled_wh, premium, world.import_eur_per_kwh[k],
                                            world.export_eur_per_kwh[k]).items():
            if not micro.any():  # most parts are zero in most worlds (no fee, no premium, no island)
                continue
            beyond = micro > ROUNDING_MICRO
            self.gap[f"{part}_above_micro"] += np.where(beyond, micro, 0)
            self.gap[f"{part}_steps"] += beyond
        t["served_kwh"] += r.served_kw * dt_h
        green = r.opf.green_kw if r.opf is not None and r.opf.ok else 0.0
        t["green_kwh"] += green * dt_h
        if pf.converged:
            vm = pf.vm_pu.astype(np.float32).astype(float)  # as recorded in grid_buses.parquet
            self.violations += int(np.sum(((vm < self._band[0]) | (vm > self._band[1])) & np.isfinite(vm)))

        if "participants" in self.record:
            unit = r.clearing.unit_price_eur_per_kwh
            self._rows["participants"].append((
                r.net_kw, metered, traded, st.bill_micro, st.baseline_micro, state.soc_kwh, r.dispatch.thermal_kw,
                r.served_kw, np.where(hv.p_max_kw > 0, state.indoor_c, np.nan),
                np.full(world.n, np.nan) if unit is None else unit, np.broadcast_to(green, world.n), r.decision.ev_kw))
        if "trades" in self.record and len(r.clearing.trade_wh):
            c = r.clearing
            self._rows["trades"].append((k, c.trade_buyer, c.trade_seller, c.trade_wh, c.trade_price_eur_per_kwh))
        if "grid" in self.record:
            self._rows["grid"].append((pf.vm_pu, pf.line_loading_pct, pf.trafo_loading_pct))
        self.steps = k + 1
        if self.steps - self._first >= self.group_steps:
            self._flush()

    # ---------------------------------------------------------------- row groups

    def _flush(self) -> None:
        first, stop = self._first, self.steps
        if stop == first:
            return
        steps = np.arange(first, stop)
        rows, world = self._rows, self.world
        if rows["participants"]:
            columns = list(zip(*rows["participants"]))
            table = {"time": _times(world, np.repeat(steps, world.n)), "participant": _names(self._names["participant"], len(steps))}
            for (name, dtype), values in zip(PARTICIPANT.items(), columns):
                table[name] = np.concatenate(values).astype(dtype, copy=False)
            self._stream.write(self.folder / "participants.parquet", pa.table(table))
        if "trades" in self.record:
            self._trades(rows["trades"])
        if rows["grid"]:
            self._grid(steps, rows["grid"])
        self._rows = {key: [] for key in rows}
        self._first = stop

    def _trades(self, rows: list) -> None:
        world = self.world
        ids = pa.array(self._names["participant"])
        if rows:
            k, buyers, sellers, whs, prices = zip(*rows)
            steps = np.concatenate([np.full(len(b), kk) for kk, b in zip(k, buyers)])
            buyer, seller = np.concatenate(buyers).astype(np.int32), np.concatenate(sellers).astype(np.int32)
            wh, price = np.concatenate(whs).astype(np.int64), np.concatenate(prices).astype(float)
        else:
            steps, buyer, seller = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
            wh, price = np.zeros(0, dtype=np.int64), np.zeros(0)
        table = pa.table({"time": _times(world, steps), "buyer": pa.DictionaryArray.from_arrays(buyer, ids),
                          "seller": pa.DictionaryArray.from_arrays(seller, ids), "wh": wh, "price_eur_per_kwh": price})
        self._stream.write(self.folder / "trades.parquet", table)
        self._wrote_trades = True

    def _grid(self, steps: np.ndarray, rows: list) -> None:
        world = self.world
        vm, lines, trafos = (np.concatenate(part).astype(np.float32) for part in zip(*rows))
        n_bus, n_line, n_trafo = (len(self._names[k]) for k in ("bus", "line", "trafo"))
        buses = pa.table({"time": _times(world, np.repeat(steps, n_bus)),
                          "bus": np.tile(np.asarray(self._names["bus"], dtype=np.int64), len(steps)), "vm_pu": vm})
        self._stream.write(self.folder / "grid_buses.parquet", buses)
        # lines then transformers, each block time-major (as one table per kind, concatenated)
        branch = {
            "time": pa.concat_arrays([_times(world, np.repeat(steps, n_line)), _times(world, np.repeat(steps, n_trafo))]),
            "element": np.concatenate([np.tile(np.asarray(self._names["line"], dtype=np.int64), len(steps)),
                                       np.tile(np.asarray(self._names["trafo"], dtype=np.int64), len(steps))]),
            "loading_pct": np.concatenate([lines, trafos]),
            "kind": pa.DictionaryArray.from_arrays(np.r_[np.zeros(len(lines), np.int32), np.ones(len(trafos), np.int32)],
                                                   pa.array(["line", "trafo"])),
        }
        self._stream.write(self.folder / "grid_branches.parquet", pa.table(branch))

    # ---------------------------------------------------------------- end

    def close(self, state: State | None = None) -> Totals:
        """Writes the last row group and the per-run files; returns what the summary is computed from."""
        try:
            self._flush()
            if "trades" in self.record and not self._wrote_trades:
                self._trades([])  # a run stopped before its first row group still has its (empty) table
        finally:
            self._stream.close()
        if "series" in self.record:
            steps = np.arange(self.steps)
            table = {"time": _times(self.world, steps)} | {k: v[:self.steps] for k, v in self.series.items()
                                                            if k != "unserved_kw" or v[:self.steps].any()}
            table = pa.table(table)
            pq.write_table(table, self.folder / "timeseries.parquet", **_write_options(table))
        return Totals(self.steps, {k: v[:self.steps] for k, v in self.series.items()}, **self.totals, voltage_violations=self.violations,
                      ev_unmet_kwh=float(state.ev_unmet_kwh.sum()) if state is not None else 0.0,
                      recorded=self.record, tariff_gap=self.gap)
