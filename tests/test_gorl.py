"""GoRL: the latent policy on SB3's PPO, the frozen decoder and the stage schedule, against hand-checkable cases."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.utils import set_random_seed

from sb3_expo import GoRL
from sb3_expo.gorl import GoRLPolicy
from sb3_expo.gorl.gorl import LatentActionEnv

TINY = dict(n_steps=64, batch_size=32, n_epochs=2, decoder_fit_steps=100, decoder_batch_size=128)


class TanhActions(gym.ActionWrapper):
    """Gaussian PPO in pre-tanh space, by hand: the env receives tanh(a), rescaled to its bounds."""

    def __init__(self, env):
        super().__init__(env)
        self.bounds = (env.action_space.low, env.action_space.high)
        self.action_space = gym.spaces.Box(-1e4, 1e4, env.action_space.shape, np.float32)

    def action(self, action):  # float32 torch arithmetic, as GoRL's (Pendulum's dynamics amplify the last bits)
        low, high = (th.as_tensor(b).float() for b in self.bounds)
        return (low + (th.tanh(th.as_tensor(action).float()) + 1.0) * 0.5 * (high - low)).numpy()


class ScaleReward(gym.RewardWrapper):
    def reward(self, reward):
        return reward * 10.0


def test_stage_zero_is_gaussian_ppo_in_pre_tanh_space():
    """With the identity decoder, GoRL's rollouts and updates are those of SB3's PPO on tanh'd actions."""
    settings = dict(
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        learning_rate=1e-3,
        gamma=0.995,
        gae_lambda=0.95,
        clip_range=0.15,
        ent_coef=0.01,
        vf_coef=0.25,
        max_grad_norm=0.5,
        seed=3,
    )
    kwargs = dict(features_extractor_class=FlattenExtractor)  # PPO has no running normaliser to update
    gorl = GoRL("MlpPolicy", "Pendulum-v1", stage_fractions=(1.0,), handoff="last", policy_kwargs=kwargs, **settings)
    ppo = PPO(
        GoRLPolicy, ScaleReward(TanhActions(gym.make("Pendulum-v1"))), policy_kwargs={**kwargs, "init_seed": 3}, **settings
    )
    ppo.policy.latent_penalty, ppo.policy.ent_coef = gorl.latent_penalty, 0.01
    for a, b in zip(gorl.policy.latent_parameters(), ppo.policy.latent_parameters()):
        assert th.equal(a, b)
    set_random_seed(0)  # latents (torch) and minibatches (numpy) come from the global generators: the same streams
    gorl.learn(256)
    set_random_seed(0)
    ppo.learn(256)
    for a, b in zip(gorl.policy.latent_parameters(), ppo.policy.latent_parameters()):
        th.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)  # rewards x 10 in float32 in another order: last bits
    np.testing.assert_allclose(gorl.rollout_buffer.actions, ppo.rollout_buffer.actions, rtol=1e-5, atol=1e-6)  # latents
    np.testing.assert_allclose(gorl.rollout_buffer.rewards, ppo.rollout_buffer.rewards, rtol=1e-5)


