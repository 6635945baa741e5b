"""The TOML manifest beside a strategy module: identity, content hash, capabilities, limits, fallback.

The manifest is what the module's author asks for; a microworld spec may grant less (fewer
capabilities, tighter limits) but never more, so a world cannot silently widen a sandbox.
`effective` applies that rule. Every problem is a `ManifestError` of one line, "FILE: field: problem".
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from plurigrid.errors import PlurigridError
from plurigrid.microworld.spec import STRATEGIES
from plurigrid.strategies.wasm.capabilities import WASI_DIR_PREFIX, grant_problems
from plurigrid.untrusted import InputTooLarge, NestedTooDeep, parse_toml, read_bounded

MAX_MANIFEST_BYTES = 2**20  # a manifest is a few lines; anything near this is not one

WASI_DIR_ANY = "wasi-dir"  # in a manifest: "the host may grant one read-only directory"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEYS = {"name", "version", "sha256", "capabilities", "limits", "fallback", "description", "abi"}
# The wall-clock backstop of a call (docs/modules.md, "Limits"): BACKSTOP_FACTOR times the longest
# its fuel can take at the slowest rate any module burns fuel, and at least DEADLINE_FLOOR_MS (a
# loaded host may not schedule the call for a while). benchmarks/bench_fuel.py measures that rate:
# 33 to 98 million units/s for a loop of `memory.grow 0` (the slowest module) on the 2-core
# reference machine, shared; WORST_FUEL_PER_S rounds it down. The factor covers a machine ten times
# slower (a Raspberry Pi class node) that is also loaded ten times over.
WORST_FUEL_PER_S = 20_000_000
BACKSTOP_FACTOR = 100
DEADLINE_FLOOR_MS = 1_000


class ManifestError(PlurigridError, ValueError):
    """A manifest (or a spec's grants/limits for it) a person must fix: "FILE: field: problem"."""


@dataclass(frozen=True)
class Limits:
    """Per-call limits of a module; the defaults suit a Raspberry-Pi-class node (docs/modules.md).

    Fuel decides what a call may do; the wall-clock deadline is not a limit anyone sets but a
    backstop derived from the fuel (`deadline_ms`), so no module's outcome depends on the machine.
    """

    fuel: int = 10_000_000
    memory_mb: float = 16
    output_kb: float = 64

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_mb * (1 << 20))

    @property
    def deadline_ms(self) -> int:
        """The wall-clock backstop of a call with this fuel: far above the longest the fuel can take."""
        return max(DEADLINE_FLOOR_MS, math.ceil(self.fuel * BACKSTOP_FACTOR * 1000 / WORST_FUEL_PER_S))

    @property
    def output_bytes(self) -> int:
        return int(self.output_kb * (1 << 10))


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated manifest; `capabilities` keeps the author's order."""

    path: Path
    name: str
    version: str
    sha256: str
    capabilities: tuple[str, ...] = ()
    limits: Limits = Limits()
    fallback: str = "passive"


