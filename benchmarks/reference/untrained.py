"""Success of the untrained EXPO (before any update), ours and the authors', over many seeds (issue #23).

    R=benchmarks/reference/.venv/bin/python
    $R benchmarks/reference/untrained.py theirs --task MountainCarContinuous-v0
    .venv/bin/python benchmarks/reference/untrained.py ours --task MountainCarContinuous-v0

On MountainCar the authors' runs led ours from step 0, before either had learned anything (seeds 0-9). This measures
the step-0 evaluation (10 held-out episodes, the runs' reset seeds) of freshly created agents on seeds 100-119,
which no run uses, with the cpu scale's settings: the same evaluation as the parity runs, for many more agents.
Results: benchmarks/results/parity/untrained.json (report.py lists them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
RESULTS = HERE.parents[1] / "benchmarks" / "results" / "parity"
SEEDS = list(range(100, 120))
EVAL_EPISODES = 10


def theirs(task: str) -> list[float]:
    import os

    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    import driver
    import gym.spaces
    from translation import translate

    tr = translate("expo", driver.load_block()["cpu"], task, driver.ACTION_DIMS[task])
    learner, _, _ = driver.load_reference("expo", tr.widths)
    envs = driver.Envs(task, 1 + EVAL_EPISODES, driver.ours_python(None))
    d = len(envs.low)
    if d == 1:
        learner = driver.one_dimensional_actions(learner)
    act = driver.CompiledActions(learner)
    success = []
    try:
        for seed in SEEDS:
            obs_space = gym.spaces.Box(-np.inf, np.inf, shape=envs.obs_shape, dtype=np.float32, seed=seed)
            act_space = gym.spaces.Box(-1.0, 1.0, shape=(d,), dtype=np.float32, seed=seed)
            agent = learner.create(seed, obs_space, act_space, **tr.create_kwargs)
            rate, _ = driver.evaluate("expo", agent, envs, EVAL_EPISODES, tr.loop["eval_seed"], act)
            success.append(rate)
            print(f"theirs, seed {seed}: {rate:.0%}", flush=True)
    finally:
        envs.close()
    return success


def ours(task: str) -> list[float]:
    import torch as th

    th.set_num_threads(1)
    import evidence

    config = evidence.load_config("cpu")
    demos = evidence.demonstrations(task, config["tasks"][task]["demos"])
    envs = [evidence.make_env(task) for _ in range(EVAL_EPISODES)]
    success = []
    for seed in SEEDS:
        model = evidence.build_model("EXPO", evidence.make_env(task), demos, config, seed, task)
        success.append(evidence.success_rate(model, envs, 10_000, deterministic=False))
        print(f"ours, seed {seed}: {success[-1]:.0%}", flush=True)
    return success


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("side", choices=["theirs", "ours"])
    parser.add_argument("--task", default="MountainCarContinuous-v0")
    args = parser.parse_args()
    success = (theirs if args.side == "theirs" else ours)(args.task)
    path = RESULTS / "untrained.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results.setdefault(args.task, {})[args.side] = dict(seeds=SEEDS, eval_episodes=EVAL_EPISODES, success=success)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{args.side}: mean success {np.mean(success):.1%} over {len(SEEDS)} untrained agents")


if __name__ == "__main__":
    main()