@pytest.mark.parametrize("kind", ["flow", "ddim"])
def test_a_decoder_fitted_to_two_modes_reproduces_both_from_prior_noise(kind):
    model = GoRL("MlpPolicy", "Pendulum-v1", decoder=kind, seed=0, **{**TINY, "decoder_fit_steps": 1500})
    rng = np.random.default_rng(0)
    n = 4000
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    u = np.where(rng.random((n, 1)) < 0.5, -1.5, 1.5).astype(np.float32)
    model.fit_decoder(obs, u, np.arange(n) // 50)
    decoder = model.policy.decoder
    assert bool(decoder.fitted)
    with th.no_grad():
        out = decoder(th.as_tensor(obs[:2000]), th.randn(2000, 1)).numpy().ravel()
    low, high, middle = np.mean(np.abs(out + 1.5) < 0.5), np.mean(np.abs(out - 1.5) < 0.5), np.mean(np.abs(out) < 0.5)
    assert low > 0.3 and high > 0.3 and middle < 0.15, (low, high, middle)
    # fresh prior noise, not the latents it was fitted with: the map from z is monotone (a transport, not a lookup)
    z = th.linspace(-2, 2, 9).unsqueeze(1)
    with th.no_grad():
        mapped = decoder(th.zeros(9, 3), z).ravel()
    assert mapped[0] < -1.0 and mapped[-1] > 1.0


def test_the_latent_is_the_samplers_start_and_never_an_input_beside_the_observation():
    model = GoRL("MlpPolicy", "Pendulum-v1", seed=0, **TINY)
    rng = np.random.default_rng(1)
    model.fit_decoder(
        rng.normal(size=(500, 3)).astype(np.float32), rng.normal(size=(500, 1)).astype(np.float32), np.arange(500) // 50
    )
    decoder = model.policy.decoder
    calls = []
    net = decoder.generative.net
    original = net.forward
    net.forward = lambda obs, x, t: calls.append((obs.clone(), x.clone(), t.clone())) or original(obs, x, t)
    obs, z = th.randn(4, 3), th.randn(4, 1)
    with th.no_grad():
        decoder(obs, z)
    first_obs, first_x, first_t = calls[0]
    assert len(calls) == decoder.steps and first_x.shape == (4, 1) and first_obs.shape == (4, 3)
    th.testing.assert_close(first_x, z)  # z enters as x at t = 1, the start of the chain
    th.testing.assert_close(first_obs, decoder.normalize(obs))  # the only other input: the observation
    assert float(first_t) == pytest.approx(1.0)


@pytest.mark.parametrize("count", [False, True])
def test_stages_switch_at_the_configured_steps(count):
    model = GoRL(
        "MlpPolicy",
        "Pendulum-v1",
        stage_fractions=(0.25, 0.25, 0.5),
        handoff="last",
        seed=0,
        decoder_data_steps=100,
        count_collection_steps=count,
        **TINY,
    )
    model.learn(1024)
    switches = [h["ended_at"] for h in model.stage_history]
    if count:  # the 2 x 100 collection steps count: set aside first, the stages share the other 824
        assert model.stage_ends == [206, 100 + 412, 1024]
        assert switches == [256 + 100, 548 + 100] and model.num_timesteps >= 1024  # 64-step rollouts cross them
    else:  # the official accounting: the steps spent on decoder data are not counted
        assert model.stage_ends == [256, 512, 1024]
        assert switches == [256, 512]
    assert model.stage == 2
    assert all(h["data_steps"] == 100 for h in model.stage_history)


def test_save_and_load_mid_run_continue_the_schedule(tmp_path):
    args = dict(
        stage_fractions=(0.25, 0.25, 0.5), handoff="last", seed=0, decoder_data_steps=100, count_collection_steps=False, **TINY
    )
    model = GoRL("MlpPolicy", "Pendulum-v1", **args)

    class StopAt(BaseCallback):
        def _on_step(self):
            return self.num_timesteps < 384

    model.learn(1024, callback=StopAt())  # stopped in stage 1 of a 1024-step plan
    assert model.stage == 1 and bool(model.policy.decoder.fitted)
    model.save(tmp_path / "gorl")
    loaded = GoRL.load(tmp_path / "gorl", env=gym.make("Pendulum-v1"))
    assert loaded.stage == 1 and loaded.stage_ends == model.stage_ends
    obs = np.zeros((3, 3), np.float32)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(1024 - 384, reset_num_timesteps=False)
    assert loaded.stage == 2 and [h["ended_at"] for h in loaded.stage_history] == [256, 512]


def test_vec_envs_callbacks_and_decoded_actions_in_the_envs_bounds():
    env = make_vec_env("MountainCarContinuous-v0", n_envs=2, seed=0)
    model = GoRL("MlpPolicy", env, stage_fractions=(0.5, 0.5), handoff="last", seed=0, decoder_data_steps=128, **TINY)
    assert isinstance(model.env, LatentActionEnv) and model.action_space.shape == (1,)
    model.learn(512)
    actions, _ = model.predict(np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32))
    assert actions.shape == (20, 1) and np.all(np.abs(actions) <= 1.0)
    with pytest.raises(ValueError, match="handoff='middle'"):
        GoRL("MlpPolicy", "Pendulum-v1", handoff="middle")


def test_gorl_learns_inverted_pendulum():
    """20k steps, four stages with decoder refits: from random (return ~5) to balancing for hundreds of steps."""
    model = GoRL(
        "MlpPolicy",
        "InvertedPendulum-v5",
        n_steps=512,
        batch_size=64,
        n_epochs=10,
        learning_rate=3e-4,
        decoder_fit_steps=500,
        handoff="last",
        seed=0,
    )
    model.learn(20_000)
    assert model.stage == 3 and len(model.stage_history) == 3
    mean_return, _ = evaluate_policy(model, Monitor(gym.make("InvertedPendulum-v5")), n_eval_episodes=10, deterministic=True)
    assert mean_return > 100
