"""A Gymnasium environment over a microworld: one agent acting for one participant, or for many as an aggregator.

    env = MicroworldEnv("residential", agent="home01")          # one home's price, battery and EV
    env = MicroworldEnv("residential", agent=["home01", "home03"], reward="welfare")   # an aggregator

The observation is every controlled participant's features (`driver.FEATURES`) one after another;
the action is their action vectors one after another (`MicroworldEnv.action_labels` names each
entry). The reward is minus the members' summed bills and discomfort this interval (`bill`), or minus
the whole community's (`welfare`). An episode is the world's horizon; it ends with `terminated`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from plurigrid._api import World, load
from plurigrid.rl.driver import FEATURES, Driver, feature_bounds


def compiled_world(world: str | Path | World | Any, hours: float | None, mechanism: str | None):
    """A compiled world from a library name, a path, a plurigrid.World, or an engine World as it is."""
    if isinstance(world, World):
        return world.compiled
    if isinstance(world, str | Path):
        return load(world, hours=hours, mechanism=mechanism).compiled
    return world


class MicroworldEnv(gymnasium.Env):
    """One agent: acts for `agent` (a participant id, a list of them, or None for every participant)."""

    metadata = {"render_modes": []}

    def __init__(self, world: str | Path | World | Any = "residential", agent: str | list[str] | None = None,
                 reward: str = "bill", hours: float | None = None, mechanism: str | None = None,
                 store_value: str | float | None = "export") -> None:
        compiled = compiled_world(world, hours, mechanism)
        self.driver = Driver(compiled, [agent] if isinstance(agent, str) else agent, reward, store_value)
        c = self.driver.controls
        widths = [c.width(j) for j in range(len(c.members))]
        self._splits = np.cumsum(widths)[:-1]
        self.action_labels = [f"{name}.{label}" for j, name in enumerate(c.names) for label in c.labels(j)]
        self.observation_labels = [f"{name}.{feature}" for name in c.names for feature in FEATURES]
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(sum(widths),), dtype=np.float32)
        low, high = feature_bounds()
        self.observation_space = gymnasium.spaces.Box(np.tile(low, len(c.names)), np.tile(high, len(c.names)), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.driver.reset().ravel(), {"step": 0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        rewards, obs, result = self.driver.advance(np.split(np.asarray(action, dtype=float), self._splits))
        reward = float(rewards.sum()) if self.driver.reward_kind == "bill" else float(rewards[0])
        m = self.driver.controls.members
        info = {"step": result.step, "bill_eur": float(result.settlement.bill_micro[m].sum() * 1e-6),
                "price_eur_per_kwh": float(result.clearing.price_eur_per_kwh)}
        return obs.ravel(), reward, self.driver.k >= self.driver.steps, False, info
