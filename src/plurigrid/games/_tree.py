"""The nodes of a game tree (decision, chance and terminal), its information sets and outcomes, walks over it, and
the checks a tree must pass. Public through `plurigrid.games.extensive`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from plurigrid.errors import UsageError

CHANCE = -1  # the player index of chance events


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


def as_fraction(value: object, what: str) -> Fraction:
    """An exact number from an int, Fraction, Decimal or float (a float as the decimal it prints as: 0.1 -> 1/10)."""
    if isinstance(value, bool | int | Fraction | Decimal):
        return Fraction(value)
    if isinstance(value, float) and np.isfinite(value):
        return Fraction(repr(value))
    raise UsageError(f"{what}: expected a finite number, got {value!r}")


def prefix(root: Node) -> Iterator[Node]:
    """Every node in prefix order: a node, then its children's subtrees from first to last (no recursion)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def post_order(root: Node) -> Iterator[Node]:
    """Every node object after all of its children (no recursion), for computations that combine the children's
    results: a node object the tree holds in several places (a shared subtree) comes once, its result being the
    same in each."""
    stack: list[tuple[Node, bool]] = [(root, False)]
    done: set[int] = set()
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded or not node.children:
            done.add(id(node))
            yield node
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.children))


def checked_index(players: list[str], root: Node) -> dict[tuple[int, int], int]:
    """Checks the tree (UsageError naming the node); returns, for each (player, number) of an information set or chance
    event, its index within its owner's sets in order of first appearance."""
    n = len(players)
    seen: dict[tuple[int, int], InfoSet] = {}
    index: dict[tuple[int, int], int] = {}
    per_owner = [0] * (n + 1)  # chance's count last (index -1)
    for k, node in enumerate(prefix(root)):
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
            index[key] = per_owner[info.player]
            per_owner[info.player] += 1
        elif seen[key] != info:
            owner = "chance" if info.player == CHANCE else f"player {players[info.player]!r}"
            raise UsageError(f"{where}: information set {info.number} of {owner} is declared differently at another node "
                             "(name, actions or probabilities)")
    return index


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
