"""Our side of the reference comparison, run with the project's venv (.venv/bin/python): the evidence suite's tasks.

    .venv/bin/python benchmarks/reference/ours.py export --task MountainCarContinuous-v0 --demos 5 --out demos.npz
    .venv/bin/python benchmarks/reference/ours.py serve --task MountainCarContinuous-v0 --n-envs 11

`export` writes the demonstrations that benchmarks/evidence.py gives every method (its `demonstrations(task, n)`:
n scripted episodes from reset seeds 1000, 1001, ...) to an .npz of plain arrays. `serve` builds envs with
evidence.py's `make_env(task)` (the same env ids and task wrappers, PointMaze's dict observation flattened) and steps
them for the reference driver (benchmarks/reference/driver.py, in the reference venv, which cannot import the
torch-based sb3_expo) over its stdin/stdout. The driver starts both itself.

Wire format (both directions): a 4-byte big-endian length, then a pickle (protocol 4) of plain Python values only
(lists, floats, bools, strings, None), so the two venvs' numpy versions never meet in a pickle.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import evidence  # noqa: E402  (benchmarks/evidence.py: make_env, demonstrations)
from wire import read_message, write_message  # noqa: E402


def export(task: str, n_demos: int, out: Path) -> None:
    """The evidence suite's demonstrations of `task` (actions in the env's units) and the env's spaces."""
    demos = evidence.demonstrations(task, n_demos)
    env = evidence.make_env(task)
    obs = np.asarray(demos.observations, dtype=np.float64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        observations=obs,
        actions=np.asarray(demos.actions, dtype=np.float64),
        rewards=np.asarray(demos.rewards, dtype=np.float64),
        next_observations=np.asarray(demos.next_observations, dtype=np.float64),
        terminations=np.asarray(demos.terminations, dtype=bool),
        truncations=np.asarray(demos.truncations, dtype=bool),
        action_low=np.asarray(env.action_space.low, dtype=np.float64),
        action_high=np.asarray(env.action_space.high, dtype=np.float64),
        observation_shape=np.asarray(env.observation_space.shape, dtype=np.int64),
        expert_success=np.float64(getattr(demos, "success_rate", np.nan)),
        n_episodes=np.int64(n_demos),
        task=np.str_(task),
    )
    print(f"exported {len(demos)} transitions ({n_demos} episodes of {task}) to {out}", file=sys.stderr)


def serve(task: str, n_envs: int) -> None:
    """Answer the driver's requests: spaces, reset(i, seed), step(i, action), close."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")  # the protocol's channel ...
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # ... and anything the envs print goes to stderr
    inp = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    envs = [evidence.make_env(task) for _ in range(n_envs)]
    while True:
        message = read_message(inp)
        if message is None or message[0] == "close":
            break
        kind = message[0]
        if kind == "spaces":
            env = envs[0]
            spec = env.spec
            reply: Any = dict(
                observation_shape=list(env.observation_space.shape),
                action_low=np.asarray(env.action_space.low, dtype=np.float64).tolist(),
                action_high=np.asarray(env.action_space.high, dtype=np.float64).tolist(),
                max_episode_steps=getattr(spec, "max_episode_steps", None) if spec is not None else None,
            )
        elif kind == "reset":
            _, i, seed = message
            obs, _ = envs[i].reset(seed=seed)
            reply = np.asarray(obs, dtype=np.float64).tolist()
        elif kind == "step":
            _, i, action = message
            env = envs[i]
            obs, reward, terminated, truncated, info = env.step(np.asarray(action, dtype=env.action_space.dtype))
            success = info.get("is_success")
            reply = (
                np.asarray(obs, dtype=np.float64).tolist(),
                float(reward),
                bool(terminated),
                bool(truncated),
                None if success is None else bool(success),
            )
        else:
            reply = ("error", f"unknown request {kind!r}")
        write_message(out, reply)
    for env in envs:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="write a task's demonstrations to an .npz")
    p.add_argument("--task", required=True)
    p.add_argument("--demos", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("serve", help="step a task's envs for the reference driver over stdin/stdout")
    p.add_argument("--task", required=True)
    p.add_argument("--n-envs", type=int, required=True)
    args = parser.parse_args()
    if args.command == "export":
        export(args.task, args.demos, args.out)
    else:
        serve(args.task, args.n_envs)


if __name__ == "__main__":
    main()
