"""minari datasets -> Transitions (local only: this project never downloads from a hub at run time)."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_expo.common.transitions import Transitions, take


def open_minari(source: str | Path):
    """A MinariDataset from a dataset id (looked up under MINARI_DATASETS_PATH, never downloaded) or a path."""
    import minari
    from minari.storage.datasets_root_dir import get_dataset_path

    path = Path(source)
    for candidate in (path / "data", path):
        if (candidate / "metadata.json").exists() or (candidate / "main_data.hdf5").exists():
            return minari.MinariDataset(str(candidate))
    try:
        return minari.load_dataset(str(source), download=False)
    except FileNotFoundError:
        where = get_dataset_path(str(source))
        task = str(source).removeprefix("sb3-expo/").rsplit("-v", 1)[0]
        if str(source).startswith("sb3-expo/"):
            remedy = f"generate a local one (python -m sb3_expo.datasets.generate {task}) or copy the dataset folder there"
        else:  # a published dataset: fetched elsewhere (`minari download <id>`) and copied; or a format-only stand-in
            kind = "antmaze-large-format" if "antmaze" in str(source) else "adroit-pen-format"
            remedy = (
                f"copy its folder there (`minari download {source}` on a machine with internet), or, to try the pipeline "
                f"without the real data, generate a format-only stand-in (python -m sb3_expo.datasets.generate {kind} "
                f"--dataset-id {source})"
            )
        raise FileNotFoundError(
            f"minari dataset {str(source)!r} is not on this machine: looked in {where} "
            f"(MINARI_DATASETS_PATH={os.environ.get('MINARI_DATASETS_PATH', 'unset, so ~/.minari/datasets')}). "
            f"Nothing is downloaded at run time: {remedy}."
        ) from None


def load_minari(source: str | Path, flatten: bool = True) -> Transitions:
    """All episodes of a minari dataset as transitions.

    Terminations stop the bootstrap, truncations do not. Dict observations are flattened in the dataset's
    observation-space key order (what gymnasium's FlattenObservation does), or kept as dicts (flatten=False)
    for MultiInputPolicy and for task wrappers that build observations from them. infos["success"], when recorded,
    becomes the per-step success flag.
    """
    dataset = open_minari(source)
    obs_space = dataset.observation_space
    columns: dict[str, list] = {k: [] for k in ("obs", "next_obs", "actions", "rewards", "terminations", "truncations")}
    successes: list[np.ndarray] | None = []
    for episode in dataset.iterate_episodes():
        obs = _obs_array(episode.observations, obs_space, flatten)
        columns["obs"].append(take(obs, slice(0, -1)))
        columns["next_obs"].append(take(obs, slice(1, None)))
        columns["actions"].append(np.asarray(episode.actions))
        columns["rewards"].append(np.asarray(episode.rewards))
        columns["terminations"].append(np.asarray(episode.terminations))
        columns["truncations"].append(np.asarray(episode.truncations))
        success = _step_successes(episode)
        successes = None if successes is None or success is None else [*successes, success]
    if not columns["rewards"]:
        raise ValueError(f"minari dataset {str(source)!r} holds no episodes.")
    return Transitions(
        _concat(columns["obs"]),
        np.concatenate(columns["actions"]),
        np.concatenate(columns["rewards"]),
        _concat(columns["next_obs"]),
        np.concatenate(columns["terminations"]),
        np.concatenate(columns["truncations"]),
        source=f"minari:{source}",
        successes=None if successes is None else np.concatenate(successes),
    )


def _step_successes(episode) -> np.ndarray | None:
    """The success flag after each step: infos hold one entry per observation (the reset's first) or per step."""
    infos = episode.infos or {}
    if "success" not in infos:
        return None
    flags, steps = np.asarray(infos["success"]).astype(bool).reshape(-1), len(episode.rewards)
    return flags[1:] if len(flags) == steps + 1 else flags[:steps]


def minari_env(source: str | Path, eval_env: bool = False) -> gym.Env:
    """The env the dataset was recorded in (minari's recover_environment)."""
    return open_minari(source).recover_environment(eval_env=eval_env)


def _obs_array(obs, space: spaces.Space, flatten: bool):
    if not isinstance(space, spaces.Dict):
        return np.asarray(obs)
    if not flatten:
        return {key: np.asarray(obs[key]) for key in space.keys()}
    return np.concatenate([np.asarray(obs[key]).reshape(len(obs[key]), -1) for key in space.keys()], axis=1)


def _concat(parts: list):
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)
