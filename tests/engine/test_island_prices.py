"""An island's scarcity price comes only from real scarcity, not from how its reference unit is modelled.

offgrid-battery-sharing under opf used to price 120 of 192 steps at the market cap (10 EUR/kWh): at night the
village's small residual demand lay below the diesel's minimum output, so the schedule left it to the reference's
balancing slack, whose penalty then set the price, and one household paid 19.76 EUR against a 1.22 EUR tariff
baseline. A stopped unit now prices in at its average cost, and a battery's unneeded injection is curtailed for free.
"""

from __future__ import annotations

import numpy as np
import pytest

from plurigrid.opf.agentic import BALANCE_PENALTY_EUR_PER_KWH as CAP

from ..recorded import Recorded, recorded


@pytest.fixture(scope="module")
def island() -> Recorded:
    return recorded("offgrid-battery-sharing", mechanism="opf", hours=12)  # the night and morning


def dearest_real_eur_per_kwh(r: Recorded) -> float:
    """The dearest price a real resource can ask: a unit's average cost over its rating with its start-up in one step,
    or what a participant declared its served demand worth (the value at which the clearing sheds it)."""
    w, th = r.world, r.world.thermal
    units = th.p_max_kw > 0
    unit = th.marginal_cost_eur_per_kwh + th.no_load_eur_per_h / np.where(units, th.p_max_kw, 1)
    unit += th.startup_eur / (np.where(units, th.p_max_kw, 1) * w.dt_h)
    return float(max(unit[units].max(), w.demand.value_eur_per_kwh.max()))


def test_the_cap_prices_only_a_real_shortage(island: Recorded) -> None:
    s, w = island.series, island.world
    assert s["opf_ok"].all()
    prices = np.nanmax(island.participant["unit_price_eur_per_kwh"], axis=1, initial=-np.inf)
    capacity_kw = w.thermal.p_max_kw.sum()
    shortage = (s["opf_imbalance_kw"] > 1e-6) & (s["thermal_kw"] >= capacity_kw - 1e-6)
    at_cap = prices >= CAP * (1 - 1e-9)
    assert not np.any(at_cap & ~shortage), f"cap prices without a shortage in steps {np.flatnonzero(at_cap & ~shortage)}"
    # and below the cap, no price beyond what a real resource costs
    assert np.all(prices[~at_cap] <= dearest_real_eur_per_kwh(island) + 1e-9)


def test_household_bills_are_sane(island: Recorded) -> None:
    w, p = island.world, island.participant
    bought_kwh = np.maximum(p["traded_wh"], 0) / 1000
    paid = np.nansum(np.where(bought_kwh > 0, p["unit_price_eur_per_kwh"], 0.0) * bought_kwh, axis=0)
    homes = np.flatnonzero(w.kind == "household")
    mean_price = paid[homes] / np.maximum(bought_kwh[:, homes].sum(axis=0), 1e-9)
    assert np.all(mean_price <= dearest_real_eur_per_kwh(island))
    # and no bill exceeds its tariff baseline by more than buying at that price instead of the tariff and selling for
    # nothing instead of the export tariff could make it (it was 16 times the baseline)
    settled = island.run.settlements.iloc[homes]
    sold_kwh = np.maximum(-p["traded_wh"][:, homes], 0).sum(axis=0) / 1000
    worst = (bought_kwh[:, homes].sum(axis=0) * (dearest_real_eur_per_kwh(island) - w.import_eur_per_kwh.min())
             + sold_kwh * w.export_eur_per_kwh.max())
    assert np.all(settled["bill"].to_numpy() - settled["baseline"].to_numpy() <= worst + 1e-6)
