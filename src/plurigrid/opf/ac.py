"""AC optimal power flow in polar form (voltage magnitude and angle), solved by IPOPT through casadi.

The model is the one MATPOWER and PowerModels' ACP use, so PGLib's published AC objectives are a
direct check: a pi model per branch with off-nominal tap and phase shift (and, from pandapower
nets, the branch shunt conductance of T-model transformers and lines), bus shunts, nodal
active and reactive balance, apparent-power ratings at both branch ends, angle-difference
limits, voltage and generator bounds, and quadratic (or convex piecewise-linear) generator cost.

Every expression is built on whole arrays: one casadi MX node per vector operation and sparse
incidence matrices for the bus sums. MX rather than SX (scalar graphs) because casadi then
differentiates a few dozen vector nodes instead of ~10^5 scalar ones: on a 1354-bus case the
NLP builds in about 0.1 s instead of 1.6 s, with the same iterates. IPOPT runs with fixed options
from a fixed start, which makes the result reproducible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import casadi as ca
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from plurigrid.opf.highs import INTERIOR_QP
from plurigrid.opf.interior import OPTIMAL_STATUSES, casadi_sparse, ipopt_options, start_point
from plurigrid.opf.network import OpfNetwork
from plurigrid.opf.result import FAILED, INFEASIBLE, OPTIMAL, OpfResult


def branch_admittances(net: OpfNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-branch Yff, Yft, Ytf, Ytt (per unit) of the pi model, as MATPOWER's and pandapower's makeYbus build them.

    Series admittance 1/(r+jx), half the shunt admittance g+jb at each end, and a transformer of
    complex ratio tap*e^(j shift) at the from end. pandapower's asymmetric branches (impedance
    elements, unevenly split transformer leakage) add `r_asym + j x_asym` to the series impedance
    seen from the to end and `g_asym + j b_asym` to the to end's shunt; MATPOWER cases have none.
    """
    ys_from = 1.0 / (net.r + 1j * net.x)
    ys_to = 1.0 / (net.r + net.r_asym + 1j * (net.x + net.x_asym))
    shunt = net.g + 1j * net.b
    ratio = net.tap * np.exp(1j * net.shift)
    yff = (ys_from + 0.5 * shunt) / net.tap**2
    ytt = ys_to + 0.5 * (shunt + net.g_asym + 1j * net.b_asym)
    return yff, -ys_from / np.conj(ratio), -ys_to / ratio, ytt


def _branch_flows(net: OpfNetwork, vm: ca.MX, va: ca.MX) -> tuple[ca.MX, ca.MX, ca.MX, ca.MX]:
    """Active and reactive power entering each branch at its from and to ends (per unit)."""
    yff, yft, ytf, ytt = branch_admittances(net)
    vf, vt = vm[net.f], vm[net.t]
    cos_ft, sin_ft = ca.cos(va[net.f] - va[net.t]), ca.sin(va[net.f] - va[net.t])
    vv = vf * vt
    # S_f = conj(Yff)|V_f|^2 + conj(Yft) V_f conj(V_t), with V_f conj(V_t) = vf vt e^{j(va_f - va_t)}
    pf = yff.real * vf**2 + vv * (yft.real * cos_ft + yft.imag * sin_ft)
    qf = -yff.imag * vf**2 + vv * (yft.real * sin_ft - yft.imag * cos_ft)
    # at the to end the angle difference flips sign: cos is even, sin is odd
    pt = ytt.real * vt**2 + vv * (ytf.real * cos_ft - ytf.imag * sin_ft)
    qt = -ytt.imag * vt**2 + vv * (-ytf.real * sin_ft - ytf.imag * cos_ft)
    return pf, qf, pt, qt


