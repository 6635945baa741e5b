"""Reads a GAME.toml from the games library or a path, with the microworld loader's one-line errors."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from plurigrid.games.spec import Game
from plurigrid.microworld.loader import MAX_TOML_BYTES, SpecError, parse_text, validate_model
from plurigrid.untrusted import InputTooLarge, read_bounded

LIBRARY_PACKAGE = "plurigrid.games.library"


def library_games() -> dict[str, str]:
    """Names of the built-in games mapped to their one-line descriptions."""
    out: dict[str, str] = {}
    for entry in sorted(resources.files(LIBRARY_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[entry.name[: -len(".toml")]] = str(data.get("game", {}).get("description", "")).split("\n")[0]
    return out


def load_game(game: str) -> tuple[Game, str, Path]:
    """Loads and validates a game: returns (spec, display name, directory its relative paths start from)."""
    path = Path(game)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SpecError(str(path), "", "no such file")
        try:
            text = read_bounded(path, MAX_TOML_BYTES).decode("utf-8")
        except InputTooLarge as exc:
            raise SpecError(str(path), "", str(exc)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(str(path), "", f"cannot read file ({exc.__class__.__name__})") from None
        name, base = path.name, path.resolve().parent
    else:
        entry = resources.files(LIBRARY_PACKAGE) / f"{game}.toml"
        if not entry.is_file():
            raise SpecError(game, "", f"not a file and not a library game; expected a path or one of: {', '.join(library_games())}")
        name, text, base = f"{game}.toml", entry.read_text(encoding="utf-8"), Path(str(resources.files(LIBRARY_PACKAGE)))
    return validate_model(name, parse_text(name, text), Game), name, base
