"""load_demonstrations: every demonstration source a user can name, resolved to validated Transitions.

A source is a Transitions object (returned as is), or a string a zoo YAML file can hold:

- ``scripted:<env id>[?episodes=N&seed=S]``: roll out the project's scripted expert for that env (no download);
- ``minari:<dataset id or path>``: a local minari dataset (never downloaded), Dict observations flattened;
- ``robomimic:<file.hdf5>[?n_demos=N&filter_key=K&obs_keys=a,b]``: a robomimic low-dim HDF5 file;
- ``<path>.npz``: arrays observations, actions, rewards, next_observations, terminals[, timeouts] (D4RL-style).

Any source takes ``?reward_shift=X`` (or the keyword), added to every demonstration reward: the same transform
the env's RewardShift wrapper applies online (the reference's AntMaze r - 1); it counts as that wrapper's transform.

Given an env, the demonstrations get what the env's task wrappers do to its online data (common/wrappers.py:
rewards, terminations, observation layouts), then the env's observation layout (Dict observations flattened in the
dataset's key order for a Box space), and are validated against its spaces.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import gymnasium as gym
import numpy as np

from sb3_expo.common.transitions import Transitions
from sb3_expo.common.wrappers import reward_shift_name, transform_demonstrations
from sb3_expo.datasets.experts import EXPERTS, collect_demonstrations


def load_demonstrations(
    source: str | Path | Transitions, env: Any = None, observation_space: gym.Space | None = None, **options: Any
) -> Transitions:
    """Resolve `source` to Transitions: transformed by `env`'s task wrappers and validated against its spaces when an
    env (gym.Env or VecEnv) is given. Dict observations stay dicts for a Dict observation space, else are flattened.
    """
    observation_space = observation_space or (env.observation_space if env is not None else None)
    reward_shift = float(options.pop("reward_shift", 0.0))
    if isinstance(source, Transitions):
        transitions = source
    else:
        text, _, query = str(source).partition("?")
        params = dict(parse_qsl(query))
        reward_shift += float(params.pop("reward_shift", 0.0))
        if params:
            text = f"{text}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        if text.startswith("scripted:"):
            transitions = _scripted(text, **options)
        elif text.startswith("minari:"):
            from sb3_expo.datasets.minari import load_minari

            # with a space to fit: dicts until the task's wrappers and the space have had their say; else flat
            options.setdefault("flatten", observation_space is None)
            transitions = load_minari(text.removeprefix("minari:"), **options)
        elif text.startswith("robomimic:"):
            transitions = _robomimic(text.removeprefix("robomimic:"), **options)
        elif text.endswith(".npz"):
            transitions = _npz(Path(text))
        else:
            raise ValueError(
                f"unknown demonstration source {text!r}: use 'scripted:<env id>?episodes=N' "
                f"(scripted experts: {sorted(EXPERTS)}), 'minari:<dataset id>', 'robomimic:<file.hdf5>' "
                "or a path to an .npz file."
            )
    if reward_shift and reward_shift_name(reward_shift) not in transitions.applied:
        transitions = dataclasses.replace(
            transitions,
            rewards=(transitions.rewards + reward_shift).astype(np.float32),
            applied=(*transitions.applied, reward_shift_name(reward_shift)),
        )
    if env is not None:
        transitions = transform_demonstrations(env, transitions)
    if observation_space is not None:
        transitions = transitions.fit_observations(observation_space)
    if env is not None:
        transitions.validate(env.observation_space, env.action_space)
    return transitions


def _scripted(text: str, **options: Any) -> Transitions:
    env_id, _, query = text.removeprefix("scripted:").partition("?")
    params = {**dict(parse_qsl(query)), **options}
    if env_id not in EXPERTS:
        raise ValueError(f"no scripted expert for {env_id!r}; available: {sorted(EXPERTS)}.")
    episodes, seed = int(params.get("episodes", 5)), int(params.get("seed", 1000))
    return collect_demonstrations(gym.make(env_id), EXPERTS[env_id], episodes, seed=seed, source=text)


def _robomimic(text: str, **options: Any) -> Transitions:
    from sb3_expo.datasets.robomimic import load_robomimic

    path, _, query = text.partition("?")
    params: dict[str, Any] = {**dict(parse_qsl(query)), **options}
    if "n_demos" in params:
        params["n_demos"] = int(params["n_demos"])
    if isinstance(params.get("obs_keys"), str):
        params["obs_keys"] = tuple(params["obs_keys"].split(","))
    return load_robomimic(path, **params)


def _npz(path: Path) -> Transitions:
    if not path.exists():
        raise FileNotFoundError(f"demonstration file {path} does not exist.")
    data = np.load(path)
    required = {"observations", "actions", "rewards", "next_observations", "terminals"}
    missing = required - set(data.files)
    if missing:
        raise ValueError(f"{path} lacks the arrays {sorted(missing)}; it has {sorted(data.files)}.")
    return Transitions(
        data["observations"],
        data["actions"],
        data["rewards"],
        data["next_observations"],
        data["terminals"],
        data["timeouts"] if "timeouts" in data.files else None,
        source=str(path),
    )
