"""Evidence suite: EXPO against Gaussian-policy baselines and its own ablations, on sparse-reward tasks.

    python benchmarks/evidence.py main                # all tasks x all methods, CPU scale (about 2 h on 2 cores)
    python benchmarks/evidence.py ablations           # demonstration quantity (EXPO only; tasks in ablation_demos)
    python benchmarks/evidence.py bases               # EXPO's base policy: DDPM vs flow matching (block `bases`)
    python benchmarks/evidence.py precision           # fp32 vs precision="bf16", paired by seed (block `precision`)
    python benchmarks/evidence.py offline_to_online   # pretrain on the demonstrations, then fine-tune (paper Fig. 5)
    python benchmarks/evidence.py tuned               # defaults vs the values benchmarks/tuning.py chose (rl-zoo3)
    python benchmarks/evidence.py main --scale cpu-paper-nets --methods EXPO RLPD   # the paper's networks, UTD 1
    python benchmarks/evidence.py main --tasks MountainCarContinuous-v0 --seeds 5 --workers 2
    python benchmarks/evidence.py main --scale paper  # the paper-scale configuration (for a GPU)
    python benchmarks/evidence.py main --report-only  # re-aggregate the runs already on disk

Budgets, demonstration counts and every method's hyperparameters come from the `evidence` block of
hyperparams/expo.yml (scales `cpu` and `paper`). Every method gets the same scripted demonstrations (same
count, same seeds) through DemoReplayBuffer at the same batch size and update-to-data ratio. Each run is saved
as JSON under benchmarks/results/evidence/runs/ (a finished run is not repeated), then the script aggregates:
interquartile mean (IQM) of the success rate over seeds with stratified-bootstrap 95% confidence intervals
(rliable), steps to 80% success, a Markdown table and one learning-curve PNG per task.

Evaluation: EXPO samples its actions (deterministic=False, the paper's protocol); SAC and CrossQ act with their
mean action (deterministic=True, SB3's usual evaluation). Success is info['is_success'] where the env reports
it, otherwise termination (MountainCar's flag).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "evidence"

# name -> (algorithm, config key in the yml block, uses demonstrations, extra EXPO arguments)
METHODS: dict[str, tuple[str, str, bool, dict[str, Any]]] = {
    "EXPO": ("expo", "expo", True, {}),
    "EXPO, no edits (K=0)": ("expo", "expo", True, {"n_edit_samples": 0}),
    "EXPO, no OTF backup": ("expo", "expo", True, {"otf_backup": False}),
    "SAC + demos (RLPD-style)": ("sac", "sac", True, {}),
    "CrossQ + demos": ("crossq", "crossq", True, {}),
    "SAC, no demos": ("sac", "sac", False, {}),
    "EXPO, flow (10 steps)": ("expo", "expo", True, {"policy_kwargs": {"base": "flow", "diffusion_steps": 10}}),
    "EXPO, flow (2 steps)": ("expo", "expo", True, {"policy_kwargs": {"base": "flow", "diffusion_steps": 2}}),
    "EXPO, bf16": ("expo", "expo", True, {"precision": "bf16"}),
    "EXPO, tuned": ("expo", "expo", True, {}),  # plus the task's best trial of benchmarks/tuning.py (tuned_params)
    "RLPD": ("rlpd", "rlpd", True, {}),
    # offline-to-online: imitation pretraining on the demonstrations (config pretrain_steps), then fine-tuning
    "EXPO, pretrained": ("expo", "expo", True, {}),
    "EXPO, no edits (K=0), pretrained": ("expo", "expo", True, {"n_edit_samples": 0}),
    "RLPD, BC-pretrained actor": ("rlpd", "rlpd", True, {}),
    "SAC + demos, BC-pretrained actor": ("sac", "sac", True, {}),
}
PRETRAINED = {m for m in METHODS if "pretrained" in m}
SUITE_METHODS = {  # the methods each suite compares (ablations: EXPO at several demonstration counts)
    "main": [
        "EXPO",
        "EXPO, no edits (K=0)",
        "EXPO, no OTF backup",
        "SAC + demos (RLPD-style)",
        "RLPD",
        "CrossQ + demos",
        "SAC, no demos",
    ],
    "bases": ["EXPO", "EXPO, flow (10 steps)", "EXPO, flow (2 steps)"],
    "precision": ["EXPO", "EXPO, bf16"],  # paired by seed: the report adds bf16 - fp32 per seed
    "offline_to_online": sorted(PRETRAINED),  # the report adds success after pretraining and the early dip
    "tuned": ["EXPO", "EXPO, tuned"],  # defaults against rl-zoo3 -optimize's choice on tuning seeds (tuning.py)
}
GAUSSIAN_WITH_DEMOS = ("SAC + demos (RLPD-style)", "RLPD", "CrossQ + demos")
THRESHOLD = 0.8


# ---------------------------------------------------------------- tasks: env and scripted expert


def make_env(task: str) -> gym.Env:
    """The task's env with Box observations (PointMaze's dict is flattened so that every method can use it)."""
    if task.startswith("PointMaze"):
        from sb3_expo.datasets.pointmaze import make_pointmaze

        return gym.wrappers.FlattenObservation(make_pointmaze(task))
    if task == "RobomimicLift-v0":
        from sb3_expo.datasets.robosuite_tasks import RobosuiteEnv

        return RobosuiteEnv("Lift")
    return gym.make(task)


def make_expert(task: str, env: gym.Env) -> Callable[[np.ndarray], np.ndarray]:
    if task.startswith("PointMaze"):
        from sb3_expo.datasets.pointmaze import PointMazeExpert

        expert = PointMazeExpert(env.unwrapped)
        dict_space = env.env.observation_space  # type: ignore[attr-defined]

        class Flat:
            reset = expert.reset

            def __call__(self, obs: np.ndarray) -> np.ndarray:
                return expert(gym.spaces.unflatten(dict_space, obs))

        return Flat()
    if task == "RobomimicLift-v0":
        from sb3_expo.datasets.robosuite_tasks import LiftExpert

        return LiftExpert(env)  # type: ignore[arg-type]
    from sb3_expo.datasets.experts import EXPERTS

    return EXPERTS[task]


def demonstrations(task: str, n_episodes: int, seed: int = 1000):
    """The task's fixed demonstration set: n scripted episodes from reset seeds seed, seed + 1, ..."""
    from sb3_expo.datasets.experts import collect_demonstrations

    env = make_env(task)
    return collect_demonstrations(
        env, make_expert(task, env), n_episodes, seed, source=f"{n_episodes} scripted {task} episodes"
    )


