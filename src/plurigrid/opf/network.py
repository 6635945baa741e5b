"""The network an OPF sees: in-service buses, generators and branches as per-unit numpy arrays.

Built from a MATPOWER case (PGLib files included) or a pandapower net. Everything downstream
(DC, AC, LinDistFlow) reads this one structure, so the three formulations agree on what the
case is: which elements are in service, how costs, shunts, taps and limits are read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

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
                       r=self.r / k, x=self.x / k, b=self.b * k, rate=self.rate * k)

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
    return OpfNetwork(
        name=path, base_mva=base, bus_id=ids, ref=ref,
        pd=bl[:, 2] / base, qd=bl[:, 3] / base, gs=bl[:, 4] / base, bs=bl[:, 5] / base,
        vmin=bl[:, 12], vmax=bl[:, 11],
        gen_bus=position(g[:, 0]), pmin=g[:, 9] / base, pmax=g[:, 8] / base, qmin=g[:, 4] / base, qmax=g[:, 3] / base,
        cost_poly=poly, cost_pwl=pwl,
        f=position(b[:, 0]), t=position(b[:, 1]), r=b[:, 2], x=b[:, 3], b=b[:, 4], rate=rate,
        tap=tap, shift=np.deg2rad(b[:, 9]), angmin=angmin, angmax=angmax, gen_index=gon, branch_index=bon,
    )


def _pandapower_case(path: Path) -> MatpowerCase:
    """A pandapower JSON net as a MATPOWER case, through pandapower's own converter (costs from poly_cost)."""
    import pandapower as pp
    from pandapower.converter.matpower.to_mpc import to_mpc

    try:
        net = pp.from_json(str(path))
    except Exception as exc:  # pandapower raises many types for a bad file
        raise CaseError(f"{path}: not a pandapower JSON net ({exc.__class__.__name__})") from None
    mpc = to_mpc(net, init="flat")["mpc"]
    return MatpowerCase(name=str(path), base_mva=float(mpc["baseMVA"]), bus=np.asarray(mpc["bus"], float),
                        gen=np.asarray(mpc["gen"], float), branch=np.asarray(mpc["branch"], float),
                        gencost=np.asarray(mpc["gencost"], float) if "gencost" in mpc else None)


def load_case(path: str | Path) -> OpfNetwork:
    """Reads a MATPOWER `.m` file or a pandapower `.json` net; one-line CaseError on bad input."""
    path = Path(path)
    if not path.is_file():
        raise CaseError(f"{path}: no such file")
    if path.suffix.lower() == ".json":
        case = _pandapower_case(path)
    elif path.suffix.lower() == ".m":
        try:
            case = read_matpower(path)
        except MatpowerError as exc:
            raise CaseError(str(exc)) from None
        case.name = str(path)
    else:
        raise CaseError(f"{path}: unknown case format; expected a MATPOWER .m file or a pandapower .json net")
    net = from_matpower(case)
    net.name = Path(case.name).stem
    if not net.n_gen:
        raise CaseError(f"{path}: no generator in service")
    return net
