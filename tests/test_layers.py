"""The layers of ARCHITECTURE.md: a package imports only its own layer and the ones below it (no cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "plurigrid"
# lowest first; a package may import any package at its own rank or lower
RANKS = {"errors": 0, "jsonfile": 0, "untrusted": 0, "kanban": 0, "state": 1, "microworld": 2, "grid": 3, "assets": 3, "opf": 4, "strategies": 5,
         "market": 6, "engine": 7, "lattice": 8, "ibc": 8, "devices": 8, "games": 8, "privacy": 8, "node": 9, "sweeps": 9, "chat": 9, "cli": 10, "rl": 10, "_api": 10, "server": 10,
         "__main__": 10}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "plurigrid" and len(parts) > 1 else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC),
                         ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    assert own in RANKS, f"{own}: give the new package a rank"
    above = sorted(m for m in _imports(path) if (pkg := _package(m)) and pkg in RANKS and RANKS[pkg] > RANKS[own])
    assert not above, f"{path.relative_to(SRC)} ({own}) imports {above}, a layer above it"
