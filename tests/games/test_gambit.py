"""Gambit .nfg/.efg: both .nfg forms, exact numbers, round trips, and one-line FILE:LINE errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from plurigrid.errors import UsageError
from plurigrid.games.extensive import ExtensiveGame
from plurigrid.games.gambit import format_efg, format_nfg, parse_efg, parse_nfg, read_game, write_game
from plurigrid.games.normal import NormalFormGame

DATA = Path(__file__).parent / "data"
F = Fraction
# Gambit's documented sample (Selten, IJGT 1975, figure 2) in its two .nfg forms
SELTEN_PAYOFF_FORM = 'NFG 1 R "Selten (IJGT, 75), Figure 2, normal form"\n{ "Player 1" "Player 2" } { 3 2 }\n\n1 1 0 2 0 2 1 1 0 3 2 0\n'
SELTEN_OUTCOME_FORM = """NFG 1 R "Selten (IJGT, 75), Figure 2, normal form" { "Player 1" "Player 2" }
{ { "1" "2" "3" } { "1" "2" } }

{ { "" 1, 1 } { "" 0, 2 } { "" 0, 2 } { "" 1, 1 } { "" 0, 3 } { "" 2, 0 } }
1 2 3 4 5 6
"""


def test_both_nfg_forms_give_the_same_game_player_one_fastest():
    payoff_form, outcome_form = parse_nfg(SELTEN_PAYOFF_FORM), parse_nfg(SELTEN_OUTCOME_FORM)
    assert payoff_form.title == "Selten (IJGT, 75), Figure 2, normal form"
    assert payoff_form.strategies == outcome_form.strategies == [["1", "2", "3"], ["1", "2"]]
    # profile (row 2, column 1) is the second in the list: 0 2; (row 1, column 2) the fourth: 1 1
    assert tuple(payoff_form.exact[:, 1, 0]) == (0, 2) and tuple(payoff_form.exact[:, 0, 1]) == (1, 1)
    assert np.array_equal(payoff_form.exact, outcome_form.exact)


def test_outcome_zero_is_the_null_outcome():
    bos = read_game(DATA / "battle_of_the_sexes.nfg")
    assert isinstance(bos, NormalFormGame)
    assert bos.players == ["Wife", "Husband"] and bos.comment.startswith("outcome form")
    assert bos.exact.tolist() == [[[2, 0], [0, 1]], [[1, 0], [0, 2]]]


def test_numbers_are_exact():
    game = read_game(DATA / "exact_payoffs.nfg")
    assert isinstance(game, NormalFormGame)
    assert game.exact.tolist() == [[[F(1, 3), F(-1, 4)], [0, 1]], [[F(1, 4), F(7, 2)], [F(1, 2), 10]]]
    centipede = read_game(DATA / "centipede.efg")
    assert isinstance(centipede, ExtensiveGame)
    assert centipede.leaves[0].payoffs == (F(2, 5), F(1, 10))  # 0.40, 0.10 exactly


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.nfg")))
def test_nfg_round_trip(name, tmp_path):
    game = read_game(DATA / name)
    write_game(game, tmp_path / name)
    again = read_game(tmp_path / name)
    assert isinstance(game, NormalFormGame) and isinstance(again, NormalFormGame)
    assert (again.title, again.comment, again.players, again.strategies) == (game.title, game.comment, game.players, game.strategies)
    assert np.array_equal(again.exact, game.exact)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.efg")))
def test_efg_round_trip(name):
    game = read_game(DATA / name)
    assert isinstance(game, ExtensiveGame)
    again = parse_efg(format_efg(game))
    assert again.root == game.root  # the same tree: nodes, information sets, chance probabilities, outcomes, names
    assert (again.title, again.comment, again.players) == (game.title, game.comment, game.players)
    assert format_efg(again) == format_efg(game)


def test_float_games_and_awkward_labels_round_trip():
    game = NormalFormGame.from_payoffs(np.array([[[0.1, 1e-7]], [[-2.5, 3e20]]]), ["say \"hi\"", "back\\slash"],
                                       [["a b"], ["{", "}"]], title="quotes \" and \\")
    again = parse_nfg(format_nfg(game))
    assert again.players == game.players and again.strategies == game.strategies and again.title == game.title
    np.testing.assert_array_equal(again.payoffs, game.payoffs)  # decimals written without exponent read back to the same floats


@pytest.mark.parametrize(("text", "line", "expected"), [
    ('NFG 2 R "x" { "a" } { 1 }\n1\n', 1, "expected the format version 1 (an integer from 1 to 1), found 2"),
    ('NFG 1 R "x" { "a" "b" } { 2 2 }\n\n1 2 3 4\n5 6 7\n', 4, "expected payoff 8 of 8 (2 per profile, 4 profiles), found the end"),
    ('NFG 1 R "x" { "a" "b" } { 2 2 }\n1 2 3 4 5 6 7 8 9\n', 2, "expected the end of the file, found 9"),
    ('NFG 1 R "x" { "a" "b" } { 2 }\n1 2 3 4\n', 1, "expected strategies for each of the 2 players"),
    ('NFG 1 R "x" { "a" }\n{ { "s" "t" } }\n{ { "" 1 } }\n1 2\n', 4,
     "expected the outcome number of profile 2 of 2 (an integer from 0 to 1), found 2"),
    ('NFG 1 R "x { "a" } { 1 }\n1\n', 1, "unexpected character"),
    ('NFG 1 R "x" { "a" } { 1 }\n1/0\n', 2, "a zero denominator"),
    ('NFG 1 R "x" { "a" } { 1 }\n1 @\n', 2, "unexpected character '@'"),
    ('\n\nGAME 1\n', 3, "expected a Gambit game file starting with NFG or EFG"),
    ('NFG 1 R "x" { "a" } { 1 }\n1e400\n', 2, "expected a number of magnitude at most 1e300"),
])
def test_malformed_nfg_is_one_line_with_file_and_line(tmp_path, text, line, expected):
    path = tmp_path / "bad.nfg"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        read_game(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ") and expected in message and "\n" not in message


EFG_HEAD = 'EFG 2 R "x" { "one" "two" }\n""\n'


@pytest.mark.parametrize(("body", "line", "expected"), [
    ('x "" 1 1 "" { "a" } 0\n', 3, "expected a node type c, p or t, found x"),
    ('p "" 3 1 "" { "a" } 0\n', 3, "expected the player number (1 to 2) (an integer from 1 to 2), found 3"),
    ('c "" 1 "" { "h" 1/2 "t" 1/3 } 0\nt "" 0\nt "" 0\n', 3, "expected chance probabilities >= 0 summing to 1"),
    ('p "" 1 1 "" { "a" "b" } 0\nt "" 1 "" { 1, 2 }\n', 4, "the node at line 3 still has 1 child(ren) to come"),
    ('p "" 1 1 "" { "a" } 0\np "" 2 7 0\nt "" 0\n', 4, "expected the name and { actions } of information set 7 of player 2"),
    ('p "" 1 1 "" { "a" "b" } 0\np "" 1 1 "" { "a" "c" } 0\nt "" 0\nt "" 0\nt "" 0\n', 4, "declared differently"),
    ('t "" 1 "" { 1, 2 }\nt "" 2 "" { 3, 4 }\n', 4, "the tree is complete, found t"),
    ('p "" 1 1 "" { "a" } 0\nt "" 1 "" { 1 }\n', 4, "expected payoff 2 of 2 of outcome 1, found }"),
    ('p "" 1 1 "" { "a" "b" } 0\nt "" 1 "" { 1, 2 }\nt "" 1 "" { 1, 3 }\n', 5, "outcome 1 is declared differently"),
    ('t "" 5\n', 3, "expected the name and { payoffs } of outcome 5"),
    ('"two\nlines" 1 1\n', 3, 'expected a node type c, p or t, found the label "two\\nlines"'),
])
def test_malformed_efg_is_one_line_with_file_and_line(tmp_path, body, line, expected):
    path = tmp_path / "bad.efg"
    path.write_text(EFG_HEAD + body)
    with pytest.raises(UsageError) as err:
        read_game(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ") and expected in message and "\n" not in message


def test_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read the file"):
        read_game(tmp_path / "absent.nfg")
