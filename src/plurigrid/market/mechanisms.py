"""Clearing mechanisms: pure, deterministic functions from an order book to a Clearing.

Quantities are integer Wh and every payment is an integer number of micro-currency units, so
settlement conserves energy and money exactly. Ties are broken by participant index.

Each order is one agent with one limit price for all its Wh (the engine's books hold at most one
order per participant per side). What buyers pay minus what sellers get is the operator's market
surplus (`Clearing.market_surplus_micro`): zero for uniform prices up to rounding, positive for
pay-as-bid and second-price, negative (a deficit the operator covers) for VCG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

MICRO_PER_WH_PER_EUR_PER_KWH = 1000.0  # 1 EUR/kWh = 1e6 micro-EUR per 1000 Wh


@dataclass(frozen=True)
class OrderBook:
    """Buy and sell orders of one interval: participant index, quantity (Wh > 0), limit price (EUR/kWh)."""

    buyer: np.ndarray
    buy_wh: np.ndarray
    bid_eur_per_kwh: np.ndarray
    seller: np.ndarray
    sell_wh: np.ndarray
    ask_eur_per_kwh: np.ndarray

    @classmethod
    def from_positions(cls, net_wh: np.ndarray, bid: np.ndarray, ask: np.ndarray, trades: np.ndarray) -> OrderBook:
        """Participants that trade buy their positive net energy and sell their negative net energy."""
        b = np.flatnonzero(trades & (net_wh > 0))
        s = np.flatnonzero(trades & (net_wh < 0))
        return cls(b, net_wh[b], bid[b], s, -net_wh[s], ask[s])


@dataclass(frozen=True)
class Clearing:
    """Matched energy and market payments per participant, plus the bilateral trades."""

    bought_wh: np.ndarray
    sold_wh: np.ndarray
    buyer_pays_micro: np.ndarray
    seller_gets_micro: np.ndarray
    price_eur_per_kwh: float  # uniform price, or buyers' mean price per kWh where prices differ; NaN if no trade
    trade_buyer: np.ndarray
    trade_seller: np.ndarray
    trade_wh: np.ndarray
    trade_price_eur_per_kwh: np.ndarray
    # per participant: what it pays (buyer) or gets (seller) per kWh of matched energy (NaN if it did not trade);
    # None means everyone trades at price_eur_per_kwh. Nodal mechanisms put their locational prices here.
    unit_price_eur_per_kwh: np.ndarray | None = None
    book: OrderBook | None = None  # the order book this clearing answers (market.properties measures efficiency on it)
    premium_micro: np.ndarray | None = None  # per participant: the local-renewable premium in buyer_pays_micro (nodal)

    @property
    def market_surplus_micro(self) -> int:
        """What buyers pay minus what sellers get: the operator's (clearing house); negative = a deficit it covers."""
        return int(self.buyer_pays_micro.sum() - self.seller_gets_micro.sum())


def money_micro(wh: np.ndarray, eur_per_kwh: np.ndarray | float) -> np.ndarray:
    return np.rint(wh * (np.asarray(eur_per_kwh) * MICRO_PER_WH_PER_EUR_PER_KWH)).astype(np.int64)


def _merit_order(book: OrderBook) -> tuple[np.ndarray, np.ndarray]:
    """Bid positions by price descending and ask positions by price ascending, ties by participant index."""
    return np.lexsort((book.buyer, -book.bid_eur_per_kwh)), np.lexsort((book.seller, book.ask_eur_per_kwh))


