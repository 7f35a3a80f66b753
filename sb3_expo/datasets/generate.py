"""Generate demonstrations locally with the project's scripted experts (this machine has no hub access).

    python -m sb3_expo.datasets.generate pointmaze-umaze --episodes 10        # minari dataset sb3-expo/pointmaze-umaze-v0
    python -m sb3_expo.datasets.generate mountaincar --episodes 5 --out mc.npz
    python -m sb3_expo.datasets.generate lift --episodes 10 --out lift.hdf5     # robomimic file (needs robosuite)

minari datasets go to MINARI_DATASETS_PATH (default ~/.minari/datasets) and are named in YAML files as
'minari:sb3-expo/<task>-v0'; --out FILE.npz writes plain arrays instead. Prints the expert's success rate.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from sb3_expo.datasets.experts import Expert, episodes_to_transitions, mountain_car_expert, pendulum_expert, rollout_episodes


def _pointmaze(env_id: str) -> Callable[[], tuple[gym.Env, Expert]]:
    def make() -> tuple[gym.Env, Expert]:
        from sb3_expo.datasets.pointmaze import PointMazeExpert, make_pointmaze

        env = make_pointmaze(env_id)
        return env, PointMazeExpert(env)

    return make


def _lift() -> tuple[gym.Env, Expert]:
    from sb3_expo.datasets.robosuite_tasks import LiftExpert, RobosuiteEnv

    env = RobosuiteEnv("Lift")
    return env, LiftExpert(env)


TASKS: dict[str, Callable[[], tuple[gym.Env, Expert]]] = {
    "mountaincar": lambda: (gym.make("MountainCarContinuous-v0"), mountain_car_expert),
    "pendulum": lambda: (gym.make("Pendulum-v1"), pendulum_expert),
    "pointmaze-umaze": _pointmaze("PointMaze_UMaze-v3"),
    "pointmaze-medium": _pointmaze("PointMaze_Medium-v3"),
    "lift": _lift,
}


def generate(task: str, episodes: int, seed: int = 0, out: Path | None = None, dataset_id: str | None = None) -> str:
    """Record `episodes` expert episodes; write a minari dataset (default) or an .npz file; return where."""
    env, expert = TASKS[task]()
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
            infos={},
        )
        for e in recorded
    ]
    minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env,
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
