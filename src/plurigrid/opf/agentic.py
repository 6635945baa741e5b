"""Agentic OPF: welfare-maximising clearing of a microworld interval over a look-ahead horizon.

Social welfare = the participants' utilities of consumption - generation costs - the cost of grid
import (+ export revenue), subject to the feeder's LinDistFlow physics (voltage and thermal limits)
over H periods. Participants whose strategy hands over its flexibility (`optimised`) enter with
their preferences:

- demand: every kWh served is worth the participant's declared value (its willingness to pay and
  value of lost load); the inflexible share may be shed only at that value;
- deferrable demand: the flexible share may wait up to `max_delay_steps` (a backlog that may not
  hold more than the last D steps of flexible demand) or be dropped, forgoing its value;
- EV: charging within the plugged-in window, energy by departure (shortfall priced at the value),
  never more than needed;
- storage: state of charge with one-way efficiency and a throughput degradation cost;
- HVAC: a first-order building model; each kelvin-hour outside the comfort band costs the
  occupants' declared discomfort price (so comfort is traded against energy, e.g. pre-heating);
- renewables: curtailable at no cost (for every participant: curtailment is the operator's act);
- product differentiation: a premium for consuming the community's own renewable energy, with the
  community's renewable output as the pool it is drawn from (its dual is the premium's price);
- thermal units (all of them): three-part cost with commitment binaries (MILP), trips as events.

Other participants are price-takers whose net demand is fixed. Only the first period is used (MPC).
If nothing else can balance a period (an island whose unit cannot run below its minimum, say), the
reference absorbs or supplies the rest at a penalty price, and the plan reports that imbalance.
Nodal prices are the duals of the first period's bus balance with the commitment fixed (the usual
way to price a unit-commitment schedule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plurigrid.opf.lindistflow import feeder_block
from plurigrid.opf.network import OpfNetwork
from plurigrid.opf.program import Program
from plurigrid.opf.result import OPTIMAL


BALANCE_PENALTY_EUR_PER_KWH = 10.0  # 10,000 per MWh: a market price cap; binds only when nothing else balances
VOLTAGE_PENALTY_EUR_PER_H = 1e4  # per unit of |V|^2 outside the band: 0.001 (0.05 % of V) costs 10 per hour
# Measured: on a 9,099-bus feeder (one period) HiGHS's interior point with crossover takes 1.6 s and its
# dual simplex 7.7 s; on a 44-bus feeder over 96 periods (a similar number of columns) simplex is faster
# (89 vs 157 ms). Interior point for wide networks, then.
LARGE_FEEDER_BUSES = 2_000


@dataclass
class AgentProblem:
    """One clearing: arrays are (H, N) over the horizon, or (N,) per participant; kW, kWh, EUR."""

    dt_h: float
    network: OpfNetwork  # radial (LinDistFlow), per unit of network.base_mva
    w_ref: float  # squared voltage magnitude at the reference bus
    bus: np.ndarray  # network bus position of each participant
    optimised: np.ndarray  # bool: devices and demand handed to the OPF
    load_kw: np.ndarray  # (H, N) nominal demand (before shifting)
    q_per_p: np.ndarray  # (H, N) reactive per active power of the load
    fixed_kw: np.ndarray  # (H, N) net demand of price-takers, without renewables
    fixed_kvar: np.ndarray  # (H, N)
    renewable_kw: np.ndarray  # (H, N) available renewable power
    value_eur_per_kwh: np.ndarray
    premium_eur_per_kwh: np.ndarray  # extra value of consuming local renewable energy
    flexible_frac: np.ndarray
    max_delay_steps: np.ndarray
    backlog_kwh: np.ndarray
    backlog_age_steps: np.ndarray
    battery_kwh: np.ndarray
    battery_kw: np.ndarray
    battery_eff: np.ndarray
    battery_min_kwh: np.ndarray
    soc_kwh: np.ndarray
    degradation_eur_per_kwh: np.ndarray
    ev_kw: np.ndarray
    ev_eff: np.ndarray
    ev_plugged: np.ndarray  # (H, N)
    ev_arrive: np.ndarray  # (H, N) arrivals after the first period start new sessions
    ev_depart: np.ndarray  # (H, N)
    ev_remaining_kwh: np.ndarray
    ev_need_kwh: np.ndarray
    hvac_kw: np.ndarray  # electrical rating (0: none)
    hvac_gain_k_per_kw: np.ndarray  # indoor temperature change per kW over one period
    hvac_decay: np.ndarray
    outdoor_c: np.ndarray  # (H, N)
    indoor_c: np.ndarray
    comfort_min_c: np.ndarray
    comfort_max_c: np.ndarray
    discomfort_eur_per_kh: np.ndarray
    thermal_max_kw: np.ndarray  # (H, N), 0 while tripped
    thermal_min_kw: np.ndarray
    thermal_var_eur_per_kwh: np.ndarray
    thermal_noload_eur_per_h: np.ndarray
    thermal_startup_eur: np.ndarray
    thermal_on: np.ndarray
    import_eur_per_kwh: np.ndarray  # (H,)
    export_eur_per_kwh: np.ndarray  # (H,)
    connected: bool
    max_import_kw: float | None


@dataclass
class AgentPlan:
    """First-period dispatch and prices (per participant unless noted)."""

    status: str
    welfare_eur: float  # of the whole horizon, utilities of optimised demand included
    battery_kw: np.ndarray
    ev_kw: np.ndarray
    hvac_kw: np.ndarray
    served_kw: np.ndarray  # load served now (optimised participants; others: nominal load)
    green_kw: np.ndarray  # consumption matched to local renewable energy (premium paid)
    green_price_eur_per_kwh: float  # the premium's clearing price
    backlog_kwh: np.ndarray  # deferred demand still waiting after this period
    renewable_kw: np.ndarray  # renewable power used
    thermal_kw: np.ndarray
    thermal_on: np.ndarray
    thermal_started: np.ndarray
    price_eur_per_kwh: np.ndarray  # nodal price at the participant's bus
    bus_price_eur_per_kwh: np.ndarray  # per network bus
    bus_vm_pu: np.ndarray  # LinDistFlow voltage magnitude per network bus
    import_kw: float
    imbalance_kw: float  # power the reference had to supply (+) or absorb (-) beyond any schedule
    solve_time_s: float

    @property
    def ok(self) -> bool:
        return self.status == OPTIMAL


def _window_kwh(flex_kwh: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Flexible demand of the last `delay` periods (inclusive) per period and participant."""
    cum = np.vstack([np.zeros((1, flex_kwh.shape[1])), np.cumsum(flex_kwh, axis=0)])
    h = np.arange(flex_kwh.shape[0])[:, None]
    start = np.maximum(h + 1 - delay[None, :], 0).astype(np.int64)
    return cum[1:] - np.take_along_axis(cum, start, axis=0)