def _segments(cum_b_wh: np.ndarray, cum_a_wh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cuts two cumulative quantity ladders at every edge of either: (rung in b, rung in a, Wh) per piece.

    Pieces run up to the shorter ladder's top; rungs of zero Wh get no piece.
    """
    edges = np.sort(np.concatenate((cum_b_wh, cum_a_wh)))
    edges = edges[(edges > 0) & (edges <= min(cum_b_wh[-1], cum_a_wh[-1]))
                  & np.concatenate(([True], edges[1:] != edges[:-1]))]
    starts = np.concatenate(([0], edges[:-1]))
    rung_b, rung_a = np.searchsorted(cum_b_wh, starts, side="right"), np.searchsorted(cum_a_wh, starts, side="right")
    return rung_b, rung_a, edges - starts


def match(book: OrderBook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crosses bids (price descending) with asks (price ascending): the allocation of maximum declared gains.

    Returns the accepted segments as (bid order position, ask order position, Wh), in merit order.
    A book is immutable, so its match is worked out once (the mechanism and its efficiency measure both ask).
    """
    cached = book.__dict__.get("_match")
    if cached is None:
        cached = _match(book)
        object.__setattr__(book, "_match", cached)
    return cached


def _match(book: OrderBook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not len(book.buyer) or not len(book.seller):
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    bo, ao = _merit_order(book)
    bi, ai, wh = _segments(np.cumsum(book.buy_wh[bo]), np.cumsum(book.sell_wh[ao]))
    ok = book.bid_eur_per_kwh[bo[bi]] >= book.ask_eur_per_kwh[ao[ai]]
    n_ok = int(np.argmin(ok)) if not ok.all() else len(ok)
    return bo[bi[:n_ok]], ao[ai[:n_ok]], wh[:n_ok]


def _clearing(book: OrderBook, n: int, bpos: np.ndarray, apos: np.ndarray, wh: np.ndarray,
              buy_eur_per_kwh: np.ndarray | float, sell_eur_per_kwh: np.ndarray | float, price: float) -> Clearing:
    """Aggregates accepted segments per participant at per-participant unit prices; each payment is rounded once."""
    buyer, seller = book.buyer[bpos], book.seller[apos]
    bought = np.bincount(buyer, weights=wh, minlength=n).astype(np.int64)
    sold = np.bincount(seller, weights=wh, minlength=n).astype(np.int64)
    buy_price = np.broadcast_to(np.asarray(buy_eur_per_kwh, dtype=float), n)
    sell_price = np.broadcast_to(np.asarray(sell_eur_per_kwh, dtype=float), n)
    unit = np.where(bought > 0, buy_price, np.where(sold > 0, sell_price, np.nan))
    return Clearing(bought, sold, money_micro(bought, buy_price), money_micro(sold, sell_price), price,
                    buyer, seller, wh, buy_price[buyer], unit, book)


def clear_tariff(book: OrderBook, n: int) -> Clearing:
    """No market: nothing is matched; everything settles with the grid operator at tariff."""
    e = np.zeros(0, dtype=np.int64)
    return _clearing(book, n, e, e, e, 0.0, 0.0, float("nan"))


def clear_k_price(book: OrderBook, n: int, k: float = 0.5) -> Clearing:
    """Uniform-price double auction at k·bid + (1−k)·ask of the last accepted pair (0 ≤ k ≤ 1).

    k sets who gets the marginal pair's spread: k = 1 prices at the bid (sellers get it all), k = 0 at the ask
    (buyers get it all), k = 0.5 splits it (pay-as-clear). Efficient and budget-balanced, not truthful.
    """
    bpos, apos, wh = match(book)
    if not len(wh):
        return clear_tariff(book, n)
    price = float(k * book.bid_eur_per_kwh[bpos[-1]] + (1.0 - k) * book.ask_eur_per_kwh[apos[-1]])
    return _clearing(book, n, bpos, apos, wh, price, price, price)


def clear_pay_as_clear(book: OrderBook, n: int) -> Clearing:
    """Uniform-price double auction: the price is midway between the last accepted bid and ask (k-price, k = 0.5)."""
    return clear_k_price(book, n, 0.5)


def clear_pay_as_bid(book: OrderBook, n: int) -> Clearing:
    """Discriminatory double auction: buyers pay their bids, sellers get their asks; the spread goes to the operator."""
    bpos, apos, wh = match(book)
    if not len(wh):
        return clear_tariff(book, n)
    price = float(np.sum(book.bid_eur_per_kwh[bpos] * wh) / np.sum(wh))
    bid, ask = np.zeros(n), np.zeros(n)
    bid[book.buyer], ask[book.seller] = book.bid_eur_per_kwh, book.ask_eur_per_kwh
    return _clearing(book, n, bpos, apos, wh, bid, ask, price)


def _cheapest_micro(eur_per_kwh: np.ndarray, wh: np.ndarray, take_wh: np.ndarray) -> np.ndarray:
    """Money (micro, unrounded) of the `take_wh` cheapest Wh among quantities `wh` priced `eur_per_kwh`, per take."""
    o = np.argsort(eur_per_kwh, kind="stable")
    price = np.append(eur_per_kwh[o], 0.0) * MICRO_PER_WH_PER_EUR_PER_KWH
    cum_wh = np.concatenate(([0], np.cumsum(wh[o])))
    cum_micro = np.concatenate(([0.0], np.cumsum(wh[o] * price[:-1])))
    rung = np.searchsorted(cum_wh, take_wh, side="right") - 1
    return cum_micro[rung] + (take_wh - cum_wh[rung]) * price[rung]


def clear_vcg(book: OrderBook, n: int) -> Clearing:
    """Vickrey–Clarke–Groves double auction: the efficient match, each order paying its externality (Clarke pivot).

    A buyer pays what the Wh it takes are worth to the others at their best: the highest unmatched bids of other
    orders, or the dearest accepted asks, which would go unproduced. A seller gets what its Wh would cost the others
    to replace: the cheapest unmatched asks of other orders, or the lowest accepted bids, which would go unserved.
    This equals the others' welfare without the order minus their welfare with it, so reporting the true limit price
    is a dominant strategy and no trader pays above its bid or gets below its ask. Sellers get at least what buyers
    pay: the operator covers the deficit (`market_surplus_micro` < 0). Payments are rounded to micro once per participant.
    """
    bpos, apos, wh = match(book)
    if not len(wh):
        return clear_tariff(book, n)
    bid, ask = book.bid_eur_per_kwh, book.ask_eur_per_kwh
    got = np.bincount(bpos, weights=wh, minlength=len(bid)).astype(np.int64)
    gave = np.bincount(apos, weights=wh, minlength=len(ask)).astype(np.int64)
    left_b, left_a = book.buy_wh - got, book.sell_wh - gave
    m = MICRO_PER_WH_PER_EUR_PER_KWH

    # The others' units: unmatched bids (asks) and accepted asks (bids). An order's own unmatched rest r at its
    # price p is not the others': the dearest x Wh of a set less r Wh at p are min(dearest x, dearest x + r − r·p),
    # the cheapest x Wh max(cheapest x, cheapest x + r − r·p). Only the marginal order has a rest.
    def dearest(take: np.ndarray) -> np.ndarray:
        return -_cheapest_micro(-np.concatenate((bid, ask)), np.concatenate((left_b, gave)), take)

    def cheapest(take: np.ndarray) -> np.ndarray:
        return _cheapest_micro(np.concatenate((ask, bid)), np.concatenate((left_a, got)), take)

    pays = np.where(got > 0, np.minimum(dearest(got), dearest(got + left_b) - left_b * bid * m), 0.0)
    gets = np.where(gave > 0, np.maximum(cheapest(gave), cheapest(gave + left_a) - left_a * ask * m), 0.0)
    bought = np.bincount(book.buyer, weights=got, minlength=n)
    sold = np.bincount(book.seller, weights=gave, minlength=n)
    buy = np.divide(np.bincount(book.buyer, weights=pays, minlength=n), bought * m, out=np.zeros(n), where=bought > 0)
    sell = np.divide(np.bincount(book.seller, weights=gets, minlength=n), sold * m, out=np.zeros(n), where=sold > 0)
    return _clearing(book, n, bpos, apos, wh, buy, sell, float(pays.sum() / (got.sum() * m)))


def _pro_rata(wh: np.ndarray, participant: np.ndarray, total_wh: int) -> np.ndarray:
    """Shares `total_wh` in proportion to `wh` in whole Wh: largest remainders first, ties to the lower participant."""
    full = int(wh.sum())
    share = wh * total_wh // full
    rest = wh * total_wh - share * full
    share[np.lexsort((participant, -rest))[: total_wh - int(share.sum())]] += 1
    return share


def clear_second_price(book: OrderBook, n: int) -> Clearing:
    """McAfee's (1992) trade-reduction double auction, with orders of many Wh at one price as the traders.

    The efficient match sets the marginal bid and ask (the orders of its last segment). Those two orders are left
    out; every order ahead of them trades, buyers paying the marginal bid and sellers getting the marginal ask,
    prices no trader sets itself. The longer side is rationed pro rata to its Wh, which no price report can change.
    So reporting the true limit price is a dominant strategy (raising a bid only wins Wh at a price at or above
    one's own value; lowering it only loses Wh), and the operator keeps (marginal bid − ask) × Wh ≥ 0: never a
    deficit, up to each payment's half-micro rounding. Truthfulness costs the marginal orders' trade and the
    rationed Wh (efficiency < 1, most in thin markets). Chosen over the uniform price of the first excluded
    orders, which a partly filled marginal order would set itself (not truthful), and over VCG, which runs a deficit.
    """
    bpos, apos, wh = match(book)
    if not len(wh):
        return clear_tariff(book, n)
    bo, ao = _merit_order(book)
    buyers = bo[: int(np.flatnonzero(bo == bpos[-1])[0])]
    sellers = ao[: int(np.flatnonzero(ao == apos[-1])[0])]
    volume = min(int(book.buy_wh[buyers].sum()), int(book.sell_wh[sellers].sum()))
    if volume == 0:
        return clear_tariff(book, n)
    x = _pro_rata(book.buy_wh[buyers], book.buyer[buyers], volume)
    y = _pro_rata(book.sell_wh[sellers], book.seller[sellers], volume)
    bi, ai, seg = _segments(np.cumsum(x), np.cumsum(y))
    bid, ask = float(book.bid_eur_per_kwh[bpos[-1]]), float(book.ask_eur_per_kwh[apos[-1]])
    return _clearing(book, n, buyers[bi], sellers[ai], seg, bid, ask, bid)


MECHANISMS: dict[str, Callable[[OrderBook, int], Clearing]] = {
    "tariff": clear_tariff,
    "pay-as-clear": clear_pay_as_clear,
    "pay-as-bid": clear_pay_as_bid,
    "vcg": clear_vcg,
    "second-price": clear_second_price,
    "k-price": clear_k_price,
}


def split_micro(total_micro: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of `total_micro` in proportion to `weights` that sum to it exactly (largest remainder)."""
    if total_micro == 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = total_micro * weights / weights.sum()
    shares = np.floor(exact).astype(np.int64)
    left = int(total_micro - shares.sum())
    shares[np.argsort(-(exact - shares), kind="stable")[:left]] += 1
    return shares


def clear_nodal(book: OrderBook, n: int, price_eur_per_kwh: np.ndarray, green_wh: np.ndarray | None = None,
                green_eur_per_kwh: float = 0.0, renewable_wh: np.ndarray | None = None) -> Clearing:
    """Pool at locational prices (the `opf` mechanism): every order is filled at its participant's nodal price.

    The OPF has already matched supply and demand through the network, so there are no bilateral
    trades; what buyers pay minus what sellers get is the congestion (and loss) rent the operator keeps.
    Consumption matched to local renewables (`green_wh`) also pays the premium's price, which goes
    to the renewable producers in proportion to their `renewable_wh`, to the micro-unit.
    """
    bought = np.zeros(n, dtype=np.int64)
    sold = np.zeros(n, dtype=np.int64)
    bought[book.buyer], sold[book.seller] = book.buy_wh, book.sell_wh
    pays, gets = money_micro(bought, price_eur_per_kwh), money_micro(sold, price_eur_per_kwh)
    premium = np.zeros(n, dtype=np.int64)
    if green_wh is not None and renewable_wh is not None:
        premium = money_micro(green_wh, green_eur_per_kwh)
        pays = pays + premium
        gets = gets + split_micro(int(premium.sum()), renewable_wh.astype(float))
    volume = int(bought.sum())
    mean = float(np.dot(bought, price_eur_per_kwh) / volume) if volume else float("nan")
    e = np.zeros(0, dtype=np.int64)
    unit = np.where((bought > 0) | (sold > 0), price_eur_per_kwh, np.nan)
    return Clearing(bought, sold, pays, gets, mean, e, e, e, np.zeros(0), unit, None, premium)


def clearing_rule(name: str, k_price_k: float = 0.5) -> Callable[[OrderBook, int], Clearing]:
    """The mechanism `name` with its parameters bound, as a function of (book, n)."""
    return partial(clear_k_price, k=k_price_k) if name == "k-price" else MECHANISMS[name]
