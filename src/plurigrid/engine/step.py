"""The one step every driver repeats: observe -> decide -> clear -> dispatch + AC power flow -> settle.

The simulator calls `step` for each interval on a virtual clock; live nodes will call the same
function. Nothing here reads the wall clock except the stage timers, which never affect results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from plurigrid.assets.devices import battery_step_kwh, indoor_step_c, thermostat_kw
from plurigrid.engine.dispatch import Dispatch, dispatch_thermal, shed_load
from plurigrid.engine.opf_clearing import AC_CHECKS, OPTIMISED_STRATEGIES, apply_plan, feeder_of, opf_problem, tighten
from plurigrid.engine.runtime import Runtime
from plurigrid.engine.world import World
from plurigrid.grid.powerflow import PowerFlowResult
from plurigrid.market.mechanisms import Clearing, OrderBook, clear_nodal, clear_tariff
from plurigrid.market.settlement import Settlement, settle
from plurigrid.opf.agentic import AgentPlan, solve_agentic
from plurigrid.strategies.base import Decision, Observation
from plurigrid.strategies.builtin import BUILTIN, STORE_STRATEGIES

STAGES = ("observe", "decide", "clear", "powerflow", "settle")


@dataclass
class State:
    """What carries over from one step to the next: the devices' state, and the run's `Runtime`."""

    soc_kwh: np.ndarray
    ev_remaining_kwh: np.ndarray
    ev_unmet_kwh: np.ndarray
    backlog_kwh: np.ndarray
    backlog_age_steps: np.ndarray
    thermal_on: np.ndarray
    indoor_c: np.ndarray
    runtime: Runtime  # shared by copies of the state (see Runtime.__deepcopy__)
    last_price_eur_per_kwh: float = float("nan")
    timings_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


@dataclass
class StepResult:
    step: int
    decision: Decision
    demand_kw: np.ndarray  # consumption incl. EV, HVAC, shifted load and battery charging (discharge negative)
    renewable_kw: np.ndarray  # renewable power used after curtailment
    dispatch: Dispatch
    net_kw: np.ndarray  # scheduled net withdrawal per participant
    scheduled_wh: np.ndarray  # the same over the step in whole Wh, as the market books it
    clearing: Clearing
    settlement: Settlement
    pf: PowerFlowResult
    upstream_wh: int  # energy from the upstream grid (negative: export)
    losses_wh: int
    thermal_cost_eur: np.ndarray
    served_kw: np.ndarray  # demand actually served (load after shifting + EV)
    p_bus_mw: np.ndarray  # net injection per bus (net.bus row order) given to the power flow
    q_bus_mvar: np.ndarray
    opf: AgentPlan | None = None  # the opf mechanism's plan (a failed one carries its status)


def initial_state(world: World) -> State:
    """The state before the first step, with a fresh runtime (module instances started)."""
    n = world.n
    return State(
        soc_kwh=world.batteries.initial_kwh.copy(), ev_remaining_kwh=np.zeros(n), ev_unmet_kwh=np.zeros(n),
        backlog_kwh=np.zeros(n), backlog_age_steps=np.zeros(n), thermal_on=world.thermal.initially_on.copy(),
        indoor_c=world.hvac.initial_c.copy(), runtime=Runtime.start(world),
    )


def warm_up(world: World, state: State, k: int = 0) -> None:
    """Builds the power flow of interval k's topology ahead of time, so a live node's first gate is not slow."""
    state.runtime.powerflow(world, k)


def observe(world: World, state: State, k: int) -> Observation:
    """What participants know at the start of step k."""
    now = state.runtime.window.row(k)
    state.ev_remaining_kwh = np.where(now.ev_arrive, world.evs.need_kwh, state.ev_remaining_kwh)
    h = slice(k, k + world.horizon_steps)
    if state.runtime.stores is None:
        state.runtime.stores = _stores(world)
    return Observation(
        step=k, dt_h=world.dt_h, load_kw=now.load_kw, renewable_kw=now.available_kw, backlog_kwh=state.backlog_kwh,
        backlog_age_steps=state.backlog_age_steps, soc_kwh=state.soc_kwh, ev_remaining_kwh=state.ev_remaining_kwh,
        ev_plugged=now.ev_plugged, ev_steps_left=now.ev_steps_left, indoor_c=state.indoor_c, outdoor_c=now.outdoor_c,
        offline=now.offline, demand=world.demand, batteries=world.batteries, evs=world.evs, thermal=world.thermal,
        import_forecast_eur_per_kwh=world.import_eur_per_kwh[h], export_forecast_eur_per_kwh=world.export_eur_per_kwh[h],
        last_price_eur_per_kwh=state.last_price_eur_per_kwh, mechanism=world.mechanism, stores=state.runtime.stores,
        fee_eur_per_kwh=world.fee_eur_per_kwh,
    )


def _stores(world: World) -> np.ndarray:
    """Participants whose battery serves as a store (under opf, the clearing runs the truthful ones' instead)."""
    names = [s for s in STORE_STRATEGIES if not (world.mechanism == "opf" and s in OPTIMISED_STRATEGIES)]
    owners = np.flatnonzero((world.batteries.capacity_kwh > 0) & world.in_market)
    return owners[np.isin(world.strategy[owners], names)]


def decide(world: World, state: State, obs: Observation, k: int) -> Decision:
    """Runs each strategy on its participants; offline participants fall back to passive."""
    out = Decision.empty(world.n)
    rng = np.random.default_rng([world.seed, k])
    offline = obs.offline
    for name, members in world.groups.items():
        online = members[~offline[members]]
        if len(online):
            BUILTIN[name](obs, online, out, rng)
    modules = state.runtime.modules
    if modules is not None:
        members = modules.members
        t = world.index[k]
        modules.decide(obs, members[~offline[members]], out, rng, int(t.value // 1_000_000), t.isoformat(),
                       world.event_starts.get(k))
    out.trades &= world.in_market
    markup = world.markup_eur_per_kwh
    if markup.any():  # a participant's strategic mark-up on whatever its strategy or module bid and asked
        out.bid_eur_per_kwh -= markup
        out.ask_eur_per_kwh += markup
    if offline.any():
        BUILTIN["passive"](obs, np.flatnonzero(offline), out, rng)
    _thermostats(world, obs, out)
    return out


def passive_decision(world: World, obs: Observation, k: int) -> Decision:
    """What participants do when no decision of theirs reached the market: passive, HVAC on its thermostat."""
    out = Decision.empty(world.n)
    BUILTIN["passive"](obs, np.arange(world.n), out, np.random.default_rng([world.seed, k]))
    _thermostats(world, obs, out)
    return out


def _thermostats(world: World, obs: Observation, out: Decision) -> None:
    """Every building's HVAC runs on its thermostat (the opf mechanism may replace that for truthful ones)."""
    hv = world.hvac
    target = np.where(hv.gain_k_per_kw > 0, hv.comfort_min_c, hv.comfort_max_c)
    out.hvac_kw[:] = thermostat_kw(obs.indoor_c, obs.outdoor_c, target, hv.gain_k_per_kw, hv.decay, hv.p_max_kw)


Decide = Callable[[World, State, Observation, int], Decision]


def step(world: World, state: State, k: int, decide_with: Decide = decide) -> StepResult:
    """Advances the world by one interval and returns everything that happened in it.

    `decide_with` makes the decisions; the lattice passes one that uses the decisions its nodes
    published for the interval instead of running every strategy itself.
    """
    t = state.timings_s
    t0 = time.perf_counter()
    obs = observe(world, state, k)
    t1 = time.perf_counter()
    d = decide_with(world, state, obs, k)
    t2 = time.perf_counter()

    dt_h = world.dt_h
    if world.mechanism == "opf":
        problem, plan, sched, pf = _clear_with_opf(world, state, obs, d, k)
    else:
        problem, plan, sched, pf = None, None, _schedule(world, state, obs, d, k, None), None
    use_plan = plan is not None and plan.ok
    served, demand, disp, renewable, net_kw = sched.served_kw, sched.demand_kw, sched.dispatch, sched.renewable_kw, sched.net_kw
    scheduled_wh = np.rint(net_kw * dt_h * 1000).astype(np.int64)
    book = OrderBook.from_positions(scheduled_wh, d.bid_eur_per_kwh, d.ask_eur_per_kwh, d.trades)
    if use_plan:
        to_wh = lambda kw: np.rint(kw * dt_h * 1000).astype(np.int64)
        clearing = clear_nodal(book, world.n, plan.price_eur_per_kwh, to_wh(plan.green_kw), plan.green_price_eur_per_kwh,
                               to_wh(renewable))
    elif world.clear is not None:
        clearing = world.clear(book, world.n)
    else:  # the OPF found no plan this step: settle at tariff
        clearing = clear_tariff(book, world.n)
    t3 = time.perf_counter()
    if plan is not None:  # the solver's share of `clear`, beside the stages (the wall clock stays out of the records)
        t["opf_solve"] = t.get("opf_solve", 0.0) + plan.solve_time_s

    p_bus_mw, q_bus_mvar = sched.p_bus_mw, sched.q_bus_mvar
    if pf is None:
        pf = state.runtime.powerflow(world, k).solve(p_bus_mw, q_bus_mvar)
    t4 = time.perf_counter()

    # The reference (upstream grid or island unit) supplies what the schedule leaves: losses and mismatch.
    extra_mw = pf.losses_mw - p_bus_mw.sum() if pf.converged else -p_bus_mw.sum()
    metered_wh = scheduled_wh.copy()
    if world.grid.connected:
        upstream_wh = int(np.rint(extra_mw * dt_h * 1e6))
    else:
        metered_wh[world.reference] -= int(np.rint(extra_mw * dt_h * 1e6))
        upstream_wh = 0
    losses_wh = upstream_wh - int(metered_wh.sum())
    imp, exp = float(obs.import_forecast_eur_per_kwh[0]), float(obs.export_forecast_eur_per_kwh[0])
    st = settle(metered_wh, clearing, imp, exp, world.fee_eur_per_kwh)
    th = world.thermal
    thermal_cost = (th.marginal_cost_eur_per_kwh * disp.thermal_kw * dt_h + th.no_load_eur_per_h * dt_h * disp.on
                    + th.startup_eur * disp.started)
    _advance(world, state, k, obs, d, disp, clearing)
    if state.runtime.modules is not None:
        state.runtime.modules.meter_kwh = metered_wh / 1000.0
    if use_plan:  # demand the OPF dropped or shed is gone, not waiting
        opt = problem.optimised
        state.backlog_kwh[opt] = plan.backlog_kwh[opt]
        state.backlog_age_steps[opt & (state.backlog_kwh <= 1e-9)] = 0
    t5 = time.perf_counter()
    for name, dur in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
        t[name] += dur
    return StepResult(k, d, demand, renewable, disp, net_kw, scheduled_wh, clearing, st, pf, upstream_wh, losses_wh, thermal_cost,
                      served + d.ev_kw, p_bus_mw, q_bus_mvar, plan)


def _dispatch_by_merit_order(world: World, state: State, obs: Observation, demand: np.ndarray, k: int) -> Dispatch:
    """Thermal commitment of the order-book mechanisms (and of `opf` when it finds no plan)."""
    th = world.thermal
    avg_cost = th.marginal_cost_eur_per_kwh + th.no_load_eur_per_h / np.maximum(th.p_max_kw, 1e-9)
    avail_thermal = np.where(state.runtime.window.row(k).tripped, 0.0, th.p_max_kw)
    return dispatch_thermal(demand, obs.renewable_kw, avail_thermal, th.p_min_kw, avg_cost, state.thermal_on,
                            islanded=not world.grid.connected, import_eur_per_kwh=float(obs.import_forecast_eur_per_kwh[0]),
                            max_import_kw=world.max_import_kw)


@dataclass
class _Schedule:
    """What the clear stage fixes: per participant (kW) and the resulting bus injections (MW, Mvar)."""

    served_kw: np.ndarray
    demand_kw: np.ndarray
    dispatch: Dispatch
    renewable_kw: np.ndarray
    net_kw: np.ndarray
    p_bus_mw: np.ndarray
    q_bus_mvar: np.ndarray


def _schedule(world: World, state: State, obs: Observation, d: Decision, k: int, plan: AgentPlan | None) -> _Schedule:
    """Demand, dispatch and injections from the decision and either the OPF's plan or the merit order."""
    served = np.maximum(obs.load_kw - d.shift_kw + d.serve_kw, 0.0)
    demand = served + d.ev_kw + d.hvac_kw + d.battery_kw
    if plan is not None:
        used = np.divide(plan.renewable_kw, obs.renewable_kw, out=np.ones_like(served), where=obs.renewable_kw > 0)
        disp = Dispatch(plan.thermal_kw, plan.thermal_on, plan.thermal_started, 1.0 - used)
    else:
        disp = _dispatch_by_merit_order(world, state, obs, demand, k)
        if disp.shed_kw > 0:  # an island short of supply sheds load
            served, disp = shed_load(served, disp)
            demand = served + d.ev_kw + d.hvac_kw + d.battery_kw
    renewable = obs.renewable_kw * (1.0 - disp.curtail_frac)
    net_kw = demand - renewable - disp.thermal_kw
    n_bus = len(world.grid.net.bus)
    q_ratio = np.divide(served, obs.load_kw, out=np.ones_like(served), where=obs.load_kw > 0)
    p_bus_mw = -np.bincount(world.bus_pos, weights=net_kw, minlength=n_bus) / 1000
    load_kvar = state.runtime.window.row(k).load_kvar
    q_bus_mvar = -np.bincount(world.bus_pos, weights=load_kvar * q_ratio, minlength=n_bus) / 1000
    return _Schedule(served, demand, disp, renewable, net_kw, p_bus_mw, q_bus_mvar)


def _clear_with_opf(world: World, state: State, obs: Observation, d: Decision, k: int):
    """Plans step k with the agentic OPF and checks it by AC power flow, re-planning with tightened limits.

    Returns (problem, plan, schedule, power flow); the setpoints of the last optimal plan are in `d`.
    Without an optimal plan the step falls back to the merit order (and settles at tariff).
    """
    flow = state.runtime.powerflow(world, k)
    grid = feeder_of(state.runtime, flow)
    network = grid.network
    best = None
    for _ in range(AC_CHECKS):
        problem = opf_problem(world, grid, network, obs, d, state, k)
        plan = solve_agentic(problem)
        if not plan.ok:
            break
        apply_plan(problem, plan, obs, d)
        sched = _schedule(world, state, obs, d, k, plan)
        pf = flow.solve(sched.p_bus_mw, sched.q_bus_mvar)
        best = (problem, plan, sched, pf)
        tightened = tighten(grid, network, plan, pf)
        if tightened is None:
            break
        network = tightened
    if best is None:
        return problem, plan, _schedule(world, state, obs, d, k, None), None
    return best


def _advance(world: World, state: State, k: int, obs: Observation, d: Decision, disp: Dispatch, clearing: Clearing) -> None:
    """Moves device and market state to the end of step k."""
    dt_h = world.dt_h
    state.soc_kwh = battery_step_kwh(state.soc_kwh, d.battery_kw, world.batteries.efficiency, dt_h)
    state.ev_remaining_kwh = np.maximum(state.ev_remaining_kwh - d.ev_kw * world.evs.efficiency * dt_h, 0.0)
    depart = state.runtime.window.row(k).ev_depart
    state.ev_unmet_kwh += np.where(depart, state.ev_remaining_kwh, 0.0)
    state.ev_remaining_kwh = np.where(depart, 0.0, state.ev_remaining_kwh)
    backlog = np.maximum(state.backlog_kwh + (d.shift_kw - d.serve_kw) * dt_h, 0.0)
    state.backlog_age_steps = np.where(backlog > 1e-9, np.where(state.backlog_kwh > 1e-9, state.backlog_age_steps + 1, 0), 0)
    state.backlog_kwh = np.where(backlog > 1e-9, backlog, 0.0)
    state.thermal_on = disp.on
    hv = world.hvac
    state.indoor_c = indoor_step_c(state.indoor_c, obs.outdoor_c, d.hvac_kw, hv.gain_k_per_kw, hv.decay)
    if np.isfinite(clearing.price_eur_per_kwh):
        state.last_price_eur_per_kwh = clearing.price_eur_per_kwh
