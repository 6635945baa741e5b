"""Why an OPF came out as it did: the limits that bind at an optimum, or the fewest to relax when there is none.

At an optimum, a limit binds when the solution sits on it (within `BINDING_TOL_PU`, per unit of
the case's base, radians for angles); its shadow price is the change of the cost, in money per
hour, per unit (MW, MVA, MVAr, pu, degree) the limit is raised, from the solver's duals.

Without an optimum, limits get elastic slack variables and the smallest relaxation is sought:
- DC model: a MILP (HiGHS) with one binary per limit minimises the number of relaxed limits,
  then, at that number, the total relaxation (MW, and radians for angle limits);
- AC model: an elastic NLP (IPOPT) minimises the weighted sum of relaxations (per unit of power,
  of voltage, of rating, radians), re-solved with weights 1/(relaxation + 0.001) a few times
  (iteratively reweighted L1, which drives small relaxations to zero): few limits, not proven the
  fewest, and a local optimum like every AC-OPF solution.
Bus balances are never relaxed: demand is data, and a demand no generation can meet shows as the
generator limits to raise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import casadi as ca
import numpy as np
import scipy.sparse as sp

from plurigrid.opf import highs
from plurigrid.opf.ac import ac_model, branch_power
from plurigrid.opf.dc import LineModel, dc_program
from plurigrid.opf.interior import OPTIMAL_STATUSES, ipopt_options
from plurigrid.opf.network import OpfNetwork
from plurigrid.opf.result import OPTIMAL, OpfResult

BINDING_TOL_PU = {"dc": 1e-6, "ac": 1e-5}  # HiGHS meets limits to 1e-7; IPOPT stays ~1e-8 inside them
RELAXED_TOL_PU = {"dc": 1e-6, "ac": 1e-4}  # a simplex vertex's slacks are exact; IPOPT's stop ~1e-6 above 0
MIP_NODE_LIMIT = 500
REWEIGHTING_ROUNDS, REWEIGHTING_EPS_PU = 6, 1e-3  # AC: iteratively reweighted L1, which favours fewer limits
UNITS = {"branch_rating": "MVA", "gen_pmax": "MW", "gen_pmin": "MW", "gen_qmax": "MVAr", "gen_qmin": "MVAr",
         "vm_max": "pu", "vm_min": "pu", "angle_max": "deg", "angle_min": "deg"}
DC_METHOD = "MILP (HiGHS): the fewest limits, each moved by the least"
DC_METHOD_UNPROVEN = f"MILP (HiGHS) stopped after {MIP_NODE_LIMIT:,} nodes: the fewest limits it found, not proven the fewest"
AC_METHOD = ("elastic NLP (IPOPT): least weighted sum of relaxations, reweighted towards fewer limits "
             "(not proven the fewest; a local optimum)")


@dataclass(frozen=True)
class Limit:
    """One limit: `kind` (a key of UNITS), the element it belongs to and where the solution stands.

    At an optimum `value` is the solution's (signed flow, output, voltage, angle difference) and
    `shadow_price` d(cost)/d(limit) in money per hour per unit (None where the solver gives none).
    For a relaxation `value` is the limit the case needs (`limit` moved by `by`).
    """

    kind: str
    element: str
    index: int  # position of the branch, generator or bus in the OPF network
    value: float
    limit: float
    unit: str
    shadow_price: float | None = None
    by: float | None = None

    def line(self) -> str:
        name = f"{self.kind.replace('_', ' '):<14} {self.element}"
        if self.by is not None:
            return f"{name}: {_num(self.limit)} -> {_num(self.value)} {self.unit} ({_num(self.by, '+')})"
        price = "" if self.shadow_price is None else f"; +1 {self.unit} of limit: {_num(self.shadow_price, '+')} per h"
        return f"{name}: {_num(self.value)} {self.unit} at its limit {_num(self.limit)} {self.unit}{price}"


def _num(value: float, sign: str = "") -> str:
    """Four decimals, without the "-0.0000" of a value a solver left a hair below zero."""
    return f"{round(value, 9) + 0.0:{sign},.4f}"


@dataclass
class Explanation:
    """What `plurigrid opf --explain` prints: binding limits of an optimum or relaxations of an infeasible case."""

    status: str
    binding: list[Limit] = field(default_factory=list)
    relaxations: list[Limit] = field(default_factory=list)
    method: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"status": self.status, "binding": [asdict(b) for b in self.binding],
                "relaxations": [asdict(r) for r in self.relaxations], "method": self.method, "notes": self.notes}

    def lines(self) -> list[str]:
        out = list(self.notes)
        if self.status == OPTIMAL:
            out.append(f"binding limits: {len(self.binding)}")
            out += ["  " + b.line() for b in self.binding]
        elif self.method is not None:
            out.append(f"limits to relax for a feasible case: {len(self.relaxations)} ({self.method})")
            out += ["  " + r.line() for r in self.relaxations]
        return out


def explain(net: OpfNetwork, result: OpfResult, model: str, line_model: LineModel = "matpower") -> Explanation:
    """Binding limits of an optimal `result` of the dc or ac model, else the smallest relaxation that makes `net`
    feasible. ValueError for another model (lindistflow has no angles to explain limits by)."""
    if model not in ("dc", "ac"):
        raise ValueError(f"explain: supported for the dc and ac models, not {model!r}")
    kind = model
    if result.ok:
        return Explanation(result.status, binding=binding(net, result, kind))
    notes = _capacity_notes(net)
    if kind == "dc":
        found = relax_dc(net, line_model)
        if found is None:
            notes.append("no relaxation of limits makes the case feasible: a bus balance cannot be met "
                         "(an island without generation?)")
            return Explanation(result.status, notes=notes)
        relaxed, proven = found
        method = DC_METHOD if proven else DC_METHOD_UNPROVEN
    else:
        relaxed, solved = relax_ac(net)
        if not solved:
            notes.append("the elastic AC model found no point either")
            return Explanation(result.status, notes=notes)
        method = AC_METHOD
    return Explanation(result.status, relaxations=relaxed, method=method, notes=notes)


def binding(net: OpfNetwork, result: OpfResult, kind: str) -> list[Limit]:
    """Limits the optimal `result` sits on, with shadow prices where the formulation gives them."""
    tol, base = BINDING_TOL_PU[kind], net.base_mva
    shadow = result.shadow
    out: list[Limit] = []

    def add(key: str, mask: np.ndarray, labels: list[str], value: np.ndarray, limit: np.ndarray, scale: float) -> None:
        prices = shadow.get(key)
        for i in np.flatnonzero(mask):
            price = None if prices is None or not np.isfinite(prices[i]) else float(prices[i])
            out.append(Limit(key, labels[i], int(i), float(value[i] * scale), float(limit[i] * scale), _unit(key, kind), price))

    loading = _branch_loading(net, result, kind)
    add("branch_rating", np.isfinite(net.rate) & (loading >= net.rate - tol), net.branch_label, loading, net.rate, base)
    pg = result.pg_mw / base
    free = net.pmax > net.pmin + tol  # a unit with pmin = pmax is a set point, not a limit
    add("gen_pmax", free & (pg >= net.pmax - tol), net.gen_label, pg, net.pmax, base)
    add("gen_pmin", free & (pg <= net.pmin + tol), net.gen_label, pg, net.pmin, base)
    if kind == "ac" and result.qg_mvar is not None and result.vm_pu is not None:
        qg = result.qg_mvar / base
        free_q = net.qmax > net.qmin + tol
        add("gen_qmax", free_q & (qg >= net.qmax - tol), net.gen_label, qg, net.qmax, base)
        add("gen_qmin", free_q & (qg <= net.qmin + tol), net.gen_label, qg, net.qmin, base)
        vm, adjustable = result.vm_pu, net.vmax > net.vmin + tol
        buses = [f"bus {b}" for b in net.bus_id]
        add("vm_max", adjustable & (vm >= net.vmax - tol), buses, vm, net.vmax, 1.0)
        add("vm_min", adjustable & (vm <= net.vmin + tol), buses, vm, net.vmin, 1.0)
    diff = np.deg2rad(result.va_deg[net.f] - result.va_deg[net.t])
    add("angle_max", diff >= net.angmax - tol, net.branch_label, diff, net.angmax, 180 / np.pi)
    add("angle_min", diff <= net.angmin + tol, net.branch_label, diff, net.angmin, 180 / np.pi)
    return out


def _unit(kind: str, model: str) -> str:
    """A DC model's branch flows are active power; everything else is as UNITS says."""
    return "MW" if kind == "branch_rating" and model == "dc" else UNITS[kind]


