"""A finished run's per-step results as arrays, for tests that check physics step by step.

`Recorded(run)` reads a `plurigrid.Run` (the public API) back into numpy: `series[name]` (T,),
`participant[name]` (T, N) in participant order, `grid[name]` (T, elements), and `world`, the
engine's compiled world the run came from.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

import plurigrid


class Recorded:
    def __init__(self, run: plurigrid.Run) -> None:
        self.run = run
        self.world = run.world.compiled

    @cached_property
    def series(self) -> dict[str, np.ndarray]:
        return {name: column.to_numpy() for name, column in self.run.timeseries.items()}

    @cached_property
    def participant(self) -> dict[str, np.ndarray]:
        return {name: self.run.participants[name].to_numpy() for name in self.run.participants}

    @cached_property
    def grid(self) -> dict[str, np.ndarray]:
        return {"vm_pu": self.run.buses["vm_pu"].to_numpy(), "line_loading_pct": self.run.branches["line"].to_numpy(),
                "trafo_loading_pct": self.run.branches["trafo"].to_numpy()}

    @property
    def kpis(self) -> dict:
        return self.run.kpis


def recorded(world: str | dict, **kw) -> Recorded:
    """Loads and runs a world through the API, recording everything (grid included)."""
    return Recorded(plurigrid.load(world, **kw).run(record={"series", "participants", "trades", "grid"}))
