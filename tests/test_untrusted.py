"""Bounds on untrusted text: the same outcome at any stack depth, nesting refused past 64 levels, files past their size."""

from __future__ import annotations

import tomllib

import pytest

from plurigrid.untrusted import (
    MAX_DEPTH,
    InputTooLarge,
    NestedTooDeep,
    parse_json,
    parse_toml,
    read_bounded,
    size_text,
)


def nested(depth: int) -> list:
    """`depth` levels of lists: [[...[]...]]."""
    data: list = []
    for _ in range(depth - 1):
        data = [data]
    return data


def at_stack_depth(frames: int, call):
    """`call()` from `frames` Python frames deeper than here."""
    return call() if frames == 0 else at_stack_depth(frames - 1, call)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 900, 5_000, 100_000])
@pytest.mark.parametrize("frames", [0, 600])
def test_json_past_the_limit_is_refused_at_any_stack_depth(depth, frames):
    text = "[" * depth + "]" * depth
    with pytest.raises(NestedTooDeep, match="nested deeper than 64 levels"):
        at_stack_depth(frames, lambda: parse_json(text))


@pytest.mark.parametrize("frames", [0, 600])
def test_json_at_the_limit_parses_at_any_stack_depth(frames):
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert at_stack_depth(frames, lambda: parse_json(text)) == nested(MAX_DEPTH)


@pytest.mark.parametrize("text", [
    "a = " + "[" * 100_000 + "]" * 100_000,  # tomllib recurses: RecursionError inside
    "a = " + "{b=" * 70 + "1" + "}" * 70,  # within the stack, past the limit
    "a" + ".a" * 100_000 + " = 1",  # no recursion, but tomllib's time grows with the square of the key
    "[a" + ".a" * 100_000 + "]",
    '"a"' + ' . "a"' * 64 + " = 1",
])
def test_toml_past_the_limit_is_refused(text):
    with pytest.raises(NestedTooDeep):
        parse_toml(text)


def test_toml_at_the_limit_parses():
    data = parse_toml("a" + ".a" * (MAX_DEPTH - 2) + " = 1\nb = " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    assert set(data) == {"a", "b"}


def test_parser_errors_pass_through():
    with pytest.raises(ValueError, match="Expecting value"):
        parse_json("[1, ]")
    with pytest.raises(ValueError, match="Exceeds the limit"):
        parse_json("9" * 5000)
    assert parse_json("[NaN]", parse_constant=lambda c: c) == ["NaN"]  # options reach json.loads
    with pytest.raises(tomllib.TOMLDecodeError, match="Exceeds the limit"):  # a TOML error, as TOML readers expect
        parse_toml("a = " + "9" * 5000)


def test_read_bounded_stops_at_the_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1025)
    assert read_bounded(path, 1025) == b"x" * 1025
    with pytest.raises(InputTooLarge, match="larger than 1 KiB"):
        read_bounded(path, 1024)


def test_sizes_for_people():
    assert [size_text(n) for n in (312, 4.2 * 2**20, 157 * 2**40, 100 * 2**20)] == ["312 B", "4.2 MiB", "157 TiB", "100 MiB"]
