"""Clearing mechanisms: pure, deterministic functions from an order book to a Clearing.

Quantities are integer Wh and every payment is an integer number of micro-currency units, so
settlement conserves energy and money exactly. Ties are broken by participant index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
    def from_positions(cls, net_wh: np.ndarray, bid: np.ndarray, ask: np.ndarray, trades: np.ndarray) -> "OrderBook":
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
    price_eur_per_kwh: float  # uniform price, or volume-weighted mean for pay-as-bid; NaN if nothing traded
    trade_buyer: np.ndarray
    trade_seller: np.ndarray
    trade_wh: np.ndarray
    trade_price_eur_per_kwh: np.ndarray


def money_micro(wh: np.ndarray, eur_per_kwh: np.ndarray | float) -> np.ndarray:
    return np.rint(wh * (np.asarray(eur_per_kwh) * MICRO_PER_WH_PER_EUR_PER_KWH)).astype(np.int64)


def match(book: OrderBook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crosses bids (price descending) with asks (price ascending).

    Returns the accepted segments as (bid order position, ask order position, Wh), in merit order.
    """
    if not len(book.buyer) or not len(book.seller):
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    bo = np.lexsort((book.buyer, -book.bid_eur_per_kwh))
    ao = np.lexsort((book.seller, book.ask_eur_per_kwh))
    cum_b, cum_a = np.cumsum(book.buy_wh[bo]), np.cumsum(book.sell_wh[ao])
    edges = np.sort(np.concatenate((cum_b, cum_a)))
    edges = edges[(edges <= min(cum_b[-1], cum_a[-1])) & np.concatenate(([True], edges[1:] != edges[:-1]))]
    starts = np.concatenate(([0], edges[:-1]))
    bi = np.searchsorted(cum_b, starts, side="right")
    ai = np.searchsorted(cum_a, starts, side="right")
    ok = book.bid_eur_per_kwh[bo[bi]] >= book.ask_eur_per_kwh[ao[ai]]
    n_ok = int(np.argmin(ok)) if not ok.all() else len(ok)
    return bo[bi[:n_ok]], ao[ai[:n_ok]], (edges - starts)[:n_ok]


def _clearing(book: OrderBook, n: int, bpos: np.ndarray, apos: np.ndarray, wh: np.ndarray, price: float,
              discriminatory: bool) -> Clearing:
    """Aggregates accepted segments per participant; each participant's payment is rounded once."""
    buyer, seller = book.buyer[bpos], book.seller[apos]
    bought = np.bincount(buyer, weights=wh, minlength=n).astype(np.int64)
    sold = np.bincount(seller, weights=wh, minlength=n).astype(np.int64)
    unit = price if np.isfinite(price) else 0.0  # NaN: nothing traded
    buy_price, sell_price = np.full(n, unit), np.full(n, unit)
    if discriminatory:
        buy_price[book.buyer] = book.bid_eur_per_kwh
        sell_price[book.seller] = book.ask_eur_per_kwh
    trade_price = book.bid_eur_per_kwh[bpos] if discriminatory else np.full(len(wh), price)
    return Clearing(bought, sold, money_micro(bought, buy_price), money_micro(sold, sell_price), price,
                    buyer, seller, wh, trade_price)


def clear_tariff(book: OrderBook, n: int) -> Clearing:
    """No market: nothing is matched; everything settles with the grid operator at tariff."""
    e = np.zeros(0, dtype=np.int64)
    return _clearing(book, n, e, e, e, float("nan"), False)


def clear_pay_as_clear(book: OrderBook, n: int) -> Clearing:
    """Uniform-price double auction: the price is midway between the last accepted bid and ask."""
    bpos, apos, wh = match(book)
    if not len(wh):
        return clear_tariff(book, n)
    price = 0.5 * (book.bid_eur_per_kwh[bpos[-1]] + book.ask_eur_per_kwh[apos[-1]])
    return _clearing(book, n, bpos, apos, wh, float(price), False)


def clear_pay_as_bid(book: OrderBook, n: int) -> Clearing:
    """Discriminatory double auction: buyers pay their bids, sellers get their asks; the spread goes to the operator."""
    bpos, apos, wh = match(book)
    if not len(wh):
        return clear_tariff(book, n)
    price = float(np.sum(book.bid_eur_per_kwh[bpos] * wh) / np.sum(wh))
    return _clearing(book, n, bpos, apos, wh, price, True)


MECHANISMS: dict[str, Callable[[OrderBook, int], Clearing]] = {
    "tariff": clear_tariff,
    "pay-as-clear": clear_pay_as_clear,
    "pay-as-bid": clear_pay_as_bid,
}