def solve_agentic(p: AgentProblem) -> AgentPlan:
    """Builds and solves the horizon problem; a failed solve returns status != optimal and NaNs."""
    H, N = p.load_kw.shape
    dt, net = p.dt_h, p.network
    base_kw = net.base_mva * 1000.0
    prog = Program()
    opt = p.optimised
    value = p.value_eur_per_kwh

    fixed_p = np.where(opt, (1 - p.flexible_frac) * p.load_kw, p.fixed_kw)
    fixed_q = np.where(opt, (1 - p.flexible_frac) * p.load_kw * p.q_per_p, p.fixed_kvar)
    pd = np.zeros((H, net.n_bus))
    qd = np.zeros((H, net.n_bus))
    np.add.at(pd.T, p.bus, fixed_p.T / base_kw)
    np.add.at(qd.T, p.bus, fixed_q.T / base_kw)
    block = feeder_block(prog, net, pd, qd, w_ref=p.w_ref, name="grid", voltage_penalty=VOLTAGE_PENALTY_EUR_PER_H * dt)
    pb, qb = block.p_balance, block.q_balance

    def inject(cols: np.ndarray, members: np.ndarray, sign: float, q_ratio: np.ndarray | None = None) -> None:
        prog.add(pb[:, p.bus[members]], cols, sign / base_kw)
        if q_ratio is not None:
            prog.add(qb[:, p.bus[members]], cols, sign * q_ratio / base_kw)

    # renewables (curtailable)
    R = np.flatnonzero(p.renewable_kw.max(axis=0) > 0)
    ren = prog.var((H, len(R)), hi=p.renewable_kw[:, R])
    inject(ren, R, 1.0)

    # inflexible demand shed at the participant's value; a price-taker's demand is firm now and
    # only its forecast may be shed (so that an expected shortage does not make the plan infeasible)
    O = np.flatnonzero(p.load_kw.max(axis=0) > 0)
    firm = np.vstack([~opt[None, O], np.zeros((H - 1, len(O)), dtype=bool)])
    shed = prog.var((H, len(O)), hi=np.where(firm, 0.0, np.maximum(fixed_p[:, O], 0.0)), cost=value[O] * dt)
    inject(shed, O, 1.0, p.q_per_p[:, O])

    # deferrable demand: served (worth its value), waiting (backlog), or dropped
    F = np.flatnonzero(opt & (p.flexible_frac > 0) & ((p.load_kw.max(axis=0) > 0) | (p.backlog_kwh > 0)))
    flex_kwh = p.flexible_frac[F] * p.load_kw[:, F] * dt
    delay = p.max_delay_steps[F].astype(np.int64)
    # carried backlog was deferred age + 1 steps ago, so (like fresh demand) it may wait D - 1 - age more periods
    wait = delay - 1 - p.backlog_age_steps[F]
    window = _window_kwh(flex_kwh, delay) + np.where(np.arange(H)[:, None] < wait[None, :], p.backlog_kwh[F][None, :], 0.0)
    serve = prog.var((H, len(F)), cost=-value[F] * dt)
    drop = prog.var((H, len(F)))
    backlog = prog.var((H, len(F)), hi=window)
    prev = np.vstack([np.full((1, len(F)), -1), backlog[:-1]])
    rhs = flex_kwh + np.vstack([p.backlog_kwh[F][None, :], np.zeros((H - 1, len(F)))])
    prog.constrain(rhs, rhs, (backlog, 1.0), (prev, -1.0), (serve, dt), (drop, dt))
    inject(serve, F, -1.0, p.q_per_p[:, F])

    # storage
    B = np.flatnonzero(opt & (p.battery_kwh > 0))
    eff = p.battery_eff[B]
    charge = prog.var((H, len(B)), hi=p.battery_kw[B], cost=p.degradation_eur_per_kwh[B] * dt)
    discharge = prog.var((H, len(B)), hi=p.battery_kw[B], cost=p.degradation_eur_per_kwh[B] * dt)
    soc = prog.var((H, len(B)), lo=p.battery_min_kwh[B], hi=p.battery_kwh[B])
    soc_prev = np.vstack([np.full((1, len(B)), -1), soc[:-1]])
    soc0 = np.vstack([p.soc_kwh[B][None, :], np.zeros((H - 1, len(B)))])
    prog.constrain(soc0, soc0, (soc, 1.0), (soc_prev, -1.0), (charge, -eff * dt), (discharge, dt / eff))
    inject(charge, B, -1.0)
    inject(discharge, B, 1.0)

    # EV charging sessions
    E = np.flatnonzero(opt & (p.ev_kw > 0))
    ev = prog.var((H, len(E)), hi=p.ev_kw[E] * p.ev_plugged[:, E], cost=-value[E] * dt)
    arrivals = p.ev_arrive[:, E].copy()
    arrivals[0] = False
    session = np.cumsum(arrivals, axis=0)
    n_sess = int(session.max(initial=0)) + 1
    need = np.vstack([p.ev_remaining_kwh[E][None, :], np.broadcast_to(p.ev_need_kwh[E], (n_sess - 1, len(E)))])
    deadline = np.zeros((n_sess, len(E)), dtype=bool)
    hh, jj = np.nonzero(p.ev_depart[:, E])
    deadline[session[hh, jj], jj] = True
    short = prog.var((n_sess, len(E)), hi=np.where(deadline, need, 0.0), cost=value[E])
    rows = prog.rows(np.where(deadline, need, 0.0), need, (n_sess, len(E)))
    prog.add(rows[session, np.arange(len(E))[None, :]], ev, p.ev_eff[E] * dt)
    prog.add(rows, short, 1.0)
    inject(ev, E, -1.0)

    # HVAC: indoor temperature follows the RC model; leaving the comfort band costs discomfort
    V = np.flatnonzero(opt & (p.hvac_kw > 0))
    decay, gain = p.hvac_decay[V], p.hvac_gain_k_per_kw[V]
    hvac = prog.var((H, len(V)), hi=p.hvac_kw[V])
    indoor = prog.var((H, len(V)), lo=-np.inf)
    too_cold = prog.var((H, len(V)), cost=p.discomfort_eur_per_kh[V] * dt)
    too_warm = prog.var((H, len(V)), cost=p.discomfort_eur_per_kh[V] * dt)
    drift = (1 - decay) * p.outdoor_c[:, V] + np.vstack([decay * p.indoor_c[V], np.zeros((H - 1, len(V)))])
    indoor_prev = np.vstack([np.full((1, len(V)), -1), indoor[:-1]])
    prog.constrain(drift, drift, (indoor, 1.0), (indoor_prev, -decay), (hvac, -gain))
    prog.constrain(p.comfort_min_c[V], np.inf, (indoor, 1.0), (too_cold, 1.0))
    prog.constrain(-np.inf, p.comfort_max_c[V], (indoor, 1.0), (too_warm, -1.0))
    inject(hvac, V, -1.0)

    # product differentiation: served demand drawn from the pool of local renewable output
    P = np.flatnonzero(opt & (p.premium_eur_per_kwh > 0) & (p.load_kw.max(axis=0) > 0))
    green = prog.var((H, len(P)), cost=-p.premium_eur_per_kwh[P] * dt)
    shed_col, serve_col = np.full((H, N), -1), np.full((H, N), -1)
    shed_col[:, O], serve_col[:, F] = shed, serve
    inflexible = (1 - p.flexible_frac[P]) * p.load_kw[:, P]
    prog.constrain(-np.inf, inflexible, (green, 1.0), (shed_col[:, P], 1.0), (serve_col[:, P], -1.0))
    pool = prog.rows(-np.inf, 0.0, H)
    prog.add(pool[:, None], green, 1.0)
    prog.add(pool[:, None], ren, -1.0)

    # thermal units with commitment
    G = np.flatnonzero(p.thermal_max_kw.max(axis=0) > 0)
    pmax = p.thermal_max_kw[:, G]
    gen = prog.var((H, len(G)), hi=pmax, cost=p.thermal_var_eur_per_kwh[G] * dt)
    on = prog.var((H, len(G)), hi=(pmax > 0).astype(float), cost=p.thermal_noload_eur_per_h[G] * dt, integer=True)
    start = prog.var((H, len(G)), hi=1.0, cost=p.thermal_startup_eur[G])
    prog.constrain(-np.inf, 0.0, (gen, 1.0), (on, -pmax))
    prog.constrain(0.0, np.inf, (gen, 1.0), (on, -p.thermal_min_kw[G]))
    on_prev = np.vstack([np.full((1, len(G)), -1), on[:-1]])
    was_on = np.vstack([-p.thermal_on[G][None, :].astype(float), np.zeros((H - 1, len(G)))])
    prog.constrain(was_on, np.inf, (start, 1.0), (on, -1.0), (on_prev, 1.0))
    inject(gen, G, 1.0)

    # the upstream grid at the reference bus, and the reference's reactive power
    ref = net.ref[:1]
    if p.connected:
        cap = np.inf if p.max_import_kw is None else p.max_import_kw
        imp = prog.var(H, hi=cap, cost=p.import_eur_per_kwh * dt)
        exp = prog.var(H, cost=-p.export_eur_per_kwh * dt)
        prog.add(pb[:, ref[0]], imp, 1.0 / base_kw)
        prog.add(pb[:, ref[0]], exp, -1.0 / base_kw)
    # last resort: the reference unit (or upstream) off its schedule, priced like a market cap
    imbalance = prog.var((H, 2), cost=BALANCE_PENALTY_EUR_PER_KWH * dt)
    prog.add(pb[:, ref[0], None], imbalance, np.array([1.0, -1.0]) / base_kw)
    q_ref = prog.var(H, lo=-np.inf)
    prog.add(qb[:, ref[0]], q_ref, 1.0)
    utility_of_fixed = float(np.sum(value[O] * np.maximum(fixed_p[:, O], 0.0) * dt))

    lp_options = {"solver": "ipm"} if net.n_bus >= LARGE_FEEDER_BUSES and not len(G) else {}
    sol = prog.solve(options=lp_options)
    if sol.status == OPTIMAL and len(G):
        sol = prog.solve(relax_integers=True, fixed=(on.ravel(), np.rint(sol.x[on.ravel()])))
    n = lambda: np.zeros(N)  # noqa: E731
    if sol.status != OPTIMAL:
        nan, off = np.full(N, np.nan), np.zeros(N, dtype=bool)
        return AgentPlan(status=sol.status, welfare_eur=float("nan"), battery_kw=nan, ev_kw=nan, hvac_kw=nan, served_kw=nan,
                         green_kw=nan, green_price_eur_per_kwh=float("nan"), backlog_kwh=nan, renewable_kw=nan,
                         thermal_kw=nan, thermal_on=off, thermal_started=off, price_eur_per_kwh=nan,
                         bus_price_eur_per_kwh=np.full(net.n_bus, np.nan), bus_vm_pu=np.full(net.n_bus, np.nan), import_kw=float("nan"),
                         imbalance_kw=float("nan"), solve_time_s=sol.solve_time_s)
    x = sol.x
    battery, ev_kw, hvac_kw, renewable, thermal = n(), n(), n(), n(), n()
    hvac_kw[V] = x[hvac[0]]
    green_kw = n()
    green_kw[P] = x[green[0]]
    battery[B] = x[charge[0]] - x[discharge[0]]
    ev_kw[E] = x[ev[0]]
    renewable[R] = x[ren[0]]
    thermal[G] = x[gen[0]]
    served = np.where(opt, (1 - p.flexible_frac) * p.load_kw[0], p.load_kw[0])
    served[O] -= x[shed[0]]
    served[F] += x[serve[0]]
    left = n()
    left[F] = x[backlog[0]]
    thermal_on, started = np.zeros(N, bool), np.zeros(N, bool)
    thermal_on[G] = np.rint(x[on[0]]) > 0
    started[G] = thermal_on[G] & ~p.thermal_on[G]
    bus_price = sol.row_dual[pb[0]] / (base_kw * dt)
    return AgentPlan(
        status=sol.status, welfare_eur=utility_of_fixed - sol.objective, battery_kw=battery, ev_kw=ev_kw, hvac_kw=hvac_kw, green_kw=green_kw,
        green_price_eur_per_kwh=float(-sol.row_dual[pool[0]] / dt), served_kw=served,
        backlog_kwh=left, renewable_kw=renewable, thermal_kw=thermal, thermal_on=thermal_on, thermal_started=started,
        price_eur_per_kwh=bus_price[p.bus], bus_price_eur_per_kwh=bus_price, bus_vm_pu=np.sqrt(np.maximum(x[block.w[0]], 0.0)),
        import_kw=float(x[imp[0]] - x[exp[0]]) if p.connected else 0.0,
        imbalance_kw=float(x[imbalance[0, 0]] - x[imbalance[0, 1]]), solve_time_s=sol.solve_time_s,
    )