def _branch_loading(net: OpfNetwork, result: OpfResult, kind: str) -> np.ndarray:
    """Per branch, what its rating limits (per unit): |P| under DC, the larger |S| of both ends under AC."""
    if kind == "dc" or result.vm_pu is None:
        return np.abs(np.nan_to_num(result.branch_p_mw if result.branch_p_mw is not None else np.zeros(net.n_branch))) / net.base_mva
    s_from, s_to = branch_power(net, result.vm_pu, np.deg2rad(result.va_deg))
    return np.maximum(np.abs(s_from), np.abs(s_to))


def _capacity_notes(net: OpfNetwork) -> list[str]:
    """Plain arithmetic first: total demand against the generators' total range."""
    base = net.base_mva
    demand = float(np.sum(net.pd + net.gs)) * base
    top, bottom = float(np.sum(net.pmax)) * base, float(np.sum(net.pmin)) * base
    notes = []
    if demand > top:
        notes.append(f"demand {demand:,.3f} MW exceeds the generators' total maximum {top:,.3f} MW")
    if demand < bottom:
        notes.append(f"demand {demand:,.3f} MW is below the generators' total minimum {bottom:,.3f} MW")
    return notes


@dataclass
class _Elastic:
    """Limits `lo <= a x <= hi` of one kind, each widened by its own slack s >= 0 (at most `big`)."""

    kind: str
    positions: np.ndarray  # element of each row (generator, branch)
    a: sp.csr_matrix
    lo: np.ndarray
    hi: np.ndarray
    big: float


