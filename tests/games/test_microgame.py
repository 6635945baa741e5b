"""Open-game operations on microworlds against hand-computed cases.

The test world: one hour, one supplier (a 30 kW unit at 0.10 EUR/kWh), one buyer (a 20 kW load), a
second supplier at 0.16 EUR/kWh; import tariff 0.30, export 0.05, no fee. Dispatch is merit order
(the cheap unit covers the 20 kW and the losses), so mark-ups move money only, and the pay-as-clear
price is midway between the last accepted bid (0.30) and ask: a marginal seller's mark-up m raises
its price by m/2 on every kWh it sells.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from plurigrid.games.analysis import counterfactuals, deviations, price_of_anarchy, pure_equilibria, subgame_perfect, truthful_profile
from plurigrid.games.coalition_values import coalition_analysis, coalition_value
from plurigrid.games.loader import load_game
from plurigrid.games.microgame import MicroworldGame, SimulationCache
from plurigrid.games.repeated import repeated_play
from plurigrid.microworld.loader import SpecError

WORLD = """
[world]
name = "two-suppliers"
start = 2024-01-17T12:00:00
duration = "1h"
resolution = "1h"
timezone = "UTC"
seed = 1

[grid]
bus = [{ id = "mv", vn_kv = 20.0 }, { id = "lv", vn_kv = 0.4 }]
transformer = [{ id = "t1", hv_bus = "mv", lv_bus = "lv", sn_mva = 0.4, r_pu = 0.011, x_pu = 0.06 }]
connection = { bus = "mv" }

[market]
mechanism = "pay-as-clear"
import_price_eur_per_kwh = 0.30
export_price_eur_per_kwh = 0.05

[[participant]]
id = "cheap"
bus = "lv"
strategy = "truthful"
assets.thermal = { p_max_kw = 30.0, variable_cost_eur_per_mwh = 100.0 }

[[participant]]
id = "dear"
bus = "lv"
strategy = "truthful"
assets.thermal = { p_max_kw = 30.0, variable_cost_eur_per_mwh = 160.0 }

[[participant]]
id = "buyer"
bus = "lv"
strategy = "truthful"
assets.load = { profile = { source = "constant", p_kw = 20.0 } }
"""

GAME = """
[game]
name = "mark-ups"
world = "world.toml"
mechanisms = ["pay-as-clear", "pay-as-bid", "vcg"]
tolerance_eur = 0.0001
optimum = "vcg"

[[menu]]
id = "offer"
strategy = [
  { name = "cost", strategy = "truthful", markup_eur_per_kwh = 0.0 },
  { name = "plus-4c", strategy = "truthful", markup_eur_per_kwh = 0.04 },
  { name = "plus-25c", strategy = "truthful", markup_eur_per_kwh = 0.25 },
]

[[player]]
id = "cheap"
menu = "offer"

[[player]]
id = "buyer"
menu = "offer"
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("game")
    (d / "world.toml").write_text(WORLD)
    (d / "game.toml").write_text(GAME)
    return d


@pytest.fixture(scope="module")
def cache() -> SimulationCache:
    return SimulationCache()


def game_under(folder: Path, mechanism: str, cache: SimulationCache, text: str | None = None) -> MicroworldGame:
    path = folder / "game.toml"
    if text is not None:
        path = folder / f"game-{abs(hash(text))}.toml"
        path.write_text(text)
    spec, name, base = load_game(str(path))
    return MicroworldGame(spec, name, base, mechanism, cache)


def test_vcg_truthful_profile_is_an_equilibrium(folder, cache) -> None:
    g = game_under(folder, "vcg", cache)
    report = deviations(g, truthful_profile(g))
    assert report.labels == ["cost", "cost"]
    assert report.equilibrium, [d.to_json() for d in report.deviations]


