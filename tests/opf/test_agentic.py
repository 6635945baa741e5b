"""Agentic OPF on hand-built 2-bus feeders: optima, prices and dispatch that can be worked out by hand.

Every feeder is built in per unit of 1 MVA and rebased to 1 kVA (as the engine does), so one kW
enters the balance as one per-unit; dt is one hour, so kW and kWh per period coincide.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from plurigrid.assets.fleet import HVAC, Batteries, Demand, EVs, Thermal
from plurigrid.grid.matpower import MatpowerCase
from plurigrid.opf.agentic import BALANCE_PENALTY_EUR_PER_KWH, AgentPlan, AgentProblem, solve_agentic
from plurigrid.opf.network import OpfNetwork, from_matpower
from plurigrid.opf.result import OPTIMAL

TOL = 1e-6


def feeder(r_pu: float = 0.01, x_pu: float = 0.01, rate_mva: float = 0.0, vmin: float = 0.9) -> OpfNetwork:
    """Reference bus 0 and a load bus 1 joined by one line (per unit of 1 MVA; rate 0 = unlimited)."""
    bus = np.array([[0, 3, 0, 0, 0, 0, 1, 1, 0, 0.4, 1, 1.1, vmin],
                    [1, 1, 0, 0, 0, 0, 1, 1, 0, 0.4, 1, 1.1, vmin]], dtype=float)
    branch = np.array([[0, 1, r_pu, x_pu, 0, rate_mva, 0, 0, 0, 0, 1, -360, 360]], dtype=float)
    return from_matpower(MatpowerCase("feeder", 1.0, bus, np.zeros((0, 10)), branch)).rebased(1e-3)


def per_period(*values: float) -> np.ndarray:
    """A one-participant (H, 1) column."""
    return np.array(values, dtype=float)[:, None]


# test arguments named as a participant's own quantities → (asset table, column)
ASSET_COLUMNS = {
    "value_eur_per_kwh": ("demand", "value_eur_per_kwh"), "premium_eur_per_kwh": ("demand", "premium_eur_per_kwh"),
    "flexible_frac": ("demand", "flexible_frac"), "max_delay_steps": ("demand", "max_delay_steps"),
    "battery_kwh": ("batteries", "capacity_kwh"), "battery_kw": ("batteries", "power_kw"),
    "battery_eff": ("batteries", "efficiency"), "battery_min_kwh": ("batteries", "min_kwh"),
    "degradation_eur_per_kwh": ("batteries", "degradation_eur_per_kwh"),
    "ev_kw": ("evs", "power_kw"), "ev_eff": ("evs", "efficiency"), "ev_need_kwh": ("evs", "need_kwh"),
    "hvac_kw": ("hvac", "p_max_kw"), "hvac_gain_k_per_kw": ("hvac", "gain_k_per_kw"), "hvac_decay": ("hvac", "decay"),
    "comfort_min_c": ("hvac", "comfort_min_c"), "comfort_max_c": ("hvac", "comfort_max_c"),
    "discomfort_eur_per_kh": ("hvac", "discomfort_eur_per_kh"),
    "thermal_min_kw": ("thermal", "p_min_kw"), "thermal_var_eur_per_kwh": ("thermal", "marginal_cost_eur_per_kwh"),
    "thermal_noload_eur_per_h": ("thermal", "no_load_eur_per_h"), "thermal_startup_eur": ("thermal", "startup_eur"),
}
TABLES = {"demand": Demand, "batteries": Batteries, "evs": EVs, "hvac": HVAC, "thermal": Thermal}


def problem(net: OpfNetwork, H: int, N: int = 1, **given) -> AgentProblem:
    """Neutral defaults (nothing to dispatch, free energy, connected), overridden by `given`, broadcast to shape."""
    hn, n = np.zeros((H, N)), np.zeros(N)
    defaults = {f.name: n for f in fields(AgentProblem) if f.name not in TABLES}
    defaults.update(dict.fromkeys(ASSET_COLUMNS, n))
    defaults.update(
        dt_h=1.0, network=net, w_ref=1.0, bus=np.zeros(N, dtype=np.int64), optimised=np.zeros(N, dtype=bool),
        max_delay_steps=np.zeros(N, dtype=np.int64), battery_eff=np.ones(N), ev_eff=np.ones(N),
        thermal_on=np.zeros(N, dtype=bool), import_eur_per_kwh=np.zeros(H), export_eur_per_kwh=np.zeros(H),
        connected=True, max_import_kw=None,
    )
    for name in ("load_kw", "q_per_p", "fixed_kw", "fixed_kvar", "renewable_kw", "thermal_max_kw", "outdoor_c"):
        defaults[name] = hn
    for name in ("ev_plugged", "ev_arrive", "ev_depart"):
        defaults[name] = hn.astype(bool)
    for name, value in given.items():
        default = defaults[name]
        defaults[name] = np.broadcast_to(np.asarray(value, default.dtype), default.shape).copy() \
            if isinstance(default, np.ndarray) else value
    columns: dict[str, dict] = {table: {f.name: np.zeros(N) for f in fields(cls)} for table, cls in TABLES.items()}
    for name, (table, column) in ASSET_COLUMNS.items():
        columns[table][column] = defaults.pop(name)
    tables = {table: TABLES[table](**cols) for table, cols in columns.items()}
    return AgentProblem(**defaults, **tables)


def solved(p: AgentProblem) -> AgentPlan:
    plan = solve_agentic(p)
    assert plan.status == OPTIMAL
    return plan


def consumer(net: OpfNetwork, H: int, load_kw: float | np.ndarray, value: float = 1.0, **given) -> AgentProblem:
    """One optimised participant at bus 1 with a fixed (inflexible) load worth `value` per kWh."""
    return problem(net, H, bus=[1], optimised=[True], load_kw=load_kw, value_eur_per_kwh=[value], **given)


def test_plain_import_serves_load_at_the_import_price() -> None:
    plan = solved(consumer(feeder(), 4, 4.0, value=1.0, import_eur_per_kwh=0.3))
    assert plan.served_kw[0] == pytest.approx(4.0, abs=TOL)
    assert plan.import_kw == pytest.approx(4.0, abs=TOL)  # LinDistFlow is lossless
    np.testing.assert_allclose(plan.bus_price_eur_per_kwh, [0.3, 0.3], atol=TOL)
    assert plan.price_eur_per_kwh[0] == pytest.approx(0.3, abs=TOL)
    assert plan.welfare_eur == pytest.approx(4 * (1.0 - 0.3) * 4.0, abs=TOL)
    assert plan.imbalance_kw == pytest.approx(0.0, abs=TOL)


def battery(degradation: float) -> AgentProblem:
    """10 kWh / 5 kW, 90 % each way, empty; its owner's 5 kW load worth 1 EUR/kWh; prices cheap then dear."""
    return consumer(feeder(), 4, 5.0, import_eur_per_kwh=[0.1, 0.1, 0.5, 0.5], battery_kwh=[10.0], battery_kw=[5.0],
                    battery_eff=[0.9], degradation_eur_per_kwh=[degradation])


