"""Finite games in extensive form: a tree of decision, chance and terminal nodes, with information sets.

A decision node belongs to an information set of its player (the nodes the player cannot tell apart: the same
actions at each); a chance node to a chance event, whose actions have exact probabilities. An outcome (a payoff
vector) may sit on any node; a play's payoff is the sum of the outcomes on its path (Gambit's convention, which lets
stage games add up). Payoffs and probabilities are exact Fractions.

Why: the extensive form is how sequential situations are written down (who knows what when); solvers work on its
reduced normal form (`to_normal`), and perfect-information trees also by backward induction (`backward_induction`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import numpy as np

from plurigrid.errors import UsageError
from plurigrid.games._backward import induct
from plurigrid.games._reduced import reduced_plans
from plurigrid.games._tree import CHANCE, InfoSet, Node, Outcome, as_fraction, checked_index, prefix
from plurigrid.games.normal import NormalFormGame

__all__ = ["CHANCE", "ExtensiveGame", "InfoSet", "Leaf", "Node", "Outcome", "SubgamePerfect", "as_fraction"]

MAX_STRATEGIES = 100_000  # reduced strategies of one player beyond which to_normal refuses
MAX_PROFILES = 1_000_000  # cells of the normal form beyond which to_normal refuses (about 10 s of work at this size)
Choice = tuple[int, int, int]  # (player, index of the information set in the player's list, action index)


@dataclass(frozen=True)
class Leaf:
    """A terminal node with what reaching it takes: chance's probability, and the players' choices on the way."""

    node: Node
    prob: Fraction
    payoffs: tuple[Fraction, ...]  # the sum of the outcomes on the path
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class SubgamePerfect:
    """A pure subgame-perfect equilibrium: an action index at each information set, and the payoffs it yields."""

    choices: dict[tuple[int, int], int]  # (player, information-set number) -> action index, in prefix order of the tree
    payoffs: tuple[Fraction, ...]


@dataclass(frozen=True, eq=False)
class ExtensiveGame:
    """A game tree; validated when built (UsageError naming the node on a malformed tree)."""

    players: list[str]
    root: Node
    title: str = ""
    comment: str = ""
    _index: dict[tuple[int, int], int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.players:
            raise UsageError("players: expected at least one player")
        object.__setattr__(self, "_index", checked_index(self.players, self.root))

    @cached_property
    def nodes(self) -> list[Node]:
        """Every node in prefix order (a node, then its children's subtrees from first to last)."""
        return list(prefix(self.root))

    @cached_property
    def infosets(self) -> list[list[InfoSet]]:
        """Each player's information sets in order of first appearance in the tree."""
        found: list[list[InfoSet]] = [[] for _ in self.players]
        for node in self.nodes:
            info = node.infoset
            if info is not None and info.player != CHANCE and self._index[(info.player, info.number)] == len(found[info.player]):
                found[info.player].append(info)
        return found

    @cached_property
    def leaves(self) -> list[Leaf]:
        """Every terminal node with its path's chance probability, summed payoffs and the choices leading to it."""
        zero = tuple(Fraction(0) for _ in self.players)
        out = []
        stack: list[tuple[Node, Fraction, tuple[Fraction, ...], tuple[Choice, ...]]] = [(self.root, Fraction(1), zero, ())]
        while stack:
            node, prob, pay, choices = stack.pop()
            if node.outcome is not None:
                pay = tuple(a + b for a, b in zip(pay, node.outcome.payoffs))
            info = node.infoset
            if info is None:
                out.append(Leaf(node, prob, pay, choices))
                continue
            for a in reversed(range(len(node.children))):
                if info.player == CHANCE:
                    assert info.probs is not None  # validated
                    stack.append((node.children[a], prob * info.probs[a], pay, choices))
                else:
                    step = (info.player, self._index[(info.player, info.number)], a)
                    stack.append((node.children[a], prob, pay, (*choices, step)))
        return out

    @property
    def is_perfect_information(self) -> bool:
        """True when every information set of a player holds exactly one node."""
        counts: dict[tuple[int, int], int] = {}
        for node in self.nodes:
            if node.infoset is not None and node.infoset.player != CHANCE:
                key = (node.infoset.player, node.infoset.number)
                counts[key] = counts.get(key, 0) + 1
        return all(c == 1 for c in counts.values())

    def reduced_strategies(self, player: int) -> list[tuple[int | None, ...]]:
        """The player's pure strategies of the reduced normal form: an action index per information set (in
        `infosets[player]` order), None where the player's own earlier choices rule the set out (strategies that
        differ only there are one strategy). Order: lexicographic in the action indices, None as 0."""
        return list(self._reduced[player])

    def strategy_index(self, player: int, plan: Sequence[int]) -> int:
        """Index in `reduced_strategies(player)` of the strategy that plays `plan` (an action per information set):
        the one reduced strategy that agrees with it wherever it names an action."""
        return next(k for k, s in enumerate(self._reduced[player]) if all(a is None or a == b for a, b in zip(s, plan)))

    def to_normal(self) -> NormalFormGame:
        """The reduced normal form: exact expected payoffs (over chance) of every profile of reduced strategies.

        Strategy labels join the action names per information set with '/', '*' where the set is ruled out."""
        n = len(self.players)
        strategies = [self.reduced_strategies(i) for i in range(n)]
        cells = math.prod(len(s) for s in strategies)
        if cells > MAX_PROFILES:
            raise UsageError(f"the reduced normal form has {cells:,} profiles ({' x '.join(str(len(s)) for s in strategies)}); "
                             f"more than the {MAX_PROFILES:,} that are tabulated")
        leaves = self.leaves
        consistent = [np.array([[all(s[h] == a for p, h, a in leaf.choices if p == i) for leaf in leaves] for s in strats],
                               dtype=bool).reshape(len(strats), len(leaves)) for i, strats in enumerate(strategies)]
        weights = [tuple(leaf.prob * v for v in leaf.payoffs) for leaf in leaves]
        table = np.empty((n, *map(len, strategies)), dtype=object)
        for profile in itertools.product(*(range(len(s)) for s in strategies)):
            reached = np.logical_and.reduce([consistent[i][s] for i, s in enumerate(profile)])
            for i in range(n):
                table[(i, *profile)] = sum((weights[k][i] for k in np.flatnonzero(reached)), Fraction(0))
        labels = [[self._label(i, s) for s in strats] for i, strats in enumerate(strategies)]
        return NormalFormGame.from_payoffs(table, list(self.players), labels, title=self.title, comment=self.comment)

    def expected_payoffs(self, behaviour: Mapping[tuple[int, int], Sequence[float]]) -> np.ndarray:
        """Expected payoffs (float) when each player randomises at each information set as `behaviour` says:
        (player, information-set number) -> a probability per action."""
        return np.array([float(v) for v in self._expected(behaviour)])

    def expected_payoffs_exact(self, behaviour: Mapping[tuple[int, int], Sequence[Fraction]]) -> list[Fraction]:
        """`expected_payoffs` in exact arithmetic (the probabilities must be Fractions or ints)."""
        return [Fraction(v) for v in self._expected(behaviour)]

    def backward_induction(self, limit: int = 10_000) -> list[SubgamePerfect]:
        """Every pure subgame-perfect equilibrium of a perfect-information tree (chance nodes allowed).

        Each player picks, at each node, an action maximising its payoff given the choices below; where several
        tie, each gives its own equilibrium, so all pure SPE are returned (ordered by the action indices, first
        node first). UsageError if the tree is not of perfect information or more than `limit` equilibria arise."""
        if not self.is_perfect_information:
            raise UsageError("backward induction needs perfect information: an information set here holds several nodes")
        order = {(info.player, info.number): k for k, node in enumerate(self.nodes) if (info := node.infoset) is not None}
        results = induct(self.root, len(self.players), limit)
        return [SubgamePerfect(dict(sorted(plan, key=lambda kv: order[kv[0]])), value) for plan, value in results]

    def _expected(self, behaviour: Mapping[tuple[int, int], Sequence[float | Fraction]]) -> list[float | Fraction]:
        totals: list[float | Fraction] = [Fraction(0)] * len(self.players)
        for leaf in self.leaves:
            reach: float | Fraction = leaf.prob
            for p, h, a in leaf.choices:
                key = (p, self.infosets[p][h].number)
                if key not in behaviour or len(behaviour[key]) != len(self.infosets[p][h].actions):
                    raise UsageError(f"behaviour[{key}]: expected a probability per action of player {self.players[p]!r}'s "
                                     f"information set {key[1]}")
                reach = reach * behaviour[key][a]
            totals = [t + reach * v for t, v in zip(totals, leaf.payoffs)]
        return totals

    @cached_property
    def _reduced(self) -> list[list[tuple[int | None, ...]]]:
        return [reduced_plans(self.root, i, self._index, len(self.infosets[i]), MAX_STRATEGIES, name)
                for i, name in enumerate(self.players)]

    def _label(self, player: int, strategy: tuple[int | None, ...]) -> str:
        infos = self.infosets[player]
        if not infos:
            return "(no move)"
        return "/".join("*" if a is None else info.actions[a] for info, a in zip(infos, strategy))
