"""The simulate driver: runs the step over a world's horizon on a virtual clock, recording and committing each step."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from plurigrid.engine.ledger_entries import RunLedger
from plurigrid.engine.record import Recorder
from plurigrid.engine.step import State, StepResult, initial_state, step
from plurigrid.engine.world import World
from plurigrid.errors import UsageError


@dataclass
class Outcome:
    """How a simulation ended: the final state, the steps done, and whether it was stopped early."""

    state: State
    steps: int
    interrupted: bool


class Stop:
    """Asks a running simulation to stop after the step it is in (Ctrl-C does this, once)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> None:
        self.requested = True


@contextmanager
def stop_on_interrupt(stop: Stop) -> Iterator[None]:
    """While the block runs, a first Ctrl-C asks `stop` to stop the run after its current step; a second one
    interrupts at once. Only in the main thread (elsewhere signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def simulate(world: World, *, recorder: Recorder | None = None, ledger: RunLedger | None = None,
             progress: Callable[[int], None] | None = None,
             before_step: Callable[[State, int], None] | None = None,
             after_step: Callable[[State, int, StepResult], None] | None = None,
             stop: Stop | None = None, state: State | None = None) -> Outcome:
    """Runs every step of the world: each one recorded (`recorder`) and committed (`ledger`) as it ends.

    `before_step(state, k)` runs before each step: the place to change the running world between
    steps, e.g. swap a participant's module (`state.runtime.modules.swap`). `after_step(state, k,
    result)` runs after it. `progress(k)` is told each finished step. When `stop` is requested the run
    ends after the step it is in; whatever was recorded and committed stays consistent.
    """
    state = initial_state(world) if state is None else state
    done = 0
    for k in range(world.steps):
        if stop is not None and stop.requested:
            break
        if before_step is not None:
            before_step(state, k)
        r = step(world, state, k)
        if recorder is not None:
            recorder.add(k, r, state)
        if ledger is not None:
            ledger.commit(world, k, r)
        done = k + 1
        if after_step is not None:
            after_step(state, k, r)
        if progress is not None:
            progress(k)
    return Outcome(state, done, done < world.steps)


def step_result(world: World, k: int) -> StepResult:
    """Step k's result (its power flow, clearing, settlement), simulating steps 0..k without recording or committing."""
    if not 0 <= k < world.steps:
        raise UsageError(f"step: {k} is outside the world's {world.steps} steps (0..{world.steps - 1})")
    state = initial_state(world)
    for j in range(k):
        step(world, state, j)
    return step(world, state, k)
