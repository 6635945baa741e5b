"""Nash equilibria of finite normal-form games: all pure ones, all extreme ones of two-player games (exact), and one
mixed one of any game by the logit homotopy (verified to a stated tolerance).

Which solver `solve` uses: one player, the optimal strategies; two players, vertex enumeration (every extreme
equilibrium, exact in Fractions when the payoffs are rational); three or more, every pure equilibrium plus one found
by the logit homotopy (see `_logit` for its guarantee). Results are deterministic and in a fixed order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from plurigrid.errors import UsageError
from plurigrid.games._logit import NoEquilibriumFound, logit_equilibrium
from plurigrid.games._vertex import extreme_equilibria
from plurigrid.games.normal import NormalFormGame

__all__ = ["Equilibrium", "NoEquilibriumFound", "homotopy_equilibrium", "pure_equilibria", "solve", "two_player_equilibria"]

PURE = "pure enumeration"
VERTEX = "vertex enumeration"
LOGIT = "logit homotopy"
SNAP_DENOMINATOR = 10**6  # a homotopy result is tried as the nearest fractions up to this denominator, kept if exactly Nash


@dataclass(frozen=True, eq=False)
class Equilibrium:
    """A mixed profile (one probability vector per player, in the game's strategy order), the same in Fractions where
    known exactly, and each player's expected payoff (also exact where known); `method` names the solver."""

    profile: list[np.ndarray]
    exact: list[list[Fraction]] | None
    payoffs: np.ndarray
    payoffs_exact: list[Fraction] | None = None
    method: str = ""

    @property
    def is_pure(self) -> bool:
        return all(np.count_nonzero(p) == 1 for p in self.profile)


def pure_equilibria(game: NormalFormGame, tol: float = 0.0) -> list[Equilibrium]:
    """Every pure-strategy equilibrium, player 1's strategy varying slowest (exact comparisons: on the Fractions where
    the game is exact and `tol` is 0, else on the float payoffs, where a deviation must gain more than `tol`)."""
    exact_values = game.exact if tol == 0 else None
    values = exact_values if exact_values is not None else game.payoffs
    stable = np.ones(game.shape, dtype=bool)
    for i in range(game.n_players):
        best = values[i].max(axis=i, keepdims=True)
        stable &= (values[i] == best if exact_values is not None else values[i] >= best - tol).astype(bool)
    found = []
    for cell in np.argwhere(stable):
        exact = [[Fraction(int(j == a)) for j in range(k)] for a, k in zip(cell, game.shape)]
        found.append(_equilibrium(game, [np.array([float(p) for p in e]) for e in exact],
                                  exact if game.exact is not None else None, PURE))
    return found


def two_player_equilibria(game: NormalFormGame) -> list[Equilibrium]:
    """Every extreme equilibrium of a two-player game by vertex enumeration of the best-response polytopes.

    Nondegenerate games: these are all the equilibria. Degenerate games (a mixed strategy with more pure best
    responses than its support size, e.g. ties): the set of equilibria is a finite union of convex polytopes and these
    are their vertices, so every equilibrium is a convex combination of extreme ones lying in one such polytope. Exact
    (Fractions) where the payoffs are rational; for float payoffs the float values are solved exactly and the result
    given as floats."""
    if game.n_players != 2:
        raise UsageError(f"two_player_equilibria: expected a game of 2 players, got {game.n_players}")
    values = game.exact if game.exact is not None else _fractions_of(game.payoffs)
    found = []
    for x, y in extreme_equilibria(values[0], values[1]):
        floats = [np.array([float(p) for p in x]), np.array([float(p) for p in y])]
        found.append(_equilibrium(game, floats, [x, y] if game.exact is not None else None, VERTEX))
    return found


def homotopy_equilibrium(game: NormalFormGame, tol: float = 1e-9) -> Equilibrium:
    """One equilibrium of any game by the logit homotopy, with every player's regret <= tol x its payoff range.

    Guarantee (see `_logit`): each point of the traced logit-QRE branch at precision lambda is an epsilon-equilibrium
    with epsilon <= ln(s_i) / lambda of player i's payoff range, and for generic games the branch converges to a Nash
    equilibrium as lambda -> infinity; its end is polished by Newton's method on its support. Whatever happens on the
    way, the profile returned has been checked: regret <= tol x payoff range for every player (tol 1e-9 by default).
    For an exact game it is also tried as the nearest fractions (denominators up to 10^6) and, if those are exactly an
    equilibrium, reported exactly. NoEquilibriumFound if the path yields no verified point (in practice: degenerate
    games whose branch folds or forks)."""
    profile = logit_equilibrium(game, tol)
    exact = _snapped(game, profile) if game.exact is not None else None
    if exact is not None:
        profile = [np.array([float(p) for p in e]) for e in exact]
    return _equilibrium(game, profile, exact, LOGIT)


def solve(game: NormalFormGame, pure: bool = False) -> list[Equilibrium]:
    """The equilibria a user asks `plurigrid game solve` for: with `pure`, every pure equilibrium; otherwise every
    extreme equilibrium for one or two players, and every pure one plus one from the homotopy for three or more."""
    if pure or game.n_players == 1:
        return pure_equilibria(game)
    if game.n_players == 2:
        return two_player_equilibria(game)
    found = pure_equilibria(game)
    mixed = homotopy_equilibrium(game)
    if not any(all(np.allclose(p, q, atol=1e-9) for p, q in zip(e.profile, mixed.profile)) for e in found):
        found.append(mixed)
    return found


def _equilibrium(game: NormalFormGame, profile: list[np.ndarray], exact: list[list[Fraction]] | None, method: str) -> Equilibrium:
    payoffs_exact = game.payoff_exact(exact) if exact is not None else None
    payoffs = np.array([float(v) for v in payoffs_exact]) if payoffs_exact is not None else game.payoff(profile)
    return Equilibrium(profile, exact, payoffs, payoffs_exact, method)


def _snapped(game: NormalFormGame, profile: Sequence[np.ndarray]) -> list[list[Fraction]] | None:
    exact = [[Fraction(float(p)).limit_denominator(SNAP_DENOMINATOR) for p in probs] for probs in profile]
    return exact if game.is_equilibrium_exact(exact) else None


def _fractions_of(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [Fraction(float(v)) for v in values.flat]
    return out
