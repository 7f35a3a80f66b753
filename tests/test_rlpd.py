"""RLPD: the published recipe on SB3's SAC, with the project's critic ensemble and demonstration buffer."""

import inspect
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import NatureCNN

from sb3_expo import RLPD
from sb3_expo.common.buffers import DemoReplayBuffer
from sb3_expo.datasets import load_demonstrations
from sb3_expo.rlpd import CnnPolicy
from sb3_expo.zoo import default_config

from .test_sb3_contract import BatchNormExtractor

SMALL = dict(learning_starts=0, batch_size=32, policy_kwargs=dict(net_arch=[32, 32], n_critics=4), seed=0)


def test_defaults_are_rlpds(pendulum_demos):
    model = RLPD("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos)
    q = model.critic.q_networks
    assert q.n_critics == 10 and model.num_min_qs == 2 and len(q.norms) == 2 and q.hidden[0].weight.shape[-1] == 256
    assert model.gradient_steps == 20 and model.batch_size == 256 and model.learning_rate == 3e-4
    assert model.target_entropy == -0.5 and float(model.log_ent_coef.detach().exp()) == pytest.approx(
        1.0
    )  # -dim(A)/2; alpha 1
    assert isinstance(model.replay_buffer, DemoReplayBuffer) and model.replay_buffer.demo_ratio == 0.5  # symmetric


def test_critics_take_g_updates_on_a_random_subset_min_and_the_actor_one(pendulum_demos):
    model = RLPD("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos, **SMALL)
    model.set_logger(configure(None, [""]))
    rng = np.random.default_rng(0)
    for _ in range(64):
        obs = rng.normal(size=(1, 3))
        model.replay_buffer.add(obs, obs + 0.1, rng.uniform(-1, 1, (1, 1)), rng.normal(size=1), rng.random(1) < 0.1, [{}])
    batch = model.replay_buffer.sample(32)
    model.replay_buffer.sample = lambda *args, **kwargs: batch
    model.critic_target.random_subset = lambda size: th.tensor([1, 3])
    alpha = float(model.log_ent_coef.detach().exp())
    th.manual_seed(0)
    with th.no_grad():  # the backup by hand: r + gamma (1 - d) (min over target critics 1 and 3 - alpha log pi)
        next_actions, next_log_prob = model.actor.action_log_prob(batch.next_observations)
        next_q = model.critic_target(batch.next_observations, next_actions)[[1, 3]].min(dim=0).values
        target = batch.rewards.flatten() + 0.99 * (1 - batch.dones.flatten()) * (next_q - alpha * next_log_prob)
        expected = ((model.critic(batch.observations, batch.actions) - target) ** 2).mean()
    th.manual_seed(0)
    model.train(1, 32)
    assert model.logger.name_to_value["train/critic_loss"] == pytest.approx(float(expected), rel=1e-5)

    model.train(5, 32)  # 5 critic updates, 1 actor and 1 temperature update per call
    steps = lambda optimizer: int(next(iter(optimizer.state.values()))["step"])  # noqa: E731
    assert steps(model.critic.optimizer) == 6 and steps(model.actor.optimizer) == 2 and steps(model.ent_coef_optimizer) == 2


def test_save_load_acts_the_same_and_needs_its_demonstrations_back_to_learn(tmp_path, pendulum_demos):
    model = RLPD("MlpPolicy", "Pendulum-v1", demonstrations="scripted:Pendulum-v1?episodes=2", **SMALL)
    model.learn(64)
    model.save(tmp_path / "rlpd")
    loaded = RLPD.load(tmp_path / "rlpd", env=gym.make("Pendulum-v1"))
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert np.array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert loaded.replay_buffer.n_demos == model.replay_buffer.n_demos > 0  # the source string came back
    loaded.learn(32, reset_num_timesteps=False)
    held = RLPD("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos, **SMALL)
    held.save(tmp_path / "held")  # Transitions are not saved in the zip
    with pytest.raises(ValueError, match="loaded without its demonstrations"):
        RLPD.load(tmp_path / "held", env=gym.make("Pendulum-v1")).learn(10)
    with pytest.raises(ValueError, match="cannot mix demonstrations"):
        RLPD("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos, replay_buffer_class=ReplayBuffer)


def test_the_target_critic_has_the_critics_batch_norm_statistics_after_train(pendulum_demos):
    """As SAC: the statistics are copied after the actor step, whose pass through the critic (training mode) moves them."""
    policy_kwargs = {**SMALL["policy_kwargs"], "features_extractor_class": BatchNormExtractor}
    kwargs = {**SMALL, "policy_kwargs": policy_kwargs, "gradient_steps": 2}
    model = RLPD("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos, **kwargs)
    model.learn(40)
    online, target = model.critic.features_extractor.net[1], model.critic_target.features_extractor.net[1]
    assert online.num_batches_tracked > 0 and not th.equal(online.running_mean, th.zeros(8))
    th.testing.assert_close(target.running_mean, online.running_mean, rtol=0, atol=0)
    th.testing.assert_close(target.running_var, online.running_var, rtol=0, atol=0)


def test_cnn_policy_alias_learns_and_acts_on_images(tmp_path):
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=3, discrete=False)
    model = RLPD(
        "CnnPolicy",
        env,
        buffer_size=100,
        learning_starts=10,
        batch_size=8,
        gradient_steps=1,
        policy_kwargs=dict(net_arch=[16], n_critics=2, features_extractor_kwargs=dict(features_dim=16)),
        seed=0,
    )
    assert isinstance(model.policy, CnnPolicy) and isinstance(model.critic.features_extractor, NatureCNN)
    model.learn(20)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == env.action_space.shape and env.action_space.contains(action)
    model.save(tmp_path / "cnn")
    loaded = RLPD.load(tmp_path / "cnn", env=env)
    assert isinstance(loaded.policy, CnnPolicy)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], action)


ZOO_KEYS = {"policy", "n_timesteps", "env_wrapper", "monitor_kwargs"}  # what rl-zoo3 takes itself


def test_every_rlpd_yml_entry_loads_and_builds():
    entries = yaml.safe_load(Path(default_config("rlpd")).read_text())
    rlpd_args = set(inspect.signature(RLPD).parameters)
    for env_id, params in entries.items():
        assert set(params) <= rlpd_args | ZOO_KEYS, (env_id, set(params) - rlpd_args - ZOO_KEYS)
        assert all(not isinstance(v, str) or not v[:1].isdigit() for v in params.values()), env_id  # 1e-3 -> !!float
        kwargs = {k: v for k, v in params.items() if k not in ZOO_KEYS}
        kwargs["policy_kwargs"] = eval(kwargs.get("policy_kwargs", "{}"))
        if env_id in ("MountainCarContinuous-v0", "Pendulum-v1"):  # the CPU entries build with their demonstrations
            model = RLPD(params["policy"], env_id, **kwargs)
            assert model.replay_buffer.n_demos == len(load_demonstrations(kwargs["demonstrations"], gym.make(env_id)))
        elif env_id != "default":  # the paper tasks' data are not here: their settings, on Pendulum
            kwargs.pop("demonstrations")
            model = RLPD(params["policy"], "Pendulum-v1", buffer_size=10, **kwargs)
            assert [layer.weight.shape[-1] for layer in model.critic.q_networks.hidden] == [256, 256, 256]
            assert model.backup_entropy is False and model.gradient_steps == 20 and model.learning_starts == 5000
            antmaze = env_id.startswith("AntMaze")
            assert model.num_min_qs == (1 if antmaze else 2)
            # r - 1 once: AntMaze's ids give the raw 0/1 reward, Adroit's already success - 1
            assert params.get("env_wrapper", []) == (["sb3_expo.common.wrappers.RewardShift"] if antmaze else [])
    assert sum(env_id.startswith(("AntMaze", "Adroit")) for env_id in entries) == 5
