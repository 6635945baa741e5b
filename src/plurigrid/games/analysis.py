"""The equilibrium predicate of a microworld game and what follows from it.

- `deviations`: every profitable unilateral deviation from a profile, with its gain (the open
  game's equilibrium predicate is that there is none beyond the game's tolerance);
- `pure_equilibria`: by enumerating every profile (each run simulated once, in parallel), or by
  best-response dynamics from a start profile when the profiles are too many (which finds one
  equilibrium if the dynamics reach one, and says so: others may exist);
- `subgame_perfect`: backward induction over stages (an investment stage before a market stage);
- `price_of_anarchy`: the community's cost at the worst and best equilibria against the social
  optimum (the `opf` mechanism with everyone truthful, or the cheapest profile if one is cheaper);
- `counterfactuals`: for each player, what each other choice would have cost it, the others fixed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from plurigrid.games import equilibria
from plurigrid.games.microgame import MicroworldGame
from plurigrid.games.normal import NormalFormGame

ENUMERATE_LIMIT = 100_000  # profiles: beyond this, equilibria are sought by best-response dynamics


@dataclass(frozen=True)
class Deviation:
    player: str
    from_plan: str
    to_plan: str
    gain_eur: float

    def to_json(self) -> dict:
        return {"player": self.player, "from": self.from_plan, "to": self.to_plan, "gain_eur": round(self.gain_eur, 6)}


@dataclass
class ProfileReport:
    """A profile, what it pays each player, and every profitable unilateral deviation from it."""

    profile: tuple[int, ...]
    labels: list[str]
    payoffs_eur: np.ndarray
    community_cost_eur: float
    deviations: list[Deviation]

    @property
    def equilibrium(self) -> bool:
        return not self.deviations

    def to_json(self, players: list[str]) -> dict:
        return {"profile": dict(zip(players, self.labels)), "payoffs_eur": dict(zip(players, np.round(self.payoffs_eur, 6).tolist())),
                "community_cost_eur": round(self.community_cost_eur, 6), "equilibrium": self.equilibrium,
                "deviations": [d.to_json() for d in self.deviations]}


def labels_of(game: MicroworldGame, profile: Sequence[int]) -> list[str]:
    return [game.plan_labels(i)[s] for i, s in enumerate(profile)]


def deviations(game: MicroworldGame, profile: Sequence[int], workers: int = 1) -> ProfileReport:
    """The profile's payoffs and every unilateral deviation that gains a player more than the game's tolerance."""
    profile = tuple(profile)
    alternatives = [profile[:i] + (s,) + profile[i + 1:] for i, n in enumerate(game.shape) for s in range(n) if s != profile[i]]
    game.prefetch([profile, *alternatives], workers)
    base = game.payoffs(profile)
    found = []
    tol = game.spec.game.tolerance_eur
    for alt in alternatives:
        i = next(j for j in range(len(profile)) if alt[j] != profile[j])
        gain = float(game.payoffs(alt)[i] - base[i])
        if gain > tol:
            found.append(Deviation(game.player_ids[i], game.plan_labels(i)[profile[i]], game.plan_labels(i)[alt[i]], gain))
    found.sort(key=lambda d: (-d.gain_eur, d.player, d.to_plan))
    return ProfileReport(profile, labels_of(game, profile), base, game.community_cost(profile), found)


@dataclass
class Equilibria:
    method: str  # "enumeration" (all pure equilibria) or "best-response dynamics" (one, if reached)
    equilibria: list[ProfileReport]
    profiles: int  # profiles in the game
    simulations: int  # runs simulated for this search (the rest came from the cache)
    note: str = ""
    path: list[tuple[int, ...]] = field(default_factory=list)  # best-response dynamics: the profiles visited


def payoff_tensor(game: MicroworldGame, workers: int = 1) -> np.ndarray:
    """Every player's payoff at every profile, shape (players, *plans): the game's normal form."""
    profiles = list(game.profiles())
    game.prefetch(profiles, workers)
    table = np.array([game.payoffs(p) for p in profiles])
    return np.moveaxis(table.reshape(*game.shape, len(game.players)), -1, 0)


def normal_form(game: MicroworldGame, workers: int = 1) -> NormalFormGame:
    """The game's normal form over plans, every profile simulated: for the finite-game solvers and learning dynamics."""
    return NormalFormGame.from_payoffs(payoff_tensor(game, workers), game.player_ids,
                                       [game.plan_labels(i) for i in range(len(game.players))])


