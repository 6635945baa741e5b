"""Compiles a microworld spec into a runnable World: a time index, a grid, and columnar arrays.

Every per-participant quantity is a numpy array (N,) or (T, N) so that the step never loops over
participants in Python. Events are compiled into per-step masks and a topology schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection

import numpy as np
import pandas as pd

from plurigrid.assets import profiles as prof
from plurigrid.assets.devices import hvac_decay
from plurigrid.engine.modules import ModuleRunner, load_slot
from plurigrid.grid.build import GridModel, add_island_reference, build_grid, bus_positions
from plurigrid.market.mechanisms import Clearing, OrderBook, clearing_rule
from plurigrid.microworld.generate import generate_participants
from plurigrid.microworld.loader import SpecError
from plurigrid.microworld.spec import STRATEGIES, Microworld, Participant
from plurigrid.strategies.wasm.host import ModuleError
from plurigrid.strategies.wasm.manifest import ManifestError


@dataclass
class World:
    """A compiled microworld. Arrays are indexed [step, participant] or [participant]."""

    name: str
    spec: Microworld
    index: pd.DatetimeIndex
    dt_h: float
    grid: GridModel
    ids: list[str]
    kind: np.ndarray
    bus_pos: np.ndarray  # row position in net.bus of each participant's bus
    strategy: np.ndarray  # strategy name per participant
    load_p_kw: np.ndarray  # (T, N) inflexible + flexible demand before shifting
    load_q_kvar: np.ndarray  # (T, N)
    variable_kw: np.ndarray  # (T, N) available PV + wind (after weather events)
    hydro_kw: np.ndarray  # (T, N)
    battery_kwh: np.ndarray
    battery_kw: np.ndarray
    battery_eff: np.ndarray
    battery_min_kwh: np.ndarray
    battery_soc0_kwh: np.ndarray
    battery_degradation_eur_per_kwh: np.ndarray
    ev_kw: np.ndarray
    ev_eff: np.ndarray
    ev_need_kwh: np.ndarray
    ev_arrive: np.ndarray  # (T, N) bool: an EV arrives at the start of this step
    ev_depart: np.ndarray  # (T, N) bool: the EV leaves at the end of this step
    ev_plugged: np.ndarray  # (T, N) bool
    ev_steps_left: np.ndarray  # (T, N) steps until (and including) the departure step
    thermal_max_kw: np.ndarray
    thermal_min_kw: np.ndarray
    thermal_var_eur_per_kwh: np.ndarray
    thermal_noload_eur_per_h: np.ndarray
    thermal_startup_eur: np.ndarray
    thermal_on0: np.ndarray
    hvac_kw: np.ndarray  # electrical rating (0: no HVAC)
    hvac_gain_k_per_kw: np.ndarray  # indoor temperature change per kW over one step (+ heating, - cooling)
    hvac_decay: np.ndarray  # exp(-dt / RC)
    hvac_min_c: np.ndarray
    hvac_max_c: np.ndarray
    hvac_t0_c: np.ndarray
    hvac_discomfort_eur_per_kh: np.ndarray
    outdoor_c: np.ndarray  # (T, N) outdoor temperature seen by each participant's building
    value_eur_per_kwh: np.ndarray
    premium_eur_per_kwh: np.ndarray  # extra value of energy from the community's own renewables
    flexible_frac: np.ndarray
    max_delay_steps: np.ndarray
    import_eur_per_kwh: np.ndarray  # (T + horizon,) tariffs continue past the horizon for forecasts
    export_eur_per_kwh: np.ndarray  # (T + horizon,)
    horizon_steps: int  # look-ahead of forecasts (one day)
    fee_eur_per_kwh: float
    mechanism: str
    clear: Callable[[OrderBook, int], Clearing] | None  # the order-book mechanism with its parameters bound (None: opf)
    opf_horizon_steps: int  # look-ahead of the opf clearing
    offline: np.ndarray  # (T, N) bool: participant cannot reach the market
    tripped: np.ndarray  # (T, N) bool: participant's generators are unavailable
    line_out: np.ndarray  # (T, n_lines) bool: line out of service at step
    reference: int | None  # participant index of the island reference unit
    seed: int
    max_import_kw: float | None
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # participant indices per strategy
    powerflows: dict[bytes, object] = field(default_factory=dict)  # cached power flow per topology
    opf_networks: dict[int, tuple] = field(default_factory=dict)  # cached OPF feeder model per power-flow model
    modules: ModuleRunner | None = None  # participants whose strategy is a WASM module
    event_starts: dict[int, list[dict]] = field(default_factory=dict)  # the spec's events by the step they start

    @property
    def steps(self) -> int:
        return len(self.index)

    @property
    def n(self) -> int:
        return len(self.ids)


def time_index(spec: Microworld, hours: float | None = None) -> pd.DatetimeIndex:
    """The world's step start times (timezone-aware), optionally cut to the first `hours`."""
    w = spec.world
    res = pd.Timedelta(w.resolution)
    dur = pd.Timedelta(w.duration) if hours is None else pd.Timedelta(hours=hours)
    steps = int(dur // res)
    start = pd.Timestamp(w.start)
    start = start.tz_localize(w.timezone) if start.tzinfo is None else start.tz_convert(w.timezone)
    return pd.date_range(start, periods=max(steps, 1), freq=res)


def _hourly(value: float | list[float], index: pd.DatetimeIndex) -> np.ndarray:
    """A constant, or 24 values by hour of day (tariffs, outdoor temperature), at each step."""
    if isinstance(value, list):
        return np.asarray(value, dtype=float)[index.hour]
    return np.full(len(index), float(value))


def _values_on_index(values: list[float], resolution: str, index: pd.DatetimeIndex) -> np.ndarray:
    """Inline values (one per `resolution`, repeated) sampled at each step start."""
    elapsed = (index - index[0]) // pd.Timedelta(resolution)
    return np.asarray(values, dtype=float)[np.asarray(elapsed) % len(values)]


class _ProfileBuilder:
    """Builds (T, N) profile arrays, batching SimBench lookups into one vectorised call per element table."""

    def __init__(self, name: str, world_spec: Microworld, index: pd.DatetimeIndex, net, base_dir: Path | None) -> None:
        self.name, self.spec, self.index, self.net, self.base_dir = name, world_spec, index, net, base_dir
        self.simbench: dict[str, list[tuple[int, int, float, str]]] = {}

    def _path(self, p: str) -> str:
        path = Path(p)
        return str(path if path.is_absolute() or self.base_dir is None else self.base_dir / path)

    def load(self, where: str, i: int, profile, out_p: np.ndarray) -> None:
        ix = self.index
        src = profile.source
        if src == "constant":
            out_p[:, i] = profile.p_kw
        elif src == "values":
            out_p[:, i] = _values_on_index(profile.p_kw, profile.resolution, ix)
        elif src == "bdew":
            out_p[:, i] = prof.bdew_load_kw(ix, profile.annual_kwh, slp=profile.slp)
        elif src == "csv":
            out_p[:, i] = self._csv(where, profile)
        else:
            self.simbench.setdefault(profile.element, []).append((profile.index, i, 1.0, where))

    def generation(self, where: str, i: int, profile, rated_kw: float, out: np.ndarray, seed: int) -> None:
        ix, loc = self.index, self.spec.world.location
        src = profile.source
        if src == "pvlib":
            per_unit = prof.pv_kw_per_kwp(ix, loc.lat_deg, loc.lon_deg, tilt_deg=profile.tilt_deg,
                                          azimuth_deg=profile.azimuth_deg, altitude_m=loc.altitude_m)
        elif src == "wind-model":
            per_unit = prof.wind_kw_per_kw(ix, seed=seed, mean_wind_speed_m_s=profile.mean_wind_speed_m_s)
        elif src == "run-of-river":
            per_unit = prof.hydro_kw_per_kw(ix, capacity_factor=profile.capacity_factor)
        elif src == "values":
            per_unit = _values_on_index(profile.per_unit, profile.resolution, ix)
        elif src == "csv":
            out[:, i] += self._csv(where, profile)
            return
        else:  # simbench: the element's own absolute profile (its rating is already in it)
            self.simbench.setdefault(profile.element, []).append((profile.index, i, -1.0, where))
            return
        out[:, i] += rated_kw * per_unit

    def _csv(self, where: str, profile) -> np.ndarray:
        try:
            return prof.csv_profile(self._path(profile.path), self.index, profile.column, scale=profile.scale)
        except prof.ProfileError as exc:
            raise SpecError(self.name, where + ".profile", str(exc)) from None

    def flush_simbench(self, load_p: np.ndarray, load_q: np.ndarray, gen: np.ndarray) -> None:
        """One vectorised SimBench lookup per element table, scattered into the (T, N) arrays."""
        from plurigrid.assets.simbench_profiles import element_profiles_kw

        for element, rows in self.simbench.items():
            table = getattr(self.net, element)
            elements = np.array([r[0] for r in rows])
            cols = np.array([r[1] for r in rows])
            sign = np.array([r[2] for r in rows])
            rows_pos = table.index.get_indexer(elements)
            p_all, q_all = element_profiles_kw(self.net, element, self.index)
            p_kw, q_kvar = p_all[:, rows_pos], q_all[:, rows_pos]
            is_load = sign > 0
            load_p[:, cols[is_load]] += p_kw[:, is_load]
            load_q[:, cols[is_load]] += q_kvar[:, is_load]
            gen[:, cols[~is_load]] += np.abs(p_kw[:, ~is_load])


def compile_world(spec: Microworld, name: str, base_dir: Path | None, *, hours: float | None = None,
                  mechanism: str | None = None, seed: int | None = None,
                  modules_for: Collection[str] | None = None) -> World:
    """Builds the grid, participants and every per-step array of a microworld.

    `modules_for` names the participants whose WASM modules are loaded (None: all). A lattice node
    decides only for those it hosts and must not run other hosts' modules; the rest of the World
    is the same, so it still clears identically with their decisions received from elsewhere.
    """
    index = time_index(spec, hours)
    dt_h = pd.Timedelta(spec.world.resolution) / pd.Timedelta(hours=1)
    seed = spec.world.seed if seed is None else seed
    try:
        grid = build_grid(spec.grid, base_dir)
    except ValueError as exc:
        raise SpecError(name, getattr(exc, "path", "grid"), getattr(exc, "message", str(exc))) from None
    net = grid.net
    participants: list[Participant] = []
    if spec.grid.source is not None:
        participants = generate_participants(net, spec.grid, seed)
    participants += list(spec.participant)
    ids = [p.id for p in participants]
    T, N = len(index), len(participants)
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
            raise SpecError(name, f"participant[{i - (N - len(spec.participant))}].bus",
                            f"unknown bus {p.bus!r}; expected a bus id of the grid")
        bus_labels[i] = label
    bus_pos = bus_positions(net, bus_labels)

    z = lambda: np.zeros(N)  # noqa: E731
    load_p, load_q = np.zeros((T, N)), np.zeros((T, N))
    variable, hydro = np.zeros((T, N)), np.zeros((T, N))
    arrays = {k: z() for k in (
        "battery_kwh", "battery_kw", "battery_eff", "battery_min_kwh", "battery_soc0_kwh", "battery_degradation_eur_per_kwh",
        "ev_kw", "ev_eff",
        "ev_need_kwh", "thermal_max_kw", "thermal_min_kw", "thermal_var_eur_per_kwh", "thermal_noload_eur_per_h",
        "thermal_startup_eur", "value_eur_per_kwh", "premium_eur_per_kwh", "flexible_frac", "max_delay_steps")}
    thermal_on0 = np.zeros(N, dtype=bool)
    power_factor = np.ones(N)
    ev_arrive, ev_depart, ev_plugged = (np.zeros((T, N), dtype=bool) for _ in range(3))
    hvac = {k: z() for k in ("hvac_kw", "hvac_gain_k_per_kw", "hvac_decay", "hvac_min_c", "hvac_max_c", "hvac_t0_c",
                             "hvac_discomfort_eur_per_kh")}
    outdoor_c = np.zeros((T, N))
    builder = _ProfileBuilder(name, spec, index, net, base_dir)
    reference: int | None = None
    minutes = np.asarray(index.hour * 60 + index.minute)
    step_min = dt_h * 60
    for i, p in enumerate(participants):
        where = f"participant[{i - n_generated}]" if i >= n_generated else f"generated participant {p.id}"
        a = p.assets
        if a.load is not None:
            builder.load(where + ".assets.load", i, a.load.profile, load_p)
            power_factor[i] = a.load.power_factor
            if a.load.profile.source == "values" and a.load.profile.q_kvar is not None:
                load_q[:, i] = _values_on_index(a.load.profile.q_kvar, a.load.profile.resolution, index)
                power_factor[i] = np.nan
        for kind, target in (("pv", variable), ("wind", variable), ("hydro", hydro)):
            asset = getattr(a, kind)
            if asset is not None:
                rated = asset.kwp if kind == "pv" else asset.p_kw
                builder.generation(f"{where}.assets.{kind}", i, asset.profile, rated, target, seed * 1_000_003 + i)
        if a.battery is not None:
            b = a.battery
            arrays["battery_kwh"][i], arrays["battery_kw"][i], arrays["battery_eff"][i] = b.capacity_kwh, b.power_kw, b.efficiency
            arrays["battery_min_kwh"][i] = b.min_soc_frac * b.capacity_kwh
            arrays["battery_soc0_kwh"][i] = max(b.initial_soc_frac, b.min_soc_frac) * b.capacity_kwh
            arrays["battery_degradation_eur_per_kwh"][i] = b.degradation_cost_eur_per_kwh
        if a.ev is not None:
            e = a.ev
            arr_min = int(e.arrival[:2]) * 60 + int(e.arrival[3:])
            dep_min = int(e.departure[:2]) * 60 + int(e.departure[3:])
            arrays["ev_kw"][i], arrays["ev_eff"][i], arrays["ev_need_kwh"][i] = e.power_kw, e.efficiency, min(e.energy_kwh, e.capacity_kwh)
            ev_arrive[:, i] = (minutes <= arr_min) & (arr_min < minutes + step_min)
            ev_depart[:, i] = (minutes < dep_min) & (dep_min <= minutes + step_min)
            ev_plugged[:, i] = ((minutes >= arr_min) | (minutes < dep_min)) if arr_min > dep_min else ((minutes >= arr_min) & (minutes < dep_min))
        if a.hvac is not None:
            h = a.hvac
            decay = float(hvac_decay(dt_h, h.resistance_k_per_kw, h.capacitance_kwh_per_k))
            sign = 1.0 if h.mode == "heat" else -1.0
            hvac["hvac_kw"][i], hvac["hvac_decay"][i] = h.p_max_kw, decay
            hvac["hvac_gain_k_per_kw"][i] = (1 - decay) * sign * h.resistance_k_per_kw * h.cop
            hvac["hvac_min_c"][i], hvac["hvac_max_c"][i] = h.comfort_min_c, h.comfort_max_c
            hvac["hvac_t0_c"][i] = h.initial_c if h.initial_c is not None else (h.comfort_min_c + h.comfort_max_c) / 2
            hvac["hvac_discomfort_eur_per_kh"][i] = h.discomfort_eur_per_kh
            outdoor_c[:, i] = _hourly(h.outdoor_c, index)
        if a.thermal is not None:
            t = a.thermal
            arrays["thermal_max_kw"][i], arrays["thermal_min_kw"][i] = t.p_max_kw, t.p_min_kw
            arrays["thermal_var_eur_per_kwh"][i] = t.variable_cost_eur_per_mwh / 1000
            arrays["thermal_noload_eur_per_h"][i], arrays["thermal_startup_eur"][i] = t.no_load_cost_eur_per_h, t.startup_cost_eur
            thermal_on0[i] = t.initially_on
            if t.reference and reference is None:
                reference = i
        arrays["value_eur_per_kwh"][i] = p.preferences.value_eur_per_mwh / 1000
        arrays["premium_eur_per_kwh"][i] = p.preferences.local_renewable_premium_eur_per_mwh / 1000
        arrays["flexible_frac"][i] = p.preferences.flexible_frac
        arrays["max_delay_steps"][i] = max(1, round(p.preferences.max_delay_h / dt_h))
    builder.flush_simbench(load_p, load_q, variable)
    has_pf = np.isfinite(power_factor)
    tan_phi = np.sqrt(1 / np.where(has_pf, power_factor, 1.0) ** 2 - 1)
    load_q[:, has_pf] = load_p[:, has_pf] * tan_phi[has_pf]

    if not grid.connected:
        if reference is None:
            cand = np.flatnonzero(arrays["thermal_max_kw"] > 0)
            if not len(cand):
                raise SpecError(name, "grid.connection", "an islanded grid needs a [grid.connection] or a thermal unit to be its reference")
            reference = int(cand[np.argmax(arrays["thermal_max_kw"][cand])])
        add_island_reference(grid, int(bus_labels[reference]), arrays["thermal_max_kw"][reference] / 1000)

    offline, tripped, line_out, variable, event_starts = _compile_events(spec, name, index, ids, grid, variable)
    market = spec.market
    mechanism = mechanism or market.mechanism
    horizon = max(1, int(round(24 / dt_h)))
    extended = pd.date_range(index[0], periods=T + horizon, freq=index.freq)
    modules = _load_modules(name, participants, n_generated, ids, base_dir, hosted)
    return World(
        name=spec.world.name, spec=spec, index=index, dt_h=dt_h, grid=grid, ids=ids,
        kind=np.array([p.kind for p in participants]), bus_pos=bus_pos,
        strategy=np.array([p.strategy for p in participants]),
        groups=strategy_groups(np.array([p.strategy for p in participants])), modules=modules, event_starts=event_starts,
        load_p_kw=load_p, load_q_kvar=load_q, variable_kw=variable, hydro_kw=hydro,
        ev_arrive=ev_arrive, ev_depart=ev_depart, ev_plugged=ev_plugged, thermal_on0=thermal_on0, outdoor_c=outdoor_c, **hvac,
        import_eur_per_kwh=_hourly(market.import_price_eur_per_kwh, extended),
        export_eur_per_kwh=_hourly(market.export_price_eur_per_kwh, extended), horizon_steps=horizon,
        ev_steps_left=_steps_to_departure(ev_depart),
        fee_eur_per_kwh=market.fee_eur_per_kwh, mechanism=mechanism,
        clear=None if mechanism == "opf" else clearing_rule(mechanism, market.k_price_k),
        opf_horizon_steps=max(1, int(round(market.opf_horizon_h / dt_h))),
        offline=offline, tripped=tripped, line_out=line_out, reference=reference, seed=seed,
        max_import_kw=spec.grid.connection.max_import_kw if spec.grid.connection else None,
        **arrays,
    )


def _load_modules(name: str, participants: list[Participant], n_generated: int, ids: list[str],
                  base_dir: Path | None, hosted: set[str] | None = None) -> ModuleRunner | None:
    """Instances of the WASM strategy modules of the hosted participants (None: all), compiled once per content hash."""
    slots = {}
    for i, p in enumerate(participants):
        if p.module is not None and (hosted is None or p.id in hosted):
            try:
                slots[i] = load_slot(i, p.module, base_dir)
            except (ModuleError, ManifestError) as exc:
                raise SpecError(name, f"participant[{i - n_generated}].module", str(exc)) from None
    return ModuleRunner(slots, ids, meter_kwh=np.zeros(len(ids))) if slots else None


def _steps_to_departure(depart: np.ndarray) -> np.ndarray:
    """Steps from each step to the next departure step, inclusive (a large number if none follows)."""
    T = depart.shape[0]
    left = np.full(depart.shape, 10**6, dtype=np.int64)
    nxt = np.full(depart.shape[1], 10**6, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        nxt = np.where(depart[t], 1, nxt + 1)
        left[t] = nxt
    return left


def _event_window(spec: Microworld, name: str, i: int, index: pd.DatetimeIndex, at: str, duration: str | None) -> np.ndarray:
    start = index[0]
    try:
        t0 = start + pd.Timedelta(at)
    except ValueError:
        try:
            t0 = pd.Timestamp(at)
            t0 = t0.tz_localize(index.tz) if t0.tzinfo is None else t0.tz_convert(index.tz)
        except ValueError:
            raise SpecError(name, f"event[{i}].at", f"expected an offset like '6h' or an ISO time, got {at!r}") from None
    t1 = t0 + pd.Timedelta(duration) if duration else index[-1] + pd.Timedelta(days=3650)
    return np.asarray((index >= t0) & (index < t1))


def _compile_events(spec: Microworld, name: str, index: pd.DatetimeIndex, ids: list[str], grid: GridModel,
                    variable: np.ndarray):
    T, N = variable.shape
    offline = np.zeros((T, N), dtype=bool)
    tripped = np.zeros((T, N), dtype=bool)
    line_out = np.zeros((T, len(grid.net.line)), dtype=bool)
    pos = {pid: k for k, pid in enumerate(ids)}
    variable = variable.copy()
    starts: dict[int, list[dict]] = {}
    for i, ev in enumerate(spec.event):
        window = _event_window(spec, name, i, index, ev.at, ev.duration)
        if ev.kind == "weather":
            variable[window] *= ev.scale
        elif ev.kind == "line_outage":
            label = grid.line_by_name.get(ev.line)
            if label is None:
                raise SpecError(name, f"event[{i}].line", f"unknown line {ev.line!r}; expected one of {sorted(grid.line_by_name)[:10]}")
            line_out[window, grid.net.line.index.get_loc(label)] = True
        else:
            if ev.participant not in pos:
                raise SpecError(name, f"event[{i}].participant", f"unknown participant {ev.participant!r}")
            (offline if ev.kind == "participant_offline" else tripped)[window, pos[ev.participant]] = True
        if window.any():
            starts.setdefault(int(np.argmax(window)), []).append(ev.model_dump(exclude_none=True))
    return offline, tripped, line_out, variable, starts


def strategy_groups(strategy: np.ndarray) -> dict[str, np.ndarray]:
    """Participant indices per strategy, in the fixed order of STRATEGIES (deterministic)."""
    return {s: np.flatnonzero(strategy == s) for s in STRATEGIES if np.any(strategy == s)}