def test_battery_charges_cheap_and_discharges_dear() -> None:
    # charge 5 + 5 kWh (soc 4.5 + 4.5 = 9 <= 10), give back 9 * 0.9 = 8.1 kWh at 0.5:
    # imports 10, 10, 5 - 5, 5 - 3.1 kWh cost 1 + 1 + 0 + 0.95 = 2.95, against 20 kWh of value
    plan = solved(battery(0.0))
    assert plan.battery_kw[0] == pytest.approx(5.0, abs=TOL)  # + is charging
    assert plan.import_kw == pytest.approx(10.0, abs=TOL)
    assert plan.welfare_eur == pytest.approx(20.0 - 2.95, abs=TOL)


def test_battery_idles_when_degradation_exceeds_the_spread() -> None:
    plan = solved(battery(0.4))  # a round trip costs 1.81 * 0.4 > 0.405 - 0.1 per kWh charged
    assert plan.battery_kw[0] == pytest.approx(0.0, abs=TOL)
    assert plan.welfare_eur == pytest.approx(20.0 - (0.1 * 10 + 0.5 * 10), abs=TOL)


@pytest.mark.parametrize(("need_kwh", "ev_now_kw", "cost_eur"), [
    (6.0, 0.0, 0.1 * 4 + 0.2 * 2),  # cheapest periods 1 and 2 suffice
    (14.0, 2.0, 0.1 * 4 + 0.2 * 4 + 0.3 * 4 + 0.4 * 2),  # the dear first period tops up the rest
])
def test_ev_charges_in_the_cheapest_periods_before_departure(need_kwh: float, ev_now_kw: float,
                                                              cost_eur: float) -> None:
    # 4 kW, plugged in all four periods, leaving at the end of period 3 (a next session would need 20 kWh)
    p = consumer(feeder(), 4, 0.0, import_eur_per_kwh=[0.4, 0.1, 0.2, 0.3], ev_kw=[4.0], ev_plugged=True,
                 ev_depart=per_period(0, 0, 0, 1), ev_remaining_kwh=[need_kwh], ev_need_kwh=[20.0])
    plan = solved(p)
    assert plan.ev_kw[0] == pytest.approx(ev_now_kw, abs=TOL)
    # value 1 EUR/kWh exceeds every price, so only the need caps the energy: exactly need_kwh delivered
    assert plan.welfare_eur == pytest.approx(need_kwh * 1.0 - cost_eur, abs=TOL)


