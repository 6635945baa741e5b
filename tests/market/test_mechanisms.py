"""Clearing mechanisms: known outcomes, exact conservation of energy and money."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurigrid.market.mechanisms import MECHANISMS, OrderBook, clear_pay_as_bid, clear_pay_as_clear, clear_tariff, match
from plurigrid.market.settlement import settle, tariff_bill_micro


def book(buys, sells):
    """buys/sells: lists of (participant, wh, price)."""
    b = np.array(buys, dtype=float).reshape(-1, 3)
    s = np.array(sells, dtype=float).reshape(-1, 3)
    return OrderBook(b[:, 0].astype(int), b[:, 1].astype(np.int64), b[:, 2],
                     s[:, 0].astype(int), s[:, 1].astype(np.int64), s[:, 2])


def test_uniform_price_known_crossing():
    # bids 0.30 x 1000, 0.25 x 1000, 0.10 x 1000; asks 0.08 x 1500, 0.20 x 1000
    ob = book([(0, 1000, 0.30), (1, 1000, 0.25), (2, 1000, 0.10)], [(3, 1500, 0.08), (4, 1000, 0.20)])
    c = clear_pay_as_clear(ob, 5)
    assert c.bought_wh.tolist() == [1000, 1000, 0, 0, 0]
    assert c.sold_wh.tolist() == [0, 0, 0, 1500, 500]
    # last accepted bid 0.25 and ask 0.20 -> price 0.225 EUR/kWh = 225 micro per Wh
    assert c.price_eur_per_kwh == pytest.approx(0.225)
    assert c.buyer_pays_micro.tolist() == [225_000, 225_000, 0, 0, 0]
    assert c.seller_gets_micro.tolist() == [0, 0, 0, 337_500, 112_500]


def test_no_crossing_means_no_trade():
    ob = book([(0, 1000, 0.10)], [(1, 1000, 0.20)])
    for mech in MECHANISMS.values():
        c = mech(ob, 2)
        assert c.bought_wh.sum() == 0 and c.sold_wh.sum() == 0
        assert np.isnan(c.price_eur_per_kwh)


def test_pay_as_bid_spread_goes_to_operator():
    ob = book([(0, 1000, 0.30)], [(1, 1000, 0.10)])
    c = clear_pay_as_bid(ob, 2)
    assert c.buyer_pays_micro[0] == 300_000 and c.seller_gets_micro[1] == 100_000
    s = settle(np.array([1000, -1000]), c, 0.35, 0.05, 0.0)
    assert s.bill_micro.tolist() == [300_000, -100_000]
    assert s.operator_micro == 200_000


def test_tariff_bill_equals_baseline():
    metered = np.array([1500, -700, 0, 3])
    c = clear_tariff(book([], []), 4)
    s = settle(metered, c, 0.30, 0.08, 0.01)
    assert s.bill_micro.tolist() == s.baseline_micro.tolist() == [450_000, -56_000, 0, 900]


def test_ties_broken_by_participant_index():
    ob = book([(5, 500, 0.3), (2, 500, 0.3)], [(7, 500, 0.1)])
    bpos, apos, wh = match(ob)
    assert ob.buyer[bpos].tolist() == [2] and wh.tolist() == [500]


orders = st.lists(st.tuples(st.integers(1, 50_000), st.floats(0.05, 0.5)), min_size=0, max_size=30)


@settings(max_examples=200, deadline=None)
@given(orders, orders, st.sampled_from(["pay-as-clear", "pay-as-bid"]))
def test_matching_conserves_energy_and_respects_limits(buys, sells, mech):
    nb = len(buys)
    ob = book([(i, q, p) for i, (q, p) in enumerate(buys)], [(nb + j, q, p) for j, (q, p) in enumerate(sells)])
    n = nb + len(sells)
    c = MECHANISMS[mech](ob, n)
    assert c.bought_wh.sum() == c.sold_wh.sum() == c.trade_wh.sum()
    assert np.all(c.bought_wh[:nb] <= [q for q, _ in buys]) and np.all(c.sold_wh[nb:] <= [q for q, _ in sells])
    bid = np.array([p for _, p in buys] + [0.0] * len(sells))
    ask = np.array([0.0] * nb + [p for _, p in sells])
    buyers, sellers = c.bought_wh > 0, c.sold_wh > 0
    # individual rationality: nobody pays more than its bid or gets less than its ask (each payment is rounded once)
    assert np.all(c.buyer_pays_micro[buyers] <= np.rint(c.bought_wh[buyers] * bid[buyers] * 1000))
    assert np.all(c.seller_gets_micro[sellers] >= np.rint(c.sold_wh[sellers] * ask[sellers] * 1000))
    # the market alone never creates money: buyers' payments cover sellers' receipts up to rounding
    assert c.buyer_pays_micro.sum() - c.seller_gets_micro.sum() >= -n
    # efficiency: no unmatched bid still crosses an unmatched ask
    rest_b = np.array([q for q, _ in buys]) - c.bought_wh[:nb] if nb else np.zeros(0)
    rest_s = np.array([q for q, _ in sells]) - c.sold_wh[nb:] if sells else np.zeros(0)
    if (rest_b > 0).any() and (rest_s > 0).any():
        assert bid[:nb][rest_b > 0].max() < ask[nb:][rest_s > 0].min()


def test_tariff_bill_sign_convention():
    assert tariff_bill_micro(np.array([1000, -1000]), 0.3, 0.1).tolist() == [300_000, -100_000]
