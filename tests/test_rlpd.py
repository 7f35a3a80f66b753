"""RLPD: the published recipe on SB3's SAC, with the project's critic ensemble and demonstration buffer."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure

from sb3_expo import RLPD
from sb3_expo.common.buffers import DemoReplayBuffer

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
