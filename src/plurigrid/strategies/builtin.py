"""Built-in (trusted Python) strategies, vectorised over the participants that use them.

Limit prices respect each participant's outside option: nobody bids above the import tariff less
the network fee on market purchases (the grid sells at that price, fee included) or asks below the
export tariff (the grid buys at that price).

Batteries. `self-consumption`, `zero-intelligence` and `demand-response` absorb their owner's own
surplus and cover its own deficit. `truthful` and `battery-arbitrage` run a battery as a store, in
every step where storing pays: a kWh charged now brings back eff² × (p − wear) − wear, with p the
import price of the dearest steps ahead that a full charge would discharge into (what a discharged
kWh displaces). A store balances a position: the community's, after every other battery has served
its own owner, in a mechanism whose market can match the store's orders (COMMUNITY_MARKETS), else
its owner's own. Where that position is a surplus, energy is worth the export price and the store
charges if storing pays; where it is a deficit, energy is worth the import price and the store
discharges in the dearest steps ahead its charge can cover; in the cheapest steps that would fill
it, it charges from the grid if storing pays. It charges only where there is a demand to discharge
into later: the community's, or else its owner's load. Under `tariff` (no market) and
`second-price` (whose trade reduction leaves out the marginal orders, which a community's store's
are) a store without load of its own therefore stays idle. A store bids for
the community's surplus at the export price and offers into its deficit at the import price less
the fee: neither neighbour does worse than at tariff, and the spread pays for the store's losses.
Under `opf`, truthful participants hand their battery to the clearing instead (engine.opf_clearing).
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
    cheap = obs.import_forecast_eur_per_kwh[0] <= obs.cheap_import_eur_per_kwh
    out.ev_kw[m] = np.minimum(np.maximum(least, most if cheap else 0.0), most)


def _own_surplus_kw(obs: Observation, m: np.ndarray, out: Decision) -> np.ndarray:
    """What each of `m` has to spare (+) or lacks (-) after its own demand as decided so far (load shifted and
    served, EV charging)."""
    return obs.renewable_kw[m] - (obs.load_kw[m] - out.shift_kw[m] + out.serve_kw[m] + out.ev_kw[m])


def _self_consume(obs: Observation, m: np.ndarray, out: Decision) -> None:
    """Battery absorbs own surplus and covers own deficit."""
    charge_max, discharge_max = _battery_room(obs, m)
    out.battery_kw[m] = np.clip(_own_surplus_kw(obs, m, out), -discharge_max, charge_max)


def _store(obs: Observation, m: np.ndarray, out: Decision) -> None:
    """Runs the batteries of `m` as stores (see the module docstring) and prices their community orders."""
    b = obs.batteries
    m = m[b.capacity_kwh[m] > 0]
    if not len(m):
        return
    charge_max, discharge_max = _battery_room(obs, m)
    imp, exp = obs.import_forecast_eur_per_kwh[0], obs.export_forecast_eur_per_kwh[0]
    own_kw = _own_surplus_kw(obs, m, out)
    community = obs.mechanism in COMMUNITY_MARKETS
    if community:  # the community's position, shared among the online stores by the power each has to spare
        stores = obs.stores[~obs.offline[obs.stores]]
        position = obs.community_surplus_kw
        store_charge, store_discharge = _battery_room(obs, stores)
        room = float((store_charge if position > 0 else store_discharge).sum())
        mine = charge_max if position > 0 else discharge_max
        position_kw = np.clip(position, -room, room) * (mine / room if room > 0 else np.zeros(len(m)))
    else:  # the owner's own position
        position_kw = own_kw
    ranked = np.sort(obs.import_forecast_eur_per_kwh)
    steps_left, steps_to_fill = _steps_of_charge(obs, m, np.where(position_kw < 0, -position_kw, b.power_kw[m]))
    dear = imp >= ranked[-steps_left]  # now is among the dearest steps ahead the stored energy can serve
    cheap = imp <= ranked[steps_to_fill - 1]  # ... among the cheapest ones that would fill it at full power
    wear = b.degradation_eur_per_kwh[m]
    pays_from = b.efficiency[m] ** 2 * (ranked[-steps_to_fill] - wear) - wear  # storing pays below this price now
    now = np.where(position_kw > 0, exp, imp)  # what a kWh is worth now: surplus goes at export, a deficit at import
    surplus = np.maximum(np.maximum(position_kw, own_kw), 0.0)  # the community's share, or at least one's own
    serves = community | (obs.load_kw[m] > 0)  # a demand to discharge into: the community's in a market, else its owner's
    kw = np.where((pays_from > now) & serves, np.minimum(surplus, charge_max), 0.0)
    kw = np.where((position_kw < 0) & dear, -np.minimum(-position_kw, discharge_max), kw)
    kw = np.where(cheap & (pays_from > imp) & serves, charge_max, kw)
    out.battery_kw[m] = kw
    if community:  # orders at the neighbours' outside options: a surplus is bought at export, a deficit served at import
        low, high = obs.price_band_eur_per_kwh
        out.bid_eur_per_kwh[m] = np.where(position_kw > 0, low, out.bid_eur_per_kwh[m])
        out.ask_eur_per_kwh[m] = np.where(position_kw < 0, high, out.ask_eur_per_kwh[m])


def _steps_of_charge(obs: Observation, m: np.ndarray, discharge_kw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps the stored energy lasts at `discharge_kw` (at most the rating), and steps of full-power charge that fill
    the battery, each at least 1 and at most the forecast's length (so they index its ranked prices)."""
    b = obs.batteries
    eff = np.where(b.efficiency[m] > 0, b.efficiency[m], 1.0)
    left = np.maximum(obs.soc_kwh[m] - b.min_kwh[m], 0.0) * eff
    to_fill = np.maximum(b.capacity_kwh[m] - obs.soc_kwh[m], 0.0) / eff
    H = len(obs.import_forecast_eur_per_kwh)

    def steps(kwh: np.ndarray, kw: np.ndarray) -> np.ndarray:
        per_step = kw * obs.dt_h
        return np.clip(np.ceil(np.divide(kwh, per_step, out=np.full(len(m), float(H)), where=per_step > 0) - 1e-9),
                       1, H).astype(np.int64)

    return steps(left, np.minimum(discharge_kw, b.power_kw[m])), steps(to_fill, b.power_kw[m])


