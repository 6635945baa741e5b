"""The congested-feeder library world: what the `opf` mechanism is for.

Twelve EV homes sit at the end of 700 m of NAYY 4x150 SE. Under pay-as-clear every EV charges on
arrival and the AC power flow shows the far end far below 0.9 pu in the evening. Under opf the
truthful homes' charging moves into the night valley of the tariff, the feeder stays within its
limits, every EV still leaves full, and while the voltage limit binds the far homes' nodal price rises
above the head's. With a second cable laid in parallel the prices never split.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from plurigrid.microworld.loader import resolve

from ..recorded import Recorded as RunRecord
from ..recorded import recorded

WORLD = "congested-feeder"
LONG = "head-far1"  # the 700 m stretch between the head cabinet and the far homes
HEAD, FAR = ("head",), ("far1", "far2")
EXACT = {"energy_residual_wh": 0, "money_residual_micro": 0}


def _reinforced_world() -> RunRecord:
    """The same world under opf with a second, identical cable laid in parallel to the long stretch."""
    name, text, base = resolve(WORLD)
    data = tomllib.loads(text)
    (line,) = [line for line in data["grid"]["line"] if line["id"] == LONG]
    data["grid"]["line"].append(dict(line, id=f"{LONG}-new"))
    return recorded(data, mechanism="opf")


@pytest.fixture(scope="module")
def uncontrolled() -> RunRecord:
    return recorded(WORLD, mechanism="pay-as-clear")


@pytest.fixture(scope="module")
def cleared() -> RunRecord:
    return recorded(WORLD, mechanism="opf")


@pytest.fixture(scope="module")
def reinforced() -> RunRecord:
    return _reinforced_world()


def _bus_names(record: RunRecord) -> np.ndarray:
    return np.asarray(record.world.grid.net.bus["name"])


def _members(record: RunRecord, buses: tuple[str, ...], strategy: str = "truthful") -> np.ndarray:
    """Participants at the named buses with the given strategy."""
    w = record.world
    return np.flatnonzero(np.isin(_bus_names(record)[w.bus_pos], buses) & (w.strategy == strategy))


def _far_withdrawal_kw(record: RunRecord) -> np.ndarray:
    """(T,) what the far homes draw together: the power the long stretch has to carry to them."""
    far = np.isin(_bus_names(record)[record.world.bus_pos], FAR)
    return record.participant["net_kw"][:, far].sum(axis=1)


def test_world_is_what_the_test_assumes(cleared: RunRecord) -> None:
    w = cleared.world
    assert w.steps == 96 and w.dt_h == 0.25
    line = w.grid.net.line.set_index("name").loc[LONG]
    assert (line["length_km"], line["r_ohm_per_km"], line["max_i_ka"]) == pytest.approx((0.7, 0.208, 0.27))
    far_ev = _members(cleared, FAR)
    assert len(far_ev) == 10 and np.all(w.evs.power_kw[far_ev] == 11.0)
    assert len(_members(cleared, HEAD)) >= 2
    assert len(_members(cleared, FAR, "passive")) >= 1  # price-takers the clearing must plan around


def test_uncontrolled_charging_pulls_the_far_end_below_the_band_in_the_evening(uncontrolled: RunRecord) -> None:
    k = uncontrolled.kpis
    vm = uncontrolled.grid["vm_pu"].astype(float)
    low = np.flatnonzero((vm < 0.9).any(axis=1))
    assert k["voltage_violations"] >= 5
    assert np.nanmin(vm) < 0.86  # ~0.82 pu: ten EVs arriving at 17:00-19:00 on top of the evening peak
    assert len(low) >= 4
    hours = uncontrolled.world.index[low].hour
    assert np.all((hours >= 17) & (hours < 22)), list(uncontrolled.world.index[low])
    # only the far end is out of the band
    out = np.flatnonzero((vm < 0.9).any(axis=0))
    assert set(_bus_names(uncontrolled)[out]) <= set(FAR)
    assert k["ev_unmet_kwh"] == 0  # uncontrolled charging does fill the cars
    assert uncontrolled.run.summary['balance'] == EXACT


def test_opf_keeps_the_feeder_within_limits_and_fills_every_ev(cleared: RunRecord, uncontrolled: RunRecord) -> None:
    s, k = cleared.series, cleared.kpis
    assert s["opf_ok"].all(), "the OPF found no plan in some step"
    assert np.all(np.abs(s["opf_imbalance_kw"]) <= 1e-9)
    assert k["pf_nonconverged_steps"] == 0
    assert k["voltage_violations"] == 0
    assert np.nanmin(s["vm_min_pu"]) >= 0.9
    assert k["max_line_loading_pct"] <= 100.0
    assert np.nanmax(s["max_line_loading_pct"]) <= 100.0
    assert k["ev_unmet_kwh"] == pytest.approx(0.0, abs=0.01)
    assert k["welfare"] >= uncontrolled.kpis["welfare"] + 10.0  # evening charging moved to the night valley
    assert cleared.run.summary['balance'] == EXACT


def test_nodal_prices_split_along_the_feeder_while_the_voltage_limit_binds(cleared: RunRecord) -> None:
    spread = cleared.series["price_spread_eur_per_kwh"]
    binding = np.flatnonzero(spread > 1e-6)
    assert len(binding) >= 4
    assert np.all(spread[binding] >= 0.01)
    # the splits happen in the night valley, with the far end at the edge of the band
    assert np.all(np.isin(cleared.world.index[binding].hour, (2, 3, 4, 5)))
    assert np.all(cleared.series["vm_min_pu"][binding] < 0.91)
    # and it is the far end that pays more: every truthful far home above every truthful head home
    price = cleared.participant["unit_price_eur_per_kwh"]
    head, far = _members(cleared, HEAD), _members(cleared, FAR)
    for k in binding:
        assert np.isfinite(price[k, head]).all() and np.isfinite(price[k, far]).all()
        assert price[k, far].min() >= price[k, head].max() + 0.01, cleared.world.index[k]
    # elsewhere one price for the whole feeder
    assert np.all(spread[np.setdiff1d(np.arange(len(spread)), binding)] <= 1e-9)


def test_uncontrolled_market_has_one_price(uncontrolled: RunRecord) -> None:
    assert np.all(uncontrolled.series["price_spread_eur_per_kwh"] <= 1e-9)


def test_a_reinforced_feeder_has_one_price_everywhere(reinforced: RunRecord, cleared: RunRecord) -> None:
    s, k = reinforced.series, reinforced.kpis
    assert s["opf_ok"].all()
    assert np.all(s["price_spread_eur_per_kwh"] <= 1e-9)
    assert k["voltage_violations"] == 0
    assert np.nanmin(s["vm_min_pu"]) >= 0.92  # the limit is nowhere near binding
    assert k["ev_unmet_kwh"] == pytest.approx(0.0, abs=0.01)
    # unconstrained, the far end draws more at once than the single cable could carry within the band
    assert _far_withdrawal_kw(reinforced).max() >= 1.15 * _far_withdrawal_kw(cleared).max()
    # the congestion costs the lane welfare
    assert k["welfare"] > cleared.kpis["welfare"]
    assert reinforced.run.summary['balance'] == EXACT


def test_each_evs_charging_is_recorded_while_it_is_plugged_in(cleared: RunRecord, uncontrolled: RunRecord) -> None:
    """`ev_kw` per participant: within the charger's rating, zero while the car is away and for homes without
    one; under pay-as-clear each car charges at once on arrival, under opf later, and both fill the same need."""
    evs = cleared.world.fleet.evs
    has_ev = evs.power_kw > 0
    minutes = np.asarray([t.hour * 60 + t.minute for t in cleared.run.timeseries.index])
    away = (minutes[:, None] >= evs.departure_min) & (minutes[:, None] < evs.arrival_min)
    dt_h = cleared.world.dt_h
    for record in (cleared, uncontrolled):
        ev_kw = record.participant["ev_kw"]
        assert np.all(ev_kw >= 0) and np.all(ev_kw <= evs.power_kw + 1e-9)
        assert np.all(ev_kw[:, ~has_ev] == 0)
        assert np.all(ev_kw[away & has_ev] == 0)
    arrival = np.argmax(minutes[:, None] >= evs.arrival_min[has_ev], axis=0)
    first = uncontrolled.participant["ev_kw"][arrival, has_ev.nonzero()[0]]
    assert np.all(first > 0), "uncontrolled cars start charging on arrival"
    charged = {name: (r.participant["ev_kw"][:, has_ev] * dt_h).sum(axis=0) for name, r in
               (("opf", cleared), ("pay-as-clear", uncontrolled))}
    np.testing.assert_allclose(charged["opf"], charged["pay-as-clear"], rtol=1e-6)
