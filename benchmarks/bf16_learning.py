"""Does the bf16 sampler change learning? EXPO with fp32 vs bf16 candidate sampling, same seeds, same demos.

    python benchmarks/bf16_learning.py [--seeds 0 1 2] [--steps 3000]   # about 15 minutes on 2 CPU cores

MountainCarContinuous-v0 with 5 scripted demonstrations and the CPU configuration of `make demo`; success rate
over 10 stochastic evaluation episodes every 500 environment steps. Writes a Markdown table and a plot.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch as th

from sb3_expo import EXPO
from sb3_expo.demo import CPU_CONFIG, ENV_ID, demonstrations, success_rate


def run(seed: int, bf16: bool, steps: int, every: int, demos) -> tuple[list[float], float]:
    config = {**CPU_CONFIG, "precision": "bf16" if bf16 else "fp32"}
    model = EXPO("MlpPolicy", ENV_ID, demonstrations=demos, seed=seed, **config)
    curve, train_time = [], 0.0
    while model.num_timesteps < steps:
        start = time.perf_counter()
        model.learn(every, reset_num_timesteps=False)
        train_time += time.perf_counter() - start
        curve.append(success_rate(model, 10))
    return curve, train_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    demos = demonstrations()
    results: dict[str, dict] = {}
    for bf16 in (False, True):
        name = "bf16" if bf16 else "fp32"
        curves, times = [], []
        for seed in args.seeds:
            curve, seconds = run(seed, bf16, args.steps, args.every, demos)
            curves.append(curve)
            times.append(seconds)
            print(f"{name} seed {seed}: {' '.join(f'{s:.0%}' for s in curve)} ({seconds:.0f} s training)", flush=True)
        results[name] = {"curves": curves, "train_seconds": times}

    steps = list(range(args.every, args.steps + 1, args.every))
    lines = [
        f"| sampler | success at {', '.join(map(str, steps))} steps (mean over seeds {args.seeds}) | training s |",
        "|---|---|---|",
    ]
    for name, r in results.items():
        mean = np.mean(r["curves"], axis=0)
        lines.append(f"| {name} | {' / '.join(f'{m:.0%}' for m in mean)} | {np.mean(r['train_seconds']):.0f} |")
    table = "\n".join(lines)
    print("\n" + table)
    (args.out / "bf16_learning.md").write_text(table + "\n")
    (args.out / "bf16_learning.json").write_text(json.dumps({"steps": steps, **results}, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, r in results.items():
        curves = np.array(r["curves"])
        ax.plot(steps, curves.mean(0), marker="o", label=f"{name} sampler")
        ax.fill_between(steps, curves.min(0), curves.max(0), alpha=0.2)
    ax.set(xlabel="environment steps", ylabel="success rate", title=f"{ENV_ID}: fp32 vs bf16 sampler (min-max band)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "bf16_learning.png", dpi=110)


if __name__ == "__main__":
    th.set_num_threads(1)
    main()
