"""JSON files: reading one a person gave us (one line naming the file when it cannot be read or parsed), and
replacing one of ours whole."""

from __future__ import annotations

import os
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


def write_text_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Replaces the file whole (written aside, renamed): a reader, or a process killed meanwhile, sees the old file
    or the new one, never half of it. `durable` also fsyncs it first, so a crash cannot leave the new name empty."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