@pytest.mark.parametrize(("delay", "prices", "served_now_kw"), [
    (2, [0.5, 0.6, 0.1, 0.5], 0.0),  # waits two periods for the cheap one
    (1, [0.5, 0.6, 0.1, 0.5], 3.0),  # may wait one period only, and that one is dearer: served now
    (1, [0.5, 0.1, 0.5, 0.5], 0.0),  # one period is enough to reach the cheap one
])
def test_deferrable_load_waits_for_cheap_energy_within_its_delay(delay: int, prices: list[float],
                                                                served_now_kw: float) -> None:
    p = consumer(feeder(), 4, per_period(3, 0, 0, 0), flexible_frac=[1.0], max_delay_steps=[delay],
                 import_eur_per_kwh=prices)
    plan = solved(p)
    assert plan.served_kw[0] == pytest.approx(served_now_kw, abs=TOL)
    assert plan.backlog_kwh[0] == pytest.approx(3.0 - served_now_kw, abs=TOL)
    assert plan.welfare_eur == pytest.approx(3 * (1.0 - min(prices[:delay + 1])), abs=TOL)


@pytest.mark.parametrize(("age", "served_now_kw"), [(0, 0.0), (1, 3.0)])
def test_carried_backlog_is_served_by_its_deadline(age: int, served_now_kw: float) -> None:
    """Backlog deferred `age + 1` steps ago (age 0: last step) may wait max_delay_steps = 2 steps in all."""
    p = consumer(feeder(), 4, 0.0, flexible_frac=[1.0], max_delay_steps=[2], backlog_kwh=[3.0],
                 backlog_age_steps=[age], import_eur_per_kwh=[0.5, 0.1, 0.1, 0.1])
    plan = solved(p)
    assert plan.served_kw[0] == pytest.approx(served_now_kw, abs=TOL)
    assert plan.backlog_kwh[0] == pytest.approx(3.0 - served_now_kw, abs=TOL)


