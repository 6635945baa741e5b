"""The deterministic path on the evaluation set: the tool and its arguments, and the language of the answer."""

from __future__ import annotations

import pytest

from tests.chat.conftest import requests

TARGET = 0.95


def _right(chat, row: dict) -> tuple[bool, str]:
    heard = chat.understand(row["text"])
    args = {k: v for k, v in heard.args.items() if v is not None}
    want = {k: v for k, v in row["args"].items() if v is not None}
    return heard.tool == row["tool"] and args == want, heard.language


@pytest.mark.parametrize("file", ["eval.jsonl", "heldout.jsonl"])
def test_tool_choice_and_arguments_are_right_for_nearly_every_request(chat, file) -> None:
    rows = requests(file)
    langs = sorted({r["lang"] for r in rows})
    assert langs == ["de", "en", "es", "ka", "sw"] and (file != "eval.jsonl" or len(rows) >= 150)
    results = [(row, *_right(chat, row)) for row in rows]
    wrong = [(r["text"], r["tool"]) for r, ok, _ in results if not ok]
    assert 1 - len(wrong) / len(rows) >= TARGET, wrong
    lost = [(r["text"], lang) for r, _, lang in results if lang != r["lang"]]
    assert 1 - len(lost) / len(rows) >= TARGET, lost
    for lang in langs:  # no language far behind the others
        mine = [ok for r, ok, _ in results if r["lang"] == lang]
        assert sum(mine) / len(mine) >= 0.9, (lang, [t for t, _ in wrong])


def test_the_evaluation_set_covers_every_tool_in_every_language() -> None:
    from plurigrid.chat.intents import TOOLS

    rows = requests("eval.jsonl")
    for lang in ("en", "de", "es", "ka", "sw"):
        mine = [r for r in rows if r["lang"] == lang]
        assert len(mine) >= 30 and {r["tool"] for r in mine} == set(TOOLS), lang
