"""The last resort for a convex QP that HiGHS cannot solve: IPOPT's interior point through casadi.

HiGHS has one QP solver (active set); when every attempt of `highs.QP_LADDER` ends in a solve
error, the same model goes to IPOPT, which the AC-OPF already uses. Options and the start point
are fixed (the midpoint of finite bounds, else 0 clipped into them), so the result is a pure
function of the model. Lazy rows are simply part of the model here. Duals follow HiGHS's sign
convention: casadi's Lagrangian is f + lam_g'g + lam_x'x, so the change of the objective per unit
increase of an active bound is -lam.
"""

from __future__ import annotations

import time

import casadi as ca
import numpy as np
import scipy.sparse as sp

from plurigrid.opf.highs import Solution
from plurigrid.opf.result import FAILED, INFEASIBLE, OPTIMAL

TOL = 1e-10  # IPOPT's scaled KKT tolerance: objectives agree with an exact QP solve to about 1e-10
OPTIMAL_STATUSES = ("Solve_Succeeded", "Solved_To_Acceptable_Level")  # IPOPT's answers the AC models take as optimal


def ipopt_options(tol: float, max_iter: int, print_level: int) -> dict[str, bool | dict[str, float | str]]:
    """Fixed IPOPT options: the same problem always takes the same path."""
    return {"print_time": False, "ipopt": {"tol": tol, "max_iter": max_iter, "print_level": print_level, "sb": "yes"}}


def start_point(lo: np.ndarray, hi: np.ndarray, default: float) -> np.ndarray:
    """Midpoint of finite bounds, else `default` clipped into them: a flat, deterministic start."""
    boxed = np.isfinite(lo) & np.isfinite(hi)
    mid = np.full(len(lo), float(default))
    mid[boxed] = 0.5 * (lo[boxed] + hi[boxed])
    return np.clip(mid, lo, hi)


def casadi_sparse(matrix: sp.spmatrix) -> ca.DM:
    """A scipy sparse matrix as a casadi sparse DM (no densification)."""
    csc = sp.csc_matrix(matrix)
    csc.sort_indices()
    pattern = ca.Sparsity(csc.shape[0], csc.shape[1], csc.indptr.tolist(), csc.indices.tolist())
    return ca.DM(pattern, csc.data.tolist())


def solve_qp(c: np.ndarray, a: sp.spmatrix, row_lo: np.ndarray, row_hi: np.ndarray, col_lo: np.ndarray,
             col_hi: np.ndarray, q: sp.spmatrix, lazy: tuple[sp.spmatrix, np.ndarray, np.ndarray] | None = None) -> Solution:
    """min c'x + 1/2 x'Qx subject to the row and column bounds (and the lazy rows, all of them)."""
    if lazy is not None:
        a = sp.vstack([a, lazy[0]]).tocsc()
        row_lo, row_hi = np.r_[row_lo, lazy[1]], np.r_[row_hi, lazy[2]]
    n, m = len(c), a.shape[0]
    x = ca.MX.sym("x", n)
    objective = ca.dot(ca.DM(c), x) + 0.5 * ca.dot(x, ca.mtimes(casadi_sparse(q), x))
    solver = ca.nlpsol("qp", "ipopt", {"x": x, "f": objective, "g": ca.mtimes(casadi_sparse(a), x)}, ipopt_options(TOL, 1000, 0))
    start = start_point(col_lo, col_hi, 0.0)
    t0 = time.perf_counter()
    out = solver(x0=start, lbx=col_lo, ubx=col_hi, lbg=row_lo, ubg=row_hi)
    dt = time.perf_counter() - t0
    stats = solver.stats()
    raw = stats["return_status"]
    status = OPTIMAL if raw == "Solve_Succeeded" else INFEASIBLE if raw == "Infeasible_Problem_Detected" else FAILED
    ok = status == OPTIMAL
    xs = np.asarray(out["x"]).ravel() if ok else np.full(n, np.nan)
    row_dual = -np.asarray(out["lam_g"]).ravel() if ok else np.full(m, np.nan)
    col_dual = -np.asarray(out["lam_x"]).ravel() if ok else np.full(n, np.nan)
    lazy_added = np.arange(lazy[0].shape[0]) if lazy is not None else None
    return Solution(status, xs, row_dual, float(out["f"]) if ok else float("nan"), dt, int(stats["iter_count"]),
                    col_dual, lazy_added)
