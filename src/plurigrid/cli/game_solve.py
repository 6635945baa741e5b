"""`plurigrid game solve`: equilibria of a Gambit .nfg or .efg file."""

from __future__ import annotations

import typer


def solve(
    file: str = typer.Argument(..., help="a Gambit .nfg (normal form) or .efg (extensive form) file"),
    pure: bool = typer.Option(False, "--pure", help="only pure-strategy equilibria"),
    as_json: bool = typer.Option(False, "--json", help="print the equilibria as JSON"),
) -> None:
    """Find the equilibria of a finite game."""
    raise NotImplementedError  # filled in by the finite-games work
