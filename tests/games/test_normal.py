"""NormalFormGame: the shared payoff-array contract, exactness, mixed payoffs, best responses and regret."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from plurigrid.errors import UsageError
from plurigrid.games.normal import NormalFormGame

F = Fraction
# Battle of the sexes, standard 2/1 payoffs: payoffs[player, row, column]
BOS = np.array([[[2, 0], [0, 1]], [[1, 0], [0, 2]]])


def test_from_payoffs_keeps_the_array_contract_and_gambit_defaults():
    game = NormalFormGame.from_payoffs(BOS)
    assert game.players == ["Player 1", "Player 2"]
    assert game.strategies == [["1", "2"], ["1", "2"]]
    assert game.payoffs.dtype == float and game.payoffs.shape == (2, 2, 2)
    assert game.n_players == 2 and game.shape == (2, 2)
    np.testing.assert_array_equal(game.payoffs, BOS)
    with pytest.raises(ValueError):
        game.payoffs[0, 0, 0] = 7  # read-only: the float and exact arrays cannot drift apart


@pytest.mark.parametrize(("payoffs", "exact"), [
    (BOS, True),  # integers
    (BOS.astype(float), True),  # integral floats
    (np.array([[[F(1, 3), 0], [0, 1]], [[1, 0], [0, 2]]], dtype=object), True),  # Fractions
    (BOS + 0.1, False),  # a binary float is not the decimal its author meant
])
def test_exact_payoffs_where_rational(payoffs, exact):
    game = NormalFormGame.from_payoffs(payoffs)
    assert (game.exact is not None) is exact
    if exact:
        assert all(isinstance(v, Fraction) for v in game.exact.flat)
        np.testing.assert_array_equal(game.payoffs, np.array([float(v) for v in game.exact.flat]).reshape(game.payoffs.shape))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"payoffs": np.zeros((3, 2, 2))}, "shape (n_players, s_1, ..., s_n)"),
    ({"payoffs": np.zeros((2, 0, 2))}, "every s_i >= 1"),
    ({"payoffs": BOS, "players": ["only one"]}, "players: expected 2 names"),
    ({"payoffs": BOS, "strategies": [["a", "b"], ["c"]]}, "strategies: expected 2 lists of lengths [2, 2]"),
    ({"payoffs": BOS * np.nan}, "finite"),
])
def test_bad_arrays_are_refused_in_one_line(kwargs, message):
    with pytest.raises(UsageError, match=None) as err:
        NormalFormGame.from_payoffs(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_mixed_payoffs_of_battle_of_the_sexes():
    game = NormalFormGame.from_payoffs(BOS)
    mixed = [np.array([2 / 3, 1 / 3]), np.array([1 / 3, 2 / 3])]
    np.testing.assert_allclose(game.payoff(mixed), [2 / 3, 2 / 3])
    np.testing.assert_allclose(game.strategy_payoffs(mixed, 0), [2 / 3, 2 / 3])  # the wife is indifferent
    assert game.payoff_exact([[F(2, 3), F(1, 3)], [F(1, 3), F(2, 3)]]) == [F(2, 3), F(2, 3)]
    np.testing.assert_allclose(game.payoff([np.array([1.0, 0]), np.array([0, 1.0])]), [0, 0])  # miscoordination


def test_three_player_payoff_is_the_expectation_over_profiles():
    rng = np.random.default_rng(7)
    payoffs = rng.normal(size=(3, 2, 3, 4))
    game = NormalFormGame.from_payoffs(payoffs)
    profile = [rng.dirichlet(np.ones(k)) for k in game.shape]
    expected = sum(profile[0][a] * profile[1][b] * profile[2][c] * payoffs[:, a, b, c]
                   for a, b, c in itertools.product(*map(range, game.shape)))
    np.testing.assert_allclose(game.payoff(profile), expected)


def test_best_responses_and_regret():
    pd = NormalFormGame.from_payoffs(np.array([[[3, 0], [5, 1]], [[3, 5], [0, 1]]]))
    cooperate = [np.array([1.0, 0]), np.array([1.0, 0])]
    assert list(pd.best_responses(cooperate, 0)) == [1]  # defect against anything
    np.testing.assert_allclose(pd.regret(cooperate), [2, 2])  # 5 instead of 3
    defect = [np.array([0, 1.0]), np.array([0, 1.0])]
    np.testing.assert_allclose(pd.regret(defect), [0, 0])
    pennies = NormalFormGame.from_payoffs(np.array([[[1, -1], [-1, 1]], [[-1, 1], [1, -1]]]))
    half = [np.array([0.5, 0.5])] * 2
    assert list(pennies.best_responses(half, 1)) == [0, 1]  # a tie: both are best responses
    with pytest.raises(UsageError, match="profile: expected 2 probability vectors"):
        pennies.payoff([np.array([1.0, 0, 0]), np.array([1.0, 0])])


def test_exact_equilibrium_check():
    game = NormalFormGame.from_payoffs(BOS)
    assert game.is_equilibrium_exact([[F(2, 3), F(1, 3)], [F(1, 3), F(2, 3)]])
    assert not game.is_equilibrium_exact([[F(2, 3), F(1, 3)], [F(1, 2), F(1, 2)]])
    assert not game.is_equilibrium_exact([[F(1), F(1)], [F(1), F(0)]])  # not a probability vector
    with pytest.raises(UsageError, match="rational payoffs"):
        NormalFormGame.from_payoffs(BOS + 0.1).is_equilibrium_exact([[F(1), F(0)], [F(1), F(0)]])
