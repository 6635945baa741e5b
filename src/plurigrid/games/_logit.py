"""One Nash equilibrium of an n-player game by tracing the logit quantal-response homotopy, then polishing it.

The logit QRE at precision lambda is the profile sigma with sigma_ij proportional to exp(lambda * u_ij(sigma)) for
every player i and strategy j (McKelvey & Palfrey, GEB 10, 1995). At lambda = 0 it is the centroid; as lambda
grows it follows a branch that, for generic games, is a smooth curve with lambda -> infinity, converging to a Nash
equilibrium (the "logit solution"; Turocy, GEB 51, 2005 traces it the same way). We follow the branch by
predictor-corrector continuation in (log sigma, lambda), with payoffs rescaled to [0, 1] per player, and every time
lambda doubles we polish the current point by Newton's method on the equations of an equilibrium with the support
the point has settled on (payoffs of the support strategies equal, probabilities summing to 1).

Guarantees, and what is checked: a logit response maximises expected payoff plus entropy / lambda, so any point of
the branch at lambda is an epsilon-equilibrium with epsilon <= ln(s_i) / lambda of player i's payoff range. A profile
is returned only once verified: each player's regret <= tol x its payoff range (tol 1e-9 by default). In degenerate
games the branch can fold or fork; when tracing stalls, or lambda passes its bound with no verified point,
NoEquilibriumFound is raised. The computation is deterministic (no randomness, fixed step rules).
"""

from __future__ import annotations

import numpy as np

from plurigrid.errors import PlurigridError
from plurigrid.games.normal import NormalFormGame, contract

MAX_LAMBDA = 1e8
MAX_STEPS = 20_000
# a probability above the floor at a checkpoint puts the strategy in the support to polish; several floors are tried,
# since in degenerate games a strategy can fade from the support as slowly as 1 / lambda
SUPPORT_FLOORS = (1e-6, 1e-3, 1e-2)


class NoEquilibriumFound(PlurigridError):
    """The homotopy could not reach a verified equilibrium (a degenerate game whose logit branch folds or forks)."""


def logit_equilibrium(game: NormalFormGame, tol: float = 1e-9) -> list[np.ndarray]:
    """An equilibrium profile (one probability vector per player) with every regret <= tol x that payoff range."""
    tracer = _Tracer(game)
    span = tracer.span
    z = np.concatenate([np.concatenate([np.full(s, -np.log(s)) for s in tracer.shape]), [0.0]])
    orientation = tracer.orientation(z)
    t = tracer.tangent(z, orientation)
    step, checkpoint = 0.1, 1.0
    for _ in range(MAX_STEPS):
        refs = tracer.references(z)
        moved = tracer.correct(z + step * t, refs)
        if moved is not None:
            t_new = tracer.tangent(moved, orientation)
            if float(t_new @ t) < 0.9:  # a sharp turn, or a jump to another branch: retry with a shorter step
                moved = None
        if moved is None:
            step /= 2
            if step < 1e-12:
                raise NoEquilibriumFound(f"the logit path stalled at lambda {z[-1]:.4g}; the game is degenerate there")
            continue
        z, t = moved, t_new
        step *= 2
        if z[-1] >= checkpoint:
            checkpoint = 2 * z[-1]
            for floor in SUPPORT_FLOORS:
                profile = tracer.polish(tracer.sigma(z), floor)
                if profile is not None and np.all(game.regret(profile) <= tol * span):
                    return profile
            if z[-1] > MAX_LAMBDA:
                break
    profile = tracer.sigma(z)
    if np.all(game.regret(profile) <= tol * span):
        return profile
    raise NoEquilibriumFound(f"the logit path reached lambda {z[-1]:.4g} without a point of regret <= {tol:g} x the payoff range")


