"""Clearing mechanisms: known outcomes, exact conservation of energy and money."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plurigrid.market.mechanisms import (
    MECHANISMS,
    OrderBook,
    clear_k_price,
    clear_pay_as_bid,
    clear_pay_as_clear,
    clear_second_price,
    clear_tariff,
    clear_vcg,
    clearing_rule,
    match,
)
from plurigrid.market.settlement import settle, tariff_bill_micro
from plurigrid.microworld import spec


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


# bids 0.30 x 1000, 0.25 x 1000, 0.10 x 1000; asks 0.08 x 1500, 0.20 x 1000: the book of the known crossing above
KNOWN = [(0, 1000, 0.30), (1, 1000, 0.25), (2, 1000, 0.10)], [(3, 1500, 0.08), (4, 1000, 0.20)]


def test_every_spec_mechanism_has_a_clearing_rule():
    """Every mechanism a spec may name clears an order book, except `opf`, which clears through the network."""
    assert set(MECHANISMS) | {"opf"} == set(spec.MECHANISMS)


def test_vcg_known_payments():
    # Efficient match: buyers 0, 1 take 1000 Wh each; seller 3 gives 1500 Wh, seller 4 gives 500 Wh.
    # Declared gains W = 0.30 + 0.25 - 0.12 - 0.10 = 0.33 EUR. Clarke pivot, by hand:
    # buyer 0: others without it realise 0.25 + 0.10*500/1000 - 0.08*1.5 = 0.18; with it, others get 0.33 - 0.30 = 0.03
    #   -> pays 0.15 EUR (= ask 0.20 x 500 Wh unproduced + bid 0.10 x 500 Wh served); buyer 1 likewise 0.15
    # seller 3: others without it: 0.30 - 0.20 = 0.10; with it: 0.33 + 0.12 -> gets 0.35
    # seller 4 (marginal): others without it: 0.30 + 0.25*0.5 - 0.12 = 0.305; with it: 0.33 + 0.10 -> gets 0.125
    c = clear_vcg(book(*KNOWN), 5)
    assert c.bought_wh.tolist() == [1000, 1000, 0, 0, 0]
    assert c.sold_wh.tolist() == [0, 0, 0, 1500, 500]
    assert c.buyer_pays_micro.tolist() == [150_000, 150_000, 0, 0, 0]
    assert c.seller_gets_micro.tolist() == [0, 0, 0, 350_000, 125_000]
    assert c.market_surplus_micro == -175_000  # the operator's deficit
    assert c.price_eur_per_kwh == pytest.approx(0.15)
    assert c.trade_wh.sum() == 2000


def test_second_price_reduces_the_marginal_trade():
    # marginal orders: bid 0.25 (buyer 1) and ask 0.20 (seller 4) are left out and set the prices
    c = clear_second_price(book(*KNOWN), 5)
    assert c.bought_wh.tolist() == [1000, 0, 0, 0, 0]
    assert c.sold_wh.tolist() == [0, 0, 0, 1000, 0]  # seller 3 (1500 Wh) is the long side: rationed to 1000
    assert c.buyer_pays_micro.tolist() == [250_000, 0, 0, 0, 0]
    assert c.seller_gets_micro.tolist() == [0, 0, 0, 200_000, 0]
    assert c.market_surplus_micro == 50_000
    assert c.price_eur_per_kwh == 0.25


def test_second_price_rations_the_long_side_pro_rata():
    # 1001 Wh demanded ahead of the marginal bid; 1500 + 500 Wh offered ahead of the marginal ask (seller 4)
    ob = book([(0, 1001, 0.30), (1, 2000, 0.25)], [(2, 1500, 0.05), (3, 500, 0.08), (4, 1000, 0.20)])
    c = clear_second_price(ob, 5)
    # 1001 x 3/4 = 750.75 and 1001 x 1/4 = 250.25: the spare Wh goes to the larger remainder
    assert c.sold_wh.tolist() == [0, 0, 751, 250, 0]
    assert c.bought_wh.tolist() == [1001, 0, 0, 0, 0]
    assert c.seller_gets_micro.tolist() == [0, 0, 150_200, 50_000, 0]
    assert c.buyer_pays_micro[0] == 250_250


def test_second_price_needs_two_trades():
    ob = book([(0, 1000, 0.30)], [(1, 1000, 0.10)])
    c = clear_second_price(ob, 2)
    assert c.bought_wh.sum() == 0 and np.isnan(c.price_eur_per_kwh)


@pytest.mark.parametrize("k, price", [(0.0, 0.20), (0.5, 0.225), (1.0, 0.25)])
def test_k_price_known_prices(k, price):
    c = clear_k_price(book(*KNOWN), 5, k)
    assert c.price_eur_per_kwh == pytest.approx(price)
    assert c.bought_wh.tolist() == [1000, 1000, 0, 0, 0]
    assert c.buyer_pays_micro.tolist() == [round(price * 1e6)] * 2 + [0, 0, 0]
    assert c.seller_gets_micro.tolist() == [0, 0, 0, round(price * 1.5e6), round(price * 0.5e6)]
    assert clearing_rule("k-price", k)(book(*KNOWN), 5).price_eur_per_kwh == c.price_eur_per_kwh


def test_k_price_at_one_half_is_pay_as_clear():
    a, b = clear_k_price(book(*KNOWN), 5, 0.5), clear_pay_as_clear(book(*KNOWN), 5)
    assert a.price_eur_per_kwh == b.price_eur_per_kwh
    assert a.buyer_pays_micro.tolist() == b.buyer_pays_micro.tolist()
    assert a.seller_gets_micro.tolist() == b.seller_gets_micro.tolist()


# Small books on a coarse price grid (EUR cents), so that ties and equal marginal prices are common.
small = st.lists(st.tuples(st.integers(1, 3000), st.integers(5, 40)), min_size=0, max_size=5)


def small_book(buys, sells, change: tuple[int, float] | None = None) -> tuple[OrderBook, np.ndarray]:
    """Buyers 0.., then sellers; `change` = (participant, limit price) replaces one participant's price.

    Returns the book and every participant's true limit price (EUR/kWh).
    """
    orders = [(q, c / 100) for q, c in buys + sells]
    true = np.array([p for _, p in orders])
    price = true.copy()
    if change is not None:
        price[change[0]] = change[1]
    nb = len(buys)
    b = [(i, q, price[i]) for i, (q, _) in enumerate(orders[:nb])]
    s = [(nb + j, q, price[nb + j]) for j, (q, _) in enumerate(orders[nb:])]
    return book(b, s), true


def utility_micro(c, i: int, value_eur_per_kwh: float) -> float:
    """A participant's gain at its true limit price: value of energy bought minus payment, receipts minus cost."""
    return (value_eur_per_kwh * 1000 * (c.bought_wh[i] - c.sold_wh[i]) - c.buyer_pays_micro[i] + c.seller_gets_micro[i])


