"""Benchmark of the RL environments: environment steps per second on `residential` (12 homes), against the engine.

Usage: .venv/bin/python benchmarks/bench_rl.py [--episodes 20]

Rows: the engine's own step loop over the same world (the baseline: the strategies decide for
everyone, no agent), the Gymnasium environment with one agent (home01) and with an aggregator of
all twelve homes, the PettingZoo environment with twelve agents, and gymnasium's AsyncVectorEnv
running two single-agent environments in two processes. Random actions; each row after one
warm-up episode (numba kernels, power-flow model). The last table is where a single-agent step's
time goes, from the engine's own per-stage timings.
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np

import plurigrid
from plurigrid.engine.step import STAGES, initial_state, step
from plurigrid.rl import MicroworldEnv, MicroworldParallelEnv

TARGET_STEPS_PER_S = 5_000


def engine_rate(world, episodes: int) -> float:
    compiled = world.compiled
    state = initial_state(compiled)
    for k in range(compiled.steps):  # warm-up
        step(compiled, state, k)
    powerflows = state.runtime.powerflows
    t0 = time.perf_counter()
    for _ in range(episodes):
        state = initial_state(compiled)
        state.runtime.powerflows = powerflows
        for k in range(compiled.steps):
            step(compiled, state, k)
    return episodes * compiled.steps / (time.perf_counter() - t0)


def gym_rate(env: gymnasium.Env, episodes: int) -> float:
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    done = False
    while not done:  # warm-up episode
        done = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[2]
    n, t0 = 0, time.perf_counter()
    for _ in range(episodes):
        env.reset()
        done = False
        while not done:
            done = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[2]
            n += 1
    return n / (time.perf_counter() - t0)


def parallel_rate(env: MicroworldParallelEnv, episodes: int) -> float:
    rng = np.random.default_rng(0)
    n, t0 = 0, 0.0
    for e in range(episodes + 1):
        if e == 1:
            n, t0 = 0, time.perf_counter()
        env.reset(seed=0)
        while env.agents:
            env.step({a: rng.uniform(-1, 1, env.action_space(a).shape).astype(np.float32) for a in env.agents})
            n += 1
    return n / (time.perf_counter() - t0)


def vector_rate(episodes: int) -> float:
    envs = gymnasium.vector.AsyncVectorEnv([lambda: MicroworldEnv("residential", agent="home01")] * 2)
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    for _ in range(96):  # warm-up
        envs.step(rng.uniform(-1, 1, envs.action_space.shape).astype(np.float32))
    t0 = time.perf_counter()
    steps = episodes * 96 // 2
    for _ in range(steps):  # the vector env resets each sub-environment as its episode ends
        envs.step(rng.uniform(-1, 1, envs.action_space.shape).astype(np.float32))
    rate = steps * 2 / (time.perf_counter() - t0)
    envs.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    world = plurigrid.load("residential")
    rows = {
        "engine step loop (baseline, no agent)": engine_rate(world, args.episodes),
        "Gymnasium, one agent (home01)": gym_rate(MicroworldEnv(world, agent="home01"), args.episodes),
        "Gymnasium, aggregator of 12 homes": gym_rate(MicroworldEnv(world, agent=None), args.episodes),
        "PettingZoo ParallelEnv, 12 agents": parallel_rate(MicroworldParallelEnv(world), args.episodes),
        "AsyncVectorEnv, 2 × one agent, 2 processes": vector_rate(args.episodes),
    }
    base = rows["engine step loop (baseline, no agent)"]
    print(f"## residential (12 homes), {world.steps} steps per episode, {args.episodes} episodes per row\n")
    print("| environment | steps/s | µs per step | vs engine loop |")
    print("|---|---:|---:|---:|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:,.0f} | {rate / base:.2f}× |")
    single = rows["Gymnasium, one agent (home01)"]
    print(f"\ntarget ≥ {TARGET_STEPS_PER_S:,} steps/s for one agent: {'met' if single >= TARGET_STEPS_PER_S else 'MISSED'} "
          f"({single:,.0f}, {single / TARGET_STEPS_PER_S:.0%} of it)")
    env = MicroworldEnv(world, agent="home01")
    gym_rate(env, 5)
    timings = env.driver.state.timings_s
    print("\n| stage of one single-agent step | µs |\n|---|---:|")
    for stage in STAGES:
        print(f"| {stage} | {timings[stage] / world.steps * 1e6:,.0f} |")


if __name__ == "__main__":
    main()
