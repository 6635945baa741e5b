"""`georgia-resilience`: the Georgian energy-market resilience game (docs/games-georgia.md).

Four agents play repeated turns: the Georgian government, the regional neighbours and energy partners,
international organisations and private investors. Each turn every agent picks one action of its menu
(`MENUS`); the actions move the state (import diversity, regional cooperation, relations with Russia,
transparency and governance; `_georgia_model.transition`) and the investors' stock of assets; chance then
brings shocks whose odds depend on the state (drought, a cut-off of the Russian imports, an outage of the
Enguri dam plant); and the turn's consequences come from simulating the library world `georgia` for a winter
day with all of that applied (`_georgia_world.simulate_day`: import capacities, new assets, events). Each
agent is paid from the day's results (`payoffs`) and learns from its own payoff (`games.learning` learners,
bandit feedback). `run_resilience` plays many seeded runs and reports unserved energy, price spikes, recovery
times and which strategy profiles withstand which shocks (`ResilienceReport`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plurigrid.games._georgia_model import AGENTS, MENUS, SHOCKS, PolicyState, Stock, draw_shocks, import_capacity, shock_chances, transition
from plurigrid.games._georgia_report import Recovery, ResilienceReport, TurnRecord
from plurigrid.games._georgia_spec import ResilienceSpec, resilience_spec
from plurigrid.games._georgia_world import DayInputs, DayOutcome, simulate_day
from plurigrid.games.learning import make_learner

REFERENCE_EUR_PER_MWH = 100.0  # payoffs are in units of the day's demand priced at this
# What an action costs its agent per turn, in payoff units (political capital, funds, capacity held back;
# negative: a gain, the neighbours' power kept at home)
ACTION_COST: dict[tuple[str, str], float] = {
    ("government", "diversify-imports"): 0.02, ("government", "regional-cooperation"): 0.01,
    ("government", "diplomacy-russia"): 0.01, ("government", "governance-reform"): 0.02,
    ("neighbours", "cooperate"): 0.01, ("neighbours", "restrict"): -0.01,
    ("international", "fund-interconnector"): 0.02, ("international", "fund-governance"): 0.02,
}
NEIGHBOUR_UNITS = ("import-azerbaijan", "import-armenia", "import-turkey")
NEIGHBOUR_WEIGHT = 10.0  # their export margin counts ten times in their payoff: it is their whole stake in a day
IO_UNSERVED_WEIGHT = 10.0  # the international organisations' penalty per share of demand shed
# Capital cost of one lump (EUR), its life (years) and the rate it is financed at: a reservoir plant of 150 MW at
# 2,500 EUR/kW, 200 MWp of PV at 600 EUR/kW, 150 MW of wind at 1,300 EUR/kW (round public cost figures).
CAPEX_EUR = {"hydro-storage": 375e6, "solar": 120e6, "wind": 195e6}
LIFE_YEARS = {"hydro-storage": 40, "solar": 25, "wind": 25}
RATE = 0.08


def capital_cost_eur_per_day(kind: str) -> float:
    """One lump's annuity (RATE over its life) per day."""
    annuity = RATE / (1 - (1 + RATE) ** -LIFE_YEARS[kind])
    return CAPEX_EUR[kind] * annuity / 365


