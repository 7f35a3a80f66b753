"""Scripted experts and a recorder that turns their episodes into Transitions (no hub downloads needed)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from sb3_expo.common.transitions import Transitions

Expert = Callable[[np.ndarray], np.ndarray]


def mountain_car_expert(obs: np.ndarray) -> np.ndarray:
    """MountainCarContinuous: push in the direction of motion (pumps energy; reaches the flag in ~100 steps)."""
    velocity = obs[1]
    return np.array([1.0 if velocity >= 0 else -1.0], dtype=np.float32)


def pendulum_expert(obs: np.ndarray) -> np.ndarray:
    """Pendulum-v1: energy pumping far from the top, PD control near it (mean return about -150)."""
    cos, sin, velocity = obs
    if cos > 0.85:
        torque = -(12.0 * np.arctan2(sin, cos) + 2.5 * velocity)
    else:
        energy = 0.5 * velocity**2 + 10.0 * (cos - 1.0)  # 0 when upright at rest (g = 10, m = l = 1)
        torque = 2.0 * np.sign(velocity) * (1.0 if energy < 0 else -1.0) if abs(velocity) > 1e-3 else 2.0
    return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)


EXPERTS: dict[str, Expert] = {
    "MountainCarContinuous-v0": mountain_car_expert,
    "Pendulum-v1": pendulum_expert,
}


def collect_demonstrations(env: gym.Env, expert: Expert, n_episodes: int, seed: int = 0, source: str = "") -> Transitions:
    """Roll out `expert` for n episodes; returns the transitions and records each episode's success."""
    columns: dict[str, list] = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminations", "truncations")}
    successes = []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = expert(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            for key, value in zip(columns, (obs, action, reward, next_obs, terminated, truncated)):
                columns[key].append(value)
            obs, done = next_obs, terminated or truncated
        successes.append(bool(info.get("is_success", terminated)))
    transitions = Transitions(
        np.array(columns["obs"]),
        np.array(columns["actions"]),
        np.array(columns["rewards"]),
        np.array(columns["next_obs"]),
        np.array(columns["terminations"]),
        np.array(columns["truncations"]),
        source=source or f"{n_episodes} scripted {env.spec.id if env.spec else 'env'} episodes",
    )
    transitions.success_rate = float(np.mean(successes))  # type: ignore[attr-defined]
    return transitions