def _pwl_epigraph(net: OpfNetwork, pg_mw: ca.MX) -> tuple[ca.MX, ca.MX, np.ndarray]:
    """Epigraph variables and constraints `y_g - slope*Pg >= intercept` for piecewise-linear costs.

    A convex piecewise-linear cost is the maximum of its segments' lines, so minimising y with
    y above every line gives the cost at the optimum while keeping the problem smooth.
    """
    gens = [g for g, pts in enumerate(net.cost_pwl) if pts is not None]
    y = ca.MX.sym("y_pwl", len(gens))
    rows, cols, intercepts = [], [], []
    slopes: list[float] = []
    for k, g in enumerate(gens):
        pts = net.cost_pwl[g]
        assert pts is not None  # gens lists the generators with a piecewise-linear cost
        slope = np.diff(pts[:, 1]) / np.diff(pts[:, 0])
        rows.extend([k] * len(slope))
        cols.extend([g] * len(slope))
        slopes.extend(slope)
        intercepts.extend(pts[:-1, 1] - slope * pts[:-1, 0])
    n_seg = len(rows)
    pick_y = casadi_sparse(sp.csr_matrix((np.ones(n_seg), (np.arange(n_seg), rows)), shape=(n_seg, len(gens))))
    slope_pg = casadi_sparse(sp.csr_matrix((slopes, (np.arange(n_seg), cols)), shape=(n_seg, net.n_gen)))
    return y, ca.mtimes(pick_y, y) - ca.mtimes(slope_pg, pg_mw), np.asarray(intercepts, float)


def shifted_angles(net: OpfNetwork) -> np.ndarray:
    """Bus angles (radians) that the phase shifts alone impose: a DC power flow with no injections.

    A flat start puts both sides of a 150-degree transformer (SimBench, pandapower's examples) at
    the same angle, which IPOPT may not recover from; starting from these angles it does. Zero
    where the network has no phase shifter, or where the DC system cannot be solved.
    """
    if not np.any(net.shift):
        return np.zeros(net.n_bus)
    b = 1.0 / (net.x * net.tap)
    lines = np.arange(net.n_branch)
    incid = sp.csr_matrix((np.r_[np.ones(net.n_branch), -np.ones(net.n_branch)], (np.r_[lines, lines], np.r_[net.f, net.t])),
                          shape=(net.n_branch, net.n_bus))
    bbus = (incid.T @ sp.diags(b) @ incid).tocsc()
    free = np.setdiff1d(np.arange(net.n_bus), net.ref)
    theta = np.zeros(net.n_bus)
    try:  # branch flow b*(theta_f - theta_t - shift) = 0 on every branch that can carry none
        theta[free] = spla.splu(bbus[free][:, free]).solve(np.asarray(incid.T @ (b * net.shift))[free])
    except RuntimeError:  # singular: an island without a reference bus
        return np.zeros(net.n_bus)
    return theta


@dataclass
class AcModel:
    """The AC power-flow part of the OPF as casadi expressions over (va, vm, pg, qg), in per unit.

    `balance` (active then reactive, per bus) must be 0; `s_from2`/`s_to2` are the squared
    apparent powers of the `rated` branches at each end; `angle_diff` belongs to the `limited`
    branches. `start` is the deterministic start for (va, vm, pg, qg).
    """

    va: ca.MX
    vm: ca.MX
    pg: ca.MX
    qg: ca.MX
    p_from: ca.MX
    balance: ca.MX
    rated: np.ndarray
    s_from2: ca.MX
    s_to2: ca.MX
    limited: np.ndarray
    angle_diff: ca.MX
    start: np.ndarray


