"""minari datasets -> Transitions (local only: this project never downloads from a hub at run time)."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_expo.common.transitions import Transitions


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
        command = (
            f"python -m sb3_expo.datasets.generate {task}"
            if str(source).startswith("sb3-expo/")
            else ("python -m sb3_expo.datasets.generate --help")
        )
        raise FileNotFoundError(
            f"minari dataset {str(source)!r} is not on this machine: looked in {where} "
            f"(MINARI_DATASETS_PATH={os.environ.get('MINARI_DATASETS_PATH', 'unset, so ~/.minari/datasets')}). "
            f"Nothing is downloaded at run time: generate a local one ({command}) or copy the dataset folder there."
        ) from None


def load_minari(source: str | Path, flatten: bool = True) -> Transitions:
    """All episodes of a minari dataset as transitions.

    Terminations stop the bootstrap, truncations do not. Dict observations are flattened in the dataset's
    observation-space key order (what gymnasium's FlattenObservation does), or kept as dicts (flatten=False)
    for MultiInputPolicy.
    """
    dataset = open_minari(source)
    obs_space = dataset.observation_space
    columns: dict[str, list] = {k: [] for k in ("obs", "next_obs", "actions", "rewards", "terminations", "truncations")}
    for episode in dataset.iterate_episodes():
        obs = _obs_array(episode.observations, obs_space, flatten)
        columns["obs"].append(_slice(obs, slice(0, -1)))
        columns["next_obs"].append(_slice(obs, slice(1, None)))
        columns["actions"].append(np.asarray(episode.actions))
        columns["rewards"].append(np.asarray(episode.rewards))
        columns["terminations"].append(np.asarray(episode.terminations))
        columns["truncations"].append(np.asarray(episode.truncations))
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
    )


def minari_env(source: str | Path, eval_env: bool = False) -> gym.Env:
    """The env the dataset was recorded in (minari's recover_environment)."""
    return open_minari(source).recover_environment(eval_env=eval_env)


def _obs_array(obs, space: spaces.Space, flatten: bool):
    if not isinstance(space, spaces.Dict):
        return np.asarray(obs)
    if not flatten:
        return {key: np.asarray(obs[key]) for key in space.keys()}
    return np.concatenate([np.asarray(obs[key]).reshape(len(obs[key]), -1) for key in space.keys()], axis=1)


def _slice(obs, index: slice):
    return {k: v[index] for k, v in obs.items()} if isinstance(obs, dict) else obs[index]


def _concat(parts: list):
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)
