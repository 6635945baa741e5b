"""Writes a run folder: Parquet time series, trades, settlements, grid results, summary.json, report.html."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from plurigrid.engine.report import write_report
from plurigrid.engine.simulate import RunRecord

MICRO = 1e-6


def _long(matrix: np.ndarray, index: pd.DatetimeIndex, names: list | np.ndarray, key: str, value: str) -> pd.DataFrame:
    T, M = matrix.shape
    return pd.DataFrame({
        "time": np.repeat(index, M),
        key: np.tile(np.asarray(names), T),
        value: matrix.reshape(-1),
    })


def settlements_table(record: RunRecord) -> pd.DataFrame:
    """Per-participant totals: energy (Wh), bill and tariff baseline (micro-units and currency)."""
    w, p = record.world, record.participant
    bill = p["bill_micro"].sum(axis=0)
    base = p["baseline_micro"].sum(axis=0)
    return pd.DataFrame({
        "participant": w.ids,
        "kind": w.kind,
        "strategy": w.strategy,
        "bus": w.grid.net.bus.index[w.bus_pos],
        "imported_wh": np.maximum(p["metered_wh"], 0).sum(axis=0),
        "exported_wh": np.maximum(-p["metered_wh"], 0).sum(axis=0),
        "bought_wh": np.maximum(p["traded_wh"], 0).sum(axis=0),
        "sold_wh": np.maximum(-p["traded_wh"], 0).sum(axis=0),
        "bill_micro": bill,
        "baseline_micro": base,
        "bill": bill * MICRO,
        "baseline": base * MICRO,
        "savings": (base - bill) * MICRO,
    })


def write_run(record: RunRecord, summary: dict, out: Path) -> None:
    """Writes every output file of a run into `out` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    w = record.world
    ts = pd.DataFrame({"time": w.index, **record.series})
    ts.to_parquet(out / "timeseries.parquet", index=False)
    parts = {k: v for k, v in record.participant.items()}
    frames = [_long(v, w.index, w.ids, "participant", k) for k, v in parts.items()]
    table = frames[0]
    for f, k in zip(frames[1:], list(parts)[1:]):
        table[k] = f[k].to_numpy()
    table.to_parquet(out / "participants.parquet", index=False)
    settlements_table(record).to_parquet(out / "settlements.parquet", index=False)
    trades = pd.DataFrame({
        "time": w.index[record.trades["step"].astype(int)] if len(record.trades["step"]) else pd.DatetimeIndex([], tz=w.index.tz),
        "buyer": np.asarray(w.ids, dtype=object)[record.trades["buyer"].astype(int)],
        "seller": np.asarray(w.ids, dtype=object)[record.trades["seller"].astype(int)],
        "wh": record.trades["wh"].astype(np.int64),
        "price_eur_per_kwh": record.trades["price_eur_per_kwh"],
    })
    trades.to_parquet(out / "trades.parquet", index=False)
    net = w.grid.net
    grid = _long(record.grid["vm_pu"], w.index, net.bus.index.to_numpy(), "bus", "vm_pu")
    grid.to_parquet(out / "grid_buses.parquet", index=False)
    branches = pd.concat([
        _long(record.grid["line_loading_pct"], w.index, net.line.index.to_numpy(), "element", "loading_pct").assign(kind="line"),
        _long(record.grid["trafo_loading_pct"], w.index, net.trafo.index.to_numpy(), "element", "loading_pct").assign(kind="trafo"),
    ])
    branches.to_parquet(out / "grid_branches.parquet", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    if record.world.modules is not None:  # what the modules logged, their failures and swaps
        (out / "modules.log").write_text("".join(line + "\n" for line in record.world.modules.log), encoding="utf-8")
    write_report(record, summary, out / "report.html")
