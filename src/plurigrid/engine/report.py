"""A self-contained HTML report of a run: KPIs, mechanism properties and plotly.js figures (inlined once, no CDN).

The figures are written as plotly.js data and layout (plain JSON) rather than through plotly's
Python object model, which costs ~0.3 s to build six figures: the report is part of every run.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from plurigrid.engine.record import Totals
from plurigrid.engine.results import baseline_kept
from plurigrid.engine.world import World

MAX_BARS = 60
_LAYOUT = {"height": 340, "margin": {"l": 60, "r": 20, "t": 50, "b": 40}, "legend": {"orientation": "h"},
           "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "x unified",
           "xaxis": {"gridcolor": "#EBF0F8", "zerolinecolor": "#EBF0F8"},
           "yaxis": {"gridcolor": "#EBF0F8", "zerolinecolor": "#EBF0F8"}}


def _values(a: np.ndarray) -> list:
    """A series as JSON numbers (None where not finite: plotly draws a gap)."""
    a = np.asarray(a, dtype=float)
    return [v if f else None for v, f in zip(np.round(a, 9).tolist(), np.isfinite(a).tolist())]


class Figure:
    """One plotly.js figure: traces and a layout."""

    def __init__(self, title: str, y_title: str) -> None:
        self.data: list[dict] = []
        self.layout = json.loads(json.dumps(_LAYOUT)) | {"title": {"text": title}}
        self.layout["yaxis"]["title"] = {"text": y_title}
        self.shapes: list[dict] = []

    def line(self, x: list, y: np.ndarray, name: str, *, step: bool = False, markers: bool = False) -> None:
        self.data.append({"type": "scatter", "x": x, "y": _values(y), "name": name,
                          "mode": "lines+markers" if markers else "lines", "line": {"shape": "hv" if step else "linear"}})

    def bars(self, x: list, y: np.ndarray, name: str) -> None:
        self.data.append({"type": "bar", "x": x, "y": _values(y), "name": name})

    def limit(self, y: float) -> None:
        self.shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
                            "line": {"dash": "dot", "color": "red"}})

    def html(self, div_id: str) -> str:
        layout = self.layout | ({"shapes": self.shapes} if self.shapes else {})
        return plot_html(div_id, self.data, layout, ' style="height:340px"')


def plot_html(div_id: str, data: list[dict], layout: dict, attributes: str = "") -> str:
    """A div and the script that draws plotly.js `data` and `layout` into it (the JSON cannot close the script)."""
    spec = json.dumps({"data": data, "layout": layout}, separators=(",", ":")).replace("<", "\\u003c")
    return (f'<div id="{div_id}"{attributes}></div><script>(function(){{var f={spec};'
            f'Plotly.newPlot("{div_id}",f.data,f.layout,{{responsive:true}});}})();</script>')


def figures(w: World, totals: Totals) -> list[Figure]:
    """Prices, net load, state of charge, voltage band, loading and bills vs the tariff baseline."""
    s = totals.series
    x = [t.isoformat() for t in w.index[:totals.steps].tz_localize(None)]
    prices = Figure("Prices", f"{w.spec.world.currency}/kWh")
    prices.line(x, s["import_eur_per_kwh"], "import tariff", step=True)
    prices.line(x, s["export_eur_per_kwh"], "export tariff", step=True)
    prices.line(x, s["price_eur_per_kwh"], "market price", step=True, markers=True)
    load = Figure("Community power", "kW")
    for key, name in (("served_kw", "demand served"), ("renewable_kw", "renewables used"),
                      ("thermal_kw", "thermal"), ("upstream_kw", "grid import"), ("losses_kw", "losses")):
        load.line(x, s[key], name, step=True)
    soc = Figure("Stored energy (all batteries)", "kWh")
    soc.line(x, s["soc_kwh"], "state of charge")
    volt = Figure("Voltage band", "pu")
    volt.line(x, s["vm_max_pu"], "max")
    volt.line(x, s["vm_min_pu"], "min")
    for limit in (0.9, 1.1):
        volt.limit(limit)
    loading = Figure("Highest branch loading", "%")
    loading.line(x, s["max_line_loading_pct"], "lines")
    loading.line(x, s["max_trafo_loading_pct"], "transformers")
    loading.limit(100)
    bill = totals.bill_micro * 1e-6
    base = np.where(baseline_kept(w, totals.steps), np.nan, totals.baseline_micro * 1e-6)
    order = np.argsort(-np.abs(np.nan_to_num(base - bill)), kind="stable")[:MAX_BARS]
    bills = Figure(f"Bills vs tariff baseline ({min(MAX_BARS, w.n)} participants with the largest difference)",
                    w.spec.world.currency)
    names = [w.ids[i] for i in order]
    bills.bars(names, base[order], "tariff baseline")
    bills.bars(names, bill[order], f"{w.mechanism}")
    return [prices, load, soc, volt, loading, bills]


def plotly_js() -> str:
    """plotly.js as the plotly package ships it (read, not imported: the report needs no plotly Python)."""
    return (resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def _partial(summary: dict) -> str:
    if "partial" not in summary:
        return ""
    part = summary["partial"]
    return (f"<p><strong>Partial run:</strong> stopped after {part['steps_done']} of {part['steps_planned']} steps "
            f"(at {html.escape(part['stopped_at'])}).</p>")


def _rows(items: dict) -> str:
    return "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in items.items())


def mechanism_table(properties: dict, currency: str) -> str:
    """The summary's mechanism properties as one HTML table, a row per measure; money in `currency`."""
    rows = {f"{group} · {key}": value for group, measures in properties.items() for key, value in measures.items()}
    return f"<h2>Mechanism properties</h2><p>Money in {html.escape(currency)}.</p><table>{_rows(rows)}</table>"