def manifest_path_for(module_path: Path) -> Path:
    """Where a module's manifest lives: `X.toml` beside `X.wasm`."""
    return module_path.with_suffix(".toml")


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file; raise ManifestError naming the file and field on any problem."""
    path = Path(path)
    try:
        raw = parse_toml(read_bounded(path, MAX_MANIFEST_BYTES).decode("utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except InputTooLarge as exc:
        raise ManifestError(f"{path}: {exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, NestedTooDeep) as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    return parse_manifest(raw, path)


def parse_manifest(raw: Mapping[str, Any], path: Path) -> Manifest:
    """Validate a manifest already read as a mapping (`path` names it in errors)."""

    def fail(field: str, problem: str) -> ManifestError:
        return ManifestError(f"{path}: {field}: {problem}")

    for key in raw:
        if key not in _KEYS:
            raise fail(key, f"unknown field; expected one of {', '.join(sorted(_KEYS))}")
    for key in ("name", "version", "sha256"):
        if key not in raw:
            raise fail(key, "missing")
        if not isinstance(raw[key], str) or not raw[key]:
            raise fail(key, f"expected a non-empty string, got {raw[key]!r}")
    if not _SHA256.fullmatch(raw["sha256"]):
        raise fail("sha256", "expected 64 lowercase hex digits (sha256 of the .wasm file)")
    if raw.get("abi", 1) != 1:
        raise fail("abi", f"unsupported ABI version {raw['abi']!r}; this host speaks ABI 1")
    capabilities = raw.get("capabilities", [])
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise fail("capabilities", "expected a list of strings")
    problems = grant_problems([c for c in capabilities if c != WASI_DIR_ANY])
    if WASI_DIR_ANY in capabilities and "wasi" not in capabilities:
        problems.append(f"{WASI_DIR_ANY!r} needs the 'wasi' capability too")
    if problems:
        raise fail("capabilities", problems[0])
    fallback = raw.get("fallback", "passive")
    if fallback not in STRATEGIES:
        raise fail("fallback", f"expected a built-in strategy ({', '.join(STRATEGIES)}), got {fallback!r}")
    return Manifest(path=path, name=raw["name"], version=raw["version"], sha256=raw["sha256"],
                    capabilities=tuple(dict.fromkeys(capabilities)),
                    limits=_parse_limits(raw.get("limits", {}), fail), fallback=fallback)


def _parse_limits(raw: Any, fail: Callable[[str, str], ManifestError]) -> Limits:
    if not isinstance(raw, dict):
        raise fail("limits", "expected a table [limits]")
    for key, value in raw.items():
        problem = _limit_problem(key, value)
        if problem:
            raise fail(f"limits.{key}", problem)
    return Limits(**raw)


def _limit_problem(key: str, value: Any) -> str | None:
    """Why `value` is not a valid limit `key`: fuel is a positive integer, the others positive numbers."""
    if key == "deadline_ms":
        return "not a limit: the wall-clock deadline is a backstop derived from fuel (docs/modules.md); remove it"
    if key not in LIMIT_FIELDS:
        return f"unknown limit; expected one of {', '.join(LIMIT_FIELDS)}"
    if key == "fuel":
        return None if type(value) is int and value > 0 else f"expected a positive integer, got {value!r}"
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        return f"expected a positive number, got {value!r}"
    return None


def verify_module(manifest: Manifest, module_sha256: str, module_name: str) -> None:
    """Raise ManifestError unless the module's content hash is the one the manifest names."""
    if module_sha256 != manifest.sha256:
        raise ManifestError(f"{manifest.path}: sha256: does not match {module_name} "
                            f"(manifest {manifest.sha256[:12]}…, module {module_sha256[:12]}…)")


def effective(manifest: Manifest, grants: Iterable[str] | None = None,
              limits: Mapping[str, float | None] | None = None) -> Manifest:
    """The manifest narrowed by a spec's grants and limits; asking for more than the manifest raises.

    `grants=None` keeps the manifest's capabilities; a bare `wasi-dir` in the manifest allows the
    spec to grant one `wasi-dir:PATH` (the author cannot know the host's path). `limits` holds the
    limits the spec sets (None values are ignored); each must be at most the manifest's.
    """
    declared = manifest.capabilities
    if grants is None:
        granted = tuple(c for c in declared if c != WASI_DIR_ANY)
    else:
        granted = tuple(dict.fromkeys(grants))
        problems = grant_problems(granted)
        if problems:
            raise ManifestError(f"{manifest.path}: capabilities: {problems[0]}")
        for grant in granted:
            allowed = grant in declared or (grant.startswith(WASI_DIR_PREFIX) and WASI_DIR_ANY in declared)
            if not allowed:
                raise ManifestError(f"{manifest.path}: capabilities: the spec grants {grant!r}, "
                                    f"which the manifest does not declare")
    narrowed: dict[str, Any] = {}  # Limits field name -> value; the fields differ in type (fuel is an int)
    for key, value in (limits or {}).items():
        if value is None:
            continue
        problem = _limit_problem(key, value)
        if problem:
            raise ManifestError(f"{manifest.path}: limits.{key}: {problem}")
        if value > getattr(manifest.limits, key):
            raise ManifestError(f"{manifest.path}: limits.{key}: the spec asks for {value}, "
                                f"more than the manifest's {getattr(manifest.limits, key)}")
        narrowed[key] = value
    return replace(manifest, capabilities=granted, limits=replace(manifest.limits, **narrowed))
