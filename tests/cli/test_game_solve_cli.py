"""`plurigrid game solve`: the JSON contract, subgame-perfect equilibria of trees, the table, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import plurigrid

DATA = Path(__file__).resolve().parents[1] / "games" / "data"


def test_json_gives_every_equilibrium_in_file_order_with_exact_fractions():
    res = plurigrid("game", "solve", str(DATA / "battle_of_the_sexes.nfg"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["players"] == ["Wife", "Husband"] and out["strategies"] == [["Opera", "Football"]] * 2
    mixed = out["equilibria"][1]
    assert set(mixed) == {"profile", "profile_exact", "payoffs", "payoffs_exact", "method"}
    assert mixed["profile_exact"] == [["2/3", "1/3"], ["1/3", "2/3"]] and mixed["payoffs_exact"] == ["2/3", "2/3"]
    assert mixed["profile"][0] == [2 / 3, 1 / 3] and mixed["payoffs"] == [2 / 3, 2 / 3]
    assert [e["profile_exact"] for e in out["equilibria"]] == [[["1", "0"], ["1", "0"]], mixed["profile_exact"], [["0", "1"], ["0", "1"]]]
    assert {e["method"] for e in out["equilibria"]} == {"vertex enumeration"}
    assert res.stdout == plurigrid("game", "solve", str(DATA / "battle_of_the_sexes.nfg"), "--json").stdout  # same bytes


def test_perfect_information_tree_also_reports_backward_induction():
    out = json.loads(plurigrid("game", "solve", str(DATA / "entry_deterrence.efg"), "--json").stdout)
    assert len(out["equilibria"]) == 3  # (Out, Fight) and its mixed edge are Nash, but not subgame perfect
    [spe] = out["subgame_perfect"]
    assert spe["profile"] == [[0.0, 1.0], [0.0, 1.0]] and spe["profile_exact"] == [["0", "1"], ["0", "1"]]
    assert spe["payoffs_exact"] == ["1", "1"]
    assert [(a["player"], a["action"]) for a in spe["actions"]] == [("Entrant", "In"), ("Incumbent", "Accommodate")]
    assert spe["method"] == "backward induction"


def test_pure_flag_and_three_players():
    out = json.loads(plurigrid("game", "solve", str(DATA / "selten_horse.efg"), "--json", "--pure").stdout)
    assert [e["profile_exact"] for e in out["equilibria"]] == [[["1", "0"], ["1", "0"], ["0", "1"]], [["0", "1"], ["1", "0"], ["1", "0"]]]
    assert "subgame_perfect" not in out  # player 3's information set has two nodes
    table = plurigrid("game", "solve", str(DATA / "cyclic_pennies.nfg"))
    assert table.returncode == 0, table.stderr
    assert "H 2/5, T 3/5" in table.stdout and "logit homotopy" in table.stdout


def test_a_bad_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.efg"
    bad.write_text('EFG 2 R "x" { "a" }\n""\np "" 1 1 "" { "l" "r" } 0\nt "" 1 "" { 1 }\n')
    res = plurigrid("game", "solve", str(bad))
    assert res.returncode == 2
    assert res.stderr.strip() == f"plurigrid: error: {bad}:4: expected a node (c, p or t): the node at line 3 still has 1 child(ren) to come"
    missing = plurigrid("game", "solve", str(tmp_path / "absent.nfg"))
    assert missing.returncode == 2 and "cannot read the file" in missing.stderr and missing.stderr.count("\n") == 1
