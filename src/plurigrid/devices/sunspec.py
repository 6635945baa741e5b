"""SunSpec information models over Modbus: the register map of a device, its points and their scale factors.

Why: inverters, storage and meters from most vendors expose SunSpec models over Modbus TCP. A device's
map is discovered, not configured: after the marker "SunS" at register 40000 (or 0, or 50000) come
models one after another, each `(id, length)` and its registers, up to the end model 0xFFFF. The
model definitions are the SunSpec Alliance's own (the JSON files of `pysunspec2`), so every point's
type, size, unit and scale factor comes from the standard, not from code here.

`decode` turns a model's registers into values in the units the standard names (a point's value times
10 ** its scale factor); a point the device does not implement (SunSpec's "not implemented" value) is
None. `encode` is the inverse, for writes and for the simulator. Only the models' fixed blocks are
read; repeating groups (e.g. model 160's MPPT modules) are not needed by the node.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources

from plurigrid.devices.base import DeviceError

MARKER = (0x5375, 0x6E53)  # "SunS"
BASES = (40000, 0, 50000)  # where a map may start, in the order devices use them
END_MODEL = 0xFFFF
MAX_READ = 125  # registers per Modbus read request

# per type: registers, struct format of the big-endian bytes, and the raw value meaning "not implemented". The
# standard gives accumulators 0 for that; a meter that has counted nothing yet shows 0 too, so 0 is read as 0 Wh.
_TYPES: dict[str, tuple[int, str, int | float | None]] = {
    "int16": (1, ">h", -0x8000), "uint16": (1, ">H", 0xFFFF), "acc16": (1, ">H", -1), "enum16": (1, ">H", 0xFFFF),
    "bitfield16": (1, ">H", 0xFFFF), "count": (1, ">H", 0), "sunssf": (1, ">h", -0x8000),
    "int32": (2, ">i", -0x80000000), "uint32": (2, ">I", 0xFFFFFFFF), "acc32": (2, ">I", -1), "enum32": (2, ">I", 0xFFFFFFFF),
    "bitfield32": (2, ">I", 0xFFFFFFFF), "ipaddr": (2, ">I", 0),
    "int64": (4, ">q", -0x8000000000000000), "uint64": (4, ">Q", 0xFFFFFFFFFFFFFFFF), "acc64": (4, ">Q", -1),
    "float32": (2, ">f", None), "float64": (4, ">d", None),
}


@dataclass(frozen=True)
class Point:
    name: str
    type: str
    offset: int  # registers from the model's ID register
    size: int  # registers
    sf: str | int | None  # the name of its scale factor point, a fixed exponent, or none
    units: str | None


@dataclass(frozen=True)
class Model:
    id: int
    name: str
    length: int  # registers after ID and L
    points: dict[str, Point]


@cache
def model(model_id: int) -> Model:
    """A SunSpec model definition, from the standard's JSON (`pysunspec2`)."""
    try:
        raw = resources.files("sunspec2").joinpath("models", "json", f"model_{model_id}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeviceError("malformed", f"SunSpec model {model_id} is not a model the standard defines") from None
    group = json.loads(raw)["group"]
    points, offset = {}, 0
    for p in group["points"]:
        size = int(p.get("size", 1))
        points[p["name"]] = Point(p["name"], p["type"], offset, size, p.get("sf"), p.get("units"))
        offset += size
    return Model(model_id, group["name"], offset - 2, points)


def raw_value(point: Point, registers: list[int]) -> int | float | str | None:
    words = registers[point.offset:point.offset + point.size]
    if point.type == "string":
        text = struct.pack(f">{len(words)}H", *words).rstrip(b"\0").decode("utf-8", errors="replace")
        return text or None
    if point.type == "pad":
        return None
    if point.type not in _TYPES:
        raise DeviceError("malformed", f"point {point.name}: unknown SunSpec type {point.type!r}")
    _, fmt, missing = _TYPES[point.type]
    value = struct.unpack(fmt, struct.pack(f">{len(words)}H", *words))[0]
    if (missing is None and isinstance(value, float) and math.isnan(value)) or value == missing:
        return None
    return value


def decode(definition: Model, registers: list[int]) -> dict[str, int | float | str | None]:
    """The model's points in the standard's units, scale factors applied; None for what is not implemented."""
    if len(registers) < definition.length + 2:
        raise DeviceError("malformed", f"model {definition.id} ({definition.name}): {len(registers)} registers, "
                          f"expected {definition.length + 2}")
    raw = {name: raw_value(p, registers) for name, p in definition.points.items()}
    values: dict[str, int | float | str | None] = {}
    for name, p in definition.points.items():
        value = raw[name]
        if value is None or p.sf is None or p.type == "sunssf" or isinstance(value, str):
            values[name] = value
            continue
        exponent = p.sf if isinstance(p.sf, int) else raw.get(p.sf)
        if not isinstance(exponent, int) or not -10 <= exponent <= 10:
            values[name] = None  # a missing or absurd scale factor: the value cannot be read
            continue
        values[name] = value * 10.0 ** exponent if exponent < 0 else value * 10 ** exponent
    return values


def encode(definition: Model, values: dict[str, int | float | str | None], scale: dict[str, int] | None = None) -> list[int]:
    """The model's registers (ID and L first) for `values` in the standard's units, each divided by its scale
    factor (`scale` gives the exponents; unset points are "not implemented")."""
    scale = scale or {}
    registers = [0] * (definition.length + 2)
    for name, p in definition.points.items():
        if name == "ID":
            value: int | float | str | None = definition.id
        elif name == "L":
            value = definition.length
        elif p.type == "sunssf":
            value = scale.get(name)
        else:
            value = values.get(name)
            exponent = scale.get(p.sf) if isinstance(p.sf, str) else p.sf
            if isinstance(value, (int, float)) and exponent:
                value = round(value / 10.0 ** exponent)
        registers[p.offset:p.offset + p.size] = _words(p, value)
    return registers


def _words(point: Point, value: int | float | str | None) -> list[int]:
    if point.type == "string":
        data = (value or "").encode()[:2 * point.size] if isinstance(value, str) else b""
        data = data.ljust(2 * point.size, b"\0")
        return list(struct.unpack(f">{point.size}H", data))
    if point.type == "pad":
        return [0] * point.size
    _, fmt, missing = _TYPES[point.type]
    if isinstance(value, str):
        raise DeviceError("malformed", f"point {point.name} is a number, not {value!r}")
    if value is None:  # "not implemented" (an accumulator, which has no such value, counts nothing)
        raw: int | float = float("nan") if missing is None else 0 if missing == -1 else missing
    else:
        raw = value
    if fmt[-1] not in "fd":
        raw = int(round(raw))
    return list(struct.unpack(f">{point.size}H", struct.pack(fmt, raw)))
