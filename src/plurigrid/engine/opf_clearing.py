"""The `opf` mechanism's side of a step: the world's state as an agentic OPF problem, and back.

Participants with the `truthful` strategy hand their flexibility (deferrable demand, EV charging,
storage, HVAC within its comfort band) and their declared values to the OPF; every other strategy
submits what its own logic decided this step, as a fixed net demand (a price-taker). Renewables
and thermal units are dispatched by the OPF for everyone. The feeder is the same internal model
the AC power flow uses (one per topology, cached), as LinDistFlow.

LinDistFlow neglects losses, so where a voltage or thermal limit binds, the AC power flow can land
just outside it. `tighten` turns each AC violation into a tighter LinDistFlow limit (by the model
error measured there), and the step re-plans, a few times at most; what remains is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from plurigrid.engine.runtime import Runtime
from plurigrid.engine.world import World
from plurigrid.grid.matpower import MatpowerCase
from plurigrid.grid.powerflow import FastPowerFlow, PowerFlowResult
from plurigrid.opf.agentic import AgentPlan, AgentProblem
from plurigrid.opf.lindistflow import merge_parallel
from plurigrid.opf.network import OpfNetwork, from_matpower
from plurigrid.strategies.base import Decision, Observation

OPTIMISED_STRATEGIES = ("truthful",)
KVA_IN_MVA = 1e-3
AC_CHECKS = 4  # plans per step at most: the first and up to three tightened ones
TOL_PU, TOL_PCT = 1e-6, 1e-6


@dataclass
class Feeder:
    """The OPF's view of one topology: the network (per unit of 1 kVA) and how to map AC results onto it."""

    network: OpfNetwork  # before merging parallel branches, so limits map one-to-one onto AC branches
    bus_of_row: np.ndarray  # network bus per net.bus row (-1: de-energised)
    loading_of_branch: np.ndarray  # position of each branch in [line..., trafo...] loading results (-1: none)
    w_ref: float  # squared reference voltage magnitude


def feeder(flow: FastPowerFlow) -> Feeder:
    tables = flow.model_tables()
    bus = tables["bus"].copy()
    bus[:, 0] = np.arange(len(bus))
    case = MatpowerCase("grid", tables["base_mva"], bus, np.zeros((0, 10)), tables["branch"], extra=tables["branch_extra"])
    # per unit of 1 kVA: participants' kW then enter the balance with coefficient 1 (well scaled)
    return Feeder(from_matpower(case).rebased(KVA_IN_MVA), tables["bus_of_row"], tables["loading_of_branch"],
                  float(np.abs(tables["v_ref"][0]) ** 2))


def feeder_of(runtime: Runtime, flow: FastPowerFlow) -> Feeder:
    """The Feeder of a power-flow model, built once per run."""
    key = id(flow)
    if key not in runtime.feeders:
        runtime.feeders[key] = feeder(flow)
    return runtime.feeders[key]


def opf_problem(world: World, grid: Feeder, network: OpfNetwork, obs: Observation, d: Decision, state, k: int) -> AgentProblem:
    """The clearing problem of step k with the world's look-ahead (cut at the end of the run)."""
    H = min(world.opf_horizon_steps, world.steps - k)
    ahead = state.runtime.window.rows(k, H)
    bus = grid.bus_of_row[world.bus_pos]
    alive = bus >= 0
    optimised = np.isin(world.strategy, OPTIMISED_STRATEGIES) & world.in_market & ~obs.offline & alive
    load = ahead.load_kw * alive
    load_q = ahead.load_kvar * alive
    q_per_p = np.divide(load_q, load, out=np.zeros_like(load), where=load > 0)
    served_now = np.maximum(obs.load_kw - d.shift_kw + d.serve_kw, 0.0)
    fixed = load.copy()
    fixed[0] = (served_now + d.ev_kw + d.hvac_kw + d.battery_kw) * alive
    fixed_q = load_q.copy()
    fixed_q[0] = served_now * q_per_p[0]
    h = slice(k, k + H)
    return AgentProblem(
        dt_h=world.dt_h, network=merge_parallel(network), w_ref=grid.w_ref, bus=np.where(alive, bus, 0), optimised=optimised,
        demand=world.demand, batteries=world.batteries, evs=world.evs, hvac=world.hvac, thermal=world.thermal,
        load_kw=load, q_per_p=q_per_p, fixed_kw=fixed, fixed_kvar=fixed_q, renewable_kw=ahead.available_kw * alive,
        backlog_kwh=state.backlog_kwh, backlog_age_steps=state.backlog_age_steps, soc_kwh=state.soc_kwh,
        ev_plugged=ahead.ev_plugged, ev_arrive=ahead.ev_arrive, ev_depart=ahead.ev_depart,
        ev_remaining_kwh=state.ev_remaining_kwh, outdoor_c=ahead.outdoor_c, indoor_c=state.indoor_c,
        thermal_max_kw=np.where(ahead.tripped, 0.0, world.thermal.p_max_kw), thermal_on=state.thermal_on,
        import_eur_per_kwh=world.import_eur_per_kwh[h], export_eur_per_kwh=world.export_eur_per_kwh[h],
        connected=world.grid.connected, max_import_kw=world.max_import_kw,
    )


