"""Sweeps: one base microworld run at many points (axes, seeded samples, lists of worlds), on Dask or in-process.

    import plurigrid
    table = plurigrid.sweep("storage.toml", workers=2, out="sweeps/storage")   # one row per point

See docs/sweeps.md for the sweep file and its parameters.
"""

from plurigrid.sweeps.executors import DaskExecutor, Executor, SerialExecutor, make_executor
from plurigrid.sweeps.points import PARAMETERS
from plurigrid.sweeps.runner import TIMING_COLUMNS, run_sweep, sweep
from plurigrid.sweeps.spec import SweepSpec, read_sweep

__all__ = ["PARAMETERS", "TIMING_COLUMNS", "DaskExecutor", "Executor", "SerialExecutor", "SweepSpec", "make_executor",
           "read_sweep", "run_sweep", "sweep"]
