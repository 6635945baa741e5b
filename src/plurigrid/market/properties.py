"""What a mechanism did to a run: efficiency, budget balance, individual rationality, price spread.

Pure functions in two stages, so that a run keeps per-step scalars rather than every order book:
`step_properties` measures one Clearing (the simulate driver records it as columns of the run), and
`mechanism_properties` sums those columns and the participants' bills into summary.json's
"mechanism_properties" section. Money is in the world's currency (kept exact in micro-units where it is a
ledger amount); gains from trade are declared gains, valued at the orders' limit prices.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from plurigrid.market.mechanisms import MICRO_PER_WH_PER_EUR_PER_KWH, Clearing, OrderBook, match

MICRO = 1e-6
COLLECTED_BY = "operator"  # the grid operator is the clearing house: it keeps any market surplus and covers any deficit

STEP_COLUMNS: dict[str, type] = {
    "declared_gains_eur": float,  # declared gains from trade the clearing realised (NaN: the clearing has no book)
    "max_declared_gains_eur": float,  # the most the same order book could realise (the efficient match)
    "market_surplus_micro": np.int64,  # what buyers pay minus what sellers get: the operator's (negative: deficit)
    "price_spread_eur_per_kwh": float,  # highest minus lowest unit price among participants that traded
}


def declared_gains_eur(book: OrderBook, bought_wh: np.ndarray, sold_wh: np.ndarray) -> float:
    """Gains from trade of an allocation at declared prices: bids × Wh bought − asks × Wh sold."""
    value = np.dot(book.bid_eur_per_kwh, bought_wh[book.buyer]) - np.dot(book.ask_eur_per_kwh, sold_wh[book.seller])
    return float(value / MICRO_PER_WH_PER_EUR_PER_KWH)


def max_declared_gains_eur(book: OrderBook, n: int) -> float:
    """The largest declared gains from trade of a book: those of the merit-order match."""
    bpos, apos, wh = match(book)
    bought = np.bincount(book.buyer[bpos], weights=wh, minlength=n).astype(np.int64)
    sold = np.bincount(book.seller[apos], weights=wh, minlength=n).astype(np.int64)
    return declared_gains_eur(book, bought, sold)


def price_spread_eur_per_kwh(clearing: Clearing) -> float:
    """Highest minus lowest price paid or received per kWh within a clearing; 0 for one uniform price.

    Uses the clearing's per-participant unit prices (discriminatory or nodal prices) over the participants that traded.
    """
    traded = (clearing.bought_wh > 0) | (clearing.sold_wh > 0)
    if clearing.unit_price_eur_per_kwh is None or not traded.any():
        return 0.0
    price = clearing.unit_price_eur_per_kwh[traded]
    return float(price.max() - price.min())


def step_properties(clearing: Clearing) -> dict[str, float | int]:
    """The STEP_COLUMNS values of one clearing."""
    book, bought, sold = clearing.book, clearing.bought_wh, clearing.sold_wh
    return {
        "declared_gains_eur": float("nan") if book is None else declared_gains_eur(book, bought, sold),
        "max_declared_gains_eur": float("nan") if book is None else max_declared_gains_eur(book, len(bought)),
        "market_surplus_micro": clearing.market_surplus_micro,
        "price_spread_eur_per_kwh": price_spread_eur_per_kwh(clearing),
    }


def mechanism_properties(series: Mapping[str, np.ndarray], bill_micro: np.ndarray, baseline_micro: np.ndarray) -> dict:
    """The run's mechanism report from its STEP_COLUMNS and `traded_kwh` series (T,) and each participant's bill
    and tariff-only bill over the run (N,).

    - efficiency: realised ÷ maximum declared gains from trade, summed over the steps whose books are known
      (1.0 where nothing could be gained; None if no step has a book);
    - budget: the operator's market surplus (+) or deficit (−), in total and its lowest and highest step;
    - individual_rationality: participants whose bill over the run exceeds their tariff-only bill, and by how much;
    - price_spread_eur_per_kwh: the within-step spread of unit prices, largest and mean over steps that traded.
    """
    gains, best = series["declared_gains_eur"], series["max_declared_gains_eur"]
    known = np.isfinite(best)
    gains_sum, best_sum = float(gains[known].sum()), float(best[known].sum())
    ratio = None if not known.any() else (gains_sum / best_sum if best_sum > 0 else 1.0)
    surplus = series["market_surplus_micro"]
    excess = bill_micro - baseline_micro
    spread = series["price_spread_eur_per_kwh"][series["traded_kwh"] > 0]
    return {
        "efficiency": {
            "ratio": None if ratio is None else round(ratio, 9),
            "declared_gains": round(gains_sum, 6),
            "max_declared_gains": round(best_sum, 6),
        },
        "budget": {
            "operator_surplus_micro": int(surplus.sum()),
            "operator_surplus": round(int(surplus.sum()) * MICRO, 6),
            "step_min": round(int(surplus.min()) * MICRO, 6),
            "step_max": round(int(surplus.max()) * MICRO, 6),
            "collected_by": COLLECTED_BY,
        },
        "individual_rationality": {
            "participants_above_tariff": int(np.sum(excess > 0)),
            "excess_total": round(int(excess[excess > 0].sum()) * MICRO, 6),
            "excess_max": round(int(excess.max(initial=0)) * MICRO, 6),
        },
        "price_spread_eur_per_kwh": {
            "max": round(float(spread.max(initial=0.0)), 9),
            "mean": round(float(spread.mean()), 9) if len(spread) else 0.0,
        },
    }
