"""Time-series profiles for microworld assets: mean power over each interval of a world's clock.

A microworld's clock is a tz-aware ``pd.DatetimeIndex`` with a fixed resolution (15 min by
default, 1 h in some worlds). Every profile function here takes that index and returns a float64
numpy array of the same length holding the MEAN power over each interval ``[t, t + resolution)``
(kW, or kW per kW(p) of installed capacity where the name says so). Interval means, not point
samples, because settlement needs energy: ``e_kwh = p_kw * dt_h`` is exact only for means.

How each source gets its interval means:

* continuous models (PV, wind) are sampled at the mid-points of fine sub-steps (5 min) and averaged;
* tabulated 15-min profiles (BDEW, SimBench) are read at local wall-clock time and averaged over
  the sub-steps that tile each interval (exact for indexes aligned to the quarter hour);
* CSV profiles are integrated exactly as step functions and re-averaged over the index intervals.

Everything is deterministic: the only randomness (synthetic wind) comes from an explicit seed.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import re
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from plurigrid.errors import PlurigridError

__all__ = [
    "ProfileError",
    "time_index",
    "index_resolution",
    "pv_kw_per_kwp",
    "bdew_load_kw",
    "BDEW_PROFILES",
    "german_public_holidays",
    "wind_speed_m_s",
    "wind_kw_per_kw",
    "turbine_power_frac",
    "hydro_kw_per_kw",
    "csv_profile",
    "constant",
]

_NS_PER_S = 1_000_000_000
_QUARTER_HOUR_NS = 15 * 60 * _NS_PER_S
_SUBSTEP_NS = 5 * 60 * _NS_PER_S  # sampling step of the continuous models (PV, wind)
_EPOCH_2000_NS = pd.Timestamp("2000-01-01T00:00:00Z").value


class ProfileError(PlurigridError, ValueError):
    """A profile cannot be built from the given inputs.

    The message is one line for people: what went wrong, where (file, line, column when there is
    one) and what was expected.
    """


# --------------------------------------------------------------------------------------------
# The world's clock
# --------------------------------------------------------------------------------------------


def time_index(
    start: str | pd.Timestamp | dt.datetime,
    n_steps: int,
    resolution: str | pd.Timedelta = "15min",
    tz: str = "Europe/Berlin",
) -> pd.DatetimeIndex:
    """Build a world clock: ``n_steps`` intervals of ``resolution`` from ``start`` in ``tz``.

    A naive ``start`` is read as local wall time in ``tz``; an aware one is converted to ``tz``.
    Steps are in absolute time, so a day with a DST change has 92 or 100 quarter hours.
    """
    step = _as_timedelta(resolution, "resolution")
    if int(n_steps) < 1:
        raise ProfileError(f"time index: n_steps is {n_steps}; expected at least 1")
    ts = pd.Timestamp(start)
    ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    return pd.date_range(ts, periods=int(n_steps), freq=step)


def index_resolution(index: pd.DatetimeIndex) -> pd.Timedelta:
    """Return the fixed step of a world clock, checking that it is one.

    Uses ``index.freq`` when set, otherwise the (single) spacing of the timestamps.
    """
    _check_index(index)
    if index.freq is not None:
        try:
            step = pd.Timedelta(index.freq)
        except (TypeError, ValueError):
            raise ProfileError(
                f"time index: frequency {index.freq.freqstr!r} has no fixed length; "
                "expected a fixed step such as '15min' or '1h'"
            ) from None
    elif len(index) >= 2:
        diffs_ns = np.diff(_utc_ns(index))
        if np.any(diffs_ns != diffs_ns[0]):
            raise ProfileError(
                "time index: timestamps are not evenly spaced; expected a fixed step "
                "(e.g. pd.date_range(start, periods=n, freq='15min'))"
            )
        step = pd.Timedelta(int(diffs_ns[0]), unit="ns")
    else:
        raise ProfileError(
            "time index: one timestamp and no freq, so the resolution is unknown; "
            "expected an index with freq set (e.g. pd.date_range(start, periods=1, freq='15min'))"
        )
    if step <= pd.Timedelta(0):
        raise ProfileError(f"time index: step is {step}; expected a positive resolution")
    return step


def _check_index(index: object) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise ProfileError(
            f"time index: got {type(index).__name__}; expected a tz-aware pandas DatetimeIndex"
        )
    if len(index) == 0:
        raise ProfileError("time index: it is empty; expected at least one step")
    if index.tz is None:
        raise ProfileError(
            "time index: it has no timezone; expected a tz-aware index (e.g. tz='Europe/Berlin')"
        )


def _utc_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as int64 UTC nanoseconds, whatever unit the index stores."""
    return index.as_unit("ns").asi8


