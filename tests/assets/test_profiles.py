"""Profiles: interval-mean power on a world clock, for PV, BDEW loads, wind, hydro, CSV, SimBench."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest

from plurigrid.assets import profiles as P
from plurigrid.assets import simbench_profiles as S

BERLIN = (52.52, 13.405)


def day(date: str, resolution: str = "15min", days: int = 1) -> pd.DatetimeIndex:
    n = days * int(pd.Timedelta("1D") / pd.Timedelta(resolution))
    return P.time_index(date, n, resolution, tz="Europe/Berlin")


# ---------------------------------------------------------------------------------------- clock


def test_index_without_timezone_is_rejected():
    with pytest.raises(P.ProfileError, match="no timezone"):
        P.constant(pd.date_range("2024-01-01", periods=4, freq="15min"), 1.0)


def test_index_with_uneven_steps_is_rejected():
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 01:00"], tz="UTC")
    with pytest.raises(P.ProfileError, match="evenly spaced"):
        P.index_resolution(index)


# ------------------------------------------------------------------------------------------- PV


def test_pv_is_zero_at_night_and_positive_at_noon():
    index = day("2024-06-21")
    pv = P.pv_kw_per_kwp(index, *BERLIN)
    local_hour = index.hour
    assert np.all(pv[(local_hour < 3) | (local_hour >= 23)] == 0.0)
    assert pv[index.get_loc(pd.Timestamp("2024-06-21 13:00", tz="Europe/Berlin"))] > 0.5
    assert np.all(pv >= 0.0)


def test_pv_peak_is_plausible_in_june_and_lower_in_december():
    june = P.pv_kw_per_kwp(day("2024-06-21"), *BERLIN)
    december = P.pv_kw_per_kwp(day("2024-12-21"), *BERLIN)
    assert 0.65 <= june.max() <= 0.9
    assert december.max() < 0.65 * june.max()
    assert december.sum() < 0.4 * june.sum()  # daily energy: short, low-sun winter day


def test_pv_hourly_values_are_means_of_quarter_hours_not_point_samples():
    quarter = P.pv_kw_per_kwp(day("2024-06-21"), *BERLIN)
    hourly = P.pv_kw_per_kwp(day("2024-06-21", "1h"), *BERLIN)
    np.testing.assert_allclose(hourly, quarter.reshape(24, 4).mean(axis=1), rtol=0, atol=1e-12)
    # on the morning ramp the hour's mean is above its first quarter hour and below its last
    h = 8
    assert quarter[4 * h] < hourly[h] < quarter[4 * h + 3]
    # the sunrise interval has a small but non-zero mean where a point sample at its start is 0
    first = int(np.flatnonzero(quarter > 0)[0])
    assert 0.0 < quarter[first] < 0.05


def test_pv_cloud_scale_and_orientation():
    index = day("2024-06-21")
    clear = P.pv_kw_per_kwp(index, *BERLIN)
    np.testing.assert_allclose(P.pv_kw_per_kwp(index, *BERLIN, cloud_scale=0.5), 0.5 * clear)
    east = P.pv_kw_per_kwp(index, *BERLIN, azimuth_deg=90.0)
    assert index[east.argmax()] < index[clear.argmax()]  # an east roof peaks before a south roof
    with pytest.raises(P.ProfileError, match="lat_deg"):
        P.pv_kw_per_kwp(index, 95.0, 13.4)


# ----------------------------------------------------------------------------------------- BDEW


def test_bdew_h0_full_year_energy_equals_annual_kwh():
    index = P.time_index("2023-01-01", 35040, "15min")
    p_kw = P.bdew_load_kw(index, 3500.0, "h0")
    assert p_kw.sum() * 0.25 == pytest.approx(3500.0, rel=0.005)
    assert np.all(p_kw > 0)
    # dynamisation: household winter evenings draw more than summer ones
    assert p_kw[index.month == 1].mean() > 1.2 * p_kw[index.month == 7].mean()


def test_bdew_hourly_is_interval_mean_of_quarter_hours():
    quarter = P.bdew_load_kw(P.time_index("2023-01-01", 35040, "15min"), 3500.0, "g0")
    hourly = P.bdew_load_kw(P.time_index("2023-01-01", 8760, "1h"), 3500.0, "g0")
    assert hourly.sum() * 1.0 == pytest.approx(quarter.sum() * 0.25, rel=1e-12)
    np.testing.assert_allclose(hourly, quarter.reshape(-1, 4).mean(axis=1), rtol=1e-12)


def test_bdew_across_new_year_reads_each_years_profile():
    both = P.bdew_load_kw(P.time_index("2023-12-31", 192), 1000.0, "h0")
    before = P.bdew_load_kw(P.time_index("2023-12-31", 96), 1000.0, "h0")
    after = P.bdew_load_kw(P.time_index("2024-01-01", 96), 1000.0, "h0")
    np.testing.assert_array_equal(both, np.concatenate([before, after]))


def test_bdew_holidays_are_sundays():
    christmas = P.bdew_load_kw(day("2023-12-25"), 10000.0, "g0")  # a Monday
    workday = P.bdew_load_kw(day("2023-12-25"), 10000.0, "g0", holidays=())
    assert christmas.sum() < 0.8 * workday.sum()
    assert dt.date(2024, 3, 29) in P.german_public_holidays(2024)  # Good Friday
    assert dt.date(2025, 6, 9) in P.german_public_holidays(2025)  # Whit Monday


def test_bdew_leaves_warning_filters_alone():
    # demandlib's ElecSlp calls warnings.simplefilter("error"); it must not leak out of here
    before = list(warnings.filters)
    P.bdew_load_kw(P.time_index("2031-06-01", 4), 1000.0, "h0")  # a year no other test builds
    assert list(warnings.filters) == before


def test_bdew_unknown_profile_is_rejected():
    with pytest.raises(P.ProfileError, match="unknown standard load profile 'x9'"):
        P.bdew_load_kw(day("2023-01-01"), 1000.0, "x9")


# ----------------------------------------------------------------------------------------- wind


def test_wind_is_deterministic_per_seed_and_bounded():
    index = day("2024-03-01", days=3)
    a = P.wind_kw_per_kw(index, seed=7)
    np.testing.assert_array_equal(a, P.wind_kw_per_kw(index, seed=7))
    assert not np.allclose(a, P.wind_kw_per_kw(index, seed=8))
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert a.std() > 0.01


def test_wind_does_not_depend_on_the_window():
    three_days = P.wind_kw_per_kw(day("2024-03-01", days=3), seed=3)
    middle_day = P.wind_kw_per_kw(day("2024-03-02"), seed=3)
    np.testing.assert_allclose(three_days[96:192], middle_day, rtol=0, atol=1e-12)


def test_wind_speed_has_the_requested_mean_and_is_autocorrelated():
    index = P.time_index("2024-01-01", 24 * 366, "1h")
    v = P.wind_speed_m_s(index, seed=1, mean_wind_speed_m_s=8.0)
    assert v.mean() == pytest.approx(8.0, rel=0.12)
    assert np.corrcoef(v[:-1], v[1:])[0, 1] > 0.85  # hour to hour, not white noise
    assert np.corrcoef(v[:-72], v[72:])[0, 1] < 0.5  # but forgets within days


def test_turbine_power_curve_shape():
    v = np.array([0.0, 2.9, 3.0, 7.5, 12.0, 20.0, 24.9, 25.0, 30.0])
    frac = P.turbine_power_frac(v)
    np.testing.assert_allclose(frac[[0, 1, 2, 7, 8]], 0.0)
    np.testing.assert_allclose(frac[[4, 5, 6]], 1.0)
    assert 0.0 < frac[3] < 0.5


# --------------------------------------------------------------------------------- hydro, const


def test_hydro_and_constant():
    index = day("2024-01-01")
    np.testing.assert_array_equal(P.hydro_kw_per_kw(index, capacity_factor=0.4), np.full(96, 0.4))
    np.testing.assert_array_equal(P.constant(index, 2.5), np.full(96, 2.5))
    with pytest.raises(P.ProfileError, match="capacity_factor"):
        P.hydro_kw_per_kw(index, capacity_factor=1.5)


# ------------------------------------------------------------------------------------------ CSV


def test_csv_round_trip_and_resampling(tmp_path):
    index = P.time_index("2024-03-31", 192)  # 48 h across the spring DST change
    p_kw = P.bdew_load_kw(index, 4000.0, "h0")
    path = tmp_path / "load.csv"
    pd.DataFrame({"time": [t.isoformat() for t in index], "p_kw": p_kw}).to_csv(path, index=False)
    np.testing.assert_allclose(P.csv_profile(path, index), p_kw, rtol=1e-12)
    hourly_index = P.time_index("2024-03-31", 48, "1h")
    np.testing.assert_allclose(
        P.csv_profile(path, hourly_index, "p_kw", scale=2.0), 2.0 * p_kw.reshape(-1, 4).mean(axis=1), rtol=1e-12
    )


def test_csv_naive_local_timestamps_and_coarse_rows(tmp_path):
    path = tmp_path / "hourly.csv"
    path.write_text("timestamp,a,b\n" + "".join(f"2024-06-01 {h:02d}:00,{h},{-h}\n" for h in range(24)))
    index = day("2024-06-01")
    got = P.csv_profile(path, index[:92], "b")  # ends before the file's last row ends
    np.testing.assert_array_equal(got, -np.repeat(np.arange(23.0), 4))
    with pytest.raises(P.ProfileError, match="2 value columns"):
        P.csv_profile(path, index)


def test_csv_values_only(tmp_path):
    path = tmp_path / "day.csv"
    path.write_text("".join(f"{h}\n" for h in range(24)))
    index = day("2024-06-01")
    np.testing.assert_array_equal(P.csv_profile(path, index, step="1h"), np.repeat(np.arange(24.0), 4))
    with pytest.raises(P.ProfileError, match="24 rows of 0 days 00:15:00 cover"):
        P.csv_profile(path, index)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time,p_kw\n2024-06-01T00:00+02:00,1\n2024-06-01T00:15+02:00,x\n", r"line 3, column 'p_kw': 'x' is not a number"),
        ("time,p_kw\n2024-06-01T00:00+02:00,1\nyesterday,2\n", r"line 3: cannot read timestamp 'yesterday'"),
        ("time,p_kw\n2024-06-01T00:15+02:00,1\n2024-06-01T00:00+02:00,2\n", r"line 3: .* does not come after"),
        ("time,p_kw\n2023-06-01T00:00+02:00,1\n2023-06-01T00:15+02:00,2\n", r"covers 2023-06-01T00:00:00\+02:00"),
        ("time,p_kw\n", r"no data rows"),
    ],
)
def test_bad_csv_names_the_file(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(P.ProfileError, match=match) as info:
        P.csv_profile(path, day("2024-06-01"))
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_missing_csv_names_the_file(tmp_path):
    with pytest.raises(P.ProfileError, match=r"nope\.csv: file not found"):
        P.csv_profile(tmp_path / "nope.csv", day("2024-06-01"))


# ------------------------------------------------------------------------------------- SimBench

CODE = "1-LV-rural1--0-sw"


@pytest.fixture(scope="module")
def rural_net(tmp_path_factory):
    """The net loaded once through an empty cache (writes it), then again from that cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PLURIGRID_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        fresh = S.simbench_net(CODE)
        assert list(S.simbench_cache_dir().glob(f"{CODE}.*.pkl")), "first load should write the cache"
        cached = S.simbench_net(CODE)
    finally:
        mp.undo()
    return fresh, cached


