"""TwoRoutes-v0: demonstrations with two ways to succeed, and what each policy class makes of them."""

import gymnasium as gym
import numpy as np
import pytest

from sb3_expo import EXPO, RLPD
from sb3_expo.datasets import load_demonstrations
from sb3_expo.datasets.two_routes import TwoRoutesExpert, blocked

SOURCE = "scripted:TwoRoutes-v0?episodes=20"
SMALL = dict(learning_starts=0, batch_size=64, seed=0)


def episodes(demos):
    ends = np.flatnonzero(demos.terminations | demos.truncations)
    return [slice(a, b + 1) for a, b in zip(np.r_[0, ends[:-1] + 1], ends)]


def success(model, deterministic, n=10):
    env, wins = gym.make("TwoRoutes-v0"), 0
    for i in range(n):
        obs, _ = env.reset(seed=10_000 + i)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(model.predict(obs, deterministic=deterministic)[0])
            done = terminated or truncated
        wins += info["is_success"]
    return wins / n


def test_the_expert_succeeds_by_both_routes_from_the_same_start():
    demos = load_demonstrations(SOURCE, gym.make("TwoRoutes-v0"))
    assert demos.success_rate == 1.0 and np.array_equal(demos.actions, load_demonstrations(SOURCE).actions)
    routes = np.array([TwoRoutesExpert.route(demos.observations[e]) for e in episodes(demos)])
    assert 6 <= (routes < 0).sum() <= 14  # both routes, about half each
    first = np.array([demos.actions[e][0] for e in episodes(demos)])
    assert set(np.round(first[:, 0])) == {-1.0, 1.0}  # at the start: two opposite actions for (nearly) the same state
    assert blocked(np.zeros(2)) and not blocked(np.array([0.6, 0.0]))


def test_rlpd_pretrain_clones_the_demonstrations_into_its_actor():
    env = gym.make("MountainCarContinuous-v0")
    model = RLPD("MlpPolicy", env, demonstrations="scripted:MountainCarContinuous-v0?episodes=5", **SMALL)
    demos = load_demonstrations("scripted:MountainCarContinuous-v0?episodes=5", env)

    def agreement():  # the expert pushes at full force one way or the other: same sign as the demonstrated action
        return np.mean(np.sign(model.predict(demos.observations, deterministic=True)[0]) == np.sign(demos.actions))

    before = agreement()
    model.pretrain(2000)
    assert agreement() >= 0.75 > before + 0.3, (before, agreement())  # 0.81 measured; 0.27 untrained
    with pytest.raises(ValueError, match="has none"):
        RLPD("MlpPolicy", env, **SMALL).pretrain(10)


@pytest.mark.slow
def test_a_cloned_gaussian_averages_the_routes_where_expos_diffusion_base_picks_one():
    env = gym.make("TwoRoutes-v0")
    small = dict(policy_kwargs=dict(net_arch=[64, 64], n_critics=4), **SMALL)
    gaussian = RLPD("MlpPolicy", env, demonstrations=SOURCE, **small).pretrain(5000)
    expo = EXPO("MlpPolicy", env, demonstrations=SOURCE, n_base_samples=4, n_edit_samples=4, **SMALL,
                policy_kwargs=dict(net_arch=[64, 64], n_critics=4, denoiser_width=64, denoiser_blocks=2))  # fmt: skip
    expo.pretrain(10_000)
    assert success(gaussian, deterministic=True) <= 0.1  # into the obstacle
    assert success(expo, deterministic=False) >= 0.7
