"""A world's per-step, per-participant inputs, built a block of steps at a time.

Why: a year of a 9,000-participant grid is 35,136 × 8,814 values per quantity, 2.5 GB each in
float64; a run needs only the steps it is at (and the OPF's look-ahead). So compiling a world
turns each participant's profiles into a recipe (`SeriesSource`), and a run asks for `Series`
blocks: load, renewable availability, events, EV presence and outdoor temperature for a window.

Blocks are canonical: step k always comes from block k // BLOCK_STEPS, which spans that block's
steps plus the longest look-ahead anyone asks for, so the values a step sees never depend on who
asked first (replicas of a lattice must compute identical bytes). Profiles are functions of
absolute time (pvlib, BDEW, SimBench, the seeded wind model), so a block equals the same rows of
a whole-horizon array; inline values repeat from the world's start; CSV profiles are read and
checked against the whole horizon at compile time and kept per step (one column per participant
that uses one).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from plurigrid.assets import profiles as prof
from plurigrid.grid.build import GridModel
from plurigrid.microworld.loader import SpecError
from plurigrid.microworld.spec import Microworld, Participant, PerUnitValues, ValuesProfile, clock_minutes

BLOCK_DAYS = 7
_NO_DEPARTURE = 10**6  # steps to the next departure when none follows before the end of the run


@dataclass(frozen=True)
class Series:
    """Rows of per-step inputs (kW, bool, °C); row 0 is step `start`."""

    start: int
    load_kw: np.ndarray  # (n, N) inflexible + flexible demand before shifting
    load_kvar: np.ndarray
    variable_kw: np.ndarray  # available PV + wind (after weather events)
    hydro_kw: np.ndarray
    offline: np.ndarray  # bool: participant cannot reach the market
    tripped: np.ndarray  # bool: participant's generators are unavailable
    line_out: np.ndarray  # (n, lines) bool: line out of service
    ev_arrive: np.ndarray  # bool: an EV arrives at the start of this step
    ev_depart: np.ndarray  # bool: the EV leaves at the end of this step
    ev_plugged: np.ndarray
    ev_steps_left: np.ndarray  # steps until (and including) the departure step
    outdoor_c: np.ndarray  # outdoor temperature at each participant's building

    def rows(self, k: int, n: int) -> Series:
        """Steps k..k+n-1 (views)."""
        a = k - self.start
        return replace(self, start=k, **{f: getattr(self, f)[a:a + n] for f in _ARRAYS})

    def row(self, k: int) -> Series:
        """Step k, every array one row: (N,) (views)."""
        a = k - self.start
        return replace(self, start=k, **{f: getattr(self, f)[a] for f in _ARRAYS})

    @property
    def available_kw(self) -> np.ndarray:
        """Renewable power available: PV, wind and hydro of generators that are not tripped."""
        return np.where(self.tripped, 0.0, self.variable_kw + self.hydro_kw)


_ARRAYS = tuple(f.name for f in fields(Series) if f.name != "start")


def _values_on_index(values: list[float], resolution: str, index: pd.DatetimeIndex, start: pd.Timestamp) -> np.ndarray:
    """Inline values (one per `resolution`, repeated from the world's start) sampled at each step start."""
    elapsed = (index - start) // pd.Timedelta(resolution)
    return np.asarray(values, dtype=float)[np.asarray(elapsed) % len(values)]


def _hourly(value: float | list[float], index: pd.DatetimeIndex) -> np.ndarray:
    """A constant, or 24 values by hour of day (tariffs, outdoor temperature), at each step."""
    if isinstance(value, list):
        return np.asarray(value, dtype=float)[index.hour]
    return np.full(len(index), float(value))


def _zeros(n: int, width: int, dtype: type = float) -> np.ndarray:
    """A read-only block of zeros that takes no memory (for quantities no participant has)."""
    return np.broadcast_to(np.zeros((), dtype=dtype), (n, width))


class SeriesSource:
    """How to build any block of a world's per-step inputs (see the module docstring)."""

    def __init__(self, name: str, spec: Microworld, index: pd.DatetimeIndex, grid: GridModel,
                 participants: list[Participant], n_generated: int, seed: int, base_dir: Path | None,
                 look_ahead_steps: int) -> None:
        self.index, self.grid, self.n = index, grid, len(participants)
        self.steps = len(index)
        dt_h = pd.Timedelta(spec.world.resolution) / pd.Timedelta(hours=1)
        self.block_steps = max(1, int(round(BLOCK_DAYS * 24 / dt_h)))
        self.look_ahead = max(1, look_ahead_steps)
        self.step_min = dt_h * 60
        self.location = spec.world.location
        self._csv_load: dict[int, np.ndarray] = {}  # participant → (T,) kW
        self._csv_gen: dict[int, np.ndarray] = {}
        self._constant = np.zeros(self.n)
        self._values: list[tuple[int, ValuesProfile]] = []  # (participant, its profile)
        self._bdew: dict[str, list[tuple[int, float]]] = defaultdict(list)  # slp → (participant, annual kWh)
        self._pv: dict[tuple, list[tuple[int, float]]] = defaultdict(list)  # (tilt, azimuth, target) → (i, kWp)
        self._wind: list[tuple] = []  # (i, rated kW, seed, mean wind speed, target)
        self._hydro: dict[float, list[tuple[int, float, str]]] = defaultdict(list)  # capacity factor → (i, rated, target)
        self._per_unit: list[tuple[int, PerUnitValues, float, str]] = []  # (i, profile, rated, target)
        self._simbench: dict[str, list[tuple[int, int, float]]] = defaultdict(list)  # element → (row, i, sign)
        self._q_values: list[tuple[int, ValuesProfile]] = []  # those with q_kvar
        self._power_factor = np.ones(self.n)
        self._hvac_outdoor: list[tuple[int, float | list[float]]] = []
        self._ev: list[int] = []
        self._arrival_min, self._departure_min = np.zeros(self.n, dtype=np.int64), np.zeros(self.n, dtype=np.int64)
        self._start = index[0]
        for i, p in enumerate(participants):
            where = f"participant[{i - n_generated}]" if i >= n_generated else f"generated participant {p.id}"
            self._recipe(name, where, i, p, seed, base_dir)
        self._tan_phi = np.sqrt(1 / np.where(np.isfinite(self._power_factor), self._power_factor, 1.0) ** 2 - 1)
        self._events = _compile_events(spec, name, index, [p.id for p in participants], grid)
        self.event_starts = self._events.starts  # the spec's events by the step they start

    # -------------------------------------------------------------- recipes

    def _recipe(self, name: str, where: str, i: int, p: Participant, seed: int, base_dir: Path | None) -> None:
        a = p.assets
        if a.load is not None:
            self._load_recipe(name, where + ".assets.load", i, a.load.profile, base_dir)
            self._power_factor[i] = a.load.power_factor
            if a.load.profile.source == "values" and a.load.profile.q_kvar is not None:
                self._q_values.append((i, a.load.profile))
                self._power_factor[i] = np.nan
        for kind, target in (("pv", "variable"), ("wind", "variable"), ("hydro", "hydro")):
            asset = getattr(a, kind)
            if asset is not None:
                rated = asset.kwp if kind == "pv" else asset.p_kw
                self._generation_recipe(name, f"{where}.assets.{kind}", i, asset.profile, rated, target,
                                        seed * 1_000_003 + i, base_dir)
        if a.ev is not None:
            self._ev.append(i)
            self._arrival_min[i], self._departure_min[i] = clock_minutes(a.ev.arrival), clock_minutes(a.ev.departure)
        if a.hvac is not None:
            self._hvac_outdoor.append((i, a.hvac.outdoor_c))

    def _csv(self, name: str, where: str, profile, base_dir: Path | None) -> np.ndarray:
        path = Path(profile.path)
        path = path if path.is_absolute() or base_dir is None else base_dir / path
        try:
            return prof.csv_profile(str(path), self.index, profile.column, scale=profile.scale)
        except prof.ProfileError as exc:
            raise SpecError(name, where + ".profile", str(exc)) from None

    def _load_recipe(self, name: str, where: str, i: int, profile, base_dir: Path | None) -> None:
        src = profile.source
        if src == "constant":
            self._constant[i] = profile.p_kw
        elif src == "values":
            self._values.append((i, profile))
        elif src == "bdew":
            self._bdew[profile.slp].append((i, profile.annual_kwh))
        elif src == "csv":
            self._csv_load[i] = self._csv(name, where, profile, base_dir)
        else:
            self._simbench[profile.element].append((profile.index, i, 1.0))

    def _generation_recipe(self, name: str, where: str, i: int, profile, rated_kw: float, target: str, seed: int,
                           base_dir: Path | None) -> None:
        src = profile.source
        if src == "pvlib":
            self._pv[(profile.tilt_deg, profile.azimuth_deg, target)].append((i, rated_kw))
        elif src == "wind-model":
            self._wind.append((i, rated_kw, seed, profile.mean_wind_speed_m_s, target))
        elif src == "run-of-river":
            self._hydro[profile.capacity_factor].append((i, rated_kw, target))
        elif src == "values":
            self._per_unit.append((i, profile, rated_kw, target))
        elif src == "csv":
            self._csv_gen[i] = self._csv_gen.get(i, 0.0) + self._csv(name, where, profile, base_dir)
        else:  # simbench: the element's own absolute profile (its rating is already in it)
            self._simbench[profile.element].append((profile.index, i, -1.0))

    # -------------------------------------------------------------- blocks

    def block_of(self, k: int) -> Series:
        """The canonical block holding step k (and the look-ahead after its last step)."""
        first = k // self.block_steps * self.block_steps
        return self.block(first, min(first + self.block_steps + self.look_ahead, self.steps))

    def block(self, start: int, stop: int) -> Series:
        """Steps start..stop-1 of every per-step input."""
        ix = self.index[start:stop]
        n, N = len(ix), self.n
        load_p = np.zeros((n, N))
        load_p += self._constant
        load_q = np.zeros((n, N))
        variable, hydro = np.zeros((n, N)), np.zeros((n, N))
        targets = {"variable": variable, "hydro": hydro}
        for i, profile in self._values:
            load_p[:, i] = _values_on_index(profile.p_kw, profile.resolution, ix, self._start)
        for slp, rows in self._bdew.items():
            shape = prof.bdew_load_kw(ix, 1.0, slp=slp)  # the profile is linear in the annual energy
            for i, annual_kwh in rows:
                load_p[:, i] = shape * annual_kwh
        for i, column in self._csv_load.items():
            load_p[:, i] = column[start:stop]
        for i, profile in self._q_values:
            assert profile.q_kvar is not None  # _recipe lists only the profiles that have q values
            load_q[:, i] = _values_on_index(profile.q_kvar, profile.resolution, ix, self._start)
        loc = self.location
        for (tilt, azimuth, target), rows in self._pv.items():
            per_unit = prof.pv_kw_per_kwp(ix, loc.lat_deg, loc.lon_deg, tilt_deg=tilt, azimuth_deg=azimuth,
                                          altitude_m=loc.altitude_m)
            for i, rated in rows:
                targets[target][:, i] += rated * per_unit
        for i, rated, seed, mean_speed, target in self._wind:
            targets[target][:, i] += rated * prof.wind_kw_per_kw(ix, seed=seed, mean_wind_speed_m_s=mean_speed)
        for cf, river_rows in self._hydro.items():
            per_unit = prof.hydro_kw_per_kw(ix, capacity_factor=cf)
            for i, rated, target in river_rows:
                targets[target][:, i] += rated * per_unit
        for i, unit_profile, rated, target in self._per_unit:
            targets[target][:, i] += rated * _values_on_index(unit_profile.per_unit, unit_profile.resolution, ix, self._start)
        for i, column in self._csv_gen.items():
            variable[:, i] += column[start:stop]
        self._simbench_block(ix, load_p, load_q, variable)
        has_pf = np.isfinite(self._power_factor)
        load_q[:, has_pf] = load_p[:, has_pf] * self._tan_phi[has_pf]
        offline, tripped, line_out = self._event_block(start, stop, variable, hydro)
        ev_arrive, ev_depart, ev_plugged, ev_steps_left = self._ev_block(start, stop)
        return Series(start, load_p, load_q, variable, hydro, offline, tripped, line_out, ev_arrive, ev_depart,
                      ev_plugged, ev_steps_left, self._outdoor_block(ix))

    def _simbench_block(self, ix: pd.DatetimeIndex, load_p: np.ndarray, load_q: np.ndarray, gen: np.ndarray) -> None:
        """One vectorised SimBench lookup per element table, scattered into the block."""
        from plurigrid.assets.simbench_profiles import element_profiles_kw

        net = self.grid.net
        for element, rows in self._simbench.items():
            table = getattr(net, element)
            elements = np.array([r[0] for r in rows])
            cols = np.array([r[1] for r in rows])
            sign = np.array([r[2] for r in rows])
            rows_pos = table.index.get_indexer(elements)
            p_all, q_all = element_profiles_kw(net, element, ix)
            p_kw, q_kvar = p_all[:, rows_pos], q_all[:, rows_pos]
            is_load = sign > 0
            load_p[:, cols[is_load]] += p_kw[:, is_load]
            load_q[:, cols[is_load]] += q_kvar[:, is_load]
            gen[:, cols[~is_load]] += np.abs(p_kw[:, ~is_load])

    def _event_block(self, start: int, stop: int, variable: np.ndarray, hydro: np.ndarray) -> tuple[np.ndarray, ...]:
        n = stop - start
        offline, tripped = np.zeros((n, self.n), dtype=bool), np.zeros((n, self.n), dtype=bool)
        line_out = np.zeros((n, len(self.grid.net.line)), dtype=bool)
        for kind, window, column, scale in self._events.windows:
            w = window[start:stop]
            if not w.any():
                continue
            if kind == "weather":
                variable[w] *= scale
            elif kind == "drought":
                hydro[w] *= scale
            elif kind == "line_outage":
                line_out[w, column] = True
            else:
                (offline if kind == "participant_offline" else tripped)[w, column] = True
        return offline, tripped, line_out

    def _never_departs(self, start: int, stop: int) -> np.ndarray:
        """Steps-left of a participant whose EV never leaves again: past any departure, growing to the run's end."""
        return (_NO_DEPARTURE + self.steps - np.arange(start, stop, dtype=np.int64))[:, None]

    def _ev_block(self, start: int, stop: int) -> tuple[np.ndarray, ...]:
        n = stop - start
        never = self._never_departs(start, stop)
        if not self._ev:
            no = _zeros(n, self.n, bool)
            return no, no, no, np.broadcast_to(never, (n, self.n))
        # look far enough past the block to find each next departure: the schedule repeats daily, so
        # an EV that does not leave within two days never leaves
        end = min(stop + 2 * int(round(24 * 60 / self.step_min)) + 2, self.steps)
        ix = self.index[start:end]
        minutes = np.asarray(ix.hour * 60 + ix.minute)[:, None]
        ev = np.array(self._ev)
        arr, dep = self._arrival_min[ev][None, :], self._departure_min[ev][None, :]
        step_min = self.step_min
        arrive = (minutes <= arr) & (arr < minutes + step_min)
        depart = (minutes < dep) & (dep <= minutes + step_min)
        plugged = np.where(arr > dep, (minutes >= arr) | (minutes < dep), (minutes >= arr) & (minutes < dep))
        left = np.empty(depart.shape, dtype=np.int64)
        nxt = np.full(len(ev), _NO_DEPARTURE + self.steps - end, dtype=np.int64)
        for t in range(len(ix) - 1, -1, -1):
            nxt = np.where(depart[t], 1, nxt + 1)
            left[t] = nxt
        out = [np.zeros((n, self.n), dtype=bool) for _ in range(3)] + [np.repeat(never, self.n, axis=1)]
        for target, values in zip(out, (arrive, depart, plugged, left)):
            target[:, ev] = values[:n]
        return tuple(out)

    def _outdoor_block(self, ix: pd.DatetimeIndex) -> np.ndarray:
        if not self._hvac_outdoor:
            return _zeros(len(ix), self.n)
        outdoor = np.zeros((len(ix), self.n))
        for i, value in self._hvac_outdoor:
            outdoor[:, i] = _hourly(value, ix)
        return outdoor


@dataclass
class _Events:
    """Each event as (kind, (T,) bool window, column it applies to, scale) and the steps where events start; a
    weather event's hydro_scale is its own kind, "drought"."""

    windows: list[tuple[str, np.ndarray, int, float]]
    starts: dict[int, list[dict]]


def _event_window(index: pd.DatetimeIndex, t0: pd.Timestamp, duration: str | None) -> np.ndarray:
    t1 = t0 + pd.Timedelta(duration) if duration else index[-1] + pd.Timedelta(days=3650)
    return np.asarray((index >= t0) & (index < t1))


def _compile_events(spec: Microworld, name: str, index: pd.DatetimeIndex, ids: list[str], grid: GridModel) -> _Events:
    pos = {pid: k for k, pid in enumerate(ids)}
    windows: list[tuple[str, np.ndarray, int, float]] = []
    starts: dict[int, list[dict]] = {}
    for i, ev in enumerate(spec.event):
        window = _event_window(index, ev.start_in(spec.world), ev.duration)  # `at` was checked with the spec
        if ev.kind == "weather":  # Event's validator requires a scale, a hydro_scale or both
            if ev.scale is not None:
                windows.append(("weather", window, -1, ev.scale))
            if ev.hydro_scale is not None:
                windows.append(("drought", window, -1, ev.hydro_scale))
        elif ev.kind == "line_outage":
            assert ev.line is not None  # Event's validator requires it of a line outage
            label = grid.line_by_name.get(ev.line)
            if label is None:
                raise SpecError(name, f"event[{i}].line", f"unknown line {ev.line!r}; expected one of {sorted(grid.line_by_name)[:10]}")
            windows.append(("line_outage", window, grid.net.line.index.get_loc(label), 1.0))
        else:
            if ev.participant not in pos:
                raise SpecError(name, f"event[{i}].participant", f"unknown participant {ev.participant!r}")
            windows.append((ev.kind, window, pos[ev.participant], 1.0))
        if window.any():
            starts.setdefault(int(np.argmax(window)), []).append(ev.model_dump(exclude_none=True))
    return _Events(windows, starts)


class Window:
    """The block of a world's inputs a run is stepping through (rebuilt as the run moves on)."""

    def __init__(self, source: SeriesSource) -> None:
        self.source = source
        self._block: Series | None = None
        self._index = -1

    def _at(self, k: int) -> Series:
        index = k // self.source.block_steps
        if index != self._index:
            self._block, self._index = self.source.block_of(k), index
        assert self._block is not None
        return self._block

    def row(self, k: int) -> Series:
        """Step k's inputs, (N,) each."""
        return self._at(k).row(k)

    def rows(self, k: int, n: int) -> Series:
        """Steps k..k+n-1 (n at most the source's look-ahead)."""
        return self._at(k).rows(k, n)