def relax_dc(net: OpfNetwork, line_model: LineModel = "matpower") -> tuple[list[Limit], bool] | None:
    """The fewest DC limits to move (and by the least) for a feasible dispatch; None if none suffices.

    Each limit gets a slack s >= 0 and a binary z with s <= M z (M: all demand plus all negative
    generator minimums, or 2 pi for angles, beyond which no relaxation helps). An LP first finds
    the least total relaxation (whose limits are the MILP's first incumbent); the MILP then
    minimises the number of limits within MIP_NODE_LIMIT branch-and-bound nodes (a work limit,
    so the answer does not depend on the machine), and an LP moves those limits by the least.
    Returns the relaxations and whether their number is proven the fewest.
    """
    prog = dc_program(net, line_model)
    ng, n_x = net.n_gen, len(prog.cost)
    flow_a, flow_lo, flow_hi = prog.flow_limits
    ang_rows = np.arange(net.n_bus, net.n_bus + len(prog.angle_branches))
    big_p = float(np.sum(np.abs(prog.row_lo[:net.n_bus])) + np.sum(np.abs(net.pmin))) + 1e-3
    gens = sp.csr_matrix((np.ones(ng), (np.arange(ng), np.arange(ng))), shape=(ng, n_x))
    ang_a, free_g, free_a = prog.a[ang_rows], np.full(ng, np.inf), np.full(len(ang_rows), np.inf)
    blocks = [
        _Elastic("gen_pmax", np.arange(ng), gens, -free_g, net.pmax, big_p),
        _Elastic("gen_pmin", np.arange(ng), gens, net.pmin, free_g, big_p),
        _Elastic("branch_rating", prog.rated, flow_a, flow_lo, flow_hi, big_p),
        _Elastic("angle_max", prog.angle_branches, ang_a, -free_a, prog.row_hi[ang_rows], 2 * np.pi),
        _Elastic("angle_min", prog.angle_branches, ang_a, prog.row_lo[ang_rows], free_a, 2 * np.pi),
    ]
    n_s = sum(len(b.positions) for b in blocks)
    n_cols = n_x + 2 * n_s  # x, slacks, binaries
    keep = np.setdiff1d(np.arange(prog.a.shape[0]), ang_rows)  # angle rows come back elastic
    widen = lambda a: sp.hstack([a, sp.csr_matrix((a.shape[0], 2 * n_s))]).tocsr()
    rows, lo, hi = [widen(prog.a[keep])], [prog.row_lo[keep]], [prog.row_hi[keep]]
    offset = n_x
    for b in blocks:
        k = b.a.shape[0]
        slack = sp.csr_matrix((np.ones(k), (np.arange(k), offset + np.arange(k))), shape=(k, n_cols))
        offset += k
        rows += [widen(b.a) - slack, widen(b.a) + slack]  # a x - s <= hi, a x + s >= lo
        lo += [np.full(k, -np.inf), b.lo]
        hi += [b.hi, np.full(k, np.inf)]
    big = np.concatenate([np.full(len(b.positions), b.big) for b in blocks])
    s_cols, z_cols = n_x + np.arange(n_s), n_x + n_s + np.arange(n_s)
    rows.append(sp.csr_matrix((np.r_[np.ones(n_s), -big], (np.r_[np.arange(n_s), np.arange(n_s)], np.r_[s_cols, z_cols])),
                              shape=(n_s, n_cols)))  # s <= M z
    lo.append(np.full(n_s, -np.inf))
    hi.append(np.zeros(n_s))
    a = sp.vstack(rows).tocsr()
    row_lo, row_hi = np.concatenate(lo), np.concatenate(hi)
    col_lo = np.r_[prog.col_lo, np.zeros(2 * n_s)]
    col_hi = np.r_[prog.col_hi, np.full(n_s, np.inf), np.ones(n_s)]
    col_lo[:ng], col_hi[:ng] = -np.inf, np.inf  # generator limits are elastic rows now
    total = np.r_[np.zeros(n_x), np.ones(n_s), np.zeros(n_s)]  # per unit of power, radians
    least = highs.solve(total, a, row_lo, row_hi, col_lo, col_hi)
    if least.status != OPTIMAL:
        return None
    start = least.x.copy()
    start[z_cols] = (start[s_cols] > 0).astype(float)
    integer = np.r_[np.zeros(n_x + n_s, dtype=bool), np.ones(n_s, dtype=bool)]
    fewest = highs.solve(np.r_[np.zeros(n_x + n_s), np.ones(n_s)], a, row_lo, row_hi, col_lo, col_hi, integer=integer,
                         start=start, options={"mip_max_nodes": MIP_NODE_LIMIT})
    chosen = np.rint(fewest.x[z_cols]) if fewest.status in (OPTIMAL, highs.WORK_LIMIT) else start[z_cols]
    col_lo[z_cols] = col_hi[z_cols] = chosen
    moved = highs.solve(total, a, row_lo, row_hi, col_lo, col_hi)  # those limits, moved by the least
    slack = (moved if moved.status == OPTIMAL else least).x[s_cols]
    out, at = [], 0
    for b in blocks:
        s_k = slack[at:at + len(b.positions)]
        at += len(b.positions)
        out += [_relaxation(net, b.kind, int(b.positions[j]), float(s_k[j]), "dc") for j in np.flatnonzero(s_k > RELAXED_TOL_PU["dc"])]
    return out, fewest.status == OPTIMAL


