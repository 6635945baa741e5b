"""Coalitional (transferable-utility) games: a fair split of what cooperation earns, and whether any split is stable.

Why: a coalition of participants (a shared battery, a peer-to-peer group) earns v(S), often measured by
simulating the microworld with S cooperating, and must split v(N) among its members. Three answers:

- the **Shapley value**, the fair split: each player's marginal contribution averaged over every order in
  which the coalition could form (exact over all 2^n coalitions up to `EXACT_MAX_PLAYERS`, else sampled
  over random orders with a confidence interval);
- the **core**, the stable splits: those no sub-coalition S can improve on by leaving (x(S) >= v(S));
  when it is empty, the least core says by how much every coalition's claim must be relaxed;
- the **nucleolus**, the split that makes the worst-off coalition as well off as possible, then the next,
  lexicographically; it is unique and lies in the core whenever the core is non-empty.

v may be expensive (each call a simulation), so a `Game` evaluates each coalition at most once and can
start from a table of values already known. The empty coalition is worth 0 and never evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import scipy.sparse as sp

from plurigrid.errors import UsageError
from plurigrid.opf.highs import INF, solve
from plurigrid.opf.result import OPTIMAL

CharacteristicFunction = Callable[[frozenset[str]], float]
ValueTable = Mapping[frozenset[str], float]

EXACT_MAX_PLAYERS = 12  # exact Shapley (and, in a report, the core and nucleolus) by default up to here: 4096 coalitions
LP_MAX_PLAYERS = 16  # the core and nucleolus take a constraint per coalition: 65535 rows at most
MAX_PLAYERS = 62  # coalitions are bit masks in int64
_LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
_TOL = 1e-9  # relative to the game's largest |v(S)|: equal values, a core that is not empty, independent rows
_DUAL_TOL = 1e-7  # a row's dual above this binds (the free rows' duals sum to 1, so the largest is >= 2^-16)


class Game:
    """Players and a memoised characteristic function: `value(mask)` evaluates each coalition at most once.

    Player i is bit i of a coalition mask. `v` is a callable of a frozenset of player names, or a table of
    values (then every coalition asked for must be in it); `known` seeds the memo of a callable with values
    already computed (earlier simulations, say).
    """

    def __init__(self, players: Sequence[str], v: CharacteristicFunction | ValueTable,
                 known: ValueTable | None = None) -> None:
        self.players = _checked_players(players)
        self.n = len(self.players)
        self._index = {p: i for i, p in enumerate(self.players)}
        self._memo: dict[int, float] = {0: 0.0}
        self._v = v if callable(v) else None
        for table, name in ((known or {}, "known"), ({} if callable(v) else v, "v")):
            for coalition, value in table.items():
                mask = self.mask(coalition, name)
                self._memo[mask] = _finite(value, f"{name}[{_label(self.coalition(mask))}]")
        if self._memo[0] != 0.0:
            raise UsageError("v: the empty coalition must be worth 0")

    @property
    def grand(self) -> int:
        """The mask of the grand coalition N."""
        return (1 << self.n) - 1

    def mask(self, coalition: Iterable[str], where: str = "coalition") -> int:
        mask = 0
        for player in coalition:
            if player not in self._index:
                raise UsageError(f"{where}: {player!r} is not a player (expected one of {', '.join(self.players)})")
            mask |= 1 << self._index[player]
        return mask

    def coalition(self, mask: int) -> frozenset[str]:
        return frozenset(p for i, p in enumerate(self.players) if mask >> i & 1)

    def value(self, mask: int) -> float:
        """v of the coalition `mask`, evaluated on first use only."""
        if mask not in self._memo:
            if self._v is None:
                raise UsageError(f"v: no value for the coalition {_label(self.coalition(mask))} "
                                 "(a table of values must hold every coalition asked for)")
            coalition = self.coalition(mask)
            self._memo[mask] = _finite(self._v(coalition), f"v({_label(coalition)})")
        return self._memo[mask]

    def values(self, masks: np.ndarray) -> np.ndarray:
        """v of many coalitions (any shape); those not yet known are evaluated once each, in mask order."""
        unique, inverse = np.unique(masks, return_inverse=True)
        return np.array([self.value(int(m)) for m in unique])[inverse].reshape(masks.shape)

    def table(self) -> np.ndarray:
        """v of every coalition, indexed by mask (evaluates all 2^n)."""
        return self.values(np.arange(1 << self.n, dtype=np.int64))

    def evaluated(self) -> dict[frozenset[str], float]:
        """Every coalition whose value is known (the empty one included)."""
        return {self.coalition(m): v for m, v in sorted(self._memo.items())}

    def __call__(self, coalition: frozenset[str]) -> float:
        return self.value(self.mask(coalition))


def _checked_players(players: Sequence[str]) -> tuple[str, ...]:
    names = tuple(players)
    if not names or not all(isinstance(p, str) and p for p in names) or len(set(names)) != len(names):
        raise UsageError(f"players: expected distinct non-empty names, got {list(names)!r}")
    if len(names) > MAX_PLAYERS:
        raise UsageError(f"players: {len(names)} players; at most {MAX_PLAYERS} are supported")
    return names


def _finite(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise UsageError(f"{where} is {value!r}; expected a finite number")
    return float(value)


def _label(coalition: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(coalition)) + "}"


def as_game(players: Sequence[str], v: CharacteristicFunction | ValueTable | Game) -> Game:
    """`v` itself if it is already a Game over these players (sharing its memo), else a new Game."""
    if isinstance(v, Game):
        if v.players != tuple(players):
            raise UsageError(f"players: {list(players)!r} differ from the game's {list(v.players)!r}")
        return v
    return Game(players, v)


def _membership(masks: np.ndarray, n: int) -> np.ndarray:
    """(len(masks), n) 0/1 matrix: row k says which players coalition masks[k] holds."""
    return (masks[:, None] >> np.arange(n)) & 1


# ---------------------------------------------------------------- Shapley value


@dataclass(frozen=True)
class ShapleyResult:
    """Each player's Shapley value, how it was found, and whether it splits exactly v(N).

    Exact: `samples` is None and the interval is the value itself. Sampled: the mean marginal contribution
    over `samples` random orders, and a normal-approximation interval at `level` (per player, not joint).
    """

    players: tuple[str, ...]
    values: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    level: float
    method: Literal["exact", "sampled"]
    samples: int | None
    seed: int | None
    grand_value: float  # v(N)

    @property
    def efficiency_gap(self) -> float:
        """sum of the values minus v(N): 0 up to rounding (every order's contributions add up to v(N))."""
        return float(self.values.sum()) - self.grand_value

    @property
    def efficient(self) -> bool:
        return abs(self.efficiency_gap) <= _TOL * max(1.0, abs(self.grand_value))

    def to_json(self) -> dict:
        return {"method": self.method, "samples": self.samples, "seed": self.seed, "level": self.level,
                "values": dict(zip(self.players, self.values.tolist())),
                "interval": {p: [lo, hi] for p, lo, hi in zip(self.players, self.ci_low.tolist(), self.ci_high.tolist())},
                "grand_value": self.grand_value, "efficiency_gap": self.efficiency_gap, "efficient": self.efficient}


def shapley(players: Sequence[str], v: CharacteristicFunction | ValueTable | Game, *,
            method: Literal["auto", "exact", "sampled"] = "auto", samples: int = 1000, seed: int = 0,
            level: float = 0.95) -> ShapleyResult:
    """The Shapley value: exact over all coalitions ("auto" up to EXACT_MAX_PLAYERS players), else sampled
    over `samples` random orders drawn from `seed`, with a `level` normal confidence interval per player."""
    game = as_game(players, v)
    if method == "auto":
        method = "exact" if game.n <= EXACT_MAX_PLAYERS else "sampled"
    if method == "exact":
        if game.n > LP_MAX_PLAYERS:
            raise UsageError(f"method: exact Shapley of {game.n} players needs 2^{game.n} coalitions; "
                             f"at most {LP_MAX_PLAYERS} players (use method='sampled')")
        phi = _exact_shapley(game)
        return ShapleyResult(game.players, phi, phi, phi, 1.0, "exact", None, None, game.value(game.grand))
    if method != "sampled":
        raise UsageError(f"method: {method!r}; expected 'auto', 'exact' or 'sampled'")
    if samples < 2:
        raise UsageError(f"samples: {samples}; expected at least 2 random orders")
    if not 0 < level < 1:
        raise UsageError(f"level: {level}; expected a confidence level strictly between 0 and 1")
    mean, half = _sampled_shapley(game, samples, seed, level)
    return ShapleyResult(game.players, mean, mean - half, mean + half, level, "sampled", samples, seed,
                         game.value(game.grand))


def _exact_shapley(game: Game) -> np.ndarray:
    """phi_i = sum over S without i of |S|! (n-|S|-1)! / n! * (v(S + i) - v(S)), vectorised over S."""
    n = game.n
    values = game.table()
    masks = np.arange(1 << n, dtype=np.int64)
    size = _membership(masks, n).sum(axis=1)
    weight = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i & 1) == 0]
        phi[i] = weight[size[without]] @ (values[without | (1 << i)] - values[without])
    return phi


