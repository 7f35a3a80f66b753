"""EXPO tuned the way users tune it: rl-zoo3's `-optimize` with the project's optuna sampler, on tuning seeds.

    python benchmarks/tuning.py                       # both tasks, 8 trials each (about 1 h on one core)
    python benchmarks/tuning.py --tasks MountainCarContinuous-v0 --trials 6
    python benchmarks/tuning.py --report-only         # rebuild the report from the studies on disk

Each task gets the evidence suite's CPU settings (hyperparams/expo.yml, block `evidence`, scale `cpu`): the same
networks, UTD, budget and demonstrations (same count and reset seeds), written as a zoo entry to a `-conf` file.
Then `rl_zoo3 train --algo expo -optimize` samples edit_beta, N (= K), num_min_qs and the learning rate
(sb3_expo/zoo/tuning.py) and scores a trial by its last evaluation (10 episodes, sampled actions as the evidence
suite evaluates EXPO). Tuning seeds: --seed 100 (environment resets 100, 101, ...), disjoint from the evidence
suite's training seeds (0-9) and evaluation resets (10,000 onwards). The study is an optuna journal file under
benchmarks/results/tuning/; `best.json` holds each task's best trial, which `evidence.py tuned` reruns on the
evidence seeds beside the defaults.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "tuning"
TASKS = ("MountainCarContinuous-v0", "PointMaze_UMaze-v3")
TUNING_SEED = 100
DEMO_SEED = 1000  # the evidence suite's demonstration resets (benchmarks/evidence.py: demonstrations())


def demonstration_source(task: str, n_demos: int) -> str:
    """The evidence suite's demonstrations as a zoo source string (PointMaze: a local minari dataset made here)."""
    if not task.startswith("PointMaze"):
        return f"scripted:{task}?episodes={n_demos}&seed={DEMO_SEED}"
    import minari

    from sb3_expo.datasets.generate import generate

    maze = task.split("_")[1].split("-")[0].lower()  # PointMaze_UMaze-v3 -> umaze
    dataset_id = f"sb3-expo/{maze}-tuning-{n_demos}x{DEMO_SEED}-v0"
    if dataset_id not in minari.list_local_datasets():
        generate(f"pointmaze-{maze}", n_demos, DEMO_SEED, dataset_id=dataset_id)
    return f"minari:{dataset_id}"


def zoo_entry(task: str, cpu: dict) -> dict:
    """The evidence suite's EXPO settings for `task` as a zoo hyperparameter entry."""
    expo, task_cfg = dict(cpu["expo"]), cpu["tasks"][task]
    entry = {
        "policy": "MultiInputPolicy" if task.startswith("PointMaze") else "MlpPolicy",
        "n_timesteps": task_cfg["steps"],
        **{k: v for k, v in expo.items() if k != "policy_kwargs"},
        "policy_kwargs": "dict(" + ", ".join(f"{k}={v!r}" for k, v in expo["policy_kwargs"].items()) + ")",
        "deterministic_mode": "sampled",
        "demonstrations": demonstration_source(task, task_cfg["demos"]),
    }
    if task.startswith("PointMaze"):  # as sb3_expo.datasets.pointmaze.make_pointmaze: the goal ends the episode
        entry["env_kwargs"] = {"continuing_task": False}
        entry["env_wrapper"] = ["sb3_expo.common.wrappers.SuccessInfo"]
    return entry


def tune(task: str, cpu: dict, trials: int) -> None:
    """Run (or continue) the task's study up to `trials` trials (optuna journal: an interrupted study resumes)."""
    OUT.mkdir(parents=True, exist_ok=True)
    conf = OUT / f"{task}.yml"
    conf.write_text(yaml.safe_dump({task: zoo_entry(task, cpu)}, sort_keys=False))
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "expo", "--env", task, "-conf", str(conf),
        "-optimize", "--max-total-trials", str(trials), "--n-jobs", "1", "--sampler", "tpe", "--pruner", "none",
        "--n-startup-trials", "6", "--n-evaluations", "2", "--eval-episodes", str(cpu["eval_episodes"]),
        "--seed", str(TUNING_SEED), "--storage", str(OUT / f"{task}.log"), "--study-name", f"expo-{task}",
        "-f", str(OUT / "logs"), "--device", "cpu",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)


def load_study(task: str):
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(OUT / f"{task}.log")))
    return optuna.load_study(study_name=f"expo-{task}", storage=storage)


def report(tasks: list[str]) -> None:
    """Trials table, best parameters and cost per task (report.md, best.json). Cost: the completed trials' durations
    (optuna's own timestamps; one trial at a time on one core), so an interrupted and resumed study counts once."""
    from optuna.trial import TrialState

    best_path = OUT / "best.json"
    best = json.loads(best_path.read_text()) if best_path.exists() else {}
    lines = [
        "# EXPO tuned with rl-zoo3 -optimize",
        "",
        "Command: `python benchmarks/tuning.py` (rl-zoo3 `-optimize`, TPE sampler after 6 random trials, no pruner,",
        "the evidence suite's CPU settings and demonstrations, tuning seed 100; score = success-weighted return of",
        "the last evaluation, 10 episodes, sampled actions).",
        "",
    ]
    for task in tasks:
        study = load_study(task)
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if not done:
            continue
        top = max(done, key=lambda t: t.value)
        best[task] = {"trial": top.number, "value": top.value, "params": top.params}
        minutes = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done) / 60
        lines += [f"## {task}: {len(done)} trials, {minutes:.0f} min on one core", ""]
        lines += ["| trial | edit_beta | N = K | num_min_qs | learning_rate | score |", "|---|---|---|---|---|---|"]
        for t in sorted(done, key=lambda t: -t.value):
            p = t.params
            mark = " (best)" if t.number == top.number else ""
            lines.append(
                f"| {t.number}{mark} | {p['edit_beta']} | {p['n_base_samples']} | {p['num_min_qs']} | "
                f"{p['learning_rate']:.2e} | {t.value:.2f} |"
            )
        repeats: dict[tuple, list[float]] = {}
        for t in done:
            repeats.setdefault(tuple(sorted(t.params.items())), []).append(t.value)
        for params, values in repeats.items():
            if len(values) > 1:  # a resumed study's seeded sampler replays its draws: the same setting scored twice
                lines += ["", f"Same setting scored {len(values)} times: {dict(params)} -> {[round(v, 2) for v in values]}."]
        lines.append("")
    best_path.write_text(json.dumps(best, indent=1))
    (OUT / "report.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    cpu = yaml.safe_load((ROOT / "hyperparams" / "expo.yml").read_text())["evidence"]["cpu"]
    if not args.report_only:
        for task in args.tasks:
            tune(task, cpu, args.trials)
    report(args.tasks)


if __name__ == "__main__":
    main()
