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
reference absorbs or supplies the rest at a penalty price (the market cap), and the plan reports
that imbalance. In an island, a price-taker's net injection (a battery discharging more than its
owner uses) that nobody takes is curtailed at its inverter for free, as an inverter does when the
island's frequency rises, rather than absorbed at the cap.

Nodal prices are the duals of the first period's bus balance in a pricing run where the units the
schedule runs stay committed and the others may run in part (0 <= on <= 1), as in MISO's extended
LMP: a running unit prices at its marginal cost, and where a stopped unit is the cheapest way to
serve more, at its average cost over its rating, no-load and start-up included. So the cap is the
price only of a real shortage, where even every unit at its rating cannot serve the firm demand,
and never of a unit's minimum output or of the reference's modelling. The dispatch is the
schedule's (the commitment fixed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plurigrid.assets.fleet import HVAC, Batteries, Demand, EVs, Thermal
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
    demand: Demand  # the participants' asset tables
    batteries: Batteries
    evs: EVs
    hvac: HVAC
    thermal: Thermal
    load_kw: np.ndarray  # (H, N) nominal demand (before shifting)
    q_per_p: np.ndarray  # (H, N) reactive per active power of the load
    fixed_kw: np.ndarray  # (H, N) net demand of price-takers, without renewables
    fixed_kvar: np.ndarray  # (H, N)
    renewable_kw: np.ndarray  # (H, N) available renewable power
    backlog_kwh: np.ndarray
    backlog_age_steps: np.ndarray
    soc_kwh: np.ndarray
    ev_plugged: np.ndarray  # (H, N)
    ev_arrive: np.ndarray  # (H, N) arrivals after the first period start new sessions
    ev_depart: np.ndarray  # (H, N)
    ev_remaining_kwh: np.ndarray
    outdoor_c: np.ndarray  # (H, N)
    indoor_c: np.ndarray
    thermal_max_kw: np.ndarray  # (H, N), 0 while tripped
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
    imbalance_kw: float  # power the reference had to supply (+) or absorb (-) beyond any schedule (incl. held back injections)
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


def _previous(cols: np.ndarray) -> np.ndarray:
    """Each period's column of the period before (-1, "no variable", for the first)."""
    return np.vstack([np.full((1, cols.shape[1]), -1), cols[:-1]])


@dataclass
class _Model:
    """The program under construction, with the feeder's balance rows and the participants' buses."""

    prog: Program
    p: AgentProblem
    pb: np.ndarray
    qb: np.ndarray
    base_kw: float

    def inject(self, cols: np.ndarray, members: np.ndarray, sign: float, q_ratio: np.ndarray | None = None) -> None:
        """Adds (H, len(members)) columns as injections (+) or withdrawals (-) at the members' buses."""
        self.prog.add(self.pb[:, self.p.bus[members]], cols, sign / self.base_kw)
        if q_ratio is not None:
            self.prog.add(self.qb[:, self.p.bus[members]], cols, sign * q_ratio / self.base_kw)

    def until_first(self, first: np.ndarray) -> np.ndarray:
        """Right-hand sides: `first` in period 0, zero after."""
        H = self.p.load_kw.shape[0]
        return np.vstack([first[None, :], np.zeros((H - 1, len(first)))])


def _renewables(m: _Model) -> tuple[np.ndarray, np.ndarray]:
    R = np.flatnonzero(m.p.renewable_kw.max(axis=0) > 0)
    ren = m.prog.var((m.p.load_kw.shape[0], len(R)), hi=m.p.renewable_kw[:, R])
    m.inject(ren, R, 1.0)
    return R, ren