def pure_equilibria(game: MicroworldGame, *, method: str = "auto", start: Sequence[int] | None = None, workers: int = 1,
                    max_rounds: int = 50) -> Equilibria:
    """All pure equilibria by enumeration, or one by best-response dynamics (method "best-response", or "auto"
    beyond ENUMERATE_LIMIT profiles)."""
    total = math.prod(game.shape)
    before = game.cache.misses
    if method == "enumerate" or (method == "auto" and total <= ENUMERATE_LIMIT):
        normal = normal_form(game, workers)
        found = [tuple(int(np.argmax(p)) for p in e.profile) for e in equilibria.pure_equilibria(normal, game.spec.game.tolerance_eur)]
        reports = [deviations(game, p) for p in found]
        return Equilibria("enumeration", reports, total, game.cache.misses - before)
    profile = tuple(start) if start is not None else tuple(0 for _ in game.shape)
    path = [profile]
    rounds_ended = [profile]  # the profile at the end of each round: the dynamics cycle when one comes back
    for _ in range(max_rounds):
        moved = False
        for i, n in enumerate(game.shape):
            options = [profile[:i] + (s,) + profile[i + 1:] for s in range(n)]
            game.prefetch(options, workers)
            gains = [game.payoffs(o)[i] for o in options]
            best = int(np.argmax(gains))
            if gains[best] > gains[profile[i]] + game.spec.game.tolerance_eur:
                profile = options[best]
                path.append(profile)
                moved = True
        if not moved:
            return Equilibria("best-response dynamics", [deviations(game, profile)], total, game.cache.misses - before,
                              "one equilibrium reached by best responses from the start profile; others may exist", path)
        if profile in rounds_ended:
            break
        rounds_ended.append(profile)
    return Equilibria("best-response dynamics", [], total, game.cache.misses - before,
                      "best responses cycled or did not settle: no pure equilibrium found (one may still exist)", path)


def subgame_perfect(game: MicroworldGame, workers: int = 1) -> ProfileReport | None:
    """A subgame-perfect profile of a staged game without chance observations, by backward induction: in every
    history of the earlier stages, the later stage plays its pure equilibrium of least community cost. None if some
    subgame has no pure equilibrium."""
    if any(p.sees_chance for p in game.players):
        raise ValueError("backward induction here needs stages that observe no chance moves")
    stages = game.stages
    chosen: dict[tuple[int, ...], tuple[int, ...]] = {}  # history of earlier actions -> actions of this stage
    # Work from the last stage back: for each history of everything earlier, the subgame's equilibrium.
    for depth in reversed(range(len(stages))):
        movers = [i for i, p in enumerate(game.players) if p.stage == stages[depth]]
        earlier = [i for i, p in enumerate(game.players) if p.stage < stages[depth]]
        for history in itertools.product(*(range(len(game.players[j].menu)) for j in earlier)):
            best: tuple[float, tuple[int, ...]] | None = None
            options = list(itertools.product(*(range(len(game.players[i].menu)) for i in movers)))
            outcome = {}
            for acts in options:
                outcome[acts] = _continue(game, dict(zip(earlier, history)) | dict(zip(movers, acts)), chosen, stages, depth)
            game.prefetch([_profile_for(game, a) for a in outcome.values()], workers)
            value = {acts: game.payoffs(_profile_for(game, full)) for acts, full in outcome.items()}
            for acts in options:
                stable = all(value[acts][i] >= max(value[acts[:k] + (s,) + acts[k + 1:]][i] for s in range(len(game.players[i].menu)))
                             - game.spec.game.tolerance_eur for k, i in enumerate(movers))
                if stable:
                    cost = game.community_cost(_profile_for(game, outcome[acts]))
                    if best is None or cost < best[0]:
                        best = (cost, acts)
            if best is None:
                return None
            chosen[(depth, *history)] = best[1]
    return deviations(game, _strategy_of(game, chosen), workers)


def _strategy_of(game: MicroworldGame, chosen: dict) -> tuple[int, ...]:
    """The plan profile that plays the chosen subgame equilibria in every history, on the path and off it."""
    profile = []
    for i, p in enumerate(game.players):
        depth, m = game.stages.index(p.stage), len(p.menu)
        movers = [j for j, q in enumerate(game.players) if q.stage == p.stage]
        plan = 0
        for state in range(p.info_states):
            history, rest = [], state
            for j in p.sees_players:
                size = len(game.players[j].menu)
                history.append(rest % size)
                rest //= size
            plan += chosen[(depth, *history)][movers.index(i)] * m ** state
        profile.append(plan)
    return tuple(profile)


def _continue(game: MicroworldGame, fixed: dict[int, int], chosen: dict, stages: list[int], depth: int) -> dict[int, int]:
    """All players' actions: `fixed` for stages up to `depth`, the chosen subgame equilibria after it."""
    acts = dict(fixed)
    for d in range(depth + 1, len(stages)):
        earlier = [i for i, p in enumerate(game.players) if p.stage < stages[d]]
        movers = [i for i, p in enumerate(game.players) if p.stage == stages[d]]
        picked = chosen[(d, *(acts[j] for j in earlier))]
        acts.update(zip(movers, picked))
    return acts


