"""The network an OPF sees: in-service buses, generators and branches as per-unit numpy arrays.

Built from a MATPOWER case (PGLib files included) or a pandapower net. Everything downstream
(DC, AC, LinDistFlow) reads this one structure, so the three formulations agree on what the
case is: which elements are in service, how costs, shunts, taps and limits are read.

A pandapower net goes through pandapower's own conversion (`to_ppc`, T-model transformers),
which gives branches what a MATPOWER table cannot hold: a shunt conductance (transformer iron
losses, line `g_us_per_km`) and, for impedance elements and unevenly split transformer
leakage, a to-end shunt and series impedance that differ from the from end. They are kept
(`g`, `g_asym`, `b_asym`, `r_asym`, `x_asym`, pandapower's branch columns of the same names),
so the AC model's admittances are pandapower's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from plurigrid.errors import PlurigridError
from plurigrid.grid.matpower import MatpowerCase, MatpowerError, read_matpower

REF, PV, PQ, ISOLATED = 3, 2, 1, 4


class CaseError(PlurigridError, ValueError):
    """An OPF case that cannot be used: one line naming the file and the problem."""


@dataclass
class OpfNetwork:
    """In-service elements of a case; powers in per unit of `base_mva`, angles in radians.

    Generator costs are kept in the file's units ($/h of MW): `cost_poly[g]` holds the polynomial
    coefficients c2, c1, c0 (padded with zeros) or, for piecewise-linear costs, `cost_pwl[g]` holds
    the (MW, $/h) breakpoints and `cost_poly[g]` is zero.
    """

    name: str
    base_mva: float
    bus_id: np.ndarray  # external bus numbers
    ref: np.ndarray  # positions of reference buses
    pd: np.ndarray
    qd: np.ndarray
    gs: np.ndarray
    bs: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    gen_bus: np.ndarray  # bus position of each generator
    pmin: np.ndarray
    pmax: np.ndarray
    qmin: np.ndarray
    qmax: np.ndarray
    cost_poly: np.ndarray  # (G, 3): c2 [$/MW^2h], c1 [$/MWh], c0 [$/h]
    cost_pwl: list[np.ndarray | None]
    f: np.ndarray  # from-bus position of each branch
    t: np.ndarray
    r: np.ndarray
    x: np.ndarray
    b: np.ndarray  # total line charging susceptance
    rate: np.ndarray  # long-term rating, inf where the file says 0 (unlimited)
    tap: np.ndarray  # off-nominal ratio, 1 where the file says 0
    shift: np.ndarray  # phase shift, radians
    angmin: np.ndarray
    angmax: np.ndarray
    gen_index: np.ndarray  # row of each in-service generator in the file's gen table
    branch_index: np.ndarray  # row of each in-service branch in the file's branch table
    g: np.ndarray  # total branch shunt conductance, half at each end (like `b`)
    g_asym: np.ndarray  # shunt conductance added at the to end only (total, halved like `g`)
    b_asym: np.ndarray  # shunt susceptance added at the to end only (total, halved like `b`)
    r_asym: np.ndarray  # resistance added to the series impedance seen from the to end
    x_asym: np.ndarray  # reactance added to the series impedance seen from the to end
    gen_label: list[str]  # how reports name each generator
    branch_label: list[str]  # how reports name each branch

    @property
    def n_bus(self) -> int:
        return len(self.bus_id)

    @property
    def n_gen(self) -> int:
        return len(self.gen_bus)

    @property
    def n_branch(self) -> int:
        return len(self.f)

    def gen_incidence(self) -> sp.csr_matrix:
        """Bus x generator 0/1 matrix."""
        return sp.csr_matrix((np.ones(self.n_gen), (self.gen_bus, np.arange(self.n_gen))), shape=(self.n_bus, self.n_gen))

    def rebased(self, base_mva: float) -> OpfNetwork:
        """The same network in per unit of another base (e.g. kW-sized units for LV feeders)."""
        k = self.base_mva / base_mva  # old per unit -> new per unit, for powers and admittances
        return replace(self, base_mva=base_mva, pd=self.pd * k, qd=self.qd * k, gs=self.gs * k, bs=self.bs * k,
                       pmin=self.pmin * k, pmax=self.pmax * k, qmin=self.qmin * k, qmax=self.qmax * k,
                       r=self.r / k, x=self.x / k, b=self.b * k, rate=self.rate * k, g=self.g * k,
                       g_asym=self.g_asym * k, b_asym=self.b_asym * k, r_asym=self.r_asym / k, x_asym=self.x_asym / k)

    def cost_usd_per_h(self, pg_mw: np.ndarray) -> float:
        """Total generation cost of a dispatch, in the case's money per hour."""
        c2, c1, c0 = self.cost_poly.T
        total = float(np.sum(c2 * pg_mw**2 + c1 * pg_mw + c0))
        for g, pts in enumerate(self.cost_pwl):
            if pts is not None:
                total += float(np.interp(pg_mw[g], pts[:, 0], pts[:, 1]))
        return total


