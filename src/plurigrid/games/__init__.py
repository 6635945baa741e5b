"""Open games over microworlds: when coordination beats competition, with numbers (see docs/games.md).

    from plurigrid.games import load_game, MicroworldGame, pure_equilibria, price_of_anarchy
    spec, name, base = load_game("supplier-bidding")
    game = MicroworldGame(spec, name, base, "pay-as-clear")
    found = pure_equilibria(game, workers=2)

Finite games (Gambit .nfg/.efg) and their solvers, games whose payoffs come from simulating a
microworld (cached by profile), coalitions, learning dynamics and the Georgian resilience game.
What is exported here is the supported surface; the modules behind it may change.
"""

from plurigrid.games.analysis import (
    counterfactuals,
    deviations,
    normal_form,
    price_of_anarchy,
    pure_equilibria,
    subgame_perfect,
    truthful_profile,
)
from plurigrid.games.coalition_values import coalition_analysis, coalition_value
from plurigrid.games.coalitions import coalition_report, core, nucleolus, shapley
from plurigrid.games.equilibria import Equilibrium, solve
from plurigrid.games.extensive import ExtensiveGame
from plurigrid.games.gambit import read_game, write_game
from plurigrid.games.learning import LEARNERS, learn, make_learner
from plurigrid.games.loader import library_games, load_game
from plurigrid.games.microgame import MicroworldGame, SimulationCache
from plurigrid.games.normal import NormalFormGame
from plurigrid.games.repeated import repeated_play

__all__ = [
    "LEARNERS", "Equilibrium", "ExtensiveGame", "MicroworldGame", "NormalFormGame", "SimulationCache", "coalition_analysis",
    "coalition_report", "coalition_value", "core", "counterfactuals", "deviations", "learn", "library_games", "load_game",
    "make_learner", "normal_form", "nucleolus", "price_of_anarchy", "pure_equilibria", "read_game", "repeated_play", "shapley",
    "solve", "subgame_perfect", "truthful_profile", "write_game",
]