def _truthful_prices(obs: Observation, m: np.ndarray, out: Decision) -> None:
    low, high = obs.price_band_eur_per_kwh
    out.bid_eur_per_kwh[m] = np.clip(obs.demand.value_eur_per_kwh[m], low, high)
    out.ask_eur_per_kwh[m] = np.clip(obs.thermal.marginal_cost_eur_per_kwh[m], low, high)
    out.trades[m] = True


def passive(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """No trading, no control: devices run uncontrolled and all energy is settled at tariff."""
    _ev_uncontrolled(obs, m, out)


def truthful(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Bids marginal value, offers marginal cost (within the tariff band); EVs charge uncontrolled, a battery runs
    as a store (under opf the clearing runs both)."""
    _ev_uncontrolled(obs, m, out)
    _truthful_prices(obs, m, out)
    _store(obs, m, out)


def self_consumption(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Battery maximises use of own generation; trades its net position truthfully."""
    _ev_uncontrolled(obs, m, out)
    _self_consume(obs, m, out)
    _truthful_prices(obs, m, out)


def zero_intelligence(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Gode-Sunder ZI-C: random limit prices that never violate the budget constraint."""
    _ev_uncontrolled(obs, m, out)
    _self_consume(obs, m, out)
    exp, imp = obs.price_band_eur_per_kwh
    value = np.clip(obs.demand.value_eur_per_kwh[m], exp, imp)
    cost = np.clip(obs.thermal.marginal_cost_eur_per_kwh[m], exp, imp)
    u_bid, u_ask = rng.random(len(m)), rng.random(len(m))
    out.bid_eur_per_kwh[m] = exp + u_bid * (value - exp)
    out.ask_eur_per_kwh[m] = cost + u_ask * (imp - cost)
    out.trades[m] = True


def battery_arbitrage(obs: Observation, m: np.ndarray, out: Decision, rng: np.random.Generator) -> None:
    """Runs the battery as a store (charges where storing pays, discharges where energy is dear); EVs charge in
    cheap steps or when they must."""
    _ev_price_aware(obs, m, out)
    _truthful_prices(obs, m, out)
    _store(obs, m, out)


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


STORE_STRATEGIES = ("truthful", "battery-arbitrage")
COMMUNITY_MARKETS = frozenset({"pay-as-clear", "pay-as-bid", "k-price", "vcg", "opf"})  # match a store's orders

BUILTIN: dict[str, Strategy] = {
    "passive": passive,
    "truthful": truthful,
    "zero-intelligence": zero_intelligence,
    "self-consumption": self_consumption,
    "battery-arbitrage": battery_arbitrage,
    "demand-response": demand_response,
}