def test_pay_as_clear_has_a_profitable_deviation_worth_half_the_markup(folder, cache) -> None:
    g = game_under(folder, "pay-as-clear", cache)
    report = deviations(g, truthful_profile(g))
    assert not report.equilibrium
    gains = {(d.player, d.to_plan): d.gain_eur for d in report.deviations}
    # the seller sells its whole output to the buyer (20 kW load plus the feeder's losses, which the upstream
    # grid supplies); marking up 4 cents moves the midpoint price 2 cents: 20 kWh x 0.02 EUR
    assert gains[("cheap", "plus-4c")] == pytest.approx(0.02 * 20.0, abs=0.005)
    # the buyer shading its bid by 4 cents lowers the price by 2 cents on what it buys
    assert gains[("buyer", "plus-4c")] == pytest.approx(0.02 * 20.0, abs=0.005)
    # a 25-cent mark-up prices the seller out (0.35 > the buyer's 0.30): it would sell at the export tariff
    assert ("cheap", "plus-25c") not in gains


def test_enumeration_finds_the_equilibria_and_the_price_of_anarchy(folder, cache) -> None:
    g = game_under(folder, "pay-as-clear", cache)
    found = pure_equilibria(g, method="enumerate")
    assert found.method == "enumeration" and found.profiles == 9
    labels = [e.labels for e in found.equilibria]
    # both mark up as far as they can and still trade (4 cents each), or both price themselves out (25 cents each:
    # neither can then trade alone, a coordination failure)
    assert labels == [["plus-4c", "plus-4c"], ["plus-25c", "plus-25c"]]
    assert all(e.equilibrium for e in found.equilibria)
    optimum = game_under(folder, "vcg", cache)
    anarchy = price_of_anarchy(g, found, optimum)
    trading, stuck = found.equilibria
    # the trading equilibrium moves money only: the community pays what truthful play costs, the optimum
    assert anarchy.price_of_stability == pytest.approx(1.0, abs=1e-6)
    assert trading.community_cost_eur == pytest.approx(optimum.community_cost(truthful_profile(optimum)), abs=1e-6)
    # without trade the buyer imports at 0.30 what the seller exports at 0.05: the spread on 20 kWh is lost
    assert stuck.community_cost_eur - trading.community_cost_eur == pytest.approx(20.0 * 0.25, rel=0.02)
    assert anarchy.price_of_anarchy == pytest.approx(stuck.community_cost_eur / anarchy.optimum_cost_eur, rel=1e-6)
    # a profile that prices the seller out costs the community the spread between import and export tariffs
    out = g.profile_of({"cheap": "plus-25c"})
    assert g.community_cost(out) - g.community_cost(truthful_profile(g)) == pytest.approx(20.0 * 0.25, rel=0.02)


def test_best_response_dynamics_reach_the_same_equilibrium(folder, cache) -> None:
    g = game_under(folder, "pay-as-clear", cache)
    found = pure_equilibria(g, method="best-response")
    assert found.method == "best-response dynamics" and "others may exist" in found.note
    assert [e.labels for e in found.equilibria] == [["plus-4c", "plus-4c"]]


def test_counterfactuals_report_what_each_choice_would_have_cost(folder, cache) -> None:
    g = game_under(folder, "pay-as-bid", cache)
    rows = counterfactuals(g, truthful_profile(g))
    chosen = {c.player: c for c in rows if c.alternative == c.chosen}
    assert chosen["cheap"].gain_eur == 0.0
    for c in rows:
        alt = g.profile_of({c.player: c.alternative})
        assert c.payoff_eur == pytest.approx(g.payoffs(alt)[g.player_ids.index(c.player)])
    # under pay-as-bid the seller is paid its ask: 4 cents more on 20 kWh
    plus = next(c for c in rows if c.player == "cheap" and c.alternative == "plus-4c")
    assert plus.gain_eur == pytest.approx(0.04 * 20.0, abs=0.01)


def test_runs_are_simulated_once_and_cached_on_disk(folder, tmp_path) -> None:
    first = SimulationCache(tmp_path)
    g = game_under(folder, "pay-as-clear", first)
    pure_equilibria(g, method="enumerate")
    assert first.misses == 9  # one run per profile, every other lookup a hit
    assert first.hits > 0
    again = SimulationCache(tmp_path)  # a new process reads the runs back
    g2 = game_under(folder, "pay-as-clear", again)
    found = pure_equilibria(g2, method="enumerate")
    assert again.misses == 0 and found.simulations == 0
    assert [e.labels for e in found.equilibria] == [["plus-4c", "plus-4c"], ["plus-25c", "plus-25c"]]