def _shedding(m: _Model, fixed_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inflexible demand shed at the participant's value; a price-taker's demand is firm now and only
    its forecast may be shed (so that an expected shortage does not make the plan infeasible)."""
    p, H = m.p, m.p.load_kw.shape[0]
    O = np.flatnonzero(p.load_kw.max(axis=0) > 0)
    firm = np.vstack([~p.optimised[None, O], np.zeros((H - 1, len(O)), dtype=bool)])
    shed = m.prog.var((H, len(O)), hi=np.where(firm, 0.0, np.maximum(fixed_p[:, O], 0.0)),
                      cost=p.demand.value_eur_per_kwh[O] * p.dt_h)
    m.inject(shed, O, 1.0, p.q_per_p[:, O])
    return O, shed


def _deferrable(m: _Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deferrable demand: served (worth its value), waiting in a backlog, or dropped."""
    p, dt, H = m.p, m.p.dt_h, m.p.load_kw.shape[0]
    F = np.flatnonzero(p.optimised & (p.demand.flexible_frac > 0) & ((p.load_kw.max(axis=0) > 0) | (p.backlog_kwh > 0)))
    flex_kwh = p.demand.flexible_frac[F] * p.load_kw[:, F] * dt
    delay = p.demand.max_delay_steps[F].astype(np.int64)
    # carried backlog was deferred age + 1 steps ago, so (like fresh demand) it may wait D - 1 - age more periods
    wait = delay - 1 - p.backlog_age_steps[F]
    window = _window_kwh(flex_kwh, delay) + np.where(np.arange(H)[:, None] < wait[None, :], p.backlog_kwh[F][None, :], 0.0)
    serve = m.prog.var((H, len(F)), cost=-p.demand.value_eur_per_kwh[F] * dt)
    drop = m.prog.var((H, len(F)))
    backlog = m.prog.var((H, len(F)), hi=window)
    rhs = flex_kwh + m.until_first(p.backlog_kwh[F])
    m.prog.constrain(rhs, rhs, (backlog, 1.0), (_previous(backlog), -1.0), (serve, dt), (drop, dt))
    m.inject(serve, F, -1.0, p.q_per_p[:, F])
    return F, serve, backlog


def _storage(m: _Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p, dt, H = m.p, m.p.dt_h, m.p.load_kw.shape[0]
    B = np.flatnonzero(p.optimised & (p.batteries.capacity_kwh > 0))
    eff, wear = p.batteries.efficiency[B], p.batteries.degradation_eur_per_kwh[B] * dt
    charge = m.prog.var((H, len(B)), hi=p.batteries.power_kw[B], cost=wear)
    discharge = m.prog.var((H, len(B)), hi=p.batteries.power_kw[B], cost=wear)
    soc = m.prog.var((H, len(B)), lo=p.batteries.min_kwh[B], hi=p.batteries.capacity_kwh[B])
    soc0 = m.until_first(p.soc_kwh[B])
    m.prog.constrain(soc0, soc0, (soc, 1.0), (_previous(soc), -1.0), (charge, -eff * dt), (discharge, dt / eff))
    m.inject(charge, B, -1.0)
    m.inject(discharge, B, 1.0)
    return B, charge, discharge


def _ev_charging(m: _Model) -> tuple[np.ndarray, np.ndarray]:
    """Charging sessions: energy by departure (shortfall priced at the value), never more than needed."""
    p, dt, H = m.p, m.p.dt_h, m.p.load_kw.shape[0]
    E = np.flatnonzero(p.optimised & (p.evs.power_kw > 0))
    ev = m.prog.var((H, len(E)), hi=p.evs.power_kw[E] * p.ev_plugged[:, E], cost=-p.demand.value_eur_per_kwh[E] * dt)
    arrivals = p.ev_arrive[:, E].copy()
    arrivals[0] = False
    session = np.cumsum(arrivals, axis=0)
    n_sess = int(session.max(initial=0)) + 1
    need = np.vstack([p.ev_remaining_kwh[E][None, :], np.broadcast_to(p.evs.need_kwh[E], (n_sess - 1, len(E)))])
    deadline = np.zeros((n_sess, len(E)), dtype=bool)
    hh, jj = np.nonzero(p.ev_depart[:, E])
    deadline[session[hh, jj], jj] = True
    short = m.prog.var((n_sess, len(E)), hi=np.where(deadline, need, 0.0), cost=p.demand.value_eur_per_kwh[E])
    rows = m.prog.rows(np.where(deadline, need, 0.0), need, (n_sess, len(E)))
    m.prog.add(rows[session, np.arange(len(E))[None, :]], ev, p.evs.efficiency[E] * dt)
    m.prog.add(rows, short, 1.0)
    m.inject(ev, E, -1.0)
    return E, ev


def _hvac(m: _Model) -> tuple[np.ndarray, np.ndarray]:
    """Indoor temperature follows the RC model; leaving the comfort band costs discomfort."""
    p, dt, H = m.p, m.p.dt_h, m.p.load_kw.shape[0]
    V = np.flatnonzero(p.optimised & (p.hvac.p_max_kw > 0))
    decay, gain = p.hvac.decay[V], p.hvac.gain_k_per_kw[V]
    hvac = m.prog.var((H, len(V)), hi=p.hvac.p_max_kw[V])
    indoor = m.prog.var((H, len(V)), lo=-np.inf)
    too_cold = m.prog.var((H, len(V)), cost=p.hvac.discomfort_eur_per_kh[V] * dt)
    too_warm = m.prog.var((H, len(V)), cost=p.hvac.discomfort_eur_per_kh[V] * dt)
    drift = (1 - decay) * p.outdoor_c[:, V] + m.until_first(decay * p.indoor_c[V])
    m.prog.constrain(drift, drift, (indoor, 1.0), (_previous(indoor), -decay), (hvac, -gain))
    m.prog.constrain(p.hvac.comfort_min_c[V], np.inf, (indoor, 1.0), (too_cold, 1.0))
    m.prog.constrain(-np.inf, p.hvac.comfort_max_c[V], (indoor, 1.0), (too_warm, -1.0))
    m.inject(hvac, V, -1.0)
    return V, hvac


def _premium(m: _Model, O: np.ndarray, shed: np.ndarray, F: np.ndarray, serve: np.ndarray,
             ren: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Product differentiation: served demand drawn from the pool of local renewable output."""
    p, H, N = m.p, m.p.load_kw.shape[0], m.p.load_kw.shape[1]
    P = np.flatnonzero(p.optimised & (p.demand.premium_eur_per_kwh > 0) & (p.load_kw.max(axis=0) > 0))
    green = m.prog.var((H, len(P)), cost=-p.demand.premium_eur_per_kwh[P] * p.dt_h)
    shed_col, serve_col = np.full((H, N), -1), np.full((H, N), -1)
    shed_col[:, O], serve_col[:, F] = shed, serve
    inflexible = (1 - p.demand.flexible_frac[P]) * p.load_kw[:, P]
    m.prog.constrain(-np.inf, inflexible, (green, 1.0), (shed_col[:, P], 1.0), (serve_col[:, P], -1.0))
    pool = m.prog.rows(-np.inf, 0.0, H)
    m.prog.add(pool[:, None], green, 1.0)
    m.prog.add(pool[:, None], ren, -1.0)
    return P, green, pool


def _thermal(m: _Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thermal units with commitment binaries: minimum output, no-load and start-up costs."""
    p, dt, H = m.p, m.p.dt_h, m.p.load_kw.shape[0]
    G = np.flatnonzero(p.thermal_max_kw.max(axis=0) > 0)
    pmax = p.thermal_max_kw[:, G]
    gen = m.prog.var((H, len(G)), hi=pmax, cost=p.thermal.marginal_cost_eur_per_kwh[G] * dt)
    on = m.prog.var((H, len(G)), hi=(pmax > 0).astype(float), cost=p.thermal.no_load_eur_per_h[G] * dt, integer=True)
    start = m.prog.var((H, len(G)), hi=1.0, cost=p.thermal.startup_eur[G])
    m.prog.constrain(-np.inf, 0.0, (gen, 1.0), (on, -pmax))
    m.prog.constrain(0.0, np.inf, (gen, 1.0), (on, -p.thermal.p_min_kw[G]))
    m.prog.constrain(-m.until_first(p.thermal_on[G].astype(float)), np.inf, (start, 1.0), (on, -1.0), (_previous(on), 1.0))
    m.inject(gen, G, 1.0)
    return G, gen, on


def _reference(m: _Model) -> tuple[np.ndarray | None, np.ndarray]:
    """The upstream grid at the reference bus (if connected), the reference's reactive power, and the
    last resort: the reference unit (or upstream) off its schedule, priced like a market cap."""
    p, dt, H = m.p, m.p.dt_h, m.p.load_kw.shape[0]
    ref = int(p.network.ref[0])
    trade = None
    if p.connected:
        cap = np.inf if p.max_import_kw is None else p.max_import_kw
        trade = m.prog.var((H, 2), hi=[cap, np.inf], cost=np.stack([p.import_eur_per_kwh, -p.export_eur_per_kwh], axis=1) * dt)
        m.prog.add(m.pb[:, ref, None], trade, np.array([1.0, -1.0]) / m.base_kw)
    imbalance = m.prog.var((H, 2), cost=BALANCE_PENALTY_EUR_PER_KWH * dt)
    m.prog.add(m.pb[:, ref, None], imbalance, np.array([1.0, -1.0]) / m.base_kw)
    q_ref = m.prog.var(H, lo=-np.inf)
    m.prog.add(m.qb[:, ref], q_ref, 1.0)
    return trade, imbalance


def _inverter_curtailment(m: _Model) -> np.ndarray:
    """An island's free disposal: price-takers' net injections (kW) their inverters may hold back."""
    p, H = m.p, m.p.load_kw.shape[0]
    T = np.flatnonzero(~p.optimised & (p.fixed_kw.min(axis=0) < 0)) if not p.connected else np.zeros(0, dtype=np.int64)
    held = m.prog.var((H, len(T)), hi=np.maximum(-p.fixed_kw[:, T], 0.0))
    m.inject(held, T, -1.0)
    return held


def _failed(status: str, n: int, n_bus: int, solve_time_s: float) -> AgentPlan:
    nan, off = np.full(n, np.nan), np.zeros(n, dtype=bool)
    return AgentPlan(status=status, welfare_eur=float("nan"), battery_kw=nan, ev_kw=nan, hvac_kw=nan, served_kw=nan,
                     green_kw=nan, green_price_eur_per_kwh=float("nan"), backlog_kwh=nan, renewable_kw=nan,
                     thermal_kw=nan, thermal_on=off, thermal_started=off, price_eur_per_kwh=nan,
                     bus_price_eur_per_kwh=np.full(n_bus, np.nan), bus_vm_pu=np.full(n_bus, np.nan),
                     import_kw=float("nan"), imbalance_kw=float("nan"), solve_time_s=solve_time_s)


def solve_agentic(p: AgentProblem) -> AgentPlan:
    """Builds and solves the horizon problem; a failed solve returns status != optimal and NaNs."""
    H, N = p.load_kw.shape
    dt, net = p.dt_h, p.network
    base_kw = net.base_mva * 1000.0
    prog = Program()
    opt = p.optimised

    fixed_p = np.where(opt, (1 - p.demand.flexible_frac) * p.load_kw, p.fixed_kw)
    fixed_q = np.where(opt, (1 - p.demand.flexible_frac) * p.load_kw * p.q_per_p, p.fixed_kvar)
    pd = np.zeros((H, net.n_bus))
    qd = np.zeros((H, net.n_bus))
    np.add.at(pd.T, p.bus, fixed_p.T / base_kw)
    np.add.at(qd.T, p.bus, fixed_q.T / base_kw)
    block = feeder_block(prog, net, pd, qd, w_ref=p.w_ref, name="grid", voltage_penalty=VOLTAGE_PENALTY_EUR_PER_H * dt)
    m = _Model(prog, p, block.p_balance, block.q_balance, base_kw)

    R, ren = _renewables(m)
    O, shed = _shedding(m, fixed_p)
    F, serve, backlog = _deferrable(m)
    B, charge, discharge = _storage(m)
    E, ev = _ev_charging(m)
    V, hvac = _hvac(m)
    P, green, pool = _premium(m, O, shed, F, serve, ren)
    G, gen, on = _thermal(m)
    trade, imbalance = _reference(m)
    held = _inverter_curtailment(m)

    lp_options = {"solver": "ipm"} if net.n_bus >= LARGE_FEEDER_BUSES and not len(G) else {}
    sol = prog.solve(options=lp_options)
    prices, solve_time_s = sol, sol.solve_time_s
    if sol.status == OPTIMAL and len(G):
        committed = np.rint(sol.x[on.ravel()])
        sol = prog.solve(relax_integers=True, fixed=(on.ravel(), committed))
        prices, solve_time_s = sol, solve_time_s + sol.solve_time_s
        if sol.status == OPTIMAL and (committed < 1).any():  # stopped units may price in at their average cost
            running = on.ravel()[committed == 1]
            pricing = prog.solve(relax_integers=True, fixed=(running, np.ones(len(running))))
            solve_time_s += pricing.solve_time_s
            prices = pricing if pricing.status == OPTIMAL else sol
    if sol.status != OPTIMAL:
        return _failed(sol.status, N, net.n_bus, solve_time_s)

    x = sol.x

    def now(members: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """First-period values of a block, as an (N,) array over participants (0 elsewhere)."""
        out = np.zeros(N)
        out[members] = x[cols[0]]
        return out

    served = np.where(opt, (1 - p.demand.flexible_frac) * p.load_kw[0], p.load_kw[0]) - now(O, shed) + now(F, serve)
    thermal_on = now(G, on) > 0.5
    bus_price = prices.row_dual[block.p_balance[0]] / (base_kw * dt)
    utility_of_fixed = float(np.sum(p.demand.value_eur_per_kwh[O] * np.maximum(fixed_p[:, O], 0.0) * dt))
    return AgentPlan(
        status=sol.status, welfare_eur=utility_of_fixed - sol.objective,
        battery_kw=now(B, charge) - now(B, discharge), ev_kw=now(E, ev), hvac_kw=now(V, hvac), served_kw=served,
        green_kw=now(P, green), green_price_eur_per_kwh=float(-prices.row_dual[pool[0]] / dt), backlog_kwh=now(F, backlog),
        renewable_kw=now(R, ren), thermal_kw=now(G, gen), thermal_on=thermal_on, thermal_started=thermal_on & ~p.thermal_on,
        price_eur_per_kwh=bus_price[p.bus], bus_price_eur_per_kwh=bus_price,
        bus_vm_pu=np.sqrt(np.maximum(x[block.w[0]], 0.0)),
        import_kw=float(x[trade[0, 0]] - x[trade[0, 1]]) if trade is not None else 0.0,
        imbalance_kw=float(x[imbalance[0, 0]] - x[imbalance[0, 1]] - x[held[0]].sum()), solve_time_s=solve_time_s,
    )
