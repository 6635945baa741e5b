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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cached_property

import numpy as np

from plurigrid.errors import UsageError
from plurigrid.games.normal import NormalFormGame

CHANCE = -1  # the player index of chance events
MAX_STRATEGIES = 100_000  # reduced strategies of one player beyond which to_normal refuses (the table would not fit)
Choice = tuple[int, int, int]  # (player, index of the information set in the player's list, action index)


@dataclass(frozen=True)
class InfoSet:
    """An information set of `player` (0-based) or, with player CHANCE, a chance event with action probabilities."""

    player: int
    number: int  # unique among the player's information sets (among the chance events for chance), as in .efg files
    actions: tuple[str, ...]
    name: str = ""
    probs: tuple[Fraction, ...] | None = None  # chance events only


@dataclass(frozen=True)
class Outcome:
    """Payoffs (one per player) collected when play reaches the node that carries the outcome."""

    payoffs: tuple[Fraction, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "payoffs", tuple(as_fraction(v, "outcome payoff") for v in self.payoffs))


@dataclass(frozen=True)
class Node:
    """A decision or chance node (with an information set and one child per action) or a terminal node (neither)."""

    infoset: InfoSet | None = None
    children: tuple[Node, ...] = ()
    outcome: Outcome | None = None
    name: str = ""


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
        object.__setattr__(self, "_index", self._validated_infosets())

    @cached_property
    def nodes(self) -> list[Node]:
        """Every node in prefix order (a node, then its children's subtrees from first to last)."""
        order, stack = [], [self.root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(reversed(node.children))
        return order

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
        """Index in `reduced_strategies(player)` of the strategy that plays `plan` (an action per information set)."""
        return self.reduced_strategies(player).index(self._reduce(player, tuple(plan)))

    def to_normal(self) -> NormalFormGame:
        """The reduced normal form: exact expected payoffs (over chance) of every profile of reduced strategies.

        Strategy labels join the action names per information set with '/', '*' where the set is ruled out."""
        n = len(self.players)
        strategies = [self.reduced_strategies(i) for i in range(n)]
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
        results = _induct(self.root, len(self.players), limit)
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
    def _own_paths(self) -> list[list[tuple[int, tuple[tuple[int, int], ...]]]]:
        """Per player: for each of its decision nodes, (information-set index, the player's own earlier choices)."""
        paths: list[list[tuple[int, tuple[tuple[int, int], ...]]]] = [[] for _ in self.players]
        stack: list[tuple[Node, tuple[tuple[int, int, int], ...]]] = [(self.root, ())]
        while stack:
            node, history = stack.pop()
            info = node.infoset
            if info is None:
                continue
            if info.player != CHANCE:
                h = self._index[(info.player, info.number)]
                paths[info.player].append((h, tuple((hh, a) for p, hh, a in history if p == info.player)))
            for a, child in enumerate(node.children):
                step = () if info.player == CHANCE else ((info.player, self._index[(info.player, info.number)], a),)
                stack.append((child, history + step))
        return paths

    @cached_property
    def _reduced(self) -> list[list[tuple[int | None, ...]]]:
        return [self._plans(i) for i in range(len(self.players))]

    def _plans(self, player: int) -> list[tuple[int | None, ...]]:
        """Post-order over the tree: the player's partial plans (information-set index -> action) that play out in each
        subtree; at its own node, an action and a plan of that child; elsewhere, a plan of every child, merged."""
        done: dict[int, list[dict[int, int]]] = {}
        stack: list[tuple[Node, bool]] = [(self.root, False)]
        while stack:
            node, expanded = stack.pop()
            if not expanded and node.children:
                stack.append((node, True))
                stack.extend((child, False) for child in node.children)
                continue
            info = node.infoset
            subs = [done[id(child)] for child in node.children]
            plans: list[dict[int, int]] = [{}]
            if info is not None and info.player == player:
                h = self._index[(player, info.number)]
                plans = [{**p, h: a} for a, sub in enumerate(subs) for p in sub if p.get(h, a) == a]
            else:
                for sub in subs:
                    plans = [{**p, **q} for p in plans for q in sub if all(p.get(k, v) == v for k, v in q.items())]
            plans = list({tuple(sorted(p.items())): p for p in plans}.values())
            if len(plans) > MAX_STRATEGIES:
                raise UsageError(f"player {self.players[player]!r} has more than {MAX_STRATEGIES} reduced strategies; "
                                 "too many for the normal form")
            done[id(node)] = plans
        count = len(self.infosets[player])
        found = {tuple(p.get(h) for h in range(count)) for p in done[id(self.root)]}
        return sorted(found, key=lambda s: tuple(0 if a is None else a for a in s))

    def _reduce(self, player: int, plan: tuple[int, ...]) -> tuple[int | None, ...]:
        relevant = [False] * len(plan)
        for h, history in self._own_paths[player]:
            if not relevant[h] and all(plan[hh] == a for hh, a in history):
                relevant[h] = True
        return tuple(a if r else None for a, r in zip(plan, relevant))

    def _label(self, player: int, strategy: tuple[int | None, ...]) -> str:
        infos = self.infosets[player]
        if not infos:
            return "(no move)"
        return "/".join("*" if a is None else info.actions[a] for info, a in zip(infos, strategy))

    def _validated_infosets(self) -> dict[tuple[int, int], int]:
        """Checks the tree; returns each information set's index within its player's (or chance's) list."""
        n = len(self.players)
        seen: dict[tuple[int, int], InfoSet] = {}
        index: dict[tuple[int, int], int] = {}
        per_player = [0] * (n + 1)
        for k, node in enumerate(_prefix(self.root)):
            where = f"node {k + 1} in prefix order" + (f" ({node.name!r})" if node.name else "")
            if node.outcome is not None and len(node.outcome.payoffs) != n:
                raise UsageError(f"{where}: outcome has {len(node.outcome.payoffs)} payoffs, expected {n} (one per player)")
            info = node.infoset
            if info is None:
                if node.children:
                    raise UsageError(f"{where}: a node without an information set must be terminal (no children)")
                continue
            _check_infoset(info, n, where)
            if len(node.children) != len(info.actions):
                raise UsageError(f"{where}: {len(node.children)} children for {len(info.actions)} actions")
            key = (info.player, info.number)
            if key not in seen:
                seen[key] = info
                index[key] = per_player[info.player]
                per_player[info.player] += 1
            elif seen[key] != info:
                raise UsageError(f"{where}: information set {info.number} of {_owner(info, self.players)} is declared "
                                 "differently at another node (name, actions or probabilities)")
        return index


def as_fraction(value: object, what: str) -> Fraction:
    """An exact number from an int, Fraction, Decimal or float (a float as the decimal it prints as: 0.1 -> 1/10)."""
    if isinstance(value, bool | int | Fraction | Decimal):
        return Fraction(value)
    if isinstance(value, float) and np.isfinite(value):
        return Fraction(repr(value))
    raise UsageError(f"{what}: expected a finite number, got {value!r}")


def _prefix(root: Node) -> Iterator[Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _check_infoset(info: InfoSet, n: int, where: str) -> None:
    if info.player != CHANCE and not 0 <= info.player < n:
        raise UsageError(f"{where}: player index {info.player}, expected 0 to {n - 1} or CHANCE")
    if not info.actions:
        raise UsageError(f"{where}: an information set needs at least one action")
    if info.player == CHANCE:
        if info.probs is None or len(info.probs) != len(info.actions):
            raise UsageError(f"{where}: a chance event needs one probability per action")
        if any(p < 0 for p in info.probs) or sum(info.probs) != 1:
            raise UsageError(f"{where}: chance probabilities must be >= 0 and sum to 1, got "
                             f"{', '.join(str(p) for p in info.probs)}")
    elif info.probs is not None:
        raise UsageError(f"{where}: only chance events carry probabilities")


def _owner(info: InfoSet, players: list[str]) -> str:
    return "chance" if info.player == CHANCE else f"player {players[info.player]!r}"


Plans = list[tuple[tuple[tuple[tuple[int, int], int], ...], tuple[Fraction, ...]]]


def _induct(root: Node, n: int, limit: int) -> Plans:
    """Post-order backward induction: for each node, every (plan of its subtree, payoff vector) an SPE can give."""
    done: dict[int, Plans] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if not expanded and node.children:
            stack.append((node, True))
            stack.extend((child, False) for child in node.children)
            continue
        here = node.outcome.payoffs if node.outcome is not None else (Fraction(0),) * n
        info = node.infoset
        if info is None:
            done[id(node)] = [((), here)]
            continue
        options = [done[id(child)] for child in node.children]
        if np.prod([len(o) for o in options], dtype=float) > limit:  # each combination below gives at least one
            raise UsageError(f"more than {limit} subgame-perfect equilibria (ties at many nodes); not enumerated")
        found: Plans = []
        for combo in itertools.product(*options):
            plan = tuple(step for sub, _ in combo for step in sub)
            if info.player == CHANCE:
                assert info.probs is not None
                value = tuple(sum((p * v[i] for p, (_, v) in zip(info.probs, combo)), Fraction(0)) for i in range(n))
                found.append((plan, value))
                continue
            best = max(v[info.player] for _, v in combo)
            found.extend(((*plan, ((info.player, info.number), a)), v) for a, (_, v) in enumerate(combo) if v[info.player] == best)
        if len(found) > limit:
            raise UsageError(f"more than {limit} subgame-perfect equilibria (ties at many nodes); not enumerated")
        done[id(node)] = [(plan, tuple(a + b for a, b in zip(here, value))) for plan, value in found]
    return done[id(root)]
