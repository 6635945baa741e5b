"""Reads a microworld from a library name, TOML or JSON file, and reports errors for people.

Every problem becomes a `SpecError` whose text is one line:
``<file>: <field path>: <what was expected>``. Files are read within a size limit and parsed within a
nesting limit (`plurigrid.untrusted`), so hostile input is refused as quickly as a typo.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from plurigrid.errors import PlurigridError
from plurigrid.microworld.spec import Microworld
from plurigrid.untrusted import InputTooLarge, NestedTooDeep, parse_json, parse_toml, read_bounded

LIBRARY_PACKAGE = "plurigrid.microworld.library"
# A spec is refused within seconds only if it can be read within seconds: tomllib is pure Python (1-3 MB/s
# for table-heavy text) and validating 50,000 participants takes two (the largest of each is refused in
# about 3 s on an idle core). Bulk data belongs in CSV profiles, large grids in referenced grid files.
MAX_TOML_BYTES = 4 * 2**20
MAX_JSON_BYTES = 8 * 2**20
ModelT = TypeVar("ModelT", bound=BaseModel)


class SpecError(PlurigridError, ValueError):
    """A user error in a microworld spec: one line naming the file, the field and the expectation."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source, self.path, self.message = source, path, message
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(where + message)

    def __reduce__(self) -> tuple:
        """Rebuilt from its three parts (a worker process's SpecError reaches the parent as the same one line)."""
        return (SpecError, (self.source, self.path, self.message))


def library_worlds() -> dict[str, str]:
    """Names of the built-in microworlds mapped to their one-line descriptions."""
    return library_index(LIBRARY_PACKAGE, "world")


def library_index(package: str, section: str) -> dict[str, str]:
    """The TOML files of a library package by name, each with the first line of its [section].description."""
    out: dict[str, str] = {}
    for entry in sorted(resources.files(package).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[entry.name[: -len(".toml")]] = str(data.get(section, {}).get("description", "")).split("\n")[0]
    return out


def resolve(world: str, package: str = LIBRARY_PACKAGE, section: str = "world") -> tuple[str, str, Path | None]:
    """Finds a file of a library (microworlds by default) by name or path: returns (display name, text, base
    directory for relative paths)."""
    path = Path(world)
    if path.suffix in (".toml", ".json") or path.exists():
        if not path.is_file():
            raise SpecError(str(path), "", "no such file")
        limit = MAX_JSON_BYTES if path.suffix == ".json" else MAX_TOML_BYTES
        try:
            return path.name, read_bounded(path, limit).decode("utf-8"), path.resolve().parent
        except InputTooLarge as exc:
            raise SpecError(str(path), "", f"{exc}; give bulk values as CSV profiles") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(str(path), "", f"cannot read file ({exc.__class__.__name__})") from None
    entry = resources.files(package) / f"{world}.toml"
    if not entry.is_file():
        names = ", ".join(library_index(package, section))
        what = "library microworld" if package == LIBRARY_PACKAGE else f"library {section}"
        raise SpecError(world, "", f"not a file and not a {what}; expected a path or one of: {names}")
    # library files find their module files and CSVs beside them, in the installed package
    return f"{world}.toml", entry.read_text(encoding="utf-8"), Path(str(resources.files(package)))


def parse_text(name: str, text: str) -> dict:
    """Parses TOML (or JSON for *.json names) into plain data, reporting the line of a syntax error."""
    try:
        data = parse_json(text) if name.endswith(".json") else parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(name, "", f"invalid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SpecError(name, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except NestedTooDeep as exc:
        raise SpecError(name, "", str(exc)) from None
    except ValueError as exc:  # json: an integer of more than 4,300 digits
        raise SpecError(name, "", f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(name, "", "expected a table/object at the top level")
    return data


def _field_path(loc: tuple) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif i > 0 and loc[i - 1] == "profile" and _is_tag(item):
            continue  # discriminated-union tag, not a key the user wrote
        elif _is_member(item):
            continue  # which member of a union (`float | list[float]`) pydantic tried
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _is_tag(item: object) -> bool:
    return item in {"constant", "values", "bdew", "csv", "simbench", "pvlib", "wind-model", "run-of-river"}


def _is_member(item: object) -> bool:
    """Whether a location item names a union member (`float`, `list[float]`, `literal[...]`), not a key."""
    return isinstance(item, str) and (item in {"float", "int", "str", "bool"}
                                      or item.startswith(("list[", "literal[", "constrained-", "function-")))


def _explaining(errors: list[ErrorDetails]) -> ErrorDetails:
    """The error to report: a typo first (it explains the rest), else the first; of the members of a union
    the one that got furthest (`[1, nan]` for `float | list[float]` is about item 1, not about being a list)."""
    first = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    loc = tuple(first["loc"])
    cut = next((i for i, item in enumerate(loc) if _is_member(item)), None)
    if cut is None or first["type"] == "extra_forbidden":
        return first
    return max((e for e in errors if tuple(e["loc"])[:cut] == loc[:cut]), key=lambda e: len(e["loc"]))


def _message(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    simple = {
        "greater_than": "must be > {gt:g}",
        "greater_than_equal": "must be >= {ge:g}",
        "less_than": "must be < {lt:g}",
        "less_than_equal": "must be <= {le:g}",
        "missing": "required field is missing",
        "extra_forbidden": "unknown key (check the spelling)",
        "string_too_short": "must not be empty",
        "too_short": "needs at least {min_length} item(s)",
        "finite_number": "must be a finite number",
    }
    if kind in simple:
        return simple[kind].format(**ctx)
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {err.get('input')!r}"
    if kind == "union_tag_invalid":
        return f"unknown source {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "needs 'source' (one of the profile kinds)"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"][0].lower() + err["msg"][1:]


def validate_data(name: str, data: dict) -> Microworld:
    """Validates plain data against the spec and its semantic checks; the first problem becomes a one-line SpecError."""
    from plurigrid.microworld.checks import check_spec

    spec = validate_model(name, data, Microworld)
    check_spec(name, spec)
    return spec


def validate_model(name: str, data: dict, model: type[ModelT]) -> ModelT:
    """Validates plain data against any of our pydantic models, with the same one-line errors."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = _explaining(exc.errors(include_url=False))
        raise SpecError(name, _field_path(tuple(err["loc"])), _message(err)) from None


def load(world: str) -> tuple[Microworld, str, Path | None]:
    """Loads and validates a microworld; returns (spec, display name, base directory for relative paths)."""
    name, text, base = resolve(world)
    return validate_data(name, parse_text(name, text)), name, base
