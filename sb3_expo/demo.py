"""`make demo`: EXPO and RLPD with the same 5 scripted demonstrations, and SAC without, on MountainCarContinuous-v0.

Prints the success rate at each evaluation and a table of what each method got, and saves a learning-curve PNG. The
networks are shrunk so that this runs in minutes on 2 CPU cores (the same sizes and update count for every method);
the algorithms are the papers' (EXPO with N = K = 4 here instead of 8).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC

from sb3_expo import EXPO, RLPD
from sb3_expo.datasets import collect_demonstrations, mountain_car_expert

ENV_ID = "MountainCarContinuous-v0"
N_DEMOS = 5
# CPU-sized EXPO; the learning test (tests/test_learning.py) checks exactly this configuration.
CPU_CONFIG = dict(
    learning_starts=200,
    batch_size=64,
    gradient_steps=2,
    n_base_samples=4,
    n_edit_samples=4,
    policy_kwargs=dict(net_arch=[64, 64], n_critics=4, denoiser_width=64, denoiser_blocks=2),
)
# RLPD (EXPO's Gaussian baseline with demonstrations) and SAC at the same sizes and update count
RLPD_CONFIG = dict(learning_starts=200, batch_size=64, gradient_steps=2, policy_kwargs=dict(net_arch=[64, 64], n_critics=4))
SAC_CONFIG = dict(learning_starts=200, batch_size=64, gradient_steps=2, policy_kwargs=dict(net_arch=[64, 64]))


def success_rate(model, n_episodes: int = 10, seed: int = 10_000, deterministic: bool = False) -> float:
    """Fraction of episodes that reach the flag (termination), on held-out reset seeds."""
    env = gym.make(ENV_ID)
    successes = 0
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        done = terminated = False
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        successes += int(terminated)
    return successes / n_episodes


def demonstrations(n_episodes: int = N_DEMOS):
    return collect_demonstrations(gym.make(ENV_ID), mountain_car_expert, n_episodes, seed=1000)


def train_and_track(model, total: int, every: int, n_eval: int) -> list[tuple[int, float]]:
    curve = [(0, success_rate(model, n_eval))] if model.num_timesteps == 0 else []
    while model.num_timesteps < total:
        model.learn(every, reset_num_timesteps=False)
        curve.append((model.num_timesteps, success_rate(model, n_eval)))
        print(f"  {type(model).__name__:5s} step {model.num_timesteps:5d}  success {curve[-1][1]:.0%}", flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    args = parser.parse_args()
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    demos = demonstrations()
    print(f"{N_DEMOS} scripted demonstrations on {ENV_ID}: {len(demos)} transitions, expert success {demos.success_rate:.0%}")
    curves, times, models = {}, {}, {}
    for name, make in [
        ("EXPO + demos", lambda: EXPO("MlpPolicy", ENV_ID, demonstrations=demos, seed=args.seed, **CPU_CONFIG)),
        ("RLPD + demos", lambda: RLPD("MlpPolicy", ENV_ID, demonstrations=demos, seed=args.seed, **RLPD_CONFIG)),
        ("SAC, no demos", lambda: SAC("MlpPolicy", ENV_ID, seed=args.seed, **SAC_CONFIG)),
    ]:
        print(name)
        start = time.perf_counter()
        models[name] = make()
        curves[name] = train_and_track(models[name], args.steps, args.eval_every, args.eval_episodes)
        times[name] = time.perf_counter() - start

    print(f"\n| method | first evaluation >= 80% | success at {args.steps} steps | wall time (train + eval) |")
    print("|---|---|---|---|")
    for name, curve in curves.items():
        reached = next((f"{step} steps" for step, success in curve if success >= 0.8), "never")
        print(f"| {name} | {reached} | {curve[-1][1]:.0%} | {times[name]:.0f} s |")
    plot(curves, args.out / "expo_mountaincar.png")
    models["EXPO + demos"].save(args.out / "expo_mountaincar")
    print(f"\nlearning curve: {args.out / 'expo_mountaincar.png'}; model: {args.out / 'expo_mountaincar.zip'}")


def plot(curves: dict[str, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, curve in curves.items():
        steps, success = np.array(curve).T
        ax.plot(steps, success, marker="o", label=name)
    ax.set(xlabel="environment steps", ylabel="success rate", title=ENV_ID, ylim=(-0.05, 1.05))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
