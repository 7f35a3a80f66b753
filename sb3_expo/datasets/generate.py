"""Generate demonstrations locally with the project's scripted experts (this machine has no hub access).

    python -m sb3_expo.datasets.generate pointmaze-umaze --episodes 10        # minari dataset sb3-expo/pointmaze-umaze-v0
    python -m sb3_expo.datasets.generate mountaincar --episodes 5 --out mc.npz
    python -m sb3_expo.datasets.generate lift --episodes 10 --out lift.hdf5     # robomimic file (needs robosuite)
    python -m sb3_expo.datasets.generate antmaze-large-format --dataset-id D4RL/antmaze/large-diverse-v1

minari datasets go to MINARI_DATASETS_PATH (default ~/.minari/datasets) and are named in YAML files as
'minari:sb3-expo/<task>-v0'; --out FILE.npz writes plain arrays instead. Prints the expert's success rate.
The *-format tasks record the real env (random or zero actions) in the layout of the official D4RL minari datasets,
infos['success'] and the evaluation env included, to check loaders and zoo entries without a download.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_expo.datasets.experts import Expert, episodes_to_transitions, mountain_car_expert, pendulum_expert, rollout_episodes

Recording = tuple[gym.Env, Expert, Any]  # the env, its expert, and the dataset's evaluation env spec (None: the same)


def _pointmaze(env_id: str) -> Callable[[], Recording]:
    def make() -> Recording:
        from sb3_expo.datasets.pointmaze import PointMazeExpert, make_pointmaze

        env = make_pointmaze(env_id)
        return env, PointMazeExpert(env), None

    return make


def _lift() -> Recording:
    from sb3_expo.datasets.robosuite_tasks import LiftExpert, RobosuiteEnv

    env = RobosuiteEnv("Lift")
    return env, LiftExpert(env), None


def _format(name: str) -> Callable[[], Recording]:
    def make() -> Recording:
        from sb3_expo.datasets import tasks

        return getattr(tasks, name)()

    return make


TASKS: dict[str, Callable[[], Recording]] = {
    "mountaincar": lambda: (gym.make("MountainCarContinuous-v0"), mountain_car_expert, None),
    "pendulum": lambda: (gym.make("Pendulum-v1"), pendulum_expert, None),
    "pointmaze-umaze": _pointmaze("PointMaze_UMaze-v3"),
    "pointmaze-medium": _pointmaze("PointMaze_Medium-v3"),
    "lift": _lift,
    "adroit-pen-format": _format("adroit_pen_format"),
    "antmaze-large-format": _format("antmaze_large_format"),
}


def generate(task: str, episodes: int, seed: int = 0, out: Path | None = None, dataset_id: str | None = None) -> str:
    """Record `episodes` expert episodes; write a minari dataset (default) or an .npz file; return where."""
    env, expert, eval_spec = TASKS[task]()
    recorded, successes = rollout_episodes(env, expert, episodes, seed)
    print(
        f"{task}: {episodes} episodes, {sum(len(e['rewards']) for e in recorded)} steps, "
        f"expert success {np.mean(successes):.0%}"
    )
    if task == "lift":
        from sb3_expo.datasets.robosuite_tasks import write_robomimic

        if out is None or not str(out).endswith(".hdf5"):
            raise ValueError("lift writes a robomimic file: give --out FILE.hdf5")
        write_robomimic(str(out), env, recorded)  # type: ignore[arg-type]
        return str(out)
    if out is not None and str(out).endswith(".npz"):
        t = episodes_to_transitions(recorded, str(out))
        if isinstance(t.observations, dict):
            raise ValueError(f"{task} has Dict observations: write it as a minari dataset (leave out --out).")
        np.savez(
            out,
            observations=t.observations,
            actions=t.actions,
            rewards=t.rewards,
            next_observations=t.next_observations,
            terminals=t.terminations,
            timeouts=t.truncations,
        )
        return str(out)
    import minari
    from minari.data_collector import EpisodeBuffer

    dataset_id = dataset_id or f"sb3-expo/{task}-v0"
    buffers = [
        EpisodeBuffer(
            observations=e["observations"],
            actions=e["actions"],
            rewards=list(e["rewards"]),
            terminations=list(e["terminations"]),
            truncations=list(e["truncations"]),
            # one entry per observation, the reset's first (minari's layout): the success flag after each step
            infos={"success": np.array([False, *e["successes"]])} if "successes" in e else {},
        )
        for e in recorded
    ]
    minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env,
        eval_env=eval_spec,
        algorithm_name=f"scripted {task} expert",
        description=f"sb3-expo scripted expert, success {np.mean(successes):.0%}",
    )
    return dataset_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="an .npz file instead of a minari dataset")
    parser.add_argument("--dataset-id", help="minari dataset id (default sb3-expo/<task>-v0)")
    args = parser.parse_args()
    print(f"written: {generate(args.task, args.episodes, args.seed, args.out, args.dataset_id)}")


if __name__ == "__main__":
    main()