def success_rate(model, envs: list[gym.Env], seed: int, deterministic: bool) -> float:
    """One episode per env (held-out reset seeds seed, seed + 1, ...), all envs stepped with one batched predict."""
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    active, successes = list(range(len(envs))), np.zeros(len(envs))
    while active:
        actions, _ = model.predict(np.stack([obs[i] for i in active]), deterministic=deterministic)
        still = []
        for action, i in zip(actions, active):
            obs[i], _, terminated, truncated, info = envs[i].step(action)
            if terminated or truncated:
                successes[i] = float(info.get("is_success", terminated))
            else:
                still.append(i)
        active = still
    return float(successes.mean())


# ---------------------------------------------------------------- one run


@dataclass(frozen=True)
class Run:
    scale: str
    task: str
    method: str
    seed: int
    n_demos: int
    path: Path
    suite: str = "main"


def tuned_params(task: str) -> dict[str, Any]:
    """The best trial of the task's tuning study (benchmarks/tuning.py, tuning seeds disjoint from these)."""
    best = json.loads((ROOT / "benchmarks" / "results" / "tuning" / "best.json").read_text())
    if task not in best:
        raise ValueError(f"no tuning study for {task}: run python benchmarks/tuning.py --tasks {task} first.")
    from sb3_expo.zoo.tuning import convert_expo_params

    return convert_expo_params(best[task]["params"])


def build_model(method: str, env: gym.Env, demos, config: dict, seed: int, task: str = ""):
    algo, key, with_demos, extra = METHODS[method]
    kwargs = {**config[key], **extra}
    if method == "EXPO, tuned":
        kwargs.update(tuned_params(task))
    if isinstance(kwargs.get("policy_kwargs"), dict):  # a method's policy_kwargs add to the scale's
        kwargs["policy_kwargs"] = {**config[key].get("policy_kwargs", {}), **extra.get("policy_kwargs", {})}
    if algo == "expo":
        from sb3_expo import EXPO

        return EXPO("MlpPolicy", env, demonstrations=demos if with_demos else None, seed=seed, **kwargs)
    if algo == "rlpd":
        from sb3_expo import RLPD

        return RLPD("MlpPolicy", env, demonstrations=demos, seed=seed, **kwargs)
    from sb3_expo.common.buffers import DemoReplayBuffer

    if with_demos:
        kwargs.update(replay_buffer_class=DemoReplayBuffer, replay_buffer_kwargs=dict(demonstrations=demos))
    if algo == "sac":
        from stable_baselines3 import SAC

        return SAC("MlpPolicy", env, seed=seed, **kwargs)
    from sb3_contrib import CrossQ

    return CrossQ("MlpPolicy", env, seed=seed, **kwargs)


