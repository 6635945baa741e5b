"""What the chat's answers are computed from: one run of a world, kept as the few arrays its tools read.

Why: every number an answer states must come from the engine, so the chat runs the world itself (the same
deterministic step as `plurigrid run`) and keeps, per participant, the run's bill parts and energy and, per
interval, the price, the tariffs and who set the price. Each what-if and mechanism comparison is another run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from plurigrid.engine.simulate import simulate
from plurigrid.engine.step import State, StepResult
from plurigrid.engine.world import World


@dataclass
class Outcome:
    """One run: totals per participant (N,) and series per interval (T,) or (T, N)."""

    world: World
    bill_micro: np.ndarray
    market_micro: np.ndarray
    tariff_micro: np.ndarray
    fee_micro: np.ndarray
    baseline_micro: np.ndarray
    imported_wh: np.ndarray
    exported_wh: np.ndarray
    bought_wh: np.ndarray
    sold_wh: np.ndarray
    price_eur_per_kwh: np.ndarray  # (T,) the market's price (NaN where nothing traded)
    traded_wh: np.ndarray  # (T,)
    setter: list[tuple[int, str, float] | None]  # (T,) the accepted order whose limit is nearest the price
    soc_kwh: np.ndarray  # (T, N) after each interval
    battery_kw: np.ndarray  # (T, N) + charging, - discharging
    tightest: list[tuple[str, str, float] | None]  # (T,) the most loaded branch: ("line" or "trafo", its name, % of rating)
    steps: int = field(default=0)

    @classmethod
    def of(cls, world: World) -> Outcome:
        """Runs `world` (no ledger) and keeps what the tools read."""
        n = world.n
        totals = {name: np.zeros(n, dtype=np.int64) for name in
                  ("market_micro", "tariff_micro", "fee_micro", "baseline_micro", "imported_wh", "exported_wh",
                   "bought_wh", "sold_wh")}
        price, traded, setter, soc, battery, tightest = [], [], [], [], [], []
        net = world.grid.net

        def after(state: State, k: int, r: StepResult) -> None:
            s, c = r.settlement, r.clearing
            for name in ("market_micro", "tariff_micro", "fee_micro", "baseline_micro"):
                totals[name] += getattr(s, name)
            totals["imported_wh"] += np.maximum(s.metered_wh, 0)
            totals["exported_wh"] += np.maximum(-s.metered_wh, 0)
            totals["bought_wh"] += c.bought_wh
            totals["sold_wh"] += c.sold_wh
            price.append(c.price_eur_per_kwh)
            traded.append(int(c.trade_wh.sum()))
            setter.append(_setter(c))
            soc.append(state.soc_kwh.copy())
            battery.append(r.decision.battery_kw.copy())
            tightest.append(_tightest(net, r))

        simulate(world, after_step=after)
        bill = totals["market_micro"] + totals["tariff_micro"] + totals["fee_micro"]
        return cls(world, bill, **totals, price_eur_per_kwh=np.array(price, dtype=float), traded_wh=np.array(traded),
                   setter=setter, soc_kwh=np.array(soc), battery_kw=np.array(battery), tightest=tightest, steps=len(price))


def _setter(c) -> tuple[int, str, float] | None:
    """The accepted order (participant, side, limit EUR/kWh) whose limit is nearest the clearing price: who set it."""
    book = c.book
    if book is None or not np.isfinite(c.price_eur_per_kwh) or not len(c.trade_wh):
        return None
    sold = np.isin(book.seller, c.trade_seller)
    bought = np.isin(book.buyer, c.trade_buyer)
    candidates = [(int(p), "ask", float(x)) for p, x in zip(book.seller[sold], book.ask_eur_per_kwh[sold]) if np.isfinite(x)]
    candidates += [(int(p), "bid", float(x)) for p, x in zip(book.buyer[bought], book.bid_eur_per_kwh[bought]) if np.isfinite(x)]
    if not candidates:
        return None
    return min(candidates, key=lambda o: (abs(o[2] - c.price_eur_per_kwh), o[0]))


def _tightest(net, r: StepResult) -> tuple[str, str, float] | None:
    """The branch loaded nearest its rating in the interval's AC power flow (None if it did not converge)."""
    if not r.pf.converged:
        return None
    best = None
    for kind, loading, names in (("line", r.pf.line_loading_pct, net.line.name), ("trafo", r.pf.trafo_loading_pct, net.trafo.name)):
        values = np.where(np.isfinite(loading), loading, -np.inf)
        if len(values) and np.isfinite(values.max()) and (best is None or values.max() > best[2]):
            i = int(np.argmax(values))
            best = (kind, str(names.iloc[i]), float(values[i]))
    return best