def _money(micro: int | None) -> str:
    return "kept private" if micro is None else f"{micro * 1e-6:,.6f}"


def rationality_table(above: list[dict], currency: str) -> str:
    """The summary's individual_rationality as an HTML section: who paid more than its tariff baseline, and why."""
    if not above:
        return "<h2>Individual rationality</h2><p>No participant paid more than its tariff baseline.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(p['participant'])}</td><td>{_money(p['bill_micro'])}</td>"
        f"<td>{_money(p['baseline_micro'])}</td><td>{_money(p['excess_micro'])}</td>"
        f"<td>{html.escape('; '.join(p['reasons']))}</td></tr>" for p in above[:MAX_BARS])
    more = f"<p>… and {len(above) - MAX_BARS:,} more (summary.json lists them all).</p>" if len(above) > MAX_BARS else ""
    return (f"<h2>Individual rationality</h2><p><strong>{len(above):,} participant{'s' if len(above) != 1 else ''} "
            f"paid more than the tariff baseline</strong> (money in {html.escape(currency)}).</p>"
            f"<table><tr><th>participant</th><th>bill</th><th>tariff baseline</th><th>excess</th><th>why</th></tr>"
            f"{rows}</table>{more}")


def write_report(world: World, totals: Totals, summary: dict, path: Path) -> None:
    """Writes one HTML file that opens offline: KPI table, mechanism properties, then the figures.

    The figures' element ids are numbered, not random, so the same run writes the same bytes.
    """
    rows = _rows(summary["kpis"])
    divs = "".join(f.html(f"figure-{i}") for i, f in enumerate(figures(world, totals)))
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Plurigrid run: {html.escape(summary['name'])}</title>"
        f"<script>{plotly_js()}</script>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td{padding:2px 12px}</style></head><body>"
        f"<h1>{html.escape(summary['name'])} — {html.escape(summary['mechanism'])}</h1>"
        f"{_partial(summary)}<p>{summary['steps']} steps of {summary['resolution_h']} h from {html.escape(summary['start'])}, "
        f"{summary['participants']} participants, {summary['buses']} buses.</p>"
        f"<table>{rows}</table>{mechanism_table(summary['mechanism_properties'], summary['currency'])}"
        f"{rationality_table(summary.get('individual_rationality', []), summary['currency'])}"
        f"{divs}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
