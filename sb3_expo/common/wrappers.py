"""Task wrappers: success signals and reward transforms, applied alike to online data and demonstrations."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sb3_expo.common.transitions import Transitions


class SuccessInfo(gym.Wrapper):
    """Report the task's own success flag as info['is_success'] (what SB3's EvalCallback reads) and end the episode
    on success (maze goal reached, robosuite _check_success, Adroit 'success')."""

    def __init__(self, env: gym.Env, key: str = "success", terminate_on_success: bool = True):
        super().__init__(env)
        self.key, self.terminate_on_success = key, terminate_on_success

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        success = bool(info.get(self.key, False))
        info["is_success"] = success
        return obs, reward, terminated or (success and self.terminate_on_success), truncated, info


class RewardShift(gym.RewardWrapper):
    """r + shift on every step (the reference's AntMaze r - 1: sparse 0/1 becomes -1/0)."""

    def __init__(self, env: gym.Env, shift: float = -1.0):
        super().__init__(env)
        self.shift = shift

    def reward(self, reward: float) -> float:
        return reward + self.shift

    def transform(self, transitions: Transitions) -> Transitions:
        """The same shift for demonstrations recorded without this wrapper."""
        transitions.rewards = (transitions.rewards + self.shift).astype(np.float32)
        return transitions


class BinarySuccessReward(gym.Wrapper):
    """Adroit binary reward: success - 1 per step (0 when solved, -1 otherwise)."""

    def __init__(self, env: gym.Env, key: str = "success"):
        super().__init__(env)
        self.key = key

    def step(self, action: Any):
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float(bool(info.get(self.key, False))) - 1.0, terminated, truncated, info