def _as_timedelta(value: object, what: str) -> pd.Timedelta:
    try:
        step = pd.Timedelta(value)
    except (TypeError, ValueError):
        raise ProfileError(f"{what}: {value!r} is not a duration; expected e.g. '15min' or '1h'") from None
    if step <= pd.Timedelta(0):
        raise ProfileError(f"{what}: {value!r} is not positive; expected e.g. '15min' or '1h'")
    return step


def _substep_ns(step_ns: int, grid_ns: int, anchor_ns: int = 0) -> int:
    """Largest sub-step that tiles one interval and lands on the ``grid_ns`` grid."""
    return math.gcd(step_ns, grid_ns, anchor_ns % grid_ns)


def _substep_times_utc_ns(index: pd.DatetimeIndex, sub_ns: int, *, mid: bool) -> np.ndarray:
    """UTC nanoseconds of the sub-steps tiling each interval, shape (len(index), k).

    ``mid=True`` gives sub-step mid-points (for continuous models, midpoint rule),
    ``mid=False`` gives sub-step starts (for step-function tables).
    """
    step_ns = index_resolution(index).value
    k = step_ns // sub_ns
    offsets = np.arange(k, dtype=np.int64) * sub_ns + (sub_ns // 2 if mid else 0)
    return _utc_ns(index)[:, None] + offsets[None, :]


def _wall_clock_ns(utc_ns: np.ndarray, tz: object) -> np.ndarray:
    """Local wall-clock time (as naive nanoseconds) of UTC instants, same shape."""
    flat = pd.DatetimeIndex(utc_ns.ravel(), tz="UTC").tz_convert(tz).tz_localize(None)
    return flat.as_unit("ns").asi8.reshape(utc_ns.shape)


def _quarter_hour_wall_substeps(index: pd.DatetimeIndex) -> np.ndarray:
    """Wall-clock starts of sub-steps that tile each interval on the local quarter-hour grid.

    A 15-min table read at these instants and averaged per row gives the exact interval mean
    for indexes aligned to the quarter hour (also across DST changes, where the wall clock jumps).
    """
    step_ns = index_resolution(index).value
    first_wall_ns = int(_wall_clock_ns(_utc_ns(index)[:1], index.tz)[0])
    sub_ns = _substep_ns(step_ns, _QUARTER_HOUR_NS, first_wall_ns)
    return _wall_clock_ns(_substep_times_utc_ns(index, sub_ns, mid=False), index.tz)


def _check_finite(value: float, what: str, *, low: float | None = None, high: float | None = None) -> float:
    x = float(value)
    if not math.isfinite(x) or (low is not None and x < low) or (high is not None and x > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ProfileError(f"{what} is {value!r}; expected a number in [{lo}, {hi}]")
    return x


# --------------------------------------------------------------------------------------------
# PV: pvlib clear sky -> plane of array -> cell temperature -> PVWatts
# --------------------------------------------------------------------------------------------

# open-rack glass/polymer module, the SAPM cell-temperature coefficients shipped with pvlib
_SAPM_OPEN_RACK = {"a": -3.56, "b": -0.075, "deltaT": 3.0}


@functools.lru_cache(maxsize=16)
def _clear_sky_samples(
    lat_deg: float, lon_deg: float, altitude_m: float, first_ns: int, n_steps: int, step_ns: int
) -> dict[str, np.ndarray]:
    """Sun position and clear-sky irradiance at the sub-step mid-points (read-only arrays).

    Cached because many PV systems in a world share a site and a clock but differ in
    orientation; the solar position is the expensive part (~1 s per site-year at 5 min).
    """
    import pvlib

    index = pd.date_range(pd.Timestamp(first_ns, tz="UTC"), periods=n_steps, freq=pd.Timedelta(step_ns))
    sub_ns = _substep_ns(step_ns, _SUBSTEP_NS)
    times = pd.DatetimeIndex(_substep_times_utc_ns(index, sub_ns, mid=True).ravel(), tz="UTC")
    site = pvlib.location.Location(lat_deg, lon_deg, tz="UTC", altitude=altitude_m)
    sun = site.get_solarposition(times)
    # Ineichen clear sky with the Linke turbidity climatology that pvlib ships (LinkeTurbidities.h5)
    sky = site.get_clearsky(times, model="ineichen", solar_position=sun)
    out = {
        "apparent_zenith": sun["apparent_zenith"].to_numpy(),
        "azimuth": sun["azimuth"].to_numpy(),
        "ghi": sky["ghi"].to_numpy(),
        "dni": sky["dni"].to_numpy(),
        "dhi": sky["dhi"].to_numpy(),
        "dni_extra": pvlib.irradiance.get_extra_radiation(times).to_numpy(),
        "k": np.array(step_ns // sub_ns),
    }
    for arr in out.values():
        arr.flags.writeable = False
    return out


def pv_kw_per_kwp(
    index: pd.DatetimeIndex,
    lat_deg: float,
    lon_deg: float,
    *,
    tilt_deg: float = 30.0,
    azimuth_deg: float = 180.0,
    altitude_m: float = 0.0,
    losses_frac: float = 0.14,
    cloud_scale: float = 1.0,
    albedo: float = 0.25,
    temp_air_c: float = 20.0,
    wind_speed_m_s: float = 1.0,
    gamma_pdc_per_c: float = -0.004,
) -> np.ndarray:
    """Clear-sky PV output in kW AC per kWp DC, mean over each interval of ``index``.

    Model chain (all pvlib): NREL SPA sun position; Ineichen clear-sky irradiance with pvlib's
    shipped Linke turbidity climatology; Hay-Davies transposition onto a fixed plane
    (``tilt_deg`` from horizontal, ``azimuth_deg`` clockwise from north, 180 = south) with ground
    reflection ``albedo``; Fresnel (physical) angle-of-incidence loss on the beam; SAPM cell
    temperature for an open-rack module at a constant ``temp_air_c`` and ``wind_speed_m_s`` (no
    weather data offline); PVWatts DC with temperature coefficient ``gamma_pdc_per_c``; then one
    flat system/inverter loss ``losses_frac`` and an inverter limit of 1 kW AC per kWp.

    Evaluated at 5-min sub-step mid-points and averaged, so a sunrise interval gets its true mean.
    ``cloud_scale`` multiplies the result (weather events scale the clear sky); clear sky is
    an upper envelope: ~1600 kWh/kWp a year in Berlin, where real systems yield ~950.
    Typical peak: ~0.75-0.8 kW/kWp at solar noon in June at 52 °N, 0 at night.
    """
    import pvlib

    step_ns = index_resolution(index).value
    lat = _check_finite(lat_deg, "pv: lat_deg", low=-90.0, high=90.0)
    lon = _check_finite(lon_deg, "pv: lon_deg", low=-180.0, high=180.0)
    tilt = _check_finite(tilt_deg, "pv: tilt_deg", low=0.0, high=90.0)
    azimuth = _check_finite(azimuth_deg, "pv: azimuth_deg", low=0.0, high=360.0)
    loss = _check_finite(losses_frac, "pv: losses_frac", low=0.0, high=1.0)
    scale = _check_finite(cloud_scale, "pv: cloud_scale", low=0.0)

    s = _clear_sky_samples(
        lat, lon, _check_finite(altitude_m, "pv: altitude_m", low=-500.0, high=9000.0),
        int(_utc_ns(index)[0]), len(index), step_ns,
    )
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azimuth, s["apparent_zenith"], s["azimuth"], s["dni"], s["ghi"], s["dhi"],
        dni_extra=s["dni_extra"], albedo=albedo, model="haydavies",
    )
    aoi_deg = pvlib.irradiance.aoi(tilt, azimuth, s["apparent_zenith"], s["azimuth"])
    effective_w_m2 = np.asarray(poa["poa_direct"]) * pvlib.iam.physical(aoi_deg) + np.asarray(
        poa["poa_diffuse"]
    )
    temp_cell_c = pvlib.temperature.sapm_cell(
        np.asarray(poa["poa_global"]), temp_air_c, wind_speed_m_s, **_SAPM_OPEN_RACK
    )
    dc_kw_per_kwp = pvlib.pvsystem.pvwatts_dc(effective_w_m2, temp_cell_c, 1.0, gamma_pdc_per_c)
    ac_kw_per_kwp = np.clip(np.nan_to_num(np.asarray(dc_kw_per_kwp, dtype=float)) * (1.0 - loss), 0.0, 1.0)
    return ac_kw_per_kwp.reshape(len(index), int(s["k"])).mean(axis=1) * scale


# --------------------------------------------------------------------------------------------
# BDEW standard load profiles (demandlib)
# --------------------------------------------------------------------------------------------

# our name -> demandlib ElecSlp column ("h0" means the dynamised household profile)
_ELEC_SLP_COLUMNS = {
    "h0": "h0_dyn",
    "h0_static": "h0",
    **{f"g{i}": f"g{i}" for i in range(7)},
    **{f"l{i}": f"l{i}" for i in range(3)},
}
# our name -> demandlib 2025-revision class (H25, P25, S25 are dynamised by demandlib)
_BDEW25_CLASSES = {"h25": "H25", "g25": "G25", "l25": "L25", "p25": "P25", "s25": "S25"}
BDEW_PROFILES: tuple[str, ...] = tuple(_ELEC_SLP_COLUMNS) + tuple(_BDEW25_CLASSES)


def _easter_sunday(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian computus)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    day = (h + l_ - 7 * m + 33 * month + 19) % 32
    return dt.date(year, month, day)


def german_public_holidays(year: int) -> tuple[dt.date, ...]:
    """Germany's nine nationwide public holidays in ``year`` (sorted).

    New Year, Good Friday, Easter Monday, Labour Day, Ascension, Whit Monday, German Unity Day,
    Christmas Day and Boxing Day. Regional holidays are left out; pass your own list if needed.
    """
    easter = _easter_sunday(year)
    moving = [easter + dt.timedelta(days=d) for d in (-2, 1, 39, 50)]
    fixed = [dt.date(year, m, d) for m, d in ((1, 1), (5, 1), (10, 3), (12, 25), (12, 26))]
    return tuple(sorted(moving + fixed))


@functools.lru_cache(maxsize=8)
def _elec_slp_frame(year: int, holidays: tuple[dt.date, ...]) -> pd.DataFrame:
    from demandlib import bdew

    # demandlib 0.2.2 calls warnings.simplefilter("error") inside ElecSlp, which would turn every
    # later warning in the process into an exception; catch_warnings restores the filters.
    with warnings.catch_warnings():
        return bdew.ElecSlp(year, holidays=list(holidays)).get_profiles()


@functools.lru_cache(maxsize=32)
def _bdew_year_kw_per_annual_kwh(slp: str, year: int, holidays: tuple[dt.date, ...]) -> np.ndarray:
    """15-min mean power (kW) of profile ``slp`` over local calendar ``year`` for 1 kWh/year.

    Renormalised so the year's energy is exactly 1 kWh: demandlib's dynamised h0 sums to
    1.00004-1.0007 and its H25 to ~0.995, which would bias ``annual_kwh`` slightly.
    """
    if slp in _ELEC_SLP_COLUMNS:
        weights = _elec_slp_frame(year, holidays)[_ELEC_SLP_COLUMNS[slp]].to_numpy(dtype=float)
    else:
        from demandlib import bdew

        quarter_hours = pd.date_range(
            dt.datetime(year, 1, 1), dt.datetime(year + 1, 1, 1), freq="15min", inclusive="left"
        )
        profile_class = getattr(bdew, _BDEW25_CLASSES[slp])
        with warnings.catch_warnings():
            weights = profile_class(quarter_hours, holidays=list(holidays)).to_numpy(dtype=float)
    kw = weights * (4.0 / weights.sum())  # sum(kw) * 0.25 h == 1 kWh
    kw.flags.writeable = False
    return kw


def bdew_load_kw(
    index: pd.DatetimeIndex,
    annual_kwh: float,
    slp: str = "h0",
    *,
    holidays: Iterable[dt.date] | None = None,
) -> np.ndarray:
    """BDEW standard load profile in kW, scaled so each local calendar year uses ``annual_kwh``.

    ``slp``: ``h0`` (household, with the BDEW dynamisation demandlib applies), ``h0_static``,
    ``g0``-``g6`` (trade), ``l0``-``l2`` (farms), or the 2025 revision ``h25``, ``g25``, ``l25``,
    ``p25``, ``s25`` (see ``BDEW_PROFILES``). Profiles come from demandlib at 15 min for every
    calendar year the index touches, so weekdays, seasons and holidays fall on the right dates,
    and an index across New Year reads each year's own profile.

    BDEW profiles are wall-clock profiles: they are read at local time in the index's timezone.
    On DST days the world's clock skips (March) or repeats (October) one wall-clock hour, so the
    profile's 02:00-03:00 quarter hours are dropped or read twice (as in metered German data).
    ``holidays``: dates treated as Sundays; ``None`` means Germany's nationwide holidays
    (``german_public_holidays``), ``()`` means none.
    """
    key = str(slp).lower()
    if key not in BDEW_PROFILES:
        raise ProfileError(
            f"bdew: unknown standard load profile {slp!r}; expected one of {', '.join(BDEW_PROFILES)}"
        )
    energy_kwh = _check_finite(annual_kwh, "bdew: annual_kwh", low=0.0)
    wall_ns = _quarter_hour_wall_substeps(index)
    flat = pd.DatetimeIndex(wall_ns.ravel())
    years = flat.year.to_numpy()
    unique_years = np.unique(years)
    given = None if holidays is None else sorted(set(holidays))

    tables, year_offset, year_start_ns = [], {}, {}
    offset = 0
    for year in unique_years.tolist():
        hol = german_public_holidays(year) if given is None else tuple(d for d in given if d.year == year)
        table = _bdew_year_kw_per_annual_kwh(key, year, hol)
        tables.append(table)
        year_offset[year] = offset
        year_start_ns[year] = pd.Timestamp(year, 1, 1).value
        offset += len(table)
    lookup = np.concatenate(tables)
    which = np.searchsorted(unique_years, years)
    base = np.array([year_offset[y] for y in unique_years.tolist()])[which]
    start_ns = np.array([year_start_ns[y] for y in unique_years.tolist()])[which]
    slot = base + (wall_ns.ravel() - start_ns) // _QUARTER_HOUR_NS
    return lookup[slot].reshape(wall_ns.shape).mean(axis=1) * energy_kwh


# --------------------------------------------------------------------------------------------
# Wind: synthetic, seeded, autocorrelated wind speed through a generic power curve
# --------------------------------------------------------------------------------------------


def _wind_speed_samples_m_s(
    utc_ns: np.ndarray,
    *,
    seed: int,
    mean_wind_speed_m_s: float,
    weibull_k: float,
    autocorr_time_h: float,
    n_modes: int,
) -> np.ndarray:
    """Hub-height wind speed at the given instants; depends only on (seed, parameters, instant).

    A stationary Gaussian process with the Ornstein-Uhlenbeck covariance exp(-|lag|/T) is built
    from ``n_modes`` random Fourier modes (frequencies from its Cauchy spectrum, uniform phases),
    evaluated at absolute time; a Gaussian copula then maps it onto a Weibull(k, scale) marginal
    whose mean is ``mean_wind_speed_m_s``. Because the process is a function of absolute time,
    any window of any world with the same seed sees the same wind.
    """
    from scipy import special

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ProfileError(f"wind: seed is {seed!r}; expected a non-negative integer")
    mean_v = _check_finite(mean_wind_speed_m_s, "wind: mean_wind_speed_m_s", low=0.0)
    k = _check_finite(weibull_k, "wind: weibull_k", low=0.1)
    corr_s = _check_finite(autocorr_time_h, "wind: autocorr_time_h", low=1e-3) * 3600.0
    # the constant tags this stream so other seeded models with the same seed are independent
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x77696E64]))
    omega_rad_s = rng.standard_cauchy(n_modes) / corr_s
    phase_rad = rng.uniform(0.0, 2.0 * np.pi, n_modes)
    amplitude = math.sqrt(2.0 / n_modes)

    t_s = (utc_ns.ravel() - _EPOCH_2000_NS).astype(np.float64) / _NS_PER_S
    z = np.empty_like(t_s)
    chunk = 4096  # bounds memory to chunk * n_modes floats
    for i in range(0, len(t_s), chunk):
        z[i : i + chunk] = np.cos(np.outer(t_s[i : i + chunk], omega_rad_s) + phase_rad).sum(axis=1)
    z *= amplitude
    # Weibull quantile of Phi(z): scale * (-ln(1 - Phi(z)))^(1/k), with 1 - Phi(z) = Phi(-z)
    scale_m_s = mean_v / math.gamma(1.0 + 1.0 / k)
    return (scale_m_s * (-special.log_ndtr(-z)) ** (1.0 / k)).reshape(utc_ns.shape)


