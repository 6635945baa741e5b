"""`plurigrid game`: finite games from Gambit files, and open games over microworlds (GAME.toml)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import numpy as np
import typer
from rich.table import Table

from plurigrid.cli import console
from plurigrid.cli.game_solve import solve
from plurigrid.errors import UsageError

if TYPE_CHECKING:
    from plurigrid.games.microgame import MicroworldGame

out = console.out
game_app = typer.Typer(help="Games: solve Gambit .nfg/.efg files; equilibria, deviations and coalitions of microworld games.",
                       no_args_is_help=True)
game_app.command("solve")(solve)

GAME_ARG = typer.Argument(..., help="a GAME.toml or a library game (plurigrid game list)")
MECHANISM = typer.Option(None, "--mechanism", help="one of the game's mechanisms (default: each in turn)")
WORKERS = typer.Option(1, "--workers", min=1, max=64, help="simulations run at once (processes)")
CACHE = typer.Option(None, "--cache", help="folder that keeps simulated runs between commands")
JSON = typer.Option(False, "--json", help="print the result as JSON")
PROFILE = typer.Option(None, "--profile", help="PLAYER=STRATEGY (repeatable); players not named play their first strategy")


def _games(game: str, mechanism: str | None, cache: str | None) -> list[MicroworldGame]:
    from plurigrid.games.loader import load_game
    from plurigrid.games.microgame import MicroworldGame, SimulationCache

    spec, name, base = load_game(game)
    if not spec.player:
        raise UsageError(f"{name}: a resilience game has no players to analyse here; use `plurigrid game resilience`")
    mechanisms = spec.game.mechanisms
    if mechanism is not None and mechanism not in mechanisms:
        raise UsageError(f"--mechanism: {mechanism!r} is not one of the game's mechanisms ({', '.join(mechanisms)})")
    shared = SimulationCache(cache)
    return [MicroworldGame(spec, name, base, m, shared) for m in ([mechanism] if mechanism else mechanisms)]


def _choice(profile: list[str] | None) -> dict[str, str]:
    choice = {}
    for item in profile or []:
        player, sep, plan = item.partition("=")
        if not sep or not player or not plan:
            raise UsageError(f"--profile: expected PLAYER=STRATEGY, got {item!r}")
        choice[player] = plan
    return choice


def _emit(data: dict) -> None:
    sys.stdout.write(json.dumps(data) + "\n")


@game_app.command("list")
def list_games(as_json: bool = JSON) -> None:
    """List the library games."""
    from plurigrid.games.loader import library_games

    games = library_games()
    if as_json:
        _emit({"games": [{"name": name, "description": desc} for name, desc in games.items()]})
        return
    table = Table("game", "description", box=None)
    for name, desc in games.items():
        table.add_row(name, desc)
    out.print(table)


@game_app.command("check")
def check(game: str = GAME_ARG, mechanism: str | None = MECHANISM, profile: list[str] | None = PROFILE,
          workers: int = WORKERS, cache: str | None = CACHE, as_json: bool = JSON) -> None:
    """Payoffs of one profile and every profitable unilateral deviation from it (none: an equilibrium)."""
    from plurigrid.games.analysis import deviations

    results = []
    for g in _games(game, mechanism, cache):
        report = deviations(g, g.profile_of(_choice(profile)), workers)
        results.append({"mechanism": g.mechanism, **report.to_json(g.player_ids)})
        if not as_json:
            n = len(report.deviations)
            verdict = "an equilibrium" if not n else f"not an equilibrium ({n} profitable deviation{'s' if n > 1 else ''})"
            played = ", ".join(f"{p}={s}" for p, s in zip(g.player_ids, report.labels))
            out.print(f"{g.spec.game.name} under {g.mechanism}: {played}: {verdict}; "
                      f"community cost {report.community_cost_eur:,.3f} EUR", markup=False, highlight=False, soft_wrap=True)
            table = Table("player", "payoff EUR", box=None)
            for p, v in zip(g.player_ids, report.payoffs_eur):
                table.add_row(p, f"{v:,.4f}")
            out.print(table)
            if report.deviations:
                table = Table("player", "from", "to", "gain EUR", box=None)
                for d in report.deviations:
                    table.add_row(d.player, d.from_plan, d.to_plan, f"{d.gain_eur:,.4f}")
                out.print(table)
    if as_json:
        _emit({"game": _name(game), "results": results})


def _name(game: str) -> str:
    return game.rsplit("/", 1)[-1].removesuffix(".toml")


@game_app.command("equilibria")
def equilibria(game: str = GAME_ARG, mechanism: str | None = MECHANISM,
               method: str = typer.Option("auto", "--method", help="auto, enumerate or best-response"),
               workers: int = WORKERS, cache: str | None = CACHE, as_json: bool = JSON) -> None:
    """Pure equilibria of the game under each mechanism, their community cost and the price of anarchy."""
    from plurigrid.games.analysis import price_of_anarchy, pure_equilibria

    if method not in ("auto", "enumerate", "best-response"):
        raise UsageError(f"--method: unknown method {method!r}; expected auto, enumerate or best-response")
    games = _games(game, mechanism, cache)
    optimum = _optimum(games[0], cache)
    results = []
    for g in games:
        found = pure_equilibria(g, method=method, workers=workers)
        anarchy = price_of_anarchy(g, found, optimum)
        results.append({"mechanism": g.mechanism, "method": found.method, "note": found.note, "profiles": found.profiles,
                        "simulations": found.simulations, "equilibria": [e.to_json(g.player_ids) for e in found.equilibria],
                        **anarchy.to_json()})
        if not as_json:
            count = len(found.equilibria)
            pure = f"{count} pure equilibri{'um' if count == 1 else 'a'}"
            out.print(f"{g.spec.game.name} under {g.mechanism}: {pure} among {found.profiles:,} profiles "
                      f"({found.method}; {found.simulations} simulations){'; ' + found.note if found.note else ''}",
                      markup=False, highlight=False, soft_wrap=True)
            table = Table(*g.player_ids, "community cost EUR", box=None)
            for e in found.equilibria:
                table.add_row(*e.labels, f"{e.community_cost_eur:,.3f}")
            out.print(table)
            poa, pos = anarchy.price_of_anarchy, anarchy.price_of_stability
            out.print(f"optimum: {anarchy.optimum}, {anarchy.optimum_cost_eur:,.3f} EUR; price of anarchy "
                      f"{'-' if poa is None else f'{poa:.4f}'}, price of stability {'-' if pos is None else f'{pos:.4f}'}",
                      markup=False, highlight=False, soft_wrap=True)
    if as_json:
        _emit({"game": _name(game), "results": results})


def _optimum(g: MicroworldGame, cache: str | None) -> MicroworldGame | None:
    """The game under its optimum mechanism (the social optimum's run), sharing the cache."""
    from plurigrid.games.microgame import MicroworldGame

    if g.spec.game.optimum is None:
        return None
    return MicroworldGame(g.spec, g.name, g.base_dir, g.spec.game.optimum, g.cache)


@game_app.command("counterfactual")
def counterfactual(game: str = GAME_ARG, mechanism: str | None = MECHANISM, profile: list[str] | None = PROFILE,
                   player: str | None = typer.Option(None, "--player", help="only this player"),
                   workers: int = WORKERS, cache: str | None = CACHE, as_json: bool = JSON) -> None:
    """For each player: had it chosen otherwise (the others as they were), what it would have paid."""
    from plurigrid.games.analysis import counterfactuals

    results = []
    for g in _games(game, mechanism, cache):
        if player is not None and player not in g.player_ids:
            raise UsageError(f"--player: unknown player {player!r}; expected one of {', '.join(g.player_ids)}")
        rows = [c for c in counterfactuals(g, g.profile_of(_choice(profile)), workers) if player in (None, c.player)]
        results.append({"mechanism": g.mechanism, "counterfactuals": [
            {"player": c.player, "chosen": c.chosen, "alternative": c.alternative, "payoff_eur": round(c.payoff_eur, 6),
             "bill_eur": round(c.bill_eur, 6), "gain_eur": round(c.gain_eur, 6)} for c in rows]})
        if not as_json:
            out.print(f"{g.spec.game.name} under {g.mechanism}:", markup=False, highlight=False)
            for c in rows:
                if c.alternative != c.chosen:
                    bill = f"paid {c.bill_eur:,.2f} EUR" if c.bill_eur >= 0 else f"been paid {-c.bill_eur:,.2f} EUR"
                    out.print(f"  {c.player}: had you chosen {c.alternative} instead of {c.chosen}, you would have {bill} "
                              f"({'+' if c.gain_eur >= 0 else ''}{c.gain_eur:,.2f} EUR for you)",
                              markup=False, highlight=False, soft_wrap=True)
    if as_json:
        _emit({"game": _name(game), "results": results})


@game_app.command("coalitions")
def coalitions(game: str = GAME_ARG, mechanism: str | None = MECHANISM, profile: list[str] | None = PROFILE,
               samples: int = typer.Option(1000, "--samples", min=10, help="permutations for a sampled Shapley value (over 12 players)"),
               seed: int = typer.Option(0, "--seed", min=0, help="seed of the sampled Shapley value"),
               workers: int = WORKERS, cache: str | None = CACHE, as_json: bool = JSON) -> None:
    """What each coalition of players saves by trading among itself (the rest at tariff): Shapley value, core, nucleolus."""
    from plurigrid.games.coalition_values import coalition_analysis

    results = []
    for g in _games(game, mechanism, cache):
        report = coalition_analysis(g, g.profile_of(_choice(profile)), samples=samples, seed=seed, workers=workers)
        results.append({"mechanism": g.mechanism, **report.to_json()})
        if not as_json:
            grand = report.coalitions.get(frozenset(g.player_ids))
            out.print(f"{g.spec.game.name} under {g.mechanism}: the grand coalition saves "
                      f"{'-' if grand is None else f'{grand:,.3f}'} EUR; Shapley value ({report.shapley.method}):",
                      markup=False, highlight=False, soft_wrap=True)
            table = Table("player", "Shapley EUR", "nucleolus EUR", box=None)
            for i, p in enumerate(g.player_ids):
                nucleolus = "-" if report.nucleolus is None else f"{report.nucleolus[i]:,.4f}"
                table.add_row(p, f"{report.shapley.values[i]:,.4f}", nucleolus)
            out.print(table)
            if report.core is not None:
                out.print("core: " + ("empty" if report.core.empty else "not empty"), markup=False, highlight=False)
    if as_json:
        _emit({"game": _name(game), "results": results})


@game_app.command("learn")
def learn(game: str = GAME_ARG, mechanism: str | None = MECHANISM,
          dynamics: str = typer.Option("q-learning", "--dynamics", help="fictitious-play, replicator, q-learning or active-inference"),
          rounds: int = typer.Option(200, "--rounds", min=1, max=1_000_000, help="rounds of play"),
          seed: int = typer.Option(0, "--seed", min=0, help="seed of the learners"),
          full_information: bool = typer.Option(False, "--full-information",
                                                help="simulate every profile, then run the dynamics on the game's normal form"),
          workers: int = WORKERS, cache: str | None = CACHE, as_json: bool = JSON) -> None:
    """Players as learners: each round they pick a strategy, the profile is simulated, each learns from its payoff."""
    from plurigrid.games.learning import LEARNERS
    from plurigrid.games.repeated import repeated_play

    if dynamics not in LEARNERS:
        raise UsageError(f"--dynamics: unknown dynamics {dynamics!r}; expected one of {', '.join(LEARNERS)}")
    results = []
    for g in _games(game, mechanism, cache):
        if full_information:
            results.append(_normal_form_dynamics(g, dynamics, rounds, seed, workers, as_json))
            continue
        played = repeated_play(g, dynamics, rounds, seed, workers)
        results.append({"mechanism": g.mechanism, **played.to_json(g)})
        if not as_json:
            state = "converged to an equilibrium" if played.converged else "did not converge to an equilibrium"
            moved = "-" if played.movement is None else f"{played.movement:.3f}"
            out.print(f"{g.spec.game.name} under {g.mechanism}: {dynamics} over {rounds} rounds {state} (policies moved "
                      f"{moved} in the last tenth; {played.simulations} simulations); last profile "
                      f"{', '.join(f'{p}={s}' for p, s in zip(g.player_ids, played.final.labels))}",
                      markup=False, highlight=False, soft_wrap=True)
    if as_json:
        _emit({"game": _name(game), "results": results})


def _normal_form_dynamics(g: MicroworldGame, dynamics: str, rounds: int, seed: int, workers: int, quiet: bool) -> dict:
    """The learning dynamics on the game's simulated normal form (every profile run once): what they converge to."""
    from plurigrid.games.analysis import normal_form
    from plurigrid.games.learning import learn

    params = {"steps": rounds} if dynamics == "replicator" else {"rounds": rounds, "seed": seed}
    d = learn(dynamics, normal_form(g, workers), **params)
    profile = {p: dict(zip(g.plan_labels(i), np.round(d.profile[i], 6).tolist())) for i, p in enumerate(g.player_ids)}
    if not quiet:
        modal = ", ".join(f"{p}={max(mix, key=mix.__getitem__)}" for p, mix in profile.items())
        out.print(f"{g.spec.game.name} under {g.mechanism}: {dynamics} on the normal form over {d.rounds} rounds "
                  f"{'converged' if d.converged else 'did not converge'} (regret {d.regret:.4f} EUR); most played: {modal}",
                  markup=False, highlight=False, soft_wrap=True)
    return {"mechanism": g.mechanism, "dynamics": dynamics, "full_information": True, "rounds": d.rounds,
            "converged": d.converged, "regret_eur": round(d.regret, 6), "profile": profile}


@game_app.command("report")
def report(game: str = GAME_ARG, out_dir: str = typer.Option(..., "--out", help="folder for report.html and report.json"),
           mechanism: str | None = MECHANISM,
           coalitions: bool = typer.Option(True, "--coalitions/--no-coalitions", help="simulate every coalition (2^players runs)"),
           workers: int = WORKERS, cache: str | None = CACHE, as_json: bool = JSON) -> None:
    """Everything about the game under each mechanism, in one HTML page (and JSON): payoffs, equilibria, price of
    anarchy, deviations, counterfactuals, coalitions."""
    from pathlib import Path

    from plurigrid.games.report import analyse, write_report

    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UsageError(f"--out: {out_dir} is a file; expected a folder")
    games = _games(game, mechanism, cache)
    result = analyse(games, _optimum(games[0], cache), workers, coalitions)
    path = write_report(result, Path(out_dir))
    if as_json:
        _emit(result.to_json())
    else:
        out.print(f"{result.name}: {result.simulations} simulations, cache hit rate {result.cache_hit_rate:.1%}; report: {path}",
                  markup=False, highlight=False, soft_wrap=True)


@game_app.command("credit")
def credit(game: str = GAME_ARG, ledger_dir: str = typer.Option(..., "--ledger", help="folder of the new mutual-credit ledger"),
           mechanism: str | None = MECHANISM, profile: list[str] | None = PROFILE,
           limit_kwh: float = typer.Option(50.0, "--limit-kwh", min=0.0, max=1e9, help="the most kWh any member may owe the group"),
           signer_key: str | None = typer.Option(None, "--signer-key", help="key that signs the blocks (default: as plurigrid run)"),
           as_json: bool = JSON) -> None:
    """Books the grand coalition's energy trades as mutual credit in kWh, with credit limits, in a Merkle ledger."""
    from pathlib import Path

    from plurigrid.games.credit import book_coalition_credit

    games = _games(game, mechanism, None)
    if len(games) > 1:
        raise UsageError(f"--mechanism: choose one of {', '.join(g.mechanism for g in games)}")
    g = games[0]
    folder = Path(ledger_dir)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"--ledger: {ledger_dir} is {'not empty' if folder.is_dir() else 'a file'}; give a new folder")
    result = book_coalition_credit(g, g.profile_of(_choice(profile)), Path(ledger_dir), limit_kwh, signer_key)
    if as_json:
        _emit(result.to_json())
        return
    out.print(f"{g.spec.game.name} under {g.mechanism}: {result.booked_intervals} intervals of loans booked "
              f"({result.lent_wh / 1000:,.3f} kWh lent), {result.refused_intervals} refused at the {limit_kwh:g} kWh limit; "
              f"ledger {ledger_dir} at height {result.height}, root {result.state_root}", markup=False, highlight=False, soft_wrap=True)
    table = Table("member", "balance kWh (+ lent, - owed)", box=None)
    for member, wh in result.balances_wh.items():
        table.add_row(member, f"{wh / 1000:,.3f}")
    out.print(table)