def _relaxation(net: OpfNetwork, kind: str, i: int, by_pu: float, model: str) -> Limit:
    """A Limit saying limit `kind` of element `i` must move by `by_pu` (per unit or radians, outward)."""
    base = net.base_mva
    if kind in ("angle_max", "angle_min"):
        limit = float(np.rad2deg(net.angmax[i] if kind == "angle_max" else net.angmin[i]))
        step = float(np.rad2deg(by_pu)) * (1 if kind == "angle_max" else -1)
        return Limit(kind, net.branch_label[i], i, limit + step, limit, "deg", by=step)
    if kind == "branch_rating":
        limit = float(net.rate[i] * base)
        return Limit(kind, net.branch_label[i], i, limit + by_pu * base, limit, _unit(kind, model), by=by_pu * base)
    if kind in ("vm_max", "vm_min"):
        limit, sign = float(net.vmax[i] if kind == "vm_max" else net.vmin[i]), 1 if kind == "vm_max" else -1
        return Limit(kind, f"bus {net.bus_id[i]}", i, limit + sign * by_pu, limit, "pu", by=sign * by_pu)
    bound = {"gen_pmax": net.pmax, "gen_pmin": net.pmin, "gen_qmax": net.qmax, "gen_qmin": net.qmin}[kind]
    sign = 1 if kind.endswith("max") else -1
    limit = float(bound[i] * base)
    return Limit(kind, net.gen_label[i], i, limit + sign * by_pu * base, limit, _unit(kind, model), by=sign * by_pu * base)