def turbine_power_frac(
    v_m_s: np.ndarray,
    *,
    cut_in_m_s: float = 3.0,
    rated_m_s: float = 12.0,
    cut_out_m_s: float = 25.0,
) -> np.ndarray:
    """Generic turbine power curve: output as a fraction of rated power for wind speeds.

    0 below cut-in and from cut-out on, 1 between rated and cut-out, and in between the cubic
    ramp (v³ - v_in³) / (v_rated³ - v_in³), i.e. power in the wind at constant efficiency.
    """
    if not 0.0 <= cut_in_m_s < rated_m_s <= cut_out_m_s:
        raise ProfileError(
            f"wind: power curve cut-in {cut_in_m_s}, rated {rated_m_s}, cut-out {cut_out_m_s} m/s; "
            "expected 0 <= cut-in < rated <= cut-out"
        )
    v = np.asarray(v_m_s, dtype=float)
    ramp = (v**3 - cut_in_m_s**3) / (rated_m_s**3 - cut_in_m_s**3)
    return np.where((v < cut_in_m_s) | (v >= cut_out_m_s), 0.0, np.clip(ramp, 0.0, 1.0))


def wind_speed_m_s(
    index: pd.DatetimeIndex,
    *,
    seed: int,
    mean_wind_speed_m_s: float = 7.0,
    weibull_k: float = 2.0,
    autocorr_time_h: float = 12.0,
    n_modes: int = 256,
) -> np.ndarray:
    """Synthetic hub-height wind speed, mean over each interval (see ``wind_kw_per_kw``)."""
    step_ns = index_resolution(index).value
    times = _substep_times_utc_ns(index, _substep_ns(step_ns, _SUBSTEP_NS), mid=True)
    v = _wind_speed_samples_m_s(
        times, seed=seed, mean_wind_speed_m_s=mean_wind_speed_m_s, weibull_k=weibull_k,
        autocorr_time_h=autocorr_time_h, n_modes=n_modes,
    )
    return v.mean(axis=1)


