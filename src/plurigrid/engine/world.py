"""Compiles a microworld spec into a runnable World: a clock, a grid, the participants' assets and their inputs.

A World is what a run reads and never writes: participants and their asset tables (`Fleet`,
columnar over participants), tariffs, the mechanism, the grid model and the recipe of every
per-step input (`SeriesSource`, built a block of steps at a time so memory does not grow with the
horizon). What a run builds while stepping (power flows per topology, OPF feeders, the block of
inputs, module instances) lives in its `Runtime` (`engine.runtime`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plurigrid.assets.fleet import HVAC, Batteries, Demand, EVs, Fleet, Thermal, fleet_of
from plurigrid.engine.modules import ModulePlan, plan_module
from plurigrid.engine.series import SeriesSource, _hourly
from plurigrid.grid.build import GridModel, add_island_reference, build_grid, bus_positions
from plurigrid.market.mechanisms import Clearing, OrderBook, clearing_rule
from plurigrid.microworld.checks import check_resources
from plurigrid.microworld.generate import generate_participants
from plurigrid.microworld.loader import SpecError
from plurigrid.microworld.privacy import DataPolicy, policies_of
from plurigrid.microworld.privacy import problems as privacy_problems
from plurigrid.microworld.spec import STRATEGIES, Microworld, Participant
from plurigrid.strategies.wasm.host import ModuleError
from plurigrid.strategies.wasm.manifest import ManifestError


@dataclass(frozen=True)
class World:
    """A compiled microworld. Per-participant arrays are (N,); per-step ones come from `series` in blocks."""

    name: str
    spec: Microworld
    index: pd.DatetimeIndex
    dt_h: float
    grid: GridModel
    ids: list[str]
    kind: np.ndarray
    bus_pos: np.ndarray  # row position in net.bus of each participant's bus
    strategy: np.ndarray  # strategy name per participant
    markup_eur_per_kwh: np.ndarray  # added to asks and taken off bids after the strategies decide (0: their own prices)
    in_market: np.ndarray  # bool: may trade in the market (a coalition's outsiders settle at tariff; default all)
    groups: dict[str, np.ndarray]  # participant indices per built-in strategy
    fleet: Fleet
    series: SeriesSource
    import_eur_per_kwh: np.ndarray  # (T + horizon,) tariffs continue past the horizon for forecasts
    export_eur_per_kwh: np.ndarray  # (T + horizon,)
    horizon_steps: int  # look-ahead of forecasts (one day)
    fee_eur_per_kwh: float
    mechanism: str
    clear: Callable[[OrderBook, int], Clearing] | None  # the order-book mechanism with its parameters bound (None: opf)
    opf_horizon_steps: int  # look-ahead of the opf clearing
    reference: int | None  # participant index of the island reference unit
    seed: int
    max_import_kw: float | None
    modules: dict[int, ModulePlan]  # the WASM modules of the participants this world runs (checked, not started)
    policies: tuple[DataPolicy, ...]  # each participant's data policy (microworld/privacy.py)

    @property
    def steps(self) -> int:
        return len(self.index)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def demand(self) -> Demand:
        return self.fleet.demand

    @property
    def batteries(self) -> Batteries:
        return self.fleet.batteries

    @property
    def evs(self) -> EVs:
        return self.fleet.evs

    @property
    def hvac(self) -> HVAC:
        return self.fleet.hvac

    @property
    def thermal(self) -> Thermal:
        return self.fleet.thermal

    @property
    def event_starts(self) -> dict[int, list[dict]]:
        return self.series.event_starts


def time_index(spec: Microworld, hours: float | None = None) -> pd.DatetimeIndex:
    """The world's step start times (timezone-aware), optionally cut to the first `hours`."""
    w = spec.world
    res = pd.Timedelta(w.resolution)
    dur = pd.Timedelta(w.duration) if hours is None else pd.Timedelta(hours=hours)
    steps = int(dur // res)
    return pd.date_range(w.start_time(), periods=max(steps, 1), freq=res)


def compile_world(spec: Microworld, name: str, base_dir: Path | None, *, hours: float | None = None,
                  mechanism: str | None = None, seed: int | None = None,
                  modules_for: Collection[str] | None = None) -> World:
    """Builds the grid, participants and the recipe of every per-step input of a microworld.

    `modules_for` names the participants whose WASM modules are loaded (None: all). A lattice node
    decides only for those it hosts and must not run other hosts' modules; the rest of the World
    is the same, so it still clears identically with their decisions received from elsewhere.
    The first block of inputs is built here, so a profile that cannot be read fails now.
    """
    dt_h = pd.Timedelta(spec.world.resolution) / pd.Timedelta(hours=1)
    check_resources(name, spec, hours=hours, participants=len(spec.participant), buses=len(spec.grid.bus), seed=seed)
    seed = spec.world.seed if seed is None else seed
    try:
        grid = build_grid(spec.grid, base_dir)
    except ValueError as exc:
        raise SpecError(name, getattr(exc, "path", "grid"), getattr(exc, "message", str(exc))) from None
    net = grid.net
    participants: list[Participant] = []
    if spec.grid.source is not None:
        participants = generate_participants(net, spec.grid, seed, name)
    participants += list(spec.participant)
    ids = [p.id for p in participants]
    N = len(participants)
    n_generated = N - len(spec.participant)
    seen: set[str] = set()
    for i, pid in enumerate(ids):
        if pid in seen:
            raise SpecError(name, f"participant[{i - n_generated}].id", f"participant id {pid!r} appears twice")
        seen.add(pid)
    hosted = None if modules_for is None else set(modules_for)
    unknown = sorted(hosted - seen) if hosted is not None else []
    if unknown:
        raise SpecError(name, "modules_for", f"unknown participant {unknown[0]!r}; expected a participant id of the world")

    bus_labels = np.empty(N, dtype=np.int64)
    for i, p in enumerate(participants):
        label = grid.bus_by_name.get(str(p.bus))
        if label is None:
            raise SpecError(name, f"participant[{i - n_generated}].bus", f"unknown bus {p.bus!r}; expected a bus id of the grid")
        bus_labels[i] = label
    bus_pos = bus_positions(net, bus_labels)
    check_resources(name, spec, hours=hours, participants=N, buses=len(net.bus))  # with a referenced grid's own
    policies = tuple(policies_of(spec.privacy, participants))
    for problem in privacy_problems(policies, [str(p.bus) for p in participants], lattice=False)[:1]:
        i = problem.participant
        where = f"participant[{i - n_generated}].privacy" if i >= n_generated else "privacy"
        raise SpecError(name, f"{where}.{problem.field}", f"{ids[i]}: {problem}")
    index = time_index(spec, hours)
    fleet = fleet_of(participants, dt_h)
    reference = _island_reference(name, spec, grid, participants, fleet, bus_labels)

    market = spec.market
    mechanism = mechanism or market.mechanism
    horizon = max(1, int(round(24 / dt_h)))
    opf_horizon = max(1, int(round(market.opf_horizon_h / dt_h)))
    series = SeriesSource(name, spec, index, grid, participants, n_generated, seed, base_dir,
                          look_ahead_steps=opf_horizon if mechanism == "opf" else 1)
    series.block_of(0)  # every profile is read once now: a bad one is a SpecError before any run
    extended = pd.date_range(index[0], periods=len(index) + horizon, freq=index.freq)
    strategy = np.array([p.strategy for p in participants])
    return World(
        name=spec.world.name, spec=spec, index=index, dt_h=dt_h, grid=grid, ids=ids,
        kind=np.array([p.kind for p in participants]), bus_pos=bus_pos, strategy=strategy,
        markup_eur_per_kwh=np.array([p.markup_eur_per_kwh for p in participants], dtype=float),
        in_market=np.ones(N, dtype=bool),
        groups=strategy_groups(strategy), fleet=fleet, series=series,
        import_eur_per_kwh=_hourly(market.import_price_eur_per_kwh, extended),
        export_eur_per_kwh=_hourly(market.export_price_eur_per_kwh, extended), horizon_steps=horizon,
        fee_eur_per_kwh=market.fee_eur_per_kwh, mechanism=mechanism,
        clear=None if mechanism == "opf" else clearing_rule(mechanism, market.k_price_k),
        opf_horizon_steps=opf_horizon, reference=reference, seed=seed,
        max_import_kw=spec.grid.connection.max_import_kw if spec.grid.connection else None,
        modules=_plan_modules(name, participants, n_generated, base_dir, hosted), policies=policies,
    )


def _island_reference(name: str, spec: Microworld, grid: GridModel, participants: list[Participant], fleet: Fleet,
                      bus_labels: np.ndarray) -> int | None:
    """The participant whose thermal unit is marked the reference, or that holds an islanded grid's voltage and
    frequency (the largest unit when none is marked); None for a connected grid without a marked unit."""
    p_max = fleet.thermal.p_max_kw
    reference = next((i for i, p in enumerate(participants) if p.assets.thermal is not None and p.assets.thermal.reference),
                     None)
    if grid.connected:
        return reference
    if reference is None:
        cand = np.flatnonzero(p_max > 0)
        if not len(cand):
            raise SpecError(name, "grid.connection", "an islanded grid needs a [grid.connection] or a thermal unit to be its reference")
        reference = int(cand[np.argmax(p_max[cand])])
    add_island_reference(grid, int(bus_labels[reference]), p_max[reference] / 1000)
    return reference


def _plan_modules(name: str, participants: list[Participant], n_generated: int, base_dir: Path | None,
                  hosted: set[str] | None = None) -> dict[int, ModulePlan]:
    """The WASM strategy modules of the hosted participants (None: all), each checked against its manifest."""
    plans = {}
    for i, p in enumerate(participants):
        if p.module is not None and (hosted is None or p.id in hosted):
            try:
                plans[i] = plan_module(i, p.module, base_dir)
            except (ModuleError, ManifestError) as exc:
                raise SpecError(name, f"participant[{i - n_generated}].module", str(exc)) from None
    return plans


def strategy_groups(strategy: np.ndarray) -> dict[str, np.ndarray]:
    """Participant indices per strategy, in the fixed order of STRATEGIES (deterministic)."""
    return {s: np.flatnonzero(strategy == s) for s in STRATEGIES if np.any(strategy == s)}
