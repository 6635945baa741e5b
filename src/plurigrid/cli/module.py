"""`plurigrid module check|run`: inspect a strategy module's ABI and imports, or run one decision.

Exit codes: 0 fine, 2 a problem a person must fix (bad file, flag, import, grant or hash; one line
each on stderr), 4 the module itself failed the call (one line with the reason).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from plurigrid.cli import console

if TYPE_CHECKING:
    from plurigrid.strategies.wasm.manifest import Manifest

module_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Write, build, check or try a participant strategy compiled to WebAssembly.")
_out = console.out
_err = console.err
MODULE_FAILED_EXIT = 4


def _say_error(line: str) -> None:
    _err.print(line, markup=False, highlight=False, soft_wrap=True)


def _manifest_for(module: Path, manifest: Path | None) -> Manifest | None:
    """The manifest named by --manifest, else `MODULE.toml` beside the module if present, else None."""
    from plurigrid.strategies.wasm.manifest import load_manifest, manifest_path_for

    if manifest is None:
        beside = manifest_path_for(module)
        return load_manifest(beside) if beside.is_file() else None
    return load_manifest(manifest)


@module_app.command()
def check(
    module: Path = typer.Argument(..., help="the module (.wasm, or .wat text)"),
    manifest: Path | None = typer.Option(None, "--manifest", help="manifest (default: MODULE.toml beside it, if present)"),
) -> None:
    """Check a module's ABI exports and imports (and, with a manifest, its hash and grants)."""
    from plurigrid.strategies.wasm.capabilities import capability_of, check_imports
    from plurigrid.strategies.wasm.host import compile_module
    from plurigrid.strategies.wasm.manifest import ManifestError, verify_module

    compiled = compile_module(module)
    found = _manifest_for(module, manifest)
    problems = [f"{compiled.name}: {p}" for p in compiled.abi_problems()]
    if found is None:  # nothing granted yet: only imports no grant could satisfy are problems
        problems += [f"{compiled.name}: {p}" for p in check_imports(compiled.imports, ())
                     if not p.endswith("(not granted)")]
    else:
        try:
            verify_module(found, compiled.sha256, compiled.name)
        except ManifestError as exc:
            problems.append(str(exc))
        problems += [f"{compiled.name}: {p}" for p in check_imports(compiled.imports, found.capabilities)]
    if problems:
        for problem in problems:
            _say_error(f"plurigrid: error: {problem}")
        raise typer.Exit(2)

    granted: set[str] = set(found.capabilities) if found else set()  # read only when there is a manifest
    _out.print(f"{compiled.name}: ABI 1 ok, sha256 {compiled.sha256}"
               + (f", manifest {found.path} ({found.name} {found.version})" if found else ", no manifest"),
               soft_wrap=True, highlight=False)
    table = Table("import", "type", "capability", *(["granted"] if found else []), box=None)
    for imp in compiled.imports:
        capability = capability_of(imp) or "?"
        table.add_row(str(imp), imp.signature, capability, *(["yes" if capability in granted else "no"] if found else []))
    if compiled.imports:
        _out.print(table)
    else:
        _out.print("no imports (needs no capability)")


