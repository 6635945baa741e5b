"""DC optimal power flow (B-theta) with MATPOWER's or PowerModels' line model, solved by HiGHS.

The two line models differ in what a branch's susceptance is, and PGLib's published DC objectives
use PowerModels' (b = x/(r^2+x^2), taps and phase shifts ignored) while MATPOWER uses
b = 1/(x*tap) with phase shifters as fixed injections. Both consume bus shunt conductance at
V = 1 and enforce angle-difference limits. Nodal prices are the duals of the bus balance rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from plurigrid.opf import highs
from plurigrid.opf.network import OpfNetwork
from plurigrid.opf.result import OPTIMAL, OpfResult

LineModel = Literal["matpower", "powermodels"]
LINE_MODELS: tuple[str, ...] = ("matpower", "powermodels")
DC_OPTIONS = {"simplex_strategy": 4}  # HiGHS primal simplex: 1.5x faster than dual on case1354pegase


def branch_susceptance(net: OpfNetwork, line_model: LineModel) -> tuple[np.ndarray, np.ndarray]:
    """Per-branch DC susceptance and the flow each phase shifter forces (both per unit)."""
    if line_model == "powermodels":
        return net.x / (net.r**2 + net.x**2), np.zeros(net.n_branch)
    b = 1.0 / (net.x * net.tap)
    return b, -b * net.shift


def pwl_epigraph(net: OpfNetwork, first_col: int) -> tuple[sp.csr_matrix, np.ndarray, int]:
    """Rows `slope*P_g - z_g <= slope*p0 - c0` for piecewise-linear costs, in per-unit P.

    Returns (rows over [pg..., z...] columns starting at `first_col` for z, upper bounds, number of z).
    """
    gens = [g for g, pts in enumerate(net.cost_pwl) if pts is not None]
    rows, cols, vals, hi = [], [], [], []
    r = 0
    for k, g in enumerate(gens):
        pts = net.cost_pwl[g]
        assert pts is not None  # gens lists the generators with a piecewise-linear cost
        slope = np.diff(pts[:, 1]) / np.diff(pts[:, 0]) * net.base_mva
        icpt = pts[:-1, 1] - slope * pts[:-1, 0] / net.base_mva
        for s, c in zip(slope, icpt):
            rows += [r, r]
            cols += [g, first_col + k]
            vals += [s, -1.0]
            hi.append(-c)
            r += 1
    return sp.csr_matrix((vals, (rows, cols)), shape=(r, first_col + len(gens))), np.array(hi), len(gens)


@dataclass
class DcProgram:
    """The DC-OPF as `highs.solve`'s arrays, in per unit, and where each quantity lives in them.

    Columns: generator outputs [0, ng), bus angles [ng, ng + nb), piecewise-cost epigraph
    variables after them. Rows: bus balances [0, nb), then angle-difference limits of the
    branches `angle_branches`, then piecewise-cost rows. The rating limits of the branches
    `rated` are the lazy rows `flow_limits`, `flow @ x + shift_flow` being each branch's flow.
    """

    cost: np.ndarray
    quad: sp.spmatrix | None
    a: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    flow: sp.csr_matrix  # branch flow (pu) = flow @ x + shift_flow, every branch
    shift_flow: np.ndarray
    rated: np.ndarray
    rating: np.ndarray  # of the rated branches
    angle_branches: np.ndarray
    constant: float  # cost at zero output (sum of c0), money per hour

    @property
    def flow_limits(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """(A, lo, hi) of the rating rows, `lo <= A x <= hi`, one per rated branch."""
        shift = self.shift_flow[self.rated]
        return self.flow[self.rated], -self.rating - shift, self.rating - shift


def dc_program(net: OpfNetwork, line_model: LineModel = "matpower") -> DcProgram:
    """Minimum generation cost subject to DC power flow, branch ratings and angle-difference limits."""
    nb, ng, nl, base = net.n_bus, net.n_gen, net.n_branch, net.base_mva
    b, pf_shift = branch_susceptance(net, line_model)
    lines = np.arange(nl)
    incid = sp.csr_matrix((np.r_[np.ones(nl), -np.ones(nl)], (np.r_[lines, lines], np.r_[net.f, net.t])), shape=(nl, nb))
    bf = sp.diags(b) @ incid  # branch flow = bf @ theta + pf_shift
    bbus = incid.T @ bf
    p_shift_bus = incid.T @ pf_shift
    cg = net.gen_incidence()

    epi, epi_hi, nz = pwl_epigraph(net, ng + nb)
    nx = ng + nb + nz
    pad = lambda m: sp.hstack([m, sp.csr_matrix((m.shape[0], nx - m.shape[1]))])
    theta = lambda m: pad(sp.hstack([sp.csr_matrix((m.shape[0], ng)), m]))
    lim = np.flatnonzero(np.isfinite(net.rate))
    ang = np.flatnonzero(np.isfinite(net.angmin) | np.isfinite(net.angmax))
    demand = net.pd + net.gs + p_shift_bus
    a = sp.vstack([
        pad(sp.hstack([cg, -bbus])),
        theta(incid[ang]),
        pad(sp.csr_matrix(epi)) if nz else sp.csr_matrix((0, nx)),
    ]).tocsr()
    col_lo = np.r_[net.pmin, np.full(nb, -np.inf), np.full(nz, -np.inf)]
    col_hi = np.r_[net.pmax, np.full(nb, np.inf), np.full(nz, np.inf)]
    col_lo[ng + net.ref] = col_hi[ng + net.ref] = 0.0
    c2, c1, c0 = net.cost_poly.T
    return DcProgram(
        cost=np.r_[c1 * base, np.zeros(nb), np.ones(nz)],
        quad=sp.diags(np.r_[2 * c2 * base**2, np.zeros(nb + nz)]) if np.any(c2) else None,
        a=a, row_lo=np.r_[demand, net.angmin[ang], np.full(len(epi_hi), -np.inf)],
        row_hi=np.r_[demand, net.angmax[ang], epi_hi], col_lo=col_lo, col_hi=col_hi,
        flow=sp.csr_matrix(theta(bf)), shift_flow=pf_shift, rated=lim, angle_branches=ang,
        rating=net.rate[lim], constant=float(c0.sum()),
    )


def solve_dc(net: OpfNetwork, line_model: LineModel = "matpower") -> OpfResult:
    """Minimises generation cost subject to DC power flow, branch ratings and angle-difference limits.

    `shadow` holds the change of the cost (money per hour) per MW of each branch's rating and
    generator's P limits, and per degree of each angle-difference limit, zero where they do not bind.
    """
    t0 = time.perf_counter()
    nb, ng, base = net.n_bus, net.n_gen, net.base_mva
    prog = dc_program(net, line_model)
    build = time.perf_counter() - t0
    # branch limits bind on few branches: added as violated (same optimum, a fraction of the rows)
    sol = highs.solve(prog.cost, prog.a, prog.row_lo, prog.row_hi, prog.col_lo, prog.col_hi, prog.quad,
                      lazy=prog.flow_limits, options=DC_OPTIONS)
    ok = sol.status == OPTIMAL
    pg, th = sol.x[:ng], sol.x[ng:ng + nb]
    return OpfResult(
        model=f"dc-{line_model}", status=sol.status, objective=sol.objective + prog.constant if ok else float("nan"),
        solve_time_s=sol.solve_time_s, build_time_s=build, pg_mw=pg * base, lmp=sol.row_dual[:nb] / base,
        va_deg=np.rad2deg(th), vm_pu=np.ones(nb) if ok else None, branch_p_mw=(prog.flow @ sol.x + prog.shift_flow) * base,
        iterations=sol.iterations, attempts=list(sol.attempts), shadow=_shadow_prices(net, prog, sol) if ok else {},
    )


def _shadow_prices(net: OpfNetwork, prog: DcProgram, sol: highs.Solution) -> dict[str, np.ndarray]:
    """Signed d(cost)/d(limit) per MW of rating and P limit, per degree of angle limit (0 where slack)."""
    ng, base = net.n_gen, net.base_mva
    rate = np.zeros(net.n_branch)
    added = sol.lazy_added if sol.lazy_added is not None else np.zeros(0, dtype=np.int64)
    lazy_dual = sol.row_dual[prog.a.shape[0]:prog.a.shape[0] + len(added)]
    rate[prog.rated[added]] = -np.abs(lazy_dual) / base  # raising a rating only ever relaxes the model
    col = sol.col_dual[:ng] / base if sol.col_dual is not None else np.full(ng, np.nan)
    ang_dual = sol.row_dual[net.n_bus:net.n_bus + len(prog.angle_branches)] * np.pi / 180
    angle_max, angle_min = np.zeros(net.n_branch), np.zeros(net.n_branch)
    angle_max[prog.angle_branches] = np.minimum(ang_dual, 0.0)
    angle_min[prog.angle_branches] = np.maximum(ang_dual, 0.0)
    return {"branch_rating": rate, "gen_pmax": np.minimum(col, 0.0), "gen_pmin": np.maximum(col, 0.0),
            "angle_max": angle_max, "angle_min": angle_min}