def ac_model(net: OpfNetwork) -> AcModel:
    """Variables, nodal balances, branch apparent powers and angle differences of `net`."""
    n, g_count = net.n_bus, net.n_gen
    va, vm = ca.MX.sym("va", n), ca.MX.sym("vm", n)
    pg, qg = ca.MX.sym("pg", g_count), ca.MX.sym("qg", g_count)
    pf, qf, pt, qt = _branch_flows(net, vm, va)

    branch_ids = np.arange(net.n_branch)
    c_from = casadi_sparse(sp.csr_matrix((np.ones(net.n_branch), (net.f, branch_ids)), shape=(n, net.n_branch)))
    c_to = casadi_sparse(sp.csr_matrix((np.ones(net.n_branch), (net.t, branch_ids)), shape=(n, net.n_branch)))
    c_gen = casadi_sparse(net.gen_incidence())
    p_balance = ca.mtimes(c_gen, pg) - net.pd - net.gs * vm**2 - ca.mtimes(c_from, pf) - ca.mtimes(c_to, pt)
    q_balance = ca.mtimes(c_gen, qg) - net.qd + net.bs * vm**2 - ca.mtimes(c_from, qf) - ca.mtimes(c_to, qt)

    rated = np.flatnonzero(np.isfinite(net.rate))
    limited = np.flatnonzero(np.isfinite(net.angmin) | np.isfinite(net.angmax))
    start = np.concatenate([shifted_angles(net), start_point(net.vmin, net.vmax, 1.0), start_point(net.pmin, net.pmax, 0.0),
                            start_point(net.qmin, net.qmax, 0.0)])
    return AcModel(va, vm, pg, qg, pf, ca.vertcat(p_balance, q_balance), rated,
                   pf[rated] ** 2 + qf[rated] ** 2, pt[rated] ** 2 + qt[rated] ** 2,
                   limited, va[net.f[limited]] - va[net.t[limited]], start)


