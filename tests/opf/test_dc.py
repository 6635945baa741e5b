"""DC-OPF against PGLib-OPF's published objectives and prices, congestion, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plurigrid.opf.dc import solve_dc
from plurigrid.opf.network import CaseError, load_case


def _reference(testdata: Path) -> dict:
    return json.loads((testdata / "pglib" / "reference.json").read_text())["cases"]


def _cases(testdata: Path) -> list[str]:
    return sorted(_reference(testdata))


@pytest.mark.parametrize("line_model", ["powermodels", "matpower"])
def test_dc_objectives_match_pglib(testdata: Path, line_model: str) -> None:
    ref = _reference(testdata)
    assert len(ref) >= 6
    for name, values in ref.items():
        result = solve_dc(load_case(testdata / "pglib" / f"{name}.m"), line_model)
        assert result.ok, name
        want = values[f"dc_{line_model}"]
        assert abs(result.objective / want - 1) < 1e-4, (name, result.objective, want)


def test_line_models_differ_where_pglib_says_they_do(testdata: Path) -> None:
    net = load_case(testdata / "pglib" / "pglib_opf_case30_ieee.m")
    assert solve_dc(net, "matpower").objective - solve_dc(net, "powermodels").objective > 1.0


def test_case5_pjm_nodal_prices(testdata: Path) -> None:
    name = "pglib_opf_case5_pjm"
    want = _reference(testdata)[name]["dc_lmp_matpower_linear_cost_usd_per_mwh"]
    result = solve_dc(load_case(testdata / "pglib" / f"{name}.m"), "matpower")
    np.testing.assert_allclose(result.lmp, want, atol=1e-3)


def test_lmp_is_marginal_cost_of_demand_in_money_per_mwh(testdata: Path) -> None:
    """Sign and base-MVA scaling: 1 MW more load at a bus raises the cost by that bus's LMP."""
    net = load_case(testdata / "pglib" / "pglib_opf_case118_ieee.m")
    base = solve_dc(net, "powermodels")
    for bus in (0, 40, 90):
        more = load_case(testdata / "pglib" / "pglib_opf_case118_ieee.m")
        more.pd[bus] += 1.0 / net.base_mva
        delta = solve_dc(more, "powermodels").objective - base.objective
        assert delta == pytest.approx(base.lmp[bus], rel=0.02, abs=0.05)


def test_dispatch_balances_and_respects_ratings(testdata: Path) -> None:
    net = load_case(testdata / "pglib" / "pglib_opf_case118_ieee.m")
    result = solve_dc(net, "matpower")
    demand_mw = (net.pd + net.gs).sum() * net.base_mva
    assert result.pg_mw.sum() == pytest.approx(demand_mw, abs=1e-6)
    assert np.all(np.abs(result.branch_p_mw) <= net.rate * net.base_mva + 1e-6)
    assert np.all(result.pg_mw <= net.pmax * net.base_mva + 1e-6)


TWO_BUS = """function mpc = two_bus
mpc.version = '2';
mpc.baseMVA = 100.0;
mpc.bus = [
  1 3 0   0 0 0 1 1 0 230 1 1.1 0.9;
  2 1 150 0 0 0 1 1 0 230 1 1.1 0.9;
];
mpc.gen = [
  1 0 0 100 -100 1 100 1 200 0;
  2 0 0 100 -100 1 100 1 200 0;
];
mpc.gencost = [
  2 0 0 3 0 10 0;
  2 0 0 3 0 40 0;
];
mpc.branch = [
  1 2 0.01 0.1 0 RATE 0 0 0 0 1 -360 360;
];
"""


def _two_bus(tmp_path: Path, rate_mva: float) -> Path:
    path = tmp_path / f"two_bus_{int(rate_mva)}.m"
    path.write_text(TWO_BUS.replace("RATE", str(rate_mva)))
    return path


def test_binding_line_splits_nodal_prices_and_relaxing_it_merges_them(tmp_path: Path) -> None:
    congested = solve_dc(load_case(_two_bus(tmp_path, 100.0)))
    np.testing.assert_allclose(congested.lmp, [10.0, 40.0], atol=1e-6)
    np.testing.assert_allclose(congested.pg_mw, [100.0, 50.0], atol=1e-6)
    free = solve_dc(load_case(_two_bus(tmp_path, 200.0)))
    np.testing.assert_allclose(free.lmp, [10.0, 10.0], atol=1e-6)
    np.testing.assert_allclose(free.pg_mw, [150.0, 0.0], atol=1e-6)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "opf", *args], capture_output=True, text=True)


def test_cli_json_contract_and_infeasible_exit_3(tmp_path: Path, testdata: Path) -> None:
    ok = _cli(str(testdata / "pglib" / "pglib_opf_case5_pjm.m"), "--dc-line-model", "powermodels", "--json")
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert {"status", "objective", "solve_time_s", "build_time_s", "lmp", "pg_mw"} <= set(out)
    assert out["status"] == "optimal" and len(out["lmp"]) == 5 and len(out["pg_mw"]) == 5
    # 150 MW of load behind a 10 MW line with 0 MW of local generation: no feasible dispatch
    path = tmp_path / "short.m"
    path.write_text(TWO_BUS.replace("RATE", "10").replace("2 0 0 100 -100 1 100 1 200 0", "2 0 0 100 -100 1 100 0 200 0"))
    bad = _cli(str(path), "--json")
    assert bad.returncode == 3
    assert json.loads(bad.stdout)["status"] == "infeasible"


@pytest.mark.parametrize("args, message", [
    (["missing.m"], "plurigrid: error: missing.m: no such file\n"),
    (["CASE", "--model", "acopf"], "plurigrid: error: --model: unknown model 'acopf'; expected one of dc, ac, lindistflow\n"),
    (["CASE", "--dc-line-model", "x"],
     "plurigrid: error: --dc-line-model: unknown line model 'x'; expected one of matpower, powermodels\n"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    case = _two_bus(tmp_path, 100.0)
    result = _cli(*[str(case) if a == "CASE" else a for a in args])
    assert result.returncode == 2
    assert result.stderr == message


def test_unreadable_tables_name_the_file_and_table(tmp_path: Path) -> None:
    path = tmp_path / "broken.m"
    path.write_text(TWO_BUS.replace("RATE", "abc"))
    with pytest.raises(CaseError, match=r"broken.m: mpc.branch: non-numeric entry"):
        load_case(path)
    path.write_text(TWO_BUS.replace("RATE", "100").replace("  1 2 0.01", "  1 7 0.01"))
    with pytest.raises(CaseError, match=r"broken.m: mpc.branch refers to bus 7, which is not in mpc.bus"):
        load_case(path)


def test_piecewise_linear_cost_equals_its_linear_twin(tmp_path: Path) -> None:
    pwl = TWO_BUS.replace("RATE", "100").replace("2 0 0 3 0 10 0;", "1 0 0 2 0 0 200 2000;").replace(
        "2 0 0 3 0 40 0;", "2 0 0 3 0 40 0 0;")
    path = tmp_path / "pwl.m"
    path.write_text(pwl)
    result = solve_dc(load_case(path))
    assert result.objective == pytest.approx(100 * 10 + 50 * 40, rel=1e-9)
    np.testing.assert_allclose(result.lmp, [10.0, 40.0], atol=1e-6)
