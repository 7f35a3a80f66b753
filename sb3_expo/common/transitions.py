"""Transitions: the one record of demonstration data, checked once against the env's spaces."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

Obs = np.ndarray | dict[str, np.ndarray]


@dataclass
class Transitions:
    """Demonstrations as flat arrays, one row per transition.

    Actions are in the env's own units (what ``env.step`` takes); the buffer scales them to [-1, 1] as SB3
    does. ``terminations`` stop the bootstrap; ``truncations`` (time limits) do not, and only mark episode
    ends so that errors can name the episode and step. ``successes`` is the task's success flag after each step
    when the source records it (info["success"]); task wrappers use it to give demonstrations the same rewards and
    terminations as online data. ``applied`` names the task transforms already applied (each is applied once).
    """

    observations: Obs
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: Obs
    terminations: np.ndarray
    truncations: np.ndarray | None = None
    source: str = field(default="demonstrations", compare=False)
    successes: np.ndarray | None = None
    applied: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        self.actions = np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards, dtype=np.float32).reshape(-1)
        self.terminations = np.asarray(self.terminations).reshape(-1).astype(bool)
        n = len(self.rewards)
        self.truncations = (
            np.zeros(n, dtype=bool) if self.truncations is None else np.asarray(self.truncations).reshape(-1).astype(bool)
        )
        if self.successes is not None:
            self.successes = np.asarray(self.successes).reshape(-1).astype(bool)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def n_episodes(self) -> int:
        ends = self.terminations | self.truncations
        return int(ends.sum()) + int(len(self) > 0 and not ends[-1])

    def locate(self, row: int) -> str:
        """'episode E step S of SOURCE' for a row index, for error messages."""
        ends = (self.terminations | self.truncations)[:row]
        episode = int(ends.sum())
        last_end = np.flatnonzero(ends)
        step = row - (int(last_end[-1]) + 1 if len(last_end) else 0)
        return f"episode {episode} step {step} of {self.source}"

    def first_episodes(self, n_episodes: int) -> Transitions:
        """The first n episodes (the paper keeps the first 10 Lift demonstrations, for example)."""
        ends = np.flatnonzero(self.terminations | self.truncations)
        stop = len(self) if n_episodes >= len(ends) + 1 else int(ends[n_episodes - 1]) + 1
        return self[:stop]

    def __getitem__(self, index: slice | np.ndarray) -> Transitions:
        return Transitions(
            take(self.observations, index),
            self.actions[index],
            self.rewards[index],
            take(self.next_observations, index),
            self.terminations[index],
            self.truncations[index],
            source=self.source,
            successes=None if self.successes is None else self.successes[index],
            applied=self.applied,
        )

    def fit_observations(self, observation_space: spaces.Space) -> Transitions:
        """Dict observations flattened (in their key order) for a Box observation space; otherwise unchanged."""
        if not isinstance(self.observations, dict) or isinstance(observation_space, spaces.Dict):
            return self

        def flat(obs: dict[str, np.ndarray]) -> np.ndarray:
            return np.concatenate([np.asarray(v).reshape(len(self), -1) for v in obs.values()], axis=1)

        return dataclasses.replace(self, observations=flat(self.observations), next_observations=flat(self.next_observations))

    def validate(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise ValueError naming the problem and the fix if these transitions cannot feed this env."""
        n = len(self)
        if n == 0:
            raise ValueError(f"{self.source} holds no transitions: give at least one demonstration episode.")
        for name in ("actions", "terminations", "truncations") + (("successes",) if self.successes is not None else ()):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.source}: {name} has {len(getattr(self, name))} rows but rewards has {n}.")
        for name in ("observations", "next_observations"):
            self._check_obs(name, getattr(self, name), observation_space)
        if not isinstance(action_space, spaces.Box):
            raise ValueError(f"demonstrations need a Box action space, the env has {action_space}.")
        if self.actions.shape[1:] != action_space.shape:
            raise ValueError(
                f"{self.source}: actions have shape {self.actions.shape[1:]} per step but the env's action space "
                f"has shape {action_space.shape}; the demonstrations were recorded for another env."
            )
        self._check_finite("actions", self.actions)
        self._check_finite("rewards", self.rewards)
        low = np.broadcast_to(action_space.low, self.actions.shape)
        high = np.broadcast_to(action_space.high, self.actions.shape)
        outside = (self.actions < low - 1e-6) | (self.actions > high + 1e-6)
        if outside.any():
            row, col = np.argwhere(outside)[0][:2]
            raise ValueError(
                f"demonstration action {self.actions[row].reshape(-1)[col]:.4g} at {self.locate(int(row))} is outside "
                f"the action space [{action_space.low.reshape(-1)[col]:.4g}, {action_space.high.reshape(-1)[col]:.4g}] "
                f"(dimension {col}); record demonstrations in the env's own action units, or clip them."
            )

    def _check_obs(self, name: str, obs: Obs, space: spaces.Space) -> None:
        if isinstance(space, spaces.Dict):
            if not isinstance(obs, dict):
                raise ValueError(f"{self.source}: the env has Dict observations {list(space.keys())} but {name} is an array.")
            missing = set(space.keys()) - set(obs)
            if missing:
                raise ValueError(f"{self.source}: {name} lacks the observation keys {sorted(missing)} of the env.")
            for key, sub in space.items():
                self._check_array(f"{name}[{key!r}]", np.asarray(obs[key]), sub.shape)
        else:
            if isinstance(obs, dict):
                raise ValueError(f"{self.source}: {name} is a dict but the env's observations are {space}; flatten them.")
            self._check_array(name, np.asarray(obs), space.shape)

    def _check_array(self, name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
        if len(array) != len(self):
            raise ValueError(f"{self.source}: {name} has {len(array)} rows but rewards has {len(self)}.")
        if array.shape[1:] != tuple(shape):
            raise ValueError(
                f"{self.source}: {name} have shape {array.shape[1:]} per step but the env's observation space has "
                f"shape {tuple(shape)}; the demonstrations were recorded for another env or observation keys."
            )
        self._check_finite(name, array)

    def _check_finite(self, name: str, array: np.ndarray) -> None:
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{self.source}: {name} at {self.locate(row)} is not finite (NaN or inf); "
                "drop or repair that episode before loading."
            )


def take(obs: Any, index: Any) -> Any:
    """obs[index], key by key for Dict observations (numpy arrays or torch tensors alike)."""
    return {k: v[index] for k, v in obs.items()} if isinstance(obs, dict) else obs[index]
