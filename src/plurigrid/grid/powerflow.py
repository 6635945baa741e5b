"""Fast repeated AC power flow on a fixed pandapower topology.

The simulator solves one AC power flow per market interval on a grid whose topology does not
change between intervals; only the per-bus net injections do. ``pandapower.runpp`` rebuilds its
whole internal model on every call (~150 ms on a 9,000-bus SimBench grid), so here pandapower
builds that model *once* (:mod:`plurigrid.grid._pf_model`) and it is then re-solved many times.

Algorithms, tried in a fixed order until one converges (so results are a pure function of inputs):

* **Z-bus fixed point** (:mod:`plurigrid.grid._pf_zbus`) for grids whose non-reference buses are
  all PQ buses, from the no-load voltages (which carry the angles of phase-shifting transformers,
  e.g. 150 deg Dyn5 in SimBench, that a flat start misses).
* **Newton-Raphson** (:mod:`plurigrid.grid._pf_newton`) from, in turn: the Z-bus iterate where it
  improved on its start, a DC power-flow start (lossless angles from the scheduled active power,
  phase shifts included; the start ``runpp`` uses on transmission grids), the no-load angles, and a
  flat start; then the same starts again with a backtracking line search. Magnitudes start at 1 p.u.
  at PQ buses and at their setpoints elsewhere: with PV buses left unregulated, capacitive
  transmission grids show resonant no-load magnitudes far from 1 (case118: 3.4 p.u.).

Tolerance: ``tol_mva``, the largest accepted power mismatch at any bus in MVA, but never below the
round-off of the mismatch itself (about ``eps * sum_j |Y_ij|`` per bus, which on a 1-MVA base
with ~72 GW of EHV load exceeds 1e-10 p.u.): ``tol_pu`` is the tolerance used, in p.u. of the base.

Reactive limits of PV buses: with ``enforce_q_lims`` a PV bus whose generators would leave their
Q range becomes a PQ bus at the violated limit, repeatedly, as ``runpp(enforce_q_lims=True)``;
without it the generators' Q is free (``runpp``'s default). An HVDC link (``net.dcline``) is a pair of
generators with scheduled P at its ends, as in ``runpp``. Voltage-dependent loads (pandapower's
``const_z_*_percent`` / ``const_i_*_percent``) are modelled in :meth:`FastPowerFlow.solve_net`, which
solves the net's own elements as ``runpp`` does; :meth:`FastPowerFlow.solve` takes constant-power
injections (the simulator's participants) and replaces every load, static generator, storage and
generator P of the net. Admittance parts (line charging, shunts, ward/xward impedances, trafo
magnetising, taps, phase shifts) stay as pandapower models them. There is no distributed slack
(the reference buses take all mismatch), as in ``runpp``'s default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import scipy.sparse.linalg as spla

from plurigrid.grid._pf_model import PowerFlowModel, UnsupportedElementError
from plurigrid.grid._pf_newton import Injections, NewtonSolver
from plurigrid.grid._pf_zbus import ZbusSolver, _zbus_kernel

__all__ = ["FastPowerFlow", "PowerFlowResult", "UnsupportedElementError", "kernels_cached"]

# Round-off of a bus mismatch relative to the sum of |Y_ij| |V_i| |V_j| over its row.
_ROUNDOFF_FACTOR = 16 * float(np.finfo(float).eps)

Start = tuple[str, Callable[[], "np.ndarray | None"]]  # a named starting point, computed when first tried


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
    * ``iterations``: Z-bus plus Newton iterations over every start tried; ``start`` names the one
      that converged (``zbus``, ``warm``, ``dc``, ``no-load``, ``flat``, with ``+line-search``), or
      is empty; ``mismatch_mva`` is the largest bus power mismatch left; ``q_limited_buses`` the
      number of PV buses held at a reactive limit.
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
    start: str = ""
    mismatch_mva: float = float("nan")
    q_limited_buses: int = 0


class FastPowerFlow:
    """Repeated AC power flow on a fixed pandapower topology (see module docstring).

    Build one instance per topology (a line outage or switch change means a new instance), then
    call :meth:`solve` once per interval. ``solve`` never raises on non-convergence; each start is
    bounded by ``zbus_max_iter`` Z-bus plus ``max_iter`` Newton iterations.

    Determinism: results are a pure function of the net, the options and the sequence of
    ``solve`` calls (warm starts carry the last converged voltages, which moves results within
    the tolerance). With ``warm_start=False`` each solve starts from the same cold starts, so its
    bytes depend only on ``(p_mw, q_mvar)``.
    """

    def __init__(
        self,
        net: Any,
        *,
        tol_mva: float = 1e-8,
        max_iter: int = 30,
        zbus_max_iter: int = 30,
        warm_start: bool = True,
        enforce_q_lims: bool = False,
    ) -> None:
        """Build the cached model of a pandapower ``net`` (which is not modified).

        ``tol_mva``: largest accepted power mismatch per bus, in MVA (raised to the mismatch's
        round-off where that is larger; ``tol_pu`` holds the tolerance used). ``max_iter``:
        Newton-Raphson iteration cap per start. ``zbus_max_iter``: Z-bus iteration cap before
        falling back to Newton (0 = Newton only). ``enforce_q_lims``: hold PV buses within their
        generators' reactive limits. Raises :class:`UnsupportedElementError` for elements it does
        not model (HVDC lines, FACTS devices).
        """
        if not (tol_mva > 0 and max_iter >= 1 and zbus_max_iter >= 0):
            raise ValueError("need tol_mva > 0, max_iter >= 1 and zbus_max_iter >= 0")
        self.max_iter = int(max_iter)
        self.zbus_max_iter = int(zbus_max_iter)
        self.warm_start = bool(warm_start)
        self.enforce_q_lims = bool(enforce_q_lims)

        model = PowerFlowModel.from_net(net, enforce_q_lims=self.enforce_q_lims)
        self._model = model
        self.n_bus = model.n_pp_bus
        self.n_line = model.n_line
        self.n_trafo = model.n_trafo
        ref, pv = model.ref, model.pv
        self._non_ref = np.sort(np.r_[pv, model.pq]).astype(np.int64)
        self._y_ref_rows = model.ybus[ref, :].tocsr()
        v_max = max(float(np.max(np.abs(model.v_set), initial=1.0)), 1.1)
        row_abs = np.asarray(abs(model.ybus).sum(axis=1)).ravel()
        self.roundoff_pu = _ROUNDOFF_FACTOR * float(np.max(row_abs, initial=0.0)) * v_max * v_max
        self.tol_pu = max(float(tol_mva) / model.base_mva, self.roundoff_pu)

        self._zbus: ZbusSolver | None = None
        self._newtons: dict[bytes, NewtonSolver] = {}
        self._dc_lu: Any = None  # the DC start's factors (False: singular), built when first needed
        self._dc_theta = self._dc_offset = np.zeros(0)
        self._v_no_load = model.v_set.copy()
        if self._non_ref.size:
            self._zbus = ZbusSolver(model.ybus, self._non_ref, ref, model.v_set[ref])
            self._v_no_load[self._non_ref] = self._zbus.v_no_load
        # Newton's magnitudes: 1 at PQ buses, setpoints at PV and reference buses
        self._vm_start = np.ones(model.n_int)
        fixed = np.r_[ref, pv].astype(np.int64)
        self._vm_start[fixed] = np.abs(model.v_set[fixed])
        self._v_warm: np.ndarray | None = None

    @property
    def tol_mva(self) -> float:
        """The tolerance used, in MVA."""
        return self.tol_pu * self._model.base_mva

    @property
    def n_internal_buses(self) -> int:
        """Number of energised internal (fused) buses the solver works on."""
        return self._model.n_int

    @property
    def voltage_dependent_loads(self) -> bool:
        """Whether the net's own loads depend on voltage (modelled by :meth:`solve_net` only)."""
        return self._model.voltage_dependent

    def model_tables(self) -> dict[str, Any]:
        """The internal model as MATPOWER-style tables, for OPF formulations on the same topology.

        Keys: base_mva, bus, branch (RATE_A = rating in MVA, 0 = none), branch_extra (pandapower's
        per-branch shunt conductance and asymmetric parts, MATPOWER ``mpc.branch_g`` style), ref (internal bus
        positions), v_ref (complex reference voltages), bus_of_row (internal bus per net.bus row,
        -1 if de-energised), loading_of_branch (position of each branch row in a result's
        [line_loading_pct..., trafo_loading_pct...], -1 if not monitored).
        """
        m = self._model
        bus_of_row = np.full(m.n_pp_bus, -1, dtype=np.int64)
        bus_of_row[m.energised_pos] = m.bus_int
        loading_of_branch = np.full(len(m.branch_table), -1, dtype=np.int64)
        loading_of_branch[m.mon_rows] = m.mon_out_pos
        return {"base_mva": m.base_mva, "bus": m.bus_table, "branch": m.branch_table, "branch_extra": m.branch_extra, "ref": m.ref,
                "v_ref": m.v_set[m.ref], "bus_of_row": bus_of_row, "loading_of_branch": loading_of_branch}

    def reset(self) -> None:
        """Forget the warm start: the next solve starts from the cold starts."""
        self._v_warm = None

    def solve(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> PowerFlowResult:
        """Solve the AC power flow for constant-power net injections per ``net.bus`` row (generation > 0).

        At PV buses ``p_mw`` is the scheduled P and ``q_mvar`` the reactive injection of everything
        but the bus's generators, whose Q is free (within their limits with ``enforce_q_lims``); at
        reference buses both only shift the reported slack power. HVDC links (``net.dcline``) keep
        their scheduled transfers on top of these injections. Returns ``converged=False``
        instead of raising when there is no solution or the solver fails (incl. non-finite inputs);
        the warm start then stays at the last converged state. Wrong array shapes raise ``ValueError``.
        """
        p = np.ascontiguousarray(p_mw, dtype=np.float64).reshape(-1)
        q = np.ascontiguousarray(q_mvar, dtype=np.float64).reshape(-1)
        if p.shape != (self.n_bus,) or q.shape != (self.n_bus,):
            raise ValueError(
                f"p_mw and q_mvar need one entry per net.bus row ({self.n_bus}); "
                f"got shapes {p.shape} and {q.shape}"
            )
        m = self._model
        s_pu = np.empty(m.n_int, dtype=np.complex128)
        _aggregate_kernel(p, q, m.energised_pos, m.bus_int, 1.0 / m.base_mva, s_pu)
        s_pu += m.s_dcline
        if not np.isfinite(s_pu).all():
            return self._failed(0)
        return self._run(Injections(s_pu))

    def solve_net(self) -> PowerFlowResult:
        """Solve the power flow of the net's own elements (loads, static generators, generators,
        storage, wards, motors) as ``runpp`` models them, voltage-dependent loads included."""
        m = self._model
        return self._run(Injections(m.s_const, m.s_i, m.s_z) if m.voltage_dependent else Injections(m.s_const))

    # ------------------------------------------------------------------ internals
    def _run(self, s: Injections) -> PowerFlowResult:
        """Solve for injections ``s``, keep the warm start, and build the result."""
        v, iterations, start, q_limited = self._iterate(s)
        if v is None or not np.isfinite(v).all():
            return self._failed(iterations)
        if self.warm_start:
            self._v_warm = v
        return self._result(v, s, iterations, start, q_limited)

    def _iterate(self, s: Injections) -> tuple[np.ndarray | None, int, str, int]:
        """Z-bus, then Newton from each start in turn, then Q limits; returns (V, iterations, start, q-limited buses)."""
        m = self._model
        if self._zbus is None:  # every bus is a reference bus
            return m.v_set.copy(), 0, "reference", 0
        iterations = 0
        starts: list[Start] = []
        if self.warm_start and self._v_warm is not None:
            warm = self._v_warm
            starts.append(("warm", lambda: warm))
        if m.pv.size == 0 and s.current is None and self.zbus_max_iter > 0:
            v0 = self._v_warm if self.warm_start and self._v_warm is not None else self._v_no_load
            nr = self._non_ref
            v_l, it, ok, improved = self._zbus.iterate(s.const[nr], v0[nr], self.tol_pu, self.zbus_max_iter)
            iterations += it
            if ok or improved:
                v_z = v0.copy()
                v_z[nr] = v_l
                if ok:
                    return v_z, iterations, "zbus", 0
                starts.insert(0, ("zbus", lambda: v_z))
        starts += [("dc", lambda: self._dc_start(s)), ("no-load", self._no_load_start), ("flat", self._flat_start)]
        v, it, start = self._newton(s, starts, m.pv, m.pq)
        iterations += it
        if v is None or not self.enforce_q_lims or m.pv.size == 0:
            return v, iterations, start, 0
        return self._hold_q_limits(s, v, iterations, start)

    def _newton(self, s: Injections, starts: list[Start],
                pv: np.ndarray, pq: np.ndarray) -> tuple[np.ndarray | None, int, str]:
        """Newton from each start, plain then with line search; the first that converges wins."""
        key = pv.tobytes()
        if key not in self._newtons:
            self._newtons[key] = NewtonSolver(self._model.ybus, pv, pq)
        solver = self._newtons[key]
        iterations = 0
        for line_search in (False, True):
            for name, start in starts:
                v0 = start()
                if v0 is None:
                    continue
                v, it, ok, _err = solver.solve(s, v0, self.tol_pu, self.max_iter, line_search=line_search)
                iterations += it
                if ok:
                    return v, iterations, name + ("+line-search" if line_search else "")
        return None, iterations, ""

    def _hold_q_limits(self, s: Injections, v: np.ndarray, iterations: int, start: str
                       ) -> tuple[np.ndarray | None, int, str, int]:
        """Turn PV buses whose generators leave their reactive range into PQ buses at the violated
        limit (all violations of a round at once, as pandapower), re-solving until none is left."""
        m = self._model
        pv, pq = m.pv, m.pq
        q_min, q_max = m.q_min_pu, m.q_max_pu
        s_const = s.const.copy()
        for _ in range(m.pv.size):
            s_bus = v * np.conj(m.ybus @ v)
            q_gen = s_bus.imag[pv] - s.at(v, pv).imag  # the generators' share at each PV bus
            over, under = q_gen > q_max + self.tol_pu, q_gen < q_min - self.tol_pu
            hit = over | under
            if not hit.any():
                break
            s_const[pv[over]] += 1j * q_max[over]
            s_const[pv[under]] += 1j * q_min[under]
            pq = np.sort(np.r_[pq, pv[hit]]).astype(np.int64)
            pv, q_min, q_max = pv[~hit], q_min[~hit], q_max[~hit]
            s = s._replace(const=s_const.copy())
            starts = self._restarts(s, v)
            v_next, it, _ = self._newton(s, starts, pv, pq)
            iterations += it
            if v_next is None:
                return None, iterations, "", 0
            v = v_next
        return v, iterations, start, int(m.pv.size - pv.size)

    def _restarts(self, s: Injections, v: np.ndarray) -> list[Start]:
        """Starts after a change of bus types: where the last solve ended, then the cold starts."""
        return [("q-limits", lambda: v), ("dc", lambda: self._dc_start(s)), ("flat", self._flat_start)]

    def _dc_start(self, s: Injections) -> np.ndarray | None:
        """Angles of the lossless DC power flow for the scheduled active power (phase shifts included)."""
        m = self._model
        nr = self._non_ref
        if self._dc_lu is None:  # once per topology: the factors, and what the phase shifts and reference angles add
            try:
                self._dc_lu = spla.splu(m.dc_b[nr, :][:, nr].tocsc())
            except RuntimeError:  # singular: a part held only by zero-reactance couplers
                self._dc_lu = False
            self._dc_theta = np.empty(m.n_int)
            self._dc_theta[m.ref] = np.angle(m.v_set[m.ref])
            self._dc_offset = m.dc_p_shift[nr] + m.dc_b[nr, :][:, m.ref] @ self._dc_theta[m.ref]
        if self._dc_lu is False:
            return None
        theta = self._dc_theta.copy()
        theta[nr] = self._dc_lu.solve(np.real(s.at(self._vm_start))[nr] - self._dc_offset)  # P at flat magnitudes
        return self._vm_start * np.exp(1j * theta) if np.isfinite(theta).all() else None

    def _no_load_start(self) -> np.ndarray:
        """The no-load angles (phase shifts, charging) with Newton's start magnitudes."""
        return self._vm_start * np.exp(1j * np.angle(self._v_no_load))

    def _flat_start(self) -> np.ndarray:
        """Every bus at the reference angle, Newton's start magnitudes."""
        theta = float(np.mean(np.angle(self._model.v_set[self._model.ref])))
        return self._vm_start * np.exp(1j * theta)

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

    def _result(self, v: np.ndarray, s: Injections, iterations: int, start: str, q_limited: int) -> PowerFlowResult:
        m = self._model
        vm = np.full(self.n_bus, np.nan)
        va = np.full(self.n_bus, np.nan)
        loading = m.loading_template.copy()
        _post_kernel(v, m.energised_pos, m.bus_int, vm, va, *m.mon_yf, *m.mon_yt,
                     m.mon_cf, m.mon_ct, m.mon_out_pos, loading)
        injection = s.at(v)
        s_bus = v * np.conj(m.ybus @ v)
        mismatch = s_bus - injection
        mismatch[m.ref] = 0.0
        if m.pv.size:
            mismatch[m.pv] = mismatch[m.pv].real  # a PV bus's Q is its generators'
        ref = m.ref
        slack = complex(np.sum(s_bus[ref] - injection[ref])) * m.base_mva
        p_total_mw = float(np.sum(injection.real)) * m.base_mva
        return PowerFlowResult(
            converged=True,
            iterations=int(iterations),
            vm_pu=_frozen(vm),
            va_degree=_frozen(va),
            line_loading_pct=_frozen(loading[: m.n_line]),
            trafo_loading_pct=_frozen(loading[m.n_line:]),
            slack_p_mw=float(slack.real),
            slack_q_mvar=float(slack.imag),
            losses_mw=float(p_total_mw + slack.real),
            start=start,
            mismatch_mva=float(np.max(np.abs(mismatch), initial=0.0)) * m.base_mva,
            q_limited_buses=q_limited,
        )


def _frozen(a: np.ndarray) -> np.ndarray:
    """Mark a result array read-only so a shared result cannot be mutated by a consumer."""
    a.flags.writeable = False
    return a


# ====================================================================== kernels
@nb.njit(cache=True, error_model="numpy", nogil=True)
def _aggregate_kernel(p, q, pos, bus_int, inv_base, s_out):  # pragma: no cover - numba
    """s_out[internal bus] = sum of (p + jq) / base over its energised net.bus rows, in row order."""
    for i in range(s_out.shape[0]):
        s_out[i] = 0.0
    for k in range(pos.shape[0]):
        r = pos[k]
        s_out[bus_int[k]] += complex(p[r] * inv_base, q[r] * inv_base)


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



def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds the power flow's kernels already (the first run after install compiles them)."""
    try:
        path = Path(_zbus_kernel._cache._cache_path)  # type: ignore[attr-defined]  # numba's private cache, on purpose
    except AttributeError:  # another numba layout: assume cached rather than warn every time
        return True
    return any(path.glob("_pf_zbus._zbus_kernel-*.nbi"))
