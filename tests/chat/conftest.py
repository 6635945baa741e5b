"""A chat with home11 of the library world `residential` (battery, EV; the tests give it a heat pump too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plurigrid.chat import Chat, Context
from plurigrid.microworld.loader import parse_text, resolve

ME = "home11"
HERE = Path(__file__).parent


def spec_with_heat_pump() -> tuple[dict, str, Path | None]:
    name, text, base = resolve("residential")
    spec = json.loads(json.dumps(parse_text(name, text), default=str))
    for p in spec["participant"]:
        if p["id"] == ME:
            p["assets"]["hvac"] = {"p_max_kw": 3.0, "comfort_min_c": 20.0, "comfort_max_c": 23.0}
    return spec, name, base


def new_chat(**kw) -> Chat:
    spec, name, base = spec_with_heat_pump()
    return Chat(Context(spec, name, base, ME, **kw))


def requests(file: str) -> list[dict]:
    return [json.loads(line) for line in (HERE / file).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def chat() -> Chat:
    return new_chat()
