"""A sweep's HTML comparison report: each KPI against each parameter, the best points, the failures.

One self-contained file (plotly.js inlined, as in a run's report), the same bytes for the same table.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plurigrid.engine.report import plot_html, plotly_js

if TYPE_CHECKING:
    import pandas as pd

    from plurigrid.sweeps.spec import SweepSpec

HIGHER_IS_BETTER = {"savings_frac", "self_sufficiency", "self_consumption", "welfare", "energy_traded_kwh", "efficiency"}
BEST_ROWS = 5
MAX_FAILURES = 50
MAX_COLOURS = 10  # a categorical parameter with at most this many values colours the other parameters' plots


def best_points(table: pd.DataFrame, kpi: str, n: int = BEST_ROWS) -> pd.DataFrame:
    """The n points best in `kpi` (highest where higher is better, else lowest), ties kept in the sweep's order."""
    ok = table[table["status"] == "ok"]
    if kpi not in ok:
        return ok.iloc[:0]
    return ok.sort_values(kpi, ascending=kpi not in HIGHER_IS_BETTER, kind="stable").head(n)


def _is_numeric(values: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


def _json_values(values: Any) -> list:
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in values]


def _figure(table: pd.DataFrame, parameter: str, kpis: list[str], div_id: str, colour_by: str | None) -> str:
    """Every KPI against one parameter: stacked panels sharing the parameter's axis (boxes for categories), the
    points coloured by `colour_by` (a categorical parameter) when there is one."""
    ok = table[table["status"] == "ok"]
    numeric = _is_numeric(ok[parameter])
    groups = [(None, ok)] if colour_by in (None, parameter) else [(str(v), g) for v, g in ok.groupby(colour_by, sort=False)]
    data, layout = [], {"height": 180 * len(kpis) + 60, "showlegend": groups[0][0] is not None, "paper_bgcolor": "white",
                        "plot_bgcolor": "white", "margin": {"l": 70, "r": 20, "t": 40, "b": 40},
                        "title": {"text": f"KPIs against {parameter}" + (f", by {colour_by}" if groups[0][0] is not None else "")},
                        "legend": {"orientation": "h"}, "grid": {"rows": len(kpis), "columns": 1, "pattern": "independent"}}
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    for i, kpi in enumerate(kpis, start=1):
        axis = "" if i == 1 else str(i)
        for g, (label, rows) in enumerate(groups):
            x = _json_values(rows[parameter].tolist()) if numeric else [str(v) for v in rows[parameter].tolist()]
            y = _json_values(rows[kpi].tolist()) if kpi in rows else []
            trace: dict[str, Any] = {"x": x, "y": y, "name": label or kpi, "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                                     "legendgroup": label or kpi, "showlegend": i == 1,
                                     "marker": {"color": palette[g % len(palette)]}}
            trace |= {"type": "scatter", "mode": "markers"} if numeric else {"type": "box", "boxpoints": "all"}
            data.append(trace)
        layout[f"yaxis{axis}"] = {"title": {"text": kpi}, "gridcolor": "#EBF0F8"}
        layout[f"xaxis{axis}"] = {"gridcolor": "#EBF0F8"} | ({"title": {"text": parameter}} if i == len(kpis) else {})
    return plot_html(div_id, data, layout)


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["point", *columns])
    body = "".join("<tr>" + f"<td>{html.escape(str(idx))}</td>" + "".join(
        f"<td>{html.escape(_fmt(row[c]))}</td>" for c in columns) + "</tr>" for idx, row in frame.iterrows())
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


def write_report(spec: SweepSpec, table: pd.DataFrame, path: Path) -> None:
    """Writes the sweep's report: counts, best points per KPI, KPI-against-parameter figures, failures."""
    params = list(spec.axes) + ([] if spec.random is None else list(spec.random.draws))
    kpis = [k for k in spec.sweep.kpis if k in table]
    ok = int((table["status"] == "ok").sum())
    failed = table[table["status"] != "ok"]
    name = spec.sweep.name or Path(spec.source).stem
    best = "".join(f"<h3>{html.escape(kpi)} ({'highest' if kpi in HIGHER_IS_BETTER else 'lowest'})</h3>"
                   f"{_table(best_points(table, kpi), params + kpis)}" for kpi in kpis)
    categorical = [p for p in params if not _is_numeric(table[p]) and table[p].nunique() <= MAX_COLOURS]
    figures = "".join(_figure(table, p, kpis, f"figure-{i}", next((c for c in categorical if c != p), None))
                      for i, p in enumerate(params)) if ok and kpis else ""
    failures = ""
    if len(failed):
        more = f"<p>… and {len(failed) - MAX_FAILURES:,} more (sweep.parquet has them all).</p>" if len(failed) > MAX_FAILURES else ""
        failures = f"<h2>Failed points</h2>{_table(failed.head(MAX_FAILURES), [*params, 'error'])}{more}"
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Plurigrid sweep: {html.escape(name)}</title><script>{plotly_js()}</script>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:2px 10px;text-align:left}</style>"
        f"</head><body><h1>Sweep {html.escape(name)}</h1>"
        f"<p>Base world {html.escape(spec.sweep.world)}; {len(table):,} points ({ok:,} ok, {len(failed):,} not); "
        f"parameters {html.escape(', '.join(params))}.</p><h2>Best points</h2>{best}{figures}{failures}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
