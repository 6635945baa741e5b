"""Coalitional games: Shapley value, core and nucleolus against published and hand-computed values."""

import json
from collections import Counter

import numpy as np
import pytest

from plurigrid.errors import UsageError
from plurigrid.games.coalitions import Game, coalition_report, core, nucleolus, shapley

GLOVE_PLAYERS = ["L", "R1", "R2"]


def glove(coalition: frozenset[str]) -> float:
    """One left glove and two right gloves: a pair is worth 1."""
    return float(min("L" in coalition, len(coalition - {"L"})))


def majority(coalition: frozenset[str]) -> float:
    return float(len(coalition) >= 2)


def bankruptcy(estate: float, claims: dict[str, float]):
    """v(S) = what S gets for sure: the estate less the others' claims (O'Neill 1982)."""
    return lambda coalition: max(0.0, estate - sum(c for p, c in claims.items() if p not in coalition))


def test_glove_game():
    phi = shapley(GLOVE_PLAYERS, glove)
    np.testing.assert_allclose(phi.values, [2 / 3, 1 / 6, 1 / 6], atol=1e-12)
    assert phi.method == "exact" and phi.efficient
    c = core(GLOVE_PLAYERS, glove)
    assert not c.empty
    np.testing.assert_allclose(c.allocation, [1, 0, 0], atol=1e-9)  # the core is the single point (1, 0, 0)
    np.testing.assert_allclose(nucleolus(GLOVE_PLAYERS, glove), [1, 0, 0], atol=1e-7)


def test_majority_game_has_an_empty_core():
    players = ["a", "b", "c"]
    np.testing.assert_allclose(shapley(players, majority).values, [1 / 3] * 3, atol=1e-12)
    c = core(players, majority)
    assert c.empty and c.min_total == pytest.approx(1.5)  # x_i + x_j >= 1 for every pair needs 3/2
    assert c.least_core_epsilon == pytest.approx(1 / 3)  # 2/3 >= 1 - eps at the least core's (1/3, 1/3, 1/3)
    np.testing.assert_allclose(c.allocation, [1 / 3] * 3, atol=1e-9)
    np.testing.assert_allclose(nucleolus(players, majority), [1 / 3] * 3, atol=1e-7)


def test_airport_game_shapley_is_the_littlechild_owen_split():
    """Runway costs 2, 5, 5, 11: each segment is shared equally by the planes that need it (Littlechild & Owen 1973):
    2/4; 2/4 + 3/3; 2/4 + 3/3; 2/4 + 3/3 + 6/1."""
    costs = {"a": 2.0, "b": 5.0, "c": 5.0, "d": 11.0}
    cost = lambda coalition: max((costs[p] for p in coalition), default=0.0)
    phi = shapley(list(costs), cost)
    np.testing.assert_allclose(phi.values, [0.5, 1.5, 1.5, 7.5], atol=1e-12)


@pytest.mark.parametrize("estate, talmud", [(100, [100 / 3] * 3), (200, [50, 75, 75]), (300, [50, 100, 150])])
def test_bankruptcy_nucleolus_is_the_talmud_division(estate, talmud):
    """Aumann & Maschler (1985): the Talmud's divisions of estates 100, 200, 300 among claims 100, 200, 300."""
    claims = {"a": 100.0, "b": 200.0, "c": 300.0}
    v = bankruptcy(estate, claims)
    np.testing.assert_allclose(nucleolus(list(claims), v), talmud, atol=1e-7)
    c = core(list(claims), v)  # bankruptcy games are convex: the core is non-empty
    assert not c.empty and c.allocation.sum() == pytest.approx(estate)


def test_nucleolus_of_a_four_player_bankruptcy_game():
    """A 4-player bankruptcy game (claims 10, 20, 30, 40, estate 40): the nucleolus is the Talmud rule's
    (Aumann & Maschler 1985): the estate is below half the claims, so equal awards capped at half of each claim:
    5 and 10 (capped), 12.5 and 12.5."""
    claims = {"a": 10.0, "b": 20.0, "c": 30.0, "d": 40.0}
    np.testing.assert_allclose(nucleolus(list(claims), bankruptcy(40, claims)), [5, 10, 12.5, 12.5], atol=1e-7)


