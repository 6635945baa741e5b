"""A PettingZoo `ParallelEnv` over a microworld: every participant (or the listed ones) an agent.

    env = MicroworldParallelEnv("residential")
    observations, infos = env.reset(seed=0)
    observations, rewards, terminations, truncations, infos = env.step({a: policy(observations[a]) for a in env.agents})

Each agent's observation is its participant's features (`driver.FEATURES`), its action its vector
(price, then battery and EV where it has them: `action_labels(agent)`), its reward minus its own
bill and discomfort (`bill`) or minus the community's (`welfare`). All agents act in every interval;
the mechanism clears them together.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from plurigrid._api import World
from plurigrid.errors import UsageError
from plurigrid.rl.driver import Driver, feature_bounds
from plurigrid.rl.gym_env import compiled_world


class MicroworldParallelEnv(ParallelEnv):
    metadata = {"name": "plurigrid_microworld_v0", "render_modes": []}

    def __init__(self, world: str | Path | World | Any = "residential", participants: list[str] | None = None,
                 reward: str = "bill", hours: float | None = None, mechanism: str | None = None,
                 store_value: str | float | None = "export") -> None:
        self.driver = Driver(compiled_world(world, hours, mechanism), participants, reward, store_value)
        c = self.driver.controls
        self.possible_agents = list(c.names)
        self._index = {name: j for j, name in enumerate(c.names)}
        self.agents: list[str] = []

    @functools.cache  # noqa: B019  PettingZoo expects the same space object on every call
    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        low, high = feature_bounds()
        return gymnasium.spaces.Box(low, high, dtype=np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> gymnasium.spaces.Box:
        return gymnasium.spaces.Box(-1.0, 1.0, shape=(self.driver.controls.width(self._index[agent]),), dtype=np.float32)

    def action_labels(self, agent: str) -> list[str]:
        return self.driver.controls.labels(self._index[agent])

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs = self.driver.reset()
        self.agents = list(self.possible_agents)
        return {a: obs[j] for j, a in enumerate(self.agents)}, {a: {"step": 0} for a in self.agents}

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise UsageError(f"actions: no action for agent {missing[0]!r}; every agent acts in every interval")
        rewards, obs, result = self.driver.advance([actions[a] for a in self.possible_agents])
        done = self.driver.k >= self.driver.steps
        agents = self.agents
        bills = result.settlement.bill_micro[self.driver.controls.members] * 1e-6
        out = ({a: obs[j] for j, a in enumerate(agents)}, {a: float(rewards[j]) for j, a in enumerate(agents)},
               dict.fromkeys(agents, done), dict.fromkeys(agents, False),
               {a: {"step": result.step, "bill_eur": float(bills[j])} for j, a in enumerate(agents)})
        if done:
            self.agents = []
        return out