def _profile_for(game: MicroworldGame, acts: dict[int, int]) -> tuple[int, ...]:
    """The plan profile in which every player's plan picks its action in `acts` whatever it observes
    (the realised path is all that payoffs depend on, and later stages' plans are read on that path)."""
    profile = []
    for i, p in enumerate(game.players):
        m = len(p.menu)
        profile.append(sum(acts[i] * m ** s for s in range(p.info_states)))
    return tuple(profile)


@dataclass(frozen=True)
class Anarchy:
    optimum_cost_eur: float
    optimum: str  # what the optimum is: the opf run, or a profile
    worst_equilibrium_cost_eur: float | None
    best_equilibrium_cost_eur: float | None

    @property
    def price_of_anarchy(self) -> float | None:
        return _ratio(self.worst_equilibrium_cost_eur, self.optimum_cost_eur)

    @property
    def price_of_stability(self) -> float | None:
        return _ratio(self.best_equilibrium_cost_eur, self.optimum_cost_eur)

    def to_json(self) -> dict:
        return {"optimum": self.optimum, "optimum_cost_eur": round(self.optimum_cost_eur, 6),
                "worst_equilibrium_cost_eur": self.worst_equilibrium_cost_eur, "best_equilibrium_cost_eur": self.best_equilibrium_cost_eur,
                "price_of_anarchy": self.price_of_anarchy, "price_of_stability": self.price_of_stability}


def _ratio(cost: float | None, optimum: float) -> float | None:
    """Cost over the optimum's: defined where both are positive costs (a community that earns has no such ratio)."""
    if cost is None or optimum <= 0 or cost <= 0:
        return None
    return round(cost / optimum, 6)


def price_of_anarchy(game: MicroworldGame, found: Equilibria, optimum: MicroworldGame | None) -> Anarchy:
    """Worst and best equilibrium community cost against the social optimum: `optimum`'s truthful profile (a game
    under the opf mechanism whose players all play `truthful`), or the game's cheapest profile when that is cheaper
    or no optimum game is given (then only the enumerated profiles are compared)."""
    costs = [e.community_cost_eur for e in found.equilibria]
    candidates: list[tuple[float, str]] = []
    if optimum is not None:
        candidates.append((optimum.community_cost(truthful_profile(optimum)), f"{optimum.mechanism} with every player truthful"))
    if found.method == "enumeration":
        cheapest = min(game.profiles(), key=game.community_cost)
        candidates.append((game.community_cost(cheapest), f"{game.mechanism} profile " + ", ".join(labels_of(game, cheapest))))
    if not candidates and costs:  # no optimum to compare with: the cheapest equilibrium found is the best known
        candidates.append((min(costs), "the cheapest equilibrium found (no optimum given, profiles not enumerated)"))
    if not candidates:
        raise ValueError("price_of_anarchy needs an optimum game, an enumeration or an equilibrium")
    best = min(candidates)
    return Anarchy(best[0], best[1], max(costs) if costs else None, min(costs) if costs else None)


def truthful_profile(game: MicroworldGame) -> tuple[int, ...]:
    """Every player's first menu entry that is truthful at no mark-up (else its first entry)."""
    profile = []
    for p in game.players:
        pick = next((k for k, e in enumerate(p.menu) if e.strategy in (None, "truthful") and not e.markup_eur_per_kwh
                     and e.module is None and e.assets is None), 0)
        profile.append(sum(pick * len(p.menu) ** s for s in range(p.info_states)))
    return tuple(profile)


@dataclass(frozen=True)
class Counterfactual:
    player: str
    chosen: str
    alternative: str
    payoff_eur: float
    bill_eur: float
    gain_eur: float  # over what the chosen plan paid


def counterfactuals(game: MicroworldGame, profile: Sequence[int], workers: int = 1) -> list[Counterfactual]:
    """For each player and each plan it did not choose: its payoff and bill had it chosen that, the others fixed."""
    profile = tuple(profile)
    alternatives = [profile[:i] + (s,) + profile[i + 1:] for i, n in enumerate(game.shape) for s in range(n)]
    game.prefetch(alternatives, workers)
    base = game.payoffs(profile)
    out = []
    for i, n in enumerate(game.shape):
        for s in range(n):
            alt = profile[:i] + (s,) + profile[i + 1:]
            bill = sum(prob * float(game.costs(play).bill_eur[game.players[i].members].sum()) for play, prob in game.plays(alt))
            pay = float(game.payoffs(alt)[i])
            out.append(Counterfactual(game.player_ids[i], game.plan_labels(i)[profile[i]], game.plan_labels(i)[s], pay, bill,
                                      pay - float(base[i])))
    return out
