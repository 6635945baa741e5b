"""Reads MATPOWER `.m` case files (version 2 format) into numpy tables.

All columns are kept as written: PGLib's 10-column gen tables and 13-column branch tables
(with angle-difference limits ANGMIN/ANGMAX) come through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plurigrid.errors import PlurigridError

_MATRIX = re.compile(r"mpc\.(\w+)\s*=\s*\[(.*?)\]\s*;", re.S)
_SCALAR = re.compile(r"mpc\.(\w+)\s*=\s*([-+0-9.eE]+|'[^']*')\s*;")
_MIN_COLUMNS = {"bus": 13, "gen": 10, "branch": 11, "gencost": 5}


class MatpowerError(PlurigridError, ValueError):
    """A MATPOWER file that cannot be read: one line naming the file and the problem."""


@dataclass
class MatpowerCase:
    """The tables of a MATPOWER case; bus numbers are the file's own (external) numbers."""

    name: str
    base_mva: float
    bus: np.ndarray
    gen: np.ndarray
    branch: np.ndarray
    gencost: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("%", 1)[0] for line in text.splitlines())


def _matrix(path: Path, name: str, body: str) -> np.ndarray:
    rows = [r.strip() for r in re.split(r"[;\n]", body) if r.strip()]
    try:
        data = [[float(v) for v in re.split(r"[\s,]+", r) if v] for r in rows]
    except ValueError:
        raise MatpowerError(f"{path}: mpc.{name}: non-numeric entry") from None
    widths = {len(r) for r in data}
    if len(widths) > 1:
        raise MatpowerError(f"{path}: mpc.{name}: rows have different lengths {sorted(widths)}")
    return np.array(data, dtype=float).reshape(len(data), widths.pop() if widths else 0)


def read_matpower(path: str | Path) -> MatpowerCase:
    """Parses a MATPOWER case file; raises MatpowerError with file and table on bad input."""
    path = Path(path)
    try:
        text = _strip_comments(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MatpowerError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    tables = {m.group(1): _matrix(path, m.group(1), m.group(2)) for m in _MATRIX.finditer(text)}
    scalars = {m.group(1): m.group(2) for m in _SCALAR.finditer(text)}
    for name, width in _MIN_COLUMNS.items():
        if name == "gencost" and name not in tables:
            continue
        if name not in tables:
            raise MatpowerError(f"{path}: mpc.{name} is missing")
        if tables[name].shape[1] < width:
            raise MatpowerError(f"{path}: mpc.{name} has {tables[name].shape[1]} columns; expected at least {width}")
    if "baseMVA" not in scalars:
        raise MatpowerError(f"{path}: mpc.baseMVA is missing")
    core = {"bus", "gen", "branch", "gencost"}
    return MatpowerCase(
        name=path.stem,
        base_mva=float(scalars["baseMVA"]),
        bus=tables["bus"],
        gen=tables["gen"],
        branch=tables["branch"],
        gencost=tables.get("gencost"),
        extra={k: v for k, v in tables.items() if k not in core},
    )


def to_pandapower(case: MatpowerCase, f_hz: float = 50.0):
    """Converts a case to a pandapower net (pandapower's own PYPOWER converter)."""
    import warnings

    from pandapower.converter.pypower import from_ppc

    ppc = {"version": "2", "baseMVA": case.base_mva, "bus": case.bus.copy(), "gen": case.gen.copy(),
           "branch": case.branch.copy()}
    if case.gencost is not None:
        ppc["gencost"] = case.gencost.copy()
    with warnings.catch_warnings():  # pandas' dtype deprecations inside pandapower's converter are not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        net = from_ppc(ppc, f_hz=f_hz, validate_conversion=False)
    net.name = case.name
    return net
