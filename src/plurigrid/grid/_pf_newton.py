"""Polar Newton-Raphson power flow (MATPOWER formulation) with voltage-dependent loads and an optional line search.

Unknowns: angles of PV+PQ buses, magnitudes of PQ buses. The injection at a bus is
``s_const - s_i |V| - s_z |V|^2`` (pandapower's ZIP load model; ``s_i = s_z = 0`` for constant
power). dS/dVa and dS/dVm are evaluated for every Ybus non-zero plus the diagonal and scattered
into the 2x2 block Jacobian with index arrays fixed at construction (COO -> CSC sums duplicates).

The line search (backtracking on the squared mismatch norm, Armijo rule) is for hard starts: a
full Newton step from a poor starting point can overshoot into a region with no solution, where a
shortened step keeps the mismatch falling until the quadratic convergence sets in.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["Injections", "NewtonSolver"]

# Newton gives up early past these: no operating point has |V| = 10 p.u., and a mismatch a million
# times the starting one means the iteration has left the region where it converges.
_MAX_VM_PU = 10.0
_MAX_ERR_GROWTH = 1e6
# Line search: halve the step at most this many times; accept when the squared mismatch norm falls
# by at least this fraction of the decrease the linearisation predicts.
_MAX_HALVINGS = 12
_ARMIJO = 1e-4


class Injections(NamedTuple):
    """Scheduled injections per internal bus in p.u.: ``const - current |V| - impedance |V|^2``.

    ``current`` and ``impedance`` (pandapower's const_i / const_z load shares) are None for
    constant power.
    """

    const: np.ndarray
    current: np.ndarray | None = None
    impedance: np.ndarray | None = None

    def at(self, v: np.ndarray, buses: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The injection at ``buses`` for the voltages ``v`` (all buses)."""
        if self.current is None or self.impedance is None:
            return self.const[buses]
        vm = np.abs(v[buses])
        return self.const[buses] - self.current[buses] * vm - self.impedance[buses] * vm * vm

    def d_dvm(self, v: np.ndarray) -> np.ndarray | None:
        """d(injection)/d|V| per bus (minus), or None for constant power."""
        if self.current is None or self.impedance is None:
            return None
        return self.current + 2.0 * self.impedance * np.abs(v)


class NewtonSolver:
    """Newton-Raphson for one assignment of bus types (PV, PQ); the reference buses are the rest."""

    def __init__(self, ybus: sp.csr_matrix, pv: np.ndarray, pq: np.ndarray) -> None:
        n = ybus.shape[0]
        coo = ybus.tocoo()
        self._ybus = ybus
        self._r = coo.row.astype(np.int64)
        self._c = coo.col.astype(np.int64)
        self._y = coo.data.astype(np.complex128)
        self._pvpq = np.r_[pv, pq].astype(np.int64)
        self._pq = np.asarray(pq, dtype=np.int64)
        n_a, n_m = self._pvpq.size, self._pq.size
        self._n_a = n_a
        self._dim = n_a + n_m
        pos_a = np.full(n, -1, dtype=np.int64)
        pos_a[self._pvpq] = np.arange(n_a)
        pos_m = np.full(n, -1, dtype=np.int64)
        pos_m[self._pq] = np.arange(n_m)
        er = np.r_[self._r, np.arange(n)]
        ec = np.r_[self._c, np.arange(n)]
        a_r, a_c, m_r, m_c = pos_a[er], pos_a[ec], pos_m[er], pos_m[ec]
        self._s11 = np.flatnonzero((a_r >= 0) & (a_c >= 0))  # dP/dVa
        self._s12 = np.flatnonzero((a_r >= 0) & (m_c >= 0))  # dP/dVm
        self._s21 = np.flatnonzero((m_r >= 0) & (a_c >= 0))  # dQ/dVa
        self._s22 = np.flatnonzero((m_r >= 0) & (m_c >= 0))  # dQ/dVm
        rows = np.r_[a_r[self._s11], a_r[self._s12], n_a + m_r[self._s21], n_a + m_r[self._s22]]
        cols = np.r_[a_c[self._s11], n_a + m_c[self._s12], a_c[self._s21], n_a + m_c[self._s22]]
        # the Jacobian's CSC structure is fixed: each entry's slot in it, duplicates summed by bincount
        slots, self._slot = np.unique(cols * self._dim + rows, return_inverse=True)
        self._j_indices = (slots % self._dim).astype(np.int32)
        self._j_indptr = np.searchsorted(slots // self._dim, np.arange(self._dim + 1)).astype(np.int32)

    def _mismatch(self, v: np.ndarray, s: Injections) -> tuple[np.ndarray, np.ndarray]:
        i_bus = self._ybus @ v
        mis = v * np.conj(i_bus) - s.at(v)
        return np.r_[mis[self._pvpq].real, mis[self._pq].imag], i_bus

    def _jacobian(self, v: np.ndarray, i_bus: np.ndarray, s: Injections) -> sp.csc_matrix:
        r, c, y = self._r, self._c, self._y
        v_unit = v / np.abs(v)
        d_va = np.r_[-1j * v[r] * np.conj(y * v[c]), 1j * v * np.conj(i_bus)]
        diag_vm = np.conj(i_bus) * v_unit
        d_load = s.d_dvm(v)
        if d_load is not None:  # voltage-dependent loads: their derivative on the diagonal
            diag_vm = diag_vm + d_load
        d_vm = np.r_[v[r] * np.conj(y * v_unit[c]), diag_vm]
        data = np.r_[d_va[self._s11].real, d_vm[self._s12].real, d_va[self._s21].imag, d_vm[self._s22].imag]
        values = np.bincount(self._slot, weights=data, minlength=self._j_indices.size)
        return sp.csc_matrix((values, self._j_indices, self._j_indptr), shape=(self._dim, self._dim))

    def _plausible(self, err: float, err0: float, vm: np.ndarray) -> bool:
        """False once the iteration has clearly diverged, to fail fast instead of burning ``max_iter``
        Jacobian factorisations: non-finite state, |V| above ``_MAX_VM_PU`` or a mismatch
        ``_MAX_ERR_GROWTH`` times the initial one."""
        return (
            np.isfinite(err)
            and err <= _MAX_ERR_GROWTH * max(err0, 1.0)
            and float(np.max(vm[self._pq], initial=0.0)) <= _MAX_VM_PU
        )

    # mypy cannot see that the loop's last pass (it == max_iter) always returns
    def solve(self, s: Injections, v0: np.ndarray, tol: float, max_iter: int,  # type: ignore[return]
              *, line_search: bool = False) -> tuple[np.ndarray, int, bool, float]:
        """Newton iterations from ``v0`` for injections ``s``. Returns (V, iterations, converged,
        largest mismatch). Never raises."""
        v = np.array(v0, dtype=np.complex128)
        vm, va = np.abs(v), np.angle(v)
        n_a = self._n_a
        with np.errstate(all="ignore"):
            f, i_bus = self._mismatch(v, s)
            err0 = float(np.max(np.abs(f), initial=0.0))
            for it in range(max_iter + 1):
                err = float(np.max(np.abs(f), initial=0.0))
                if err <= tol:
                    return v, it, True, err
                if it == max_iter or not self._plausible(err, err0, vm):
                    return v, it, False, err
                try:
                    # the Jacobian is structurally symmetric: a minimum-degree ordering of J + J^T fills least
                    lu = spla.splu(self._jacobian(v, i_bus, s), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.1)
                    dx = lu.solve(-f)
                except (RuntimeError, ValueError):  # singular or non-finite Jacobian
                    return v, it, False, err
                if not np.isfinite(dx).all():
                    return v, it, False, err
                step = 1.0
                norm2 = float(f @ f)
                for _ in range(_MAX_HALVINGS + 1):
                    va_new, vm_new = va.copy(), vm.copy()
                    va_new[self._pvpq] += step * dx[:n_a]
                    vm_new[self._pq] += step * dx[n_a:]
                    v_new = vm_new * np.exp(1j * va_new)
                    f_new, i_new = self._mismatch(v_new, s)
                    # the Newton direction predicts d|f|^2 = -2 |f|^2 step
                    if not line_search or float(f_new @ f_new) <= (1.0 - 2.0 * _ARMIJO * step) * norm2:
                        break
                    step *= 0.5
                else:
                    return v, it, False, err  # no step length lowers the mismatch: a stationary point
                va, vm, v, f, i_bus = va_new, vm_new, v_new, f_new, i_new
