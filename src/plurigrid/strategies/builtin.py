"""Built-in (trusted Python) strategies, vectorised over the participants that use them.

Limit prices respect each participant's outside option: nobody bids above the import tariff
(the grid sells at that price) or asks below the export tariff (the grid buys at that price).
"""

from __future__ import annotations

import numpy as np

from plurigrid.assets.devices import battery_limits_kw, ev_max_kw, ev_min_kw
from plurigrid.strategies.base import Decision, Observation, Strategy


def _battery_room(obs: Observation, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = obs.batteries
    return battery_limits_kw(obs.soc_kwh[m], b.capacity_kwh[m], b.power_kw[m], b.efficiency[m], b.min_kwh[m], obs.dt_h)


def _ev_uncontrolled(obs: Observation, m: np.ndarray, out: Decision) -> None:
    out.ev_kw[m] = ev_max_kw(obs.ev_remaining_kwh[m], obs.evs.power_kw[m], obs.evs.efficiency[m], obs.ev_plugged[m], obs.dt_h)


def _ev_price_aware(obs: Observation, m: np.ndarray, out: Decision) -> None:
    """Charges in cheap steps, and whenever waiting longer would miss the departure deadline."""
    ev = obs.evs
    most = ev_max_kw(obs.ev_remaining_kwh[m], ev.power_kw[m], ev.efficiency[m], obs.ev_plugged[m], obs.dt_h)
    least = np.where(obs.ev_plugged[m], ev_min_kw(obs.ev_remaining_kwh[m], obs.ev_steps_left[m], ev.power_kw[m],
                                                  ev.efficiency[m], obs.dt_h), 0.0)
    cheap = obs.import_forecast_eur_per_kwh[0] <= obs.import_price_band_eur_per_kwh[0]
    out.ev_kw[m] = np.minimum(np.maximum(least, most if cheap else 0.0), most)


def _self_consume(obs: Observation, m: np.ndarray, out: Decision) -> None:
    """Battery absorbs own surplus and covers own deficit."""
    charge_max, discharge_max = _battery_room(obs, m)
    demand = obs.load_kw[m] - out.shift_kw[m] + out.serve_kw[m] + out.ev_kw[m]
    surplus = obs.renewable_kw[m] - demand
    out.battery_kw[m] = np.where(surplus > 0, np.minimum(surplus, charge_max), -np.minimum(-surplus, discharge_max))


def _truthful_prices(obs: Observation, m: np.ndarray, out: Decision) -> None:
    imp, exp = obs.import_forecast_eur_per_kwh[0], obs.export_forecast_eur_per_kwh[0]
    out.bid_eur_per_kwh[m] = np.clip(obs.demand.value_eur_per_kwh[m], exp, imp)
    out.ask_eur_per_kwh[m] = np.clip(obs.thermal.marginal_cost_eur_per_kwh[m], exp, imp)
    out.trades[m] = True


def passive(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """No trading, no control: devices run uncontrolled and all energy is settled at tariff."""
    _ev_uncontrolled(obs, m, out)


def truthful(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Bids marginal value, offers marginal cost (within the tariff band); devices run uncontrolled."""
    _ev_uncontrolled(obs, m, out)
    _truthful_prices(obs, m, out)


def self_consumption(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Battery maximises use of own generation; trades its net position truthfully."""
    _ev_uncontrolled(obs, m, out)
    _self_consume(obs, m, out)
    _truthful_prices(obs, m, out)


def zero_intelligence(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Gode-Sunder ZI-C: random limit prices that never violate the budget constraint."""
    _ev_uncontrolled(obs, m, out)
    _self_consume(obs, m, out)
    imp, exp = obs.import_forecast_eur_per_kwh[0], obs.export_forecast_eur_per_kwh[0]
    value = np.clip(obs.demand.value_eur_per_kwh[m], exp, imp)
    cost = np.clip(obs.thermal.marginal_cost_eur_per_kwh[m], exp, imp)
    u_bid, u_ask = rng.random(len(m)), rng.random(len(m))
    out.bid_eur_per_kwh[m] = exp + u_bid * (value - exp)
    out.ask_eur_per_kwh[m] = cost + u_ask * (imp - cost)
    out.trades[m] = True


def battery_arbitrage(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Charges when the forecast says now is cheap, discharges (to own demand) when dear; else self-consumes."""
    _ev_price_aware(obs, m, out)
    _self_consume(obs, m, out)
    prices = obs.import_forecast_eur_per_kwh
    now, (low, high) = prices[0], obs.import_price_band_eur_per_kwh
    charge_max, discharge_max = _battery_room(obs, m)
    if high > low and now <= low:
        out.battery_kw[m] = charge_max
    elif high > low and now >= high:
        deficit = np.maximum(obs.load_kw[m] + out.ev_kw[m] - obs.renewable_kw[m], 0.0)
        out.battery_kw[m] = -np.minimum(deficit, discharge_max)
    _truthful_prices(obs, m, out)


def demand_response(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Defers the flexible share of demand out of dear steps; serves it when cheap or when it must."""
    _ev_price_aware(obs, m, out)
    prices = obs.import_forecast_eur_per_kwh
    dear = prices[0] > np.mean(prices)
    out.shift_kw[m] = obs.load_kw[m] * obs.demand.flexible_frac[m] if dear else 0.0
    must = obs.backlog_age_steps[m] >= obs.demand.max_delay_steps[m] - 1
    serve = np.where(must | (not dear), obs.backlog_kwh[m] / obs.dt_h, 0.0)
    out.serve_kw[m] = serve
    _self_consume(obs, m, out)
    _truthful_prices(obs, m, out)


BUILTIN: dict[str, Strategy] = {
    "passive": passive,
    "truthful": truthful,
    "zero-intelligence": zero_intelligence,
    "self-consumption": self_consumption,
    "battery-arbitrage": battery_arbitrage,
    "demand-response": demand_response,
}