def wind_kw_per_kw(
    index: pd.DatetimeIndex,
    *,
    seed: int,
    mean_wind_speed_m_s: float = 7.0,
    weibull_k: float = 2.0,
    autocorr_time_h: float = 12.0,
    cut_in_m_s: float = 3.0,
    rated_m_s: float = 12.0,
    cut_out_m_s: float = 25.0,
    n_modes: int = 256,
) -> np.ndarray:
    """Synthetic wind-turbine output in kW per kW rated, mean over each interval, in [0, 1].

    No weather data is available offline, so this is a documented stand-in: hub-height wind
    speed is a seeded stationary process with Weibull(``weibull_k``) marginal of mean
    ``mean_wind_speed_m_s`` and autocorrelation exp(-lag / ``autocorr_time_h``) (an
    Ornstein-Uhlenbeck process behind a Gaussian copula), sampled every 5 min, passed through
    ``turbine_power_frac`` and averaged per interval. Same seed -> same output for the same
    timestamps, whatever the window and whatever else was generated; different seeds give
    independent sites. Defaults give a capacity factor of roughly 0.3-0.35.
    """
    step_ns = index_resolution(index).value
    times = _substep_times_utc_ns(index, _substep_ns(step_ns, _SUBSTEP_NS), mid=True)
    v = _wind_speed_samples_m_s(
        times, seed=seed, mean_wind_speed_m_s=mean_wind_speed_m_s, weibull_k=weibull_k,
        autocorr_time_h=autocorr_time_h, n_modes=n_modes,
    )
    frac = turbine_power_frac(v, cut_in_m_s=cut_in_m_s, rated_m_s=rated_m_s, cut_out_m_s=cut_out_m_s)
    return frac.mean(axis=1)


