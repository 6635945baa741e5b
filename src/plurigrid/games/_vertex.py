"""Every extreme Nash equilibrium of a bimatrix game, exactly: vertex enumeration of the best-response polytopes.

With payoffs made positive integers (A, B: m x n; equilibria do not change under a positive affine map), the
polytopes P = {x >= 0 : B^T x <= 1} and Q = {y >= 0 : A y <= 1} have labels: player 1's strategy i labels the
points of P with x_i = 0 and of Q with (A y)_i = 1; player 2's strategy j those of P with (B^T x)_j = 1 and of Q with
y_j = 0. The equilibria are the completely labelled pairs of points other than (0, 0), normalised to probabilities
(von Stengel, "Computing equilibria for two-person games", Handbook of Game Theory 3, 2002). Extreme equilibria are
pairs of vertices; in a nondegenerate game they are all the equilibria, in a degenerate one every equilibrium is a
convex combination of extreme ones that share a component (a "maximal Nash subset").

A vertex of P lies where k variables x_S are free and k constraints T tight, with B[S, T]^T x_S = 1 nonsingular;
the systems are screened in floating point all at once (numpy), a basis being dropped there only when it is well
conditioned and clearly infeasible; the rest are solved and checked in integers by fraction-free (Bareiss)
Gauss-Jordan elimination, so every vertex reported is exact. The
number of systems is C(m+n, m) - 1 for each polytope: a quarter of a second at 9 x 9, a second at 10 x 10, 20 s
at 12 x 12 (one core).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

from plurigrid.errors import UsageError

SCREEN_CHUNK = 20_000  # candidate bases screened in floating point at a time
MAX_BASES = 3_000_000  # C(m+n, m) beyond which enumeration is refused (12 x 12: 2.7 million, about 20 s)


def extreme_equilibria(a: np.ndarray, b: np.ndarray) -> list[tuple[list[Fraction], list[Fraction]]]:
    """Every extreme equilibrium (x, y) of the bimatrix game (a, b) (object arrays of Fractions, m x n), as exact
    probability vectors, in a fixed order (player 1's probabilities first, larger first)."""
    m, n = a.shape
    if math.comb(m + n, m) > MAX_BASES:
        raise UsageError(f"vertex enumeration of a {m} x {n} game examines {math.comb(m + n, m):,} bases a player, more "
                         f"than {MAX_BASES:,}; ask for pure equilibria only, or solve a smaller game")
    pos_a, pos_b = _positive_integers(a), _positive_integers(b)
    p_vertices = [(z, zero | tight << m) for z, zero, tight in _vertices(pos_b)]  # variables: player 1's strategies
    q_vertices = [(z, tight | zero << m) for z, zero, tight in _vertices([list(col) for col in zip(*pos_a)])]  # variables: player 2's strategies
    everything = (1 << (m + n)) - 1
    found = []
    for x, lx in p_vertices:
        for y, ly in q_vertices:
            if lx | ly == everything:
                found.append(([v / sum(x) for v in x], [v / sum(y) for v in y]))
    return sorted(found, key=lambda e: tuple(-p for p in e[0] + e[1]))


def _positive_integers(m: np.ndarray) -> list[list[int]]:
    """The matrix shifted so its least entry is 1 and scaled by the common denominator: positive integers."""
    values = [[Fraction(v) for v in row] for row in m]
    low = min(v for row in values for v in row)
    scale = math.lcm(*(v.denominator for row in values for v in row))
    return [[int((v - low + 1) * scale) for v in row] for row in values]


def _vertices(rows: list[list[int]]) -> list[tuple[tuple[Fraction, ...], int, int]]:
    """Vertices z != 0 of {z >= 0 : C^T z <= 1} (C = rows: a x b positive integers) with the bit sets of their zero
    coordinates (over a) and tight constraints (over b)."""
    top = max(max(row) for row in rows)
    c = np.array([[v / top for v in row] for row in rows])  # scaled into [0, 1]: the screen's verdicts do not change
    a, b = c.shape
    seen: dict[tuple[Fraction, ...], tuple[int, int]] = {}
    for k in range(1, min(a, b) + 1):
        frees = np.array(list(itertools.combinations(range(a), k)))
        tights = np.array(list(itertools.combinations(range(b), k)))
        for start in range(0, len(frees) * len(tights), SCREEN_CHUNK):
            pair = np.arange(start, min(start + SCREEN_CHUNK, len(frees) * len(tights)))
            free, tight = frees[pair // len(tights)], tights[pair % len(tights)]
            for n in np.flatnonzero(_may_be_vertex(c, free, tight)):
                vertex = _exact_vertex(rows, [int(i) for i in free[n]], [int(j) for j in tight[n]])
                if vertex is not None and vertex[0] not in seen:
                    seen[vertex[0]] = vertex[1:]
    return [(z, zero, tight) for z, (zero, tight) in seen.items()]


def _may_be_vertex(c: np.ndarray, free: np.ndarray, tight: np.ndarray) -> np.ndarray:
    """A screen in floating point, vectorised over candidate bases (free variables, tight constraints): False only
    where the system is well conditioned (condition number < 1e8, so its float solution is right to ~1e-8) and that
    solution is infeasible by more than 1e-6. Everything else is decided exactly."""
    m = c[free[:, None, :], tight[:, :, None]]  # m[n, r, q] = c[free[n, q], tight[n, r]]
    keep = np.ones(len(m), dtype=bool)
    regular = np.flatnonzero(np.linalg.slogdet(m)[0] != 0)  # LU without a zero pivot: inv below cannot fail
    inverse = np.linalg.inv(m[regular])
    cond = np.abs(m[regular]).sum(axis=1).max(axis=1) * np.abs(inverse).sum(axis=1).max(axis=1)  # 1-norm condition number
    z = inverse.sum(axis=2)  # the solution of m z = 1
    loads = np.einsum("nqb,nq->nb", c[free[regular]], z)
    scale = np.maximum(1.0, np.abs(z).max(axis=1))
    infeasible = (z.min(axis=1) < -1e-6 * scale) | (loads.max(axis=1) > 1 + 1e-6)
    keep[regular[(cond < 1e8) & infeasible]] = False
    return keep


def _exact_vertex(rows: list[list[int]], free: list[int], tight: list[int]) -> tuple[tuple[Fraction, ...], int, int] | None:
    """The point with variables `free` and constraints `tight`, with its zero and tight bit sets, if it is a vertex."""
    solved = _solve([[rows[i][j] for i in free] for j in tight])
    if solved is None:
        return None
    num, det = solved
    if any(v < 0 for v in num):
        return None
    full = [0] * len(rows)
    for i, v in zip(free, num):
        full[i] = v
    loads = [sum(rows[i][j] * full[i] for i in free) for j in range(len(rows[0]))]
    if any(load > det for load in loads):
        return None
    zero = sum(1 << i for i, v in enumerate(full) if v == 0)
    return tuple(Fraction(v, det) for v in full), zero, sum(1 << j for j, load in enumerate(loads) if load == det)


def _solve(m: list[list[int]]) -> tuple[list[int], int] | None:
    """The solution of m z = 1 as (numerators, common denominator > 0), or None if m is singular.

    Fraction-free Gauss-Jordan elimination (Bareiss): every division is exact, the diagonal ends as det(m) up to sign
    and the right-hand side as that times the solution."""
    k = len(m)
    rows = [row[:] + [1] for row in m]
    prev = 1
    for c in range(k):
        pivot = next((r for r in range(c, k) if rows[r][c] != 0), None)
        if pivot is None:
            return None
        rows[c], rows[pivot] = rows[pivot], rows[c]
        p = rows[c][c]
        for r in range(k):
            if r != c:
                f = rows[r][c]
                rows[r] = [(p * rows[r][j] - f * rows[c][j]) // prev for j in range(k + 1)]
        prev = p
    det = rows[0][0]
    sign = 1 if det > 0 else -1
    return [sign * row[k] for row in rows], sign * det