def apply_plan(problem: AgentProblem, plan: AgentPlan, obs: Observation, d: Decision) -> None:
    """Writes the OPF's setpoints for optimised participants into the step's decision."""
    opt = problem.optimised
    d.battery_kw[opt] = plan.battery_kw[opt]
    d.ev_kw[opt] = plan.ev_kw[opt]
    d.hvac_kw[opt] = plan.hvac_kw[opt]
    d.shift_kw[opt] = np.maximum(obs.load_kw[opt] - plan.served_kw[opt], 0.0)
    d.serve_kw[opt] = np.maximum(plan.served_kw[opt] - obs.load_kw[opt], 0.0)


def tighten(grid: Feeder, network: OpfNetwork, plan: AgentPlan, pf: PowerFlowResult) -> OpfNetwork | None:
    """`network` with its limits tightened where the AC power flow violates the true ones; None if none is.

    A bus below its minimum voltage gets its LinDistFlow minimum raised by the violation, so the next
    plan leaves the margin LinDistFlow's missing losses eat; likewise for maximum voltage, and a branch
    loaded beyond 100 % gets its rating scaled down by the overload.
    """
    if not pf.converged:
        return None
    base = grid.network
    rows = np.flatnonzero(grid.bus_of_row >= 0)
    vm_low = np.full(base.n_bus, np.inf)
    vm_high = np.full(base.n_bus, -np.inf)
    np.minimum.at(vm_low, grid.bus_of_row[rows], pf.vm_pu[rows])
    np.maximum.at(vm_high, grid.bus_of_row[rows], pf.vm_pu[rows])
    # only where the plan kept the limit: where it already had to violate it, tightening cannot help
    planned_ok = (plan.bus_vm_pu >= base.vmin - TOL_PU) & (plan.bus_vm_pu <= base.vmax + TOL_PU)
    under = np.where(planned_ok, np.maximum(base.vmin - vm_low, 0.0), 0.0)
    over = np.where(planned_ok, np.maximum(vm_high - base.vmax, 0.0), 0.0)
    loading = np.r_[pf.line_loading_pct, pf.trafo_loading_pct]
    branch_loading = np.where(grid.loading_of_branch >= 0, loading[np.maximum(grid.loading_of_branch, 0)], 0.0)
    branch_loading = np.nan_to_num(branch_loading, nan=0.0)[base.branch_index]
    overloaded = branch_loading > 100.0 + TOL_PCT
    if not ((under > TOL_PU).any() or (over > TOL_PU).any() or overloaded.any()):
        return None
    margin = 1e-4
    vmin = np.where(under > TOL_PU, network.vmin + under + margin, network.vmin)
    vmax = np.where(over > TOL_PU, network.vmax - over - margin, network.vmax)
    rate = np.where(overloaded, network.rate * 100.0 / np.where(overloaded, branch_loading, 1.0) * (1 - margin), network.rate)
    return replace(network, vmin=vmin, vmax=vmax, rate=rate)
