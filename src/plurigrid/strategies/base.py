"""What a strategy sees (Observation) and what it returns (Decision), both columnar over participants.

A strategy is a function `decide(obs, members, out, rng)` that fills `out` for the participant
indices in `members`. Limit prices are in EUR per kWh; powers in kW, AC side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from plurigrid.assets.devices import battery_limits_kw
from plurigrid.assets.fleet import Batteries, Demand, EVs, Thermal

CHEAP_QUANTILE = 0.3  # the import forecast's quantile at or below which price-aware strategies call a step cheap


@dataclass
class Observation:
    """Everything participants may know at the start of a step (forecasts are perfect in [A]).

    Device parameters and preferences are the world's asset tables; the rest is this step's.
    """

    step: int
    dt_h: float
    load_kw: np.ndarray
    renewable_kw: np.ndarray  # available this step (generators not tripped)
    backlog_kwh: np.ndarray  # deferred demand waiting to be served
    backlog_age_steps: np.ndarray
    soc_kwh: np.ndarray
    ev_remaining_kwh: np.ndarray
    ev_plugged: np.ndarray
    ev_steps_left: np.ndarray
    indoor_c: np.ndarray  # indoor temperature of buildings with HVAC
    outdoor_c: np.ndarray  # outdoor temperature at each building this step
    offline: np.ndarray  # bool: cannot reach the market this step (acts on local control)
    demand: Demand
    batteries: Batteries
    evs: EVs
    thermal: Thermal
    import_forecast_eur_per_kwh: np.ndarray  # (H,) starting with this step
    export_forecast_eur_per_kwh: np.ndarray  # (H,)
    last_price_eur_per_kwh: float
    mechanism: str = "tariff"  # the market's clearing rule: public, as the rules of any market are
    fee_eur_per_kwh: float = 0.0  # the network fee a buyer pays on energy bought in the market
    stores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # participants whose battery
    # serves the community as a store (strategies.builtin.STORE_STRATEGIES), so each takes its share of the community's surplus

    @property
    def price_band_eur_per_kwh(self) -> tuple[float, float]:
        """The prices worth trading at in the market now: from the export tariff (what the grid pays a seller) to
        the import tariff less the fee (what a buyer pays the grid, which it would otherwise pay in all)."""
        exp = float(self.export_forecast_eur_per_kwh[0])
        return exp, max(float(self.import_forecast_eur_per_kwh[0]) - self.fee_eur_per_kwh, exp)

    @cached_property
    def cheap_import_eur_per_kwh(self) -> float:
        """The import forecast's CHEAP_QUANTILE: at or below it a step is cheap.

        Worked out once per step for every strategy that asks (numpy's quantile costs tens of µs a call).
        """
        return float(np.quantile(self.import_forecast_eur_per_kwh, CHEAP_QUANTILE))

    @cached_property
    def community_surplus_kw(self) -> float:
        """The community's surplus (+) or deficit (-) this step once every battery but the stores' has served its
        own participant (nominal load and renewables: what the others decide is not known yet).

        Worked out once per step for every store strategy that asks."""
        b, others = self.batteries, np.ones(len(self.load_kw), dtype=bool)
        others[self.stores] = False
        charge, discharge = battery_limits_kw(self.soc_kwh, b.capacity_kwh, b.power_kw, b.efficiency, b.min_kwh, self.dt_h)
        own = self.renewable_kw - self.load_kw
        return float(np.sum(own - np.where(others, np.clip(own, -discharge, charge), 0.0)))


@dataclass
class Decision:
    """Device setpoints and limit prices chosen for one step."""

    battery_kw: np.ndarray  # + charge, - discharge
    ev_kw: np.ndarray
    hvac_kw: np.ndarray
    shift_kw: np.ndarray  # flexible demand deferred out of this step
    serve_kw: np.ndarray  # deferred demand served in this step
    bid_eur_per_kwh: np.ndarray
    ask_eur_per_kwh: np.ndarray
    trades: np.ndarray  # bool: submits orders to the market

    @classmethod
    def empty(cls, n: int) -> Decision:
        z = lambda: np.zeros(n)
        return cls(z(), z(), z(), z(), z(), z(), z(), np.zeros(n, dtype=bool))


Strategy = Callable[[Observation, np.ndarray, Decision, np.random.Generator], None]
