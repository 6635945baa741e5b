"""The georgia-resilience game: its world, the shocks' effect, a state that withstands a cut-off the status quo does
not (numbers checked by hand from georgia.toml), the rules, the payoffs, the report's definitions, determinism."""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import numpy as np
import pytest

import plurigrid
from plurigrid.errors import UsageError
from plurigrid.games import georgia
from plurigrid.games._georgia_model import (
    ImportCapacity,
    PolicyState,
    ShockOdds,
    Stock,
    import_capacity,
    shock_chances,
    transition,
)
from plurigrid.games._georgia_report import TurnRecord, recoveries
from plurigrid.games._georgia_world import DayInputs, DayOutcome, day_spec, simulate_day

INITIAL = georgia.ResilienceSpec().initial_state()
STATUS_QUO = PolicyState.of(0.0, 0.0, 0.4, 0.5)  # no diversity, no cooperation left
DIVERSIFIED = PolicyState.of(1.0, 1.0, 0.4, 0.5)
THRESHOLD = 100.0


def inputs(state: PolicyState, shocks: tuple[str, ...] = (), neighbours: str = "cooperate") -> DayInputs:
    return DayInputs(import_capacity(state, neighbours), Stock(), frozenset(shocks), 0.5, 24)


def day(state: PolicyState, shocks: tuple[str, ...] = ()) -> DayOutcome:
    return simulate_day(inputs(state, shocks))


def toml() -> dict:
    return tomllib.loads((resources.files("plurigrid.microworld.library") / "georgia.toml").read_text(encoding="utf-8"))


def participant(world: dict, pid: str) -> dict:
    return next(p for p in world["participant"] if p["id"] == pid)


# --- the world


def test_the_world_runs_balanced_and_is_about_70_percent_hydro(tmp_path):
    run = plurigrid.load("georgia").run(out=tmp_path)
    assert run.summary["balance"] == {"energy_residual_wh": 0, "money_residual_micro": 0}
    assert run.kpis["pf_nonconverged_steps"] == 0 and run.kpis["voltage_violations"] == 0
    assert "unserved_kw" not in run.timeseries  # a normal day sheds nothing
    # the header's arithmetic: Enguri's schedule x 1,300 MW plus 600 MW of rivers over the day's demand
    world = toml()
    load_mwh = sum(sum(participant(world, f"load-{c}")["assets"]["load"]["profile"]["p_kw"]) for c in
                   ("tbilisi", "kutaisi", "batumi")) / 1000
    enguri = participant(world, "enguri")["assets"]["hydro"]
    hydro_mwh = sum(enguri["profile"]["per_unit"]) * enguri["p_kw"] / 1000 + 24 * 600
    assert hydro_mwh / load_mwh == pytest.approx(0.704, abs=5e-4)
    normal = day(INITIAL)
    assert normal.hydro_mwh == pytest.approx(hydro_mwh)  # no hydro curtailed
    assert 0.68 <= normal.hydro_share <= 0.72  # of everything generated and imported (losses included)
    assert normal.unserved_mwh == 0 and normal.spike_hours(THRESHOLD) == 0


@pytest.mark.parametrize("shock", ["drought", "import-cutoff", "dam-outage"])
def test_a_shock_sheds_load_or_raises_prices(shock):
    normal, shocked = day(INITIAL), day(INITIAL, (shock,))
    assert shocked.unserved_mwh > normal.unserved_mwh or shocked.price_eur_per_mwh.mean() > normal.price_eur_per_mwh.mean()
    if shock == "drought":  # hydro_scale 0.5 halves every hydro plant's output
        assert shocked.hydro_mwh == pytest.approx(0.5 * normal.hydro_mwh) and shocked.unserved_mwh > 0
    elif shock == "import-cutoff":  # the initial state's partners cover the peak, dearer than Russia: no shedding
        assert shocked.imports_mwh["russia"] == 0 and shocked.unserved_mwh == 0
        assert shocked.price_eur_per_mwh.mean() > normal.price_eur_per_mwh.mean() + 10
    else:
        assert shocked.margin_eur["enguri"] == 0 and shocked.unserved_mwh > 0