@module_app.command()
def run(
    module: Path = typer.Argument(..., help="the module (.wasm, or .wat text)"),
    observation: Path = typer.Option(..., "--observation", help="one observation as a JSON object (docs/modules.md)"),
    manifest: Path | None = typer.Option(None, "--manifest", help="manifest (default: MODULE.toml beside it, if present)"),
    fuel: int | None = typer.Option(None, "--fuel", min=1, help="fuel limit (default 10,000,000 or the manifest's)"),
    memory_mb: int | None = typer.Option(None, "--memory-mb", min=1, help="linear memory limit in MiB (default 16)"),
    deadline_ms: int | None = typer.Option(None, "--deadline-ms", min=1,
                                           help="wall-clock backstop in ms (default: derived from the fuel limit)"),
    grant: list[str] | None = typer.Option(None, "--grant", help="grant a capability (repeat); with a manifest, at most what it declares"),
    as_json: bool = typer.Option(False, "--json", help="print decision, fuel and time as JSON"),
) -> None:
    """Run one `decide` call; exit 4 with the reason if the module traps, hits a limit or returns garbage."""
    from plurigrid.strategies.wasm.host import ModuleInstance, compile_module
    from plurigrid.strategies.wasm.manifest import Limits, effective, verify_module

    obs = _read_observation(observation)
    overrides = {k: v for k, v in (("fuel", fuel), ("memory_mb", memory_mb)) if v is not None}
    compiled = compile_module(module)
    found = _manifest_for(module, manifest)
    if found is None:
        grants, limits = list(grant or ()), Limits(**overrides)
    else:
        verify_module(found, compiled.sha256, compiled.name)
        narrowed = effective(found, grant or None, overrides)
        grants, limits = list(narrowed.capabilities), narrowed.limits
    instance = ModuleInstance(compiled, grants, limits, deadline_ms=deadline_ms)
    instance.context.now_ms = _time_ms(obs.get("time"), observation)
    decision, result = instance.decide(obs)
    if not result.ok:
        _say_error(f"plurigrid: {compiled.name}: {result.error} (fuel used {result.fuel_used:,})")
        raise typer.Exit(MODULE_FAILED_EXIT)
    assert decision is not None  # a call that went well has a decision
    log, outbox = instance.context.log_lines, instance.context.outbox
    if as_json:
        sys.stdout.write(json.dumps({"decision": decision, "fuel_used": result.fuel_used, "seconds": result.seconds,
                                     "log": log, "outbox": [[to, m.decode("utf-8", "replace")] for to, m in outbox]}) + "\n")
        return
    table = Table("field", "value", box=None)
    for key, value in decision.items():
        table.add_row(key, str(value).lower() if isinstance(value, bool) else f"{value:g}")
    _out.print(table if decision else "empty decision (passive)")
    _out.print(f"fuel used {result.fuel_used:,} of {limits.fuel:,}, time {result.seconds * 1e3:.3f} ms")
    for line in log:
        _out.print(f"log: {line}", markup=False, highlight=False)
    for to, message in outbox:
        _out.print(f"send to {to}: {message.decode('utf-8', 'replace')}", markup=False, highlight=False)


@module_app.command()
def new(
    name: str = typer.Argument(..., help="module name (also its folder and file names)"),
    lang: str = typer.Option("wat", "--lang", help="c, wat, assemblyscript or rust"),
    folder: Path | None = typer.Option(None, "--dir", help="where to write the project (default ./NAME)"),
    ibc: bool = typer.Option(False, "--ibc", help="an IBC application (the six ibc_* entry points) instead of a strategy"),
) -> None:
    """Write a working template module project: a strategy, or with --ibc an IBC application."""
    from plurigrid.strategies.wasm.authoring import new_module

    path = new_module(name, lang, folder or Path(name), ibc)
    kind = "IBC application" if ibc else "module"
    _out.print(f"{path}: new {lang} {kind}; build it with `plurigrid module build {path}`", soft_wrap=True, markup=False)


@module_app.command()
def build(folder: Path = typer.Argument(Path("."), help="the module project (default: this folder)")) -> None:
    """Build a module project with its language's toolchain and record the hash in its manifest."""
    from plurigrid.strategies.wasm.authoring import build_module
    from plurigrid.strategies.wasm.host import compile_module

    wasm = build_module(folder)
    _out.print(f"{wasm}: built, sha256 {compile_module(wasm).sha256}", soft_wrap=True, markup=False)


def _read_observation(path: Path) -> dict[str, Any]:
    from plurigrid.errors import UsageError
    from plurigrid.untrusted import parse_json

    def no_constants(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    try:
        obs = parse_json(path.read_text(encoding="utf-8"), parse_constant=no_constants)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None
    if not isinstance(obs, dict):
        raise UsageError(f"{path}: expected a JSON object (one observation), got {type(obs).__name__}")
    return obs


def _time_ms(value: Any, path: Path) -> int:
    """The observation's `time` (ISO 8601 with offset) in ms since the Unix epoch, what `now` returns; 0 if absent."""
    from plurigrid.errors import UsageError

    if value is None:
        return 0
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UsageError(f"{path}: time: expected an ISO 8601 time with offset, got {value!r}")
    return int(moment.timestamp() * 1000)
