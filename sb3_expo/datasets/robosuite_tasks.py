"""robosuite tasks as gymnasium envs (robomimic's low-dim observations) and a scripted Lift expert.

Needs the [robomimic] extra: robosuite 1.5.2 installed without its `mink` pin (only an optional humanoid
controller uses it) and mujoco 3.3.7 (4.0 breaks robosuite).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_expo.datasets.robomimic import DEFAULT_OBS_KEYS

ROBOSUITE_KEYS = {"object": "object-state"}  # robomimic's name -> robosuite's
LIFT_KWARGS = dict(robots="Panda", control_freq=20, horizon=400, reward_shaping=False)


class RobosuiteEnv(gym.Env):
    """A robosuite task with robomimic's observation keys concatenated; success terminates (info['is_success']),
    the horizon truncates. Rewards are the task's sparse ones."""

    metadata = {"render_modes": []}

    def __init__(self, env_name: str = "Lift", obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS, **env_kwargs: Any):
        import robosuite

        kwargs = {**LIFT_KWARGS, **env_kwargs, "has_renderer": False, "has_offscreen_renderer": False, "use_camera_obs": False}
        self.env_name, self.obs_keys, self.env_kwargs = env_name, obs_keys, kwargs
        self.env = robosuite.make(env_name, **kwargs)
        obs = self.env.reset()
        size = sum(np.asarray(obs[ROBOSUITE_KEYS.get(k, k)]).size for k in obs_keys)
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        low, high = self.env.action_spec
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32))
        self._t, self.last_obs = 0, obs

    def _flat(self, obs: dict) -> np.ndarray:
        return np.concatenate([np.asarray(obs[ROBOSUITE_KEYS.get(k, k)]).ravel() for k in self.obs_keys]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:  # robosuite 1.5 draws placements and joint noise from env.rng, fixed at construction
            self.env.rng = np.random.default_rng(seed)
            if getattr(self.env, "placement_initializer", None) is not None:
                self.env.placement_initializer.rng = self.env.rng
        self.last_obs, self._t = self.env.reset(), 0
        return self._flat(self.last_obs), {}

    def step(self, action: np.ndarray):
        self.last_obs, reward, done, info = self.env.step(np.asarray(action, dtype=np.float64))
        self._t += 1
        success = bool(self.env._check_success())
        info = {**info, "is_success": success}
        return self._flat(self.last_obs), float(reward), success, (done or self._t >= self.env.horizon) and not success, info


class LiftExpert:
    """Scripted grasp and lift: above the cube, down, close, up (OSC_POSE deltas, gripper -1 open / +1 close)."""

    def __init__(self, env: RobosuiteEnv, gain: float = 12.0):
        self.env, self.gain = env, gain
        self.reset()

    def reset(self) -> None:
        self.phase, self.closing = "above", 0

    def __call__(self, _obs: np.ndarray) -> np.ndarray:
        obs = self.env.last_obs
        eef, cube = obs["robot0_eef_pos"], obs["cube_pos"]
        gripper = -1.0
        if self.phase == "above":
            target = cube + np.array([0.0, 0.0, 0.08])
            if np.linalg.norm(target - eef) < 0.01:
                self.phase = "down"
        if self.phase == "down":
            target = cube + np.array([0.0, 0.0, -0.005])
            if np.linalg.norm(target - eef) < 0.008:
                self.phase = "close"
        if self.phase == "close":
            target, gripper = eef, 1.0
            self.closing += 1
            if self.closing > 12:
                self.phase = "lift"
        if self.phase == "lift":
            target, gripper = cube + np.array([0.0, 0.0, 0.15]), 1.0
        move = np.clip(self.gain * (target - eef), -1.0, 1.0)
        return np.concatenate([move, np.zeros(3), [gripper]]).astype(np.float32)


ROBOMIMIC_TASKS = {"RobomimicLift-v0": "Lift", "RobomimicCan-v0": "PickPlaceCan", "RobomimicSquare-v0": "NutAssemblySquare"}


def register_envs() -> None:
    """gymnasium ids for the paper's robomimic tasks (robosuite is imported only when one is made)."""
    for env_id, env_name in ROBOMIMIC_TASKS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sb3_expo.datasets.robosuite_tasks:RobosuiteEnv", kwargs={"env_name": env_name})


def robomimic_env(path: str) -> RobosuiteEnv:
    """The env a robomimic file was recorded in, rebuilt from its env metadata (data.attrs['env_args'])."""
    from sb3_expo.datasets.robomimic import robomimic_env_meta

    meta = robomimic_env_meta(path)
    return RobosuiteEnv(meta["env_name"], **meta.get("env_kwargs", {}))


def write_robomimic(path: str, env: RobosuiteEnv, episodes: list[dict]) -> None:
    """Episodes (from experts.rollout_episodes on a RobosuiteEnv) as a robomimic low-dim HDF5 file."""
    import json

    import h5py

    sizes = [int(np.asarray(env.last_obs[ROBOSUITE_KEYS.get(k, k)]).size) for k in env.obs_keys]
    bounds = np.cumsum([0, *sizes])
    meta = {
        "env_name": env.env_name,
        "type": 1,
        "env_kwargs": {k: v for k, v in env.env_kwargs.items() if isinstance(v, (int, float, str, bool, list))},
    }
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(meta)
        data.attrs["total"] = sum(len(e["actions"]) for e in episodes)
        for i, episode in enumerate(episodes):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = len(episode["actions"])
            for group, rows in (("obs", slice(0, -1)), ("next_obs", slice(1, None))):
                flat = episode["observations"][rows]
                for key, lo, hi in zip(env.obs_keys, bounds[:-1], bounds[1:]):
                    demo.create_dataset(f"{group}/{key}", data=flat[:, lo:hi])
            demo.create_dataset("actions", data=episode["actions"])
            demo.create_dataset("rewards", data=episode["rewards"])
            demo.create_dataset("dones", data=(episode["terminations"] | episode["truncations"]).astype(np.int64))
        f.create_dataset("mask/train", data=np.array([f"demo_{i}".encode() for i in range(len(episodes))]))
