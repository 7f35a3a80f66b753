"""Task wrappers: success signals, reward transforms and observation layouts, applied alike to online data and
demonstrations.

A task is one thing: its env, its wrappers, and the same transformation of its demonstrations. Every wrapper here
that changes what the agent sees online also says what it does to demonstrations (`demonstration_transform`), and
`transform_demonstrations(env, transitions)` applies all of an env's wrappers to them, innermost first, each once
(Transitions.applied records them). EXPO calls it on its demonstrations, so a zoo entry cannot apply a wrapper to
online data without applying it to the demonstrations too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_expo.common.transitions import Transitions


class DemonstrationTransform:
    """Mixin of the task wrappers: `demonstration_transform` is this wrapper's change to demonstrations."""

    env: gym.Env

    def demonstration_transform(self, transitions: Transitions) -> Transitions:
        return transitions

    def transform_name(self) -> str:
        return type(self).__name__

    def transform_demonstrations(self, transitions: Transitions) -> Transitions:
        """This wrapper's transform after those of the wrappers inside it (the order online data goes through)."""
        try:
            inner = self.env.get_wrapper_attr("transform_demonstrations")
        except AttributeError:
            inner = None
        if inner is not None:
            transitions = inner(transitions)
        name = self.transform_name()
        if name in transitions.applied:
            return transitions
        transformed = self.demonstration_transform(transitions)
        return dataclasses.replace(transformed, applied=(*transformed.applied, name))


def transform_demonstrations(env: Any, transitions: Transitions) -> Transitions:
    """The demonstrations as the env's task wrappers transform its online data (a gym.Env or an SB3 VecEnv)."""
    from stable_baselines3.common.vec_env import VecEnv

    if isinstance(env, VecEnv):
        if not env.has_attr("transform_demonstrations"):
            return transitions
        return env.env_method("transform_demonstrations", transitions, indices=[0])[0]
    try:
        return env.get_wrapper_attr("transform_demonstrations")(transitions)
    except AttributeError:
        return transitions


def _require_successes(transitions: Transitions, wrapper: str) -> np.ndarray:
    if transitions.successes is None:
        raise ValueError(
            f"{wrapper} needs the task's success flag at every demonstration step to treat {transitions.source} as it "
            "treats online data, but the source records none (minari: infos['success']). Record it, or drop the wrapper."
        )
    return transitions.successes


class SuccessInfo(DemonstrationTransform, gym.Wrapper):
    """Report the task's own success flag as info['is_success'] (what SB3's EvalCallback reads) and, by default, end
    the episode on success (maze goal reached, robosuite _check_success). Adroit runs its full length instead
    (terminate_on_success=False). Demonstrations with a recorded success flag terminate where it is set, as online."""

    def __init__(self, env: gym.Env, key: str = "success", terminate_on_success: bool = True):
        super().__init__(env)
        self.key, self.terminate_on_success = key, terminate_on_success

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        success = bool(info.get(self.key, False))
        info["is_success"] = success
        return obs, reward, terminated or (success and self.terminate_on_success), truncated, info

    def transform_name(self) -> str:
        return f"SuccessInfo(terminate_on_success={self.terminate_on_success})"

    def demonstration_transform(self, transitions: Transitions) -> Transitions:
        if not self.terminate_on_success or transitions.successes is None:
            return transitions  # recorded without a success flag: their terminations stand as recorded
        return dataclasses.replace(transitions, terminations=transitions.terminations | transitions.successes)


class RewardShift(DemonstrationTransform, gym.RewardWrapper):
    """r + shift on every step (the reference's AntMaze r - 1: sparse 0/1 becomes -1/0), demonstrations included."""

    def __init__(self, env: gym.Env, shift: float = -1.0):
        super().__init__(env)
        self.shift = float(shift)

    def reward(self, reward: float) -> float:
        return reward + self.shift

    def transform_name(self) -> str:
        return reward_shift_name(self.shift)

    def demonstration_transform(self, transitions: Transitions) -> Transitions:
        return dataclasses.replace(transitions, rewards=(transitions.rewards + self.shift).astype(np.float32))


def reward_shift_name(shift: float) -> str:
    """The name both RewardShift and load_demonstrations(..., reward_shift=) record, so the shift is applied once."""
    return f"RewardShift({float(shift)})"


class BinarySuccessReward(DemonstrationTransform, gym.Wrapper):
    """Adroit's binary reward, success - 1 per step (0 when solved, -1 otherwise), for demonstrations too: the
    paper uses the sparse reward for offline and online data alike, not D4RL's dense shaped one."""

    def __init__(self, env: gym.Env, key: str = "success"):
        super().__init__(env)
        self.key = key

    def step(self, action: Any):
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float(bool(info.get(self.key, False))) - 1.0, terminated, truncated, info

    def demonstration_transform(self, transitions: Transitions) -> Transitions:
        successes = _require_successes(transitions, "BinarySuccessReward")
        return dataclasses.replace(transitions, rewards=successes.astype(np.float32) - 1.0)


class SolvedFraction(gym.Wrapper):
    """info['solved_fraction']: the fraction of this episode's steps so far at which the task is solved (the paper's
    Adroit metric, read at the episode's last step). Log it with monitor_kwargs info_keywords; changes no data."""

    def __init__(self, env: gym.Env, key: str = "success"):
        super().__init__(env)
        self.key, self._solved, self._steps = key, 0, 0

    def reset(self, **kwargs: Any):
        self._solved = self._steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        self._solved += int(bool(info.get(self.key, False)))
        info["solved_fraction"] = self._solved / self._steps
        return obs, reward, terminated, truncated, info


class D4RLAntMazeObservation(DemonstrationTransform, gym.ObservationWrapper):
    """D4RL's 29-dimensional AntMaze observation: the ant's (x, y) (gymnasium-robotics' achieved_goal) followed by the
    other 27 coordinates; the goal is not observed (D4RL antmaze has one fixed goal). Demonstrations alike."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        size = space["achieved_goal"].shape[0] + space["observation"].shape[0]
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float64)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([observation["achieved_goal"], observation["observation"]], axis=-1)

    def demonstration_transform(self, transitions: Transitions) -> Transitions:
        if not isinstance(transitions.observations, dict):
            raise ValueError(
                f"D4RLAntMazeObservation builds observations from the dataset's dict observations, but "
                f"{transitions.source} has flat ones: load it as recorded (load_demonstrations keeps dicts until the end)."
            )
        return dataclasses.replace(
            transitions,
            observations=self.observation(transitions.observations),
            next_observations=self.observation(transitions.next_observations),
        )
