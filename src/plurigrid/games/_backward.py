"""Backward induction on a perfect-information tree: every pure subgame-perfect equilibrium, ties included."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

from plurigrid.errors import UsageError
from plurigrid.games._tree import CHANCE, Node, post_order

# a plan: ((player, information-set number), action index) at each decision node of a subtree; with its payoffs
Plans = list[tuple[tuple[tuple[tuple[int, int], int], ...], tuple[Fraction, ...]]]


def induct(root: Node, n: int, limit: int) -> Plans:
    """For the root, every (plan, payoff vector) of a subgame-perfect equilibrium: at each decision node the mover
    takes each action that maximises its payoff given the plans below (one equilibrium per tie), chance averages, and
    outcomes on the way add up. Order: the children's plans in product order, then the mover's actions in order.
    UsageError past `limit` equilibria at any node."""
    done: dict[int, Plans] = {}
    for node in post_order(root):
        here = node.outcome.payoffs if node.outcome is not None else (Fraction(0),) * n
        info = node.infoset
        if info is None:
            done[id(node)] = [((), here)]
            continue
        options = [done[id(child)] for child in node.children]
        if math.prod(len(o) for o in options) > limit:  # each combination below gives at least one
            raise UsageError(f"more than {limit} subgame-perfect equilibria (ties at many nodes); not enumerated")
        found: Plans = []
        for combo in itertools.product(*options):
            plan = tuple(step for sub, _ in combo for step in sub)
            if info.player == CHANCE:
                assert info.probs is not None  # a checked tree's chance events have them
                found.append((plan, tuple(sum((p * v[i] for p, (_, v) in zip(info.probs, combo)), Fraction(0)) for i in range(n))))
                continue
            best = max(v[info.player] for _, v in combo)
            found.extend(((*plan, ((info.player, info.number), a)), v) for a, (_, v) in enumerate(combo) if v[info.player] == best)
        if len(found) > limit:
            raise UsageError(f"more than {limit} subgame-perfect equilibria (ties at many nodes); not enumerated")
        done[id(node)] = [(plan, tuple(a + b for a, b in zip(here, value))) for plan, value in found]
    return done[id(root)]