def _costs(path: str, gencost: np.ndarray | None, rows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | None]]:
    poly = np.zeros((len(rows), 3))
    pwl: list[np.ndarray | None] = [None] * len(rows)
    if gencost is None:
        return poly, pwl
    if len(gencost) < rows.max(initial=-1) + 1:
        raise CaseError(f"{path}: mpc.gencost has {len(gencost)} rows for {rows.max() + 1} generators")
    for g, row in enumerate(gencost[rows]):
        model, n = int(row[0]), int(row[3])
        coeffs = row[4:4 + (2 * n if model == 1 else n)]
        if model == 2:
            if n > 3 and np.any(coeffs[: n - 3] != 0):
                raise CaseError(f"{path}: mpc.gencost row {rows[g] + 1}: polynomial of degree {n - 1}; at most 2 is supported")
            poly[g, 3 - min(n, 3):] = coeffs[-3:] if n >= 3 else coeffs
        elif model == 1:
            pts = coeffs.reshape(n, 2)
            if np.any(np.diff(pts[:, 0]) <= 0) or np.any(np.diff(np.diff(pts[:, 1]) / np.diff(pts[:, 0])) < -1e-12):
                raise CaseError(f"{path}: mpc.gencost row {rows[g] + 1}: piecewise-linear cost is not convex")
            pwl[g] = pts
        else:
            raise CaseError(f"{path}: mpc.gencost row {rows[g] + 1}: unknown cost model {model}")
    return poly, pwl


def from_matpower(case: MatpowerCase) -> OpfNetwork:
    """In-service part of a MATPOWER case in per unit; raises CaseError on inconsistent tables."""
    path, base = case.name, case.base_mva
    bus, gen, br = case.bus, case.gen, case.branch
    live = bus[:, 1] != ISOLATED
    ids = bus[live, 0].astype(np.int64)
    pos = {int(b): i for i, b in enumerate(ids)}

    def position(numbers: np.ndarray) -> np.ndarray:
        return np.array([pos[int(v)] for v in numbers], dtype=np.int64)

    known = bus[:, 0].astype(np.int64)
    for table, ends in (("gen", gen[:, :1]), ("branch", br[:, :2])):
        missing = ~np.isin(ends.astype(np.int64), known)
        if missing.any():
            raise CaseError(f"{path}: mpc.{table} refers to bus {int(ends[missing][0])}, which is not in mpc.bus")
    gon = np.flatnonzero((gen[:, 7] > 0) & np.isin(gen[:, 0].astype(np.int64), ids))
    bon = np.flatnonzero((br[:, 10] > 0) & np.isin(br[:, 0].astype(np.int64), ids) & np.isin(br[:, 1].astype(np.int64), ids))
    ref = np.flatnonzero(bus[live, 1] == REF)
    if not len(ref):
        raise CaseError(f"{path}: no reference bus (type 3) in mpc.bus")
    poly, pwl = _costs(path, case.gencost, gon)
    g, b = gen[gon], br[bon]
    tap = np.where(b[:, 8] == 0, 1.0, b[:, 8])
    rate = np.where(b[:, 5] > 0, b[:, 5] / base, np.inf)
    # MATPOWER's rule (makeAang): 0 or beyond +-360 degrees means "no limit" on that side
    lo = b[:, 11] if b.shape[1] >= 13 else np.zeros(len(b))
    hi = b[:, 12] if b.shape[1] >= 13 else np.zeros(len(b))
    angmin = np.where((lo != 0) & (lo > -360), np.deg2rad(lo), -np.inf)
    angmax = np.where((hi != 0) & (hi < 360), np.deg2rad(hi), np.inf)
    bl = bus[live]
    asym = {key: _branch_column(case, f"branch_{key}", bon) for key in ("g", "g_asym", "b_asym", "r_asym", "x_asym")}
    f_id, t_id = b[:, 0].astype(np.int64), b[:, 1].astype(np.int64)
    return OpfNetwork(
        name=path, base_mva=base, bus_id=ids, ref=ref,
        pd=bl[:, 2] / base, qd=bl[:, 3] / base, gs=bl[:, 4] / base, bs=bl[:, 5] / base,
        vmin=bl[:, 12], vmax=bl[:, 11],
        gen_bus=position(g[:, 0]), pmin=g[:, 9] / base, pmax=g[:, 8] / base, qmin=g[:, 4] / base, qmax=g[:, 3] / base,
        cost_poly=poly, cost_pwl=pwl,
        f=position(b[:, 0]), t=position(b[:, 1]), r=b[:, 2], x=b[:, 3], b=b[:, 4], rate=rate,
        tap=tap, shift=np.deg2rad(b[:, 9]), angmin=angmin, angmax=angmax, gen_index=gon, branch_index=bon, **asym,
        gen_label=[f"gen {row + 1} at bus {int(bus_no)}" for row, bus_no in zip(gon, g[:, 0])],
        branch_label=[f"branch {row + 1} ({fb} -> {tb})" for row, fb, tb in zip(bon, f_id, t_id)],
    )


