"""LinDistFlow: the linearised branch-flow model of radial distribution feeders.

Per branch f->t the active and reactive flows P, Q (lossless) and per bus the squared voltage
magnitude w = |V|^2 satisfy  w_t = w_f / tap^2 - 2 (r P + x Q)  (Baran & Wu, 1989, without the
loss terms). Unlike DC power flow it keeps reactive power and voltage limits, which are what bind
first in LV and MV feeders with PV. Shunts (bus, line charging and branch conductance, e.g.
transformer iron losses) act at w, which is exact in w; a branch's series impedance is the one
seen from its from end (pandapower's asymmetric impedances are for the AC model).
Thermal limits are a 16-sided polygon inscribed in the circle |S| <= rating (conservative).
The model is exact in neither losses nor meshes, so it refuses meshed networks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from plurigrid.opf.network import CaseError, OpfNetwork
from plurigrid.opf.program import Program
from plurigrid.opf.result import OPTIMAL, OpfResult

POLYGON_SIDES = 16


def loops(net: OpfNetwork) -> int:
    """Independent loops of the branch graph (0 for a radial network or a forest)."""
    graph = sp.csr_matrix((np.ones(net.n_branch), (net.f, net.t)), shape=(net.n_bus, net.n_bus))
    n_comp, _ = connected_components(graph, directed=False)
    return int(net.n_branch - net.n_bus + n_comp)


def merge_parallel(net: OpfNetwork) -> OpfNetwork:
    """Replaces parallel branches (same end buses and tap) by one equivalent branch.

    Parallel cables are the usual way a radial feeder gets a "loop"; their equivalent is exact
    for the flow split (by admittance), and the rating is the total at which the first of them
    reaches its own limit.
    """
    lo, hi = np.minimum(net.f, net.t), np.maximum(net.f, net.t)
    keys = np.stack([lo, hi, np.round(np.where(net.f <= net.t, net.tap, 1.0 / net.tap), 9)], axis=1)
    _, group, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    if counts.max(initial=1) == 1:
        return net
    group = group.ravel()
    y = 1.0 / (net.r + 1j * net.x)
    y_sum = np.bincount(group, y.real) + 1j * np.bincount(group, y.imag)
    share = np.abs(y) / np.abs(y_sum[group])
    rate = np.full(len(counts), np.inf)
    np.minimum.at(rate, group, net.rate / share)
    first = np.unique(group, return_index=True)[1]
    z = 1.0 / y_sum
    b, g, g_asym, b_asym = (np.bincount(group, shunt) for shunt in (net.b, net.g, net.g_asym, net.b_asym))  # shunts add up
    merged = replace(net, f=net.f[first], t=net.t[first], r=z.real, x=z.imag, rate=rate, b=b, g=g, g_asym=g_asym, b_asym=b_asym,
                     tap=net.tap[first], shift=net.shift[first], angmin=net.angmin[first], angmax=net.angmax[first],
                     branch_index=net.branch_index[first], r_asym=np.zeros(len(first)), x_asym=np.zeros(len(first)),
                     branch_label=[net.branch_label[k] for k in first])
    return merged


@dataclass
class FeederBlock:
    """Variables and balance rows of a LinDistFlow network over `periods` periods.

    Callers add their injections (per unit, + into the bus) to `p_balance` and `q_balance`,
    whose right-hand sides are the fixed demands passed in.
    """

    p_flow: np.ndarray  # (periods, branches) columns
    q_flow: np.ndarray
    w: np.ndarray  # (periods, buses) squared voltage magnitude
    p_balance: np.ndarray  # (periods, buses) rows
    q_balance: np.ndarray


def feeder_block(prog: Program, net: OpfNetwork, pd: np.ndarray, qd: np.ndarray, w_ref: np.ndarray | float | None = None,
                 name: str = "network", voltage_penalty: float | None = None) -> FeederBlock:
    """Adds the LinDistFlow network for demands `pd`, `qd` (periods x buses, per unit) to `prog`.

    `w_ref` fixes the squared voltage at the reference buses (the upstream grid's set point);
    None leaves it to the optimiser within the bus limits. With `voltage_penalty` the voltage limits
    are soft: each unit of w outside them costs that much, so a grid that violates them whatever the
    dispatch (a set point above a bus's maximum, say) still gets the least-violating plan.
    """
    if (n_loops := loops(net)) > 0:
        raise CaseError(f"{name}: LinDistFlow needs a radial network; this one has {n_loops} loop(s) (use the DC model)")
    periods = pd.shape[0]
    nb, nl = net.n_bus, net.n_branch
    rate = net.rate
    p = prog.var((periods, nl), lo=np.where(np.isfinite(rate), -rate, -np.inf), hi=rate)
    q = prog.var((periods, nl), lo=np.where(np.isfinite(rate), -rate, -np.inf), hi=rate)
    w_lo, w_hi = np.broadcast_to(net.vmin**2, (periods, nb)).copy(), np.broadcast_to(net.vmax**2, (periods, nb)).copy()
    if w_ref is not None:
        w_lo[:, net.ref] = w_hi[:, net.ref] = np.broadcast_to(w_ref, (periods, len(net.ref)))
    if voltage_penalty is None:
        w = prog.var((periods, nb), lo=w_lo, hi=w_hi)
    else:  # soft limits: a violation (in units of w) costs `voltage_penalty`; the rows bind rarely
        fixed = np.zeros((periods, nb), dtype=bool) if w_ref is None else np.isin(np.arange(nb), net.ref)[None, :].repeat(periods, 0)
        w = prog.var((periods, nb), lo=np.where(fixed, w_lo, 0.0), hi=np.where(fixed, w_hi, np.inf))
        under = prog.var((periods, nb), cost=voltage_penalty)
        over = prog.var((periods, nb), cost=voltage_penalty)
        prog.constrain_lazily(w_lo, np.inf, (w, 1.0), (under, 1.0))
        prog.constrain_lazily(-np.inf, w_hi, (w, 1.0), (over, -1.0))

    line_b = np.bincount(net.f, net.b / 2, nb) + np.bincount(net.t, (net.b + net.b_asym) / 2, nb)
    line_g = np.bincount(net.f, net.g / 2, nb) + np.bincount(net.t, (net.g + net.g_asym) / 2, nb)
    pb = prog.rows(pd, pd, (periods, nb))
    qb = prog.rows(qd, qd, (periods, nb))
    prog.add(pb[:, net.t], p, 1.0)
    prog.add(pb[:, net.f], p, -1.0)
    prog.add(pb, w, -(net.gs + line_g))
    prog.add(qb[:, net.t], q, 1.0)
    prog.add(qb[:, net.f], q, -1.0)
    prog.add(qb, w, net.bs + line_b)
    prog.constrain(0.0, 0.0, (w[:, net.t], 1.0), (w[:, net.f], -1.0 / net.tap**2), (p, 2 * net.r), (q, 2 * net.x))

    lim = np.flatnonzero(np.isfinite(rate))
    angles = (np.arange(POLYGON_SIDES) + 0.5) * 2 * np.pi / POLYGON_SIDES
    facet = (rate[lim] * np.cos(np.pi / POLYGON_SIDES))[None, :, None]
    # the box |P|, |Q| <= rating is in the column bounds; the polygon's facets rarely bind: added when violated
    prog.constrain_lazily(-np.inf, facet, (p[:, lim, None], np.cos(angles)), (q[:, lim, None], np.sin(angles)))
    return FeederBlock(p, q, w, pb, qb)


def solve_lindistflow(net: OpfNetwork) -> OpfResult:
    """Cost-minimal dispatch of the case's generators on a radial network under LinDistFlow."""
    t0 = time.perf_counter()
    base, ng = net.base_mva, net.n_gen
    if any(pts is not None for pts in net.cost_pwl):
        raise CaseError(f"{net.name}: piecewise-linear costs are supported by the DC and AC models only")
    prog = Program()
    c2, c1, c0 = net.cost_poly.T
    pg = prog.var(ng, lo=net.pmin, hi=net.pmax, cost=c1 * base, quad=2 * c2 * base**2)
    qg = prog.var(ng, lo=net.qmin, hi=net.qmax)
    prog.constant = float(c0.sum())
    block = feeder_block(prog, net, net.pd[None, :], net.qd[None, :], name=net.name)
    prog.add(block.p_balance[0, net.gen_bus], pg, 1.0)
    prog.add(block.q_balance[0, net.gen_bus], qg, 1.0)
    build = time.perf_counter() - t0
    sol = prog.solve()
    ok = sol.status == OPTIMAL
    x = sol.x
    return OpfResult(
        model="lindistflow", status=sol.status, objective=sol.objective if ok else float("nan"),
        solve_time_s=sol.solve_time_s, build_time_s=build, pg_mw=x[pg] * base, qg_mvar=x[qg] * base,
        lmp=sol.row_dual[block.p_balance[0]] / base, va_deg=np.full(net.n_bus, np.nan),
        vm_pu=np.sqrt(np.maximum(x[block.w[0]], 0.0)), branch_p_mw=x[block.p_flow[0]] * base, iterations=sol.iterations,
        attempts=list(sol.attempts),
    )