@game_app.command("resilience")
def resilience(game: str = GAME_ARG, runs: int | None = typer.Option(None, "--runs", help="seeded runs (default: the game's)"),
               turns: int | None = typer.Option(None, "--turns", help="turns per run (default: the game's)"),
               seed: int | None = typer.Option(None, "--seed", help="seed of the runs (default: the game's)"),
               learner: str | None = typer.Option(None, "--learner", help="how the agents learn (default: the game's)"),
               out_dir: str | None = typer.Option(None, "--out", help="folder for report.html, report.json and the tables as CSV"),
               as_json: bool = JSON) -> None:
    """A resilience game over many seeded runs: unserved energy, price spikes, recovery times, which profiles withstand
    which shocks."""
    from pathlib import Path

    from plurigrid.games.georgia import resilience as play
    from plurigrid.games.georgia import resilience_spec
    from plurigrid.games.loader import load_game
    from plurigrid.games.report import write_resilience_report

    spec, name, _ = load_game(game)
    if spec.resilience is None:
        raise UsageError(f"{name}: not a resilience game (it has no [resilience] table); try `plurigrid game report`")
    given = {"runs": runs, "turns": turns, "seed": seed, "learner": learner}
    data = dict(spec.resilience) | {k: v for k, v in given.items() if v is not None}
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UsageError(f"--out: {out_dir} is a file; expected a folder")
    report = play(resilience_spec(data, name))
    path = write_resilience_report(report, Path(out_dir)) if out_dir else None
    if as_json:
        _emit(report.to_json())
        return
    aggregate = report.aggregate()
    out.print(f"{spec.game.name}: {aggregate['runs']} runs of {aggregate['turns']} turns; unserved energy per run "
              f"{aggregate['unserved_mwh_mean']:,.1f} MWh on average (95th percentile {aggregate['unserved_mwh_p95']:,.1f}); "
              f"{aggregate['spike_hours_mean']:,.1f} price-spike hours per run; shocks withstood {aggregate['withstood_share']:.0%}, "
              f"mean recovery {aggregate['mean_recovery_turns']:.2f} turns" + (f"; report: {path}" if path else ""),
              markup=False, highlight=False, soft_wrap=True)
    shocks = report.tables()["shocks"]
    table = Table(*shocks.columns, box=None)
    for row in shocks.itertuples(index=False):
        table.add_row(*(f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)