def test_simbench_cache_reproduces_the_net(rural_net):
    import pandapower as pp

    fresh, cached = rural_net
    assert fresh is not cached
    assert pp.toolbox.nets_equal(fresh, cached)
    assert fresh.profiles.keys() == cached.profiles.keys()
    for name, table in fresh.profiles.items():
        pd.testing.assert_frame_equal(table, cached.profiles[name])


def _direct_kw(net, element, column, index_local, steps, quarter_hours_per_step, suffix=""):
    """Reference: p_mw * profile * 1000 read straight from net.profiles by wall-clock date."""
    table = net.profiles["load" if element == "load" else "renewables"]
    out = []
    for i in steps:
        start = index_local[i].tz_localize(None)
        rows = [int((start - pd.Timestamp("2016-01-01")) / pd.Timedelta("15min")) + j for j in range(quarter_hours_per_step)]
        out.append(
            [net[element][column].iloc[e] * table[net[element].profile.iloc[e] + suffix].iloc[rows].mean() * 1000.0
             for e in range(len(net[element]))]
        )
    return np.array(out)


@pytest.mark.parametrize("resolution", ["15min", "1h"])
def test_simbench_element_profiles_match_direct_computation(rural_net, resolution):
    net = rural_net[1]
    index = day("2016-07-14", resolution)
    k = int(pd.Timedelta(resolution) / pd.Timedelta("15min"))
    steps = [0, 5, len(index) // 2, len(index) - 1]
    p_kw, q_kvar = S.element_profiles_kw(net, "load", index)
    assert p_kw.shape == q_kvar.shape == (len(index), len(net.load))
    np.testing.assert_allclose(p_kw[steps], _direct_kw(net, "load", "p_mw", index, steps, k, "_pload"), rtol=1e-12)
    np.testing.assert_allclose(q_kvar[steps], _direct_kw(net, "load", "q_mvar", index, steps, k, "_qload"), rtol=1e-12)
    sgen_p_kw, _ = S.element_profiles_kw(net, "sgen", index)
    np.testing.assert_allclose(sgen_p_kw[steps], _direct_kw(net, "sgen", "p_mw", index, steps, k), rtol=1e-12)
    assert sgen_p_kw[index.hour == 1].max() == 0.0 and sgen_p_kw.max() > 0.0  # PV: dark at 1 am


def test_simbench_element_profiles_match_simbench_get_absolute_values(rural_net):
    import simbench

    net = rural_net[1]
    index = day("2016-03-27")  # the spring DST day: wall-clock rows, one hour skipped
    rows = S.simbench_rows(index)[:, 0]
    reference = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    for element, column in [("load", "p_mw"), ("load", "q_mvar"), ("sgen", "p_mw")]:
        p_kw, q_kvar = S.element_profiles_kw(net, element, index)
        mine = p_kw if column == "p_mw" else q_kvar
        np.testing.assert_allclose(mine, reference[(element, column)].to_numpy()[rows] * 1000.0, rtol=1e-12)


def test_simbench_profile_names_missing_or_empty(rural_net):
    import copy

    net = copy.deepcopy(rural_net[1])
    first = net.load.index[0]
    net.load.loc[first, "profile"] = None  # no profile: nominal power, as in SimBench
    p_kw, _ = S.element_profiles_kw(net, "load", day("2016-01-05"))
    np.testing.assert_array_equal(p_kw[:, 0], net.load.p_mw.iloc[0] * 1000.0)
    net.load.loc[first, "profile"] = "nope"
    with pytest.raises(S.SimbenchError, match=r"net.load row 0 .* needs profile column 'nope_pload'"):
        S.element_profiles_kw(net, "load", day("2016-01-05"))


def test_simbench_rows_wrap_around_the_year_end():
    index = P.time_index("2023-12-31 23:30", 4)
    np.testing.assert_array_equal(S.simbench_rows(index)[:, 0], [364 * 96 + 94, 364 * 96 + 95, 0, 1])
    aligned = S.simbench_rows(P.time_index("2023-01-01", 96 * 14), align_weekday=True)[:, 0]
    weekday_2016 = pd.Timestamp("2016-01-01").dayofweek
    world_weekday = P.time_index("2023-01-01", 96 * 14).dayofweek.to_numpy()
    np.testing.assert_array_equal((weekday_2016 + aligned // 96) % 7, world_weekday)
    assert aligned.min() >= 0


def test_simbench_errors_are_one_line():
    with pytest.raises(S.SimbenchError, match=r"^simbench:foo: unknown SimBench code; expected e.g. 1-LV-rural1--0-sw"):
        S.simbench_net("foo")
    with pytest.raises(S.SimbenchError, match="element 'line'"):
        S.element_profiles_kw(None, "line", day("2024-01-01"))
