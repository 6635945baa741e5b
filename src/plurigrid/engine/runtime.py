"""What a run builds and keeps while it steps a world, besides the devices' state.

Why: a World is a description that the step only reads (shared by the nodes of one process, and
by an API user who runs it twice); what stepping needs beyond it is either a cache that never
changes a result (a power flow per topology, the OPF's feeder model, the block of inputs being
stepped through) or the participants' running module instances. A run owns one `Runtime`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from plurigrid.engine.modules import ModuleRunner, start_modules
from plurigrid.engine.series import Window
from plurigrid.grid.powerflow import FastPowerFlow

if TYPE_CHECKING:
    from plurigrid.engine.opf_clearing import Feeder


@dataclass
class Runtime:
    window: Window  # the block of per-step inputs the run is in
    modules: ModuleRunner | None  # running instances of the world's modules
    powerflows: dict[bytes, FastPowerFlow] = field(default_factory=dict)  # per topology (lines out of service)
    feeders: dict[int, Feeder] = field(default_factory=dict)  # the OPF's model of each power flow (engine.opf_clearing)
    stores: np.ndarray | None = None  # participants whose battery serves as a store (engine.step), fixed for a run

    @classmethod
    def start(cls, world) -> Runtime:
        """A fresh runtime for `world` (engine.world.World): module instances started, nothing built yet."""
        return cls(Window(world.series), start_modules(world.modules, world.ids, world.seed, world.policies))

    def powerflow(self, world, k: int) -> FastPowerFlow:
        """The power flow for the topology in force at step k (built once per topology)."""
        line_out = self.window.row(k).line_out
        key = np.packbits(line_out).tobytes()
        if key not in self.powerflows:
            net = world.grid.net
            if line_out.any():  # the world's own net stays as it is
                net = copy.deepcopy(net)
                net.line.loc[net.line.index[line_out], "in_service"] = False
            # cold starts: a replay gives the same bytes; 1e-8 MVA (10 mW) resolves LV losses; generators
            # stay within their reactive limits
            self.powerflows[key] = FastPowerFlow(net, warm_start=False, tol_mva=1e-8, enforce_q_lims=True)
        return self.powerflows[key]

    def __deepcopy__(self, memo: dict) -> Runtime:
        """A copy of a run's state shares its runtime: caches are results of the world, instances are the run's."""
        return self
