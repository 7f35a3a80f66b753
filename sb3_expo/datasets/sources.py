"""load_demonstrations: every demonstration source a user can name, resolved to validated Transitions.

A source is a Transitions object (returned as is), or a string a zoo YAML file can hold:

- ``scripted:<env id>[?episodes=N&seed=S]``: roll out the project's scripted expert for that env (no download);
- ``<path>.npz``: arrays observations, actions, rewards, next_observations, terminals[, timeouts] (D4RL-style).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import gymnasium as gym
import numpy as np

from sb3_expo.common.transitions import Transitions
from sb3_expo.datasets.experts import EXPERTS, collect_demonstrations


def load_demonstrations(source: str | Path | Transitions, env: gym.Env | None = None, **options: Any) -> Transitions:
    """Resolve `source` to Transitions; validated against `env`'s spaces when an env is given."""
    if isinstance(source, Transitions):
        transitions = source
    else:
        text = str(source)
        if text.startswith("scripted:"):
            transitions = _scripted(text, **options)
        elif text.endswith(".npz"):
            transitions = _npz(Path(text))
        else:
            raise ValueError(
                f"unknown demonstration source {text!r}: use 'scripted:<env id>?episodes=N' "
                f"(scripted experts: {sorted(EXPERTS)}) or a path to an .npz file."
            )
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
