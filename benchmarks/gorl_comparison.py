"""GoRL at CPU scale: flow and DDIM decoders against GoRL's own stage 0 alone and against SB3's PPO.

    python benchmarks/gorl_comparison.py                     # every task x method x seed not yet on disk, then the report
    python benchmarks/gorl_comparison.py --tasks InvertedPendulum-v5 --seeds 5 --workers 2
    python benchmarks/gorl_comparison.py --report-only       # re-aggregate the runs on disk

Methods, run the same way (same budget, evaluation points, evaluation episodes and seeds):
- GoRL (flow), GoRL (DDIM): the stage schedule as shipped (four stages, 1/3 1/3 1/6 1/6, decoder refits counted in the
  step budget) with the task's hyperparams/gorl.yml entry;
- GoRL stage 0 only: the same latent policy and PPO settings with one stage (identity decoder, never refitted): the
  Gaussian PPO inside GoRL, tuned as GoRL tunes it. The reference's own confound: the paper compares with a Gaussian
  PPO tuned differently from GoRL's stage 0, so a gain may come from the tuning rather than from the decoder;
- PPO (SB3): stable-baselines3's PPO with its defaults, as a user gets it.

Evaluation: every `every` env steps (GoRL's counted decoder-data steps included), `episodes` episodes with the mean
action (deterministic=True) on evaluation seeds 10_000 + i, never used for training or for choosing settings.
Reported: IQM over seeds of the evaluation return with 95% stratified-bootstrap CIs (rliable), final and mean over
the run, a learning-curve PNG per task, and each method's acting cost per env step (decoder included).
Runs are JSON files under benchmarks/results/gorl/runs/; a finished run is not repeated (each records GoRL's reward
scale and Adam eps: runs made before reward_scale='auto' and eps 1e-8 became the defaults used x10 and eps 1e-5;
delete them to measure the current defaults). The reward scale itself: benchmarks/gorl_reward_scale.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from evidence import interval_estimates  # the evidence suite's IQM + stratified bootstrap (same folder)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gorl"
PAPER_STEPS = 180_000_000  # the paper's budget per DMC task (docs/gorl-reference.md)

# task -> budget, evaluation interval, evaluation episodes
TASKS: dict[str, dict[str, int]] = {
    "InvertedPendulum-v5": {"steps": 30_000, "every": 3_000, "episodes": 5},
    "Hopper-v5": {"steps": 200_000, "every": 20_000, "episodes": 5},
}
METHODS: dict[str, dict[str, Any]] = {
    "GoRL (flow)": {"algo": "gorl", "decoder": "flow"},
    "GoRL (DDIM)": {"algo": "gorl", "decoder": "ddim"},
    "GoRL stage 0 only": {"algo": "gorl", "stage_fractions": (1.0,)},
    "PPO (SB3)": {"algo": "ppo"},
}


def gorl_entry(task: str) -> dict[str, Any]:
    entries = yaml.safe_load((ROOT / "hyperparams" / "gorl.yml").read_text())
    entry = dict(entries.get(task, entries["default"]))
    entry.pop("n_timesteps", None)
    entry.pop("policy", None)
    return entry


def run_path(task: str, method: str, seed: int) -> Path:
    slug = method.lower().replace(" ", "_").replace("(", "").replace(")", "")
    return RESULTS / "runs" / task / f"{slug}__seed{seed}.json"


def evaluate(model, task: str, episodes: int) -> float:
    env = gym.make(task)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def build(task: str, method: str, seed: int):
    from stable_baselines3 import PPO

    from sb3_expo import GoRL

    spec = dict(METHODS[method])
    if spec.pop("algo") == "ppo":
        return PPO("MlpPolicy", task, seed=seed)
    return GoRL("MlpPolicy", task, seed=seed, **{**gorl_entry(task), **spec})


def learn_with_evaluations(model: Any, task: str, steps_budget: int, every: int, episodes: int) -> tuple[list, list]:
    """Trains for the budget, evaluating at step 0 and at each multiple of `every` that num_timesteps has crossed
    (GoRL's refits jump it), the last ones after training; returns the evaluation steps and returns."""
    from stable_baselines3.common.callbacks import BaseCallback

    steps, returns = [0], [evaluate(model, task, episodes)]

    def catch_up(current: Any, upto: int) -> None:
        while upto >= steps[-1] + every and steps[-1] + every <= steps_budget:
            steps.append(steps[-1] + every)
            returns.append(evaluate(current, task, episodes))

    class Evaluations(BaseCallback):
        def _on_step(self) -> bool:
            catch_up(self.model, self.num_timesteps)
            return True

    model.learn(steps_budget, callback=Evaluations())
    catch_up(model, steps_budget)  # an evaluation point reached by the last rollout or refit
    return steps, returns


def execute(task: str, method: str, seed: int) -> dict:
    import torch as th

    th.set_num_threads(1)
    cfg = TASKS[task]
    model = build(task, method, seed)
    start = time.perf_counter()
    steps, returns = learn_with_evaluations(model, task, cfg["steps"], cfg["every"], cfg["episodes"])
    record = dict(
        task=task,
        method=method,
        seed=seed,
        steps=steps,
        returns=returns,
        num_timesteps=int(model.num_timesteps),
        stage_history=getattr(model, "stage_history", []),
        reward_scale=getattr(model, "reward_scale", None),
        adam_eps=model.policy.optimizer.defaults.get("eps"),
        wall_seconds=time.perf_counter() - start,
    )
    path = run_path(task, method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


# ---------------------------------------------------------------- acting cost


def acting_cost(task: str, calls: int = 300) -> dict[str, float]:
    """Median ms per predict() on one observation (the decoder's sampler included), each method, one process."""
    import torch as th

    th.set_num_threads(1)
    obs = gym.make(task).reset(seed=0)[0]
    costs = {}
    for method in METHODS:
        model = build(task, method, 0)
        if hasattr(model, "policy") and hasattr(model.policy, "decoder"):
            model.policy.decoder.fitted.fill_(True)  # time the decoder as in stages 1-3 (stage 0 is the identity)
        if method == "GoRL stage 0 only":
            model.policy.decoder.fitted.fill_(False)
        for _ in range(30):
            model.predict(obs, deterministic=False)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            model.predict(obs, deterministic=False)
            times.append(time.perf_counter() - t0)
        costs[method] = 1000 * float(np.median(times))
    return costs


# ---------------------------------------------------------------- report


def plot(task: str, rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.4, 3.8))
    for row in rows:
        iqm, low, high = row["curve"]
        line = ax.plot(row["steps"], iqm, marker="o", ms=3, label=f"{row['method']} (n={row['seeds']})")[0]
        ax.fill_between(row["steps"], low, high, color=line.get_color(), alpha=0.15)
    for end in rows[0].get("stage_ends", []):
        ax.axvline(end, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="environment steps (GoRL's decoder data included)", ylabel="return (IQM, 95% CI)", title=task)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(tasks: list[str], seeds: list[int], acting: dict[str, dict[str, float]], elapsed: float | None) -> str:
    lines = [
        "# GoRL at CPU scale: flow and DDIM decoders, GoRL's stage 0 alone, SB3's PPO",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores ({platform.platform()}); one thread per run.",
        "Command: `python benchmarks/gorl_comparison.py`" + (f" ({elapsed / 60:.0f} min)" if elapsed else ""),
        "",
        "Return: IQM over seeds of the mean evaluation return (deterministic actions, evaluation seeds 10,000+), "
        "95% stratified-bootstrap CI (rliable). GoRL's settings are hyperparams/gorl.yml's for the task; "
        "PPO is SB3's default PPO.",
        "",
    ]
    for task in tasks:
        cfg = TASKS[task]
        group: dict[str, list[dict]] = {}
        for method in METHODS:
            records = [json.loads(p.read_text()) for s in seeds if (p := run_path(task, method, s)).exists()]
            if records:
                group[method] = records
        if not group:
            continue
        curves = {m: np.array([r["returns"] for r in rs]) for m, rs in group.items()}
        estimates = interval_estimates(curves)
        areas = interval_estimates({m: c.mean(axis=1, keepdims=True) for m, c in curves.items()})
        rows = []
        for method, records in group.items():
            iqm, low, high = estimates[method]
            ends = [h["ended_at"] for h in records[0]["stage_history"]]
            rows.append(
                dict(
                    method=method,
                    seeds=len(records),
                    steps=records[0]["steps"],
                    curve=estimates[method],
                    final=(iqm[-1], low[-1], high[-1]),
                    area=tuple(float(v[0]) for v in areas[method]),
                    wall=float(np.mean([r["wall_seconds"] for r in records])),
                    stage_ends=ends,
                    finals=[r["returns"][-1] for r in records],
                )
            )
        fraction = cfg["steps"] / PAPER_STEPS
        lines += [
            f"## {task}",
            "",
            f"Budget {cfg['steps']:,} env steps per run ({fraction:.4%} of the paper's 180M per task), evaluation every "
            f"{cfg['every']:,} steps on {cfg['episodes']} episodes.",
            "",
            "| method | seeds | final return, IQM [95% CI] | mean return over the run, IQM [95% CI] | final return per seed | "
            "acting, ms per env step | wall per run |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            ms = acting.get(task, {}).get(row["method"])
            per_seed = ", ".join(f"{v:.0f}" for v in row["finals"])
            lines.append(
                f"| {row['method']} | {row['seeds']} | {row['final'][0]:.0f} [{row['final'][1]:.0f}, {row['final'][2]:.0f}] "
                f"| {row['area'][0]:.0f} [{row['area'][1]:.0f}, {row['area'][2]:.0f}] "
                f"| {per_seed} | {f'{ms:.2f}' if ms else '-'} | {row['wall'] / 60:.1f} min |"
            )
        png = RESULTS / f"gorl_{task}.png"
        plot(task, rows, png)
        lines += ["", f"![{task}]({png.name})", ""]
        if any(r["stage_ends"] for r in rows):
            lines.append(
                "Dotted lines: where GoRL's stages ended in seed 0's flow run (each refit's collection steps included)."
            )
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["InvertedPendulum-v5"], choices=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()

    seeds = list(range(args.seeds))
    todo = [(t, m, s) for t in args.tasks for m in args.methods for s in seeds if not run_path(t, m, s).exists()]
    start = time.perf_counter()
    if todo and not args.report_only:
        print(f"{len(todo)} runs to do, {args.workers} workers", flush=True)
        todo.sort(key=lambda r: (not r[1].startswith("GoRL ("), r[2]))  # the costly decoder runs first
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(execute, *run) for run in todo]
            for future in as_completed(futures):
                r = future.result()
                print(f"done: {r['task']} | {r['method']} | seed {r['seed']} | final {r['returns'][-1]:.0f} | "
                      f"{r['wall_seconds']:.0f} s", flush=True)  # fmt: skip
    elapsed = time.perf_counter() - start if todo and not args.report_only else None
    acting_file = RESULTS / "acting.json"
    if not acting_file.exists():  # timed alone, after the runs (delete the file to time again)
        acting = {task: acting_cost(task) for task in args.tasks}
        acting_file.write_text(json.dumps(acting, indent=1))
    acting = json.loads(acting_file.read_text())
    text = report(args.tasks, seeds, acting, elapsed)
    (RESULTS / "gorl_comparison.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
