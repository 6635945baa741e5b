"""Fast repeated AC power flow on a fixed pandapower topology.

The simulator solves one AC power flow per market interval on a grid whose topology does not
change between intervals; only the per-bus net injections do. ``pandapower.runpp`` rebuilds its
whole internal model on every call (~150 ms on a 9,000-bus SimBench grid), so here pandapower
builds that model *once* and it is then re-solved many times:

* **Topology comes from pandapower.** ``FastPowerFlow.__init__`` runs pandapower's own
  ``_pd2ppc`` conversion on a private copy of the net, so bus fusion through closed bus-bus
  switches, open line/trafo switches, out-of-service elements and isolated islands are handled
  exactly as ``runpp`` handles them. It caches Ybus/Yf/Yt, the pandapower-bus -> internal-bus
  lookup, the REF/PV/PQ sets and the rating data needed for line/trafo loading.
* **Z-bus fixed point for PQ-only grids.** ``V_L = w + Y_LL^-1 conj(S_L / V_L)`` with
  ``w = -Y_LL^-1 Y_Ls V_s``. ``Y_LL`` is LU-factorised once by SuperLU; each iteration is one
  forward/backward substitution in a numba kernel (SuperLU's own ``solve`` costs ~1 ms per call
  on a 9k-bus grid, the kernel ~0.15 ms). Solves are warm-started from the last converged state.
* **Newton-Raphson fallback.** Grids with PV buses, and PQ grids where the Z-bus iteration stops
  contracting or runs out of ``zbus_max_iter`` iterations, are solved by a vectorised polar
  Newton-Raphson (MATPOWER formulation) with a sparse Jacobian on a precomputed pattern.

Conventions: ``p_mw``/``q_mvar`` are net injections (generation positive) per ``net.bus`` row
position; they *replace* every constant-power element of the net (load, sgen, gen P, storage,
motor, ward/xward PQ parts, ...). Admittance parts (line charging, shunts, ward/xward impedances,
trafo magnetising, taps, phase shifts) stay as pandapower models them. Reactive-power limits of
PV generators are **not** enforced (their Q is free), so results match
``runpp(enforce_q_lims=False)``; there is no distributed slack (the reference buses take all
mismatch). Injections given for non-energised buses are ignored (also in ``losses_mw``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["FastPowerFlow", "PowerFlowResult"]

_SQRT3 = float(np.sqrt(3.0))
# The Z-bus mismatch growing this many iterations in a row means the fixed point is not contracting.
_ZBUS_MAX_GROWTH_STREAK = 2
# Newton-Raphson gives up early past these: no operating point has |V| = 10 p.u., and a mismatch
# a million times the starting one means the iteration has left the region where it converges.
_NR_MAX_VM_PU = 10.0
_NR_MAX_ERR_GROWTH = 1e6
# Elements whose effect is not a plain bus injection or admittance; we refuse rather than guess.
_UNSUPPORTED_TABLES = ("dcline", "svc", "tcsc", "ssc", "vsc", "vsc_stacked", "line_dc", "b2b_vsc")


@dataclass(frozen=True)
class PowerFlowResult:
    """Outcome of one AC power flow.

    Arrays are read-only and aligned with the row positions of ``net.bus`` / ``net.line`` /
    ``net.trafo`` of the net the solver was built from. When ``converged`` is False every array
    and scalar is NaN: a non-converged state is not an operating point and must not be used.

    * ``vm_pu``, ``va_degree``: per bus; NaN for buses that are out of service / not energised.
    * ``line_loading_pct``: as pandapower ``res_line.loading_percent``, the larger end current over
      ``max_i_ka * df * parallel``; inf for a line rated 0 kA. Branches that carry no current
      report what pandapower reports: 0 if both ends of its internal branch are energised, else
      NaN (pandapower gives out-of-service lines a dead auxiliary end, so those are NaN).
    * ``trafo_loading_pct``: as ``res_trafo.loading_percent`` with ``trafo_loading='current'``,
      ``max over ends of i_ka * vn_end_kv * sqrt3 / (sn_mva * parallel * df)``.
    * ``slack_p_mw``/``slack_q_mvar``: power delivered into the network by all reference buses
      (ext_grid, slack gens), net of the injections given at those buses.
    * ``losses_mw``: sum of all injections incl. slack = series branch losses + shunt and
      magnetising consumption.
    """

    converged: bool
    iterations: int
    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_pct: np.ndarray
    trafo_loading_pct: np.ndarray
    slack_p_mw: float
    slack_q_mvar: float
    losses_mw: float


class FastPowerFlow:
    """Repeated AC power flow on a fixed pandapower topology (see module docstring).

    Build one instance per topology (a line outage or switch change means a new instance), then
    call :meth:`solve` once per interval. ``solve`` never raises on non-convergence and is bounded
    by ``zbus_max_iter`` Z-bus plus ``max_iter`` Newton iterations.

    Determinism: results are a pure function of the net, the options and the sequence of
    ``solve`` calls (warm starts carry the last converged voltages, which moves results within
    the tolerance). With ``warm_start=False`` each solve starts from the same cold start, so its
    bytes depend only on ``(p_mw, q_mvar)``.
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
        """Build the cached model of a pandapower ``net`` (which is not modified).

        ``tol_pu``: largest accepted power mismatch per bus, in p.u. of ``net.sn_mva`` (the scale
        of pandapower's ``tolerance_mva``). ``max_iter``: Newton-Raphson iteration cap.
        ``zbus_max_iter``: Z-bus iteration cap before falling back to Newton (0 = Newton only).
        """
        if not (tol_pu > 0 and max_iter >= 1 and zbus_max_iter >= 0):
            raise ValueError("need tol_pu > 0, max_iter >= 1 and zbus_max_iter >= 0")
        self.tol_pu = float(tol_pu)
        self.max_iter = int(max_iter)
        self.zbus_max_iter = int(zbus_max_iter)
        self.warm_start = bool(warm_start)

        topo = _Topology.from_net(net)
        self._topo = topo
        self.n_bus = topo.n_pp_bus
        self.n_line = topo.n_line
        self.n_trafo = topo.n_trafo
        ref, pv, pq = topo.ref, topo.pv, topo.pq
        self._non_ref = np.sort(np.r_[pv, pq]).astype(np.int64)
        self._y_ref_rows = topo.ybus[ref, :].tocsr()

        # Cold start. The no-load voltages (zero injection at all non-reference buses) carry the
        # angles of phase-shifting transformers (e.g. 150 deg Dyn5 in SimBench) that a flat start
        # misses. Z-bus starts from them directly; Newton starts from their angles with flat
        # magnitudes (1 at PQ, setpoints at PV/ref): with PV buses left unregulated, capacitive
        # transmission grids can show resonant no-load magnitudes far from 1 (case118: 3.4 p.u.).
        v_no_load = topo.v_set.copy()
        self._zbus: _ZbusSolver | None = None
        self._newton: _NewtonSolver | None = None
        if self._non_ref.size:
            self._zbus = _ZbusSolver(topo.ybus, self._non_ref, ref, topo.v_set[ref])
            v_no_load[self._non_ref] = self._zbus.v_no_load
            self._newton = _NewtonSolver(topo.ybus, pv, pq)
        if pv.size:
            mag = np.ones(topo.n_int)
            fixed = np.r_[ref, pv].astype(np.int64)
            mag[fixed] = np.abs(topo.v_set[fixed])
            self._v_cold = mag * np.exp(1j * np.angle(v_no_load))
        else:
            self._v_cold = v_no_load
        self._v_warm: np.ndarray | None = None

    @property
    def n_internal_buses(self) -> int:
        """Number of energised internal (fused) buses the solver works on."""
        return self._topo.n_int

    def model_tables(self) -> dict[str, Any]:
        """The internal model as MATPOWER-style tables, for OPF formulations on the same topology.

        Keys: base_mva, bus, branch (RATE_A = rating in MVA, 0 = none), ref (internal bus
        positions), v_ref (complex reference voltages), bus_of_row (internal bus per net.bus row,
        -1 if de-energised), loading_of_branch (position of each branch row in a result's
        [line_loading_pct..., trafo_loading_pct...], -1 if not monitored).
        """
        topo = self._topo
        bus_of_row = np.full(topo.n_pp_bus, -1, dtype=np.int64)
        bus_of_row[topo.energised_pos] = topo.bus_int
        loading_of_branch = np.full(len(topo.branch_table), -1, dtype=np.int64)
        loading_of_branch[topo.mon_rows] = topo.mon_out_pos
        return {"base_mva": topo.base_mva, "bus": topo.bus_table, "branch": topo.branch_table, "ref": topo.ref,
                "v_ref": topo.v_set[topo.ref], "bus_of_row": bus_of_row, "loading_of_branch": loading_of_branch}

    def reset(self) -> None:
        """Forget the warm start: the next solve starts from the cold start."""
        self._v_warm = None

    def solve(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> PowerFlowResult:
        """Solve the AC power flow for net injections per ``net.bus`` row (generation > 0).

        At PV buses ``p_mw`` is the scheduled P and ``q_mvar`` is ignored (Q is free); at reference
        buses both only shift the reported slack power. Returns ``converged=False`` instead of
        raising when there is no solution or the solver fails (incl. non-finite inputs); the warm
        start then stays at the last converged state. Wrong array shapes raise ``ValueError``.
        """
        p = np.ascontiguousarray(p_mw, dtype=np.float64).reshape(-1)
        q = np.ascontiguousarray(q_mvar, dtype=np.float64).reshape(-1)
        if p.shape != (self.n_bus,) or q.shape != (self.n_bus,):
            raise ValueError(
                f"p_mw and q_mvar need one entry per net.bus row ({self.n_bus}); "
                f"got shapes {p.shape} and {q.shape}"
            )
        topo = self._topo
        s_pu = np.empty(topo.n_int, dtype=np.complex128)
        p_total_mw = _aggregate_kernel(p, q, topo.energised_pos, topo.bus_int, 1.0 / topo.base_mva, s_pu)
        if not (np.isfinite(p_total_mw) and np.isfinite(s_pu).all()):
            return self._failed(0)

        v0 = self._v_warm if (self.warm_start and self._v_warm is not None) else self._v_cold
        v, iterations, ok = self._iterate(s_pu, v0)
        if not ok or not np.isfinite(v).all():
            return self._failed(iterations)
        if self.warm_start:
            self._v_warm = v
        return self._result(v, s_pu, p_total_mw, iterations)

    # ------------------------------------------------------------------ internals
    def _iterate(self, s_pu: np.ndarray, v0: np.ndarray) -> tuple[np.ndarray, int, bool]:
        """Z-bus first (PQ-only grids), Newton-Raphson if that fails; returns (V, iterations, ok)."""
        if self._zbus is None or self._newton is None:  # every bus is a reference bus
            return v0.copy(), 0, True
        iterations = 0
        v_start = v0
        if self._topo.pv.size == 0 and self.zbus_max_iter > 0:
            nr = self._non_ref
            v_l, iterations, ok, improved = self._zbus.iterate(s_pu[nr], v0[nr], self.tol_pu, self.zbus_max_iter)
            if ok or improved:
                v_start = v0.copy()
                v_start[nr] = v_l
            if ok:
                return v_start, iterations, True
        v, it, ok = self._newton.solve(s_pu, v_start, self.tol_pu, self.max_iter)
        return v, iterations + it, ok

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

    def _result(self, v: np.ndarray, s_pu: np.ndarray, p_total_mw: float, iterations: int) -> PowerFlowResult:
        t = self._topo
        vm = np.full(self.n_bus, np.nan)
        va = np.full(self.n_bus, np.nan)
        loading = t.loading_template.copy()
        _post_kernel(v, t.energised_pos, t.bus_int, vm, va, *t.mon_yf, *t.mon_yt,
                     t.mon_cf, t.mon_ct, t.mon_out_pos, loading)
        ref = t.ref
        slack = complex(np.sum(v[ref] * np.conj(self._y_ref_rows @ v) - s_pu[ref])) * t.base_mva
        return PowerFlowResult(
            converged=True,
            iterations=int(iterations),
            vm_pu=_frozen(vm),
            va_degree=_frozen(va),
            line_loading_pct=_frozen(loading[: t.n_line]),
            trafo_loading_pct=_frozen(loading[t.n_line:]),
            slack_p_mw=float(slack.real),
            slack_q_mvar=float(slack.imag),
            losses_mw=float(p_total_mw + slack.real),
        )


def _frozen(a: np.ndarray) -> np.ndarray:
    """Mark a result array read-only so a shared result cannot be mutated by a consumer."""
    a.flags.writeable = False
    return a


# ====================================================================== pandapower model cache
@dataclass(frozen=True)
class _Topology:
    """What the solver needs from pandapower's internal (ppci) model, as plain arrays.

    Internal buses are ppci rows (energised buses only; fused buses share one row).
    "Monitored" branches are the in-service lines and trafos, whose loading is reported.
    """

    base_mva: float
    n_int: int
    ybus: sp.csr_matrix
    ref: np.ndarray
    pv: np.ndarray
    pq: np.ndarray
    v_set: np.ndarray  # complex: reference voltages at ref, |V| setpoints at pv
    n_pp_bus: int
    energised_pos: np.ndarray  # net.bus row positions that are energised ...
    bus_int: np.ndarray  # ... and their internal bus
    n_line: int
    n_trafo: int
    mon_yf: tuple[np.ndarray, np.ndarray, np.ndarray]  # CSR rows of Yf (monitored branches)
    mon_yt: tuple[np.ndarray, np.ndarray, np.ndarray]
    mon_cf: np.ndarray  # loading% per p.u. current magnitude, from end (inf: 0 kA rating)
    mon_ct: np.ndarray
    mon_out_pos: np.ndarray  # position in [line rows..., trafo rows...]
    loading_template: np.ndarray  # 0 / NaN for branches that are not monitored
    mon_rows: np.ndarray  # internal branch row of each monitored branch
    bus_table: np.ndarray  # MATPOWER bus columns of the internal buses (for OPF models)
    branch_table: np.ndarray  # MATPOWER branch columns of in-service branches, RATE_A = thermal rating in MVA

    @classmethod
    def from_net(cls, net: Any) -> _Topology:
        """Let pandapower convert a private copy of ``net`` and extract the arrays."""
        from pandapower.auxiliary import _init_runpp_options
        from pandapower.pd2ppc import _pd2ppc
        from pandapower.pf.ppci_variables import _get_pf_variables_from_ppci
        from pandapower.pypower.idx_brch import F_BUS, T_BUS
        from pandapower.pypower.idx_bus import BASE_KV
        from pandapower.pypower.makeYbus import makeYbus

        _reject_unsupported(net)
        net = copy.deepcopy(net)
        # the options runpp(net) would set, minus anything that only matters for solving
        _init_runpp_options(
            net, algorithm="nr", calculate_voltage_angles=True, init="flat", max_iteration="auto",
            tolerance_mva=1e-8, trafo_model="t", trafo_loading="current", enforce_p_lims=False,
            enforce_q_lims=False, check_connectivity=True, voltage_depend_loads=False,
            passed_parameters={}, consider_line_temperature=False, distributed_slack=False,
            tdpf=False, numba=False,  # pandapower's numba bus lookup recompiles in every process (~1.5 s)
        )
        empty = np.array([], dtype=np.int64)
        net._pd2ppc_lookups = {"bus": empty, "bus_dc": empty, "ext_grid": empty, "gen": empty,
                               "branch": empty, "branch_dc": empty}
        ppc, ppci = _pd2ppc(net)
        (base_mva, bus, _gen, branch, _svc, _tcsc, _ssc, _vsc, ref, pv, pq,
         _on, _gbus, v0, _ref_gens) = _get_pf_variables_from_ppci(ppci)
        base_mva = float(base_mva)
        n_int = int(bus.shape[0])
        ybus, yf, yt = (sp.csr_matrix(m) for m in makeYbus(base_mva, bus, branch))
        for m in (ybus, yf, yt):
            m.sum_duplicates()
            m.sort_indices()

        # net.bus rows -> internal buses (after _ppc2ppci the energised buses are 0..n_int-1)
        lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
        int_of_row = lookup[net.bus.index.to_numpy(dtype=np.int64)]
        energised_pos = np.flatnonzero((int_of_row >= 0) & (int_of_row < n_int)).astype(np.int64)

        # branch rows: ppc (all branches, lines first then trafos) -> ppci (in service only)
        branch_is = np.asarray(ppci["internal"]["branch_is"], dtype=bool)
        ppci_row_of_ppc = np.where(branch_is, np.cumsum(branch_is) - 1, -1)
        ppc_ends_ok = ((np.real(ppc["branch"][:, F_BUS]) < n_int)
                       & (np.real(ppc["branch"][:, T_BUS]) < n_int))
        base_kv = np.real(bus[:, BASE_KV]).astype(np.float64)
        ranges = net._pd2ppc_lookups["branch"]

        def ppc_rows(element: str) -> np.ndarray:
            return np.arange(*ranges[element]) if element in ranges else np.zeros(0, np.int64)

        line_rows, trafo_rows = ppc_rows("line"), ppc_rows("trafo")
        n_line, n_trafo = len(net.line), len(net.trafo)
        assert line_rows.size == n_line and trafo_rows.size == n_trafo
        all_rows = np.r_[line_rows, trafo_rows].astype(np.int64)
        ppci_rows = ppci_row_of_ppc[all_rows]
        mon = np.flatnonzero(ppci_rows >= 0)
        mon_rows = ppci_rows[mon]
        f_kv = base_kv[np.real(branch[mon_rows, F_BUS]).astype(np.int64)]
        t_kv = base_kv[np.real(branch[mon_rows, T_BUS]).astype(np.int64)]

        # loading% = |I_pu| * factor per end (I_pu * base_mva / (sqrt3 * kV) is the current in kA)
        line, trafo = net.line, net.trafo
        i_max_ka = line["max_i_ka"].to_numpy(float) * line["df"].to_numpy(float) * line["parallel"].to_numpy(float)
        rating_mva = trafo["sn_mva"].to_numpy(float) * trafo["parallel"].to_numpy(float) * trafo["df"].to_numpy(float)
        is_line = mon < n_line
        lm, tm = mon[is_line], mon[~is_line] - n_line
        cf = np.empty(mon.size)
        ct = np.empty(mon.size)
        with np.errstate(divide="ignore"):
            i_ka_per_pu_f = base_mva / (_SQRT3 * f_kv)
            i_ka_per_pu_t = base_mva / (_SQRT3 * t_kv)
            cf[is_line] = 100.0 * i_ka_per_pu_f[is_line] / i_max_ka[lm]
            ct[is_line] = 100.0 * i_ka_per_pu_t[is_line] / i_max_ka[lm]
            # trafo: i_ka * vn_kv * sqrt3 is the apparent power at rated voltage (MVA)
            hv_mva_per_pu = i_ka_per_pu_f[~is_line] * _SQRT3 * trafo["vn_hv_kv"].to_numpy(float)[tm]
            lv_mva_per_pu = i_ka_per_pu_t[~is_line] * _SQRT3 * trafo["vn_lv_kv"].to_numpy(float)[tm]
            cf[~is_line] = 100.0 * hv_mva_per_pu / rating_mva[tm]
            ct[~is_line] = 100.0 * lv_mva_per_pu / rating_mva[tm]

        # the same model as MATPOWER tables for OPF formulations; ratings at nominal voltage, 0 = none
        branch_table = np.real(branch[:, :13]).astype(np.float64)
        branch_table[:, 5] = 0.0
        branch_table[mon_rows[is_line], 5] = i_max_ka[lm] * _SQRT3 * f_kv[is_line]
        branch_table[mon_rows[~is_line], 5] = rating_mva[tm]
        branch_table[:, 5] = np.nan_to_num(branch_table[:, 5], nan=0.0, posinf=0.0)
        bus_table = np.real(bus[:, :13]).astype(np.float64)
        lo = np.nan_to_num(net.bus.get("min_vm_pu", pd.Series(0.9, index=net.bus.index)).to_numpy(float), nan=0.9)
        hi = np.nan_to_num(net.bus.get("max_vm_pu", pd.Series(1.1, index=net.bus.index)).to_numpy(float), nan=1.1)
        bus_table[:, 12], bus_table[:, 11] = 0.0, np.inf
        np.maximum.at(bus_table[:, 12], int_of_row[energised_pos], lo[energised_pos])
        np.minimum.at(bus_table[:, 11], int_of_row[energised_pos], hi[energised_pos])
        bus_table[:, 12] = np.where(bus_table[:, 12] > 0, bus_table[:, 12], 0.9)
        bus_table[:, 11] = np.where(np.isfinite(bus_table[:, 11]), bus_table[:, 11], 1.1)

        # pandapower computes 0 MVA / (vm * kV) for a dead branch: 0 %, or NaN if an end bus is dead
        template = np.where(ppc_ends_ok[all_rows], 0.0, np.nan)

        def csr_rows(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            sub = m[mon_rows, :]
            return (sub.indptr.astype(np.int64), sub.indices.astype(np.int64),
                    sub.data.astype(np.complex128))

        return cls(
            base_mva=base_mva, n_int=n_int, ybus=ybus,
            ref=np.asarray(ref, dtype=np.int64), pv=np.asarray(pv, dtype=np.int64),
            pq=np.asarray(pq, dtype=np.int64), v_set=np.asarray(v0, dtype=np.complex128).copy(),
            n_pp_bus=len(net.bus), energised_pos=energised_pos, bus_int=int_of_row[energised_pos],
            n_line=n_line, n_trafo=n_trafo, mon_yf=csr_rows(yf), mon_yt=csr_rows(yt),
            mon_cf=cf, mon_ct=ct, mon_out_pos=mon.astype(np.int64), loading_template=template,
            mon_rows=mon_rows.astype(np.int64), bus_table=bus_table, branch_table=branch_table,
        )


def _reject_unsupported(net: Any) -> None:
    """Fail fast on elements that are neither plain bus injections nor plain admittances."""
    for table in _UNSUPPORTED_TABLES:
        df = net.get(table, None)
        if df is not None and len(df) and ("in_service" not in df or df["in_service"].any()):
            raise NotImplementedError(
                f"FastPowerFlow does not support net.{table} elements; use pandapower.runpp"
            )


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _aggregate_kernel(p, q, pos, bus_int, inv_base, s_out):  # pragma: no cover - numba
    """s_out[internal bus] = sum of (p + jq) / base over its energised net.bus rows, in row order.

    Returns the total active injection (MW) over energised buses, for the losses balance.
    """
    for i in range(s_out.shape[0]):
        s_out[i] = 0.0
    total = 0.0
    for k in range(pos.shape[0]):
        r = pos[k]
        s_out[bus_int[k]] += complex(p[r] * inv_base, q[r] * inv_base)
        total += p[r]
    return total


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _post_kernel(v, pos, bus_int, vm, va, f_ptr, f_idx, f_val, t_ptr, t_idx, t_val,
                 cf, ct, out_pos, loading):  # pragma: no cover - numba
    """Fill per-bus |V|, angle (deg) and per-branch loading% from the internal voltages."""
    to_deg = 180.0 / np.pi
    for k in range(pos.shape[0]):
        x = v[bus_int[k]]
        vm[pos[k]] = np.sqrt(x.real * x.real + x.imag * x.imag)
        va[pos[k]] = np.arctan2(x.imag, x.real) * to_deg
    for b in range(out_pos.shape[0]):
        i_f = 0j
        for k in range(f_ptr[b], f_ptr[b + 1]):
            i_f += f_val[k] * v[f_idx[k]]
        i_t = 0j
        for k in range(t_ptr[b], t_ptr[b + 1]):
            i_t += t_val[k] * v[t_idx[k]]
        if np.isinf(cf[b]) or np.isinf(ct[b]):
            loading[out_pos[b]] = np.inf  # pandapower: a 0 kA rating gives inf loading
        else:  # compare squares, one sqrt (abs() of a complex is a slow hypot)
            lf2 = (i_f.real * i_f.real + i_f.imag * i_f.imag) * (cf[b] * cf[b])
            lt2 = (i_t.real * i_t.real + i_t.imag * i_t.imag) * (ct[b] * ct[b])
            loading[out_pos[b]] = np.sqrt(lf2 if lf2 >= lt2 else lt2)


# ====================================================================== Z-bus fixed point
class _ZbusSolver:
    """Implicit Z-bus iteration on the non-reference buses with a once-factorised ``Y_LL``."""

    def __init__(self, ybus: sp.csr_matrix, non_ref: np.ndarray, ref: np.ndarray, v_ref: np.ndarray) -> None:
        y_l = ybus[non_ref, :]
        y_ll = y_l[:, non_ref].tocsc()
        rhs0 = -(y_l[:, ref] @ v_ref)
        lu = self._factorise(y_ll, rhs0)
        # L: unit lower triangular, CSR without its diagonal; U: CSR strictly upper triangular
        # plus the reciprocal pivots (the kernel multiplies instead of dividing)
        l_csr = sp.tril(lu.L, k=-1, format="csr")
        u_full = lu.U.tocsr()
        u_csr = sp.triu(u_full, k=1, format="csr")
        l_csr.sort_indices()
        u_csr.sort_indices()
        self._factors = (
            l_csr.indptr.astype(np.int64), l_csr.indices.astype(np.int64), l_csr.data.astype(np.complex128),
            u_csr.indptr.astype(np.int64), u_csr.indices.astype(np.int64), u_csr.data.astype(np.complex128),
            np.ascontiguousarray(1.0 / u_full.diagonal().astype(np.complex128)),
            lu.perm_r.astype(np.int64), lu.perm_c.astype(np.int64),
        )
        self.v_no_load = np.empty(rhs0.shape[0], dtype=np.complex128)
        _lu_solve(*self._factors, np.ascontiguousarray(rhs0, dtype=np.complex128), self.v_no_load)

    @staticmethod
    def _factorise(y_ll: sp.csc_matrix, probe: np.ndarray) -> Any:
        """LU with a fill-reducing symmetric ordering, or partial pivoting if that is inaccurate.

        Y_LL is (nearly) complex-symmetric and diagonally dominant for ordinary networks, so
        diagonal pivots with a minimum-degree ordering on A^T+A give the least fill (on a radial
        feeder: none) and hence the fastest substitutions. Series capacitors or negative
        star-point reactances can break diagonal dominance, so a probe solve is checked and
        SuperLU's default threshold pivoting is the fallback.
        """
        try:
            lu = spla.splu(y_ll, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
            x = lu.solve(probe)
            scale = max(float(np.max(np.abs(probe), initial=0.0)), 1.0)
            if np.isfinite(x).all() and np.max(np.abs(y_ll @ x - probe), initial=0.0) <= 1e-9 * scale:
                return lu
        except RuntimeError:  # exactly singular pivot
            pass
        return spla.splu(y_ll, permc_spec="COLAMD")

    def iterate(self, s_l: np.ndarray, v_l0: np.ndarray, tol_pu: float, max_iter: int
                ) -> tuple[np.ndarray, int, bool, bool]:
        """Run the fixed point from ``v_l0``; returns (V_L, iterations, converged, improved).

        ``improved``: the last iterate's mismatch is below the first one's, i.e. it is a better
        Newton starting point than ``v_l0``.
        """
        v = np.array(v_l0, dtype=np.complex128)
        it, converged, improved = _zbus_kernel(
            *self._factors, self.v_no_load, np.ascontiguousarray(s_l, dtype=np.complex128), v,
            float(tol_pu), int(max_iter), _ZBUS_MAX_GROWTH_STREAK,
        )
        return v, int(it), bool(converged), bool(improved)


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _lu_solve(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_inv_diag, perm_r, perm_c, b, x):  # pragma: no cover - numba
    """x = A^-1 b for ``Pr A Pc = L U`` (SuperLU convention: c[perm_r] = b, x = z[perm_c])."""
    n = b.shape[0]
    c = np.empty(n, dtype=np.complex128)
    for i in range(n):
        c[perm_r[i]] = b[i]
    _substitute(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_inv_diag, c)
    for i in range(n):
        x[i] = c[perm_c[i]]


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _substitute(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_inv_diag, c):  # pragma: no cover - numba
    """In place: c <- U^-1 L^-1 c (L unit lower without diagonal, U strictly upper)."""
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
        c[i] = acc * u_inv_diag[i]


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _zbus_kernel(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_inv_diag, perm_r, perm_c,
                 v_no_load, s, v, tol, max_iter, max_growth_streak):  # pragma: no cover - numba
    """Z-bus iterations ``V <- w + Y_LL^-1 conj(S / V)`` in place on ``v``.

    The power mismatch at the new iterate comes for free: after the solve
    ``Y_L. V_new = conj(S / V_old)``, hence ``V_new conj(Y_L. V_new) - S = S (V_new - V_old) / V_old``.
    Stops when its largest modulus is <= tol, on non-finite values, or when it grows
    ``max_growth_streak`` times in a row. Returns (iterations, converged, improved).
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
            c[perm_r[i]] = complex((sr * vr + si * vi) * inv, (sr * vi - si * vr) * inv)  # conj(S/V)
        _substitute(l_ptr, l_idx, l_val, u_ptr, u_idx, u_val, u_inv_diag, c)
        mis2 = 0.0
        for i in range(n):
            v_new = v_no_load[i] + c[perm_c[i]]
            dv = v_new - v[i]
            d2 = s_abs2[i] * (dv.real * dv.real + dv.imag * dv.imag) * inv_abs2[i]
            if not (d2 <= mis2):  # also propagates NaN
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

    Unknowns: angles of PV+PQ buses, magnitudes of PQ buses. dS/dVa and dS/dVm are evaluated
    for every Ybus non-zero plus the diagonal and scattered into the 2x2 block Jacobian with
    index arrays fixed at construction (COO -> CSC sums the duplicates).
    """

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
        self._j_rows = np.r_[a_r[self._s11], a_r[self._s12], n_a + m_r[self._s21], n_a + m_r[self._s22]]
        self._j_cols = np.r_[a_c[self._s11], n_a + m_c[self._s12], a_c[self._s21], n_a + m_c[self._s22]]

    def _mismatch(self, v: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i_bus = self._ybus @ v
        mis = v * np.conj(i_bus) - s
        return np.r_[mis[self._pvpq].real, mis[self._pq].imag], i_bus

    def _jacobian(self, v: np.ndarray, i_bus: np.ndarray) -> sp.csc_matrix:
        r, c, y = self._r, self._c, self._y
        v_unit = v / np.abs(v)
        d_va = np.r_[-1j * v[r] * np.conj(y * v[c]), 1j * v * np.conj(i_bus)]
        d_vm = np.r_[v[r] * np.conj(y * v_unit[c]), np.conj(i_bus) * v_unit]
        data = np.r_[d_va[self._s11].real, d_vm[self._s12].real, d_va[self._s21].imag, d_vm[self._s22].imag]
        return sp.csc_matrix((data, (self._j_rows, self._j_cols)), shape=(self._dim, self._dim))

    @staticmethod
    def _plausible(err: float, err0: float, vm: np.ndarray) -> bool:
        """False once the iteration has clearly diverged, to fail fast instead of burning
        ``max_iter`` Jacobian factorisations: non-finite state, a voltage magnitude above
        ``_NR_MAX_VM_PU`` or a mismatch ``_NR_MAX_ERR_GROWTH`` times the initial one."""
        return (
            np.isfinite(err)
            and err <= _NR_MAX_ERR_GROWTH * max(err0, 1.0)
            and float(np.max(vm, initial=0.0)) <= _NR_MAX_VM_PU
        )

    # mypy cannot see that the loop's last pass (it == max_iter) always returns
    def solve(self, s: np.ndarray, v0: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int, bool]:  # type: ignore[return]
        """Newton iterations from ``v0``; returns (V, iterations, converged). Never raises."""
        v = np.array(v0, dtype=np.complex128)
        vm, va = np.abs(v), np.angle(v)
        n_a = self._n_a
        with np.errstate(all="ignore"):
            f, i_bus = self._mismatch(v, s)
            err0 = float(np.max(np.abs(f), initial=0.0))
            for it in range(max_iter + 1):
                err = float(np.max(np.abs(f), initial=0.0))
                if err <= tol:
                    return v, it, True
                if it == max_iter or not self._plausible(err, err0, vm):
                    return v, it, False
                try:
                    dx = spla.splu(self._jacobian(v, i_bus)).solve(-f)
                except (RuntimeError, ValueError):  # singular or non-finite Jacobian
                    return v, it, False
                va[self._pvpq] += dx[:n_a]
                vm[self._pq] += dx[n_a:]
                v = vm * np.exp(1j * va)
                f, i_bus = self._mismatch(v, s)


def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds this module's kernels already (the first run after install compiles them)."""
    try:
        path = Path(_zbus_kernel._cache._cache_path)  # type: ignore[attr-defined]  # numba's private cache, on purpose
    except AttributeError:  # another numba layout: assume cached rather than warn every time
        return True
    return any(path.glob("powerflow._zbus_kernel-*.nbi"))
