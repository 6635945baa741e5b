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


def kept_kwh(world, soc_kwh: np.ndarray, home: str) -> float:
    """The energy the home's battery holds at the end beyond what it started with."""
    i = world.ids.index(home)
    return float(soc_kwh[i] - world.batteries.initial_kwh[i])


def baseline(world: str, home: str, strategy: str | None) -> tuple[float, float, str]:
    """(bill EUR, kWh kept, strategy) of the home over the world's horizon with `strategy` (None: the spec's own),
    everyone else unchanged."""
    name, text, base = resolve(world)
    data = copy.deepcopy(parse_text(name, text))
    entry = next(p for p in data["participant"] if p["id"] == home)
    if strategy is not None:
        entry["strategy"] = strategy
    loaded = plurigrid.load(data, base=base)
    run = loaded.run(ledger=False, record=("participants",))
    soc = run.participants["soc_kwh"]
    return float(run.settlements.loc[home, "bill"]), kept_kwh(loaded.compiled, soc.iloc[-1].to_numpy(), home), entry["strategy"]


def episode(model: PPO, env: MicroworldEnv) -> tuple[float, float]:
    """(bill EUR, kWh kept) of one deterministic day under the policy."""
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, done, _, info = env.step(action)
        total += info["bill_eur"]
    return total, kept_kwh(env.driver.world, env.driver.state.soc_kwh, env.driver.controls.names[0])


class Curve(BaseCallback):
    """Evaluates the policy for one deterministic day every `every` steps."""

    def __init__(self, env: MicroworldEnv, every: int) -> None:
        super().__init__()
        self.env, self.every, self.points = env, every, []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            bill, kept = episode(self.model, self.env)
            self.points.append((self.num_timesteps, bill, kept))
            print(f"  {self.num_timesteps:>7,} steps: bill {bill:.3f} EUR, battery {kept:+.2f} kWh", flush=True)
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

    env = MicroworldEnv(args.world, agent=args.home)
    value = env.driver.store_eur_per_kwh
    rows = {"passive": baseline(args.world, args.home, "passive")}
    own = baseline(args.world, args.home, None)
    rows[f"{own[2]} (its strategy)"] = own
    net = {name: bill - kept * value for name, (bill, kept, _) in rows.items()}
    print(f"{args.world}, {args.home}: actions {', '.join(env.action_labels)}; stored energy valued at {value} EUR/kWh; "
          + "; ".join(f"{name} {v:.3f} EUR" for name, v in net.items()))
    model = PPO("MlpPolicy", env, n_steps=1024, batch_size=256, learning_rate=3e-4, gamma=0.995, seed=args.seed, verbose=0,
                device="cpu")
    curve = Curve(MicroworldEnv(args.world, agent=args.home), args.eval_every)
    model.learn(total_timesteps=args.timesteps, callback=curve)
    bill, kept = episode(model, env)
    rows[f"PPO after {args.timesteps:,} steps"] = (bill, kept, "ppo")
    net[f"PPO after {args.timesteps:,} steps"] = bill - kept * value
    model.save(out / "policy")

    passive_net = net["passive"]
    with open(out / "learning_curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timesteps", "bill_eur", "battery_kept_kwh", "net_eur", *(f"{n}_net_eur" for n in list(net)[:2])])
        writer.writerows([t, round(b, 6), round(k, 6), round(b - k * value, 6), *(round(v, 6) for v in list(net.values())[:2])]
                         for t, b, k in curve.points)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps, bills, kepts = np.array(curve.points).T
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(steps, bills - kepts * value, marker="o", label="PPO policy (deterministic day)")
        for (name, v), style in zip(list(net.items())[:2], (("red", "--"), ("grey", ":"))):
            ax.axhline(v, color=style[0], linestyle=style[1], label=name)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"{args.home}: bill less energy kept (EUR)")
        ax.set_title(f"PPO on {args.world}, {args.home}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png", dpi=110)
    except ImportError:
        pass

    print(f"\n| {args.home} for the day | bill EUR | battery kept kWh | bill less energy kept at {value} EUR/kWh |")
    print("|---|---:|---:|---:|")
    for name, (b, k, _) in rows.items():
        print(f"| {name} | {b:.3f} | {k:+.2f} | {net[name]:.3f} |")
    trained = net[f"PPO after {args.timesteps:,} steps"]
    print(f"\nPPO {'beats' if trained < passive_net else 'does not beat'} passive by {passive_net - trained:.3f} EUR; "
          f"curve in {out}")


if __name__ == "__main__":
    main()
