"""A coalition's energy trades booked as mutual credit in kWh: who lent the group energy, who owes it.

The grand coalition of a game trades among itself under the game's mechanism (everyone else at
tariff). Each interval's trades inside the coalition become loans of energy (the seller lends,
the buyer borrows) in a mutual-credit ledger (`state.mutual_credit`): one signed block per
interval, every member's balance provable against the block's root, balances summing to zero, and
no member owing more than its credit limit. An interval whose loans would take a member past its
limit is refused whole (nothing of it is written): those trades stay settled in money only, and the
report counts them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plurigrid.engine.ledger_entries import run_signer
from plurigrid.engine.simulate import simulate
from plurigrid.engine.step import State, StepResult
from plurigrid.errors import UsageError
from plurigrid.games.microgame import MicroworldGame
from plurigrid.state.ledger import CreditLimitError, Ledger
from plurigrid.state.mutual_credit import MutualCredit


@dataclass(frozen=True)
class CreditReport:
    members: list[str]
    limit_wh: int
    booked_intervals: int
    refused_intervals: int  # intervals whose loans would have passed a limit: not booked
    lent_wh: int  # energy lent in the booked intervals
    balances_wh: dict[str, int]
    height: int
    state_root: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


def book_coalition_credit(game: MicroworldGame, profile: tuple[int, ...], folder: Path, limit_kwh: float,
                          signer_key: str | Path | None = None) -> CreditReport:
    """Plays `profile` with every player in the market and books the coalition's trades as mutual credit into a new
    ledger in `folder` (every member's limit `limit_kwh`)."""
    if len(game.outcomes()) > 1:
        raise UsageError(f"{game.name}: mutual credit is booked from one run; this game has chance moves (give one without)")
    everyone = tuple(range(len(game.players)))
    (play, _), = game.plays(profile, everyone)
    _, world = game.world_of(play)  # the play's investments and choices, only the players in the market
    names = list(world.ids)
    members = sorted({names[m] for p in game.players for m in p.members}, key=names.index)
    inside = np.isin(np.array(names), members)
    loans: dict[int, list[tuple[str, str, int]]] = defaultdict(list)

    def collect(state: State, k: int, r: StepResult) -> None:
        c = r.clearing
        for buyer, seller, wh in zip(c.trade_buyer.tolist(), c.trade_seller.tolist(), c.trade_wh.tolist()):
            if inside[buyer] and inside[seller] and wh > 0:
                loans[k].append((names[buyer], names[seller], int(wh)))

    simulate(world, after_step=collect)
    limit_wh = int(round(limit_kwh * 1000))
    ledger = Ledger(folder, create=True, signer=run_signer(signer_key))
    try:
        credit = MutualCredit(ledger)
        start = world.index[0]
        credit.set_limits(dict.fromkeys(members, limit_wh), 0, start.isoformat())
        booked = refused = lent = 0
        for k in sorted(loans):
            try:
                credit.book_trades(loans[k], k, world.index[k].isoformat())
            except CreditLimitError:
                refused += 1
                continue
            booked += 1
            lent += sum(wh for _, _, wh in loans[k])
        return CreditReport(members, limit_wh, booked, refused, lent, credit.balances(), ledger.height, ledger.head.state_root)
    finally:
        ledger.close()
