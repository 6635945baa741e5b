"""Reinforcement-learning environments over a microworld's step (the `rl` extra: gymnasium, pettingzoo).

    from plurigrid.rl import MicroworldEnv, MicroworldParallelEnv
    env = MicroworldEnv("residential", agent="home01")       # Gymnasium: one participant, or many as an aggregator
    env = MicroworldParallelEnv("residential")               # PettingZoo: every participant an agent

`gymnasium.make("plurigrid/Microworld-v0", world=..., agent=...)` works once this package is imported.
See docs/rl.md.
"""

try:
    import gymnasium
    import pettingzoo  # noqa: F401  (the ParallelEnv's base)
except ImportError as err:  # one clear line instead of a bare "No module named ..."
    raise ImportError(f"plurigrid.rl needs the rl extra: pip install 'plurigrid[rl]' ({err})") from None

from plurigrid.rl.driver import FEATURES, REWARDS, Controls, Driver
from plurigrid.rl.gym_env import MicroworldEnv
from plurigrid.rl.pettingzoo_env import MicroworldParallelEnv

if "plurigrid/Microworld-v0" not in gymnasium.registry:
    gymnasium.register(id="plurigrid/Microworld-v0", entry_point="plurigrid.rl.gym_env:MicroworldEnv")

__all__ = ["FEATURES", "REWARDS", "Controls", "Driver", "MicroworldEnv", "MicroworldParallelEnv"]
