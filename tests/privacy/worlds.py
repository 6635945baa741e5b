"""A world whose households keep their meters from the operator per interval, and a search for leaked values.

`private_world` is hello at 15-minute resolution with three homes at bus2 (enough that the operator's bus
results show only their sum), each with solar and a battery, so what they meter is not the load profile the
operator's spec states whose policies give the operator their meter per hour and their bids per day,
and the public their meter per day. `leaks` looks for values in captured bytes in every encoding we could
think of a value travelling in, so a test of a boundary fails whatever form a leak takes.
"""

from __future__ import annotations

import base64
import json
import re
import struct

from plurigrid.microworld.loader import parse_text, resolve

HOMES = ("home-a", "home-b", "home-c")
POLICY = {"version": 2, "meter": {"operator": "hourly", "public": "hourly"}, "bids": {"operator": "daily"}}


def private_world(name: str = "private") -> dict:
    """The spec as JSON data (what the API takes); each home's load changes every 15 minutes."""
    _, text, _ = resolve("hello")
    spec = json.loads(json.dumps(parse_text("hello", text), default=str))
    spec["world"] |= {"name": name, "resolution": "15min", "start": "2024-06-21T10:00:00"}  # the sun shines
    for h, home in enumerate(HOMES):
        values = [round(731.37 + 97.13 * h + 41.71 * k + 3.17 * (k * k % 7), 2) for k in range(16)]
        spec["participant"].append({"id": home, "bus": "bus2", "kind": "household", "strategy": "self-consumption",
                                    "assets": {"load": {"profile": {"source": "values", "p_kw": values, "resolution": "15min"}},
                                               "pv": {"kwp": 4000.0 + 10 * h}, "battery": {"capacity_kwh": 400.0, "power_kw": 150.0}},
                                    "privacy": POLICY})
    return spec


def _forms(value: object) -> set[bytes]:
    """A value's texts: as JSON and Python write it, and rounded as reports round."""
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, int):
        return {str(value).encode()}
    if isinstance(value, float):
        texts = {repr(value), json.dumps(value), f"{value:.6g}", f"{value:.4f}", f"{value:.2f}", f"{value:,.2f}"}
        if value.is_integer():
            texts.add(str(int(value)))
        return {t.encode() for t in texts}
    return {str(value).encode()}


def _binary(value: object) -> set[bytes]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return set()
    out = {struct.pack("<d", float(value)), struct.pack(">d", float(value))}
    if isinstance(value, int) or float(value).is_integer():
        n = int(value)
        if -2**63 <= n < 2**63:
            out |= {struct.pack("<q", n), struct.pack(">q", n)}
    return out


def encodings(value: object) -> set[bytes]:
    """Every way we look for one value: its texts as UTF-8 and UTF-16, hex, base64 at each of the three
    alignments it can have inside a longer base64 text, and its 64-bit binary forms (and their hex and base64)."""
    out = set()
    raw = _forms(value) | _binary(value)
    for form in raw:
        out |= {form, form.hex().encode(), form.hex().upper().encode()}
        if form in _forms(value):
            out.add(form.decode().encode("utf-16-le"))
        for shift in range(3):  # inside a longer base64 text: the characters made of `form`'s bits only
            text = base64.b64encode(b"\0" * shift + form + b"\0\0")
            out.add(text[-(-8 * shift // 6):8 * (shift + len(form)) // 6])
    return {e for e in out if len(e) >= 6}


def leaks(captured: bytes, secrets: dict[str, list]) -> list[str]:
    """Which secret values (by label) appear in the captured bytes, in which encoding. A value's text counts only
    as a whole number (not the middle of a longer one, such as a timing's digits)."""
    found = []
    for label, values in secrets.items():
        for value in values:
            texts = _forms(value)
            for form in encodings(value):
                pattern = re.escape(form)
                if form in texts:
                    pattern = rb"(?<![0-9.])" + pattern + rb"(?![0-9])"
                if re.search(pattern, captured):
                    found.append(f"{label}: {value!r} as {form[:40]!r}")
                    break
    return found
