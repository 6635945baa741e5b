"""A 6-player x 4-strategy microworld game (4,096 profiles) end to end, as a user runs it.

    .venv/bin/python benchmarks/bench_games.py              # the whole benchmark (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_games.py --workers 1

Ours: `plurigrid game equilibria benchmarks/worlds/six-players.toml --json` in a fresh process (all pure
equilibria by enumeration, every deviation of every profile checked), with the number of simulations it
needed and the cache hit rate, then the same command again on its on-disk cache (`--cache`).
Baseline, measured in the same run: the naive way, one `plurigrid.load(world).run()` of the public
API per payoff the equilibrium check reads (each profile's own run and each of its 6 x 3 unilateral
deviations: 4,096 x 19 runs), timed on a sample of profiles and extrapolated (the whole would take
hours). Both sides compute the same payoffs: the sample's bills are checked against ours.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GAME = Path(__file__).resolve().parent / "worlds" / "six-players.toml"
SAMPLE = 40


def ours(workers: int, cache: Path) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "plurigrid.cli.main", "game", "equilibria", str(GAME), "--workers", str(workers), "--json",
           "--cache", str(cache)]
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, json.loads(out)


def naive_per_run(sample: int) -> tuple[float, float]:
    """Seconds per payoff lookup by one public-API run each, on `sample` random profiles; the largest bill
    difference (EUR) against the game's own runs of the same profiles."""
    import plurigrid
    from plurigrid.games.loader import load_game
    from plurigrid.games.microgame import MicroworldGame

    spec, name, base = load_game(str(GAME))
    game = MicroworldGame(spec, name, base, "pay-as-clear")
    world = plurigrid.load("village-suppliers", mechanism="pay-as-clear")
    data = world.compiled.spec.model_dump(mode="json", exclude_unset=True)
    rng = np.random.default_rng(0)
    worst, spent = 0.0, 0.0
    for _ in range(sample):
        profile = tuple(int(x) for x in rng.integers(0, 4, size=6))
        spec_data = json.loads(json.dumps(data))
        for i, a in enumerate(profile):
            entry = game.players[i].menu[a]
            for p in spec_data["participant"]:
                if p["id"] == game.players[i].id:
                    p["markup_eur_per_kwh"] = entry.markup_eur_per_kwh
        t = time.perf_counter()
        run = plurigrid.load(spec_data, mechanism="pay-as-clear").run(ledger=False, record=[])
        bills = run.settlements["bill_micro"].to_numpy() / 1e6
        spent += time.perf_counter() - t
        (play, _), = game.plays(profile)
        worst = max(worst, float(np.abs(bills - game.costs(play).bill_eur).max()))
    return spent / sample, worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold_s, result = ours(args.workers, Path(tmp))
        warm_s, again = ours(args.workers, Path(tmp))
    r = result["results"][0]
    profiles, sims = r["profiles"], r["simulations"]
    lookups = profiles * (1 + 6 * 3)
    per_run_s, worst = naive_per_run(SAMPLE)
    naive_s = per_run_s * lookups
    print(f"game: {GAME.name}, 6 players x 4 strategies = {profiles:,} profiles, pay-as-clear, {args.workers} workers\n")
    print("| how | simulations | payoff lookups | cache hit rate | wall s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| ours, fresh process, empty cache | {sims:,} | {lookups:,} | {1 - sims / lookups:.1%} | {cold_s:.1f} |")
    print(f"| ours, fresh process, cache on disk | {again['results'][0]['simulations']:,} | {lookups:,} | 100.0% | {warm_s:.1f} |")
    print(f"| naive: one plurigrid.load().run() per lookup (extrapolated from {SAMPLE}) | {lookups:,} | {lookups:,} | 0% | "
          f"{naive_s:,.0f} |")
    print(f"\nspeed-up, empty cache: {naive_s / cold_s:,.0f}x; per simulation: ours {cold_s / sims * 1e3:.1f} ms "
          f"(with {args.workers} workers), naive {per_run_s * 1e3:.1f} ms")
    print(f"equilibria: {len(r['equilibria'])}; price of anarchy {r['price_of_anarchy']}, price of stability {r['price_of_stability']}")
    print(f"largest bill difference between the naive runs and ours: {worst:.2e} EUR")


if __name__ == "__main__":
    main()
