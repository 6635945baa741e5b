"""Trains a PPO policy (stable-baselines3, CPU torch) for one home of `residential` and compares its bill with `passive`.

Usage (the rl-train extra):
    .venv/bin/pip install -e '.[rl-train]'
    .venv/bin/python examples/train_ppo.py [--home home01] [--timesteps 40000] [--out runs/ppo-home01]

The agent sets the home's limit price and its battery (and EV charging, where it has one) every
quarter hour of the day; everyone else keeps their strategy. Every `--eval-every` steps the policy
is evaluated for one deterministic day, which gives the learning curve (`learning_curve.csv`, and
`learning_curve.png` when matplotlib is installed). The baselines are the same world run by the
engine with the home `passive` (no control, no trading) and with its own strategy from the spec.
"""

from __future__ import annotations

import argparse
import copy
import csv
from pathlib import Path

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

import plurigrid
from plurigrid.microworld.loader import parse_text, resolve
from plurigrid.rl import MicroworldEnv


def baseline_bill_eur(world: str, home: str, strategy: str | None) -> tuple[float, str]:
    """The home's bill over the world's horizon with `strategy` (None: the spec's own), everyone else unchanged."""
    name, text, base = resolve(world)
    data = copy.deepcopy(parse_text(name, text))
    entry = next(p for p in data["participant"] if p["id"] == home)
    if strategy is not None:
        entry["strategy"] = strategy
    run = plurigrid.load(data, base=base).run(ledger=False, record=())
    return float(run.settlements.loc[home, "bill"]), entry["strategy"]


def episode_bill_eur(model: PPO, env: MicroworldEnv) -> float:
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, done, _, info = env.step(action)
        total += info["bill_eur"]
    return total


class Curve(BaseCallback):
    """Evaluates the policy for one deterministic day every `every` steps."""

    def __init__(self, env: MicroworldEnv, every: int) -> None:
        super().__init__()
        self.env, self.every, self.points = env, every, []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.points.append((self.num_timesteps, episode_bill_eur(self.model, self.env)))
            print(f"  {self.num_timesteps:>7,} steps: bill {self.points[-1][1]:.3f} EUR", flush=True)
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", default="residential")
    parser.add_argument("--home", default="home01")
    parser.add_argument("--timesteps", type=int, default=40_000)
    parser.add_argument("--eval-every", type=int, default=2_048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path("runs") / f"ppo-{args.home}"
    out.mkdir(parents=True, exist_ok=True)

    passive, _ = baseline_bill_eur(args.world, args.home, "passive")
    own, own_name = baseline_bill_eur(args.world, args.home, None)
    env = MicroworldEnv(args.world, agent=args.home)
    print(f"{args.world}, {args.home}: actions {', '.join(env.action_labels)}; bill passive {passive:.3f} EUR, "
          f"{own_name} {own:.3f} EUR")
    model = PPO("MlpPolicy", env, n_steps=1024, batch_size=256, learning_rate=3e-4, gamma=0.995, seed=args.seed, verbose=0,
                device="cpu")
    curve = Curve(MicroworldEnv(args.world, agent=args.home), args.eval_every)
    model.learn(total_timesteps=args.timesteps, callback=curve)
    trained = episode_bill_eur(model, env)
    model.save(out / "policy")

    with open(out / "learning_curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timesteps", "bill_eur", "passive_bill_eur", f"{own_name}_bill_eur"])
        writer.writerows([t, round(b, 6), round(passive, 6), round(own, 6)] for t, b in curve.points)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps, bills = np.array(curve.points).T
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(steps, bills, marker="o", label="PPO policy (deterministic day)")
        ax.axhline(passive, color="red", linestyle="--", label="passive")
        ax.axhline(own, color="grey", linestyle=":", label=own_name)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"{args.home}'s bill for the day (EUR)")
        ax.set_title(f"PPO on {args.world}, {args.home}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png", dpi=110)
    except ImportError:
        pass

    print(f"\n| {args.home}'s bill for the day | EUR |\n|---|---|\n| passive | {passive:.3f} |\n| {own_name} (its strategy) | "
          f"{own:.3f} |\n| PPO after {args.timesteps:,} steps | {trained:.3f} |")
    print(f"\nPPO {'beats' if trained < passive else 'does not beat'} passive by {passive - trained:.3f} EUR "
          f"({(passive - trained) / abs(passive):.1%}); curve in {out}")


if __name__ == "__main__":
    main()