def _sampled_shapley(game: Game, samples: int, seed: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean marginal contribution per player over random orders, and the half-width of its interval."""
    n, rng = game.n, np.random.default_rng(seed)
    orders = rng.permuted(np.tile(np.arange(n), (samples, 1)), axis=1)
    prefixes = np.cumsum(np.left_shift(np.int64(1), orders), axis=1)  # the coalition after each arrival
    worth = game.values(prefixes)
    marginal = np.diff(worth, axis=1, prepend=0.0)
    contribution = np.empty((samples, n))
    contribution[np.arange(samples)[:, None], orders] = marginal
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return contribution.mean(axis=0), z * contribution.std(axis=0, ddof=1) / math.sqrt(samples)


# ---------------------------------------------------------------- core and least core


@dataclass(frozen=True)
class CoreResult:
    """Whether the core is empty; a core allocation if not, else the least core's epsilon and an allocation in it.

    `min_total` is the least total payout that meets every coalition's claim x(S) >= v(S): the core is
    non-empty iff it is at most v(N). The least core relaxes every proper coalition's claim by epsilon.
    """

    players: tuple[str, ...]
    empty: bool
    allocation: np.ndarray  # in the core, or (when it is empty) in the least core
    min_total: float
    least_core_epsilon: float | None

    def to_json(self) -> dict:
        return {"empty": self.empty, "allocation": dict(zip(self.players, self.allocation.tolist())),
                "min_total": self.min_total, "least_core_epsilon": self.least_core_epsilon}


class _Lp:
    """The coalitions of a game as LP rows: membership matrix and values of every non-empty coalition, scaled."""

    def __init__(self, game: Game, what: str) -> None:
        if game.n > LP_MAX_PLAYERS:
            raise UsageError(f"players: the {what} of {game.n} players needs 2^{game.n} coalition constraints; "
                             f"at most {LP_MAX_PLAYERS} players")
        self.n = game.n
        self.masks = np.arange(1, 1 << game.n, dtype=np.int64)  # the grand coalition last
        values = game.values(self.masks)
        self.scale = max(1.0, float(np.abs(values).max()))  # tolerances are relative to the game's size
        self.values = values / self.scale
        self.member = _membership(self.masks, game.n).astype(float)

    def solve(self, c: np.ndarray, a: np.ndarray, lo: np.ndarray, hi: np.ndarray, col_lo: np.ndarray,
              what: str) -> tuple[np.ndarray, float, np.ndarray]:
        """x, objective and row duals of min c'x s.t. lo <= a x <= hi, x >= col_lo (always feasible and bounded)."""
        sol = solve(c, sp.csr_matrix(a), lo, hi, col_lo, np.full(len(c), INF), options=_LP_OPTIONS)
        if sol.status != OPTIMAL:  # every LP here has a feasible point and a bounded objective
            raise RuntimeError(f"{what}: HiGHS ended {sol.status} ({'; '.join(sol.attempts)})")
        return sol.x, sol.objective, sol.row_dual


def core(players: Sequence[str], v: CharacteristicFunction | ValueTable | Game) -> CoreResult:
    """Is the core empty? By LP (HiGHS): the least total payout with x(S) >= v(S) for every S, against v(N)."""
    game = as_game(players, v)
    lp = _Lp(game, "core")
    n, grand = lp.n, lp.values[-1]
    x, total, _ = lp.solve(np.ones(n), lp.member, lp.values, np.full(len(lp.masks), INF), np.full(n, -INF), "core")
    if total <= grand + _TOL:
        return CoreResult(game.players, False, x * lp.scale + 0.0, total * lp.scale, None)
    # least core: min eps s.t. x(S) + eps >= v(S) for proper S, x(N) = v(N)
    a = np.hstack([lp.member, np.r_[np.ones(len(lp.masks) - 1), 0.0][:, None]])
    hi = np.r_[np.full(len(lp.masks) - 1, INF), grand]
    c = np.r_[np.zeros(n), 1.0]
    y, epsilon, _ = lp.solve(c, a, lp.values, hi, np.full(n + 1, -INF), "least core")
    return CoreResult(game.players, True, y[:n] * lp.scale + 0.0, total * lp.scale, epsilon * lp.scale)


# ---------------------------------------------------------------- nucleolus


def nucleolus(players: Sequence[str], v: CharacteristicFunction | ValueTable | Game) -> np.ndarray:
    """The nucleolus (over imputations, x_i >= v({i})), by sequential LPs (HiGHS).

    Each LP maximises t, the least x(S) - v(S) over the coalitions not yet fixed. A coalition whose row
    has a positive dual is tight at every optimum (complementary slackness), so it is fixed at
    x(S) = v(S) + t; coalitions whose x(S) the fixed ones already determine leave the LP. Every round fixes
    a coalition independent of those before it, so after at most n - 1 rounds the fixed equations
    determine x, which is then solved from them directly.
    """
    game = as_game(players, v)
    lp = _Lp(game, "nucleolus")
    n, grand = lp.n, lp.values[-1]
    own = lp.values[(1 << np.arange(n)) - 1]  # v({i}): mask 2^i is row 2^i - 1
    if own.sum() > grand + _TOL:
        raise UsageError(f"v: no imputation: the players' own values sum to {own.sum() * lp.scale:g} > "
                         f"v(N) = {grand * lp.scale:g}")
    fixed_rows, fixed_rhs = [lp.member[-1]], [grand]
    free = np.arange(len(lp.masks) - 1)  # proper coalitions still in the LP
    basis = _basis(np.array(fixed_rows))
    while basis.shape[1] < n:
        f = len(fixed_rows)
        a = np.vstack([np.hstack([lp.member[free], -np.ones((len(free), 1))]),
                       np.hstack([np.array(fixed_rows), np.zeros((f, 1))])])
        lo = np.r_[lp.values[free], fixed_rhs]
        hi = np.r_[np.full(len(free), INF), fixed_rhs]
        x, objective, dual = lp.solve(np.r_[np.zeros(n), -1.0], a, lo, hi, np.r_[own, -INF], "nucleolus")
        t = -objective
        binding = free[np.abs(dual[:len(free)]) > _DUAL_TOL]
        if not len(binding):  # cannot happen: the free rows' duals sum to 1 (t's column)
            raise RuntimeError("nucleolus: no coalition binds at the optimum")
        fixed_rows += list(lp.member[binding])
        fixed_rhs += list(lp.values[binding] + t)
        basis = _basis(np.array(fixed_rows))
        residual = lp.member[free] - (lp.member[free] @ basis) @ basis.T
        free = free[np.abs(residual).max(axis=1) > _TOL]  # rows the fixed ones do not determine
    x = np.linalg.lstsq(np.array(fixed_rows), np.array(fixed_rhs), rcond=None)[0]
    return x * lp.scale


def _basis(rows: np.ndarray) -> np.ndarray:
    """An orthonormal basis (columns) of the span of `rows`."""
    _, s, vt = np.linalg.svd(rows, full_matrices=False)
    return vt[s > _TOL * max(1.0, s[0])].T


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class CoalitionReport:
    """A game's coalition values (those evaluated), Shapley value, core and nucleolus, JSON-able.

    The core and nucleolus need every coalition: they are None when the report sampled Shapley instead; the
    nucleolus is None too when there is no imputation (the players' own values sum to more than v(N)).
    """

    players: tuple[str, ...]
    coalitions: dict[frozenset[str], float]
    shapley: ShapleyResult
    core: CoreResult | None
    nucleolus: np.ndarray | None

    def to_json(self) -> dict:
        order = {p: i for i, p in enumerate(self.players)}
        members = {c: sorted(c, key=order.__getitem__) for c in self.coalitions}
        rows = sorted(self.coalitions.items(), key=lambda kv: (len(kv[0]), [order[p] for p in members[kv[0]]]))
        return {"players": list(self.players),
                "coalitions": [{"members": members[c], "value": value} for c, value in rows],
                "shapley": self.shapley.to_json(),
                "core": None if self.core is None else self.core.to_json(),
                "nucleolus": None if self.nucleolus is None else dict(zip(self.players, self.nucleolus.tolist()))}


def coalition_report(players: Sequence[str], v: CharacteristicFunction | ValueTable | Game, *, samples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> CoalitionReport:
    """Shapley value, core and nucleolus from one memo of v (each coalition evaluated once); beyond
    EXACT_MAX_PLAYERS players, sampled Shapley only (the rest would need all 2^n coalitions)."""
    game = as_game(players, v)
    phi = shapley(game.players, game, samples=samples, seed=seed, level=level)
    exact = phi.method == "exact"
    # no imputation (the players' own values add up to more than v(N)): no nucleolus to report, and the core is empty
    imputes = exact and sum(game(frozenset({p})) for p in game.players) <= game(frozenset(game.players)) + _TOL * max(
        1.0, abs(game(frozenset(game.players))))
    return CoalitionReport(game.players, game.evaluated(), phi, core(game.players, game) if exact else None,
                           nucleolus(game.players, game) if imputes else None)
