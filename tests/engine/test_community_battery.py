"""A community battery is used under every mechanism where it pays, and that lowers the community's cost.

The world: four homes with load and rooftop PV at four buses of an LV feeder and a community battery of its own
(no load, no PV), on a flat tariff, from a June morning to midnight. The homes' midday surplus is worth the export
tariff and their evening deficit the import tariff, a spread far above the battery's round-trip losses.

The rule (strategies.builtin): a store balances the community's position where the mechanism's market can match its
orders (pay-as-clear, pay-as-bid, k-price, vcg, opf); under `tariff` (no market) and `second-price` (whose trade
reduction leaves out the marginal orders, which the store's are) a battery without load or PV of its own would buy
at the import tariff and sell at the export tariff, which never pays on a flat tariff, so there it stays idle.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import plurigrid
from plurigrid.strategies.builtin import COMMUNITY_MARKETS, STORE_STRATEGIES

from ..recorded import Recorded, recorded

EXPORT, EFFICIENCY = 0.08, 0.95
MARKETS = ("pay-as-clear", "pay-as-bid", "k-price", "vcg", "opf")

HOMES = [(3500, 6.0), (4200, 8.0), (3000, 5.0), (4500, 7.0)]  # (annual kWh, kWp) at lv1..lv4
WORLD = {
    "world": {"name": "four-homes", "start": "2024-06-21T06:00:00", "duration": "18h", "resolution": "15min",
              "timezone": "Europe/Berlin", "seed": 1},
    "grid": {
        "bus": [{"id": "mv", "vn_kv": 20.0}] + [{"id": f"lv{i}", "vn_kv": 0.4} for i in range(5)],
        "line": [{"id": f"l{i}{i + 1}", "from_bus": f"lv{i}", "to_bus": f"lv{i + 1}", "length_km": 0.08,
                  "r_ohm_per_km": 0.206, "x_ohm_per_km": 0.080, "max_i_ka": 0.27} for i in range(4)],
        "transformer": [{"id": "t1", "hv_bus": "mv", "lv_bus": "lv0", "sn_mva": 0.25, "r_pu": 0.012, "x_pu": 0.04}],
        "connection": {"bus": "mv"},
    },
    "market": {"mechanism": "pay-as-clear", "import_price_eur_per_kwh": 0.30, "export_price_eur_per_kwh": EXPORT},
    "participant": [
        {"id": f"home{i + 1}", "bus": f"lv{i + 1}", "strategy": "self-consumption",
         "assets": {"load": {"profile": {"source": "bdew", "slp": "h0", "annual_kwh": kwh}}, "pv": {"kwp": kwp}}}
        for i, (kwh, kwp) in enumerate(HOMES)
    ] + [{"id": "battery", "bus": "lv2", "kind": "community", "strategy": "passive",
          "assets": {"battery": {"capacity_kwh": 20.0, "power_kw": 5.0, "efficiency": EFFICIENCY,
                                 "initial_soc_frac": 0.0}}}],
}


def run(mechanism: str, strategy: str) -> Recorded:
    spec = copy.deepcopy(WORLD)
    spec["participant"][-1]["strategy"] = strategy
    return recorded(spec, mechanism=mechanism)


def stored_kwh(r: Recorded) -> np.ndarray:
    """The community battery's state of charge after each step (kWh)."""
    return r.participant["soc_kwh"][:, r.world.ids.index("battery")]


@pytest.fixture(scope="module")
def idle() -> dict[str, Recorded]:
    return {mech: run(mech, "passive") for mech in MARKETS}


# Under the order-book mechanisms truthful and battery-arbitrage run the same store (they differ in EV charging,
# which this world has none of), so both are run under the default mechanism and opf, one under the others.
CASES = [("pay-as-clear", "battery-arbitrage"), ("pay-as-clear", "truthful"), ("pay-as-bid", "battery-arbitrage"),
         ("k-price", "truthful"), ("vcg", "battery-arbitrage"), ("opf", "battery-arbitrage"), ("opf", "truthful")]


@pytest.mark.parametrize(("mechanism", "strategy"), CASES)
def test_community_battery_charges_discharges_and_lowers_cost(mechanism: str, strategy: str, idle) -> None:
    used, base = run(mechanism, strategy), idle[mechanism]
    soc = stored_kwh(used)
    assert np.diff(np.r_[0.0, soc]).max() > 0.5 and np.diff(soc).min() < -0.5, "the battery never cycled"
    assert soc.max() > 5.0  # it stored a real share of the homes' midday surplus
    assert used.kpis["self_sufficiency"] > base.kpis["self_sufficiency"]
    # what it still holds at midnight counts at the least it is worth: sold back at the export tariff
    left_eur = soc[-1] * EFFICIENCY * EXPORT
    assert used.kpis["total_cost"] - left_eur < base.kpis["total_cost"] - 0.5
    # its owner pays less than at tariff; in the order books it earns the spread (it buys the homes' surplus and sells
    # into their deficit at their outside options), while under opf its own discharge sets the nodal price
    bill = used.run.settlements.loc["battery"]
    assert bill["bill"] < bill["baseline"]
    assert mechanism == "opf" or bill["bill"] - left_eur < 0
    assert used.run.summary["balance"] == {"energy_residual_wh": 0, "money_residual_micro": 0}


@pytest.mark.parametrize(("mechanism", "strategy"), [("tariff", "battery-arbitrage"), ("second-price", "truthful")])
def test_without_a_market_that_matches_it_the_battery_stays_idle(mechanism: str, strategy: str) -> None:
    assert np.all(stored_kwh(run(mechanism, strategy)) == 0.0)


STORE_WORLDS = ["commercial", "congested-feeder", "offgrid-battery-sharing", "residential", "simbench-semiurb4"]


@pytest.mark.parametrize("mechanism", ["tariff", "pay-as-bid"])
@pytest.mark.parametrize("world", STORE_WORLDS)
def test_library_stores_cycle_wherever_it_pays(world: str, mechanism: str) -> None:
    # e.g. congested-feeder under pay-as-bid: far03 and far08 (truthful, home load and PV) never moved; they now charge
    # in the night valley of the dynamic tariff and discharge into the evening peak. Under tariff a store without
    # load of its own (commercial's rooftop: PV and a battery) has nothing to discharge into and stays idle.
    r = plurigrid.load(world, mechanism=mechanism, hours=24).run(ledger=False, record={"participants"})
    w = r.world.compiled
    stores = np.flatnonzero((w.batteries.capacity_kwh > 0) & np.isin(w.strategy, STORE_STRATEGIES))
    assert len(stores), f"{world} has no store"
    soc = np.vstack([w.batteries.initial_kwh, r.participants["soc_kwh"].to_numpy()])
    for i in stores:
        step = np.diff(soc[:, i])
        if mechanism in COMMUNITY_MARKETS or has_load(w, i):
            assert step.max() > 0.1 and step.min() < -0.1, f"{w.ids[i]} never cycled"
        else:
            assert not step.any(), f"{w.ids[i]} moved with nothing to serve"


def has_load(w, i: int) -> bool:
    """Whether participant i has a load of its own (a load asset in the spec)."""
    spec = {p.id: p for p in w.spec.participant}
    return w.ids[i] not in spec or spec[w.ids[i]].assets.load is not None
