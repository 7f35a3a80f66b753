"""TwoRoutes-v0: a task whose demonstrations solve it in two clearly different ways, at random.

A point in the plane starts below a square obstacle and must reach a goal above it. Two equally short routes lead
around the obstacle, left and right; the scripted expert picks one per episode by a coin flip that the observation
does not show. At the start the demonstrated actions are therefore two separate modes for the same state: a Gaussian
policy cloned from them averages the modes, heads straight up into the obstacle and stays there; a policy that can
represent both (a diffusion policy) picks one and goes round. After the first steps the position tells the routes
apart, so each mode is easy on its own.

Observation: the position (x, y). Action: a velocity in [-1, 1]^2, times 0.1 per step; a step that would enter the
obstacle leaves the point where it is. Reward 1 and termination at the goal (within 0.15), else 0; 60 steps.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

START, GOAL = np.array([0.0, -1.0]), np.array([0.0, 1.0])
HALF_WIDTH, STEP, GOAL_RADIUS, BOUND = 0.4, 0.1, 0.15, 1.2


class TwoRoutesEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-BOUND, BOUND, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.position = START.copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = START + self.np_random.uniform(-0.02, 0.02, 2)
        return self.position.astype(np.float32), {}

    def step(self, action):
        moved = np.clip(self.position + STEP * np.clip(action, -1.0, 1.0), -BOUND, BOUND)
        if not blocked(moved):
            self.position = moved
        success = bool(np.linalg.norm(self.position - GOAL) < GOAL_RADIUS)
        return self.position.astype(np.float32), float(success), success, False, {"is_success": success}


def blocked(position: np.ndarray) -> bool:
    return bool(np.all(np.abs(position) < HALF_WIDTH))


class TwoRoutesExpert:
    """Goes round the obstacle on the left or on the right, chosen per episode by its own coin (seeded by the
    demonstration source's seed), through two waypoints at full speed."""

    def __init__(self, seed: int = 0) -> None:
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.side = float(self.rng.choice([-1.0, 1.0]))
        self.waypoints = [np.array([0.6 * self.side, -0.6]), np.array([0.6 * self.side, 0.6]), GOAL]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        while len(self.waypoints) > 1 and np.linalg.norm(self.waypoints[0] - obs) < STEP:
            self.waypoints.pop(0)
        direction = self.waypoints[0] - obs
        return (direction / max(np.abs(direction).max(), 1e-6)).astype(np.float32)  # full speed on the larger axis

    @staticmethod
    def route(observations: np.ndarray) -> np.ndarray:
        """-1 (left) or +1 (right) per trajectory of positions [T, 2]: the side of its widest excursion."""
        return np.sign(observations[np.abs(observations[:, 0]).argmax(), 0])


if "TwoRoutes-v0" not in gym.registry:
    gym.register("TwoRoutes-v0", entry_point="sb3_expo.datasets.two_routes:TwoRoutesEnv", max_episode_steps=60)