def local_unit(net: OpfNetwork, H: int = 4, load_kw: float = 10.0, **given) -> AgentProblem:
    """Participant 0: a 10 kW price-taking load at bus 1; participant 1: a 20 kW thermal unit there at 0.6 EUR/kWh."""
    return problem(net, H, N=2, bus=[1, 1], load_kw=[load_kw, 0.0], fixed_kw=[load_kw, 0.0],
                   value_eur_per_kwh=[2.0, 0.0], thermal_max_kw=[0.0, 20.0], thermal_var_eur_per_kwh=[0.0, 0.6],
                   import_eur_per_kwh=0.3, **given)


def test_congested_line_splits_prices_and_dispatches_the_local_unit() -> None:
    # 5 kVA rating: at zero reactive flow the 16-gon (vertices on the circle, one on the P axis) allows exactly 5 kW
    plan = solved(local_unit(feeder(rate_mva=0.005)))
    assert plan.import_kw == pytest.approx(5.0, abs=TOL)
    assert plan.thermal_kw[1] == pytest.approx(5.0, abs=TOL)
    assert plan.import_kw + plan.thermal_kw.sum() == pytest.approx(plan.served_kw.sum(), abs=TOL)  # balance
    np.testing.assert_allclose(plan.bus_price_eur_per_kwh, [0.3, 0.6], atol=TOL)

    relaxed = solved(local_unit(feeder(rate_mva=0.0)))
    assert relaxed.thermal_kw[1] == pytest.approx(0.0, abs=TOL)
    np.testing.assert_allclose(relaxed.bus_price_eur_per_kwh, [0.3, 0.3], atol=TOL)


def test_low_voltage_limit_raises_the_price_at_the_load_bus() -> None:
    # w1 = 1 - 2 r P with r = 19 / 1000 per unit of 1 kVA: w1 >= 0.9^2 allows P <= 0.19 / 0.038 = 5 kW
    plan = solved(local_unit(feeder(r_pu=19.0, x_pu=0.0, vmin=0.9)))
    assert plan.import_kw == pytest.approx(5.0, abs=1e-5)
    assert plan.thermal_kw[1] == pytest.approx(5.0, abs=1e-5)
    assert plan.bus_price_eur_per_kwh[1] == pytest.approx(0.6, abs=TOL)
    assert plan.bus_price_eur_per_kwh[0] == pytest.approx(0.3, abs=TOL)

    relaxed = solved(local_unit(feeder(r_pu=19.0, x_pu=0.0, vmin=0.5)))  # w1 = 1 - 0.38 = 0.62 >= 0.25
    assert relaxed.thermal_kw[1] == pytest.approx(0.0, abs=1e-5)
    np.testing.assert_allclose(relaxed.bus_price_eur_per_kwh, [0.3, 0.3], atol=TOL)


def island(H: int = 4, load_kw: np.ndarray | float = 0.0, value: float = 1.0, p_min: float = 2.0, startup: float = 0.0,
           was_on: bool = False, **given) -> AgentProblem:
    """Islanded feeder: participant 0 at bus 1; participant 1 a 10 kW unit at the reference (0.2 EUR/kWh, 0.5 EUR/h)."""
    return problem(feeder(), H, N=2, bus=[1, 0], connected=False, load_kw=np.c_[load_kw, np.zeros(H)],
                   value_eur_per_kwh=[value, 0.0], thermal_max_kw=[0.0, 10.0], thermal_min_kw=[0.0, p_min],
                   thermal_var_eur_per_kwh=[0.0, 0.2], thermal_noload_eur_per_h=[0.0, 0.5],
                   thermal_startup_eur=[0.0, startup], thermal_on=[False, was_on], **given)