# --------------------------------------------------------------------------------------------
# Hydro and constants
# --------------------------------------------------------------------------------------------


def hydro_kw_per_kw(index: pd.DatetimeIndex, *, capacity_factor: float = 0.6) -> np.ndarray:
    """Run-of-river hydro in kW per kW rated: a constant ``capacity_factor`` at every step.

    River flow changes over days to weeks, far slower than a microworld's horizon, so a constant
    is the honest model without flow data; scale it with events for droughts or floods.
    """
    _check_index(index)
    cf = _check_finite(capacity_factor, "hydro: capacity_factor", low=0.0, high=1.0)
    return np.full(len(index), cf)


def constant(index: pd.DatetimeIndex, value_kw: float) -> np.ndarray:
    """The same power ``value_kw`` at every step (e.g. a base load or a fixed setpoint)."""
    _check_index(index)
    return np.full(len(index), _check_finite(value_kw, "constant: value_kw"))


# --------------------------------------------------------------------------------------------
# CSV profiles
# --------------------------------------------------------------------------------------------

_TIME_COLUMN_NAMES = ("time", "timestamp", "datetime")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


def csv_profile(
    path: str | os.PathLike[str],
    index: pd.DatetimeIndex,
    column: str | int | None = None,
    *,
    scale: float = 1.0,
    step: str | pd.Timedelta | None = None,
    sep: str = ",",
) -> np.ndarray:
    """Read a power profile (mean kW per row) from a CSV and average it onto ``index``.

    Layouts (an optional header row is detected: it is a header if any cell is not a number):

    * **timestamped**: a column named ``time``/``timestamp``/``datetime``, or else a non-numeric
      first column, holds ISO 8601 timestamps, each starting its row's interval; the row lasts
      until the next timestamp (the last row as long as the one before, or ``step``).
      Timestamps with a UTC offset are exact; naive ones are local time in the index's timezone.
      The CSV must cover the whole span of ``index`` (no wrapping to other years).
    * **values only**: rows are consecutive intervals of length ``step`` (default: the index
      resolution) starting at the index's first timestamp; e.g. 24 rows with ``step='1h'`` give
      one day for a 15-min world.

    Rows are step functions, so the result is their exact time-weighted mean over each index
    interval: finer CSVs are averaged, coarser ones repeated. ``column`` picks a value column by
    header name or by position among the value columns (needed when there are several); in a
    file without a header the columns are named by their 1-based position ('2', '3', ...).
    ``scale`` multiplies the values. Problems raise ``ProfileError`` naming the file.
    """
    where = os.fspath(path)
    factor = _check_finite(scale, f"{where}: scale")
    step_ns = index_resolution(index).value
    raw = _read_csv_cells(where, sep)
    header = _header_row(raw)
    body = raw.iloc[1:] if header is not None else raw
    body = body.dropna(how="all")
    if body.empty:
        raise ProfileError(f"{where}: no data rows; expected rows of power values in kW")

    names = list(header) if header is not None else [str(i + 1) for i in range(raw.shape[1])]
    time_pos = _time_column(names if header is not None else None, body)
    value_pos = [i for i in range(raw.shape[1]) if i != time_pos]
    pos = _pick_column(where, names, value_pos, column)
    values_kw = _parse_values(where, body.iloc[:, pos], names[pos]) * factor

    first_ns, last_ns = int(_utc_ns(index)[0]), int(_utc_ns(index)[-1]) + step_ns
    if time_pos is None:
        row_ns = _as_timedelta(step, f"{where}: step").value if step is not None else step_ns
        edges_ns = first_ns + np.arange(len(values_kw) + 1, dtype=np.int64) * row_ns
        if edges_ns[-1] < last_ns:
            covered = pd.Timedelta(int(edges_ns[-1] - first_ns))
            needed = pd.Timedelta(last_ns - first_ns)
            raise ProfileError(
                f"{where}: {len(values_kw)} rows of {pd.Timedelta(row_ns)} cover {covered} but the "
                f"world spans {needed}; expected more rows or step= set to the length of one row"
            )
    else:
        starts_ns = _parse_times(where, body.iloc[:, time_pos], index.tz)
        if len(starts_ns) < 2 and step is None:
            raise ProfileError(f"{where}: one timestamped row; expected at least two rows or step= set")
        if step is not None:
            last_row_ns = _as_timedelta(step, f"{where}: step").value
        else:
            last_row_ns = int(starts_ns[-1] - starts_ns[-2])
        edges_ns = np.append(starts_ns, starts_ns[-1] + last_row_ns)
        if edges_ns[0] > first_ns or edges_ns[-1] < last_ns:
            fmt = lambda ns: pd.Timestamp(int(ns), tz="UTC").tz_convert(index.tz).isoformat()
            raise ProfileError(
                f"{where}: covers {fmt(edges_ns[0])} to {fmt(edges_ns[-1])}; expected coverage of "
                f"the world's span {fmt(first_ns)} to {fmt(last_ns)}"
            )

    # Exact interval means of a step function: cumulative energy is piecewise linear in time.
    t_s = (edges_ns - edges_ns[0]).astype(np.float64) / _NS_PER_S
    energy_kws = np.concatenate(([0.0], np.cumsum(values_kw * np.diff(t_s))))
    bounds_ns = np.append(_utc_ns(index), last_ns)
    e_at = np.interp((bounds_ns - edges_ns[0]).astype(np.float64) / _NS_PER_S, t_s, energy_kws)
    return np.diff(e_at) / (step_ns / _NS_PER_S)