def execute(run: Run, config: dict) -> dict:
    import torch as th

    th.set_num_threads(1)
    task_cfg = config["tasks"][run.task]
    demos = demonstrations(run.task, run.n_demos)
    model = build_model(run.method, make_env(run.task), demos, config, run.seed, run.task)
    if run.method in PRETRAINED:  # imitation first (EXPO: its base policy; SAC, RLPD: their actor), then no warm-up
        from sb3_expo.rlpd.rlpd import clone_actor

        steps = config["pretrain_steps"]
        if hasattr(model, "pretrain"):
            model.pretrain(steps)
        else:
            clone_actor(model, steps, model.batch_size)
        model.learning_starts = 0
    eval_envs = [make_env(run.task) for _ in range(config["eval_episodes"])]
    deterministic = METHODS[run.method][0] != "expo"
    start = time.perf_counter()
    steps, success, train_time = [0], [success_rate(model, eval_envs, 10_000, deterministic)], 0.0
    while model.num_timesteps < task_cfg["steps"]:
        t0 = time.perf_counter()
        model.learn(task_cfg["eval_every"], reset_num_timesteps=False)
        train_time += time.perf_counter() - t0
        steps.append(model.num_timesteps)
        success.append(success_rate(model, eval_envs, 10_000, deterministic))
        print(
            f"{run.task} | {run.method} | seed {run.seed} | demos {run.n_demos}: step {steps[-1]} success {success[-1]:.0%}",
            flush=True,
        )
    record = dict(
        **{k: getattr(run, k) for k in ("scale", "task", "method", "seed", "n_demos", "suite")},
        steps=steps,
        success=success,
        deterministic_eval=deterministic,
        demo_transitions=len(demos),
        expert_success=demos.success_rate,
        train_seconds=train_time,
        wall_seconds=time.perf_counter() - start,
    )
    run.path.parent.mkdir(parents=True, exist_ok=True)
    run.path.write_text(json.dumps(record))
    return record


# ---------------------------------------------------------------- aggregation


def load_runs(scale: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RESULTS / "runs" / scale).rglob("*.json"))]


def steps_to_threshold(record: dict) -> float:
    """First evaluated step with success >= 80%; inf when never reached within the budget."""
    return next((float(s) for s, r in zip(record["steps"], record["success"]) if r >= THRESHOLD), float("inf"))


def interval_estimates(curves: dict[str, np.ndarray], reps: int = 2000, seed: int = 0):
    """IQM success per evaluation point and its 95% stratified-bootstrap CI: {name: (iqm[T], low[T], high[T])}."""
    from rliable import library as rly
    from rliable import metrics

    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global generator
    scores = {name: c[:, None, :] for name, c in curves.items()}  # runs x tasks(1) x evaluations

    def iqm(s: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(s[..., t]) for t in range(s.shape[-1])])

    point, ci = rly.get_interval_estimates(scores, iqm, reps=reps)
    return {name: (point[name], ci[name][0], ci[name][1]) for name in curves}


