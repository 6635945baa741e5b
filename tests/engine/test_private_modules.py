"""compile_world(modules_for=...): a node loads only the WASM modules of the participants it hosts."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from plurigrid.engine import world as world_mod
from plurigrid.engine.step import decide, initial_state, step
from plurigrid.engine.world import compile_world
from plurigrid.microworld.loader import SpecError, load
from plurigrid.strategies.base import Decision

HOSTED = ("home01", "home05")  # home01 runs the battery-arbitrage module, home05 the built-in truthful strategy
STEPS = 6


def _compile(**kw):
    spec, name, base = load("sandboxed-strategies")
    return compile_world(spec, name, base, hours=STEPS * 0.25, **kw)


def test_hosted_modules_only_and_same_decisions(monkeypatch):
    full = _compile()
    loaded: list[int] = []
    plan_module = world_mod.plan_module

    def recording_plan_module(i, ref, base_dir):
        loaded.append(i)
        return plan_module(i, ref, base_dir)

    monkeypatch.setattr(world_mod, "plan_module", recording_plan_module)
    private = _compile(modules_for=HOSTED)

    i01 = full.ids.index("home01")
    assert loaded == [i01]  # the other hosts' module files are never read
    assert list(private.modules) == [i01]
    assert sorted(full.modules) == [full.ids.index(p) for p in ("home01", "home02", "home03", "home04")]
    assert private.ids == full.ids
    np.testing.assert_array_equal(private.strategy, full.strategy)
    np.testing.assert_array_equal(private.series.block(0, STEPS).load_kw, full.series.block(0, STEPS).load_kw)

    rows = [full.ids.index(p) for p in HOSTED]
    full_state, private_state = initial_state(full), initial_state(private)
    np.testing.assert_array_equal(private_state.runtime.modules.members, [i01])
    for k in range(STEPS):
        decided: dict[str, Decision] = {}

        def full_decide(w, state, obs, k):
            decided["full"] = decide(w, state, obs, k)
            return decided["full"]

        def private_decide(w, state, obs, k):  # decides for its own participants, clears with everyone's decisions
            decided["private"] = decide(w, state, obs, k)
            return decided["full"]

        step(full, full_state, k, decide_with=full_decide)
        step(private, private_state, k, decide_with=private_decide)
        for f in fields(Decision):
            np.testing.assert_array_equal(getattr(decided["private"], f.name)[rows], getattr(decided["full"], f.name)[rows],
                                          err_msg=f"step {k}: {f.name}")
        np.testing.assert_array_equal(private_state.soc_kwh, full_state.soc_kwh)
        np.testing.assert_array_equal(private_state.runtime.modules.meter_kwh, full_state.runtime.modules.meter_kwh)
    assert private_state.runtime.modules.slots[i01].failures == 0
    assert private_state.soc_kwh[i01] != full.batteries.initial_kwh[i01]  # the module did act: it charged the battery


def test_no_hosted_modules():
    world = _compile(modules_for=())
    assert world.modules == {}
    state = initial_state(world)
    assert state.runtime.modules is None
    for k in range(STEPS):
        step(world, state, k)
    assert np.isfinite(state.soc_kwh).all()


def test_unknown_participant():
    with pytest.raises(SpecError) as err:
        _compile(modules_for=("home01", "home99"))
    assert str(err.value) == ("sandboxed-strategies.toml: modules_for: unknown participant 'home99'; "
                              "expected a participant id of the world")
