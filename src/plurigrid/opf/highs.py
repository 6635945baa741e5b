"""One call from scipy.sparse matrices to HiGHS for LP, convex QP and MILP, retried before it fails.

highspy's modelling layer is linear-only; quadratic objectives go through the Hessian API, so
every formulation builds `min c'x + 1/2 x'Qx  s.t.  row_lo <= A x <= row_hi, col_lo <= x <= col_hi`
and calls `solve`. Row duals are HiGHS's: the change of the objective per unit increase of the
active row bound (so a balance row `sum(injections) = demand` has dual = marginal cost of demand);
column duals are reduced costs, the change of the objective per unit increase of an active bound.

HiGHS sometimes ends a solvable model with a solve error (about 2 % of randomly perturbed
DC-OPFs of pandapower's case118: its active-set QP solver claims an optimum that violates a
balance row by 1e-4). A solve error is therefore never the answer: `solve` walks a fixed ladder
of attempts (`LP_LADDER`, `QP_LADDER`, `MIP_LADDER`), each with fixed options and no time limit,
so the same model always takes the same path, and a convex QP that HiGHS cannot solve at all goes
to an interior-point solver (`opf.interior`). `Solution.attempts` says what was tried and which
attempt gave the answer.
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
Options = Mapping[str, bool | int | float | str]

_STATUS = {
    highspy.HighsModelStatus.kOptimal: OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: UNBOUNDED,
}
# presolve may stop at "unbounded or infeasible": an answer only if no later attempt is sharper
_AMBIGUOUS = highspy.HighsModelStatus.kUnboundedOrInfeasible
# A MILP stopped by a deterministic work limit (mip_max_nodes, ...) with a feasible point: that point.
WORK_LIMIT = "work limit"
_LIMITS = {highspy.HighsModelStatus.kSolutionLimit, highspy.HighsModelStatus.kIterationLimit}


@dataclass(frozen=True)
class Attempt:
    """One deterministic way to run HiGHS: a name for reports and the options that define it."""

    name: str
    options: Options


# Options that choose the algorithm; the caller's others (tolerances, gaps) hold in every attempt.
STRATEGY_KEYS = frozenset({"solver", "simplex_strategy", "presolve", "run_crossover"})
LP_LADDER = (
    Attempt("dual simplex", {"solver": "simplex", "simplex_strategy": 1}),
    Attempt("primal simplex", {"solver": "simplex", "simplex_strategy": 4}),
    Attempt("interior point with crossover", {"solver": "ipm", "run_crossover": "on"}),
    Attempt("dual simplex without presolve", {"solver": "simplex", "simplex_strategy": 1, "presolve": "off"}),
)
QP_LADDER = (
    Attempt("active-set QP", {}),
    Attempt("active-set QP without presolve", {"presolve": "off"}),
)
MIP_LADDER = (
    Attempt("branch and cut", {}),
    Attempt("branch and cut without presolve", {"presolve": "off"}),
)
INTERIOR_QP = "interior point (IPOPT)"


@dataclass
class Solution:
    status: str
    x: np.ndarray
    row_dual: np.ndarray
    objective: float  # c'x + 1/2 x'Qx, without constants
    solve_time_s: float
    iterations: int
    col_dual: np.ndarray | None = None  # reduced costs (NaN where the solver gives none)
    lazy_added: np.ndarray | None = None  # lazy rows in the model, in the order their duals follow the base rows
    attempts: tuple[str, ...] = ()  # "name: status" of every attempt, the last one gave this solution


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


@dataclass
class _Model:
    """The arrays of one model, as `solve` received them (bounds as floats, matrix in CSC)."""

    c: np.ndarray
    a: sp.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    q: sp.spmatrix | None
    integer: np.ndarray | None
    lazy: tuple[sp.csr_matrix, np.ndarray, np.ndarray] | None

    def highs_lp(self) -> highspy.HighsLp:
        n, m = len(self.c), self.a.shape[0]
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = self.c
        lp.col_lower_, lp.col_upper_ = _finite(self.col_lo), _finite(self.col_hi)
        lp.row_lower_, lp.row_upper_ = _finite(self.row_lo), _finite(self.row_hi)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = self.a.indptr, self.a.indices, self.a.data
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, m
        if self.integer is not None:
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in self.integer]
        return lp


def ladder(options: Options | None, *, quadratic: bool, integer: bool) -> list[Attempt]:
    """The attempts `solve` makes, in order: the caller's choice first, then the rest of the ladder.

    An LP starts with the caller's algorithm (named after the ladder's step it is part of, if any); a
    QP or MILP starts with the ladder's first step under the caller's options, since HiGHS has one
    algorithm for each. Caller options outside STRATEGY_KEYS (tolerances, say) hold in every attempt.
    """
    options = dict(options or {})
    base = {k: v for k, v in options.items() if k not in STRATEGY_KEYS}
    if integer or quadratic:
        steps = MIP_LADDER if integer else QP_LADDER
        return [Attempt(steps[0].name, options)] + [Attempt(a.name, {**base, **a.options}) for a in steps[1:]]
    chosen = {k: v for k, v in options.items() if k in STRATEGY_KEYS}
    first = next((a for a in LP_LADDER if chosen and chosen.items() <= a.options.items()), None)
    attempts = [Attempt(first.name if first else _describe(chosen), options)]
    return attempts + [Attempt(a.name, {**base, **a.options}) for a in LP_LADDER if a is not first]


def _describe(chosen: Options) -> str:
    return "highs " + (", ".join(f"{k}={chosen[k]}" for k in sorted(chosen)) or "defaults")


def solve(c: np.ndarray, a: sp.spmatrix, row_lo: np.ndarray, row_hi: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
          q: sp.spmatrix | None = None, integer: np.ndarray | None = None, *, mip_rel_gap: float = 1e-6,
          threads: int = 1, lazy: tuple[sp.spmatrix, np.ndarray, np.ndarray] | None = None, lazy_tol: float = 1e-9,
          options: Options | None = None, start: np.ndarray | None = None) -> Solution:
    """Solves the problem; `q` is the (symmetric, positive semidefinite) Hessian, `integer` a bool mask.

    `lazy = (A, lo, hi)` are rows that rarely bind (branch limits of a transmission grid): they
    are left out, and those the solution violates are added and the model re-solved from the
    previous basis until none is violated. The optimum is the same; `row_dual` then covers the
    base rows followed by the added ones (`lazy_added` says which). One thread by default: results
    are then reproducible bit for bit, and small models do not gain from more. `options` are
    further HiGHS options for the first attempt; a solve error moves on to the next (see `ladder`).
    `start` is a feasible point to begin from (a MILP's first incumbent). A MILP that reaches a
    work limit set in `options` (`mip_max_nodes`, say) returns its best point with status WORK_LIMIT.
    """
    csc = sp.csc_matrix(a)
    csc.sort_indices()
    is_int = integer is not None and bool(integer.any())
    model = _Model(np.asarray(c, float), csc, np.asarray(row_lo, float), np.asarray(row_hi, float),
                   np.asarray(col_lo, float), np.asarray(col_hi, float), q if q is not None and q.nnz else None,
                   integer if is_int else None, None if lazy is None else (sp.csr_matrix(lazy[0]), lazy[1], lazy[2]))
    common = {"threads": threads, "mip_rel_gap": mip_rel_gap}
    tried: list[str] = []
    spent = 0.0
    fallback: Solution | None = None
    for attempt in ladder(options, quadratic=model.q is not None, integer=is_int):
        sol, ambiguous = _run(model, {**common, **attempt.options}, lazy_tol, start)
        spent += sol.solve_time_s
        tried.append(f"{attempt.name}: {'infeasible or unbounded' if ambiguous else sol.status}")
        sol.solve_time_s, sol.attempts = spent, tuple(tried)
        if sol.status != FAILED and not ambiguous:
            return sol
        fallback = fallback or (sol if ambiguous else None)
    if model.q is not None and not is_int:
        from plurigrid.opf.interior import solve_qp

        sol = solve_qp(model.c, model.a, model.row_lo, model.row_hi, model.col_lo, model.col_hi, model.q, model.lazy)
        tried.append(f"{INTERIOR_QP}: {sol.status}")
        sol.solve_time_s, sol.attempts = spent + sol.solve_time_s, tuple(tried)
        if sol.status != FAILED:
            return sol
    if fallback is not None:
        fallback.attempts = tuple(tried)
        return fallback
    return sol


def _run(model: _Model, options: Options, lazy_tol: float, start: np.ndarray | None) -> tuple[Solution, bool]:
    """One attempt: a fresh HiGHS instance with `options`, lazy rows added as they are violated."""
    n, m = len(model.c), model.a.shape[0]
    h = new_highs()
    for key, value in options.items():
        h.setOptionValue(key, value)
    h.passModel(model.highs_lp())
    if model.q is not None:
        low = sp.csc_matrix(sp.tril(model.q))
        low.sort_indices()
        # highspy's stubs type `format` as a plain int; HiGHS takes the HessianFormat member
        h.passHessian(n, low.nnz, highspy.HessianFormat.kTriangular, low.indptr, low.indices, low.data)  # type: ignore[call-overload]
    if start is not None:
        point = highspy.HighsSolution()
        point.col_value, point.value_valid = list(map(float, start)), True
        h.setSolution(point)
    t0 = time.perf_counter()
    h.run()
    added = np.zeros(0, dtype=np.int64)
    if model.lazy is not None:
        added = _add_violated_rows(h, *model.lazy, lazy_tol, interior=options.get("solver") == "ipm")
    dt = time.perf_counter() - t0
    raw = h.getModelStatus()
    status = _STATUS.get(raw, INFEASIBLE if raw == _AMBIGUOUS else FAILED)
    sol = h.getSolution()
    info = h.getInfo()
    if raw in _LIMITS and model.integer is not None and info.primal_solution_status == 2:  # 2: a feasible point
        status = WORK_LIMIT
    ok = status in (OPTIMAL, WORK_LIMIT)
    x = np.asarray(sol.col_value) if ok else np.full(n, np.nan)
    duals = status == OPTIMAL and sol.dual_valid
    row_dual = np.asarray(sol.row_dual) if duals else np.full(m + len(added), np.nan)
    col_dual = np.asarray(sol.col_dual) if duals else np.full(n, np.nan)
    iters = int(max(info.simplex_iteration_count, info.qp_iteration_count, info.ipm_iteration_count, 0))
    objective = float(info.objective_function_value) if ok else float("nan")
    return Solution(status, x, row_dual, objective, dt, iters, col_dual, added), raw == _AMBIGUOUS


def _add_violated_rows(h: highspy.Highs, a: sp.csr_matrix, lo: np.ndarray, hi: np.ndarray, tol: float, *,
                       interior: bool) -> np.ndarray:
    """Adds the lazy rows the current solution violates and re-solves, until none is violated.

    Re-solves use the simplex method, which restarts from the last basis, unless the attempt is
    the interior-point one (which then solves each enlarged model afresh). Returns the added rows.
    """
    pending = np.ones(a.shape[0], dtype=bool)
    added: list[np.ndarray] = []
    if not interior:
        h.setOptionValue("solver", "simplex")
    while h.getModelStatus() == highspy.HighsModelStatus.kOptimal and pending.any():
        ax = a @ np.asarray(h.getSolution().col_value)
        add = np.flatnonzero(pending & ((ax < lo - tol) | (ax > hi + tol)))
        if not len(add):
            break
        pending[add] = False
        added.append(add)
        rows = a[add]
        h.addRows(len(add), _finite(lo[add]), _finite(hi[add]), rows.nnz, rows.indptr[:-1].astype(np.int32),
                  rows.indices.astype(np.int32), rows.data)
        h.run()
    return np.concatenate(added) if added else np.zeros(0, dtype=np.int64)
