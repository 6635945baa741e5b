"""Reading a JSON file a person gave us: one line naming the file when it cannot be read or parsed."""

from __future__ import annotations

import json
from pathlib import Path


def read_json(path: Path, error: type[Exception]) -> object:
    """The parsed file; raises `error` ("PATH: cannot read (…)" or "PATH: not JSON (…)") otherwise."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror})") from None
    except ValueError as err:
        raise error(f"{path}: not JSON ({err})") from None
