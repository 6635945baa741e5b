"""Settlement of one interval: integer energy (Wh) and money (micro-currency) per participant.

The grid operator is the clearing house and the counterparty of every participant's unmatched
energy, which is settled at the import or export tariff. Every payment is a transfer between a
participant and the operator, so payments over all parties sum to zero exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plurigrid.market.mechanisms import Clearing, money_micro


@dataclass(frozen=True)
class Settlement:
    """What each participant delivered/received and paid in one interval (positive = pays / imports)."""

    metered_wh: np.ndarray  # net energy taken from the grid (+) or fed in (-)
    traded_wh: np.ndarray  # bought - sold in the market
    grid_import_wh: np.ndarray  # unmatched energy bought from the operator at tariff
    grid_export_wh: np.ndarray  # unmatched energy sold to the operator at tariff
    market_micro: np.ndarray  # market payments minus market receipts
    tariff_micro: np.ndarray  # tariff payments for unmatched energy minus tariff receipts
    fee_micro: np.ndarray  # network fee on market purchases
    baseline_micro: np.ndarray  # what the same metered energy costs under the tariff alone

    @property
    def bill_micro(self) -> np.ndarray:
        return self.market_micro + self.tariff_micro + self.fee_micro

    @property
    def operator_micro(self) -> int:
        """The operator's net receipts: the other side of every participant payment."""
        return int(self.bill_micro.sum())


def tariff_bill_micro(energy_wh: np.ndarray, import_eur_per_kwh: float, export_eur_per_kwh: float) -> np.ndarray:
    """Tariff payment for signed energy: import at the import price, export at the export price."""
    return money_micro(np.maximum(energy_wh, 0), import_eur_per_kwh) - money_micro(np.maximum(-energy_wh, 0), export_eur_per_kwh)


def settle(metered_wh: np.ndarray, clearing: Clearing, import_eur_per_kwh: float, export_eur_per_kwh: float,
           fee_eur_per_kwh: float) -> Settlement:
    """Settles metered energy: matched energy at market prices, the rest with the operator at tariff."""
    traded = clearing.bought_wh - clearing.sold_wh
    residual = metered_wh - traded
    return Settlement(
        metered_wh=metered_wh,
        traded_wh=traded,
        grid_import_wh=np.maximum(residual, 0),
        grid_export_wh=np.maximum(-residual, 0),
        market_micro=clearing.buyer_pays_micro - clearing.seller_gets_micro,
        tariff_micro=tariff_bill_micro(residual, import_eur_per_kwh, export_eur_per_kwh),
        fee_micro=money_micro(clearing.bought_wh, fee_eur_per_kwh),
        baseline_micro=tariff_bill_micro(metered_wh, import_eur_per_kwh, export_eur_per_kwh),
    )
