"""`plurigrid game` on a microworld game: JSON shapes users script against, one-line errors, the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import plurigrid
from tests.games.test_microgame import GAME, WORLD


@pytest.fixture(scope="module")
def game(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-game")
    (d / "world.toml").write_text(WORLD)
    (d / "game.toml").write_text(GAME)
    return d / "game.toml"


def test_check_lists_the_deviations_from_a_profile(game: Path) -> None:
    r = plurigrid("game", "check", str(game), "--mechanism", "pay-as-clear", "--profile", "cheap=cost", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (result,) = out["results"]
    assert result["mechanism"] == "pay-as-clear" and result["profile"] == {"cheap": "cost", "buyer": "cost"}
    assert result["equilibrium"] is False
    assert {(d["player"], d["to"]) for d in result["deviations"]} == {("cheap", "plus-4c"), ("buyer", "plus-4c")}
    assert set(result["payoffs_eur"]) == {"cheap", "buyer"}


def test_equilibria_under_each_mechanism_with_the_price_of_anarchy(game: Path, tmp_path: Path) -> None:
    r = plurigrid("game", "equilibria", str(game), "--json", "--cache", str(tmp_path))
    assert r.returncode == 0, r.stderr
    results = {x["mechanism"]: x for x in json.loads(r.stdout)["results"]}
    assert list(results) == ["pay-as-clear", "pay-as-bid", "vcg"]
    vcg = results["vcg"]
    assert {"cheap": "cost", "buyer": "cost"} in [e["profile"] for e in vcg["equilibria"]]
    assert results["pay-as-clear"]["price_of_anarchy"] > 3  # the no-trade equilibrium
    assert results["pay-as-clear"]["price_of_stability"] == pytest.approx(1.0, abs=1e-6)
    again = plurigrid("game", "equilibria", str(game), "--json", "--cache", str(tmp_path))
    assert all(x["simulations"] == 0 for x in json.loads(again.stdout)["results"])  # every run came from the cache


@pytest.mark.parametrize(("args", "message"), [
    (["check", "{game}", "--profile", "cheap=plus-9c"],
     "--profile: player 'cheap' has no strategy 'plus-9c'; expected one of cost, plus-4c, plus-25c"),
    (["check", "{game}", "--profile", "seller=cost"], "--profile: unknown player 'seller'; expected one of cheap, buyer"),
    (["check", "{game}", "--profile", "cheap"], "--profile: expected PLAYER=STRATEGY, got 'cheap'"),
    (["equilibria", "{game}", "--mechanism", "opf"], "--mechanism: 'opf' is not one of the game's mechanisms (pay-as-clear, pay-as-bid, vcg)"),
    (["learn", "{game}", "--dynamics", "telepathy"],
     "--dynamics: unknown dynamics 'telepathy'; expected one of fictitious-play, replicator, q-learning, active-inference"),
    (["check", "no-such-game"], "no-such-game: not a file and not a library game; expected a path or one of:"),
    (["equilibria", "{game}", "--cache", "{game}"], "is a file; expected a folder"),
    (["report", "{game}", "--out", "{game}"], "--out: "),
])
def test_user_errors_are_one_line_and_exit_2(game: Path, args: list[str], message: str) -> None:
    r = plurigrid("game", *[a.format(game=game) for a in args])
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_report_writes_an_offline_page_with_everything(game: Path, tmp_path: Path) -> None:
    r = plurigrid("game", "report", str(game), "--out", str(tmp_path / "rep"), "--mechanism", "pay-as-clear")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "rep" / "report.html").read_text()
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert "Plotly.newPlot" in page and "cdn" not in page.lower().split("<body>")[1]
    (m,) = data["mechanisms"]
    assert len(m["table"]) == 9 and m["coalitions"]["shapley"]["efficient"]
    assert "Deviations from truthful bidding" in page and "Counterfactuals" in page and "Coalitions" in page


def test_resilience_game_reports_its_runs_and_refuses_bad_fields(tmp_path: Path) -> None:
    r = plurigrid("game", "resilience", "georgia-resilience", "--runs", "1", "--turns", "2", "--json", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["aggregate"]["runs"] == 1 and data["aggregate"]["turns"] == 2 and len(data["runs"]) == 1
    assert json.loads((tmp_path / "report.json").read_text()) == data
    assert {"report.html", "runs.csv", "shocks.csv", "withstand.csv"} <= {p.name for p in tmp_path.iterdir()}
    bad = plurigrid("game", "resilience", "georgia-resilience", "--runs", "0")
    assert bad.returncode == 2 and bad.stderr == "plurigrid: error: georgia-resilience.toml: resilience.runs: must be >= 1\n"
    other = plurigrid("game", "resilience", "supplier-bidding")
    assert other.returncode == 2 and "not a resilience game" in other.stderr


def test_learn_json_is_valid_even_after_one_round(game: Path) -> None:
    r = plurigrid("game", "learn", str(game), "--mechanism", "pay-as-bid", "--rounds", "1", "--json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)["results"]  # strict JSON: no Infinity or NaN
    assert result["movement"] is None and result["converged"] is False


def test_full_information_dynamics_on_the_simulated_normal_form(game: Path) -> None:
    r = plurigrid("game", "learn", str(game), "--mechanism", "pay-as-bid", "--full-information", "--dynamics", "fictitious-play",
                  "--rounds", "2000", "--json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)["results"]
    assert result["full_information"] and result["converged"]
    # fictitious play's frequencies settle on the pay-as-bid equilibrium that enumeration finds (both mark up 4 cents)
    assert result["profile"]["cheap"]["plus-4c"] > 0.9 and result["profile"]["buyer"]["plus-4c"] > 0.9
