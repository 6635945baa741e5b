"""`plurigrid game`: finite games from Gambit files, and open games over microworlds (GAME.toml)."""

from __future__ import annotations

import typer

from plurigrid.cli.game_solve import solve

game_app = typer.Typer(help="Games: solve Gambit .nfg/.efg files; equilibria, deviations and coalitions of microworld games.",
                       no_args_is_help=True)
game_app.command("solve")(solve)
