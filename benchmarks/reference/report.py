"""Ours against the authors' code: the evidence report machinery (IQM, stratified-bootstrap CIs) on both sets of runs.

    .venv/bin/python benchmarks/reference/report.py                 # cpu scale, every task with reference runs
    .venv/bin/python benchmarks/reference/report.py --scale cpu --tasks MountainCarContinuous-v0

Runs in the project's venv. Ours: benchmarks/results/evidence/runs/<scale>/ (methods EXPO and RLPD of the main
suite, benchmarks/evidence.py). Theirs: benchmarks/results/reference/runs/<scale>/ (benchmarks/reference/driver.py).
Writes benchmarks/results/reference/<scale>.md and one PNG per task. Runs of the reference with a shorter budget than
the scale's (driver.py --steps) are only listed per seed, never aggregated with full runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import evidence  # noqa: E402
from translation import REFERENCES  # noqa: E402

RESULTS = evidence.ROOT / "benchmarks" / "results" / "reference"


def load_reference_runs(scale: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RESULTS / "runs" / scale).rglob("*.json"))]


def curve(record: dict) -> str:
    return " ".join(f"{s:.0%}" for s in record["success"])


def report(scale: str, tasks: list[str] | None) -> str:
    config = evidence.load_config(scale)
    ours_all = evidence.load_runs(scale)
    theirs_all = load_reference_runs(scale)
    tasks = tasks or sorted({r["task"] for r in theirs_all}, key=list(config["tasks"]).index)
    lines = [f"# Ours against the authors' code, {scale} scale", ""]
    lines += [
        "Ours: sb3-expo's EXPO and RLPD (benchmarks/evidence.py, main suite). Theirs: "
        + ", ".join(f"{r['method']} = {r['repo']} at `{r['commit'][:7]}`" for r in REFERENCES.values())
        + ", run by benchmarks/reference/driver.py with our settings translated one to one (translation.md).",
        "Success: IQM over seeds of the success rate over the evaluation episodes, 95% stratified-bootstrap CI (rliable);",
        "steps to 80%: as in the evidence report. Same tasks, demonstrations, budgets, evaluation episodes and reset seeds.",
        "Command: `.venv/bin/python benchmarks/reference/report.py" + (f" --scale {scale}" if scale != "cpu" else "") + "`",
        "",
    ]
    for task in tasks:
        task_cfg = config["tasks"][task]
        theirs_task = [r for r in theirs_all if r["task"] == task]
        full = [r for r in theirs_task if r.get("budget") == task_cfg["steps"] and r.get("complete", True)]
        group: dict[str, list[dict]] = {}
        for ref in REFERENCES.values():
            ours = [
                r
                for r in ours_all
                if r["task"] == task
                and r["method"] == ref["ours"]
                and r["n_demos"] == task_cfg["demos"]
                and r.get("suite", "main") == "main"
            ]
            theirs = [r for r in full if r["method"] == ref["method"] and not r.get("released_widths")]
            if ours and theirs:
                group[f"{ref['ours']} (ours)"] = ours
                group[ref["method"]] = theirs
        lines += [f"## {task}", ""]
        lines += [
            f"Budget {task_cfg['steps']:,} env steps, evaluation every {task_cfg['eval_every']:,} steps on "
            f"{config['eval_episodes']} held-out episodes, {task_cfg['demos']} demonstrations.",
            "",
        ]
        if group:
            rows, _ = evidence.summarise(group, task_cfg["steps"], task_cfg["eval_every"])
            lines += [
                "| implementation | seeds reaching 80% | steps to 80% [95% CI] | final success, IQM [95% CI] | "
                "mean success over the run, IQM [95% CI] | eval | wall per run |",
                "|---|---|---|---|---|---|---|",
            ]
            for row in rows:
                final = row["final"]
                lines.append(
                    f"| {row['method']} | {row['reached']}/{row['seeds']} | {evidence.fmt_steps(row)} | "
                    f"{evidence.fmt_interval(final)} | {evidence.fmt_interval(tuple(row['area']))} | "
                    f"{'mean action' if row['deterministic'] else 'sampled'} | {row['wall'] / 60:.1f} min |"
                )
            png = RESULTS / f"{scale}_{task}.png"
            evidence.plot(task, rows, png, f"{task}: ours against the authors' code ({scale})")
            lines += ["", f"![{task}]({png.name})", ""]
        lines += ["Per seed (success at each evaluation):", ""]
        lines += ["| run | seed | budget | evaluations at steps | success | wall |", "|---|---|---|---|---|---|"]
        seeds = sorted({r["seed"] for r in theirs_task})
        for seed in seeds:
            for ref in REFERENCES.values():
                for r in [
                    r
                    for r in ours_all
                    if r["task"] == task
                    and r["method"] == ref["ours"]
                    and r["seed"] == seed
                    and r["n_demos"] == task_cfg["demos"]
                    and r.get("suite", "main") == "main"
                ]:
                    lines.append(
                        f"| {ref['ours']} (ours) | {seed} | {r['steps'][-1]:,} | {r['steps'][1] - r['steps'][0]:,} apart | "
                        f"{curve(r)} | {r['wall_seconds']:.0f} s |"
                    )
                for r in [r for r in theirs_task if r["method"] == ref["method"] and r["seed"] == seed]:
                    lines.append(
                        f"| {r['method']}{'' if r.get('complete', True) else ' (interrupted)'} | {seed} | {r['budget']:,} | "
                        f"{r['steps'][1] - r['steps'][0]:,} apart | "
                        f"{curve(r)} | {r['wall_seconds']:.0f} s ({r.get('host', '')}) |"
                    )
        lines.append("")
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{scale}.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--tasks", nargs="+")
    args = parser.parse_args()
    print(report(args.scale, args.tasks))


if __name__ == "__main__":
    main()