def payoffs(state: PolicyState, actions: dict[str, str], stock: Stock, day: DayOutcome, voll_eur_per_mwh: float) -> dict[str, float]:
    """Each agent's payoff for a turn, in units of the day's demand priced at REFERENCE_EUR_PER_MWH:

    - government: minus what the load centres paid and the value of the load shed (VOLL), less its action's cost;
    - neighbours: NEIGHBOUR_WEIGHT x their import units' margin (market revenue less the import price), less its
      action's cost (restricting gains);
    - international organisations: the mean of diversity, cooperation and governance, less IO_UNSERVED_WEIGHT x
      the share of demand shed, less the funding;
    - investors: for an investment, the return of one lump of that kind over the day, (governance factor x its
      margin - its capital cost) / its capital cost, where the governance factor 0.5 + 0.5 g is the share of its
      revenue an investor keeps (regulatory risk); waiting earns 0.
    """
    norm = day.demand_mwh * REFERENCE_EUR_PER_MWH
    cost = {a: ACTION_COST.get((a, actions[a]), 0.0) for a in AGENTS}
    shed_share = day.unserved_mwh / day.demand_mwh if day.demand_mwh > 0 else 0.0
    mean_state = (state.frac("diversity") + state.frac("cooperation") + state.frac("governance")) / 3
    investment = actions["investors"]
    if investment == "wait" or stock.lumps(investment) == 0:
        investor = 0.0
    else:
        capital = capital_cost_eur_per_day(investment)
        margin = day.margin_eur[f"new-{investment}"] / stock.lumps(investment)
        investor = ((0.5 + 0.5 * state.frac("governance")) * margin - capital) / capital
    return {
        "government": -(day.load_bill_eur + voll_eur_per_mwh * day.unserved_mwh) / norm - cost["government"],
        "neighbours": NEIGHBOUR_WEIGHT * sum(day.margin_eur[u] for u in NEIGHBOUR_UNITS) / norm - cost["neighbours"],
        "international": mean_state - IO_UNSERVED_WEIGHT * shed_share - cost["international"],
        "investors": investor,
    }


def learner_seed(seed: int, run: int, agent: int) -> int:
    """A learner's own seed, derived from the study's seed, the run and the agent."""
    return int(np.random.SeedSequence([seed, run, agent]).generate_state(1)[0])


def play_run(spec: ResilienceSpec, run: int) -> list[TurnRecord]:
    """One seeded run of `spec.turns` turns (see the module docstring for a turn's order)."""
    rng = np.random.default_rng([spec.seed, run])
    learners = {a: make_learner(spec.learner, len(MENUS[a]), learner_seed(spec.seed, run, i)) for i, a in enumerate(AGENTS)}
    state, stock, shocks = spec.initial_state(), Stock(), frozenset[str]()
    odds = spec.odds()
    records = []
    for turn in range(spec.turns):
        chosen = {a: learners[a].act() for a in AGENTS}
        actions = {a: MENUS[a][chosen[a]] for a in AGENTS}
        state = transition(state, actions)
        stock = stock.add(actions["investors"], spec.max_lumps)
        shocks = draw_shocks(rng, shock_chances(odds, state, shocks))
        day = simulate_day(DayInputs(import_capacity(state, actions["neighbours"]), stock, shocks,
                                     spec.drought_hydro_scale, spec.hours))
        paid = payoffs(state, actions, stock, day, spec.voll_eur_per_mwh)
        for a in AGENTS:
            learners[a].update(chosen[a], paid[a])
        threshold = spec.spike_threshold_eur_per_mwh
        records.append(TurnRecord(
            run=run, turn=turn, actions=actions, state=state, stock=stock, shocks=shocks,
            unserved_mwh=day.unserved_mwh, spike_hours=day.spike_hours(threshold),
            abnormal_hours=day.abnormal_hours(threshold), mean_price_eur_per_mwh=float(day.price_eur_per_mwh.mean()),
            max_price_eur_per_mwh=float(day.price_eur_per_mwh.max()), hydro_share=day.hydro_share, payoffs=paid,
            policies={a: [float(x) for x in learners[a].policy()] for a in AGENTS}))
    return records


def resilience(spec: ResilienceSpec) -> ResilienceReport:
    """Plays `spec.runs` seeded runs and reports their resilience (same spec, same report)."""
    return ResilienceReport(spec, tuple(t for run in range(spec.runs) for t in play_run(spec, run)))


def run_resilience(runs: int = 20, turns: int = 12, seed: int = 0, learner: str = "q-learning", **options: Any) -> ResilienceReport:
    """The resilience report of `runs` seeded runs of `turns` turns, agents learning by `learner` (one of
    games.learning.LEARNERS); `options` are further ResilienceSpec fields. A bad value is a UsageError."""
    return resilience(resilience_spec({"runs": runs, "turns": turns, "seed": seed, "learner": learner, **options},
                                      "run_resilience"))


__all__ = ["AGENTS", "MENUS", "SHOCKS", "PolicyState", "Recovery", "ResilienceReport", "ResilienceSpec", "Stock",
           "TurnRecord", "capital_cost_eur_per_day", "payoffs", "play_run", "resilience", "resilience_spec",
           "run_resilience"]
