"""Fast repeated AC power flow on a fixed pandapower topology.

The simulator solves one AC power flow per market interval on a grid whose topology does not
change between intervals; only the per-bus net injections do. ``pandapower.runpp`` rebuilds its
whole internal model on every call (~150 ms on a 9,000-bus SimBench grid), so this module lets
pandapower build that model *once* and then re-solves it many times:

* **Topology comes from pandapower.** ``FastPowerFlow.__init__`` runs pandapower's own
  ``_pd2ppc`` conversion on a private copy of the net, so bus fusion through closed bus-bus
  switches, open line/trafo switches, out-of-service elements and isolated islands are handled
  exactly as ``runpp`` handles them. It caches Ybus/Yf/Yt, the pandapower-bus -> internal-bus
  lookup, the REF/PV/PQ sets and the rating data needed for line/trafo loading.
* **Z-bus fixed point for PQ-only grids.** ``V_L = w + Y_LL^-1 conj(S_L / V_L)`` with
  ``w = -Y_LL^-1 Y_Ls V_s``; ``Y_LL`` is LU-factorised once (SuperLU) and each iteration is one
  forward/backward substitution, run in a numba kernel (SuperLU's own ``solve`` costs ~1 ms per
  call on a 9k-bus grid, the kernel ~0.1 ms). Solves are warm-started from the last converged
  voltages.
* **Newton-Raphson fallback.** Grids with PV buses, and PQ grids where the Z-bus iteration does
  not converge within ``zbus_max_iter`` iterations, are solved by a vectorised polar
  Newton-Raphson with a sparse Jacobian whose sparsity pattern is precomputed.

Conventions: ``p_mw``/``q_mvar`` are net injections (generation positive) per ``net.bus`` row
position; they *replace* every constant-power element of the net (load, sgen, gen P, storage,
motor, ward/xward PQ parts, ...). Admittance parts (line charging, shunts, ward/xward impedances,
trafo magnetising, taps, phase shifts) stay as pandapower models them. Reactive-power limits of
PV generators are **not** enforced (their Q is free), so results match
``runpp(enforce_q_lims=False)``; injections given for non-energised buses are ignored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["FastPowerFlow", "PowerFlowResult"]

_SQRT3 = float(np.sqrt(3.0))
# A mismatch that grows this many times in a row means the Z-bus fixed point is not contracting.
_ZBUS_MAX_GROWTH_STREAK = 2


@dataclass(frozen=True)
class PowerFlowResult:
    """Outcome of one AC power flow.

    Arrays are aligned with the row positions of ``net.bus`` / ``net.line`` / ``net.trafo`` of the
    net the solver was built from. When ``converged`` is False every array is NaN and the scalar
    results are NaN: a non-converged state is not a physical operating point and must not be used.
    """

    converged: bool
    iterations: int
    vm_pu: np.ndarray
    """Voltage magnitude per ``net.bus`` row; NaN for buses that are out of service/not energised."""
    va_degree: np.ndarray
    """Voltage angle per ``net.bus`` row (degrees); NaN where ``vm_pu`` is NaN."""
    line_loading_pct: np.ndarray
    """Per ``net.line`` row, as pandapower ``res_line.loading_percent``: max current of both ends
    over ``max_i_ka * df * parallel``; 0 for out-of-service lines between energised buses, NaN if
    an end bus is not energised."""
    trafo_loading_pct: np.ndarray
    """Per ``net.trafo`` row, as pandapower ``res_trafo.loading_percent`` with
    ``trafo_loading='current'``: ``max_end(i_ka * vn_end_kv * sqrt3) / (sn_mva * parallel * df)``."""
    slack_p_mw: float
    """Active power delivered into the network by all reference buses (ext_grid and slack gens),
    net of the scheduled injections ``p_mw`` given at those buses."""
    slack_q_mvar: float
    """Reactive counterpart of ``slack_p_mw``."""
    losses_mw: float
    """Sum of all injections incl. slack = series branch losses + shunt/magnetising consumption."""


class FastPowerFlow:
    """Repeated AC power flow on a fixed pandapower topology (see module docstring).

    Build one instance per topology (a line outage or switch change means a new instance), then
    call :meth:`solve` once per interval. ``solve`` never raises on non-convergence and never
    loops unboundedly: at most ``zbus_max_iter`` Z-bus plus ``max_iter`` Newton iterations.

    Determinism: results are a pure function of the net, the options and the sequence of
    ``solve`` calls (warm starts carry the last converged voltages). With ``warm_start=False``
    every solve starts from the no-load voltages, so results depend only on ``(p_mw, q_mvar)``.
    """

    def __init__(
        self,
        net: Any,
        *,
        tol_pu: float = 1e-8,
        max_iter: int = 30,
        zbus_max_iter: int = 30,
        warm_start: bool = True,
    ) -> None:
        """Build the cached admittance model of ``net`` (the caller's net is not modified).

        ``tol_pu`` is the largest accepted complex power mismatch per bus in p.u. of
        ``net.sn_mva`` (pandapower's ``tolerance_mva`` uses the same scale). ``max_iter`` bounds
        the Newton-Raphson iterations, ``zbus_max_iter`` the Z-bus iterations.
        """
        if tol_pu <= 0 or max_iter < 1 or zbus_max_iter < 0:
            raise ValueError("tol_pu must be > 0, max_iter >= 1 and zbus_max_iter >= 0")
        self.tol_pu = float(tol_pu)
        self.max_iter = int(max_iter)
        self.zbus_max_iter = int(zbus_max_iter)
        self.warm_start = bool(warm_start)

        model = _InternalModel.from_net(net)
        self._model = model
        self.n_bus = model.n_pp_bus
        self.n_line = model.line_ppci_rows.shape[0]
        self.n_trafo = model.trafo_ppci_rows.shape[0]

        n = model.n_int
        self._ref = model.ref
        self._pv = model.pv
        self._pq = model.pq
        self._non_ref = np.sort(np.r_[model.pv, model.pq]).astype(np.int64)
        self._v_set = model.v_set  # complex setpoints; meaningful at ref (|V|, angle) and pv (|V|)

        ybus = model.ybus
        self._y_ref_rows = ybus[self._ref, :].tocsr()
        self._ybus = ybus
        self._zbus: _ZbusSolver | None = None
        # Cold start. The no-load voltages (all non-reference buses at zero injection) carry the
        # angles of phase-shifting transformers (e.g. 150 deg Dyn5 in SimBench), which a flat start
        # would miss. Z-bus starts from them directly; Newton starts from their angles with flat
        # magnitudes (|V| = 1 at PQ, setpoints at PV/ref), because at no load with PV buses left
        # unregulated strongly capacitive grids can show resonant magnitudes far from 1.
        v_no_load = np.array(self._v_set, dtype=np.complex128)
        if self._non_ref.size:
            self._zbus = _ZbusSolver(ybus, self._non_ref, self._ref, self._v_set[self._ref])
            v_no_load[self._non_ref] = self._zbus.v_no_load
        mag = np.ones(n)
        fixed = np.r_[self._ref, self._pv].astype(np.int64)
        mag[fixed] = np.abs(self._v_set[fixed])
        self._v_cold = v_no_load if self._pv.size == 0 else mag * np.exp(1j * np.angle(v_no_load))
        self._newton = _NewtonSolver(ybus, self._pv, self._pq) if self._non_ref.size else None
        self._v_warm: np.ndarray | None = None

    # ------------------------------------------------------------------ public API
    @property
    def n_internal_buses(self) -> int:
        """Number of energised internal (fused) buses the solver works on."""
        return self._model.n_int

    def reset(self) -> None:
        """Forget the warm start: the next solve starts from the no-load voltages."""
        self._v_warm = None

    def solve(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> PowerFlowResult:
        """Solve the AC power flow for net injections per ``net.bus`` row (generation > 0).

        Injections at PV buses fix P only (Q is free); injections at reference buses only shift
        the reported slack power. Returns ``converged=False`` (all-NaN arrays) instead of raising
        when the power flow has no solution or the solver fails; the warm start is kept from the
        last converged solve.
        """
        p = np.asarray(p_mw, dtype=np.float64).reshape(-1)
        q = np.asarray(q_mvar, dtype=np.float64).reshape(-1)
        if p.shape != (self.n_bus,) or q.shape != (self.n_bus,):
            raise ValueError(
                f"p_mw and q_mvar must have one entry per net.bus row ({self.n_bus}), "
                f"got {p.shape} and {q.shape}"
            )
        if not (np.isfinite(p).all() and np.isfinite(q).all()):
            return self._failed(0)

        m = self._model
        s_pu = m.aggregate(p, q)
        v0 = self._v_warm if (self.warm_start and self._v_warm is not None) else self._v_cold

        iterations = 0
        v: np.ndarray | None = None
        if self._non_ref.size == 0:
            v, ok = v0.copy(), True
        else:
            ok = False
            v_start = v0
            if self._pv.size == 0 and self._zbus is not None and self.zbus_max_iter > 0:
                v_l, it, ok, improved = self._zbus.iterate(
                    s_pu[self._non_ref], v0[self._non_ref], self.tol_pu, self.zbus_max_iter
                )
                iterations += it
                if ok or improved:
                    v = v0.copy()
                    v[self._non_ref] = v_l
                    v_start = v
            if not ok:
                assert self._newton is not None
                v, it, ok = self._newton.solve(s_pu, v_start, self.tol_pu, self.max_iter)
                iterations += it
        if not ok or v is None or not np.isfinite(v).all():
            return self._failed(iterations)
        if self.warm_start:
            self._v_warm = v
        return self._result(v, s_pu, p, iterations)

    # ------------------------------------------------------------------ internals
    def _failed(self, iterations: int) -> PowerFlowResult:
        nan = float("nan")
        return PowerFlowResult(
            converged=False,
            iterations=int(iterations),
            vm_pu=_frozen(np.full(self.n_bus, np.nan)),
            va_degree=_frozen(np.full(self.n_bus, np.nan)),
            line_loading_pct=_frozen(np.full(self.n_line, np.nan)),
            trafo_loading_pct=_frozen(np.full(self.n_trafo, np.nan)),
            slack_p_mw=nan,
            slack_q_mvar=nan,
            losses_mw=nan,
        )

    def _result(self, v: np.ndarray, s_pu: np.ndarray, p_mw: np.ndarray, iterations: int) -> PowerFlowResult:
        m = self._model
        vm = np.full(self.n_bus, np.nan)
        va = np.full(self.n_bus, np.nan)
        v_pp = v[m.bus_int_of_energised]
        vm[m.energised_pos] = np.abs(v_pp)
        va[m.energised_pos] = np.angle(v_pp, deg=True)

        # branch current magnitudes in p.u.; |S_end| / |V_end| == |I_end|
        i_from = np.abs(m.yf_sel @ v)
        i_to = np.abs(m.yt_sel @ v)
        line_loading = m.branch_loading(i_from, i_to, "line")
        trafo_loading = m.branch_loading(i_from, i_to, "trafo")

        ref = self._ref
        s_ref = v[ref] * np.conj(self._y_ref_rows @ v) - s_pu[ref]
        slack = complex(np.sum(s_ref)) * m.base_mva
        losses = float(np.sum(p_mw[m.energised_pos])) + slack.real
        return PowerFlowResult(
            converged=True,
            iterations=int(iterations),
            vm_pu=_frozen(vm),
            va_degree=_frozen(va),
            line_loading_pct=_frozen(line_loading),
            trafo_loading_pct=_frozen(trafo_loading),
            slack_p_mw=float(slack.real),
            slack_q_mvar=float(slack.imag),
            losses_mw=float(losses),
        )


def _frozen(a: np.ndarray) -> np.ndarray:
    """Mark a result array read-only so a shared result cannot be mutated by a consumer."""
    a.flags.writeable = False
    return a


# ====================================================================== pandapower model cache
class _InternalModel:
    """What ``FastPowerFlow`` needs from pandapower's internal (ppci) model, as plain arrays."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    n_pp_bus: int
    n_int: int
    base_mva: float
    ybus: sp.csr_matrix
    ref: np.ndarray
    pv: np.ndarray
    pq: np.ndarray
    v_set: np.ndarray
    energised_pos: np.ndarray
    bus_int_of_energised: np.ndarray
    agg: sp.csr_matrix
    yf_sel: sp.csr_matrix
    yt_sel: sp.csr_matrix
    line_ppci_rows: np.ndarray
    trafo_ppci_rows: np.ndarray

    @classmethod
    def from_net(cls, net: Any) -> "_InternalModel":
        """Let pandapower convert a private copy of ``net`` and extract the cached arrays."""
        from pandapower.auxiliary import _init_runpp_options
        from pandapower.pd2ppc import _pd2ppc
        from pandapower.pf.ppci_variables import _get_pf_variables_from_ppci
        from pandapower.pypower.idx_brch import F_BUS, T_BUS
        from pandapower.pypower.idx_bus import BASE_KV
        from pandapower.pypower.makeYbus import makeYbus

        _reject_unsupported(net)
        net = copy.deepcopy(net)
        _init_runpp_options(
            net, algorithm="nr", calculate_voltage_angles=True, init="flat", max_iteration="auto",
            tolerance_mva=1e-8, trafo_model="t", trafo_loading="current", enforce_p_lims=False,
            enforce_q_lims=False, check_connectivity=True, voltage_depend_loads=False,
            passed_parameters={}, consider_line_temperature=False, distributed_slack=False,
            tdpf=False,
        )
        empty = np.array([], dtype=np.int64)
        net._pd2ppc_lookups = {"bus": empty, "bus_dc": empty, "ext_grid": empty, "gen": empty,
                               "branch": empty, "branch_dc": empty}
        ppc, ppci = _pd2ppc(net)
        (base_mva, bus, _gen, branch, _svc, _tcsc, _ssc, _vsc, ref, pv, pq,
         _on, _gbus, v0, _ref_gens) = _get_pf_variables_from_ppci(ppci)
        n_int = int(bus.shape[0])
        ybus, yf, yt = makeYbus(base_mva, bus, branch)
        ybus = sp.csr_matrix(ybus)
        ybus.sum_duplicates()
        ybus.sort_indices()

        # pandapower bus rows -> internal buses (several pandapower buses may fuse into one)
        lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
        int_of_row = lookup[net.bus.index.to_numpy(dtype=np.int64)]
        energised = (int_of_row >= 0) & (int_of_row < n_int)
        energised_pos = np.flatnonzero(energised).astype(np.int64)
        bus_int = int_of_row[energised_pos]
        n_pp = len(net.bus)
        agg = sp.csr_matrix(
            (np.ones(energised_pos.size) / base_mva, (bus_int, energised_pos)), shape=(n_int, n_pp)
        )

        # branch rows: ppc rows (all branches) -> ppci rows (in-service branches only)
        branch_is = np.asarray(ppci["internal"]["branch_is"], dtype=bool)
        ppci_row_of_ppc = np.where(branch_is, np.cumsum(branch_is) - 1, -1)
        ppc_from = np.real(ppc["branch"][:, F_BUS]).astype(np.int64)
        ppc_to = np.real(ppc["branch"][:, T_BUS]).astype(np.int64)
        lookups = net._pd2ppc_lookups["branch"]
        base_kv = np.real(bus[:, BASE_KV])

        def rows(element: str, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if element not in lookups or n_rows == 0:
                z = np.zeros(0, dtype=np.int64)
                return z, z.astype(bool), z
            f, t = lookups[element]
            ppc_rows = np.arange(f, t)
            ends_energised = (ppc_from[ppc_rows] < n_int) & (ppc_to[ppc_rows] < n_int)
            return ppci_row_of_ppc[ppc_rows], ends_energised, ppc_rows

        line_rows, line_ends_ok, _ = rows("line", len(net.line))
        trafo_rows, trafo_ends_ok, _ = rows("trafo", len(net.trafo))
        sel = np.r_[line_rows[line_rows >= 0], trafo_rows[trafo_rows >= 0]].astype(np.int64)
        yf_sel = sp.csr_matrix(yf)[sel, :]
        yt_sel = sp.csr_matrix(yt)[sel, :]
        f_bus = np.real(branch[sel, F_BUS]).astype(np.int64)
        t_bus = np.real(branch[sel, T_BUS]).astype(np.int64)
        n_line_is = int((line_rows >= 0).sum())

        # loading% = |I_pu| * factor, per in-service branch end (see PowerFlowResult docs)
        line = net.line
        i_max_ka = (line["max_i_ka"].to_numpy(float) * line["df"].to_numpy(float)
                    * line["parallel"].to_numpy(float))[line_rows >= 0]
        l_f, l_t = f_bus[:n_line_is], t_bus[:n_line_is]
        with np.errstate(divide="ignore", invalid="ignore"):
            line_cf = 100.0 * base_mva / (_SQRT3 * base_kv[l_f] * i_max_ka)
            line_ct = 100.0 * base_mva / (_SQRT3 * base_kv[l_t] * i_max_ka)
        trafo = net.trafo
        tr_is = trafo_rows >= 0
        rating = (trafo["sn_mva"].to_numpy(float) * trafo["parallel"].to_numpy(float)
                  * trafo["df"].to_numpy(float))[tr_is]
        t_f, t_t = f_bus[n_line_is:], t_bus[n_line_is:]
        trafo_cf = 100.0 * base_mva * trafo["vn_hv_kv"].to_numpy(float)[tr_is] / (base_kv[t_f] * rating)
        trafo_ct = 100.0 * base_mva * trafo["vn_lv_kv"].to_numpy(float)[tr_is] / (base_kv[t_t] * rating)

        return cls(
            n_pp_bus=n_pp, n_int=n_int, base_mva=float(base_mva), ybus=ybus,
            ref=np.asarray(ref, dtype=np.int64), pv=np.asarray(pv, dtype=np.int64),
            pq=np.asarray(pq, dtype=np.int64), v_set=np.asarray(v0, dtype=np.complex128),
            energised_pos=energised_pos, bus_int_of_energised=bus_int, agg=agg,
            yf_sel=yf_sel, yt_sel=yt_sel, n_line_is=n_line_is,
            line_ppci_rows=line_rows, line_ends_ok=line_ends_ok, line_cf=line_cf, line_ct=line_ct,
            line_inf=(i_max_ka == 0),
            trafo_ppci_rows=trafo_rows, trafo_ends_ok=trafo_ends_ok,
            trafo_cf=trafo_cf, trafo_ct=trafo_ct,
        )

    def aggregate(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> np.ndarray:
        """Sum per-pandapower-bus injections onto internal buses, in p.u. (complex)."""
        return self.agg @ p_mw + 1j * (self.agg @ q_mvar)

    def branch_loading(self, i_from: np.ndarray, i_to: np.ndarray, element: str) -> np.ndarray:
        """Loading% per element row from in-service branch-end currents (p.u.)."""
        if element == "line":
            rows, ends_ok = self.line_ppci_rows, self.line_ends_ok
            seg = slice(0, self.n_line_is)
            cf, ct = self.line_cf, self.line_ct
        else:
            rows, ends_ok = self.trafo_ppci_rows, self.trafo_ends_ok
            seg = slice(self.n_line_is, None)
            cf, ct = self.trafo_cf, self.trafo_ct
        # out of service: pandapower reports 0 current -> 0 %, NaN if an end bus is dead
        out = np.where(ends_ok, 0.0, np.nan)
        in_service = rows >= 0
        loading = np.maximum(i_from[seg] * cf, i_to[seg] * ct)
        if element == "line" and self.line_inf.any():
            loading[self.line_inf] = np.inf
        out[in_service] = loading
        return out


def _reject_unsupported(net: Any) -> None:
    """Fail fast on elements whose powers are not plain bus injections or that need extra models."""
    for table in ("dcline", "svc", "tcsc", "ssc", "vsc", "vsc_stacked", "line_dc", "b2b_vsc"):
        df = net.get(table) if hasattr(net, "get") else None
        if df is not None and len(df) and ("in_service" not in df or df["in_service"].any()):
            raise NotImplementedError(
                f"FastPowerFlow: net.{table} elements are not supported (use pandapower.runpp)"
            )


# ====================================================================== Z-bus fixed point
class _ZbusSolver:
    """Implicit Z-bus iteration on the non-reference buses with a once-factorised ``Y_LL``."""

    def __init__(self, ybus: sp.csr_matrix, non_ref: np.ndarray, ref: np.ndarray, v_ref: np.ndarray) -> None:
        y_l = ybus[non_ref, :]
        y_ll = y_l[:, non_ref].tocsc()
        y_ls = y_l[:, ref].tocsc()
        rhs0 = -(y_ls @ v_ref)
        lu = self._factorise(y_ll, rhs0)
        # L: unit lower triangular (CSR, diagonal dropped); U: upper (CSR, diagonal split off)
        l_csr = sp.tril(lu.L, k=-1, format="csr")
        u_full = lu.U.tocsr()
        # reciprocal pivots: the substitution multiplies instead of dividing (much faster)
        self._u_diag = np.ascontiguousarray(1.0 / u_full.diagonal().astype(np.complex128))
        u_csr = sp.triu(u_full, k=1, format="csr")
        for m in (l_csr, u_csr):
            m.sort_indices()
        self._l = (l_csr.indptr.astype(np.int64), l_csr.indices.astype(np.int64),
                   l_csr.data.astype(np.complex128))
        self._u = (u_csr.indptr.astype(np.int64), u_csr.indices.astype(np.int64),
                   u_csr.data.astype(np.complex128))
        self._perm_r = lu.perm_r.astype(np.int64)
        self._perm_c = lu.perm_c.astype(np.int64)
        self.v_no_load = self.solve_linear(rhs0)

    @staticmethod
    def _factorise(y_ll: sp.csc_matrix, probe: np.ndarray) -> Any:
        """LU with a fill-reducing symmetric ordering; partial pivoting if that is inaccurate.

        Y_LL is (nearly) complex-symmetric and diagonally dominant for ordinary networks, so
        diagonal pivots with an AT+A minimum-degree ordering give the least fill (fastest
        substitutions). Series capacitors or negative star-point reactances can break that, so a
        probe solve is checked and SuperLU's default threshold pivoting is used as fallback.
        """
        try:
            lu = spla.splu(y_ll, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
            x = lu.solve(probe)
            scale = max(float(np.max(np.abs(probe))), 1.0)
            if np.isfinite(x).all() and np.max(np.abs(y_ll @ x - probe)) <= 1e-9 * scale:
                return lu
        except RuntimeError:
            pass
        return spla.splu(y_ll, permc_spec="COLAMD")

    def solve_linear(self, rhs: np.ndarray) -> np.ndarray:
        """Return ``Y_LL^-1 rhs`` using the cached factors."""
        out = np.empty(rhs.shape[0], dtype=np.complex128)
        _lu_solve(*self._l, *self._u, self._u_diag, self._perm_r, self._perm_c,
                  np.ascontiguousarray(rhs, dtype=np.complex128), out)
        return out

    def iterate(self, s_l: np.ndarray, v_l0: np.ndarray, tol_pu: float, max_iter: int
                ) -> tuple[np.ndarray, int, bool, bool]:
        """Run the fixed point from ``v_l0``; returns (V_L, iterations, converged, improved).

        ``improved`` says the last iterate has a smaller mismatch than the first one, i.e. it is a
        better starting point for Newton-Raphson than ``v_l0``.
        """
        v = np.array(v_l0, dtype=np.complex128)
        it, converged, improved = _zbus_kernel(
            *self._l, *self._u, self._u_diag, self._perm_r, self._perm_c,
            self.v_no_load, np.ascontiguousarray(s_l, dtype=np.complex128), v,
            float(tol_pu), int(max_iter), _ZBUS_MAX_GROWTH_STREAK,
        )
        return v, int(it), bool(converged), bool(improved)


@nb.njit(cache=True, error_model="numpy")
def _lu_solve(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_diag, perm_r, perm_c, b, x):  # pragma: no cover - numba
    """x = A^-1 b for ``Pr A Pc = L U`` (SuperLU convention: c[perm_r] = b, x = z[perm_c])."""
    n = b.shape[0]
    c = np.empty(n, dtype=np.complex128)
    for i in range(n):
        c[perm_r[i]] = b[i]
    _substitute(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_diag, c)
    for i in range(n):
        x[i] = c[perm_c[i]]


@nb.njit(cache=True, error_model="numpy")
def _substitute(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_diag, c):  # pragma: no cover - numba
    """In place: c <- U^-1 L^-1 c (L unit lower without diagonal, U strict upper; u_diag holds
    the reciprocals of U's diagonal)."""
    n = c.shape[0]
    for i in range(n):
        acc = c[i]
        for k in range(l_ptr[i], l_ptr[i + 1]):
            acc -= l_val[k] * c[l_idx[k]]
        c[i] = acc
    for i in range(n - 1, -1, -1):
        acc = c[i]
        for k in range(u_ptr[i], u_ptr[i + 1]):
            acc -= u_val[k] * c[u_idx[k]]
        c[i] = acc * u_diag[i]


@nb.njit(cache=True, error_model="numpy")
def _zbus_kernel(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_diag, perm_r, perm_c,
                 v_no_load, s, v, tol, max_iter, max_growth_streak):  # pragma: no cover - numba
    """Z-bus iterations ``V <- w + Y_LL^-1 conj(S / V)`` in place on ``v``.

    The power mismatch at the new iterate is available for free: after the solve,
    ``Y_L. V_new = conj(S / V_old)``, hence ``V_new * conj(Y_L. V_new) - S = S (V_new - V_old) / V_old``.
    Stops when its largest modulus is <= tol, on non-finite values, or when it grows
    ``max_growth_streak`` times in a row (not contracting). Returns (iterations, converged, improved).
    Complex divisions are written out in real arithmetic (numba's complex division is slow).
    """
    n = v.shape[0]
    c = np.empty(n, dtype=np.complex128)
    inv_abs2 = np.empty(n, dtype=np.float64)
    s_abs2 = np.empty(n, dtype=np.float64)
    for i in range(n):
        s_abs2[i] = s[i].real * s[i].real + s[i].imag * s[i].imag
    tol2 = tol * tol
    first = np.inf
    prev = np.inf
    streak = 0
    for it in range(1, max_iter + 1):
        for i in range(n):
            vr = v[i].real
            vi = v[i].imag
            sr = s[i].real
            si = s[i].imag
            inv = 1.0 / (vr * vr + vi * vi)
            inv_abs2[i] = inv
            # conj(S / V) = conj(S) * V / |V|^2
            c[perm_r[i]] = complex((sr * vr + si * vi) * inv, (sr * vi - si * vr) * inv)
        _substitute(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_diag, c)
        mis2 = 0.0
        for i in range(n):
            v_new = v_no_load[i] + c[perm_c[i]]
            dv = v_new - v[i]
            d2 = s_abs2[i] * (dv.real * dv.real + dv.imag * dv.imag) * inv_abs2[i]
            if not (d2 <= mis2):  # also catches NaN
                mis2 = d2
            v[i] = v_new
        if not np.isfinite(mis2):
            return it, False, False
        if it == 1:
            first = mis2
        if mis2 <= tol2:
            return it, True, True
        streak = streak + 1 if mis2 > prev else 0
        if streak >= max_growth_streak:
            return it, False, mis2 < first
        prev = mis2
    return max_iter, False, prev < first


# ====================================================================== Newton-Raphson
class _NewtonSolver:
    """Polar Newton-Raphson (MATPOWER formulation) with a precomputed Jacobian sparsity map.

    Unknowns are the angles of PV+PQ buses and the magnitudes of PQ buses. Jacobian entries are
    computed for every Ybus non-zero plus the diagonal, then scattered into the 2x2 block
    structure with index arrays fixed at construction; COO->CSC sums the duplicates.
    """

    def __init__(self, ybus: sp.csr_matrix, pv: np.ndarray, pq: np.ndarray) -> None:
        n = ybus.shape[0]
        coo = ybus.tocoo()
        self._ybus = ybus
        self._r = coo.row.astype(np.int64)
        self._c = coo.col.astype(np.int64)
        self._y = coo.data.astype(np.complex128)
        self._pvpq = np.r_[pv, pq].astype(np.int64)
        self._pq = pq.astype(np.int64)
        n_a, n_m = self._pvpq.size, self._pq.size
        self._n_a = n_a
        pos_a = np.full(n, -1, dtype=np.int64)
        pos_a[self._pvpq] = np.arange(n_a)
        pos_m = np.full(n, -1, dtype=np.int64)
        pos_m[self._pq] = np.arange(n_m)
        er = np.r_[self._r, np.arange(n)]
        ec = np.r_[self._c, np.arange(n)]
        a_r, a_c, m_r, m_c = pos_a[er], pos_a[ec], pos_m[er], pos_m[ec]
        self._s11 = np.flatnonzero((a_r >= 0) & (a_c >= 0))
        self._s12 = np.flatnonzero((a_r >= 0) & (m_c >= 0))
        self._s21 = np.flatnonzero((m_r >= 0) & (a_c >= 0))
        self._s22 = np.flatnonzero((m_r >= 0) & (m_c >= 0))
        self._j_rows = np.r_[a_r[self._s11], a_r[self._s12], n_a + m_r[self._s21], n_a + m_r[self._s22]]
        self._j_cols = np.r_[a_c[self._s11], n_a + m_c[self._s12], a_c[self._s21], n_a + m_c[self._s22]]
        self._dim = n_a + n_m

    def _mismatch(self, v: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i_bus = self._ybus @ v
        mis = v * np.conj(i_bus) - s
        f = np.r_[mis[self._pvpq].real, mis[self._pq].imag]
        return f, i_bus

    def _jacobian(self, v: np.ndarray, i_bus: np.ndarray) -> sp.csc_matrix:
        r, c, y = self._r, self._c, self._y
        vn = v / np.abs(v)
        yv = y * v[c]
        d_va = np.r_[-1j * v[r] * np.conj(yv), 1j * v * np.conj(i_bus)]
        d_vm = np.r_[v[r] * np.conj(y * vn[c]), np.conj(i_bus) * vn]
        data = np.r_[d_va[self._s11].real, d_vm[self._s12].real, d_va[self._s21].imag, d_vm[self._s22].imag]
        return sp.csc_matrix((data, (self._j_rows, self._j_cols)), shape=(self._dim, self._dim))

    def solve(self, s: np.ndarray, v0: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int, bool]:
        """Newton iterations from ``v0``; returns (V, iterations, converged). Never raises."""
        v = np.array(v0, dtype=np.complex128)
        vm, va = np.abs(v), np.angle(v)
        n_a = self._n_a
        with np.errstate(all="ignore"):
            f, i_bus = self._mismatch(v, s)
            for it in range(max_iter + 1):
                err = float(np.max(np.abs(f))) if f.size else 0.0
                if not np.isfinite(err):
                    return v, it, False
                if err <= tol:
                    return v, it, True
                if it == max_iter:
                    break
                try:
                    dx = spla.splu(self._jacobian(v, i_bus)).solve(-f)
                except (RuntimeError, ValueError):
                    return v, it, False
                va[self._pvpq] += dx[:n_a]
                vm[self._pq] += dx[n_a:]
                v = vm * np.exp(1j * va)
                f, i_bus = self._mismatch(v, s)
        return v, max_iter, False