def test_a_diversified_state_withstands_a_cutoff_the_status_quo_does_not():
    # capacities by the rules: Azerbaijan 100 + 500 c, Armenia 50 + 150 c, Turkey 700 d (MW)
    assert import_capacity(STATUS_QUO, "cooperate") == ImportCapacity(100, 50, 0)
    assert import_capacity(DIVERSIFIED, "cooperate") == ImportCapacity(600, 200, 700)
    # Without Russia, the status quo has 100 + 50 + Gardabani 250 + Mtkvari 100 = 500 MW beside hydro; the
    # residual demand (load - Enguri's schedule - 600 MW of rivers) is 684 MW at 18:00, so 184 MW are shed
    # then, less what wind (21 MW) gives (no sun after 17:30 in January).
    world = toml()
    load_kw = np.sum([participant(world, f"load-{c}")["assets"]["load"]["profile"]["p_kw"]
                      for c in ("tbilisi", "kutaisi", "batumi")], axis=0)
    enguri = participant(world, "enguri")["assets"]["hydro"]
    residual_mw = (load_kw - np.array(enguri["profile"]["per_unit"]) * enguri["p_kw"]) / 1000 - 600
    assert residual_mw[18] == pytest.approx(684)
    weak, strong = day(STATUS_QUO, ("import-cutoff",)), day(DIVERSIFIED, ("import-cutoff",))
    assert 184 - 21 <= weak.unserved_mw[18] <= 184
    upper = float(np.maximum(residual_mw - 500, 0).sum())  # 1,776 MWh, before wind and PV
    assert upper == pytest.approx(1776) and upper - 21 * 24 - 60 * 8 <= weak.unserved_mwh <= upper
    assert weak.spike_hours(THRESHOLD) == 24  # the 140 EUR/MWh reserve runs every hour
    # diversified: 600 + 200 + 700 + 250 MW without the reserve, far above the peak's 684
    assert strong.unserved_mwh == 0 and strong.spike_hours(THRESHOLD) == 0
    assert weak.imports_mwh["russia"] == strong.imports_mwh["russia"] == 0


def test_load_shed_is_recorded_and_the_ledger_stays_balanced(tmp_path):
    spec = day_spec(inputs(STATUS_QUO, ("import-cutoff",)))
    run = plurigrid.load(spec).run(out=tmp_path)
    assert run.summary["balance"] == {"energy_residual_wh": 0, "money_residual_micro": 0}
    unserved = run.timeseries["unserved_kw"].to_numpy()
    assert unserved.sum() / 1000 == pytest.approx(day(STATUS_QUO, ("import-cutoff",)).unserved_mwh)
    demanded = run.world.compiled.series.block(0, 24).load_kw.sum(axis=1)
    assert np.allclose(run.timeseries["served_kw"].to_numpy() + unserved, demanded)
    assert run.verify()["height"] == 24


# --- the rules


def test_transition_erodes_then_adds_each_action():
    state = PolicyState(diversity=4, cooperation=6, russia=8, governance=10)
    actions = {"government": "diversify-imports", "neighbours": "restrict", "international": "fund-interconnector",
               "investors": "wait"}
    assert transition(state, actions) == PolicyState(diversity=4 - 1 + 3 + 2, cooperation=6 - 1 - 2, russia=8 - 1,
                                                     governance=10 - 1)
    calm = {"government": "status-quo", "neighbours": "neutral", "international": "none", "investors": "wait"}
    assert transition(PolicyState(0, 0, 0, 0), calm) == PolicyState(0, 0, 0, 0)  # clipped at 0
    assert Stock(solar=4).add("solar", 4) == Stock(solar=4) and Stock().add("wind", 4) == Stock(wind=1)


def test_shock_chances_follow_relations_and_governance():
    odds = ShockOdds(0.15, 0.35, 0.12, 0.5, 0.7, 0.6)
    s = PolicyState.of(0.0, 0.0, 0.4, 0.5)
    assert shock_chances(odds, s, frozenset()) == pytest.approx(
        {"drought": 0.15, "import-cutoff": 0.35 * 0.6, "dam-outage": 0.12 * 0.75})
    assert shock_chances(odds, s, frozenset({"import-cutoff"}))["import-cutoff"] == pytest.approx(0.7 * 0.6)
    assert shock_chances(odds, PolicyState.of(0, 0, 1.0, 0), frozenset())["import-cutoff"] == 0.0


