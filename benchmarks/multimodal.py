"""Demonstrations with two ways to succeed: does a cloned Gaussian average them, and does EXPO's diffusion base not?

    python benchmarks/multimodal.py                 # 5 seeds, offline (pretraining only); about 5 minutes on 2 cores
    python benchmarks/multimodal.py --seeds 3 --pretrain-steps 5000

TwoRoutes-v0 (sb3_expo/datasets/two_routes.py): the scripted expert goes round a central obstacle on the left or the
right, by a coin flip per episode that the observation does not show. Both policy classes are trained on the same
20 demonstrations (both routes) for the same number of imitation steps, at the CPU sizes of the evidence suite:
- EXPO's DDPM base: `EXPO.pretrain()` (imitation loss only), then acting the EXPO way (best of N + K by the critics,
  untrained here, so in effect a base sample) and with the base alone (N = 1, K = 0);
- a tanh-Gaussian: RLPD's actor cloned by maximum likelihood (`RLPD.pretrain()`), acting with its mean and sampled.
Success over 20 evaluation episodes (seeds 10,000+) per training seed; mean over seeds with a 95% bootstrap CI.
The figure shows the demonstrations, each policy's rollouts, and the sideways action each samples at the start and
three steps into the left route (400 samples per seed and state).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "multimodal"
SOURCE = "scripted:TwoRoutes-v0?episodes=20"
EXPO_CPU = dict(
    learning_starts=0,
    batch_size=64,
    n_base_samples=4,
    n_edit_samples=4,
    policy_kwargs=dict(net_arch=[64, 64], n_critics=4, denoiser_width=64, denoiser_blocks=2),
)
RLPD_CPU = dict(learning_starts=0, batch_size=64, policy_kwargs=dict(net_arch=[64, 64], n_critics=4))


def rollouts(model, deterministic: bool, episodes: int = 20) -> tuple[float, list[np.ndarray]]:
    env = gym.make("TwoRoutes-v0")
    successes, paths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        path, done, info = [obs], False, {}
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, _, terminated, truncated, info = env.step(action)
            path.append(obs)
            done = terminated or truncated
        successes.append(info.get("is_success", False))
        paths.append(np.array(path))
    return float(np.mean(successes)), paths


STATES = {"start": (0.0, -1.0), "3 steps left": (-0.3, -0.8)}


def sampled_actions(model, state: tuple[float, float], n: int = 400) -> np.ndarray:
    return model.predict(np.tile(np.array(state, np.float32), (n, 1)), deterministic=False)[0]


def pretrained(model, steps: int) -> tuple[object, float]:
    start = time.perf_counter()
    model.pretrain(steps)
    return model, time.perf_counter() - start


def run(seed: int, steps: int) -> dict:
    from sb3_expo import EXPO, RLPD

    env = gym.make("TwoRoutes-v0")
    expo, expo_s = pretrained(EXPO("MlpPolicy", env, demonstrations=SOURCE, seed=seed, **EXPO_CPU), steps)
    rlpd, rlpd_s = pretrained(RLPD("MlpPolicy", env, demonstrations=SOURCE, seed=seed, **RLPD_CPU), steps)
    results: dict = {"seed": seed, "expo_pretrain_s": expo_s, "rlpd_pretrain_s": rlpd_s}
    results["EXPO (sampled)"], expo_paths = rollouts(expo, deterministic=False)
    results["EXPO (deterministic)"], _ = rollouts(expo, deterministic=True)
    results["Gaussian BC (mean action)"], gauss_paths = rollouts(rlpd, deterministic=True)
    results["Gaussian BC (sampled)"], _ = rollouts(rlpd, deterministic=False)
    expo.n_base_samples = expo.policy.n_base_samples = 1  # the diffusion base alone: one sample, no edit
    expo.n_edit_samples = expo.policy.n_edit_samples = 0
    results["DDPM base alone"], _ = rollouts(expo, deterministic=False)
    results["paths"] = {"expo": [p.tolist() for p in expo_paths], "gaussian": [p.tolist() for p in gauss_paths]}
    results["actions"] = {
        where: {"base": sampled_actions(expo, state).tolist(), "gaussian": sampled_actions(rlpd, state).tolist()}
        for where, state in STATES.items()
    }
    return results


METRICS = ["EXPO (sampled)", "EXPO (deterministic)", "DDPM base alone", "Gaussian BC (mean action)", "Gaussian BC (sampled)"]


def bootstrap(values: np.ndarray, reps: int = 2000) -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, len(values), (reps, len(values)))].mean(1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from sb3_expo.datasets import load_demonstrations
    from sb3_expo.datasets.two_routes import GOAL, GOAL_RADIUS, HALF_WIDTH

    demos = load_demonstrations(SOURCE, gym.make("TwoRoutes-v0"))
    fig, axes = plt.subplots(1, 5, figsize=(20, 4))
    first = records[0]
    ends = np.flatnonzero(demos.terminations | demos.truncations)
    episodes = [demos.observations[a : b + 1] for a, b in zip(np.r_[0, ends[:-1] + 1], ends)]
    panels = [
        ("20 demonstrations (both routes)", episodes, "tab:grey"),
        ("EXPO after pretraining (sampled)", [np.array(p) for p in first["paths"]["expo"]], "tab:blue"),
        ("Gaussian BC (mean action)", [np.array(p) for p in first["paths"]["gaussian"]], "tab:red"),
    ]
    for ax, (title, paths, color) in zip(axes[:3], panels):
        ax.add_patch(Rectangle((-HALF_WIDTH, -HALF_WIDTH), 2 * HALF_WIDTH, 2 * HALF_WIDTH, color="black", alpha=0.6))
        ax.add_patch(plt.Circle(GOAL, GOAL_RADIUS, color="tab:green", alpha=0.4))
        for p in paths:
            ax.plot(p[:, 0], p[:, 1], ".-" if title.startswith("20") else "-", color=color, alpha=0.4, ms=2)
        ax.set(title=title, xlim=(-1.2, 1.2), ylim=(-1.2, 1.2), aspect="equal")
    for ax, where in zip(axes[3:], STATES):
        for name, color, label in (("base", "tab:blue", "DDPM base (one sample)"), ("gaussian", "tab:red", "Gaussian BC")):
            x = np.concatenate([np.array(r["actions"][where][name])[:, 0] for r in records])
            ax.hist(x, bins=np.linspace(-1, 1, 21), alpha=0.5, color=color, label=label, density=True)
        ax.set(title=f"sampled x velocity, {where} {STATES[where]}", xlabel="left -1 ... right +1")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pretrain-steps", type=int, default=10_000)
    parser.add_argument("--report-only", action="store_true", help="table and figure from the runs on disk")
    args = parser.parse_args()
    th.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        saved = json.loads((OUT / "offline.json").read_text())
    else:
        start = time.perf_counter()
        records = []
        for seed in range(args.seeds):
            records.append(run(seed, args.pretrain_steps))
            print(f"seed {seed}: " + ", ".join(f"{m} {records[-1][m]:.0%}" for m in METRICS), flush=True)
        saved = {"records": records, "minutes": (time.perf_counter() - start) / 60, "pretrain_steps": args.pretrain_steps}
        (OUT / "offline.json").write_text(json.dumps(saved))
    records, steps = saved["records"], saved["pretrain_steps"]
    took = f" ({saved['minutes']:.0f} min, 2-core CPU, one thread)" if saved["minutes"] else " (2-core CPU, one thread)"
    lines = [
        "# Two ways to succeed (TwoRoutes-v0): after imitation pretraining only",
        "",
        f"Command: `python benchmarks/multimodal.py --seeds {len(records)} --pretrain-steps {steps}`{took}. "
        f"Demonstrations: `{SOURCE}` (both routes). Both classes: {steps} imitation steps of batch 64, width-64 "
        "networks. Success over 20 evaluation episodes per seed; mean over seeds with a 95% bootstrap CI.",
        "",
        "| policy | success, mean [95% CI] | per seed |",
        "|---|---|---|",
    ]
    for metric in METRICS:
        values = np.array([r[metric] for r in records])
        mean, low, high = bootstrap(values)
        lines.append(f"| {metric} | {mean:.0%} [{low:.0%}, {high:.0%}] | {', '.join(f'{v:.0%}' for v in values)} |")
    plot(records, OUT / "two_routes.png")
    lines += ["", "![two routes](two_routes.png)", ""]
    (OUT / "offline.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
