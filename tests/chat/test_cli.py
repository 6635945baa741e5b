"""`plurigrid chat`: one-shot answers (--ask, --json), messages from standard input, confirmed changes saved."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from tests.cli.test_cli import plurigrid


def test_ask_answers_in_turn_and_saves_a_confirmed_change(tmp_path) -> None:
    saved = tmp_path / "mine.toml"
    res = plurigrid("chat", "residential", "-p", "home11", "--json", "--save", str(saved),
                    "--ask", "warum habe ich so viel bezahlt?", "--ask", "my car must be charged by 06:00", "--ask", "ndiyo")
    assert res.returncode == 0, res.stderr
    answers = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(a["tool"], a["language"]) for a in answers] == [("explain_bill", "de"), ("set_ev_departure", "en"),
                                                            ("confirm", "sw")]
    assert answers[1]["pending"] and not answers[2]["pending"]
    home = next(p for p in tomllib.loads(saved.read_text())["participant"] if p["id"] == "home11")
    assert home["assets"]["ev"]["departure"] == "06:00"


def test_messages_from_standard_input_and_a_bad_participant_in_one_line(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "chat", "-p", "home11"], input="show my bill\nmsaada\n",
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("home11: bill ") and lines[1].startswith("Niulize kwa nini")
    bad = plurigrid("chat", "-p", "nobody", "--ask", "hi")
    assert bad.returncode == 2 and bad.stderr == "plurigrid: error: --participant: residential.toml has no participant 'nobody'\n"