def _symmetric(coalition: frozenset[str]) -> float:
    return float(len(coalition)) ** 2


def test_sampled_shapley_of_14_players_lies_within_its_interval():
    players = [f"p{i}" for i in range(14)]
    level = 1 - 0.05 / 14  # Bonferroni: all 14 intervals hold together with probability >= 95 %
    phi = shapley(players, _symmetric, samples=2000, seed=7, level=level)
    assert phi.method == "sampled" and phi.samples == 2000
    assert np.all((phi.ci_low <= 14.0) & (phi.ci_high >= 14.0))  # exact: v(N)/n = 196/14
    assert np.all(phi.ci_high - phi.ci_low < 2.0) and np.all(phi.ci_high > phi.ci_low)
    assert phi.efficient  # every order's contributions add up to v(N)
    again = shapley(players, _symmetric, samples=2000, seed=7, level=level)
    assert np.array_equal(phi.values, again.values)  # seeded


def test_sampled_shapley_of_an_additive_game_is_exact():
    weights = {f"p{i}": float(i + 1) for i in range(14)}
    phi = shapley(list(weights), lambda c: sum(weights[p] for p in c), samples=50, seed=1)
    np.testing.assert_allclose(phi.values, list(weights.values()), atol=1e-9)
    np.testing.assert_allclose(phi.ci_high - phi.ci_low, 0.0, atol=1e-9)


def test_each_coalition_is_evaluated_once():
    calls: Counter[frozenset[str]] = Counter()

    def v(coalition: frozenset[str]) -> float:
        calls[coalition] += 1
        return glove(coalition)

    report = coalition_report(GLOVE_PLAYERS, v)
    assert len(calls) == 7 and set(calls.values()) == {1}  # every non-empty coalition, once, for all three answers
    assert len(report.coalitions) == 8
    calls.clear()
    shapley([f"p{i}" for i in range(14)], lambda c: (calls.update([c]), _symmetric(c))[1], samples=300)
    assert set(calls.values()) == {1}


def test_a_table_of_values_is_used_as_given():
    table = {frozenset(c): glove(frozenset(c)) for c in (["L"], ["R1"], ["R2"], ["L", "R1"], ["L", "R2"], ["R1", "R2"],
                                                         ["L", "R1", "R2"])}
    np.testing.assert_allclose(shapley(GLOVE_PLAYERS, table).values, [2 / 3, 1 / 6, 1 / 6])
    del table[frozenset(["R1", "R2"])]
    with pytest.raises(UsageError, match=r"^v: no value for the coalition \{R1, R2\}"):
        shapley(GLOVE_PLAYERS, table)
    known = Game(GLOVE_PLAYERS, lambda c: pytest.fail(f"evaluated {set(c)}"), known=table | {frozenset(["R1", "R2"]): 0.0})
    assert shapley(GLOVE_PLAYERS, known).efficient


@pytest.mark.parametrize("players, v, message", [
    (["a", "a"], majority, r"^players: expected distinct non-empty names"),
    (["a", "b"], lambda c: float("nan"), r"^v\(\{a\}\) is nan; expected a finite number"),
    (["a", "b"], {frozenset(["z"]): 1.0}, r"^v: 'z' is not a player"),
    (["a", "b"], lambda c: 2.0 if len(c) == 1 else 1.0, r"^v: no imputation: the players' own values sum to 4 > v\(N\) = 1$"),
])
def test_bad_games_are_one_line_errors(players, v, message):
    with pytest.raises(UsageError, match=message):
        nucleolus(players, v)


def test_report_is_json_and_deterministic():
    claims = {"a": 100.0, "b": 200.0, "c": 300.0}
    first = json.dumps(coalition_report(list(claims), bankruptcy(200, claims)).to_json())
    data = json.loads(first)
    assert data["nucleolus"] == pytest.approx({"a": 50, "b": 75, "c": 75})
    assert data["coalitions"][0] == {"members": [], "value": 0.0} and data["coalitions"][-1]["value"] == 200
    assert first == json.dumps(coalition_report(list(claims), bankruptcy(200, claims)).to_json())
    big = coalition_report([f"p{i}" for i in range(14)], _symmetric, samples=100).to_json()
    assert big["shapley"]["method"] == "sampled" and big["core"] is None and big["nucleolus"] is None