class _Tracer:
    """The homotopy's equations H(log sigma, lambda) = 0 and their Jacobian, on payoffs rescaled to [0, 1]."""

    def __init__(self, game: NormalFormGame) -> None:
        low = game.payoffs.reshape(game.n_players, -1).min(axis=1)
        high = game.payoffs.reshape(game.n_players, -1).max(axis=1)
        self.span = np.where(high > low, high - low, 1.0)  # each player's payoff range (1 for a player indifferent)
        self.u = [(game.payoffs[i] - low[i]) / self.span[i] for i in range(game.n_players)]
        self.shape = game.shape
        self.start = np.concatenate([[0], np.cumsum(self.shape)])
        self.n = game.n_players

    def sigma(self, z: np.ndarray) -> list[np.ndarray]:
        return [np.exp(z[self.start[i]:self.start[i + 1]]) for i in range(self.n)]

    def references(self, z: np.ndarray) -> list[int]:
        """Per player, the strategy the other equations are written relative to: its likeliest (best conditioned)."""
        return [int(np.argmax(z[self.start[i]:self.start[i + 1]])) for i in range(self.n)]

    def values(self, sigma: list[np.ndarray]) -> tuple[list[np.ndarray], dict[tuple[int, int], np.ndarray]]:
        """Each player's payoff per pure strategy, and pair[i, k][j, l]: i's payoff when i plays j and k plays l."""
        own = [contract(self.u[i], sigma, (i,)) for i in range(self.n)]
        pair = {(i, k): contract(self.u[i], sigma, (i, k)) if i < k else contract(self.u[i], sigma, (k, i)).T
                for i in range(self.n) for k in range(self.n) if k != i}
        return own, pair

    def residual(self, z: np.ndarray, refs: list[int]) -> np.ndarray:
        sigma, lam = self.sigma(z), z[-1]
        own, _ = self.values(sigma)
        out = np.empty(len(z) - 1)
        for i in range(self.n):
            a, r = self.start[i], refs[i]
            x = z[a:self.start[i + 1]]
            out[a:self.start[i + 1]] = x - x[r] - lam * (own[i] - own[i][r])
            out[a + r] = sigma[i].sum() - 1
        return out

    def jacobian(self, z: np.ndarray, refs: list[int]) -> np.ndarray:
        sigma, lam = self.sigma(z), z[-1]
        own, pair = self.values(sigma)
        m = len(z) - 1
        jac = np.zeros((m, m + 1))
        for i in range(self.n):
            a, b, r = self.start[i], self.start[i + 1], refs[i]
            block = jac[a:b]
            block[:, a:b] = np.eye(b - a)
            block[:, a + r] -= 1
            for k in range(self.n):
                if k != i:
                    d = pair[i, k]
                    block[:, self.start[k]:self.start[k + 1]] = -lam * (d - d[r]) * sigma[k]
            block[:, m] = -(own[i] - own[i][r])
            block[r] = 0
            block[r, a:b] = sigma[i]
        return jac

    def tangent(self, z: np.ndarray, orientation: float) -> np.ndarray:
        """The unit tangent t of the solution curve at z with sign det([H'(z); t]) = orientation: that sign is constant
        along a branch, through folds of lambda too, so the trace never turns back on itself. The sign is taken with
        strategy 0 as every player's reference (the references used elsewhere change between steps)."""
        q, _ = np.linalg.qr(self.jacobian(z, self.references(z)).T, mode="complete")
        t = q[:, -1]
        sign = np.linalg.slogdet(np.vstack([self.jacobian(z, [0] * self.n), t]))[0]
        return t * (sign * orientation if sign != 0 else 1.0)

    def orientation(self, z: np.ndarray) -> float:
        """The orientation in which the curve leaves z with lambda increasing."""
        t = self.tangent(z, 1.0)
        return 1.0 if t[-1] > 0 else -1.0

    def correct(self, z: np.ndarray, refs: list[int]) -> np.ndarray | None:
        """Newton's method with minimum-norm steps back onto the curve; None if it does not contract quickly."""
        last = np.inf
        for _ in range(8):
            dz = np.linalg.lstsq(self.jacobian(z, refs), -self.residual(z, refs), rcond=None)[0]
            z = z + dz
            size = float(np.max(np.abs(dz) / np.maximum(1.0, np.abs(z))))
            if not np.isfinite(size) or size > 0.5 * last or np.max(z[:-1]) > 1.0:  # log-probabilities stay <= 0
                return None
            if size < 1e-11:
                return z
            last = size
        return None

    def polish(self, sigma: list[np.ndarray], floor: float) -> list[np.ndarray] | None:
        """Gauss-Newton on 'support strategies pay the same, probabilities sum to 1', from sigma with the strategies
        above `floor` as support; None if it ends with a negative probability."""
        support = [np.flatnonzero(s > floor) for s in sigma]
        prof = [np.where(s > floor, s, 0.0) for s in sigma]
        prof = [p / p.sum() for p in prof]
        own, _ = self.values(prof)
        v = np.array([own[i][support[i]].mean() for i in range(self.n)])
        cols = np.concatenate([[0], np.cumsum([len(s) for s in support])])
        for _ in range(30):
            own, pair = self.values(prof)
            resid, jac_rows = [], []
            for i in range(self.n):
                rows = np.zeros((len(support[i]) + 1, cols[-1] + self.n))
                for k in range(self.n):
                    if k != i:
                        rows[:-1, cols[k]:cols[k + 1]] = pair[i, k][np.ix_(support[i], support[k])]
                rows[:-1, cols[-1] + i] = -1
                rows[-1, cols[i]:cols[i + 1]] = 1
                jac_rows.append(rows)
                resid.append(np.concatenate([own[i][support[i]] - v[i], [prof[i].sum() - 1]]))
            f = np.concatenate(resid)
            if np.max(np.abs(f)) < 1e-14:
                break
            delta = np.linalg.lstsq(np.vstack(jac_rows), -f, rcond=None)[0]
            for i in range(self.n):
                prof[i][support[i]] += delta[cols[i]:cols[i + 1]]
            v = v + delta[cols[-1]:]
        if any(np.min(p) < -1e-12 for p in prof):
            return None
        clipped = [np.where(p > 1e-12, p, 0.0) for p in prof]  # rounding residue is not a strategy played
        return [p / p.sum() for p in clipped]
