import numpy as np
import pytest

import plurigrid


def run_world(name: str, **kw) -> plurigrid.Run:
    return plurigrid.load(name, **kw).run()


def series(run: plurigrid.Run, name: str) -> np.ndarray:
    """One column of a run's timeseries (T,)."""
    return run.timeseries[name].to_numpy()


def matrix(run: plurigrid.Run, name: str) -> np.ndarray:
    """One per-participant quantity of a run, (T, N) in the world's participant order."""
    return run.participants[name].to_numpy()


@pytest.fixture(scope="session")
def hello_run():
    return run_world("hello")


@pytest.fixture(scope="session")
def residential_run():
    return run_world("residential")
