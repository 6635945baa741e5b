"""Learning dynamics over strategy menus: do players who learn from play reach an equilibrium, and which one?

Two views of the same four kinds (LEARNERS):

- `make_learner(kind, n_actions, seed)` gives one `Learner`, a player with bandit feedback: it picks an action, is
  told its own realised payoff and nothing else (how each kind estimates payoffs from that: `_learn_agents`).
- `learn(kind, payoffs)` (or `fictitious_play`, `replicator`, `q_learning`, `active_inference`) runs the dynamics on
  a normal-form game, a payoff array of shape (n_players, s_1, ..., s_n) (or any object with such a `.payoffs`,
  e.g. a NormalFormGame), and returns a `Dynamics`: the final mixed profile, its history and its regret.
  Fictitious play and the replicator use full information (the payoff array and the others' play); the Q-learning
  and active-inference dynamics are independent `Learner`s of that kind, one per player, each told only its own payoff.

Convergence is judged, for every kind, by the regret of the final profile (the most any player gains by a best
response): `converged` means regret <= tol * span, where span is the game's highest minus lowest payoff, so that tol,
and the replicator's time step, mean the same whatever the payoffs' unit. Learning that cycles (fictitious play in
Shapley's game, the replicator in matching pennies) or stops short of an equilibrium is reported as not converged.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from plurigrid.errors import UsageError
from plurigrid.games._learn_agents import LEARNER_CLASSES, best_response, check_rate, exponential_step

TOL = 1e-2  # default convergence threshold: regret at most 1 % of the game's payoff span


class Learner(Protocol):
    """One player that repeatedly picks one of `n_actions` and is told its own payoff (bandit feedback)."""

    n_actions: int

    def act(self) -> int:
        """The action for the next round (drawn with the learner's own seeded Generator)."""
        ...

    def update(self, action: int, payoff: float) -> None:
        """Takes in the payoff that `action` realised this round."""
        ...

    def policy(self) -> np.ndarray:
        """The current mixed strategy, shape (n_actions,), summing to 1."""
        ...


LEARNERS: tuple[str, ...] = ("fictitious-play", "replicator", "q-learning", "active-inference")


@dataclass
class Dynamics:
    """The outcome of a learning dynamics on a game."""

    kind: str  # one of LEARNERS
    rounds: int  # rounds (or replicator steps) run
    converged: bool  # regret <= tol * the game's payoff span
    profile: list[np.ndarray]  # final mixed strategy per player
    history: np.ndarray  # (rounds, sum s_i): every player's strategy after each round, players side by side
    regret: float  # max over players of best-response payoff minus payoff at `profile`, in the game's payoff unit


def _check_int(where: str, name: str, value: object, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lowest:
        raise UsageError(f"{where}: {name}={value!r}: expected an integer >= {lowest}")
    return int(value)


def _check_tol(where: str, tol: object) -> float:
    try:
        x = float(tol)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x >= 0):
        raise UsageError(f"{where}: tol={tol!r}: expected a finite number >= 0 (a fraction of the payoff span)")
    return x


def _check_params(where: str, accepted: Sequence[str], params: dict[str, Any]) -> None:
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UsageError(f"{where}: unknown parameter {unknown[0]!r}; expected one of {', '.join(sorted(accepted))}")


def make_learner(kind: str, n_actions: int, seed: int, **params: Any) -> Learner:
    """A bandit learner of `kind` (one of LEARNERS) over `n_actions`, seeded by `seed`.

    Parameters by kind: replicator dt (0.5, per payoff span), alpha (0.1, recency weight); q-learning alpha (0.1),
    temperature (0.05, per payoff span); active-inference precision (16), preference (4 nats), memory (50 rounds);
    fictitious play has none. Every kind takes explore (0: none): the probability of a random action right after
    the first sweep, decaying with the rounds played; against other learners (who change what an action pays) it
    keeps a learner from locking onto an action that paid badly once.
    """
    cls = LEARNER_CLASSES.get(kind)
    if cls is None:
        raise UsageError(f"make_learner: kind {kind!r}: expected one of {', '.join(LEARNERS)}")
    where = f"make_learner({kind!r})"
    explore = params.pop("explore", 0.0)
    _check_params(where, [p for p in inspect.signature(cls).parameters if p not in ("n_actions", "seed")] + ["explore"], params)
    learner = cls(_check_int(where, "n_actions", n_actions, 1), _check_int(where, "seed", seed, 0), **params)
    if explore:
        learner.explore = check_rate(where, "explore", explore, upper=1.0, closed_upper=True)
    return learner


def payoff_array(payoffs: Any) -> np.ndarray:
    """The (n_players, s_1, ..., s_n) float array of `payoffs` (an array or an object with `.payoffs`), checked."""
    raw = getattr(payoffs, "payoffs", payoffs)
    try:
        p = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise UsageError(f"payoffs: expected an array of numbers of shape (n_players, s_1, ..., s_n), got {type(raw).__name__}") from None
    if p.ndim < 2 or p.shape[0] != p.ndim - 1 or min(p.shape) < 1:
        raise UsageError(f"payoffs: shape {p.shape}: expected (n_players, s_1, ..., s_n) with n_players = n >= 1 and every s_i >= 1")
    if not np.isfinite(p).all():
        raise UsageError("payoffs: expected finite numbers, found NaN or infinity")
    return p


def action_values(p: np.ndarray, profile: Sequence[np.ndarray]) -> list[np.ndarray]:
    """For each player i, the expected payoff of each of its actions when the others play `profile`."""
    n = p.shape[0]
    values = []
    for i in range(n):
        t = p[i]
        for j in reversed(range(n)):  # contracting the last axes first leaves the earlier axes' numbers unchanged
            if j != i:
                t = np.tensordot(t, profile[j], axes=([j], [0]))
        values.append(t)
    return values


def regret(p: np.ndarray, profile: Sequence[np.ndarray]) -> float:
    """Max over players of (best-response payoff - expected payoff) at `profile`: 0 exactly at a Nash equilibrium."""
    return max(float(v.max() - np.dot(x, v)) for v, x in zip(action_values(p, profile), profile))


def _span(p: np.ndarray) -> float:
    return float(p.max() - p.min())


def _dynamics(kind: str, p: np.ndarray, history: np.ndarray, tol: float) -> Dynamics:
    """The Dynamics whose final profile is the last row of `history`."""
    profile = np.split(history[-1].copy(), np.cumsum(p.shape[1:])[:-1])
    r = regret(p, profile)
    return Dynamics(kind=kind, rounds=history.shape[0], converged=r <= tol * _span(p), profile=profile, history=history, regret=r)


def fictitious_play(payoffs: Any, rounds: int = 10_000, tol: float = TOL, seed: int = 0) -> Dynamics:
    """Simultaneous fictitious play (Brown 1951) for n players, with full information.

    Round 1: each player plays an action drawn by `seed`. Then each round every player best-responds to the product
    of the others' empirical frequencies of play so far (ties broken by `seed`). The profile is the players' own
    empirical frequencies, the quantity that converges to equilibrium in two-player zero-sum games (Robinson 1951)
    and in 2x2 games (Miyasawa 1961), and that cycles without converging in Shapley's (1964) 3x3 game.
    """
    p = payoff_array(payoffs)
    rounds = _check_int("fictitious_play", "rounds", rounds, 1)
    tol = _check_tol("fictitious_play", tol)
    rng = np.random.default_rng(_check_int("fictitious_play", "seed", seed, 0))
    sizes = p.shape[1:]
    counts = [np.zeros(s) for s in sizes]
    played = np.empty((rounds, len(sizes)), dtype=np.int64)
    for t in range(rounds):
        if t == 0:
            actions = [int(rng.integers(s)) for s in sizes]
        else:
            actions = [best_response(v, rng) for v in action_values(p, [c / t for c in counts])]
        for c, a in zip(counts, actions):
            c[a] += 1
        played[t] = actions
    seen = np.arange(1, rounds + 1)[:, None]
    history = np.hstack([np.cumsum(np.eye(s)[played[:, i]], axis=0) / seen for i, s in enumerate(sizes)])
    return _dynamics("fictitious-play", p, history, tol)


def _start(p: np.ndarray, start: Sequence[Any] | None) -> list[np.ndarray]:
    """The replicator's initial profile: `start` checked, or every player's uniform strategy."""
    sizes = p.shape[1:]
    if start is None:
        return [np.full(s, 1.0 / s) for s in sizes]
    if len(start) != len(sizes):
        raise UsageError(f"replicator: start has {len(start)} strategies: expected one per player ({len(sizes)})")
    profile = []
    for i, (x, s) in enumerate(zip(start, sizes)):
        v = np.asarray(x, dtype=float)
        if v.shape != (s,) or not np.isfinite(v).all() or (v < 0).any() or abs(v.sum() - 1.0) > 1e-9:
            raise UsageError(f"replicator: start[{i}]: expected {s} non-negative numbers summing to 1")
        profile.append(v / v.sum())
    return profile


def replicator(payoffs: Any, steps: int = 2_000, dt: float = 0.1, tol: float = TOL,
               start: Sequence[Any] | None = None) -> Dynamics:
    """The n-player replicator dynamics dx_ia/dt = x_ia (u_i(a, x_-i) - u_i(x)) (Taylor & Jonker 1978).

    Discretised as x_i <- x_i * exp(h * u_i(., x_-i)), renormalised, with h = dt / span (time in units of
    1 / payoff span): first-order accurate, it keeps every strategy on its simplex, interior starts interior and
    unused actions unused. `start` is one mixed strategy per player (default: each player's uniform strategy).
    Strictly dominated actions die out (Samuelson & Zhang 1992); strict equilibria attract; in zero-sum games with
    an interior equilibrium the continuous flow cycles (and this discretisation spirals slowly outwards).
    """
    p = payoff_array(payoffs)
    steps = _check_int("replicator", "steps", steps, 1)
    tol = _check_tol("replicator", tol)
    h = check_rate("replicator", "dt", dt) / (_span(p) or 1.0)
    x = _start(p, start)
    history = np.empty((steps, sum(p.shape[1:])))
    for k in range(steps):
        x = [exponential_step(xi, vi, h) for xi, vi in zip(x, action_values(p, x))]
        history[k] = np.concatenate(x)
    return _dynamics("replicator", p, history, tol)


def _play(kind: str, p: np.ndarray, rounds: int, seed: int, tol: float, params: dict[str, Any]) -> Dynamics:
    """Independent Learners of `kind`, one per player, repeat the game; each is told only its own payoff."""
    rounds = _check_int(kind, "rounds", rounds, 1)
    tol = _check_tol(kind, tol)
    seeds = np.random.SeedSequence(_check_int(kind, "seed", seed, 0)).generate_state(p.shape[0])
    learners = [make_learner(kind, s, int(child), **params) for s, child in zip(p.shape[1:], seeds)]
    history = np.empty((rounds, sum(p.shape[1:])))
    for t in range(rounds):
        actions = tuple(learner.act() for learner in learners)
        index: tuple[Any, ...] = (slice(None), *actions)
        realised = p[index]
        for learner, a, r in zip(learners, actions, realised):
            learner.update(a, float(r))
        history[t] = np.concatenate([learner.policy() for learner in learners])
    return _dynamics(kind, p, history, tol)


def q_learning(payoffs: Any, rounds: int = 2_000, alpha: float = 0.1, temperature: float = 0.05, seed: int = 0,
               tol: float = TOL) -> Dynamics:
    """Independent stateless Q-learners with Boltzmann exploration (e.g. Claus & Boutilier 1998), one per player.

    Each is a make_learner("q-learning") told only its own payoff; `temperature` is per the payoff span it has seen.
    With a fixed temperature the policies settle near a logit (quantal response) equilibrium, so the regret that
    remains is of the order of the temperature.
    """
    return _play("q-learning", payoff_array(payoffs), rounds, seed, tol, {"alpha": alpha, "temperature": temperature})


def active_inference(payoffs: Any, rounds: int = 2_000, seed: int = 0, precision: float = 16.0,
                     preference: float = 4.0, memory: float = 50.0, tol: float = TOL) -> Dynamics:
    """Independent active-inference agents, one per player, each told only its own payoff.

    Each is a make_learner("active-inference"): a categorical generative model whose hidden state is the payoff
    outcome its action selects, with a likelihood learned by Dirichlet counts over the best and worst payoff seen,
    log-preferences `preference` for the best, and actions drawn from softmax(-precision * expected free energy),
    G = risk + ambiguity - novelty (details in games._learn_agents). Our own model: no active-inference library.
    """
    params = {"precision": precision, "preference": preference, "memory": memory}
    return _play("active-inference", payoff_array(payoffs), rounds, seed, tol, params)


DYNAMICS: dict[str, Callable[..., Dynamics]] = {
    "fictitious-play": fictitious_play, "replicator": replicator, "q-learning": q_learning, "active-inference": active_inference,
}


def learn(kind: str, payoffs: Any, **params: Any) -> Dynamics:
    """Runs the dynamics `kind` (one of LEARNERS) on `payoffs` with its keyword parameters."""
    run = DYNAMICS.get(kind)
    if run is None:
        raise UsageError(f"learn: kind {kind!r}: expected one of {', '.join(LEARNERS)}")
    _check_params(f"learn({kind!r})", [n for n in inspect.signature(run).parameters if n != "payoffs"], params)
    return run(payoffs, **params)
