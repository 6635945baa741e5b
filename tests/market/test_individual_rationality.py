"""Individual rationality: every run names the participants that paid more than their tariff baseline, by how
much and why, in summary.json, as CLI warnings and in the report; the reasons add up to the excess exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from plurigrid.cli.main import app
from plurigrid.market.mechanisms import MECHANISMS, OrderBook, clear_nodal
from plurigrid.market.properties import GAP_PARTS, individual_rationality, tariff_gap_micro
from plurigrid.market.settlement import settle

IMPORT, EXPORT = 0.30, 0.05

# An island: one home behind 200 m of cable from a diesel that costs 0.50 EUR/kWh to run, more than the village's
# 0.30 EUR/kWh tariff. Under opf the diesel is the marginal unit, so the home pays 0.50 per kWh; under the order-book
# mechanisms nobody bids above the tariff, so nobody pays more than it.
ISLAND = {
    "world": {"name": "dear-diesel", "start": "2024-06-21T18:00:00", "duration": "2h", "resolution": "15min",
              "timezone": "UTC"},
    "grid": {"bus": [{"id": "gen", "vn_kv": 0.4}, {"id": "home", "vn_kv": 0.4}],
             "line": [{"id": "cable", "from_bus": "gen", "to_bus": "home", "length_km": 0.2, "r_ohm_per_km": 0.2,
                       "x_ohm_per_km": 0.08, "max_i_ka": 0.2}]},
    "market": {"mechanism": "opf", "import_price_eur_per_kwh": IMPORT, "export_price_eur_per_kwh": EXPORT},
    "participant": [
        {"id": "diesel", "bus": "gen", "strategy": "truthful", "assets": {"thermal": {
            "p_max_kw": 20.0, "variable_cost_eur_per_mwh": 500.0, "reference": True}}},
        {"id": "home", "bus": "home", "strategy": "truthful", "assets": {"load": {"profile": {"source": "constant",
                                                                                             "p_kw": 2.0}}}},
    ],
}

orders = st.lists(st.tuples(st.integers(1, 5000), st.integers(5, 60)), min_size=0, max_size=4)


@settings(max_examples=300, deadline=None)
@given(orders, orders, st.sampled_from(sorted(MECHANISMS) + ["nodal"]), st.integers(0, 5), st.integers(-300, 300),
       st.data())
def test_the_reasons_add_up_to_the_excess_exactly(buys, sells, mech, fee_cents, off_schedule_wh, data):
    # participants 0.. buy, then sell; the last seller is an island's reference whose meter is off its schedule
    scheduled = np.array([q for q, _ in buys] + [-q for q, _ in sells], dtype=np.int64)
    n = len(scheduled)
    if n == 0:
        return
    price = np.array([c / 100 for _, c in buys + sells])
    book = OrderBook.from_positions(scheduled, price, price, np.ones(n, dtype=bool))
    if mech == "nodal":
        nodal = np.array(data.draw(st.lists(st.integers(-20, 80), min_size=n, max_size=n))) / 100
        green = np.array(data.draw(st.lists(st.integers(0, 500), min_size=n, max_size=n)), dtype=np.int64)
        clearing = clear_nodal(book, n, nodal, green, 0.06, np.maximum(-scheduled, 0))
    else:
        clearing = MECHANISMS[mech](book, n)
    metered = scheduled.copy()
    metered[-1] += off_schedule_wh
    st_ = settle(metered, clearing, IMPORT, EXPORT, fee_cents / 100)
    premium = clearing.premium_micro if clearing.premium_micro is not None else np.zeros(n, dtype=np.int64)
    gap = tariff_gap_micro(st_, scheduled, premium, IMPORT, EXPORT)
    assert set(gap) == set(GAP_PARTS)
    assert np.array_equal(sum(gap.values()), st_.bill_micro - st_.baseline_micro)
    assert not gap["balancing"][:-1].any()  # only the reference's meter is off its schedule


def test_list_names_who_paid_more_dearest_first_and_why():
    ids = ["a", "b", "c", "d"]
    bill = np.array([500, 90_000, 1_000, 10], dtype=np.int64)
    baseline = np.array([400, 10_000, 2_000, 0], dtype=np.int64)  # d is 10 micro above: rounding over 10 steps
    gap = {f"{part}_{kind}": np.zeros(4, dtype=np.int64) for part in GAP_PARTS for kind in ("above_micro", "steps")}
    gap["bought_above_micro"][1], gap["bought_steps"][1] = 70_000, 12
    gap["fee_above_micro"][1], gap["fee_steps"][1] = 5_000, 30
    gap["sold_above_micro"][0], gap["sold_steps"][0] = 100, 1
    above = individual_rationality(ids, bill, baseline, gap, steps=10, nodal=True, currency="EUR")
    assert [p["participant"] for p in above] == ["b", "a"]
    assert above[0] == {"participant": "b", "bill_micro": 90_000, "baseline_micro": 10_000, "excess_micro": 80_000,
                        "reasons": ["paid the nodal price above the import tariff in 12 steps (+0.07 EUR)",
                                    "paid the network fee on market purchases in 30 steps (+0.01 EUR)"]}
    assert above[1]["reasons"] == ["got the nodal price below the export tariff in 1 step (+0.000100 EUR)"]


def cli_run(tmp_path: Path, mechanism: str) -> tuple[Result, dict, str]:
    """`plurigrid run` of the island (in this process): its result, summary.json and report.html."""
    spec = tmp_path / "island.json"
    spec.write_text(json.dumps(ISLAND))
    res = CliRunner().invoke(app, ["run", str(spec), "--mechanism", mechanism, "--out", str(tmp_path / mechanism),
                                   "--quiet"])
    assert res.exit_code == 0, res.stderr
    folder = tmp_path / mechanism
    return res, json.loads((folder / "summary.json").read_text()), (folder / "report.html").read_text()


def test_a_nodal_price_above_the_tariff_is_reported_in_cli_summary_and_report(tmp_path):
    res, summary, report = cli_run(tmp_path, "opf")
    (home,) = summary["individual_rationality"]
    # 2 kW for 2 h at 0.50 instead of 0.30 EUR/kWh
    assert home == {"participant": "home", "bill_micro": 2_000_000, "baseline_micro": 1_200_000, "excess_micro": 800_000,
                    "reasons": ["paid the nodal price above the import tariff in 8 steps (+0.80 EUR)"]}
    assert summary["mechanism_properties"]["individual_rationality"]["participants_above_tariff"] == 1
    warnings = [line for line in res.stderr.splitlines() if "warning" in line]
    assert warnings == ["plurigrid: warning: home paid 2.00 EUR against a tariff baseline of 1.20 (+0.80): "
                        "paid the nodal price above the import tariff in 8 steps (+0.80 EUR)"]
    assert "1 participant paid more than the tariff baseline" in report and "<td>home</td>" in report


def test_nobody_is_reported_where_nobody_pays_more(tmp_path):
    res, summary, report = cli_run(tmp_path, "pay-as-clear")
    assert summary["individual_rationality"] == []
    assert summary["mechanism_properties"]["individual_rationality"]["participants_above_tariff"] == 0
    assert "warning" not in res.stderr
    assert "No participant paid more than its tariff baseline." in report
