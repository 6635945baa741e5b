"""`plurigrid opf --explain`: binding limits of an optimum with their shadow prices, and the fewest
limits to relax for an infeasible case."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plurigrid.opf.ac import solve_ac
from plurigrid.opf.dc import solve_dc
from plurigrid.opf.explain import explain
from plurigrid.opf.network import OpfNetwork, load_case

CONGESTION = 0.8  # case118's ratings scaled so that five lines bind and the case stays feasible
STEP_MW = 0.1


def _case(testdata: Path, name: str) -> OpfNetwork:
    return load_case(testdata / "pglib" / f"pglib_opf_{name}.m")


def _congested_case118(testdata: Path) -> OpfNetwork:
    net = _case(testdata, "case118_ieee")
    return dataclasses.replace(net, rate=net.rate * CONGESTION)


def test_binding_lines_of_congested_case118_are_those_at_their_rating(testdata: Path) -> None:
    net = _congested_case118(testdata)
    result = solve_dc(net)
    assert result.ok
    named = {b.index: b for b in explain(net, result, "dc").binding if b.kind == "branch_rating"}
    at_rating = set(np.flatnonzero(np.abs(result.branch_p_mw) >= net.rate * net.base_mva - 1e-4))
    assert set(named) == at_rating and len(at_rating) >= 3
    for k, limit in named.items():  # the shadow price is what one more MW of rating saves
        assert limit.limit == pytest.approx(net.rate[k] * net.base_mva)
        rate = net.rate.copy()
        rate[k] += STEP_MW / net.base_mva
        relaxed = solve_dc(dataclasses.replace(net, rate=rate))
        change = (relaxed.objective - result.objective) / STEP_MW
        assert limit.shadow_price is not None and limit.shadow_price < 0
        assert change == pytest.approx(limit.shadow_price, rel=0.02, abs=0.01), net.branch_label[k]


def test_binding_generators_and_voltages_of_an_ac_optimum(testdata: Path) -> None:
    net = _case(testdata, "case5_pjm")
    result = solve_ac(net)
    limits = explain(net, result, "ac").binding
    at_pmax = {b.index for b in limits if b.kind == "gen_pmax"}
    assert at_pmax == set(np.flatnonzero(result.pg_mw >= net.pmax * net.base_mva - 1e-3))
    assert at_pmax and all(b.shadow_price < 0 for b in limits if b.kind == "gen_pmax")
    at_vmax = {b.index for b in limits if b.kind == "vm_max"}
    assert at_vmax == set(np.flatnonzero(result.vm_pu >= net.vmax - 1e-5))


def _leaf_line_too_small(testdata: Path) -> tuple[OpfNetwork, int]:
    """case118's bus 117 hangs on one line and draws 20 MW; rate that line at 5 MW."""
    net = _case(testdata, "case118_ieee")
    leaf = int(np.flatnonzero(net.bus_id == 117)[0])
    (line,) = np.flatnonzero((net.f == leaf) | (net.t == leaf))
    rate = net.rate.copy()
    rate[line] = 5.0 / net.base_mva
    return dataclasses.replace(net, rate=rate), int(line)


@pytest.mark.parametrize("model", ["dc", "ac"])
def test_infeasible_rating_names_exactly_that_line(testdata: Path, model: str) -> None:
    net, line = _leaf_line_too_small(testdata)
    result = solve_dc(net) if model == "dc" else solve_ac(net)
    assert not result.ok
    why = explain(net, result, model)
    assert [(r.kind, r.index) for r in why.relaxations] == [("branch_rating", line)]
    needed = why.relaxations[0].value
    if model == "dc":  # exactly the bus's 20 MW, the same every time
        assert needed == pytest.approx(20.0, abs=1e-6) and "fewest" in why.method
        assert explain(net, result, model).to_json() == why.to_json()
    else:  # 20 MW and its reactive power, plus losses
        assert 20.0 < needed < 25.0


@pytest.mark.parametrize("model", ["dc", "ac"])
def test_load_above_generation_capacity_names_generator_limits(testdata: Path, model: str) -> None:
    net = _case(testdata, "case5_pjm")
    capacity_mw = net.pmax.sum() * net.base_mva
    scale = 1.1 * capacity_mw / (net.pd.sum() * net.base_mva)
    over = dataclasses.replace(net, pd=net.pd * scale, qd=net.qd * scale)
    result = solve_dc(over) if model == "dc" else solve_ac(over)
    why = explain(over, result, model)
    raised = [r for r in why.relaxations if r.kind == "gen_pmax"]
    if model == "dc":  # the fewest limits: capacity alone
        assert raised == why.relaxations
    shortfall_mw = (over.pd.sum() - over.pmax.sum()) * net.base_mva
    assert sum(r.by for r in raised) >= shortfall_mw - 1e-6
    assert any("exceeds the generators' total maximum" in note for note in why.notes)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "opf", *args], capture_output=True, text=True)


def _write_case(tmp_path: Path, testdata: Path, pd_scale: float) -> Path:
    text = (testdata / "pglib" / "pglib_opf_case5_pjm.m").read_text()
    path = tmp_path / "case5_scaled.m"
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("mpc.bus = ["))
    for i in range(start + 1, len(lines)):
        if lines[i].strip().startswith("];"):
            break
        cols = lines[i].split()
        cols[2] = str(float(cols[2]) * pd_scale)
        lines[i] = "\t" + "\t".join(cols)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_explain_prints_lines_and_json_and_keeps_exit_3(tmp_path: Path, testdata: Path) -> None:
    ok = _cli(str(testdata / "pglib" / "pglib_opf_case5_pjm.m"), "--explain")
    assert ok.returncode == 0, ok.stderr
    assert "binding limits:" in ok.stdout and "branch rating" in ok.stdout and "per h" in ok.stdout
    over = _write_case(tmp_path, testdata, 2.0)
    text = _cli(str(over), "--explain")
    assert text.returncode == 3, text.stderr
    assert "limits to relax for a feasible case" in text.stdout and "gen pmax" in text.stdout
    as_json = _cli(str(over), "--explain", "--json")
    assert as_json.returncode == 3
    out = json.loads(as_json.stdout)
    assert out["status"] == "infeasible" and out["explain"]["relaxations"]
    assert {r["kind"] for r in out["explain"]["relaxations"]} == {"gen_pmax"}


def test_cli_explain_refuses_lindistflow_in_one_line(testdata: Path) -> None:
    result = _cli(str(testdata / "pglib" / "pglib_opf_case5_pjm.m"), "--model", "lindistflow", "--explain")
    assert result.returncode == 2
    assert result.stderr == "plurigrid: error: --explain: supported for --model dc and ac\n"
