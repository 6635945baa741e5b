"""Mechanism properties: efficiency, budget balance, individual rationality and price spread, on known books."""

import dataclasses

import numpy as np
import pytest

from plurigrid.market.mechanisms import MECHANISMS, clear_pay_as_bid, clear_second_price, clear_tariff, clear_vcg
from plurigrid.market.properties import (
    STEP_COLUMNS,
    declared_gains_eur,
    max_declared_gains_eur,
    mechanism_properties,
    price_spread_eur_per_kwh,
    step_properties,
)

from .test_mechanisms import KNOWN, book


def test_max_declared_gains_of_the_known_book():
    # 0.30 + 0.25 EUR of value bought, 1500 Wh at 0.08 and 500 Wh at 0.20 EUR/kWh of cost sold
    assert max_declared_gains_eur(book(*KNOWN), 5) == pytest.approx(0.33)


@pytest.mark.parametrize("mech, gains", [("vcg", 0.33), ("pay-as-clear", 0.33), ("k-price", 0.33), ("pay-as-bid", 0.33),
                                         ("second-price", 0.30 - 0.08), ("tariff", 0.0)])
def test_realised_declared_gains(mech, gains):
    c = MECHANISMS[mech](book(*KNOWN), 5)
    assert declared_gains_eur(c.book, c.bought_wh, c.sold_wh) == pytest.approx(gains)


def test_price_spread():
    ob = book(*KNOWN)
    assert price_spread_eur_per_kwh(MECHANISMS["pay-as-clear"](ob, 5)) == 0.0
    assert price_spread_eur_per_kwh(clear_tariff(ob, 5)) == 0.0
    assert price_spread_eur_per_kwh(clear_pay_as_bid(ob, 5)) == pytest.approx(0.30 - 0.08)  # highest bid, lowest ask
    assert price_spread_eur_per_kwh(clear_second_price(ob, 5)) == pytest.approx(0.25 - 0.20)
    # vcg: buyers pay 0.15 EUR/kWh, seller 3 gets 0.35/1.5, seller 4 gets 0.125/0.5 = 0.25 EUR/kWh
    assert price_spread_eur_per_kwh(clear_vcg(ob, 5)) == pytest.approx(0.25 - 0.15)
    # a nodal mechanism hands in per-participant prices; no prices given means one uniform price
    uniform = MECHANISMS["pay-as-clear"](ob, 5)
    nodal = dataclasses.replace(uniform, unit_price_eur_per_kwh=np.array([0.2, 0.3, 9.0, 0.1, 0.2]))
    assert price_spread_eur_per_kwh(nodal) == pytest.approx(0.2)  # participant 2 did not trade
    assert price_spread_eur_per_kwh(dataclasses.replace(nodal, unit_price_eur_per_kwh=None)) == 0.0


def test_step_properties_of_vcg():
    row = step_properties(clear_vcg(book(*KNOWN), 5))
    assert set(row) == set(STEP_COLUMNS)
    assert row["declared_gains_eur"] == row["max_declared_gains_eur"] == pytest.approx(0.33)
    assert row["market_surplus_micro"] == -175_000


def test_step_without_a_book_has_unknown_gains():
    row = step_properties(dataclasses.replace(clear_vcg(book(*KNOWN), 5), book=None))
    assert np.isnan(row["declared_gains_eur"]) and np.isnan(row["max_declared_gains_eur"])
    assert row["market_surplus_micro"] == -175_000


def test_mechanism_properties_of_a_small_run():
    series = {
        "declared_gains_eur": np.array([0.22, 0.0, 0.5, np.nan]),
        "max_declared_gains_eur": np.array([0.33, 0.0, 0.5, np.nan]),
        "market_surplus_micro": np.array([50_000, 0, -20_000, 7], dtype=np.int64),
        "price_spread_eur_per_kwh": np.array([0.05, 0.0, 0.1, 0.0]),
        "traded_kwh": np.array([2.0, 0.0, 1.0, 0.0]),
    }
    bill = np.array([[100, -50, 0], [200, 0, 10]], dtype=np.int64)
    baseline = np.array([[90, -60, 0], [150, 0, 20]], dtype=np.int64)
    m = mechanism_properties(series, bill.sum(axis=0), baseline.sum(axis=0))  # each participant's bill over the run
    assert m["efficiency"] == {"ratio": round(0.72 / 0.83, 9), "declared_gains": 0.72, "max_declared_gains": 0.83}
    assert m["budget"] == {"operator_surplus_micro": 30_007, "operator_surplus": 0.030007, "step_min": -0.02,
                           "step_max": 0.05, "collected_by": "operator"}
    # participant 0 pays 60 micro more than under the tariff, participant 1 gets 10 micro less, participant 2 saves
    assert m["individual_rationality"] == {"participants_above_tariff": 2, "excess_total": 70e-6, "excess_max": 60e-6}
    assert m["price_spread_eur_per_kwh"] == {"max": 0.1, "mean": 0.075}


def test_nothing_to_gain_is_efficient():
    series = {k: np.zeros(2, dtype=dt) for k, dt in STEP_COLUMNS.items()} | {"traded_kwh": np.zeros(2)}
    m = mechanism_properties(series, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    assert m["efficiency"]["ratio"] == 1.0
    assert m["price_spread_eur_per_kwh"] == {"max": 0.0, "mean": 0.0}
