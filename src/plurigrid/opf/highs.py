"""One call from scipy.sparse matrices to HiGHS for LP, convex QP and MILP.

highspy's modelling layer is linear-only; quadratic objectives go through the Hessian API, so
every formulation builds `min c'x + 1/2 x'Qx  s.t.  row_lo <= A x <= row_hi, col_lo <= x <= col_hi`
and calls `solve`. Row duals are HiGHS's: the change of the objective per unit increase of the
active row bound (so a balance row `sum(injections) = demand` has dual = marginal cost of demand).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from plurigrid.opf.result import FAILED, INFEASIBLE, OPTIMAL, UNBOUNDED

INF = highspy.kHighsInf

_STATUS = {
    highspy.HighsModelStatus.kOptimal: OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: INFEASIBLE,
}


@dataclass
class Solution:
    status: str
    x: np.ndarray
    row_dual: np.ndarray
    objective: float  # c'x + 1/2 x'Qx, without constants
    solve_time_s: float
    iterations: int


_quiet_lock = threading.Lock()


def new_highs() -> highspy.Highs:
    """A HiGHS instance that writes nothing to stdout, from its construction on.

    HiGHS 1.16 prints its banner from the C++ constructor, before any option can be set, and a
    line on stdout breaks every `--json` output; file descriptor 1 points at /dev/null meanwhile.
    """
    with _quiet_lock:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


def _finite(v: np.ndarray) -> np.ndarray:
    return np.where(np.isposinf(v), INF, np.where(np.isneginf(v), -INF, v))


def solve(c: np.ndarray, a: sp.spmatrix, row_lo: np.ndarray, row_hi: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
          q: sp.spmatrix | None = None, integer: np.ndarray | None = None, *, mip_rel_gap: float = 1e-6,
          time_limit_s: float = float("inf"), threads: int = 1,
          lazy: tuple[sp.spmatrix, np.ndarray, np.ndarray] | None = None, lazy_tol: float = 1e-9,
          options: Mapping[str, bool | int | float | str] | None = None) -> Solution:
    """Solves the problem; `q` is the (symmetric, positive semidefinite) Hessian, `integer` a bool mask.

    `lazy = (A, lo, hi)` are rows that rarely bind (branch limits of a transmission grid): they
    are left out, and those the solution violates are added and the model re-solved from the
    previous basis until none is violated. The optimum is the same; `row_dual` then covers the
    base rows followed by the added ones. One thread by default: results are then reproducible
    bit for bit, and small models do not gain from more. `options` are further HiGHS options.
    """
    n, m = len(c), a.shape[0]
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_ = np.asarray(c, float)
    lp.col_lower_, lp.col_upper_ = _finite(np.asarray(col_lo, float)), _finite(np.asarray(col_hi, float))
    lp.row_lower_, lp.row_upper_ = _finite(np.asarray(row_lo, float)), _finite(np.asarray(row_hi, float))
    csc = sp.csc_matrix(a)
    csc.sort_indices()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, m
    if integer is not None and integer.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in integer]
    h = new_highs()
    h.setOptionValue("threads", threads)
    h.setOptionValue("mip_rel_gap", mip_rel_gap)
    for key, value in (options or {}).items():
        h.setOptionValue(key, value)
    if np.isfinite(time_limit_s):
        h.setOptionValue("time_limit", float(time_limit_s))
    h.passModel(lp)
    if q is not None and q.nnz:
        low = sp.csc_matrix(sp.tril(q))
        low.sort_indices()
        # highspy's stubs type `format` as a plain int; HiGHS takes the HessianFormat member
        h.passHessian(n, low.nnz, highspy.HessianFormat.kTriangular, low.indptr, low.indices, low.data)  # type: ignore[call-overload]
    t0 = time.perf_counter()
    h.run()
    if lazy is not None:
        _add_violated_rows(h, *lazy, lazy_tol)
    dt = time.perf_counter() - t0
    status = _STATUS.get(h.getModelStatus(), FAILED)
    sol = h.getSolution()
    info = h.getInfo()
    x = np.asarray(sol.col_value) if status == OPTIMAL else np.full(n, np.nan)
    dual = np.asarray(sol.row_dual) if status == OPTIMAL and sol.dual_valid else np.full(m, np.nan)
    iters = int(max(info.simplex_iteration_count, info.qp_iteration_count, info.ipm_iteration_count, 0))
    return Solution(status, x, dual, float(info.objective_function_value) if status == OPTIMAL else float("nan"), dt, iters)


def _add_violated_rows(h: highspy.Highs, a: sp.spmatrix, lo: np.ndarray, hi: np.ndarray, tol: float) -> None:
    """Adds the lazy rows the current solution violates and re-solves, until none is violated."""
    a = sp.csr_matrix(a)
    pending = np.ones(a.shape[0], dtype=bool)
    while h.getModelStatus() == highspy.HighsModelStatus.kOptimal and pending.any():
        ax = a @ np.asarray(h.getSolution().col_value)
        add = np.flatnonzero(pending & ((ax < lo - tol) | (ax > hi + tol)))
        if not len(add):
            return
        pending[add] = False
        rows = a[add]
        h.addRows(len(add), _finite(lo[add]), _finite(hi[add]), rows.nnz, rows.indptr[:-1].astype(np.int32),
                  rows.indices.astype(np.int32), rows.data)
        h.setOptionValue("solver", "simplex")  # dual simplex restarts from the last basis; interior point cannot
        h.run()