@pytest.mark.parametrize(("load_kw", "startup", "was_on", "on", "welfare"), [
    (3.0, 1.0, False, True, 3.0 - (0.2 * 3 + 0.5 + 1.0)),  # worth starting for 3 kWh worth 3 EUR
    (3.0, 5.0, False, False, 0.0),  # not worth it (a 30 % LP-relaxed start would be: binaries matter)
    (3.0, 5.0, True, True, 3.0 - (0.2 * 3 + 0.5)),  # already running: no start-up cost, keeps running
    (1.0, 0.0, False, False, 0.0),  # below p_min = 2: running would dump 1 kW at the penalty; shed instead
])
def test_unit_commitment_weighs_start_up_no_load_and_minimum(load_kw: float, startup: float, was_on: bool, on: bool,
                                                             welfare: float) -> None:
    plan = solved(island(load_kw=per_period(load_kw, 0, 0, 0), startup=startup, was_on=was_on, optimised=[True, False]))
    assert plan.thermal_on[1] == on
    assert plan.thermal_started[1] == (on and not was_on)
    assert plan.thermal_kw[1] == pytest.approx(load_kw if on else 0.0, abs=TOL)
    assert plan.welfare_eur == pytest.approx(welfare, abs=TOL)
    assert np.isfinite(plan.bus_price_eur_per_kwh).all()  # priced by the LP with the commitment fixed
    if on:  # the running unit is marginal between its limits
        np.testing.assert_allclose(plan.bus_price_eur_per_kwh, [0.2, 0.2], atol=TOL)


def test_island_reports_imbalance_when_the_unit_cannot_run_that_low() -> None:
    # firm 1 kW against a 3 kW minimum: running would dump 2 kW at the penalty, so the unit stops and the
    # reference supplies 1 kW
    plan = solved(island(load_kw=per_period(1, 0, 0, 0), fixed_kw=np.c_[per_period(1, 0, 0, 0), np.zeros(4)], p_min=3.0,
                         was_on=True))
    assert not plan.thermal_on[1]
    assert plan.served_kw[0] == pytest.approx(1.0, abs=TOL)
    assert plan.imbalance_kw == pytest.approx(1.0, abs=TOL)
    # no shortage (the unit could serve it): the price is the stopped unit's average cost over its rating,
    # 0.2 + 0.5 / 10 EUR/kWh (no start-up: it was running), not the cap its minimum output made the schedule pay
    assert plan.price_eur_per_kwh[0] == pytest.approx(0.25, abs=TOL)
    assert plan.welfare_eur == pytest.approx(1.0 - BALANCE_PENALTY_EUR_PER_KWH, abs=TOL)


def test_island_prices_the_cap_only_in_a_real_shortage() -> None:
    # firm 12 kW against the unit's 10 kW: 2 kW cannot be served by anything, so the cap prices the period
    plan = solved(island(load_kw=per_period(12, 0, 0, 0), fixed_kw=np.c_[per_period(12, 0, 0, 0), np.zeros(4)]))
    assert plan.thermal_kw[1] == pytest.approx(10.0, abs=TOL)
    assert plan.imbalance_kw == pytest.approx(2.0, abs=TOL)
    assert plan.price_eur_per_kwh[0] == pytest.approx(BALANCE_PENALTY_EUR_PER_KWH, abs=TOL)


def test_island_curtails_an_injection_nobody_takes_for_free() -> None:
    p = problem(feeder(), 4, bus=[1], connected=False, fixed_kw=per_period(-2, 0, 0, 0))  # a fixed 2 kW injection
    plan = solved(p)
    assert plan.imbalance_kw == pytest.approx(-2.0, abs=TOL)
    # its inverter holds it back (free disposal), so the price is 0, not minus the cap
    assert plan.bus_price_eur_per_kwh[1] == pytest.approx(0.0, abs=TOL)


def test_price_taker_is_served_now_even_below_the_price() -> None:
    p = problem(feeder(), 4, bus=[1], load_kw=5.0, fixed_kw=5.0, value_eur_per_kwh=[0.1], import_eur_per_kwh=0.3)
    plan = solved(p)
    assert plan.served_kw[0] == pytest.approx(5.0, abs=TOL)
    assert plan.import_kw == pytest.approx(5.0, abs=TOL)
    assert plan.price_eur_per_kwh[0] == pytest.approx(0.3, abs=TOL)
    # only the forecast (periods 1..3) may be shed, and is, since 0.1 < 0.3
    assert plan.welfare_eur == pytest.approx((0.1 - 0.3) * 5.0, abs=TOL)


