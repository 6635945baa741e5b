"""Finite games in normal (strategic) form: the payoff array that every solver and learning dynamic reads.

The array contract is shared across `plurigrid.games`: `NormalFormGame.from_payoffs(payoffs, players, strategies)`
builds a game from an array of shape (n_players, s_1, ..., s_n), where `payoffs[i][a_1, ..., a_n]` is player i's
payoff when each player k plays its strategy a_k; `.payoffs` is that array as float, `.players` the player names and
`.strategies` each player's strategy labels. Where every payoff is rational (integers, or the integers, decimals and
fractions of a Gambit file), `.exact` holds the same payoffs as an object array of `fractions.Fraction`, so the
solvers can answer exactly instead of to a tolerance.

A mixed profile is one probability vector per player (`Sequence[np.ndarray]`); an exact one, one list of Fractions
per player.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from plurigrid.errors import UsageError

Profile = Sequence[np.ndarray]
ExactProfile = Sequence[Sequence[Fraction]]


@dataclass(frozen=True, eq=False)
class NormalFormGame:
    """n players, their strategy labels and payoffs (float, and exact where rational); arrays are read-only."""

    players: list[str]
    strategies: list[list[str]]
    payoffs: np.ndarray  # float, shape (n_players, s_1, ..., s_n)
    exact: np.ndarray | None = None  # object array of Fraction, same shape, or None where a payoff is not rational
    title: str = ""
    comment: str = ""

    @classmethod
    def from_payoffs(cls, payoffs: np.ndarray, players: list[str] | None = None, strategies: list[list[str]] | None = None,
                     *, title: str = "", comment: str = "") -> NormalFormGame:
        """A game from its payoff array (shape (n_players, s_1, ..., s_n)).

        Integer arrays, integral float arrays and object arrays of int/Fraction/Decimal are exact (`.exact` set);
        other float arrays are not (a binary float such as 0.1 is not the decimal its author meant). Players default
        to "Player 1", ...; strategies to "1", "2", ... (Gambit's defaults).
        """
        arr = np.asarray(payoffs)
        if arr.ndim < 2 or arr.shape[0] != arr.ndim - 1 or 0 in arr.shape:
            raise UsageError(f"payoffs: expected an array of shape (n_players, s_1, ..., s_n) with every s_i >= 1, "
                             f"got shape {arr.shape}")
        n = arr.shape[0]
        exact = _exact_array(arr)
        try:
            values = np.array([float(v) for v in exact.flat]).reshape(arr.shape) if exact is not None else _float_array(arr)
        except OverflowError:
            raise UsageError("payoffs: expected numbers within the range of a float (about 1.8e308)") from None
        names = list(players) if players is not None else [f"Player {i + 1}" for i in range(n)]
        labels = [list(s) for s in strategies] if strategies is not None else [[str(j + 1) for j in range(k)] for k in arr.shape[1:]]
        if len(names) != n:
            raise UsageError(f"players: expected {n} names (one per player), got {len(names)}")
        if len(labels) != n or any(len(lab) != k for lab, k in zip(labels, arr.shape[1:])):
            raise UsageError(f"strategies: expected {n} lists of lengths {list(arr.shape[1:])}, "
                             f"got lengths {[len(lab) for lab in labels]}")
        values.setflags(write=False)
        if exact is not None:
            exact.setflags(write=False)
        return cls(names, labels, values, exact, title, comment)

    @property
    def n_players(self) -> int:
        return len(self.players)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of strategies of each player."""
        return tuple(self.payoffs.shape[1:])

    def strategy_payoffs(self, profile: Profile, player: int) -> np.ndarray:
        """Expected payoff to `player` of each of its pure strategies when the others play `profile`."""
        return contract(self.payoffs[player], self._checked(profile), (player,))

    def payoff(self, profile: Profile) -> np.ndarray:
        """Expected payoff of each player under the mixed profile."""
        prof = self._checked(profile)
        return np.array([self.strategy_payoffs(prof, i) @ prof[i] for i in range(self.n_players)])

    def best_responses(self, profile: Profile, player: int, tol: float = 0.0) -> np.ndarray:
        """Indices of `player`'s pure strategies within `tol` of its best payoff against the others in `profile`."""
        values = self.strategy_payoffs(profile, player)
        return np.flatnonzero(values >= values.max() - tol)

    def regret(self, profile: Profile) -> np.ndarray:
        """Each player's gain from its best pure deviation (0 for all players exactly at an equilibrium)."""
        prof = self._checked(profile)
        gains = []
        for i in range(self.n_players):
            values = self.strategy_payoffs(prof, i)
            gains.append(max(float(values.max() - values @ prof[i]), 0.0))
        return np.array(gains)

    def strategy_payoffs_exact(self, profile: ExactProfile, player: int) -> list[Fraction]:
        """`strategy_payoffs` in exact arithmetic (the game must be exact)."""
        exact = self._exact_payoffs()
        prof = [np.array([Fraction(p) for p in probs], dtype=object) for probs in profile]
        self._checked(prof)
        return list(contract(exact[player], prof, (player,)))

    def payoff_exact(self, profile: ExactProfile) -> list[Fraction]:
        """`payoff` in exact arithmetic."""
        return [sum((v * Fraction(p) for v, p in zip(self.strategy_payoffs_exact(profile, i), profile[i])), Fraction(0))
                for i in range(self.n_players)]

    def is_equilibrium_exact(self, profile: ExactProfile) -> bool:
        """True when `profile` is a probability profile and every strategy it plays is an exact best response."""
        if any(sum(probs, Fraction(0)) != 1 or any(p < 0 for p in probs) for probs in profile):
            return False
        for i in range(self.n_players):
            values = self.strategy_payoffs_exact(profile, i)
            best = max(values)
            if any(p > 0 and v != best for p, v in zip(profile[i], values)):
                return False
        return True

    def _exact_payoffs(self) -> np.ndarray:
        if self.exact is None:
            raise UsageError("exact arithmetic needs rational payoffs; this game's payoffs are floats")
        return self.exact

    def _checked(self, profile: Profile) -> list[np.ndarray]:
        if len(profile) != self.n_players or any(len(p) != k for p, k in zip(profile, self.shape)):
            raise UsageError(f"profile: expected {self.n_players} probability vectors of lengths {list(self.shape)}, "
                             f"got lengths {[len(p) for p in profile]}")
        return [p if isinstance(p, np.ndarray) else np.asarray(p, dtype=float) for p in profile]


def contract(tensor: np.ndarray, profile: Sequence[np.ndarray], keep: Sequence[int]) -> np.ndarray:
    """`tensor` (one axis per player) averaged over every player's mixed strategy except those of the players in
    `keep`, whose axes remain, in increasing order. Works on float and on object (Fraction) arrays."""
    out = tensor
    for axis in reversed(range(tensor.ndim)):
        if axis not in keep:
            out = np.tensordot(out, profile[axis], axes=([axis], [0]))
    return out


def _exact_array(arr: np.ndarray) -> np.ndarray | None:
    """The payoffs as Fractions, or None where one of them is a non-integral float."""
    if arr.dtype.kind in "biu":
        return _object_array([Fraction(int(v)) for v in arr.flat], arr.shape)
    if arr.dtype.kind == "f":
        _require_finite(arr)
        return _object_array([Fraction(int(v)) for v in arr.flat], arr.shape) if np.all(arr == np.round(arr)) else None
    if arr.dtype != object:
        raise UsageError(f"payoffs: expected numbers, got an array of dtype {arr.dtype}")
    values = []
    for v in arr.flat:
        if isinstance(v, bool | int | np.integer):
            values.append(Fraction(int(v)))
        elif isinstance(v, Fraction):
            values.append(v)
        elif isinstance(v, Decimal):
            if not v.is_finite():
                raise UsageError(f"payoffs: expected finite numbers, got {v}")
            values.append(Fraction(v))
        elif isinstance(v, float | np.floating):
            _require_finite(np.array([v], dtype=float))
            if v != round(v):
                return None
            values.append(Fraction(int(v)))
        else:
            raise UsageError(f"payoffs: expected numbers, got {type(v).__name__} {v!r}")
    return _object_array(values, arr.shape)


def _float_array(arr: np.ndarray) -> np.ndarray:
    values = np.array([float(v) for v in arr.flat]).reshape(arr.shape)
    _require_finite(values)
    return values


def _require_finite(arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        raise UsageError("payoffs: expected finite numbers, got inf or nan")


def _object_array(values: list[Fraction], shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)
