"""A coalition's trades booked as mutual credit in kWh (games.credit) on the hand-computed two-supplier world."""

from __future__ import annotations

from pathlib import Path

import pytest

from plurigrid.games.analysis import truthful_profile
from plurigrid.games.credit import book_coalition_credit
from plurigrid.games.microgame import SimulationCache
from plurigrid.state.ledger import check
from tests.games.test_microgame import GAME, WORLD, game_under


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    d = tmp_path_factory.mktemp("credit")
    (d / "world.toml").write_text(WORLD)
    (d / "game.toml").write_text(GAME)
    return game_under(d, "pay-as-clear", SimulationCache())


def test_the_seller_lends_the_buyer_what_it_delivered(game, tmp_path: Path) -> None:
    report = book_coalition_credit(game, truthful_profile(game), tmp_path / "ledger", limit_kwh=30.0)
    assert report.members == ["cheap", "buyer"] and report.limit_wh == 30_000
    assert report.booked_intervals == 1 and report.refused_intervals == 0
    # the buyer's 20 kW for one hour came from the cheap unit: 20 kWh lent, owed back, balances summing to zero
    assert report.lent_wh == pytest.approx(20_000, abs=5)
    assert report.balances_wh == {"cheap": report.lent_wh, "buyer": -report.lent_wh}
    verdict = check(tmp_path / "ledger")  # raises on any hash, signature, root or credit rule that does not hold
    assert verdict.closed and verdict.head.height == report.height == 2  # limits, then the interval's loans
    assert verdict.head.state_root == report.state_root


def test_a_loan_past_the_limit_is_refused_whole(game, tmp_path: Path) -> None:
    report = book_coalition_credit(game, truthful_profile(game), tmp_path / "ledger", limit_kwh=10.0)
    assert report.booked_intervals == 0 and report.refused_intervals == 1
    assert report.balances_wh == {"cheap": 0, "buyer": 0}
    assert check(tmp_path / "ledger").head.height == 1  # the limits only