def _branch_column(case: MatpowerCase, name: str, rows: np.ndarray) -> np.ndarray:
    """An extra per-branch column (`mpc.branch_g`, ...) at the in-service rows, zeros if absent."""
    if name not in case.extra:
        return np.zeros(len(rows))
    column = np.asarray(case.extra[name], dtype=float).ravel()
    if len(column) != len(case.branch):
        raise CaseError(f"{case.name}: mpc.{name} has {len(column)} entries for {len(case.branch)} branches")
    return column[rows]


def from_pandapower(net: Any, name: str) -> OpfNetwork:
    """The in-service part of a pandapower net, as pandapower's own OPF sees it (T-model transformers).

    Costs come from `poly_cost`/`pwl_cost`; without any, pandapower converts in power-flow mode,
    where an external grid has no reactive limits (its Q range here is then pandapower's default
    of +-1e9 MVAr, as in OPF mode). Buses are named by their `net.bus` index (the lowest one where
    closed bus-bus switches fuse several), generators and branches by their pandapower element.
    """
    from pandapower.converter.pypower.to_ppc import to_ppc

    net = copy.deepcopy(net)  # the converter writes its lookups and options into the net
    try:
        ppc = to_ppc(net, init="flat")
    except Exception as exc:  # pandapower raises many types for a net it cannot convert
        raise CaseError(f"{name}: pandapower cannot convert this net for an OPF ({exc.__class__.__name__}: {exc})") from None
    branch_is = np.asarray(ppc["internal"]["branch_is"], dtype=bool)
    branch, gen = np.real(ppc["branch"]), np.real(ppc["gen"]).copy()
    ext = net._gen_order.get("ext_grid", (0, 0))
    if net._options["mode"] != "opf":
        gen[ext[0]:ext[1], 3], gen[ext[0]:ext[1], 4] = 1e9, -1e9
    extra = {}
    for key in ("branch_g", "branch_g_asym", "branch_b_asym", "branch_r_asym", "branch_x_asym"):
        if key in ppc:
            column = np.real(np.asarray(ppc[key])).ravel()
            extra[key] = column if len(column) == len(branch) else column[branch_is]
    gencost = np.real(np.asarray(ppc["gencost"], float)) if "gencost" in ppc else None
    case = MatpowerCase(name, float(ppc["baseMVA"]), np.real(ppc["bus"]), gen[:, :10], branch[:, :13], gencost, extra)
    opf = from_matpower(case)
    bus_of = _pandapower_bus_names(net, len(ppc["bus"]))
    branch_names = _pandapower_element_names(net, net._pd2ppc_lookups["branch"], len(branch_is))[branch_is]
    gen_is = np.asarray(ppc["internal"]["gen_is"], dtype=bool)
    gen_names = _pandapower_element_names(net, net._gen_order, len(gen_is))[gen_is]
    ends = [f" ({bus_of[f]} -> {bus_of[t]})" for f, t in zip(branch[opf.branch_index, 0].astype(int), branch[opf.branch_index, 1].astype(int))]
    return replace(
        opf, name=name, bus_id=bus_of[opf.bus_id],
        gen_label=[f"{gen_names[g]} at bus {bus_of[int(gen[g, 0])]}" for g in opf.gen_index],
        branch_label=[branch_names[b] + e for b, e in zip(opf.branch_index, ends)],
    )


