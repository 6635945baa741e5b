"""Semantic checks of a microworld and resource guards: what no single field model can see.

Why: a spec whose every field is in range can still be impossible (an event after the end of the
world, a participant on a bus no line reaches) or too big for the machine (a year at one-minute
steps of ten thousand participants). Such a spec must be refused in one line naming the field,
before anything is allocated, not fail hours into a run or end in a MemoryError. `check_spec` runs
after the models validate (the loader calls it); `check_resources` runs again in `compile_world`,
once a referenced grid's participants and buses are known and `hours`/`seed` overrides are applied.

An inline grid's references (buses, lines, participants) are checked here too, though building the
grid checks them again: for a spec of 80,000 buses building the pandapower net takes seconds, and a
typo must be refused before that. What needs a referenced grid or a file (generated participants'
ids, CSV profiles, modules) is checked where the grid is built.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from plurigrid.microworld.loader import SpecError
from plurigrid.microworld.spec import MAX_HORIZON, MAX_INT64, Microworld
from plurigrid.untrusted import size_text

# What a run holds, measured on a one-participant world (peak memory grows ~3 KiB per step: the per-step
# series, the index, tariffs and the report) and read off the code for the rest: a block of inputs spans
# a week plus the look-ahead, records are gathered a day at a time.
STEP_BYTES = 3 * 1024
BLOCK_BYTES_PER_PARTICIPANT = 128  # a block's per-participant inputs, float64 and bool, with temporaries
RECORD_BYTES_PER_PARTICIPANT = 256  # a day of per-participant records and their Arrow copy
RECORD_BYTES_PER_BUS = 64  # a day of voltages and loadings
BLOCK_DAYS = 8  # a week's block and a day of forecast
CSV_BYTES_PER_STEP = 8  # a CSV profile is read for the whole horizon
# Time per step: measured the same way (one participant, 0.7 ms); per participant and bus, estimates from
# benchmarks/bench_year.py (a year of 8,814 participants in some 10 minutes: about 2 µs per participant-step).
STEP_S = 7e-4
PARTICIPANT_STEP_S = 2e-6
BUS_STEP_S = 1e-6
MAX_RUN_S = 7 * 86400  # past a week of simulation a spec is a slip of units, not a plan


def check_spec(name: str, spec: Microworld) -> None:
    """Refuses (SpecError) a spec that is impossible as a whole or too big for this machine."""
    try:
        spec.world.start_time()
    except ValueError as exc:
        raise SpecError(name, "world.start", str(exc)) from None
    if spec.grid.source is None:
        _check_references(name, spec)
    _check_participants(name, spec)
    _check_transformers(name, spec)
    _check_connected(name, spec)
    _check_events(name, spec)
    check_resources(name, spec, hours=None, participants=len(spec.participant), buses=len(spec.grid.bus))


def _check_references(name: str, spec: Microworld) -> None:
    """An inline grid's ids are unique and every bus, line and participant named exists (as `build_grid` and
    `compile_world` say it, in the same order)."""
    grid = spec.grid
    buses: set[str] = set()
    for i, b in enumerate(grid.bus):
        if b.id in buses:
            raise SpecError(name, f"grid.bus[{i}].id", f"bus id {b.id!r} appears twice")
        buses.add(b.id)

    def known(path: str, bus: str) -> None:
        if bus not in buses:
            raise SpecError(name, path, f"unknown bus {bus!r}; expected one of {_some(buses)}")

    lines: set[str] = set()
    for i, ln in enumerate(grid.line):
        known(f"grid.line[{i}].from_bus", ln.from_bus)
        known(f"grid.line[{i}].to_bus", ln.to_bus)
        if ln.id in lines:
            raise SpecError(name, f"grid.line[{i}].id", f"line id {ln.id!r} appears twice")
        lines.add(ln.id)
    for i, t in enumerate(grid.transformer):
        known(f"grid.transformer[{i}].hv_bus", t.hv_bus)
        known(f"grid.transformer[{i}].lv_bus", t.lv_bus)
    switches: set[str] = set()
    for i, sw in enumerate(grid.switch):
        known(f"grid.switch[{i}].bus", sw.bus)
        if sw.to_bus is not None:
            known(f"grid.switch[{i}].to_bus", sw.to_bus)
        elif sw.line not in lines:
            raise SpecError(name, f"grid.switch[{i}].line", f"unknown line {sw.line!r}; expected one of {_some(lines)}")
        if sw.id in switches:
            raise SpecError(name, f"grid.switch[{i}].id", f"switch id {sw.id!r} appears twice")
        switches.add(sw.id)
    if grid.connection is not None:
        known("grid.connection.bus", grid.connection.bus)
    ids: set[str] = set()
    for i, p in enumerate(spec.participant):
        if p.id in ids:
            raise SpecError(name, f"participant[{i}].id", f"participant id {p.id!r} appears twice")
        ids.add(p.id)
    for i, p in enumerate(spec.participant):
        if str(p.bus) not in buses:
            raise SpecError(name, f"participant[{i}].bus", f"unknown bus {p.bus!r}; expected a bus id of the grid")
    for i, ev in enumerate(spec.event):
        if ev.line is not None and ev.line not in lines:
            raise SpecError(name, f"event[{i}].line", f"unknown line {ev.line!r}; expected one of {_some(lines)}")
        if ev.participant is not None and ev.participant not in ids:
            raise SpecError(name, f"event[{i}].participant", f"unknown participant {ev.participant!r}")


def _some(names: set[str]) -> str:
    """The first names in order, for a message (a grid may have 80,000 buses)."""
    first = sorted(names)[:10]
    return str(first) if len(names) <= 10 else f"{str(first)[:-1]}, ... ({len(names):,} in all)]"


def _check_participants(name: str, spec: Microworld) -> None:
    references = []
    for i, p in enumerate(spec.participant):
        where = f"participant[{i}].assets"
        for kind in ("load", "pv", "wind", "hydro"):
            asset = getattr(p.assets, kind)
            if asset is not None and asset.profile.source == "simbench":
                raise SpecError(name, f"{where}.{kind}.profile", "a simbench profile belongs to the participants "
                                "Plurigrid generates from a simbench: grid; expected another source")
        if p.assets.thermal is not None and p.assets.thermal.reference:
            references.append(i)
    if len(references) > 1:
        raise SpecError(name, f"participant[{references[1]}].assets.thermal.reference", "a second reference unit; "
                        f"participant[{references[0]}] is already the reference (expected at most one)")


def _check_transformers(name: str, spec: Microworld) -> None:
    kv = {b.id: b.vn_kv for b in spec.grid.bus}
    seen: set[str] = set()
    for i, t in enumerate(spec.grid.transformer):
        if t.id in seen:
            raise SpecError(name, f"grid.transformer[{i}].id", f"transformer id {t.id!r} appears twice")
        seen.add(t.id)
        if t.hv_bus in kv and t.lv_bus in kv and kv[t.hv_bus] < kv[t.lv_bus]:
            raise SpecError(name, f"grid.transformer[{i}].hv_bus", f"bus {t.hv_bus!r} ({kv[t.hv_bus]:g} kV) is below "
                            f"lv_bus {t.lv_bus!r} ({kv[t.lv_bus]:g} kV); expected the higher voltage on hv_bus")


def _check_connected(name: str, spec: Microworld) -> None:
    """Every participant of an inline grid sits on a bus that lines, transformers and closed switches join to the
    reference bus."""
    grid = spec.grid
    ids = [b.id for b in grid.bus]
    opened = {sw.line for sw in grid.switch if sw.line is not None and not sw.closed}
    branches = ([(ln.from_bus, ln.to_bus) for ln in grid.line if ln.id not in opened]
                + [(t.hv_bus, t.lv_bus) for t in grid.transformer]
                + [(sw.bus, sw.to_bus) for sw in grid.switch if sw.to_bus is not None and sw.closed])
    buses = [str(p.bus) for p in spec.participant]
    slack = _reference_bus(spec)
    if grid.source is not None or slack is None:
        return  # a referenced grid, or an island without a unit (compile_world says it needs one)
    root = {b: b for b in ids}

    def find(b: str) -> str:
        while root[b] != b:
            root[b] = root[root[b]]
            b = root[b]
        return b

    for a, b in branches:
        root[find(a)] = find(b)
    for i, bus in enumerate(buses):
        if find(bus) != find(slack):
            raise SpecError(name, f"participant[{i}].bus", f"bus {bus!r} is not joined to the reference bus {slack!r} "
                            "by any line, transformer or closed switch; expected a connected grid")


def _reference_bus(spec: Microworld) -> str | None:
    """The slack: the connection's bus, else the bus of the island's reference unit (marked, else the largest)."""
    if spec.grid.connection is not None:
        return spec.grid.connection.bus
    units = [(p.assets.thermal.reference, p.assets.thermal.p_max_kw, -i, str(p.bus))
             for i, p in enumerate(spec.participant) if p.assets.thermal is not None]
    return max(units)[3] if units else None


def _check_events(name: str, spec: Microworld) -> None:
    world = spec.world
    start, end = world.start_time(), world.end_time
    ids = {p.id: p for p in spec.participant}
    for i, ev in enumerate(spec.event):
        try:
            t0 = ev.start_in(world)
        except (ValueError, OverflowError) as exc:
            raise SpecError(name, f"event[{i}].at", str(exc)) from None
        if not start <= t0 < end:
            raise SpecError(name, f"event[{i}].at", f"{ev.at!r} is {t0.isoformat()}, outside the world's horizon; "
                            f"expected from {start.isoformat()} to before {end.isoformat()}")
        target = ids.get(ev.participant or "")
        if ev.kind == "generator_trip" and target is not None and not any(
                getattr(target.assets, kind) is not None for kind in ("pv", "wind", "hydro", "thermal")):
            raise SpecError(name, f"event[{i}].participant", f"participant {ev.participant!r} has no generator to trip")


def memory_limit_bytes() -> int:
    """Half of this machine's memory (or of the container's limit, if lower): what one run may plan to use."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            total = min(total, int(Path(path).read_text().strip()))
        except (OSError, ValueError):  # no such cgroup, or "max"
            continue
    return total // 2