def bootstrap_mean_ci(values: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(reps, len(values)))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(group: dict[str, list[dict]], budget: int, every: int) -> tuple[list[dict], dict]:
    """One row per method; steps to 80% count a run that never got there as budget + one evaluation (a lower bound)."""
    rows, curves = [], {}
    for name, records in group.items():
        n = min(len(r["steps"]) for r in records)
        curves[name] = np.array([r["success"][:n] for r in records])
        reach = np.array([steps_to_threshold(r) for r in records])
        penalised = np.where(np.isfinite(reach), reach, budget + every)
        rows.append(
            dict(
                method=name,
                steps=records[0]["steps"][:n],
                seeds=len(records),
                reached=int(np.isfinite(reach).sum()),
                to80=bootstrap_mean_ci(penalised),
                censored=bool((~np.isfinite(reach)).any()),
                wall=float(np.mean([r["wall_seconds"] for r in records])),
                demos=records[0]["n_demos"],
                demo_transitions=records[0]["demo_transitions"],
                expert_success=records[0]["expert_success"],
                deterministic=records[0]["deterministic_eval"],
            )
        )
    estimates = interval_estimates(curves)
    # mean success over all evaluations of a run (area under its curve): sample efficiency even below 80%
    areas = interval_estimates({name: c.mean(axis=1, keepdims=True) for name, c in curves.items()})
    for row in rows:
        iqm, low, high = estimates[row["method"]]
        area = [float(v[0]) for v in areas[row["method"]]]
        row.update(final=(iqm[-1], low[-1], high[-1]), curve=(iqm, low, high), area=tuple(area))
    return rows, estimates


def fmt_interval(estimate: tuple[float, float, float]) -> str:
    return f"{estimate[0]:.0%} [{estimate[1]:.0%}, {estimate[2]:.0%}]"


def fmt_steps(row: dict) -> str:
    mean, low, high = row["to80"]
    prefix = ">=" if row["censored"] else ""
    return f"{prefix}{mean:,.0f} [{low:,.0f}, {high:,.0f}]"


def verdict(rows: list[dict]) -> str:
    """The target: EXPO at most half the steps of the best Gaussian baseline with demos, CIs apart."""
    by = {r["method"]: r for r in rows}
    if "EXPO" not in by or not any(m in by for m in GAUSSIAN_WITH_DEMOS):
        return "target not evaluated (EXPO or a Gaussian baseline with demonstrations missing)"
    expo = by["EXPO"]
    best = min((by[m] for m in GAUSSIAN_WITH_DEMOS if m in by), key=lambda r: r["to80"][0])
    if expo["reached"] == 0 and best["reached"] == 0:
        return "no method with demonstrations reached 80% success within the budget: the steps-to-80% target is undecided here"
    ratio = expo["to80"][0] / best["to80"][0]
    apart = expo["to80"][2] < best["to80"][1]
    met = ratio <= 0.5 and apart and expo["reached"] == expo["seeds"]
    bound = " (an upper bound: the baseline's runs that never got there count at the budget)" if best["censored"] else ""
    return (
        f"EXPO / best Gaussian baseline with demos ({best['method']}) in steps to 80%: {ratio:.2f}{bound} "
        f"(target <= 0.5), CIs {'apart' if apart else 'overlap'} -> target {'MET' if met else 'NOT met'}"
    )


