"""The characteristic function of a microworld game, from simulation: what a coalition saves by trading.

A coalition S of players trades among itself under the game's mechanism while everyone else
settles at tariff (their devices run as their strategies say; only their market access goes). Its
value is what its members save against nobody trading at all, the same strategies played:
v(S) = sum over S's participants of (cost with no market - cost with S's market). So v(empty) = 0,
a lone player's value is what it saves trading with itself (0 unless it is a coalition of
participants), and the grand coalition's value is the market's whole gain. Each coalition is one
run (per chance outcome), cached like every other run of the game.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from plurigrid.games.coalitions import CoalitionReport, coalition_report
from plurigrid.games.microgame import MicroworldGame

EXACT_COALITION_PLAYERS = 12  # beyond this, Shapley is sampled and coalitions are simulated as the samples ask


def coalition_value(game: MicroworldGame, profile: Sequence[int], members: frozenset[str]) -> float:
    """v(members): the members' expected saving from trading among themselves, against nobody trading (EUR)."""
    if not members:
        return 0.0
    index = tuple(i for i, p in enumerate(game.players) if p.id in members)
    saving = 0.0
    for (alone, prob), (together, _) in zip(game.plays(profile, ()), game.plays(profile, index)):
        participants = [m for i in index for m in game.players[i].members]
        saving += prob * float(game.costs(alone).cost_eur[participants].sum() - game.costs(together).cost_eur[participants].sum())
    return saving


def coalition_analysis(game: MicroworldGame, profile: Sequence[int], *, samples: int = 1000, seed: int = 0,
                       workers: int = 1) -> CoalitionReport:
    """Every coalition's value (all of them up to EXACT_COALITION_PLAYERS players, simulated `workers` at a time),
    the Shapley value, the core and the nucleolus."""
    profile = tuple(profile)
    n = len(game.players)
    if n <= EXACT_COALITION_PLAYERS:
        markets = [tuple(c) for r in range(n + 1) for c in itertools.combinations(range(n), r)]
        game.prefetch([profile], workers, markets)
    return coalition_report(game.player_ids, lambda s: coalition_value(game, profile, s), samples=samples, seed=seed)