def _inf(size: int) -> np.ndarray:
    return np.full(size, np.inf)


def relax_ac(net: OpfNetwork) -> tuple[list[Limit], bool]:
    """The least weighted relaxation of AC limits that admits a power flow, and whether IPOPT found one.

    Slacks (per unit, >= 0) move voltage, P and Q limits outward, add to the squared rating
    (weighted by 1/(2 rating), about the rating's own increase) and widen angle limits (radians).
    """
    m = ac_model(net)
    n, ng, k, la = net.n_bus, net.n_gen, len(m.rated), len(m.limited)
    sizes = {"vm_max": n, "vm_min": n, "gen_pmax": ng, "gen_pmin": ng, "gen_qmax": ng, "gen_qmin": ng,
             "branch_rating": k, "angle_max": la, "angle_min": la}
    s = {kind: ca.MX.sym(kind, size) for kind, size in sizes.items()}
    rate = net.rate[m.rated]
    g = ca.vertcat(m.balance, m.vm - s["vm_max"], m.vm + s["vm_min"], m.pg - s["gen_pmax"], m.pg + s["gen_pmin"],
                   m.qg - s["gen_qmax"], m.qg + s["gen_qmin"], m.s_from2 - s["branch_rating"], m.s_to2 - s["branch_rating"],
                   m.angle_diff - s["angle_max"], m.angle_diff + s["angle_min"])
    lbg = np.concatenate([np.zeros(2 * n), -_inf(n), net.vmin, -_inf(ng), net.pmin, -_inf(ng), net.qmin, -_inf(2 * k),
                          -_inf(la), net.angmin[m.limited]])
    ubg = np.concatenate([np.zeros(2 * n), net.vmax, _inf(n), net.pmax, _inf(ng), net.qmax, _inf(ng), rate**2, rate**2,
                          net.angmax[m.limited], _inf(la)])
    base_weight = np.concatenate([1.0 / (2 * np.maximum(rate, 1e-3)) if kind == "branch_rating" else np.ones(size)
                                  for kind, size in sizes.items()])
    slacks, weight = ca.vertcat(*s.values()), ca.MX.sym("weight", len(base_weight))
    va_lo, va_hi = np.full(n, -np.inf), np.full(n, np.inf)
    va_lo[net.ref] = va_hi[net.ref] = 0.0
    n_s = len(base_weight)
    lbx = np.concatenate([va_lo, np.zeros(n), -_inf(2 * ng), np.zeros(n_s)])
    ubx = np.concatenate([va_hi, np.full(n, 2.0), _inf(2 * ng), _inf(n_s)])
    x = np.clip(np.r_[m.start, np.zeros(n_s)], lbx, ubx)
    solver = ca.nlpsol("elastic_ac", "ipopt", {"x": ca.vertcat(m.va, m.vm, m.pg, m.qg, slacks), "p": weight,
                                               "f": ca.dot(weight, slacks), "g": g}, ipopt_options(1e-8, 3000, 0))
    relaxed = np.zeros(n_s)  # per unit of each limit
    for _ in range(REWEIGHTING_ROUNDS):  # weights 1 / (relaxation + eps): small relaxations are pushed to zero
        sol = solver(x0=x, p=base_weight / (relaxed + REWEIGHTING_EPS_PU) * REWEIGHTING_EPS_PU, lbx=lbx, ubx=ubx,
                     lbg=lbg, ubg=ubg)
        if solver.stats()["return_status"] not in OPTIMAL_STATUSES:
            return [], False
        x = np.asarray(sol["x"]).ravel()
        relaxed = base_weight * np.maximum(x[-n_s:], 0.0)
    values = x[2 * n + 2 * ng:]
    out, start_at = [], 0
    for kind, size in sizes.items():
        s_k = values[start_at:start_at + size]
        start_at += size
        positions = m.rated if kind == "branch_rating" else m.limited if kind.startswith("angle") else np.arange(size)
        if kind == "branch_rating":  # slack on the squared rating -> increase of the rating
            s_k = np.sqrt(rate**2 + np.maximum(s_k, 0.0)) - rate
        for j in np.flatnonzero(s_k > RELAXED_TOL_PU["ac"]):
            out.append(_relaxation(net, kind, int(positions[j]), float(s_k[j]), "ac"))
    return out, True
