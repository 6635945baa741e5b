"""Bounds on text from outside (spec files, JSON files, network messages) before and while it is parsed.

Why: a parser given hostile input must answer with an error a caller can report, never with a
RecursionError, a hang or a MemoryError. Two bounds, the same for every reader:

- size: a file is read up to its limit (never past it, so /proc files and growing files are bounded too);
- nesting: at most MAX_DEPTH levels of arrays/objects/tables. Both parsers we use recurse (tomllib in
  Python, json in C with the interpreter's recursion guard); a parse that runs out of stack is reported
  as too deep, and one that succeeds is walked (without recursion) and refused past MAX_DEPTH. So the
  outcome is the same whatever the caller's stack depth: every input nested deeper than MAX_DEPTH is
  refused, every other input is parsed. That matters where replicas must judge a message alike.

TOML's dotted keys (`a.b.c = 1`, `[a.b.c]`) nest without brackets, and tomllib's time grows with the
square of a key's length (8,000 parts: over a second; a 4 MiB key: days). So TOML text is scanned
before it is parsed for a run of more than MAX_DEPTH dotted names (anywhere, strings included: the
scan is linear and cannot disagree with the parser about where a string ends).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

MAX_DEPTH = 64  # a microworld nests 7 levels deep (participant → assets → load → profile → p_kw); messages fewer
MAX_INPUT_BYTES = 100 * 2**20  # 100 MiB: the largest file any reader accepts

T = TypeVar("T")
# one key part: a bare key, or a basic or literal string (atomic: the scan never backtracks into a part)
_PART = r"""(?>[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')"""
_DOTTED = re.compile(rf"(?<![A-Za-z0-9_-]){_PART}(?>[ \t]*+\.[ \t]*+{_PART}){{{MAX_DEPTH}}}")


class InputTooLarge(ValueError):
    """A file past its reader's size limit (the message gives both sizes)."""


class NestedTooDeep(ValueError):
    """Data nested deeper than MAX_DEPTH levels."""


def size_text(n_bytes: float) -> str:
    """A byte count for people: '312 B', '4.2 MiB', '157 TiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable: PiB ends the loop")


def read_bounded(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The file's bytes; InputTooLarge if it holds more than `limit` (OSError as `open` raises it)."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(f"larger than {size_text(limit)}, the most accepted here")
    return data


def parse_json(data: str | bytes, **options: Any) -> Any:
    """json.loads(data, **options) within the nesting bound; ValueError (JSONDecodeError, NestedTooDeep, ...) otherwise."""
    return _bounded(lambda text: json.loads(text, **options), data)


def parse_toml(text: str) -> dict[str, Any]:
    """tomllib.loads within the nesting bound; TOMLDecodeError or NestedTooDeep otherwise."""
    if _DOTTED.search(text):
        raise NestedTooDeep(f"a dotted key of more than {MAX_DEPTH} parts")
    try:
        return _bounded(tomllib.loads, text)
    except (tomllib.TOMLDecodeError, NestedTooDeep):
        raise
    except ValueError as exc:  # an integer of more than 4,300 digits: Python's guard, not tomllib's
        raise tomllib.TOMLDecodeError(str(exc)) from None


def _bounded(parse: Callable[[T], Any], text: T) -> Any:
    """`parse(text)`, refused with NestedTooDeep if the data nests deeper than MAX_DEPTH."""
    try:
        data = parse(text)
    except RecursionError:
        raise NestedTooDeep(f"nested deeper than {MAX_DEPTH} levels") from None
    check_depth(data)
    return data


def check_depth(data: object, max_depth: int = MAX_DEPTH) -> None:
    """Raises NestedTooDeep if lists/dicts in `data` nest deeper than `max_depth` (an iterative walk)."""
    level: list[object] = [data]
    depth = 0
    while level:
        containers = [c for c in level if type(c) is list or type(c) is dict]
        if not containers:
            return
        depth += 1
        if depth > max_depth:
            raise NestedTooDeep(f"nested deeper than {max_depth} levels")
        level = [item for c in containers for item in (c.values() if type(c) is dict else c)]
