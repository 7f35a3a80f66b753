import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_expo.datasets import collect_demonstrations, mountain_car_expert

th.set_num_threads(1)  # several times faster than 2 threads on the 2-core CI machine

# Networks small enough for CPU tests; the algorithm is the same as at the paper's sizes.
SMALL_POLICY = dict(net_arch=[32, 32], n_critics=4, denoiser_width=32, denoiser_blocks=1)
SMALL = dict(
    batch_size=32,
    gradient_steps=2,
    learning_starts=20,
    n_base_samples=4,
    n_edit_samples=4,
    policy_kwargs=SMALL_POLICY,
)


@pytest.fixture(scope="session")
def mc_demos():
    return collect_demonstrations(gym.make("MountainCarContinuous-v0"), mountain_car_expert, n_episodes=2, seed=100)


@pytest.fixture(scope="session")
def pendulum_demos():
    """Random-policy Pendulum transitions: the right shapes, all we need for plumbing tests."""
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    rng = np.random.default_rng(0)
    return collect_demonstrations(env, lambda obs: rng.uniform(-2, 2, size=1).astype(np.float32), n_episodes=2)


class AnyObservations(gym.Env):
    """Box actions and observations of any space (e.g. Discrete: SB3 one-hot encodes them); 20-step episodes."""

    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def __init__(self, observation_space):
        self.observation_space = observation_space

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), -float(np.square(action).sum()), False, self.t >= 20, {}
