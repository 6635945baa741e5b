"""What the fast power flow needs from pandapower's internal model, extracted once per topology.

pandapower's own ``_pd2ppc`` conversion runs on a private copy of the net, so bus fusion through
closed bus-bus switches, open line/trafo switches, out-of-service elements and isolated islands are
handled exactly as ``runpp`` handles them. The result is plain arrays: Ybus/Yf/Yt, the bus types,
the net's own scheduled injections (with pandapower's voltage-dependent load model), the reactive
limits of PV buses, a DC model for starting points, and the rating data for branch loading.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["PowerFlowModel", "UnsupportedElementError"]

_SQRT3 = float(np.sqrt(3.0))
# Elements whose effect is not a plain bus injection or admittance; we refuse rather than guess.
_UNSUPPORTED_TABLES = ("svc", "tcsc", "ssc", "vsc", "vsc_stacked", "vsc_bipolar", "line_dc", "b2b_vsc")
# A branch reactance below this (p.u.) is a coupler; the DC start treats it as this stiff instead of infinite.
_DC_MIN_X_PU = 1e-6


class UnsupportedElementError(NotImplementedError):
    """The net holds an element the fast power flow does not model (named in the message)."""


@dataclass(frozen=True)
class PowerFlowModel:
    """pandapower's internal (ppci) model as plain arrays.

    Internal buses are ppci rows (energised buses only; fused buses share one row).
    "Monitored" branches are the in-service lines and trafos, whose loading is reported.
    Injections are in p.u. of ``base_mva``, generation positive.
    """

    base_mva: float
    n_int: int
    ybus: sp.csr_matrix
    ref: np.ndarray
    pv: np.ndarray
    pq: np.ndarray
    v_set: np.ndarray  # complex: reference voltages at ref, |V| setpoints at pv
    # the net's own injections, as runpp models them: s_const - s_i |V| - s_z |V|^2 per internal bus
    s_const: np.ndarray
    s_i: np.ndarray
    s_z: np.ndarray
    s_dcline: np.ndarray  # HVDC links' scheduled transfers, which stay when the caller gives the other injections
    q_min_pu: np.ndarray  # per PV bus (aligned with pv): sum of its generators' reactive limits
    q_max_pu: np.ndarray
    dc_b: sp.csr_matrix  # DC susceptance matrix (1 / x, taps) and phase-shift injections, for start points
    dc_p_shift: np.ndarray
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
    branch_extra: dict[str, np.ndarray]  # pandapower's branch columns beyond MATPOWER's (shunt conductance, asymmetry)

    @property
    def voltage_dependent(self) -> bool:
        """Whether the net's own loads depend on voltage (pandapower's const_z / const_i shares)."""
        return bool(np.any(self.s_i != 0) or np.any(self.s_z != 0))

    @classmethod
    def from_net(cls, net: Any, *, enforce_q_lims: bool = False) -> PowerFlowModel:
        """Let pandapower convert a private copy of ``net`` and extract the arrays.

        ``enforce_q_lims`` makes pandapower clip static generators' Q to their limits, as
        ``runpp(enforce_q_lims=True)`` does; the PV buses' limits are always extracted.
        """
        from pandapower.auxiliary import _add_dcline_gens, _init_runpp_options
        from pandapower.pd2ppc import _pd2ppc
        from pandapower.pf.ppci_variables import _get_pf_variables_from_ppci
        from pandapower.pypower.idx_brch import (
            BR_B_ASYM,
            BR_G,
            BR_G_ASYM,
            BR_R_ASYM,
            BR_X,
            BR_X_ASYM,
            F_BUS,
            SHIFT,
            T_BUS,
            TAP,
        )
        from pandapower.pypower.idx_bus import BASE_KV, CID_P, CID_Q, CZD_P, CZD_Q, PD, QD
        from pandapower.pypower.idx_gen import GEN_BUS, GEN_STATUS, PG, QMAX, QMIN
        from pandapower.pypower.makeYbus import makeYbus

        _reject_unsupported(net)
        net = copy.deepcopy(net)
        # the options runpp(net) would set, minus anything that only matters for solving
        _init_runpp_options(
            net, algorithm="nr", calculate_voltage_angles=True, init="flat", max_iteration="auto",
            tolerance_mva=1e-8, trafo_model="t", trafo_loading="current", enforce_p_lims=False,
            enforce_q_lims=enforce_q_lims, check_connectivity=True, voltage_depend_loads=True,
            passed_parameters={}, consider_line_temperature=False, distributed_slack=False,
            tdpf=False, numba=False,  # pandapower's numba bus lookup recompiles in every process (~1.5 s)
        )
        # an HVDC link is a generator pair with scheduled P (its losses taken), as runpp models it
        n_gen = len(net.gen)
        _add_dcline_gens(net)
        dc_gens = net.gen.iloc[n_gen:]
        dc_gens = dc_gens[dc_gens["in_service"].to_numpy(bool)]
        empty = np.array([], dtype=np.int64)
        net._pd2ppc_lookups = {"bus": empty, "bus_dc": empty, "ext_grid": empty, "gen": empty,
                               "branch": empty, "branch_dc": empty}
        try:
            ppc, ppci = _pd2ppc(net)
        except ValueError as exc:  # pandapower's own refusals (e.g. ZIP shares above 100 %)
            raise UnsupportedElementError(str(exc)) from None
        (base_mva, bus, gen, branch, _svc, _tcsc, _ssc, _vsc, ref, pv, pq,
         _on, _gbus, v0, ref_gens) = _get_pf_variables_from_ppci(ppci)
        base_mva = float(base_mva)
        n_int = int(bus.shape[0])
        ybus, yf, yt = (sp.csr_matrix(m) for m in makeYbus(base_mva, bus, branch))
        for m in (ybus, yf, yt):
            m.sum_duplicates()
            m.sort_indices()

        # the net's scheduled injections: generators' P (not the reference ones, whose output is the
        # result; a generator's Q is free at its PV bus) minus loads split into constant power,
        # current and impedance shares
        gen = np.real(gen)
        on = gen[:, GEN_STATUS] > 0
        on[np.asarray(ref_gens, dtype=np.int64)] = False
        g_bus = gen[on, GEN_BUS].astype(np.int64)
        s_gen = np.zeros(n_int, dtype=np.complex128)
        np.add.at(s_gen, g_bus, gen[on, PG])
        bus_r = np.real(bus)
        pd_mw, qd_mvar = bus_r[:, PD], bus_r[:, QD]
        ci_p, cz_p, ci_q, cz_q = bus_r[:, CID_P], bus_r[:, CZD_P], bus_r[:, CID_Q], bus_r[:, CZD_Q]
        s_const = (s_gen - (pd_mw * (1 - ci_p - cz_p) + 1j * qd_mvar * (1 - ci_q - cz_q))) / base_mva
        s_i = (pd_mw * ci_p + 1j * qd_mvar * ci_q) / base_mva
        s_z = (pd_mw * cz_p + 1j * qd_mvar * cz_q) / base_mva

        # reactive limits per PV bus: the sum over its in-service (non-reference) generators
        pv = np.asarray(pv, dtype=np.int64)
        q_min = np.zeros(n_int)
        q_max = np.zeros(n_int)
        np.add.at(q_min, g_bus, np.nan_to_num(gen[on, QMIN], nan=-np.inf))
        np.add.at(q_max, g_bus, np.nan_to_num(gen[on, QMAX], nan=np.inf))

        # DC model: P = B theta + P_shift (lossless, taps and phase shifters as pandapower's makeBdc)
        br = np.real(branch)
        f, t = br[:, F_BUS].astype(np.int64), br[:, T_BUS].astype(np.int64)
        x = br[:, BR_X]
        x = np.where(np.abs(x) < _DC_MIN_X_PU, np.copysign(_DC_MIN_X_PU, np.where(x == 0, 1.0, x)), x)
        tap = np.where(br[:, TAP] != 0, br[:, TAP], 1.0)
        b = 1.0 / (x * tap)
        n_br = br.shape[0]
        cft = sp.csr_matrix((np.r_[np.ones(n_br), -np.ones(n_br)], (np.r_[np.arange(n_br), np.arange(n_br)], np.r_[f, t])),
                            shape=(n_br, n_int))
        bf = sp.csr_matrix((np.r_[b, -b], (np.r_[np.arange(n_br), np.arange(n_br)], np.r_[f, t])), shape=(n_br, n_int))
        dc_b = (cft.T @ bf).tocsr()
        dc_p_shift = cft.T @ (-b * np.deg2rad(br[:, SHIFT]))

        # net.bus rows -> internal buses (after _ppc2ppci the energised buses are 0..n_int-1)
        lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
        int_of_row = lookup[net.bus.index.to_numpy(dtype=np.int64)]
        energised_pos = np.flatnonzero((int_of_row >= 0) & (int_of_row < n_int)).astype(np.int64)
        s_dcline = np.zeros(n_int, dtype=np.complex128)
        dc_bus = lookup[dc_gens["bus"].to_numpy(dtype=np.int64)]
        live = (dc_bus >= 0) & (dc_bus < n_int)
        np.add.at(s_dcline, dc_bus[live], dc_gens["p_mw"].to_numpy(float)[live] / base_mva)

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
        columns = {"branch_g": BR_G, "branch_g_asym": BR_G_ASYM, "branch_b_asym": BR_B_ASYM,
                   "branch_r_asym": BR_R_ASYM, "branch_x_asym": BR_X_ASYM}
        branch_extra = {name: np.real(branch[:, col]).astype(np.float64) for name, col in columns.items() if branch.shape[1] > col}
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
            ref=np.asarray(ref, dtype=np.int64), pv=pv, pq=np.asarray(pq, dtype=np.int64),
            v_set=np.asarray(v0, dtype=np.complex128).copy(),
            s_const=s_const, s_i=s_i.astype(np.complex128), s_z=s_z.astype(np.complex128), s_dcline=s_dcline,
            q_min_pu=q_min[pv] / base_mva, q_max_pu=q_max[pv] / base_mva, dc_b=dc_b, dc_p_shift=np.asarray(dc_p_shift),
            n_pp_bus=len(net.bus), energised_pos=energised_pos, bus_int=int_of_row[energised_pos],
            n_line=n_line, n_trafo=n_trafo, mon_yf=csr_rows(yf), mon_yt=csr_rows(yt),
            mon_cf=cf, mon_ct=ct, mon_out_pos=mon.astype(np.int64), loading_template=template,
            mon_rows=mon_rows.astype(np.int64), bus_table=bus_table, branch_table=branch_table, branch_extra=branch_extra,
        )


def _reject_unsupported(net: Any) -> None:
    """Fail fast on elements that are neither plain bus injections nor plain admittances."""
    for table in _UNSUPPORTED_TABLES:
        df = net.get(table, None)
        if df is not None and len(df) and ("in_service" not in df or df["in_service"].any()):
            raise UnsupportedElementError(
                f"the fast power flow does not model {table} elements (net.{table}); use pandapower.runpp"
            )