def test_parallel_simulation_gives_the_same_payoffs(folder) -> None:
    serial, parallel = SimulationCache(), SimulationCache()
    a, b = game_under(folder, "pay-as-bid", serial), game_under(folder, "pay-as-bid", parallel)
    b.prefetch(list(b.profiles()), workers=2)
    for p in a.profiles():
        assert np.array_equal(a.payoffs(p), b.payoffs(p))


def test_runs_sharing_power_flows_give_the_same_bytes_as_fresh_ones() -> None:
    """The runs of a game share their power flows (payoffs.run_costs): a cache that must never change a result."""
    import plurigrid
    from plurigrid.engine.runtime import Runtime
    from plurigrid.engine.series import Window
    from plurigrid.games.payoffs import run_costs

    world = plurigrid.load("residential", hours=6).compiled
    shared = Runtime(Window(world.series), None)
    run_costs(replace(world, markup_eur_per_kwh=np.full(world.n, 0.05)), shared)  # fills the shared cache first
    fresh, reused = run_costs(world), run_costs(world, shared)
    assert shared.powerflows
    assert fresh.bill_eur.tobytes() == reused.bill_eur.tobytes() and fresh.cost_eur.tobytes() == reused.cost_eur.tobytes()


def test_chance_moves_give_expected_payoffs_and_types(folder, cache) -> None:
    text = GAME + """
[[chance]]
id = "outage"
outcome = [
  { name = "none", probability = 0.75 },
  { name = "cheap-trips", probability = 0.25, event = [{ at = "0h", kind = "generator_trip", participant = "cheap" }] },
]
"""
    g = game_under(folder, "pay-as-clear", cache, text)
    profile = truthful_profile(g)
    plays = g.plays(profile)
    assert [prob for _, prob in plays] == [0.75, 0.25]
    expected = sum(prob * g._play_payoffs(play) for play, prob in plays)
    assert np.allclose(g.payoffs(profile), expected)
    tripped = g.costs(plays[1][0])
    assert tripped.bill_eur[0] == pytest.approx(0.0, abs=1e-6)  # a tripped unit sells nothing
    # a player who observes the chance move has a plan per outcome (its type): 3 entries ^ 2 outcomes
    typed = game_under(folder, "pay-as-clear", cache, text.replace('id = "buyer"\nmenu = "offer"',
                                                                  'id = "buyer"\nmenu = "offer"\nobserves = ["outage"]'))
    assert typed.shape == (3, 9)
    assert "cost|plus-4c" in typed.plan_labels(1)


def test_sequential_stages_solved_by_backward_induction(folder, cache) -> None:
    """Stage 0: the buyer may buy a battery-free PV roof for 1 EUR; stage 1: the seller, seeing that, picks its offer."""
    text = GAME.replace('id = "buyer"\nmenu = "offer"', """id = "buyer"
stage = 0
strategy = [
  { name = "no-pv", strategy = "truthful" },
  { name = "pv", strategy = "truthful", cost_eur = 1.0, assets = { pv = { kwp = 100.0 } } },
]""").replace('id = "cheap"\nmenu = "offer"', 'id = "cheap"\nmenu = "offer"\nstage = 1')
    g = game_under(folder, "pay-as-clear", cache, text)
    assert g.shape == (9, 2)  # the seller's plans answer each of the buyer's two choices
    spe = subgame_perfect(g)
    assert spe is not None and spe.equilibrium  # subgame perfect, hence no profitable deviation in the whole game
    # in each subgame the seller plays its best response to that history (its payoff on the path the history makes)
    for history, name in enumerate(["no-pv", "pv"]):
        seller_plan = g.plan_labels(0)[spe.profile[0]].split("|")[history]
        best = max(range(3), key=lambda a, h=history: g._play_payoffs(((), (a, h), None))[0])
        assert seller_plan == ["cost", "plus-4c", "plus-25c"][best], name
    # the buyer invests only if that pays once the seller has answered it
    invest = g.plan_labels(1)[spe.profile[1]]
    path = {h: ["cost", "plus-4c", "plus-25c"].index(g.plan_labels(0)[spe.profile[0]].split("|")[h]) for h in (0, 1)}
    pays = [g._play_payoffs(((), (path[h], h), None))[1] for h in (0, 1)]
    assert invest == ("pv" if pays[1] > pays[0] else "no-pv")


