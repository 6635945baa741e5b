"""Open games over microworlds: when coordination beats competition, with numbers (see docs/games.md).

    from plurigrid.games import load_game, MicroworldGame, pure_equilibria, price_of_anarchy
    spec, name, base = load_game("supplier-bidding")
    game = MicroworldGame(spec, name, base, "pay-as-clear")
    found = pure_equilibria(game, workers=2)

Finite games (Gambit .nfg/.efg) and their solvers, games whose payoffs come from simulating a
microworld (cached by profile), coalitions, learning dynamics and the Georgian resilience game.
What is exported here is the supported surface; the modules behind it may change.
"""

from importlib import import_module
from typing import Any

_HOMES = {  # public name -> the module that defines it; imported on first use, so that `plurigrid game solve` and the
    # finite-game modules do not load the simulator
    "counterfactuals": "analysis", "deviations": "analysis", "normal_form": "analysis", "price_of_anarchy": "analysis",
    "pure_equilibria": "analysis", "subgame_perfect": "analysis", "truthful_profile": "analysis",
    "coalition_analysis": "coalition_values", "coalition_value": "coalition_values",
    "coalition_report": "coalitions", "core": "coalitions", "nucleolus": "coalitions", "shapley": "coalitions",
    "Equilibrium": "equilibria", "solve": "equilibria", "ExtensiveGame": "extensive", "read_game": "gambit",
    "write_game": "gambit", "LEARNERS": "learning", "learn": "learning", "make_learner": "learning",
    "library_games": "loader", "load_game": "loader", "MicroworldGame": "microgame", "SimulationCache": "microgame",
    "NormalFormGame": "normal", "repeated_play": "repeated",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"plurigrid.games.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'plurigrid.games' has no attribute {name!r}")


__all__ = [
    "LEARNERS", "Equilibrium", "ExtensiveGame", "MicroworldGame", "NormalFormGame", "SimulationCache", "coalition_analysis",
    "coalition_report", "coalition_value", "core", "counterfactuals", "deviations", "learn", "library_games", "load_game",
    "make_learner", "normal_form", "nucleolus", "price_of_anarchy", "pure_equilibria", "read_game", "repeated_play", "shapley",
    "solve", "subgame_perfect", "truthful_profile", "write_game",
]