def _read_csv_cells(where: str, sep: str) -> pd.DataFrame:
    try:
        return pd.read_csv(
            where, header=None, dtype=str, sep=sep, skipinitialspace=True, skip_blank_lines=False,
            keep_default_na=False, na_values=[""],
        )
    except FileNotFoundError:
        raise ProfileError(f"{where}: file not found; expected a CSV profile at this path") from None
    except IsADirectoryError:
        raise ProfileError(f"{where}: is a directory; expected a CSV file") from None
    except pd.errors.EmptyDataError:
        raise ProfileError(f"{where}: file is empty; expected rows of power values in kW") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProfileError(f"{where}: not a readable CSV ({detail}); expected comma-separated rows") from None


def _is_number(cell: object) -> bool:
    if not isinstance(cell, str):
        return cell is None or (isinstance(cell, float) and math.isnan(cell))
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _header_row(raw: pd.DataFrame) -> list[str] | None:
    first = raw.iloc[0].tolist()
    if all(_is_number(c) for c in first):
        return None
    # a first row that is a timestamp plus numbers is data, not a header
    if (first and not _is_number(first[0]) and all(_is_number(c) for c in first[1:])
            and not pd.isna(pd.to_datetime(pd.Series([first[0]]), format="ISO8601", errors="coerce").iloc[0])):
        return None
    return [("" if pd.isna(c) else str(c).strip()) for c in first]