def test_payoffs_by_hand():
    d = DayOutcome(price_eur_per_mwh=np.array([50.0]), unserved_mw=np.array([10.0]), dt_h=1.0, demand_mwh=1000.0,
                   unserved_mwh=10.0, hydro_mwh=700.0, generation_mwh=990.0, imports_mwh={},
                   margin_eur={"import-azerbaijan": 3000.0, "import-armenia": 1000.0, "import-turkey": 0.0,
                               "new-solar": 2 * 40_000.0},
                   load_bill_eur=50_000.0)
    state = PolicyState.of(0.3, 0.6, 0.5, 0.6)
    actions = {"government": "status-quo", "neighbours": "restrict", "international": "fund-governance",
               "investors": "solar"}
    paid = georgia.payoffs(state, actions, Stock(solar=2), d, voll_eur_per_mwh=1000.0)
    norm = 1000 * 100.0
    assert paid["government"] == pytest.approx(-(50_000 + 1000 * 10) / norm)
    assert paid["neighbours"] == pytest.approx(10 * 4000 / norm + 0.01)
    assert paid["international"] == pytest.approx((0.3 + 0.6 + 0.6) / 3 - 10 * 0.01 - 0.02)
    capital = 120e6 * 0.08 / (1 - 1.08 ** -25) / 365  # 30,799 EUR a day
    assert georgia.capital_cost_eur_per_day("solar") == pytest.approx(30_799, abs=1)
    assert paid["investors"] == pytest.approx((0.8 * 40_000 - capital) / capital)
    assert georgia.payoffs(state, actions | {"investors": "wait"}, Stock(), d, 1000.0)["investors"] == 0.0


# --- the report


def turn(t: int, unserved: float, shocks: tuple[str, ...]) -> TurnRecord:
    return TurnRecord(0, t, {}, INITIAL, Stock(), frozenset(shocks), unserved, 0.0, 0.0, 50.0, 50.0, 0.7, {}, {})


def test_recovery_counts_turns_to_the_first_normal_turn():
    run = [turn(0, 0, ()), turn(1, 5, ("drought",)), turn(2, 3, ("drought", "import-cutoff")), turn(3, 0, ()),
           turn(4, 0, ("dam-outage",)), turn(5, 2, ("import-cutoff",))]
    got = [(r.turn, r.shock, r.recovery_turns, r.censored) for r in recoveries(run)]
    assert got == [(1, "drought", 2, False), (2, "import-cutoff", 1, False), (4, "dam-outage", 0, False),
                   (5, "import-cutoff", 1, True)]


def test_report_is_deterministic_json_and_agents_learn():
    simulate_day.cache_clear()
    first = georgia.run_resilience(runs=2, turns=6, seed=3, learner="q-learning")
    simulate_day.cache_clear()  # the second report simulates again
    again = georgia.run_resilience(runs=2, turns=6, seed=3, learner="q-learning")
    text = json.dumps(first.to_json(), allow_nan=False, sort_keys=True)
    assert text == json.dumps(again.to_json(), allow_nan=False, sort_keys=True)
    other = georgia.run_resilience(runs=1, turns=6, seed=4, learner="q-learning")
    assert [t.to_json() for t in other.turns] != [t.to_json() for t in first.turns if t.run == 0]
    for run in range(2):
        turns = [t for t in first.turns if t.run == run]
        for agent in georgia.AGENTS:
            # a learner tries every action once (its policy uniform meanwhile), then learns from the payoffs
            menu = georgia.MENUS[agent]
            assert sorted(t.actions[agent] for t in turns[:len(menu)]) == sorted(menu)
            assert np.allclose(turns[0].policies[agent], 1 / len(menu))
            assert not np.allclose(turns[-1].policies[agent], 1 / len(menu)), (run, agent)
    tables = first.tables()
    assert set(tables) == {"runs", "shocks", "withstand", "recoveries", "turns"}
    assert tables["withstand"]["cases"].sum() == 2 * 6 and tables["turns"].shape[0] == 12
    assert first.aggregate()["unserved_mwh_mean"] == pytest.approx(tables["runs"]["unserved_mwh"].mean())


def test_spec_fields_have_defaults_and_descriptions_and_refuse_in_one_line():
    for name, field in georgia.ResilienceSpec.model_fields.items():
        assert field.description and not field.is_required(), name
    with pytest.raises(UsageError, match=r"^run_resilience: resilience\.colour: unknown key"):
        georgia.run_resilience(runs=1, turns=1, colour="red")
    with pytest.raises(UsageError, match=r"^run_resilience: resilience\.learner: expected one of") as bad:
        georgia.run_resilience(runs=1, turns=1, learner="guess")
    assert "\n" not in str(bad.value)
    with pytest.raises(UsageError, match=r"^resilience\.runs: must be >= 1$"):
        georgia.resilience_spec({"runs": 0})
