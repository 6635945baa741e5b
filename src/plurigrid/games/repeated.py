"""Learning in a microworld game: players as learners that play it round after round.

Each round every player's learner (`games.learning.make_learner`: fictitious play, replicator,
Q-learning or active inference) picks a plan, the profile is played (simulated once, then from
the cache), and each learner is told only its own payoff: the learner is that player's strategy.
Convergence is reported, not assumed: the last rounds' profile is checked with the equilibrium
predicate (`analysis.deviations`), and the policies' movement over the last tenth of the rounds
is given. The same game's normal form can also be handed to the full-information dynamics
(`learning.learn`) once every profile has been simulated (`analysis.payoff_tensor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plurigrid.games.analysis import ProfileReport, deviations
from plurigrid.games.learning import make_learner
from plurigrid.games.microgame import MicroworldGame

EXPLORE = 0.2  # each learner's random actions after its first sweep, decaying: the others learn too (learning.make_learner)


@dataclass
class RepeatedPlay:
    kind: str
    rounds: int
    history: np.ndarray  # (rounds, players) plan index played
    payoffs_eur: np.ndarray  # (rounds, players)
    policies: list[np.ndarray]  # final mixed strategy per player
    movement: float | None  # largest change of any player's policy over the last tenth of the rounds (L1); None: one round
    final: ProfileReport  # the most played profile of the last tenth of the rounds, with its deviations
    simulations: int

    @property
    def converged(self) -> bool:
        """Policies settled (moved less than 0.05 over the last tenth) on a profile that is an equilibrium."""
        return self.movement is not None and self.movement < 0.05 and self.final.equilibrium

    def to_json(self, game: MicroworldGame) -> dict:
        movement = None if self.movement is None else round(self.movement, 6)
        return {"dynamics": self.kind, "rounds": self.rounds, "converged": self.converged, "movement": movement,
                "simulations": self.simulations,
                "policies": {p: dict(zip(game.plan_labels(i), np.round(self.policies[i], 6).tolist()))
                             for i, p in enumerate(game.player_ids)},
                "final": self.final.to_json(game.player_ids),
                "mean_payoffs_eur": dict(zip(game.player_ids, np.round(self.payoffs_eur.mean(axis=0), 6).tolist()))}


def repeated_play(game: MicroworldGame, kind: str, rounds: int = 200, seed: int = 0, workers: int = 1) -> RepeatedPlay:
    """Plays the game `rounds` times with a `kind` learner for every player (seeded per player)."""
    before = game.cache.misses
    learners = [make_learner(kind, n, seed * 1_000_003 + i, explore=EXPLORE) for i, n in enumerate(game.shape)]
    history = np.zeros((rounds, len(learners)), dtype=np.int64)
    paid = np.zeros((rounds, len(learners)))
    tail = max(1, rounds // 10)
    snapshot: list[np.ndarray] = []
    for r in range(rounds):
        profile = tuple(learner.act() for learner in learners)
        payoffs = game.payoffs(profile)
        for i, learner in enumerate(learners):
            learner.update(profile[i], float(payoffs[i]))
        history[r], paid[r] = profile, payoffs
        if r == rounds - tail - 1:
            snapshot = [learner.policy().copy() for learner in learners]
    policies = [learner.policy() for learner in learners]
    movement = max(float(np.abs(p - q).sum()) for p, q in zip(policies, snapshot)) if snapshot else None
    last = [tuple(int(x) for x in row) for row in history[-tail:]]
    modal = max(sorted(set(last)), key=last.count)
    final = deviations(game, modal, workers)
    return RepeatedPlay(kind, rounds, history, paid, policies, movement, final, game.cache.misses - before)