@settings(max_examples=300, deadline=None)
@given(small, small, st.sampled_from(["vcg", "second-price"]), st.data())
def test_truthful_mechanisms_reward_no_misreport(buys, sells, mech, data):
    n = len(buys) + len(sells)
    if not n:
        return
    i = data.draw(st.integers(0, n - 1), label="participant")
    lie = data.draw(st.integers(0, 50), label="reported cents") / 100
    ob, true = small_book(buys, sells)
    ob_lie, _ = small_book(buys, sells, (i, lie))
    honest = utility_micro(MECHANISMS[mech](ob, n), i, true[i])
    lying = utility_micro(MECHANISMS[mech](ob_lie, n), i, true[i])
    assert honest >= lying - 1  # each payment is rounded to the micro once
    assert honest >= -0.5  # individually rational at the true limit price


def welfare_micro(ob: OrderBook) -> float:
    bpos, apos, wh = match(ob)
    return float(np.sum(wh * (ob.bid_eur_per_kwh[bpos] - ob.ask_eur_per_kwh[apos])) * 1000)


def without(ob: OrderBook, participant: int) -> OrderBook:
    kb, ks = ob.buyer != participant, ob.seller != participant
    return OrderBook(ob.buyer[kb], ob.buy_wh[kb], ob.bid_eur_per_kwh[kb],
                     ob.seller[ks], ob.sell_wh[ks], ob.ask_eur_per_kwh[ks])


@settings(max_examples=300, deadline=None)
@given(small, small)
def test_vcg_payments_are_the_clarke_pivot(buys, sells):
    # oracle: others' best welfare without the participant minus others' welfare with it, each by a fresh match
    ob, true = small_book(buys, sells)
    n = len(true)
    c = clear_vcg(ob, n)
    w = welfare_micro(ob)
    for i in range(n):
        own = true[i] * 1000 * (c.bought_wh[i] - c.sold_wh[i])
        externality = welfare_micro(without(ob, i)) - (w - own)
        assert c.buyer_pays_micro[i] - c.seller_gets_micro[i] == pytest.approx(externality, abs=0.5 + 1e-6)


BUDGET_SIGN = {"tariff": 0, "pay-as-clear": 0, "k-price": 0, "pay-as-bid": 1, "second-price": 1, "vcg": -1}


@settings(max_examples=300, deadline=None)
@given(small, small, st.sampled_from(sorted(MECHANISMS)))
def test_every_mechanism_conserves_energy_and_money(buys, sells, mech):
    ob, true = small_book(buys, sells)
    n = len(true)
    c = MECHANISMS[mech](ob, n)
    assert c.buyer_pays_micro.dtype == c.seller_gets_micro.dtype == np.int64
    # energy: what buyers get is what sellers give, and the bilateral trades add up to both
    assert c.bought_wh.sum() == c.sold_wh.sum() == c.trade_wh.sum()
    assert np.array_equal(np.bincount(c.trade_buyer, weights=c.trade_wh, minlength=n), c.bought_wh)
    assert np.array_equal(np.bincount(c.trade_seller, weights=c.trade_wh, minlength=n), c.sold_wh)
    assert np.all(c.bought_wh[ob.buyer] <= ob.buy_wh) and np.all(c.sold_wh[ob.seller] <= ob.sell_wh)
    # money: every payment is a transfer with the operator, whose market surplus is the difference, exactly
    s = settle(c.bought_wh - c.sold_wh, c, 0.45, 0.01, 0.0)
    assert s.operator_micro == c.market_surplus_micro == int(c.buyer_pays_micro.sum() - c.seller_gets_micro.sum())
    # the budget's sign, up to the half micro each payment is rounded by
    rounding = 0.5 * np.count_nonzero(c.bought_wh + c.sold_wh)
    sign = BUDGET_SIGN[mech]
    if sign:
        assert sign * c.market_surplus_micro >= -rounding
    else:
        assert abs(c.market_surplus_micro) <= rounding
