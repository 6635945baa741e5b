"""The whole analysis of a microworld game under each of its mechanisms, as JSON and one offline HTML page.

For every mechanism: the payoff table (every profile, when there are at most MAX_TABLE_PROFILES),
the pure equilibria with their community cost, the price of anarchy and of stability against the
social optimum, the deviations from the truthful profile (the equilibrium predicate's answer), the
counterfactuals of each player there, and the coalitions' values with the Shapley value, core and
nucleolus. Everything comes from the one simulation cache, so each run is simulated once.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plurigrid.engine.report import Figure, plotly_js
from plurigrid.games.analysis import counterfactuals, deviations, labels_of, price_of_anarchy, pure_equilibria, truthful_profile
from plurigrid.games.coalition_values import coalition_analysis
from plurigrid.games.microgame import MicroworldGame

MAX_TABLE_PROFILES = 256


@dataclass
class GameReport:
    name: str
    description: str
    players: list[str]
    mechanisms: list[dict]
    simulations: int
    cache_hit_rate: float

    def to_json(self) -> dict:
        return {"game": self.name, "description": self.description, "players": self.players, "mechanisms": self.mechanisms,
                "simulations": self.simulations, "cache_hit_rate": round(self.cache_hit_rate, 6)}


def analyse(games: list[MicroworldGame], optimum: MicroworldGame | None, workers: int = 1, coalitions: bool = True) -> GameReport:
    """Equilibria, price of anarchy, deviations, counterfactuals and coalitions of the game under each mechanism."""
    first = games[0]
    before = first.cache.misses
    sections = []
    for g in games:
        found = pure_equilibria(g, workers=workers)
        anarchy = price_of_anarchy(g, found, optimum)
        truthful = truthful_profile(g)
        section = {"mechanism": g.mechanism, "method": found.method, "note": found.note, "profiles": found.profiles,
                   "equilibria": [e.to_json(g.player_ids) for e in found.equilibria], **anarchy.to_json(),
                   "truthful": deviations(g, truthful, workers).to_json(g.player_ids),
                   "counterfactuals": [{"player": c.player, "alternative": c.alternative, "payoff_eur": round(c.payoff_eur, 6),
                                        "bill_eur": round(c.bill_eur, 6), "gain_eur": round(c.gain_eur, 6)}
                                       for c in counterfactuals(g, truthful, workers)]}
        if found.profiles <= MAX_TABLE_PROFILES and found.method == "enumeration":
            section["table"] = [{"profile": labels_of(g, p), "payoffs_eur": np.round(g.payoffs(p), 6).tolist(),
                                 "community_cost_eur": round(g.community_cost(p), 6)} for p in g.profiles()]
        if coalitions:
            section["coalitions"] = coalition_analysis(g, truthful, workers=workers).to_json()
        sections.append(section)
    cache = first.cache
    return GameReport(first.spec.game.name, first.spec.game.description, first.player_ids, sections,
                      cache.misses - before, cache.hit_rate)


def write_report(report: GameReport, folder: Path) -> Path:
    """Writes report.json and report.html (opens offline: plotly.js inlined) into `folder`; returns the HTML's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    figures = [_cost_figure(report)]
    if any("coalitions" in m for m in report.mechanisms):
        figures += [_shapley_figure(report), _coalition_figure(report)]
    body = "".join(_section(report, m) for m in report.mechanisms)
    divs = "".join(f.html(f"figure-{i}") for i, f in enumerate(figures))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>Plurigrid game: {html.escape(report.name)}</title><script>{plotly_js()}</script>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:2px 10px;text-align:left}"
            ".eq{font-weight:bold;background:#eef7ee}</style></head><body>"
            f"<h1>{html.escape(report.name)}</h1><p>{html.escape(report.description)}</p>"
            f"<p>Players: {html.escape(', '.join(report.players))}. Payoffs are minus each player's cost of energy in EUR; "
            f"the community's cost is what leaves the community (docs/games.md: tariff payments for energy its market did not "
            f"match, the market's upstream energy, fees, fuel, wear, discomfort and unserved demand). {report.simulations} simulations "
            f"(cache hit rate {report.cache_hit_rate:.1%}).</p>{_summary(report)}{divs}{body}</body></html>")
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_resilience_report(report: Any, folder: Path) -> Path:
    """Writes report.json, one CSV per table and report.html (the tables) of a resilience game's report
    (games.georgia.ResilienceReport) into `folder`; returns the HTML's path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = report.to_json()
    (folder / "report.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tables = report.tables()
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    aggregate = {k: v for k, v in data["aggregate"].items() if not isinstance(v, dict)}
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(f'{v:,.4g}' if isinstance(v, float) else str(v))}</td></tr>"
                   for k, v in aggregate.items())
    sections = "".join(f"<h2>{html.escape(name)}</h2>{table.to_html(index=False, float_format=lambda x: f'{x:,.3f}')}"
                       for name, table in tables.items() if name in ("shocks", "withstand", "runs", "recoveries"))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Plurigrid game: georgia-resilience</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}td,th{padding:2px 10px;text-align:left}</style></head><body>"
            f"<h1>georgia-resilience</h1><p>{data['spec']['runs']} seeded runs of {data['spec']['turns']} turns, agents learning by "
            f"{html.escape(str(data['spec']['learner']))}.</p><table>{rows}</table>{sections}</body></html>")
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _summary(report: GameReport) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m['mechanism'])}</td><td>{m['profiles']:,}</td><td>{len(m['equilibria'])}</td>"
        f"<td>{_fmt(m['truthful']['community_cost_eur'], 3)}</td><td>{'yes' if m['truthful']['equilibrium'] else 'no'}</td>"
        f"<td>{_fmt(m['worst_equilibrium_cost_eur'], 3)}</td><td>{_fmt(m['best_equilibrium_cost_eur'], 3)}</td>"
        f"<td>{_fmt(m['optimum_cost_eur'], 3)} ({html.escape(m['optimum'])})</td><td>{_fmt(m['price_of_anarchy'])}</td>"
        f"<td>{_fmt(m['price_of_stability'])}</td></tr>"
        for m in report.mechanisms)
    return ("<h2>Coordination against competition</h2><table><tr><th>mechanism</th><th>profiles</th><th>pure equilibria</th>"
            "<th>truthful cost</th><th>truthful is an equilibrium</th><th>worst equilibrium cost</th><th>best equilibrium cost</th>"
            f"<th>optimum cost (what it is)</th><th>price of anarchy</th><th>price of stability</th></tr>{rows}</table>")


def _section(report: GameReport, m: dict) -> str:
    players = report.players
    head = "".join(f"<th>{html.escape(p)}</th>" for p in players)
    count = len(m["equilibria"])
    parts = [f"<h2>Under {html.escape(m['mechanism'])}</h2><p>{count} pure equilibri{'um' if count == 1 else 'a'} among {m['profiles']:,} "
             f"profiles ({html.escape(m['method'])}). {html.escape(m['note'])}</p>"]
    eq = {tuple(e["profile"][p] for p in players) for e in m["equilibria"]}
    if "table" in m:
        rows = "".join(
            f"<tr{' class=eq' if tuple(r['profile']) in eq else ''}>" + "".join(f"<td>{html.escape(s)}</td>" for s in r["profile"])
            + "".join(f"<td>{v:,.4f}</td>" for v in r["payoffs_eur"]) + f"<td>{r['community_cost_eur']:,.3f}</td></tr>"
            for r in m["table"])
        pay_head = "".join(f"<th>payoff {html.escape(p)}</th>" for p in players)
        parts.append(f"<h3>Payoff table (equilibria in bold)</h3><table><tr>{head}{pay_head}<th>community cost</th></tr>{rows}</table>")
    else:
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(e['profile'][p])}</td>" for p in players)
                       + f"<td>{e['community_cost_eur']:,.3f}</td></tr>" for e in m["equilibria"])
        parts.append(f"<h3>Equilibria</h3><table><tr>{head}<th>community cost</th></tr>{rows}</table>")
    dev = m["truthful"]["deviations"]
    rows = "".join(f"<tr><td>{html.escape(d['player'])}</td><td>{html.escape(d['to'])}</td><td>{d['gain_eur']:,.4f}</td></tr>" for d in dev)
    parts.append("<h3>Deviations from truthful bidding</h3>" + (
        f"<table><tr><th>player</th><th>deviates to</th><th>gains EUR</th></tr>{rows}</table>" if dev
        else "<p>None: the truthful profile is an equilibrium.</p>"))
    rows = "".join(f"<tr><td>{html.escape(c['player'])}</td><td>{html.escape(c['alternative'])}</td><td>{c['bill_eur']:,.2f}</td>"
                   f"<td>{c['gain_eur']:+,.4f}</td></tr>" for c in m["counterfactuals"])
    parts.append("<h3>Counterfactuals from the truthful profile</h3><table><tr><th>player</th><th>had it chosen</th>"
                 f"<th>it would have paid EUR</th><th>gain EUR</th></tr>{rows}</table>")
    if "coalitions" in m:
        c = m["coalitions"]
        rows = "".join(f"<tr><td>{html.escape(', '.join(row['members']) or '(none)')}</td><td>{row['value']:,.4f}</td></tr>"
                       for row in c["coalitions"])
        core = c["core"]
        parts.append(f"<h3>Coalitions (savings from trading among members, the rest at tariff)</h3><p>Core: "
                     f"{'-' if core is None else ('empty' if core['empty'] else 'not empty')}.</p>"
                     f"<table><tr><th>coalition</th><th>value EUR</th></tr>{rows}</table>")
    return "".join(parts)


def _cost_figure(report: GameReport) -> Figure:
    fig = Figure("Community cost by mechanism", "EUR")
    names = [m["mechanism"] for m in report.mechanisms]
    fig.bars(names, np.array([m["truthful"]["community_cost_eur"] for m in report.mechanisms], dtype=float), "truthful profile")
    for key, label in (("worst_equilibrium_cost_eur", "worst equilibrium"), ("best_equilibrium_cost_eur", "best equilibrium")):
        fig.bars(names, np.array([np.nan if m[key] is None else m[key] for m in report.mechanisms], dtype=float), label)
    fig.line(names, np.array([m["optimum_cost_eur"] for m in report.mechanisms], dtype=float), "social optimum", markers=True)
    return fig


def _shapley_figure(report: GameReport) -> Figure:
    fig = Figure("Shapley value of the savings from trading", "EUR")
    for m in report.mechanisms:
        if "coalitions" in m:
            values = m["coalitions"]["shapley"]["values"]
            fig.bars(report.players, np.array([values[p] for p in report.players], dtype=float), m["mechanism"])
    return fig


def _coalition_figure(report: GameReport) -> Figure:
    """Each coalition's value (what its members save by trading among themselves), by mechanism."""
    fig = Figure("Value of each coalition", "EUR")
    for m in report.mechanisms:
        if "coalitions" in m:
            rows = [row for row in m["coalitions"]["coalitions"] if row["members"]]
            fig.bars(["+".join(row["members"]) for row in rows], np.array([row["value"] for row in rows], dtype=float), m["mechanism"])
    return fig
