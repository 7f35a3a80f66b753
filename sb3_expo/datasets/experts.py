"""Scripted experts and a recorder that turns their episodes into Transitions (no hub downloads needed)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from sb3_expo.common.transitions import Transitions
from sb3_expo.datasets.two_routes import TwoRoutesExpert

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
    "TwoRoutes-v0": TwoRoutesExpert(),  # two ways to succeed, one chosen at random per episode (multimodal demos)
}


def rollout_episodes(env: gym.Env, expert: Expert, n_episodes: int, seed: int = 0) -> tuple[list[dict], list[bool]]:
    """Roll out `expert` for n episodes: per episode T + 1 observations (arrays or dicts of arrays), T actions,
    rewards, terminations, truncations; and whether each succeeded (info['is_success'], else termination)."""
    episodes, successes = [], []
    if callable(getattr(expert, "reseed", None)):  # an expert with its own randomness draws it from the source's seed
        expert.reseed(seed)
    for episode in range(n_episodes):
        obs, info = env.reset(seed=seed + episode)
        if hasattr(expert, "reset"):  # after the env's reset: an expert may plan from (or set up) the new episode
            expert.reset()
        keys = ("observations", "actions", "rewards", "terminations", "truncations", "successes")
        steps: dict[str, list] = {k: [] for k in keys}
        steps["observations"].append(obs)
        done = terminated = False
        while not done:
            action = expert(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            success = info.get("success", info.get("is_success"))
            for key, value in zip(keys[1:], (action, reward, terminated, truncated, success)):
                steps[key].append(value)
            steps["observations"].append(obs)
            done = terminated or truncated
        if any(s is None for s in steps["successes"]):  # the env reports no success flag
            del steps["successes"]
        observations = steps.pop("observations")
        if isinstance(observations[0], dict):
            stacked = {k: np.array([o[k] for o in observations]) for k in observations[0]}
        else:
            stacked = np.array(observations)
        episodes.append({"observations": stacked, **{k: np.array(v) for k, v in steps.items()}})
        successes.append(bool(info.get("is_success", terminated)))
    return episodes, successes


def episodes_to_transitions(episodes: list[dict], source: str) -> Transitions:
    def obs(index: slice) -> np.ndarray | dict[str, np.ndarray]:
        first = episodes[0]["observations"]
        if isinstance(first, dict):
            return {k: np.concatenate([e["observations"][k][index] for e in episodes]) for k in first}
        return np.concatenate([e["observations"][index] for e in episodes])

    def column(key: str) -> np.ndarray:
        return np.concatenate([e[key] for e in episodes])

    return Transitions(
        obs(slice(0, -1)),
        column("actions"),
        column("rewards"),
        obs(slice(1, None)),
        column("terminations"),
        column("truncations"),
        source=source,
        successes=column("successes") if all("successes" in e for e in episodes) else None,
    )


def collect_demonstrations(env: gym.Env, expert: Expert, n_episodes: int, seed: int = 0, source: str = "") -> Transitions:
    """Roll out `expert` for n episodes as Transitions; `success_rate` records how often the expert succeeded."""
    episodes, successes = rollout_episodes(env, expert, n_episodes, seed)
    transitions = episodes_to_transitions(
        episodes, source or f"{n_episodes} scripted {env.spec.id if env.spec else 'env'} episodes"
    )
    transitions.success_rate = float(np.mean(successes))  # type: ignore[attr-defined]
    return transitions