def _pandapower_bus_names(net: Any, n_bus: int) -> np.ndarray:
    """For each converted bus, the lowest `net.bus` index that maps onto it.

    Buses pandapower adds itself (a three-winding transformer's star point, an xward's internal
    bus) have no index; they are numbered -1 - their position, so no name is a real bus's.
    """
    lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
    index = net.bus.index.to_numpy(dtype=np.int64)
    names = np.full(n_bus, np.iinfo(np.int64).max)
    inside = (lookup[index] >= 0) & (lookup[index] < n_bus)
    np.minimum.at(names, lookup[index][inside], index[inside])
    auxiliary = names == np.iinfo(np.int64).max
    names[auxiliary] = -1 - np.flatnonzero(auxiliary)
    return names


def _pandapower_element_names(net: Any, ranges: dict[str, tuple[int, int]], n_rows: int) -> np.ndarray:
    """"line 3", "trafo3w 1 (mv)", "ext_grid 0", ... for the rows of a converted branch or gen table.

    `ranges` are pandapower's: element -> (first, last) rows. Branch tables hold every element of
    a kind (a three-winding transformer as three rows, hv then mv then lv); generator tables hold
    the in-service ones (`net._is_elements`). Rows of any other layout keep a generic name.
    """
    names = np.array([f"row {i}" for i in range(n_rows)], dtype=object)
    for element, (first, last) in ranges.items():
        table = element.removesuffix("_controllable")
        if table not in net:
            continue
        index = net[table].index
        mask = np.asarray(net._is_elements.get(element, []), dtype=bool)
        count = int(last) - int(first)
        if count != len(index) and len(mask) == len(index) and mask.sum() == count:
            index = index[mask]
        if table == "trafo3w" and count == 3 * len(index):
            names[first:last] = [f"trafo3w {i} ({side})" for side in ("hv", "mv", "lv") for i in index]
        elif count == len(index):
            names[first:last] = [f"{table} {i}" for i in index]
    return names


def load_case(path: str | Path) -> OpfNetwork:
    """Reads a MATPOWER `.m` file, a pandapower `.json` net, `pandapower:NAME` or `simbench:CODE`; one-line CaseError."""
    source = str(path)
    if source.startswith(("pandapower:", "simbench:")) or (Path(source).suffix.lower() == ".json" and Path(source).is_file()):
        from plurigrid.grid.cases import load_net  # the grid references the simulator and `plurigrid powerflow` read

        name = source.split(":", 1)[1] if source.startswith(("pandapower:", "simbench:")) else Path(source).stem
        net = from_pandapower(load_net(source), name)
    elif not Path(source).is_file():
        raise CaseError(f"{source}: no such file")
    elif Path(source).suffix.lower() == ".m":
        try:
            case = read_matpower(source)
        except MatpowerError as exc:
            raise CaseError(str(exc)) from None
        case.name = source
        net = from_matpower(case)
        net.name = Path(source).stem
    else:
        raise CaseError(f"{source}: unknown case format; expected a MATPOWER .m file, a pandapower .json net, "
                        "pandapower:NAME or simbench:CODE")
    if not net.n_gen:
        raise CaseError(f"{source}: no generator in service")
    return net
