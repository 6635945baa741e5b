"""ExtensiveGame: information sets, the reduced normal form, expected payoffs with chance, backward induction."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from plurigrid.errors import UsageError
from plurigrid.games.extensive import CHANCE, ExtensiveGame, InfoSet, Node, Outcome
from plurigrid.games.gambit import read_game

DATA = Path(__file__).parent / "data"
F = Fraction


def tree(name: str) -> ExtensiveGame:
    game = read_game(DATA / name)
    assert isinstance(game, ExtensiveGame)
    return game


def test_selten_horse_normal_form():
    horse = tree("selten_horse.efg")
    assert not horse.is_perfect_information  # player 3's set holds the nodes after D and after (A, d)
    normal = horse.to_normal()
    assert normal.strategies == [["A", "D"], ["a", "d"], ["L", "R"]]
    # payoffs of every pure profile: (A,a,.) -> (1,1,1), (A,d,L) -> (4,4,0), (A,d,R) -> (0,0,1), (D,.,L) -> (3,3,2), (D,.,R) -> 0
    expected = {(0, 0, 0): (1, 1, 1), (0, 0, 1): (1, 1, 1), (0, 1, 0): (4, 4, 0), (0, 1, 1): (0, 0, 1),
                (1, 0, 0): (3, 3, 2), (1, 1, 0): (3, 3, 2), (1, 0, 1): (0, 0, 0), (1, 1, 1): (0, 0, 0)}
    for cell, pay in expected.items():
        assert tuple(normal.exact[(slice(None), *cell)]) == pay


def test_centipede_reduced_strategies_and_backward_induction():
    game = tree("centipede.efg")
    assert game.is_perfect_information
    normal = game.to_normal()
    # a player who takes at its first node never reaches its second: one reduced strategy, not two
    assert normal.strategies == [["Take/*", "Pass/Take", "Pass/Pass"]] * 2
    assert tuple(normal.exact[:, 1, 1]) == (F(8, 5), F(2, 5))  # pass, pass, take at the third node: (1.60, 0.40)
    assert tuple(normal.exact[:, 2, 2]) == (F(32, 5), F(8, 5))  # everyone passes: (6.40, 1.60)
    [spe] = game.backward_induction()
    assert list(spe.choices.values()) == [0, 0, 0, 0]  # take at every node
    assert spe.payoffs == (F(2, 5), F(1, 10))


def test_long_centipede_has_one_reduced_strategy_per_stopping_node():
    # 40 moves: 2^20 pure strategies a player, but only 21 reduced ones (take at move 1, 3, ..., 39, or never)
    node = Node(outcome=Outcome((42, 40)))
    for move in reversed(range(40)):
        mover = move % 2
        stop = Node(outcome=Outcome((move + 2, move) if mover == 0 else (move, move + 2)))
        node = Node(InfoSet(mover, move // 2 + 1, ("Take", "Pass")), (stop, node))
    game = ExtensiveGame(["one", "two"], node)
    normal = game.to_normal()
    assert normal.shape == (21, 21)
    assert normal.strategies[0][0] == "Take" + "/*" * 19 and normal.strategies[0][-1] == "/".join(["Pass"] * 20)
    assert tuple(normal.exact[:, -1, -1]) == (42, 40)  # nobody takes
    [spe] = game.backward_induction()
    assert spe.payoffs == (2, 0)  # the first mover takes at once


def test_entry_deterrence_has_one_subgame_perfect_equilibrium():
    game = tree("entry_deterrence.efg")
    [spe] = game.backward_induction()
    assert spe.choices == {(0, 1): 1, (1, 1): 1}  # In, Accommodate
    assert spe.payoffs == (1, 1)


def test_ties_give_every_subgame_perfect_equilibrium():
    game = tree("tie_breaks.efg")
    found = game.backward_induction()
    # player 2 is indifferent between a and b; player 1's best reply differs, so two SPE, in the order of 2's actions
    assert [(s.choices, s.payoffs) for s in found] == [({(0, 1): 1, (1, 1): 0}, (F(3, 2), 1)), ({(0, 1): 0, (1, 1): 1}, (2, 0))]


def test_chance_nodes_in_backward_induction_and_expected_payoffs():
    game = tree("gamble.efg")
    [spe] = game.backward_induction()
    assert spe.choices == {(0, 1): 1} and spe.payoffs == (F(4, 3),)  # the gamble is worth 4/3 > 1
    assert game.expected_payoffs_exact({(0, 1): [F(1, 2), F(1, 2)]}) == [F(7, 6)]


def test_one_card_poker_value_with_behaviour_strategies():
    poker = tree("one_card_poker.efg")
    # Myerson (1991): raise with red; with black raise 1/3 of the time; player 2 meets 2/3 of the time; value 1/3
    behaviour = {(0, 1): [F(1), F(0)], (0, 2): [F(1, 3), F(2, 3)], (1, 1): [F(2, 3), F(1, 3)]}
    assert poker.expected_payoffs_exact(behaviour) == [F(1, 3), F(-1, 3)]
    np.testing.assert_allclose(poker.expected_payoffs({k: [float(p) for p in v] for k, v in behaviour.items()}), [1 / 3, -1 / 3])
    normal = poker.to_normal()
    assert normal.strategies[0] == ["Raise/Raise", "Raise/Fold", "Fold/Raise", "Fold/Fold"]
    assert normal.payoff_exact([[F(0), F(1), F(0), F(0)], [F(1), F(0)]]) == [F(1, 2), F(-1, 2)]  # 1/2 * 2 + 1/2 * (-1)
    with pytest.raises(UsageError, match="behaviour"):
        poker.expected_payoffs({(0, 1): [1.0, 0.0]})


def test_outcomes_on_the_path_add_up():
    choose = InfoSet(0, 1, ("x", "y"))
    root = Node(choose, (Node(outcome=Outcome((1, 2))), Node(outcome=Outcome((F(1, 2), 0)))), outcome=Outcome((10, 20)))
    normal = ExtensiveGame(["one", "two"], root).to_normal()
    assert normal.strategies == [["x", "y"], ["(no move)"]]
    assert normal.exact[0, :, 0].tolist() == [11, F(21, 2)]  # 10 at the root, then 1 or 1/2
    assert normal.exact[1, :, 0].tolist() == [22, 20]


@pytest.mark.parametrize(("root", "message"), [
    (Node(InfoSet(0, 1, ("x", "y")), (Node(),)), "1 children for 2 actions"),
    (Node(InfoSet(CHANCE, 1, ("h", "t"), probs=(F(1, 2), F(1, 3))), (Node(), Node())), "sum to 1"),
    (Node(InfoSet(0, 1, ("x", "y")), (Node(InfoSet(0, 1, ("x", "z")), (Node(), Node())), Node())), "declared differently"),
    (Node(InfoSet(3, 1, ("x",)), (Node(),)), "player index 3"),
    (Node(InfoSet(0, 1, ("x",)), (Node(outcome=Outcome((1, 2, 3))),)), "3 payoffs, expected 2"),
])
def test_malformed_trees_are_refused(root, message):
    with pytest.raises(UsageError, match=None) as err:
        ExtensiveGame(["one", "two"], root)
    assert message in str(err.value)


def test_a_normal_form_too_large_to_tabulate_is_refused():
    # chance picks one of ten situations for each player, who sees which: 2^10 reduced strategies each, 2^20 profiles
    def side(player: int) -> Node:
        moves = tuple(Node(InfoSet(player, k + 1, ("x", "y")), (Node(), Node())) for k in range(10))
        return Node(InfoSet(CHANCE, player + 2, tuple(map(str, range(10))), probs=(F(1, 10),) * 10), moves)
    game = ExtensiveGame(["one", "two"], Node(InfoSet(CHANCE, 1, ("a", "b"), probs=(F(1, 2), F(1, 2))), (side(0), side(1))))
    assert len(game.reduced_strategies(0)) == 1024
    with pytest.raises(UsageError, match="1,048,576 profiles"):
        game.to_normal()


def test_backward_induction_needs_perfect_information():
    with pytest.raises(UsageError, match="perfect information"):
        tree("selten_horse.efg").backward_induction()
