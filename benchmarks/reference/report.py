"""Ours against the authors' code: the evidence report machinery (IQM, stratified-bootstrap CIs) on both sets of runs.

    .venv/bin/python benchmarks/reference/report.py                 # cpu scale, every task with reference runs
    .venv/bin/python benchmarks/reference/report.py --scale cpu --tasks MountainCarContinuous-v0

Runs in the project's venv. Ours: benchmarks/results/evidence/runs/<scale>/ (methods EXPO and RLPD of the main
suite, benchmarks/evidence.py). Theirs: benchmarks/results/parity/runs/<scale>/ (benchmarks/reference/driver.py).
Writes benchmarks/results/parity/report.md (report_<scale>.md for other scales) and one PNG per task; also
`driver.py run --report-only`. Runs of the reference with a shorter budget than the scale's (driver.py --steps) are
only listed per seed, never aggregated with full runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import evidence  # noqa: E402
from translation import REFERENCES  # noqa: E402

RESULTS = evidence.ROOT / "benchmarks" / "results" / "parity"


def load_reference_runs(scale: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RESULTS / "runs" / scale).rglob("*.json"))]


PARITY_BAND = 0.10  # at parity: the 95% interval of ours minus theirs (mean success over the run) inside +-10 points


def difference(ours: np.ndarray, theirs: np.ndarray, resamples: int = 20_000, seed: int = 0) -> tuple[float, float, float]:
    """mean(ours) - mean(theirs) over seeds, with a 95% percentile-bootstrap interval (seeds resampled within each
    implementation: the two use different random number generators, so runs pair by seed only in name)."""
    rng = np.random.default_rng(seed)
    a = rng.choice(ours, size=(resamples, len(ours))).mean(axis=1)
    b = rng.choice(theirs, size=(resamples, len(theirs))).mean(axis=1)
    low, high = np.percentile(a - b, [2.5, 97.5])
    return float(ours.mean() - theirs.mean()), float(low), float(high)


def verdict(low: float, high: float) -> str:
    if -PARITY_BAND <= low and high <= PARITY_BAND:
        return "at parity"
    if low > PARITY_BAND or high < -PARITY_BAND:
        return "not at parity"
    return "undecided"


def points(estimate: tuple[float, float, float]) -> str:
    return f"{100 * estimate[0]:+.0f} [{100 * estimate[1]:+.0f}, {100 * estimate[2]:+.0f}]"


def parity_rows(task: str, pairs: list[tuple[str, list[dict], list[dict]]]) -> list[dict]:
    rows = []
    for algo, ours, theirs in pairs:
        n = min(len(r["success"]) for r in ours + theirs)
        area = [np.array([np.mean(r["success"][:n]) for r in runs]) for runs in (ours, theirs)]
        final = [np.array([r["success"][n - 1] for r in runs]) for runs in (ours, theirs)]
        over_run, at_end = difference(*area), difference(*final)
        rows.append(
            dict(
                task=task,
                algo=algo,
                seeds=(len(ours), len(theirs)),
                over_run=over_run,
                final=at_end,
                verdict=verdict(over_run[1], over_run[2]),
            )
        )
    return rows


def parity_table(rows: list[dict]) -> list[str]:
    lines = [
        "| task | algorithm | seeds (ours / theirs) | mean success over the run, ours - theirs [95% CI], points | "
        "final success, ours - theirs [95% CI], points | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['algo']} | {r['seeds'][0]} / {r['seeds'][1]} | {points(r['over_run'])} | "
            f"{points(r['final'])} | {r['verdict']} |"
        )
    return lines


def curve(record: dict) -> str:
    return " ".join(f"{s:.0%}" for s in record["success"])


def component_lines() -> list[str]:
    """The same-weights comparison of EXPO (components.py), one line per task it was run on."""
    path = RESULTS / "components.json"
    if not path.exists():
        return []
    lines = [
        "## EXPO on the same weights, batch and random draws",
        "",
        "`benchmarks/reference/components.py` copies the authors' initial parameters into ours, replays every random draw",
        "of theirs in ours, and compares the networks' outputs, one action, the backup's candidate choice and the",
        "parameters after consecutive `update(batch, utd_ratio)` calls (critics, targets, denoiser and its EMA, edit",
        "policy, temperature):",
        "",
        "| task | seed | quantities | values compared | values off (> 0.1% of scale, > 16 spacings) | details |",
        "|---|---|---|---|---|---|",
    ]
    for task, run in json.loads(path.read_text()).items():
        off, total = (sum(r[k] for r in run["rows"]) for k in ("elements_off", "elements"))
        link = f"[components_{task}.md](components_{task}.md)"
        lines.append(f"| {task} | {run['seed']} | {len(run['rows'])} | {total:,} | {off} | {link} |")
    lines.append("")
    untrained = RESULTS / "untrained.json"
    if untrained.exists():
        lines += [
            "Untrained agents (`benchmarks/reference/untrained.py`): the step-0 evaluation of freshly created agents on",
            "seeds no run uses, mean success over seeds with a 95% bootstrap interval:",
            "",
            "| task | ours | theirs | ours - theirs, points [95% CI] |",
            "|---|---|---|---|",
        ]
        for task, sides in json.loads(untrained.read_text()).items():
            if {"ours", "theirs"} <= set(sides):
                a, b = (np.asarray(sides[k]["success"]) for k in ("ours", "theirs"))
                n = f"{len(a)} seeds x {sides['ours']['eval_episodes']} episodes"
                lines.append(f"| {task} | {a.mean():.1%} ({n}) | {b.mean():.1%} | {points(difference(a, b))} |")
        lines.append("")
    return lines


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
    verdicts: list[dict] = []
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
            pairs = [
                (ref["ours"], group[f"{ref['ours']} (ours)"], group[ref["method"]])
                for ref in REFERENCES.values()
                if ref["method"] in group
            ]
            verdicts += parity_rows(task, pairs)
            lines += [*parity_table(verdicts[-len(pairs) :]), ""]
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
    if verdicts:
        band = f"+-{100 * PARITY_BAND:.0f} points"
        summary = [
            "## Verdicts",
            "",
            f"At parity: the 95% interval of ours minus theirs in mean success over the run lies inside {band}; not at "
            "parity: it lies wholly beyond; undecided: it crosses the band's edge.",
            "",
            *parity_table(verdicts),
            "",
            *component_lines(),
        ]
        lines[7:7] = summary
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("report.md" if scale == "cpu" else f"report_{scale}.md")).write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--tasks", nargs="+")
    args = parser.parse_args()
    print(report(args.scale, args.tasks))


if __name__ == "__main__":
    main()
