"""The `opf` mechanism's side of a step: the world's state as an agentic OPF problem, and back.

Participants with the `truthful` strategy hand their flexibility (deferrable demand, EV charging,
storage, HVAC within its comfort band) and their declared values to the OPF; every other strategy submits what its own logic
decided this step, as a fixed net demand (a price-taker). Renewables and thermal units are
dispatched by the OPF for everyone. The feeder is the same internal model the AC power flow
uses (one per topology, cached), as LinDistFlow.
"""

from __future__ import annotations

import numpy as np

from plurigrid.engine.world import World
from plurigrid.grid.matpower import MatpowerCase
from plurigrid.grid.powerflow import FastPowerFlow
from plurigrid.opf.agentic import AgentPlan, AgentProblem, solve_agentic
from plurigrid.opf.lindistflow import merge_parallel
from plurigrid.opf.network import OpfNetwork, from_matpower
from plurigrid.strategies.base import Decision, Observation

OPTIMISED_STRATEGIES = ("truthful",)
KVA_IN_MVA = 1e-3


def feeder(flow: FastPowerFlow) -> tuple[OpfNetwork, np.ndarray, float]:
    """(network, network bus per net.bus row (-1: de-energised), squared reference voltage)."""
    tables = flow.model_tables()
    bus = tables["bus"].copy()
    bus[:, 0] = np.arange(len(bus))
    gen = np.zeros((0, 10))
    case = MatpowerCase("grid", tables["base_mva"], bus, gen, tables["branch"])
    # per unit of 1 kVA: participants' kW then enter the balance with coefficient 1 (well scaled)
    net = merge_parallel(from_matpower(case)).rebased(KVA_IN_MVA)
    return net, tables["bus_of_row"], float(np.abs(tables["v_ref"][0]) ** 2)


def opf_problem(world: World, flow: FastPowerFlow, obs: Observation, d: Decision, state, k: int) -> AgentProblem:
    """The clearing problem of step k with the world's look-ahead (cut at the end of the run)."""
    key = id(flow)
    if key not in world.opf_networks:
        world.opf_networks[key] = feeder(flow)
    net, bus_of_row, w_ref = world.opf_networks[key]
    H = min(world.opf_horizon_steps, world.steps - k)
    h = slice(k, k + H)
    bus = bus_of_row[world.bus_pos]
    alive = bus >= 0
    optimised = np.isin(world.strategy, OPTIMISED_STRATEGIES) & ~world.offline[k] & alive
    load = world.load_p_kw[h] * alive
    load_q = world.load_q_kvar[h] * alive
    q_per_p = np.divide(load_q, load, out=np.zeros_like(load), where=load > 0)
    served_now = np.maximum(obs.load_kw - d.shift_kw + d.serve_kw, 0.0)
    fixed = load.copy()
    fixed[0] = (served_now + d.ev_kw + d.hvac_kw + d.battery_kw) * alive
    fixed_q = load_q.copy()
    fixed_q[0] = served_now * q_per_p[0]
    renewable = np.where(world.tripped[h], 0.0, world.variable_kw[h] + world.hydro_kw[h]) * alive
    return AgentProblem(
        dt_h=world.dt_h, network=net, w_ref=w_ref, bus=np.where(alive, bus, 0), optimised=optimised,
        load_kw=load, q_per_p=q_per_p, fixed_kw=fixed, fixed_kvar=fixed_q, renewable_kw=renewable,
        value_eur_per_kwh=world.value_eur_per_kwh, flexible_frac=world.flexible_frac, max_delay_steps=world.max_delay_steps,
        backlog_kwh=state.backlog_kwh, backlog_age_steps=state.backlog_age_steps,
        battery_kwh=world.battery_kwh, battery_kw=world.battery_kw, battery_eff=world.battery_eff,
        battery_min_kwh=world.battery_min_kwh, soc_kwh=state.soc_kwh, degradation_eur_per_kwh=world.battery_degradation_eur_per_kwh,
        ev_kw=world.ev_kw, ev_eff=world.ev_eff, ev_plugged=world.ev_plugged[h], ev_arrive=world.ev_arrive[h],
        ev_depart=world.ev_depart[h], ev_remaining_kwh=state.ev_remaining_kwh, ev_need_kwh=world.ev_need_kwh,
        hvac_kw=world.hvac_kw, hvac_gain_k_per_kw=world.hvac_gain_k_per_kw, hvac_decay=world.hvac_decay,
        outdoor_c=world.outdoor_c[h], indoor_c=state.indoor_c, comfort_min_c=world.hvac_min_c, comfort_max_c=world.hvac_max_c,
        discomfort_eur_per_kh=world.hvac_discomfort_eur_per_kh,
        thermal_max_kw=np.where(world.tripped[h], 0.0, world.thermal_max_kw), thermal_min_kw=world.thermal_min_kw,
        thermal_var_eur_per_kwh=world.thermal_var_eur_per_kwh, thermal_noload_eur_per_h=world.thermal_noload_eur_per_h,
        thermal_startup_eur=world.thermal_startup_eur, thermal_on=state.thermal_on,
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