def test_coalition_values_and_shapley_split_the_grand_coalition(folder, cache) -> None:
    g = game_under(folder, "pay-as-clear", cache)
    profile = truthful_profile(g)
    assert coalition_value(g, profile, frozenset()) == 0.0
    assert coalition_value(g, profile, frozenset({"cheap"})) == pytest.approx(0.0, abs=1e-9)  # nobody to trade with
    grand = coalition_value(g, profile, frozenset({"cheap", "buyer"}))
    # trading 20 kWh among themselves instead of 0.30 import / 0.05 export saves the pair the 0.25 spread
    assert grand == pytest.approx(20.0 * 0.25, rel=0.02)
    report = coalition_analysis(g, profile)
    assert sum(report.shapley.values) == pytest.approx(grand, abs=1e-9)
    assert report.shapley.values == pytest.approx([grand / 2, grand / 2])  # a two-player game with worthless singletons
    assert report.core is not None and not report.core.empty


def test_learners_as_players_find_the_pay_as_bid_equilibrium(folder, cache) -> None:
    g = game_under(folder, "pay-as-bid", cache)
    played = repeated_play(g, "q-learning", rounds=300, seed=1)
    assert played.final.labels == ["plus-4c", "plus-4c"]
    assert played.final.equilibrium
    again = repeated_play(g, "q-learning", rounds=300, seed=1)
    assert np.array_equal(played.history, again.history)  # seeded: the same rounds


def test_unknown_participant_is_one_line_with_the_field(folder, cache) -> None:
    text = GAME.replace('id = "buyer"\nmenu = "offer"', 'id = "buyer"\nparticipants = ["nobody"]\nmenu = "offer"')
    with pytest.raises(SpecError, match=r"player\[1\]\.participants: unknown participant 'nobody'"):
        game_under(folder, "pay-as-clear", cache, text)


@pytest.mark.parametrize(("change", "message"), [
    (('menu = "offer"', 'menu = "offers"'), r"player\[0\]\.menu: unknown menu 'offers'"),
    (("tolerance_eur = 0.0001", "tolerance_eur = -1"), r"game\.tolerance_eur: must be >= 0"),
    (('mechanisms = ["pay-as-clear", "pay-as-bid", "vcg"]', 'mechanisms = ["auction"]'), r"game\.mechanisms\[0\]: expected one of"),
    (("markup_eur_per_kwh = 0.04", "markup_eur_per_kwh = 0.04, colour = 1"), r"menu\[0\]\.strategy\[1\]\.colour: unknown key"),
])
def test_bad_game_files_are_one_line(folder, change, message) -> None:
    path = folder / "bad.toml"
    path.write_text(GAME.replace(*change, 1))
    with pytest.raises(SpecError, match=message) as info:
        load_game(str(path))
    assert "\n" not in str(info.value) and str(info.value).startswith("bad.toml: ")


def test_library_games_load_and_name_their_players() -> None:
    from plurigrid.games.loader import library_games

    names = library_games()
    assert {"coordination-vs-competition", "coordination-vs-competition-congested", "supplier-bidding"} <= set(names)
    spec, _, _ = load_game("supplier-bidding")
    assert [p.id for p in spec.player] == ["biogas", "chp", "diesel-a", "diesel-b"]
    assert json.loads(json.dumps(spec.model_dump(mode="json")))["game"]["mechanisms"] == ["pay-as-clear", "pay-as-bid", "vcg"]


