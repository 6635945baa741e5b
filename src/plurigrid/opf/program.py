"""A small builder for sparse LP/QP/MILP models: blocks of variables, rows from index arrays.

Formulations over many periods and elements are written as whole-array operations: a variable
block is an array of column numbers shaped like the quantity it stands for (periods x elements),
and a constraint is added from equally shaped arrays of rows, columns and coefficients. HiGHS
(via `opf.highs`) solves the assembled model.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from plurigrid.opf import highs


class Program:
    """Minimise `cost'x + 1/2 x'Qx (+ constant)` subject to row and column bounds."""

    def __init__(self) -> None:
        self.n_cols = 0
        self.n_rows = 0
        self._col: dict[str, list[np.ndarray]] = {k: [] for k in ("lo", "hi", "cost", "quad", "int")}
        self._row_lo: list[np.ndarray] = []
        self._row_hi: list[np.ndarray] = []
        self._a: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._lazy: list[tuple[np.ndarray, np.ndarray, tuple]] = []
        self.constant = 0.0

    def var(self, shape: int | tuple[int, ...], lo=0.0, hi=np.inf, cost=0.0, quad=0.0, integer: bool = False) -> np.ndarray:
        """A block of variables; bounds and costs broadcast to `shape`. Returns the column numbers."""
        cols = np.arange(self.n_cols, self.n_cols + int(np.prod(shape))).reshape(shape)
        self.n_cols += cols.size
        for key, value in (("lo", lo), ("hi", hi), ("cost", cost), ("quad", quad), ("int", integer)):
            self._col[key].append(np.broadcast_to(np.asarray(value, dtype=float), cols.shape).ravel())
        return cols

    def rows(self, lo, hi, shape: int | tuple[int, ...]) -> np.ndarray:
        """A block of constraint rows `lo <= (terms added later) <= hi`. Returns the row numbers."""
        rows = np.arange(self.n_rows, self.n_rows + int(np.prod(shape))).reshape(shape)
        self.n_rows += rows.size
        self._row_lo.append(np.broadcast_to(np.asarray(lo, dtype=float), rows.shape).ravel())
        self._row_hi.append(np.broadcast_to(np.asarray(hi, dtype=float), rows.shape).ravel())
        return rows

    def add(self, rows: np.ndarray, cols: np.ndarray, coef=1.0) -> None:
        """Adds coefficient(s) `coef` at (rows, cols); the three broadcast against each other."""
        r, c, v = np.broadcast_arrays(rows, cols, np.asarray(coef, dtype=float))
        keep = c >= 0  # column -1 means "no variable here"
        self._a.append((r[keep].ravel(), c[keep].ravel(), v[keep].ravel()))

    def constrain(self, lo, hi, *terms: tuple[np.ndarray, object]) -> np.ndarray:
        """Rows `lo <= sum(coef * x[cols]) <= hi`, one per element of the (broadcast) term shapes."""
        shape = np.broadcast_shapes(*(np.shape(c) for c, _ in terms), np.shape(lo), np.shape(hi))
        rows = self.rows(lo, hi, shape)
        for cols, coef in terms:
            self.add(rows, cols, coef)
        return rows

    def constrain_lazily(self, lo, hi, *terms: tuple[np.ndarray, object]) -> None:
        """Like `constrain`, for rows that rarely bind: HiGHS gets only those a solution violates."""
        shape = np.broadcast_shapes(*(np.shape(c) for c, _ in terms), np.shape(lo), np.shape(hi))
        self._lazy.append((np.broadcast_to(np.asarray(lo, float), shape).ravel(),
                           np.broadcast_to(np.asarray(hi, float), shape).ravel(), (shape, terms)))

    def _lazy_rows(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray] | None:
        if not self._lazy:
            return None
        blocks, lo, hi, offset = [], [], [], 0
        for row_lo, row_hi, (shape, terms) in self._lazy:
            rows = np.arange(offset, offset + int(np.prod(shape))).reshape(shape)
            offset += rows.size
            for cols, coef in terms:
                r, c, v = np.broadcast_arrays(rows, cols, np.asarray(coef, dtype=float))
                keep = c >= 0
                blocks.append((r[keep].ravel(), c[keep].ravel(), v[keep].ravel()))
            lo.append(row_lo)
            hi.append(row_hi)
        r, c, v = (np.concatenate(x) for x in zip(*blocks))
        return sp.csr_matrix((v, (r, c)), shape=(offset, self.n_cols)), np.concatenate(lo), np.concatenate(hi)

    def column_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self._col["lo"]), np.concatenate(self._col["hi"])

    def matrix(self) -> sp.csr_matrix:
        r, c, v = (np.concatenate(x) for x in zip(*self._a)) if self._a else (np.zeros(0, int),) * 2 + (np.zeros(0),)
        return sp.csr_matrix((v, (r, c)), shape=(self.n_rows, self.n_cols))

    def solve(self, *, relax_integers: bool = False, fixed: tuple[np.ndarray, np.ndarray] | None = None,
              **options) -> highs.Solution:
        """Solves the model; `fixed=(cols, values)` pins columns (e.g. commitment, to price the LP)."""
        lo, hi = self.column_bounds()
        if fixed is not None:
            lo, hi = lo.copy(), hi.copy()
            lo[fixed[0]] = hi[fixed[0]] = fixed[1]
        quad = np.concatenate(self._col["quad"])
        integer = None if relax_integers else np.concatenate(self._col["int"]).astype(bool)
        sol = highs.solve(np.concatenate(self._col["cost"]), self.matrix(), np.concatenate(self._row_lo),
                          np.concatenate(self._row_hi), lo, hi, sp.diags(quad) if quad.any() else None, integer,
                          lazy=self._lazy_rows(), **options)
        sol.objective += self.constant
        return sol