def _time_column(names: list[str] | None, body: pd.DataFrame) -> int | None:
    if names is not None:
        for i, name in enumerate(names):
            if name.lower() in _TIME_COLUMN_NAMES:
                return i
    first = body.iloc[:, 0].dropna()
    if len(first) and not all(_is_number(c) for c in first.iloc[:5]):
        return 0
    return None


def _pick_column(where: str, names: list[str], value_pos: list[int], column: str | int | None) -> int:
    shown = ", ".join(repr(names[i]) for i in value_pos)
    if not value_pos:
        raise ProfileError(f"{where}: no value column; expected a column of power values in kW")
    if column is None:
        if len(value_pos) > 1:
            raise ProfileError(f"{where}: {len(value_pos)} value columns ({shown}); pass column= to pick one")
        return value_pos[0]
    if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
        if not 0 <= column < len(value_pos):
            raise ProfileError(
                f"{where}: no value column number {column}; expected 0..{len(value_pos) - 1} ({shown})"
            )
        return value_pos[int(column)]
    for i in value_pos:
        if names[i] == column:
            return i
    raise ProfileError(f"{where}: no column {column!r}; expected one of {shown}")


def _parse_values(where: str, cells: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(cells.str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        row = bad[0]
        cell = cells.iloc[row]
        shown = "an empty cell" if pd.isna(cell) else repr(cell)
        raise ProfileError(
            f"{where}: line {cells.index[row] + 1}, column {name!r}: {shown} is not a number; "
            "expected a power value in kW"
        )
    return values


def _parse_times(where: str, cells: pd.Series, tz: object) -> np.ndarray:
    text = cells.fillna("").astype(str).str.strip()
    # utc=True reads offset-less text as UTC; only used here to find unreadable cells
    bad = np.flatnonzero(pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True).isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise ProfileError(
            f"{where}: line {cells.index[row] + 1}: cannot read timestamp {text.iloc[row]!r}; "
            "expected ISO 8601 such as 2024-06-01T12:00:00+02:00"
        )
    aware = text.str.contains(_TZ_SUFFIX).to_numpy()
    if aware.any() and not aware.all():
        row = int(np.flatnonzero(aware != aware[0])[0])
        raise ProfileError(
            f"{where}: line {cells.index[row] + 1}: timestamp {text.iloc[row]!r} "
            f"{'has a' if aware[row] else 'has no'} UTC offset unlike line {cells.index[0] + 1}; "
            "expected all timestamps with offsets or none"
        )
    times = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=bool(aware.all())))
    if times.tz is None:
        try:
            times = times.tz_localize(tz, ambiguous="infer", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # pytz/zoneinfo raise subclasses of ValueError
            raise ProfileError(
                f"{where}: local timestamps are ambiguous or do not exist at a DST change ({exc}); "
                "expected timestamps with UTC offsets (e.g. +01:00)"
            ) from None
    ns = times.as_unit("ns").asi8
    steps = np.diff(ns)
    if np.any(steps <= 0):
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ProfileError(
            f"{where}: line {cells.index[row] + 1}: timestamp {text.iloc[row]!r} does not come after "
            "the one before; expected strictly increasing timestamps"
        )
    return ns