def test_a_sandboxed_module_is_a_strategy_on_the_menu(tmp_path: Path) -> None:
    """A player may choose a WebAssembly module: the run of that profile runs it, and it pays what its decisions pay."""
    import plurigrid.microworld.library as library

    wasm = Path(library.__file__).parent / "modules" / "battery-arbitrage" / "battery-arbitrage.wasm"
    (tmp_path / "game.toml").write_text(f"""
[game]
name = "module-or-built-in"
world = "residential"
hours = 12
mechanisms = ["pay-as-clear"]

[[player]]
id = "home03"
strategy = [
  {{ name = "passive", strategy = "passive" }},
  {{ name = "module", module = {{ path = "{wasm}" }} }},
]
""")
    spec, name, base = load_game(str(tmp_path / "game.toml"))
    g = MicroworldGame(spec, name, base, "pay-as-clear")
    world = g._with_choices(g._world((), ()), (1,))
    assert world.strategy[g.players[0].members[0]] == "module" and set(world.modules) == {int(g.players[0].members[0])}
    passive, module = g.payoffs((0,)), g.payoffs((1,))
    assert passive[0] != module[0]  # the module ran the battery (passive leaves it idle)
    missing = tmp_path / "bad.toml"
    missing.write_text((tmp_path / "game.toml").read_text().replace(str(wasm), str(tmp_path / "nothing.wasm")))
    spec, name, base = load_game(str(missing))
    with pytest.raises(SpecError, match=r"bad\.toml: player\[0\]\.strategy\[module\]\.module: .*nothing\.wasm: no such file"):
        MicroworldGame(spec, name, base, "pay-as-clear")  # refused before any run


def test_information_states_are_named_in_the_order_plans_read_them(folder, cache) -> None:
    text = GAME.replace('id = "buyer"\nmenu = "offer"', 'id = "buyer"\nmenu = "offer"\nstage = 1\nobserves = ["outage"]') + """
[[chance]]
id = "outage"
outcome = [{ name = "none", probability = 0.5 }, { name = "trip", probability = 0.5 }]
"""
    g = game_under(folder, "pay-as-clear", cache, text)
    labels = g.info_labels(1)
    assert len(labels) == 6
    for seller in range(3):
        for omega in range(2):
            # a plan that picks entry `state % 3` in each state: the action read is the state's own label
            plan = sum((s % 3) * 3 ** s for s in range(6))
            act = g.actions((seller, plan), (omega,))[1]
            state = seller + 3 * omega
            assert labels[state] == f"cheap={g.players[0].menu[seller].name}, outage={['none', 'trip'][omega]}"
            assert act == state % 3


def test_the_disk_cache_notices_a_changed_profile_file(tmp_path) -> None:
    (tmp_path / "load.csv").write_text("p_kw\n20\n")
    (tmp_path / "world.toml").write_text(WORLD.replace('assets.load = { profile = { source = "constant", p_kw = 20.0 } }',
                                                       'assets.load = { profile = { source = "csv", path = "load.csv" } }'))
    (tmp_path / "game.toml").write_text(GAME)
    first = game_under(tmp_path, "pay-as-bid", SimulationCache(tmp_path / "cache")).payoffs((0, 0))
    (tmp_path / "load.csv").write_text("p_kw\n5\n")
    second = game_under(tmp_path, "pay-as-bid", SimulationCache(tmp_path / "cache")).payoffs((0, 0))
    assert second[1] == pytest.approx(first[1] / 4, rel=0.01)  # a quarter of the load: simulated again, not read back


def test_a_spec_error_raised_in_a_worker_reaches_the_caller_as_itself() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(SpecError("g.toml", "player[0]", "no such thing")))
    assert isinstance(err, SpecError) and str(err) == "g.toml: player[0]: no such thing"


def test_repeated_strategy_names_are_refused(folder) -> None:
    path = folder / "dup.toml"
    path.write_text(GAME.replace('name = "plus-25c"', 'name = "plus-4c"'))
    with pytest.raises(SpecError, match=r"dup\.toml: menu\[0\]: strategy name 'plus-4c' repeats"):
        load_game(str(path))
