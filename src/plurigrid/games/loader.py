"""Reads a GAME.toml from the games library or a path, with the microworld loader's one-line errors."""

from __future__ import annotations

from pathlib import Path

from plurigrid.games.spec import Game
from plurigrid.microworld.loader import library_index, parse_text, resolve, validate_model

LIBRARY_PACKAGE = "plurigrid.games.library"


def library_games() -> dict[str, str]:
    """Names of the built-in games mapped to their one-line descriptions."""
    return library_index(LIBRARY_PACKAGE, "game")


def load_game(game: str) -> tuple[Game, str, Path]:
    """Loads and validates a game: returns (spec, display name, directory its relative paths start from)."""
    name, text, base = resolve(game, LIBRARY_PACKAGE, "game")
    assert base is not None  # a game is always a file or a library entry
    return validate_model(name, parse_text(name, text), Game), name, base
