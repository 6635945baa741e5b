"""A player's pure strategies in the reduced normal form, found over the tree rather than by filtering every full one.

A reduced strategy names an action only at the information sets the player's own choices leave reachable. Walking
the tree from the leaves up, each subtree has a set of partial plans (information-set index -> action) of the
player: at the player's own node, an action plus a plan of that child only (the other children are cut off); at
anyone else's node, a plan of every child, merged (they must agree where they share an information set). The
root's plans are the reduced strategies: a 40-move centipede gives 21 a player where full strategies number 2^20.
"""

from __future__ import annotations

from collections import defaultdict

from plurigrid.errors import UsageError
from plurigrid.games._tree import Node, post_order


def reduced_plans(root: Node, player: int, index: dict[tuple[int, int], int], count: int, limit: int,
                  name: str) -> list[tuple[int | None, ...]]:
    """The player's reduced strategies as an action index per information set (index order; None where ruled out),
    sorted lexicographically with None as 0. UsageError past `limit` plans (`name` says whose)."""
    done: dict[int, list[dict[int, int]]] = {}
    for node in post_order(root):
        info = node.infoset
        subs = [done[id(child)] for child in node.children]
        plans: list[dict[int, int]] = [{}]
        if info is not None and info.player == player:
            h = index[(player, info.number)]
            plans = [{**p, h: a} for a, sub in enumerate(subs) for p in sub if p.get(h, a) == a]
        else:
            for sub in subs:
                plans = _merged(plans, sub)
        plans = list({tuple(sorted(p.items())): p for p in plans}.values())
        if len(plans) > limit:
            raise UsageError(f"player {name!r} has more than {limit} reduced strategies; too many for the normal form")
        done[id(node)] = plans
    found = {tuple(p.get(h) for h in range(count)) for p in done[id(root)]}
    return sorted(found, key=lambda s: tuple(0 if a is None else a for a in s))


def _merged(left: list[dict[int, int]], right: list[dict[int, int]]) -> list[dict[int, int]]:
    """Every union of a plan from `left` and one from `right` that agree on the information sets both name.

    The right plans are indexed by their action at each shared set (a plan without that set fits any action), so a
    subtree repeated under every action of another player (a simultaneous move written as a tree) merges in time
    proportional to the plans that fit, not to the product of the two lists."""
    shared = set().union(*left) & set().union(*right)
    fitting: dict[tuple[int, int], set[int]] = defaultdict(set)  # (set, action) -> right plans naming that action
    unnamed: dict[int, set[int]] = defaultdict(set)  # set -> right plans that do not name it
    for j, q in enumerate(right):
        for h in shared:
            (fitting[(h, q[h])] if h in q else unnamed[h]).add(j)
    out: list[dict[int, int]] = []
    for p in left:
        allowed: set[int] | None = None
        for h in shared & p.keys():
            here = fitting.get((h, p[h]), set()) | unnamed[h]
            allowed = here if allowed is None else allowed & here
        out.extend({**p, **right[j]} for j in (range(len(right)) if allowed is None else sorted(allowed)))
    return out
