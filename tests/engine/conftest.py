import pytest

from plurigrid.engine.simulate import simulate
from plurigrid.engine.world import compile_world
from plurigrid.microworld.loader import load


def run_world(name: str, **kw):
    spec, fname, base = load(name)
    return simulate(compile_world(spec, fname, base, **kw))


@pytest.fixture(scope="session")
def hello_run():
    return run_world("hello")


@pytest.fixture(scope="session")
def residential_run():
    return run_world("residential")
