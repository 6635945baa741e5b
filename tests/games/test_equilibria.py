"""Equilibrium solvers against games whose equilibria are published or worked out by hand."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from plurigrid.errors import UsageError
from plurigrid.games.equilibria import (
    Equilibrium,
    homotopy_equilibrium,
    pure_equilibria,
    solve,
    two_player_equilibria,
)
from plurigrid.games.extensive import ExtensiveGame
from plurigrid.games.gambit import read_game
from plurigrid.games.normal import NormalFormGame

DATA = Path(__file__).parent / "data"
F = Fraction


def normal(name: str) -> NormalFormGame:
    game = read_game(DATA / name)
    return game.to_normal() if isinstance(game, ExtensiveGame) else game


def exact_profiles(equilibria: list[Equilibrium]) -> list[list[list[Fraction]]]:
    assert all(e.exact is not None for e in equilibria)
    return [e.exact for e in equilibria]  # type: ignore[misc]


def test_prisoners_dilemma_unique_equilibrium_is_defect_defect():
    game = normal("prisoners_dilemma.nfg")
    [pure] = pure_equilibria(game)
    assert pure.exact == [[0, 1], [0, 1]] and pure.payoffs_exact == [1, 1]
    assert exact_profiles(two_player_equilibria(game)) == [[[0, 1], [0, 1]]]


def test_battle_of_the_sexes_two_pure_and_one_mixed():
    equilibria = solve(normal("battle_of_the_sexes.nfg"))
    assert exact_profiles(equilibria) == [[[1, 0], [1, 0]], [[F(2, 3), F(1, 3)], [F(1, 3), F(2, 3)]], [[0, 1], [0, 1]]]
    assert [e.payoffs_exact for e in equilibria] == [[2, 1], [F(2, 3), F(2, 3)], [1, 2]]
    assert [e.is_pure for e in equilibria] == [True, False, True]


def test_matching_pennies_unique_mixed_equilibrium():
    assert exact_profiles(solve(normal("matching_pennies.nfg"))) == [[[F(1, 2), F(1, 2)], [F(1, 2), F(1, 2)]]]
    assert pure_equilibria(normal("matching_pennies.nfg")) == []


def test_shapley_game_unique_equilibrium_is_uniform():
    third = [F(1, 3)] * 3
    assert exact_profiles(solve(normal("shapley.nfg"))) == [[third, third]]


def test_one_card_poker_unique_equilibrium_and_value():
    # Myerson (1991): player 1 raises on red and on black 1/3 of the time (Raise/Raise 1/3, Raise/Fold 2/3);
    # player 2 meets 2/3 of the time; the game is worth 1/3 to player 1
    [e] = solve(normal("one_card_poker.efg"))
    assert e.exact == [[F(1, 3), F(2, 3), 0, 0], [F(2, 3), F(1, 3)]]
    assert e.payoffs_exact == [F(1, 3), F(-1, 3)]


def test_degenerate_game_gives_its_extreme_equilibria():
    # entry deterrence: (In, Accommodate), and the component "Out, and fight with probability >= 1/2"
    found = exact_profiles(solve(normal("entry_deterrence.efg")))
    assert found == [[[1, 0], [1, 0]], [[1, 0], [F(1, 2), F(1, 2)]], [[0, 1], [0, 1]]]
    everything = NormalFormGame.from_payoffs(np.zeros((2, 2, 2), dtype=int))  # every profile is an equilibrium
    assert exact_profiles(two_player_equilibria(everything)) == [[[1, 0], [1, 0]], [[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, 1], [0, 1]]]


def test_centipede_every_equilibrium_ends_at_the_first_node():
    game = normal("centipede.efg")
    equilibria = solve(game)
    assert len(equilibria) >= 2  # player 2's off-path randomisations that keep player 1 taking
    for e in equilibria:
        assert e.exact[0] == [1, 0, 0] and e.payoffs_exact == [F(2, 5), F(1, 10)]
        assert game.is_equilibrium_exact(e.exact)


def test_float_payoffs_are_solved_as_given():
    game = NormalFormGame.from_payoffs(np.array([[[2.5, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 2.5]]]))
    assert game.exact is None
    mixed = two_player_equilibria(game)[1]
    assert mixed.exact is None
    np.testing.assert_allclose(mixed.profile[0], [5 / 7, 2 / 7])  # makes player 2 indifferent: p = 2.5 (1 - p)
    np.testing.assert_allclose(mixed.profile[1], [2 / 7, 5 / 7])


def test_pure_equilibria_of_float_games_with_and_without_tolerance():
    pd = np.array([[[3.0, 0.0], [5.0, 1.0]], [[3.0, 5.0], [0.0, 1.0]]]) + 0.1  # floats: not exact
    game = NormalFormGame.from_payoffs(pd)
    [e] = pure_equilibria(game)
    assert e.exact is None and [list(p) for p in e.profile] == [[0, 1], [0, 1]]
    np.testing.assert_allclose(e.payoffs, [1.1, 1.1])
    # with a tolerance of 1.5 the sucker's gain of 1 from defecting no longer counts, the tempted's gain of 2 still does
    found = [[list(p) for p in x.profile] for x in pure_equilibria(game, tol=1.5)]
    assert found == [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, 1], [0, 1]]]


def test_three_player_game_with_a_unique_mixed_equilibrium():
    # 1 matches 2, 2 matches 3, 3 mismatches 1 (Jordan 1993's cycle, unequal stakes): any pure choice breaks the cycle,
    # so all mix, and each mixes to keep its predecessor indifferent: 1*q = 2(1-q), 3r = 1-r, 2(1-p) = 3p
    game = normal("cyclic_pennies.nfg")
    assert pure_equilibria(game) == []
    e = homotopy_equilibrium(game)
    assert e.exact == [[F(2, 5), F(3, 5)], [F(2, 3), F(1, 3)], [F(1, 4), F(3, 4)]]
    assert e.payoffs_exact == [F(2, 3), F(3, 4), F(6, 5)] and e.method == "logit homotopy"
    assert [x.exact for x in solve(game)] == [e.exact]


def test_selten_horse_pure_equilibria_and_a_mixed_one():
    game = normal("selten_horse.efg")
    # the literature's two pure equilibria: (A, a, R), which is perfect, and (D, a, L), which is not
    assert exact_profiles(pure_equilibria(game)) == [[[1, 0], [1, 0], [0, 1]], [[0, 1], [1, 0], [1, 0]]]
    e = homotopy_equilibrium(game)
    assert e.exact is not None and game.is_equilibrium_exact(e.exact)
    # the equilibria form two components: (A, a, L with probability <= 1/4) and (D, a with probability >= 1/3, L)
    (a1, _), (a2, _), (left, _) = e.exact
    assert (a1 == 1 and a2 == 1 and left <= F(1, 4)) or (a1 == 0 and a2 >= F(1, 3) and left == 1)


def test_homotopy_agrees_with_vertex_enumeration_on_random_games():
    rng = np.random.default_rng(11)
    for _ in range(5):
        game = NormalFormGame.from_payoffs(rng.integers(-9, 10, size=(2, 3, 3)))
        mixed = homotopy_equilibrium(game)
        extreme = two_player_equilibria(game)
        assert any(all(np.allclose(p, q, atol=1e-8) for p, q in zip(mixed.profile, e.profile)) for e in extreme)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_homotopy_regret_is_within_tolerance_on_larger_games(seed):
    rng = np.random.default_rng(seed)
    game = NormalFormGame.from_payoffs(rng.normal(size=(4, 3, 2, 3, 2)))
    e = homotopy_equilibrium(game, tol=1e-9)
    span = np.ptp(game.payoffs.reshape(4, -1), axis=1)
    assert np.all(game.regret(e.profile) <= 1e-9 * span)
    assert all(np.isclose(p.sum(), 1) and np.all(p >= 0) for p in e.profile)


def test_vertex_enumeration_refuses_games_too_large_to_enumerate():
    with pytest.raises(UsageError, match="13 x 13 game examines 10,400,600 bases"):
        two_player_equilibria(NormalFormGame.from_payoffs(np.zeros((2, 13, 13), dtype=int)))


def test_equilibrium_keeps_its_positional_constructor():
    e = Equilibrium([np.array([1.0])], None, np.array([0.0]))
    assert e.payoffs_exact is None and e.method == "" and e.is_pure
