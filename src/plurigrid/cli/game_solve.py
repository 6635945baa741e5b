"""`plurigrid game solve`: equilibria of a Gambit .nfg or .efg file."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from plurigrid.cli import console

if TYPE_CHECKING:
    from plurigrid.games.equilibria import Equilibrium
    from plurigrid.games.extensive import ExtensiveGame, SubgamePerfect
    from plurigrid.games.normal import NormalFormGame

BACKWARD_INDUCTION = "backward induction"


def solve(
    file: str = typer.Argument(..., help="a Gambit .nfg (normal form) or .efg (extensive form) file"),
    pure: bool = typer.Option(False, "--pure", help="only pure-strategy equilibria"),
    as_json: bool = typer.Option(False, "--json", help="print the equilibria as JSON"),
) -> None:
    """Find the equilibria of a finite game: all pure ones with --pure; otherwise every extreme equilibrium of a
    two-player game (exact for rational payoffs), or every pure one plus one mixed (logit homotopy) for three or more.
    An .efg is solved in its reduced normal form; a perfect-information tree also gets its subgame-perfect
    equilibria by backward induction."""
    from plurigrid.games.equilibria import solve as solve_game
    from plurigrid.games.extensive import ExtensiveGame
    from plurigrid.games.gambit import read_game

    game = read_game(file)
    tree = game if isinstance(game, ExtensiveGame) else None
    normal = game.to_normal() if isinstance(game, ExtensiveGame) else game
    equilibria = solve_game(normal, pure=pure)
    spe = tree.backward_induction() if tree is not None and tree.is_perfect_information else None
    if as_json:
        out: dict[str, Any] = {"players": normal.players, "strategies": normal.strategies,
                               "equilibria": [_equilibrium_json(e) for e in equilibria]}
        if tree is not None and spe is not None:
            out["subgame_perfect"] = [_spe_json(tree, s) for s in spe]
        sys.stdout.write(json.dumps(out) + "\n")
        return
    kinds = "every pure one" if pure or normal.n_players == 1 else (
        "every extreme one" if normal.n_players == 2 else "every pure one and one by the logit homotopy")
    _print(f"{normal.title or file}: {normal.n_players} players, {' x '.join(map(str, normal.shape))} strategies; "
           f"{len(equilibria)} equilibria ({kinds})")
    table = Table("#", *map(escape, normal.players), "payoffs", "method", box=None)
    for k, e in enumerate(equilibria, 1):
        table.add_row(str(k), *(escape(_mixed_text(normal, i, e)) for i in range(normal.n_players)),
                      _numbers_text(e.payoffs_exact or e.payoffs), e.method)
    console.out.print(table)
    if tree is not None and spe is not None:
        _print(f"subgame-perfect equilibria (backward induction): {len(spe)}")
        spe_table = Table("#", "actions", "payoffs", box=None)
        for k, s in enumerate(spe, 1):
            spe_table.add_row(str(k), escape(", ".join(f"{a['player']}: {a['action']}" for a in _actions(tree, s))),
                              _numbers_text(s.payoffs))
        console.out.print(spe_table)


def _equilibrium_json(e: Equilibrium) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": [[float(p) for p in probs] for probs in e.profile]}
    if e.exact is not None:
        out["profile_exact"] = [[str(p) for p in probs] for probs in e.exact]
    out["payoffs"] = [float(v) for v in e.payoffs]
    if e.payoffs_exact is not None:
        out["payoffs_exact"] = [str(v) for v in e.payoffs_exact]
    out["method"] = e.method
    return out


def _spe_json(tree: ExtensiveGame, s: SubgamePerfect) -> dict[str, Any]:
    """The equilibrium as a pure profile of the reduced normal form, with its action at every decision node."""
    profile = []
    for i in range(len(tree.players)):
        plan = [s.choices[(i, info.number)] for info in tree.infosets[i]]
        chosen = tree.strategy_index(i, plan)
        profile.append([1.0 if j == chosen else 0.0 for j in range(len(tree.reduced_strategies(i)))])
    return {"profile": profile, "profile_exact": [[str(int(p)) for p in probs] for probs in profile],
            "payoffs": [float(v) for v in s.payoffs], "payoffs_exact": [str(v) for v in s.payoffs],
            "actions": _actions(tree, s), "method": BACKWARD_INDUCTION}


def _actions(tree: ExtensiveGame, s: SubgamePerfect) -> list[dict[str, Any]]:
    infos = {(i, info.number): info for i in range(len(tree.players)) for info in tree.infosets[i]}
    return [{"player": tree.players[key[0]], "infoset": key[1], "name": infos[key].name, "action": infos[key].actions[a]}
            for key, a in s.choices.items()]


def _mixed_text(game: NormalFormGame, player: int, e: Equilibrium) -> str:
    """`label` for a pure strategy, else `label p, label p` over the strategies played (exact where known)."""
    probs = e.exact[player] if e.exact is not None else e.profile[player]
    played = [(label, p) for label, p in zip(game.strategies[player], probs) if p > 0]
    if len(played) == 1:
        return played[0][0]
    return ", ".join(f"{label} {p if isinstance(p, Fraction) else f'{p:.6g}'}" for label, p in played)


def _numbers_text(values: Any) -> str:
    return ", ".join(str(v) if isinstance(v, Fraction) else f"{v:.6g}" for v in values)


def _print(line: str) -> None:
    console.out.print(line, markup=False, highlight=False, soft_wrap=True)
