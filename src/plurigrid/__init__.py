"""Plurigrid: a local-first coordination layer for electricity.

    import plurigrid
    run = plurigrid.load("residential").run()
    run.kpis, run.timeseries, run.participants["bill_micro"], run.settlements
    table = plurigrid.sweep("storage.toml", workers=2)   # one row per point: parameters and KPIs

See docs/api.md. Everything else lives in subpackages (engine, grid, market, opf, state, lattice,
node); what is exported here is the supported surface.
"""

from plurigrid._api import Frames, Run, World, load, open_run, sweep
from plurigrid.errors import PlurigridError, UsageError

__version__ = "0.1.0"

__all__ = ["Frames", "PlurigridError", "Run", "UsageError", "World", "__version__", "load", "open_run", "sweep"]
