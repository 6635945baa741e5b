"""A self-contained HTML report of a run (plotly, with plotly.js inlined once)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from plurigrid.engine.record import Totals
from plurigrid.engine.world import World

MAX_BARS = 60


def _figure(title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, yaxis_title=y_title, height=340, margin=dict(l=60, r=20, t=50, b=40),
                      template="plotly_white", legend=dict(orientation="h"))
    return fig


def figures(w: World, totals: Totals) -> list[go.Figure]:
    """Prices, net load, state of charge, voltage band, loading and bills vs the tariff baseline."""
    s = totals.series
    x = w.index[:totals.steps].tz_localize(None)
    prices = _figure("Prices", f"{w.spec.world.currency}/kWh")
    prices.add_scatter(x=x, y=s["import_eur_per_kwh"], name="import tariff", line_shape="hv")
    prices.add_scatter(x=x, y=s["export_eur_per_kwh"], name="export tariff", line_shape="hv")
    prices.add_scatter(x=x, y=s["price_eur_per_kwh"], name="market price", mode="lines+markers", line_shape="hv")
    load = _figure("Community power", "kW")
    for key, name in (("served_kw", "demand served"), ("renewable_kw", "renewables used"),
                      ("thermal_kw", "thermal"), ("upstream_kw", "grid import"), ("losses_kw", "losses")):
        load.add_scatter(x=x, y=s[key], name=name, line_shape="hv")
    soc = _figure("Stored energy (all batteries)", "kWh")
    soc.add_scatter(x=x, y=s["soc_kwh"], name="state of charge")
    volt = _figure("Voltage band", "pu")
    volt.add_scatter(x=x, y=s["vm_max_pu"], name="max")
    volt.add_scatter(x=x, y=s["vm_min_pu"], name="min")
    for limit in (0.9, 1.1):
        volt.add_hline(y=limit, line_dash="dot", line_color="red")
    loading = _figure("Highest branch loading", "%")
    loading.add_scatter(x=x, y=s["max_line_loading_pct"], name="lines")
    loading.add_scatter(x=x, y=s["max_trafo_loading_pct"], name="transformers")
    loading.add_hline(y=100, line_dash="dot", line_color="red")
    bill = totals.bill_micro * 1e-6
    base = totals.baseline_micro * 1e-6
    order = np.argsort(-np.abs(base - bill), kind="stable")[:MAX_BARS]
    bills = _figure(f"Bills vs tariff baseline ({min(MAX_BARS, w.n)} participants with the largest difference)",
                    w.spec.world.currency)
    names = [w.ids[i] for i in order]
    bills.add_bar(x=names, y=base[order], name="tariff baseline")
    bills.add_bar(x=names, y=bill[order], name=f"{w.mechanism}")
    return [prices, load, soc, volt, loading, bills]


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


def write_report(world: World, totals: Totals, summary: dict, path: Path) -> None:
    """Writes one HTML file that opens offline: KPI table, mechanism properties, then the figures.

    The figures' element ids are numbered, not random, so the same run writes the same bytes.
    """
    rows = _rows(summary["kpis"])
    divs = "".join(f.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{i}")
                   for i, f in enumerate(figures(world, totals)))
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Plurigrid run: {html.escape(summary['name'])}</title>"
        f"<script>{get_plotlyjs()}</script>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td{padding:2px 12px}</style></head><body>"
        f"<h1>{html.escape(summary['name'])} — {html.escape(summary['mechanism'])}</h1>"
        f"{_partial(summary)}<p>{summary['steps']} steps of {summary['resolution_h']} h from {html.escape(summary['start'])}, "
        f"{summary['participants']} participants, {summary['buses']} buses.</p>"
        f"<table>{rows}</table>{mechanism_table(summary['mechanism_properties'], summary['currency'])}"
        f"{divs}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