def test_unsupplied_reactive_demand_fails_cleanly() -> None:
    """10 kvar at bus 1 with no local reactive source cannot cross a 5 kVA line: no optimum, NaN results."""
    p = problem(feeder(rate_mva=0.005), 4, bus=[1], fixed_kw=1.0, fixed_kvar=10.0)
    plan = solve_agentic(p)
    assert plan.status != OPTIMAL
    assert np.isnan(plan.welfare_eur) and np.isnan(plan.bus_price_eur_per_kwh).all()


def _heat_pump(net: OpfNetwork, prices: list[float], discomfort: float) -> AgentProblem:
    """A 5 kW heat pump (COP 3, R 4 K/kW, C 10 kWh/K) at 20 C in a 20-23 C band, 0 C outside."""
    decay = float(np.exp(-1.0 / 40.0))
    return problem(net, len(prices), optimised=True, bus=1, import_eur_per_kwh=prices, hvac_kw=5.0,
                   hvac_gain_k_per_kw=(1 - decay) * 4.0 * 3.0, hvac_decay=decay, outdoor_c=0.0, indoor_c=20.0,
                   comfort_min_c=20.0, comfort_max_c=23.0, discomfort_eur_per_kh=discomfort)


def test_heat_pump_keeps_the_band_at_least_cost_and_preheats_before_dear_hours() -> None:
    net = feeder()
    flat = solve_agentic(_heat_pump(net, [0.3] * 4, discomfort=5.0))
    # flat prices: hold the floor, replacing the 20 K / 4 K/kW = 5 kW heat loss with 5 / COP 3 kW of electricity
    assert flat.hvac_kw[0] == pytest.approx(5.0 / 3.0, abs=1e-6)
    cheap_first = solve_agentic(_heat_pump(net, [0.1, 0.5, 0.5, 0.5], discomfort=5.0))
    assert cheap_first.hvac_kw[0] > flat.hvac_kw[0] + 0.5  # stores heat in the building while it is cheap
    # comfort is worth less than the energy: the room is let cool below the band
    cold = solve_agentic(_heat_pump(net, [0.3] * 4, discomfort=0.01))
    assert cold.hvac_kw[0] == pytest.approx(0.0, abs=1e-9)


def test_premium_for_local_renewables_moves_flexible_demand_to_the_sun_and_is_priced() -> None:
    """A fully flexible 2 kWh load may wait 2 h; PV (3 kW) shines in period 1 only; import 0.30 all day.

    Without a premium, serving now or later costs the same 0.30 at the margin; with a 0.20 premium for
    local renewable energy the load waits for the sun, and the premium's price is what it is worth.
    """
    net = feeder()
    common = dict(optimised=[True, False], bus=[1, 1], load_kw=[[2.0, 0.0]] + [[0.0, 0.0]] * 3, flexible_frac=[1.0, 0.0],
                  max_delay_steps=[2, 0], value_eur_per_kwh=[1.0, 0.0], import_eur_per_kwh=0.30, export_eur_per_kwh=0.30,
                  renewable_kw=[[0.0, 0.0], [0.0, 3.0], [0.0, 0.0], [0.0, 0.0]])
    green = solve_agentic(problem(net, 4, N=2, premium_eur_per_kwh=[0.2, 0.0], **common))
    assert green.ok and green.served_kw[0] == pytest.approx(0.0, abs=1e-9)
    assert green.backlog_kwh[0] == pytest.approx(2.0)
    # no PV now: one more kWh of local renewable energy now would be worth the full premium
    assert green.green_price_eur_per_kwh == pytest.approx(0.2)
    assert green.green_kw[0] == pytest.approx(0.0, abs=1e-9)
    plain = solve_agentic(problem(net, 4, N=2, premium_eur_per_kwh=[0.0, 0.0], **common))
    assert green.welfare_eur - plain.welfare_eur == pytest.approx(0.2 * 2.0)
