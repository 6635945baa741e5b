"""Which capability each import of a strategy module needs, and whether a set of grants covers them.

A module may import only host functions it has been granted (docs/modules.md). This table is the
single place that says so: the host defines exactly the functions of the granted capabilities,
and `plurigrid module check` reports the same problems before anything runs. No wasmtime here:
imports are described by plain `Import` records so the check is cheap and testable on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HOST_MODULE = "plurigrid"
WASI_MODULE = "wasi_snapshot_preview1"
WASI_DIR_PREFIX = "wasi-dir:"

# import name in module `plurigrid` -> (capability, signature as written by `signature_text`)
HOST_IMPORTS: dict[str, tuple[str, str]] = {
    "log": ("log", "(i32, i32) -> ()"),
    "now": ("now", "() -> (i64)"),
    "kv_get": ("kv", "(i32, i32, i32, i32) -> (i32)"),
    "kv_put": ("kv", "(i32, i32, i32, i32) -> (i32)"),
    "read_meter": ("read_meter", "() -> (f64)"),
    "forecast": ("forecast", "(i32, i32) -> (i32)"),
    "prices": ("prices", "(i32, i32) -> (i32)"),
    "send": ("send", "(i32, i32, i32, i32) -> (i32)"),
    "set_setpoint": ("set_setpoint", "(f64) -> (i32)"),
}
CAPABILITIES: tuple[str, ...] = ("log", "now", "kv", "read_meter", "forecast", "prices", "send", "set_setpoint", "wasi")


@dataclass(frozen=True)
class Import:
    """One import of a module: where from, what, and its type (`(i32) -> (i64)`, or `memory`, `table`, `global`)."""

    module: str
    name: str
    signature: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


def signature_text(params: Iterable[str], results: Iterable[str]) -> str:
    """The one spelling of a function type used in tables and messages: `(i32, i32) -> (i64)`."""
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def capability_of(imp: Import) -> str | None:
    """The capability an import needs, or None when no capability can grant it (an unknown import)."""
    if imp.module == WASI_MODULE:
        return "wasi"
    if imp.module == HOST_MODULE and imp.name in HOST_IMPORTS:
        return HOST_IMPORTS[imp.name][0]
    return None


def grant_problems(grants: Iterable[str]) -> list[str]:
    """Grants that name no capability (typos), or a `wasi-dir:` grant without `wasi` or without a path."""
    grants = list(grants)
    problems = []
    for grant in grants:
        if grant.startswith(WASI_DIR_PREFIX):
            if not grant[len(WASI_DIR_PREFIX):]:
                problems.append(f"grant {grant!r} names no directory (expected {WASI_DIR_PREFIX}PATH)")
            elif "wasi" not in grants:
                problems.append(f"grant {grant!r} needs the 'wasi' capability too")
        elif grant not in CAPABILITIES:
            problems.append(f"unknown capability {grant!r}; expected one of {', '.join(CAPABILITIES)} or {WASI_DIR_PREFIX}PATH")
    return problems


def check_imports(module_imports: Iterable[Import], grants: Iterable[str]) -> list[str]:
    """One problem per import that is unknown, has the wrong type, or needs a capability not granted."""
    granted = set(grants)
    problems = []
    for imp in module_imports:
        capability = capability_of(imp)
        if capability is None:
            problems.append(f"unknown import {imp} {imp.signature}")
            continue
        if imp.module == HOST_MODULE and imp.signature != HOST_IMPORTS[imp.name][1]:
            problems.append(f"import {imp} has type {imp.signature}, expected {HOST_IMPORTS[imp.name][1]}")
        if capability not in granted:
            problems.append(f"import {imp} needs capability '{capability}' (not granted)")
    return problems
