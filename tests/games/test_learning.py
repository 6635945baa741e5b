"""Learning dynamics: each kind reaches the equilibria the literature says it reaches, and is reported as not
converged where it is known to cycle; the bandit Learners find the best arm; runs are reproducible to the byte."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from plurigrid.errors import UsageError
from plurigrid.games.learning import (
    LEARNERS,
    Dynamics,
    action_values,
    active_inference,
    fictitious_play,
    learn,
    make_learner,
    q_learning,
    regret,
    replicator,
)


def bimatrix(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    """The (2, s1, s2) payoff array of a two-player game: rows are player 0's actions, columns player 1's."""
    return np.stack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])


MATCHING_PENNIES = bimatrix([[1, -1], [-1, 1]], [[-1, 1], [1, -1]])
ROCK_PAPER_SCISSORS = bimatrix([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], [[0, 1, -1], [-1, 0, 1], [1, -1, 0]])
# Shapley (1964): the unique equilibrium is uniform for both, and fictitious play cycles around it for ever
SHAPLEY = bimatrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
# (cooperate, defect) with T=5 > R=3 > P=1 > S=0: defecting is strictly dominant, (D, D) the only equilibrium
PRISONERS_DILEMMA = bimatrix([[3, 0], [5, 1]], [[3, 5], [0, 1]])
# pure equilibria (A, A) and (B, B); the mixed one plays A with probability 1/3 (2p = 1 - p)
COORDINATION = bimatrix([[2, 0], [0, 1]], [[2, 0], [0, 1]])
D, A, B = 1, 0, 1


def test_action_values_match_a_sum_over_every_profile() -> None:
    """The tensor contraction behind every dynamics equals the textbook sum over pure profiles, for three players."""
    rng = np.random.default_rng(7)
    p = rng.normal(size=(3, 2, 3, 2))
    profile = [rng.dirichlet(np.ones(s)) for s in (2, 3, 2)]
    for i, values in enumerate(action_values(p, profile)):
        expected = np.zeros(p.shape[1 + i])
        for actions in itertools.product(*(range(s) for s in p.shape[1:])):
            weight = np.prod([profile[j][a] for j, a in enumerate(actions) if j != i])
            expected[actions[i]] += weight * p[(i, *actions)]
        np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_regret_is_zero_at_equilibria_and_the_best_gain_elsewhere() -> None:
    half = np.array([0.5, 0.5])
    assert regret(MATCHING_PENNIES, [half, half]) == 0.0
    assert regret(PRISONERS_DILEMMA, [np.eye(2)[D], np.eye(2)[D]]) == 0.0
    # at (C, C) each player gains T - R = 2 by defecting
    assert regret(PRISONERS_DILEMMA, [np.eye(2)[0], np.eye(2)[0]]) == 2.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fictitious_play_converges_to_the_mixed_equilibria_of_zero_sum_games(seed: int) -> None:
    """Robinson (1951): empirical frequencies converge in two-player zero-sum games."""
    pennies = fictitious_play(MATCHING_PENNIES, rounds=10_000, seed=seed)
    assert pennies.converged and pennies.regret <= 0.01 * 2
    for x in pennies.profile:
        np.testing.assert_allclose(x, [0.5, 0.5], atol=0.01)
    rps = fictitious_play(ROCK_PAPER_SCISSORS, rounds=10_000, seed=seed)
    assert rps.converged
    for x in rps.profile:
        np.testing.assert_allclose(x, [1 / 3] * 3, atol=0.01)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fictitious_play_is_reported_not_converged_in_shapleys_game(seed: int) -> None:
    """Shapley (1964): fictitious play cycles with ever longer runs, away from the uniform equilibrium."""
    d = fictitious_play(SHAPLEY, rounds=10_000, seed=seed)
    assert not d.converged
    assert d.regret > 0.1
    assert max(np.abs(x - 1 / 3).max() for x in d.profile) > 0.1
    # the cycle does not settle: the frequencies still move by more than the rounding of 10,000 rounds' counts
    assert np.abs(d.history[-1] - d.history[5_000]).max() > 0.05


def test_fictitious_play_plays_the_dominant_strategy() -> None:
    d = fictitious_play(PRISONERS_DILEMMA, rounds=1_000)
    assert d.converged and d.regret < 1e-2
    assert all(x[D] >= 0.999 for x in d.profile)  # at most the first round was cooperation


def test_replicator_eliminates_the_dominated_strategy_and_stays_on_the_simplex() -> None:
    """Samuelson & Zhang (1992): from an interior start, strictly dominated strategies die out."""
    d = replicator(PRISONERS_DILEMMA, start=[[0.95, 0.05], [0.9, 0.1]])
    assert d.converged and d.regret < 1e-6
    assert all(x[D] > 1 - 1e-6 for x in d.profile)
    assert d.history.shape == (2_000, 4)
    assert (d.history > 0).all()  # an interior start stays interior
    np.testing.assert_allclose(d.history[:, :2].sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(d.history[:, 2:].sum(axis=1), 1.0, atol=1e-12)
    cooperation = d.history[:, 0]
    assert (np.diff(cooperation) < 0).all()  # C always earns less than the average, so it shrinks every step


@pytest.mark.parametrize(("p_a", "equilibrium"), [(0.30, B), (0.36, A)])
def test_replicator_reaches_the_pure_equilibrium_on_its_side_of_the_mixed_one(p_a: float, equilibrium: int) -> None:
    """In the coordination game the mixed equilibrium (A with 1/3) separates the basins of (A, A) and (B, B)."""
    d = replicator(COORDINATION, steps=3_000, start=[[p_a, 1 - p_a], [p_a, 1 - p_a]])
    assert d.converged
    for x in d.profile:
        assert x[equilibrium] > 1 - 1e-6


def test_replicator_rests_at_an_equilibrium_start_and_cycles_elsewhere_in_matching_pennies() -> None:
    at_rest = replicator(MATCHING_PENNIES)  # the uniform start is the equilibrium
    assert at_rest.converged and at_rest.regret == 0.0
    cycling = replicator(MATCHING_PENNIES, start=[[0.7, 0.3], [0.5, 0.5]])
    assert not cycling.converged
    assert cycling.regret > 0.2  # the flow conserves a distance from (1/2, 1/2); the discretisation only grows it


def test_three_player_dynamics_find_the_dominant_profile() -> None:
    """Each of three players gets 1 more for action 1 whatever the others do, plus a coordination bonus."""
    p = np.zeros((3, 2, 2, 2))
    for actions in itertools.product(range(2), repeat=3):
        for i in range(3):
            p[(i, *actions)] = actions[i] + 0.4 * sum(a == actions[i] for a in actions)
    for d in (fictitious_play(p, rounds=300), replicator(p), q_learning(p, rounds=1_000)):
        assert d.converged, d.kind
        assert all(x[1] > 0.95 for x in d.profile), d.kind
        assert d.history.shape[1] == 6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_learning_learns_mutual_defection(seed: int) -> None:
    d = q_learning(PRISONERS_DILEMMA, rounds=2_000, seed=seed)
    assert d.converged
    assert all(x[D] > 0.95 for x in d.profile)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_active_inference_agents_pick_the_dominant_action_and_coordinate(seed: int) -> None:
    dilemma = active_inference(PRISONERS_DILEMMA, rounds=1_000, seed=seed)
    assert dilemma.converged
    assert all(x[D] > 0.99 for x in dilemma.profile)
    coordination = active_inference(COORDINATION, rounds=1_000, seed=seed)
    assert coordination.converged
    chosen = int(np.argmax(coordination.profile[0]))
    assert all(x[chosen] > 0.99 for x in coordination.profile)  # both on the same pure equilibrium


@pytest.mark.parametrize("kind", LEARNERS)
def test_each_learner_finds_the_best_arm_of_a_deterministic_bandit(kind: str) -> None:
    arms = np.array([0.2, 1.0, 0.5])
    for seed in range(5):
        learner = make_learner(kind, 3, seed)
        played = []
        for _ in range(100):
            a = learner.act()
            learner.update(a, float(arms[a]))
            played.append(a)
        policy = learner.policy()
        assert policy.shape == (3,) and abs(policy.sum() - 1.0) < 1e-12
        assert policy[1] > 0.95, (kind, seed, policy)
        assert played[-10:] == [1] * 10
        assert sorted(played[:3]) == [0, 1, 2]  # every kind tries each arm once first


@pytest.mark.parametrize("kind", LEARNERS)
def test_runs_are_reproducible_to_the_byte(kind: str) -> None:
    first, again = learn(kind, COORDINATION), learn(kind, COORDINATION)
    assert first.history.tobytes() == again.history.tobytes()
    assert [x.tobytes() for x in first.profile] == [x.tobytes() for x in again.profile]
    if kind != "replicator":  # the replicator is deterministic and takes no seed
        other = learn(kind, ROCK_PAPER_SCISSORS, seed=1, rounds=300)
        assert learn(kind, ROCK_PAPER_SCISSORS, seed=1, rounds=300).history.tobytes() == other.history.tobytes()
        assert learn(kind, ROCK_PAPER_SCISSORS, seed=2, rounds=300).history.tobytes() != other.history.tobytes()


def test_learn_dispatches_and_accepts_a_game_object() -> None:
    game = SimpleNamespace(payoffs=PRISONERS_DILEMMA)
    d = learn("replicator", game, steps=50, dt=0.2)
    assert isinstance(d, Dynamics) and d.kind == "replicator" and d.rounds == 50
    assert d.history.tobytes() == replicator(PRISONERS_DILEMMA, steps=50, dt=0.2).history.tobytes()


@pytest.mark.parametrize(("call", "says"), [
    (lambda: learn("sarsa", COORDINATION), "'sarsa'"),
    (lambda: learn("replicator", COORDINATION, rounds=5), "'rounds'"),
    (lambda: learn("q-learning", COORDINATION, temperature=0), "temperature=0"),
    (lambda: learn("fictitious-play", COORDINATION, rounds=0), "rounds=0"),
    (lambda: learn("replicator", COORDINATION, tol=-1), "tol=-1"),
    (lambda: replicator(COORDINATION, start=[[0.5, 0.6], [0.5, 0.5]]), "start[0]"),
    (lambda: fictitious_play(np.zeros((3, 2, 2))), "shape (3, 2, 2)"),
    (lambda: fictitious_play(np.full((2, 2, 2), np.nan)), "NaN"),
    (lambda: make_learner("ucb", 3, 0), "'ucb'"),
    (lambda: make_learner("q-learning", 3, 0, temprature=1.0), "'temprature'"),
    (lambda: make_learner("replicator", 3, 0, alpha=1.5), "alpha=1.5"),
    (lambda: make_learner("fictitious-play", 0, 0), "n_actions=0"),
    (lambda: make_learner("active-inference", 2, 0).update(2, 1.0), "action=2"),
    (lambda: make_learner("active-inference", 2, 0).update(0, float("inf")), "payoff=inf"),
])
def test_bad_arguments_are_one_line_usage_errors(call, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        call()
    message = str(caught.value)
    assert says in message and "\n" not in message
