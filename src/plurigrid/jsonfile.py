"""Reading a JSON file a person gave us: one line naming the file when it cannot be read or parsed."""

from __future__ import annotations

from pathlib import Path

from plurigrid.untrusted import MAX_INPUT_BYTES, InputTooLarge, parse_json, read_bounded


def read_json(path: Path, error: type[Exception]) -> object:
    """The parsed file; raises `error` ("PATH: cannot read (…)" or "PATH: not JSON (…)") otherwise.

    Files past MAX_INPUT_BYTES and data nested past `untrusted.MAX_DEPTH` levels are refused the same way.
    """
    try:
        data = read_bounded(path, MAX_INPUT_BYTES)
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror})") from None
    except InputTooLarge as err:
        raise error(f"{path}: cannot read ({err})") from None
    try:
        return parse_json(data)
    except ValueError as err:  # also bad UTF-8 or too deep
        raise error(f"{path}: not JSON ({err})") from None