def plot(task: str, rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.4, 3.8))
    for row in rows:
        iqm, low, high = row["curve"]
        line = ax.plot(row["steps"], iqm, marker="o", ms=3, label=f"{row['method']} (n={row['seeds']})")[0]
        ax.fill_between(row["steps"], low, high, color=line.get_color(), alpha=0.15)
    ax.axhline(THRESHOLD, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="environment steps", ylabel="success rate (IQM, 95% CI)", title=title, ylim=(-0.03, 1.03))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(suite: str, scale: str, config: dict, tasks: list[str], elapsed: float | None) -> str:
    runs = load_runs(scale)
    out = RESULTS / scale
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Evidence suite: {suite}, {scale} scale", ""]
    lines += [f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores ({platform.processor() or platform.platform()})."]
    if elapsed is not None:
        lines += [f"Wall time of this invocation: {elapsed / 60:.0f} min."]
    shown = [r for r in runs if r["task"] in tasks]
    minutes = sum(r["wall_seconds"] for r in shown) / 60
    lines += [f"Runs on disk for these tasks: {len(shown)}, {minutes:.0f} min of run time in all (workers run in parallel)."]
    lines += ["Command: `python benchmarks/evidence.py " + suite + (f" --scale {scale}" if scale != "cpu" else "") + "`", ""]
    lines += [
        "Success: IQM over seeds of the success rate over evaluation episodes, 95% stratified-bootstrap CI (rliable).",
        "Steps to 80%: mean over seeds of the first evaluation at >= 80% success, 95% bootstrap CI; a run that",
        "never got there counts as budget + one evaluation interval (so `>=` marks a lower bound).",
        "",
    ]
    summary = [
        "| task (budget, demos) | run | seeds at 80% | steps to 80% [95% CI] | final success | mean success over the run |",
        "|---|---|---|---|---|---|",
    ]
    header = len(lines)
    for task in tasks:
        task_cfg = config["tasks"][task]
        if suite in SUITE_METHODS:
            group = {
                m: [
                    r
                    for r in runs
                    if r["task"] == task
                    and r["method"] == m
                    and r["n_demos"] == task_cfg["demos"]
                    and r.get("suite", "main") == suite
                ]
                for m in SUITE_METHODS[suite]
            }
            label = "method"
        else:
            group = {
                f"EXPO, {n} demos": [r for r in runs if r["task"] == task and r["method"] == "EXPO" and r["n_demos"] == n]
                for n in config["ablation_demos"][task]
            }
            label = "demonstrations"
        group = {k: v for k, v in group.items() if v}
        if not group:
            continue
        rows, _ = summarise(group, task_cfg["steps"], task_cfg["eval_every"])
        first = rows[0]
        for row in rows:
            summary.append(
                f"| {task} ({task_cfg['steps']:,}, {row['demos']}) | {row['method']} | {row['reached']}/{row['seeds']} | "
                f"{fmt_steps(row)} | {row['final'][0]:.0%} | {fmt_interval(row['area'])} |"
            )
        lines += [f"## {task}", ""]
        lines += [
            f"Budget {task_cfg['steps']:,} env steps, evaluation every {task_cfg['eval_every']:,} steps on "
            f"{config['eval_episodes']} held-out episodes. Demonstrations: "
            + (
                f"{first['demos']} scripted episodes ({first['demo_transitions']} transitions, expert success "
                f"{first['expert_success']:.0%})."
                if suite in SUITE_METHODS
                else f"{', '.join(str(n) for n in config['ablation_demos'][task])} scripted episodes."
            ),
            "",
            f"| {label} | seeds reaching 80% | steps to 80% [95% CI] | final success, IQM [95% CI] | "
            "mean success over the run, IQM [95% CI] | eval | wall per run |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            final = row["final"]
            lines.append(
                f"| {row['method']} | {row['reached']}/{row['seeds']} | {fmt_steps(row)} | "
                f"{final[0]:.0%} [{final[1]:.0%}, {final[2]:.0%}] | "
                f"{row['area'][0]:.0%} [{row['area'][1]:.0%}, {row['area'][2]:.0%}] | "
                f"{'mean action' if row['deterministic'] else 'sampled'} | "
                f"{row['wall'] / 60:.1f} min |"
            )
        if suite == "offline_to_online":
            lines += ["", *unlearning(group, task_cfg["steps"])]
        if suite == "precision":
            lines += ["", *paired_differences(group["EXPO"], group.get("EXPO, bf16", []))]
        if suite == "tuned":
            lines += ["", f"Tuned values (benchmarks/results/tuning/best.json): {tuned_params(task)}."]
            lines += ["", *paired_differences(group["EXPO"], group.get("EXPO, tuned", []), "tuned - defaults")]
        png = out / f"{suite}_{task}.png"
        plot(task, rows, png, f"{task} ({suite})")
        lines += ["", verdict(rows) if suite == "main" else "", "", f"![{task}]({png.relative_to(RESULTS)})", ""]
    lines[header:header] = ["## Summary", "", *summary, ""]
    text = "\n".join(lines)
    (out / f"{suite}.md").write_text(text)
    return text


def unlearning(group: dict[str, list[dict]], budget: int) -> list[str]:
    """Offline-to-online: success right after pretraining (the step-0 evaluation), the lowest success during the first
    fifth of fine-tuning (the "unlearning" dip), and the final success; mean over seeds with 95% bootstrap CIs."""
    lines = [
        "| method | after pretraining | lowest in the first fifth of fine-tuning | final |",
        "|---|---|---|---|",
    ]
    for method, records in group.items():
        after = np.array([r["success"][0] for r in records])
        window = max(budget / 5, records[0]["steps"][1])  # at least one evaluation after pretraining
        dip = np.array([min(s for t, s in zip(r["steps"], r["success"]) if 0 < t <= window) for r in records])
        final = np.array([r["success"][-1] for r in records])
        cells = [fmt_interval(bootstrap_mean_ci(v)) for v in (after, dip, final)]
        lines.append(f"| {method} | {' | '.join(cells)} |")
    return lines


def paired_differences(fp32: list[dict], bf16: list[dict], label: str = "bf16 - fp32") -> list[str]:
    """bf16 - fp32 (or another pair) per seed (the same seed: the same demonstrations, initial weights and evaluation
    episodes), mean over seeds with a 95% bootstrap CI, for the final success and the mean success over the run."""
    by_seed = {r["seed"]: r for r in fp32}
    pairs = [(by_seed[r["seed"]], r) for r in bf16 if r["seed"] in by_seed]
    if not pairs:
        return []
    final = np.array([b["success"][-1] - f["success"][-1] for f, b in pairs])
    n = min(min(len(f["success"]), len(b["success"])) for f, b in pairs)
    area = np.array([np.mean(b["success"][:n]) - np.mean(f["success"][:n]) for f, b in pairs])
    lines = [f"| {label}, paired by seed | seeds | mean difference [95% bootstrap CI] |", "|---|---|---|"]
    for name, values in (("final success", final), ("mean success over the run", area)):
        mean, low, high = bootstrap_mean_ci(values)
        lines.append(f"| {name} | {len(pairs)} | {100 * mean:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] |")
    return lines


# ---------------------------------------------------------------- command line


def load_block() -> dict:
    """The `evidence` block of hyperparams/expo.yml: one configuration per scale."""
    return yaml.safe_load((ROOT / "hyperparams" / "expo.yml").read_text())["evidence"]


def load_config(scale: str) -> dict:
    return load_block()[scale]


def plan(suite: str, scale: str, config: dict, tasks: list[str], seeds: list[int]) -> list[Run]:
    """Every run of a suite; runs of suites other than main and ablations live in their own folder (runs/<scale>/<task>/
    <suite>/), so that every method of a comparison is run with the same code."""
    runs = []
    for task in tasks:
        if suite in SUITE_METHODS:
            specs = [(m, config["tasks"][task]["demos"]) for m in SUITE_METHODS[suite]]
        else:
            specs = [("EXPO", n) for n in config["ablation_demos"][task]]
        folder = RESULTS / "runs" / scale / task / ("" if suite in ("main", "ablations") else suite)
        for method, n_demos in specs:
            for seed in seeds:
                slug = method.lower().replace(" ", "_").replace(",", "").replace("(", "").replace(")", "").replace("+", "plus")
                runs.append(
                    Run(scale, task, method, seed, n_demos, folder / f"{slug}__demos{n_demos}__seed{seed}.json", suite)
                )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=[*SUITE_METHODS, "ablations"])
    parser.add_argument("--scale", choices=list(load_block()), default="cpu", help="a key of the yml block")
    parser.add_argument("--tasks", nargs="+", help="default: every task of the scale (ablations: those in ablation_demos)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), help="default: all")
    parser.add_argument("--seeds", type=int, help="number of seeds (default from the yml block)")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()

    config = load_config(args.scale)
    suite_cfg = config.get(args.suite, {}) if args.suite not in ("main", "ablations") else {}
    default_tasks = suite_cfg.get("tasks") or (
        config["tasks"] if args.suite != "ablations" else config.get("ablation_demos", {})
    )
    tasks = args.tasks or list(default_tasks)
    seeds = list(range(args.seeds or suite_cfg.get("seeds") or config["seeds"]))
    runs = [r for r in plan(args.suite, args.scale, config, tasks, seeds) if not args.methods or r.method in args.methods]
    todo = [r for r in runs if not r.path.exists()]
    start = time.perf_counter()
    if todo and not args.report_only:
        print(f"{len(todo)} runs to do ({len(runs) - len(todo)} already on disk), {args.workers} workers", flush=True)
        # most expensive first (EXPO, longest budgets) so that the workers finish together
        todo.sort(key=lambda r: (-config["tasks"][r.task]["steps"] * (3 if METHODS[r.method][0] == "expo" else 1), r.seed))
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(execute, run, config): run for run in todo}
            for future in as_completed(futures):
                record = future.result()
                print(
                    f"done: {record['task']} | {record['method']} | seed {record['seed']} | "
                    f"final {record['success'][-1]:.0%} | {record['wall_seconds']:.0f} s",
                    flush=True,
                )
    print(
        report(args.suite, args.scale, config, tasks, time.perf_counter() - start if todo and not args.report_only else None)
    )


if __name__ == "__main__":
    main()
