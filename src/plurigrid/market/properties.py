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
from plurigrid.market.settlement import Settlement, tariff_bill_micro

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


# Why a bill differs from its tariff baseline, per participant and step (micro-units, + = the bill is higher):
# bought / sold: the market's terms for the energy traded against what the tariff asks for it (buyers) or pays for
# it (sellers); premium: the local-renewable premium (opf); balancing: an island reference's metered energy off its
# schedule, settled at tariff; fee: the network fee on market purchases. They add up to bill - baseline exactly.
GAP_PARTS = ("bought", "sold", "premium", "balancing", "fee")
ROUNDING_MICRO = 1  # a part of one step within this may be each payment's rounding to whole micro-units


def tariff_gap_micro(st: Settlement, scheduled_wh: np.ndarray, premium_micro: np.ndarray, import_eur_per_kwh: float,
                     export_eur_per_kwh: float) -> dict[str, np.ndarray]:
    """One step's bill minus tariff baseline, split into GAP_PARTS, per participant.

    `scheduled_wh` is each participant's net position in the order book (its metered energy but for an island's
    reference, which also balances the island), `premium_micro` what it paid for local renewables this step.
    """
    def tariff(wh: np.ndarray) -> np.ndarray:
        return tariff_bill_micro(wh, import_eur_per_kwh, export_eur_per_kwh)

    t = st.traded_wh
    # terms = market - premium - (tariff(scheduled) - tariff(scheduled - traded)): where the meter reads the schedule,
    # that is the settlement's own tariff payments (baseline - tariff_micro), so only the few others are worked out
    terms = st.market_micro - premium_micro - (st.baseline_micro - st.tariff_micro)
    balancing = np.zeros_like(terms)
    off = np.flatnonzero(st.metered_wh != scheduled_wh)
    if len(off):
        sch, traded = scheduled_wh[off], t[off]
        balancing[off] = (st.tariff_micro[off] - tariff(sch - traded)) - (st.baseline_micro[off] - tariff(sch))
        terms[off] -= balancing[off]
    zero = np.zeros_like(terms)
    return {"bought": np.where(t >= 0, terms, zero), "sold": np.where(t < 0, terms, zero), "premium": premium_micro,
            "balancing": balancing, "fee": st.fee_micro}


def _eur(micro: int) -> str:
    return f"{micro * MICRO:,.2f}" if abs(micro) >= 5_000 else f"{micro * MICRO:.6f}"


def _reasons(i: int, gap: Mapping[str, np.ndarray], nodal: bool, currency: str) -> list[str]:
    """Plain words for the parts that made participant i's bill higher than its tariff baseline."""
    def steps(part: str) -> str:
        n = int(gap[f"{part}_steps"][i])
        return f"in {n:,} step{'s' if n != 1 else ''}"

    price = "the nodal price" if nodal else "the market price"
    words = {
        "bought": f"paid {price} above the import tariff {steps('bought')}",
        "sold": f"got {price} below the export tariff {steps('sold')}",
        "premium": f"paid the local-renewable premium {steps('premium')}",
        "balancing": f"as the island's reference, settled its output off schedule at tariff {steps('balancing')}",
        "fee": f"paid the network fee on market purchases {steps('fee')}",
    }
    return [f"{words[part]} (+{_eur(int(gap[f'{part}_above_micro'][i]))} {currency})" for part in GAP_PARTS
            if gap[f"{part}_above_micro"][i] > 0]


def excess_over_tariff_micro(bill_micro: np.ndarray, baseline_micro: np.ndarray, steps: int) -> np.ndarray:
    """Each participant's bill minus its tariff baseline where that exceeds rounding (ROUNDING_MICRO a step), else 0."""
    excess = bill_micro - baseline_micro
    return np.where(excess > steps * ROUNDING_MICRO, excess, 0)


def individual_rationality(ids: list[str], bill_micro: np.ndarray, baseline_micro: np.ndarray,
                           gap: Mapping[str, np.ndarray], steps: int, *, nodal: bool, currency: str) -> list[dict]:
    """Participants whose bill over the run exceeds their tariff baseline by more than rounding (ROUNDING_MICRO a
    step), dearest first: bill, baseline, excess (micro-units) and why, from the run's sums of `tariff_gap_micro`
    (`gap[f"{part}_above_micro"]` and `gap[f"{part}_steps"]`: its parts above rounding and in how many steps)."""
    excess = excess_over_tariff_micro(bill_micro, baseline_micro, steps)
    above = np.flatnonzero(excess)
    order = above[np.lexsort((above, -excess[above]))]
    return [{"participant": ids[i], "bill_micro": int(bill_micro[i]), "baseline_micro": int(baseline_micro[i]),
             "excess_micro": int(excess[i]), "reasons": _reasons(i, gap, nodal, currency)} for i in order]


def mechanism_properties(series: Mapping[str, np.ndarray], bill_micro: np.ndarray, baseline_micro: np.ndarray) -> dict:
    """The run's mechanism report from its STEP_COLUMNS and `traded_kwh` series (T,) and each participant's bill
    and tariff-only bill over the run (N,).

    - efficiency: realised ÷ maximum declared gains from trade, summed over the steps whose books are known
      (1.0 where nothing could be gained; None if no step has a book);
    - budget: the operator's market surplus (+) or deficit (−), in total and its lowest and highest step;
    - individual_rationality: participants whose bill over the run exceeds their tariff-only bill by more than
      rounding (ROUNDING_MICRO a step; the summary's `individual_rationality` lists them), and by how much;
    - price_spread_eur_per_kwh: the within-step spread of unit prices, largest and mean over steps that traded.
    """
    gains, best = series["declared_gains_eur"], series["max_declared_gains_eur"]
    known = np.isfinite(best)
    gains_sum, best_sum = float(gains[known].sum()), float(best[known].sum())
    ratio = None if not known.any() else (gains_sum / best_sum if best_sum > 0 else 1.0)
    surplus = series["market_surplus_micro"]
    excess = excess_over_tariff_micro(bill_micro, baseline_micro, len(surplus))
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