def check_resources(name: str, spec: Microworld, *, hours: float | None, participants: int, buses: int,
                    seed: int | None = None) -> None:
    """Refuses a run whose per-step arrays would not fit in memory or that would take more than a week.

    `hours` and `seed` are the run's overrides (None: the spec's); `participants` and `buses` count the
    world's (a lower bound before a referenced grid is loaded). The estimate is worked out before
    anything per step is allocated.
    """
    if seed is not None and not 0 <= seed <= MAX_INT64:
        raise SpecError(name, "seed", f"must be from 0 to {MAX_INT64:,}, got {seed}")
    where = "world.duration" if hours is None else "hours"
    res = pd.Timedelta(spec.world.resolution)
    if hours is None:
        horizon = pd.Timedelta(spec.world.duration)
    elif hours * 3600 > MAX_HORIZON.total_seconds():
        raise SpecError(name, where, f"must be at most {MAX_HORIZON.days * 24:,} (100 years), got {hours:g}")
    else:
        horizon = pd.Timedelta(hours=hours)
    steps = max(1, int(horizon // res))
    day_steps = max(1, int(pd.Timedelta(days=1) // res))
    block_steps = min(steps, BLOCK_DAYS * day_steps + int(pd.Timedelta(hours=spec.market.opf_horizon_h) // res))
    csv = sum(1 for p in spec.participant for a in (p.assets.load, p.assets.pv, p.assets.wind, p.assets.hydro)
              if a is not None and a.profile.source == "csv")
    per_step = STEP_BYTES + CSV_BYTES_PER_STEP * csv + len(spec.event)  # an event is a bool per step
    held = (block_steps * participants * BLOCK_BYTES_PER_PARTICIPANT
            + min(steps, day_steps) * (participants * RECORD_BYTES_PER_PARTICIPANT + buses * RECORD_BYTES_PER_BUS))
    need, limit = steps * per_step + held, memory_limit_bytes()
    size = f"{steps:,} steps of {spec.world.resolution} with {participants:,} participant(s) and {buses:,} bus(es)"
    if need > limit:
        fits = max(0, (limit - held) // per_step)
        raise SpecError(name, where, f"{size} need about {size_text(need)} of memory for per-step arrays; at most "
                        f"{size_text(limit)} here (half this machine's memory), about {fits:,} steps of this world")
    step_s = STEP_S + participants * PARTICIPANT_STEP_S + buses * BUS_STEP_S
    run_s = steps * step_s
    if run_s > MAX_RUN_S:
        fits = int(MAX_RUN_S / step_s)
        raise SpecError(name, where, f"{size} would take about {run_s / 86400:,.0f} days to simulate; at most "
                        f"{MAX_RUN_S // 86400} days, about {fits:,} steps of this world")