def branch_power(net: OpfNetwork, vm: np.ndarray, va_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex power entering each branch at its from and to ends (per unit), for a voltage solution."""
    yff, yft, ytf, ytt = branch_admittances(net)
    v = vm * np.exp(1j * va_rad)
    vf, vt = v[net.f], v[net.t]
    return vf * np.conj(yff * vf + yft * vt), vt * np.conj(ytf * vf + ytt * vt)


def solve_ac(net: OpfNetwork, *, tol: float = 1e-8, max_iter: int = 500, print_level: int = 0) -> OpfResult:
    """Minimum-cost AC dispatch of `net`; status infeasible (not an exception) when no point meets the limits.

    `tol` is IPOPT's convergence tolerance, `max_iter` its iteration limit and `print_level` its
    console verbosity (0 = silent). LMPs are the duals of the active-power balance in $/MWh
    (cost of one more MW of load at the bus); they and the objective are NaN unless optimal.
    IPOPT's "solved to acceptable level" counts as optimal; its own status word is kept in
    `extra["solver_status"]`. `shadow` holds the change of the cost per MVA of each branch's
    rating, per MW/MVAr of each generator limit, per pu of each voltage limit and per degree of
    each angle-difference limit (zero where they do not bind).
    """
    t0 = time.perf_counter()
    n, g_count, base = net.n_bus, net.n_gen, net.base_mva
    m = ac_model(net)
    rated, limited = m.rated, m.limited

    pg_mw = base * m.pg
    c2, c1, c0 = net.cost_poly.T
    cost = ca.sum1(c2 * pg_mw**2 + c1 * pg_mw) + float(np.sum(c0))
    y, pwl_rows, intercepts = _pwl_epigraph(net, pg_mw)
    cost = ca.densify(cost + ca.sum1(y))  # a case without costs: IPOPT needs the (zero) objective as a dense 1x1

    x = ca.vertcat(m.va, m.vm, m.pg, m.qg, y)
    g = ca.vertcat(m.balance, m.s_from2, m.s_to2, m.angle_diff, pwl_rows)
    no_lower = np.full(2 * len(rated), -np.inf)
    lbg = np.concatenate([np.zeros(2 * n), no_lower, net.angmin[limited], intercepts])
    ubg = np.concatenate([np.zeros(2 * n), net.rate[rated] ** 2, net.rate[rated] ** 2,
                          net.angmax[limited], np.full(len(intercepts), np.inf)])
    va_lo, va_hi = np.full(n, -np.inf), np.full(n, np.inf)
    va_lo[net.ref] = va_hi[net.ref] = 0.0
    n_y = y.numel()
    lbx = np.concatenate([va_lo, net.vmin, net.pmin, net.qmin, np.full(n_y, -np.inf)])
    ubx = np.concatenate([va_hi, net.vmax, net.pmax, net.qmax, np.full(n_y, np.inf)])
    pg0 = m.start[2 * n:2 * n + g_count]
    y0 = [float(np.interp(base * pg0[k], pts[:, 0], pts[:, 1])) for k, pts in enumerate(net.cost_pwl) if pts is not None]
    x0 = np.concatenate([m.start, y0])

    solver = ca.nlpsol("ac_opf", "ipopt", {"x": x, "f": cost, "g": g}, ipopt_options(tol, max_iter, print_level))
    t1 = time.perf_counter()
    sol = solver(x0=x0, lbx=lbx, ubx=ubx, lbg=lbg, ubg=ubg)
    t2 = time.perf_counter()

    stats = solver.stats()
    raw_status = stats["return_status"]
    status = OPTIMAL if raw_status in OPTIMAL_STATUSES else INFEASIBLE if raw_status == "Infeasible_Problem_Detected" else FAILED
    xs = np.asarray(sol["x"]).ravel()
    va_s, vm_s, pg_s, qg_s = np.split(xs[: 2 * n + 2 * g_count], [n, 2 * n, 2 * n + g_count])
    flows = ca.Function("flows", [m.va, m.vm], [m.p_from])
    optimal = status == OPTIMAL
    # casadi's Lagrangian is f + lam'g; with g = injection - demand, d(cost)/d(demand) = -lam
    lam_g, lam_x = np.asarray(sol["lam_g"]).ravel(), np.asarray(sol["lam_x"]).ravel()
    lmp = -lam_g[:n] / base if optimal else np.full(n, np.nan)
    return OpfResult(
        model="ac", status=status, objective=float(sol["f"]) if optimal else float("nan"),
        solve_time_s=t2 - t1, build_time_s=t1 - t0,
        pg_mw=base * pg_s, lmp=lmp, va_deg=np.rad2deg(va_s), vm_pu=vm_s, qg_mvar=base * qg_s,
        branch_p_mw=base * np.asarray(flows(va_s, vm_s)).ravel(),
        iterations=int(stats["iter_count"]), attempts=[f"{INTERIOR_QP}: {status}"],
        shadow=_shadow_prices(net, m, lam_x, lam_g) if optimal else {}, extra={"solver_status": raw_status},
    )


def _shadow_prices(net: OpfNetwork, m: AcModel, lam_x: np.ndarray, lam_g: np.ndarray) -> dict[str, np.ndarray]:
    """Signed d(cost)/d(limit) from IPOPT's multipliers (casadi: d(cost)/d(bound) = -lam)."""
    n, ng, base = net.n_bus, net.n_gen, net.base_mva
    d_vm, d_pg, d_qg = -lam_x[n:2 * n], -lam_x[2 * n:2 * n + ng] / base, -lam_x[2 * n + ng:2 * n + 2 * ng] / base
    k = len(m.rated)
    d_s2 = -(lam_g[2 * n:2 * n + k] + lam_g[2 * n + k:2 * n + 2 * k])  # per unit of rating squared, both ends
    rate = np.zeros(net.n_branch)
    rate[m.rated] = d_s2 * 2 * net.rate[m.rated] / base
    d_ang = -lam_g[2 * n + 2 * k:2 * n + 2 * k + len(m.limited)] * np.pi / 180
    angle_max, angle_min = np.zeros(net.n_branch), np.zeros(net.n_branch)
    angle_max[m.limited], angle_min[m.limited] = np.minimum(d_ang, 0.0), np.maximum(d_ang, 0.0)
    return {"branch_rating": rate, "gen_pmax": np.minimum(d_pg, 0.0), "gen_pmin": np.maximum(d_pg, 0.0),
            "gen_qmax": np.minimum(d_qg, 0.0), "gen_qmin": np.maximum(d_qg, 0.0),
            "vm_max": np.minimum(d_vm, 0.0), "vm_min": np.maximum(d_vm, 0.0), "angle_max": angle_max, "angle_min": angle_min}
