"""Scripted PointMaze expert: shortest path over the maze's free cells (BFS), then PD control to each waypoint.

This is how the public D4RL pointmaze data were made (a planner plus a PD controller). Needs gymnasium-robotics.
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np


def make_pointmaze(env_id: str = "PointMaze_UMaze-v3", **kwargs) -> gym.Env:
    """The maze env with the goal terminating the episode (sparse reward, success in info['is_success'])."""
    import gymnasium_robotics

    from sb3_expo.common.wrappers import SuccessInfo

    gym.register_envs(gymnasium_robotics)
    return SuccessInfo(gym.make(env_id, continuing_task=False, **kwargs), key="success")


class PointMazeExpert:
    """Callable policy obs -> action for one maze env; re-plans whenever the goal changes."""

    def __init__(self, env: gym.Env, kp: float = 10.0, kd: float = 1.0, reach: float = 0.25):
        self.maze = env.unwrapped.maze
        self.kp, self.kd, self.reach = kp, kd, reach
        self._goal: np.ndarray | None = None
        self._waypoints: list[np.ndarray] = []

    def reset(self) -> None:
        """Forget the plan (a new episode may start elsewhere with the same goal)."""
        self._goal, self._waypoints = None, []

    def _plan(self, position: np.ndarray, goal: np.ndarray) -> list[np.ndarray]:
        grid = np.asarray(self.maze.maze_map)
        start = tuple(int(v) for v in self.maze.cell_xy_to_rowcol(position))
        target = tuple(int(v) for v in self.maze.cell_xy_to_rowcol(goal))
        previous = {start: start}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == target:
                break
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                nxt = (cell[0] + dr, cell[1] + dc)
                if nxt not in previous and 0 <= nxt[0] < grid.shape[0] and 0 <= nxt[1] < grid.shape[1] and grid[nxt] != 1:
                    previous[nxt] = cell
                    queue.append(nxt)
        path, cell = [], target
        while cell != start:
            path.append(cell)
            cell = previous[cell]
        waypoints = [np.asarray(self.maze.cell_rowcol_to_xy(np.array(c)), dtype=float) for c in reversed(path[1:])]
        return [*waypoints, np.asarray(goal, dtype=float)]

    def __call__(self, obs: dict) -> np.ndarray:
        position, velocity = obs["observation"][:2], obs["observation"][2:]
        goal = obs["desired_goal"]
        if self._goal is None or not np.allclose(goal, self._goal):
            self._goal, self._waypoints = goal.copy(), self._plan(position, goal)
        while len(self._waypoints) > 1 and np.linalg.norm(self._waypoints[0] - position) < self.reach:
            self._waypoints.pop(0)
        action = self.kp * (self._waypoints[0] - position) - self.kd * velocity
        return np.clip(action, -1.0, 1.0).astype(np.float32)
