import glob
import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_expo import EXPO, DictDemoReplayBuffer, Transitions

from .conftest import SMALL


def make(env="Pendulum-v1", **kwargs):
    return EXPO("MlpPolicy", env, seed=0, **{**SMALL, **kwargs})


def _optimizer_steps(optimizer):
    states = list(optimizer.state.values())
    return int(states[0]["step"]) if states else 0


def test_one_train_call_makes_g_critic_updates_and_one_of_each_other(pendulum_demos):
    model = make(demonstrations=pendulum_demos, gradient_steps=5)
    model.learn(25)  # learning_starts=20: warm-up, then 5 env steps -> 5 train() calls
    for name, optimizer in [
        ("critic", model.critic.optimizer),
        ("base", model.base.optimizer),
        ("edit", model.edit.optimizer),
        ("temperature", model.ent_coef_optimizer),
    ]:
        expected = 5 * 5 if name == "critic" else 5
        assert _optimizer_steps(optimizer) == expected, name
    assert model._n_updates == 25 and model._n_base_updates == 5 and model._n_edit_updates == 5


def test_target_and_ema_updates_record_no_autograd_history(pendulum_demos):
    """The Polyak and EMA updates run outside autograd: otherwise every update adds a graph node to the copies and
    memory grows for the whole run (and the copies would start requiring gradients)."""
    model = make(demonstrations=pendulum_demos)
    model.learn(25)
    for p in [*model.critic_target.parameters(), *model.base_ema.parameters()]:
        assert p.is_leaf and p.grad_fn is None and not p.requires_grad


def test_no_edits_ablation_never_updates_edit_policy_or_temperature(pendulum_demos):
    model = make(demonstrations=pendulum_demos, n_edit_samples=0)
    model.learn(25)
    assert _optimizer_steps(model.edit.optimizer) == 0 and _optimizer_steps(model.ent_coef_optimizer) == 0
    assert _optimizer_steps(model.base.optimizer) == 5


def test_single_base_sample_backup_ablation(pendulum_demos):
    model = make(demonstrations=pendulum_demos, otf_backup=False)
    calls = []
    original = model.policy.candidates
    model.policy.candidates = lambda *a, **k: calls.append(1) or original(*a, **k)
    model.learn(25)
    acted = 5  # the N + K candidates are still drawn for acting, never for the backup
    assert len(calls) == acted


def test_alpha_stays_finite_over_a_long_run_with_small_beta():
    """beta = 0.05 makes the reference target entropy unattainable; log alpha rises but stays bounded (10.3)."""
    model = make(edit_beta=0.05)
    d = 1
    best_entropy = d * (math.log(2) + math.log(0.05))  # the largest entropy a beta-scaled tanh edit can have
    entropy = th.tensor(best_entropy)
    for _ in range(100_000):
        model._temperature_step(entropy)
    assert math.isfinite(model.log_ent_coef.item()) and model.log_ent_coef.item() == pytest.approx(20.0)
    model.learn(30)  # the whole update stays finite with alpha at its bound
    assert all(math.isfinite(v) for v in model.logger.name_to_value.values())
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_save_load_predicts_the_same_actions(tmp_path, pendulum_demos):
    model = make(demonstrations=pendulum_demos)
    model.learn(30)
    model.save(tmp_path / "expo")
    loaded = EXPO.load(tmp_path / "expo", env=gym.make("Pendulum-v1"))
    obs = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    for deterministic in (True, False):
        th.manual_seed(7)
        a, _ = model.predict(obs, deterministic=deterministic)
        th.manual_seed(7)
        b, _ = loaded.predict(obs, deterministic=deterministic)
        np.testing.assert_array_equal(a, b)
    assert loaded.edit_beta == model.edit_beta and loaded.n_base_samples == 4
    assert loaded._n_base_updates == model._n_base_updates  # cosine schedule position kept


def test_resume_from_checkpoint_continues_with_the_same_buffer(tmp_path, pendulum_demos):
    model = make(demonstrations=pendulum_demos)
    model.learn(40)
    model.save(tmp_path / "expo")
    model.save_replay_buffer(tmp_path / "buffer")
    resumed = EXPO.load(tmp_path / "expo", env=gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="without its demonstrations"):
        resumed.learn(10, reset_num_timesteps=False)
    resumed.load_replay_buffer(tmp_path / "buffer")
    assert resumed.replay_buffer.n_demos == len(pendulum_demos) and resumed.replay_buffer.pos == 40
    resumed.learn(10, reset_num_timesteps=False)
    assert resumed.num_timesteps == 50 and resumed.replay_buffer.pos == 50
    assert _optimizer_steps(resumed.base.optimizer) == 30  # optimizer state carried over, then 10 more updates


def test_load_with_demonstrations_argument(tmp_path, pendulum_demos):
    model = make(demonstrations=pendulum_demos)
    model.save(tmp_path / "expo")
    resumed = EXPO.load(tmp_path / "expo", env=gym.make("Pendulum-v1"), demonstrations=pendulum_demos)
    resumed.learn(25)
    assert resumed.replay_buffer.n_demos == len(pendulum_demos)


def test_pretrain_trains_only_the_base_and_the_schedule_continues(pendulum_demos):
    model = make(demonstrations=pendulum_demos, lr_decay_steps=100)
    critic_before = [p.clone() for p in model.critic.parameters()]
    edit_before = [p.clone() for p in model.edit.parameters()]
    model.pretrain(50, log_interval=25)
    assert model._n_base_updates == 50
    assert all(th.equal(a, b) for a, b in zip(critic_before, model.critic.parameters()))
    assert all(th.equal(a, b) for a, b in zip(edit_before, model.edit.parameters()))
    ema_gap = sum((a - b).abs().sum() for a, b in zip(model.base.parameters(), model.base_ema.parameters()))
    assert ema_gap > 0  # the EMA copy follows slowly
    model.learn(21)  # one train() call: base update number 51 uses the cosine at step 50 of 100
    assert model.base.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.5 * (1 + math.cos(math.pi * 50 / 100)))


def test_pretraining_imitates_the_demonstrations(mc_demos):
    """After imitation pretraining the EMA policy reproduces the scripted expert's bang-bang actions."""
    model = make(
        "MountainCarContinuous-v0",
        demonstrations=mc_demos,
        ema_tau=0.05,
        n_base_samples=1,
        n_edit_samples=0,
        policy_kwargs=dict(net_arch=[32, 32], n_critics=4, denoiser_width=64, denoiser_blocks=2),
    )
    actions_before, _ = model.predict(mc_demos.observations, deterministic=True)
    model.pretrain(1500, batch_size=128)
    actions, _ = model.predict(mc_demos.observations, deterministic=True)
    expert = mc_demos.actions[:, 0]
    assert np.mean(np.sign(actions_before[:, 0]) == expert) < 0.7
    assert np.mean(np.sign(actions[:, 0]) == expert) > 0.85


def test_vec_env_with_several_envs_and_callbacks(pendulum_demos):
    venv = make_vec_env("Pendulum-v1", n_envs=2, seed=0)

    class Count(BaseCallback):
        calls = 0

        def _on_step(self):
            Count.calls += 1
            return True

    model = make(venv, demonstrations=pendulum_demos)
    model.learn(60, callback=Count(), progress_bar=True)
    assert model.num_timesteps == 60 and Count.calls == 30
    assert model.replay_buffer.pos == 30 and model.replay_buffer.n_envs == 2


def test_eval_callback_reports_success_rate(tmp_path, mc_demos):
    class Success(gym.Wrapper):
        def step(self, action):
            obs, r, term, trunc, info = self.env.step(action)
            info["is_success"] = term
            return obs, r, term, trunc, info

    def env():
        return Success(gym.make("MountainCarContinuous-v0", max_episode_steps=30))

    eval_cb = EvalCallback(env(), n_eval_episodes=2, eval_freq=25, log_path=str(tmp_path), verbose=0)
    make(env(), demonstrations=mc_demos).learn(50, callback=eval_cb)
    data = np.load(tmp_path / "evaluations.npz")
    assert data["successes"].shape == (2, 2)  # two evaluations of two episodes, success recorded


def test_tensorboard_scalars(tmp_path, pendulum_demos):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = make(demonstrations=pendulum_demos, tensorboard_log=str(tmp_path), learning_starts=10)
    model.learn(110)  # no episode ends in 110 Pendulum steps: dump the last train() call's values by hand
    model.logger.dump(model.num_timesteps)
    acc = EventAccumulator(glob.glob(str(tmp_path / "EXPO_1"))[0])
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in [
        "critic_loss",
        "base_loss",
        "edit_loss",
        "ent_coef",
        "ent_coef_loss",
        "q_values",
        "target_q_values",
        "backup_edited_fraction",
        "entropy",
        "learning_rate",
        "base_learning_rate",
    ]:
        assert f"train/{tag}" in tags, tag
    assert "rollout/edited_fraction" in tags


def test_multi_input_policy_with_dict_observations():
    class DictObs(gym.ObservationWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = spaces.Dict({"xy": spaces.Box(-1, 1, (2,)), "w": spaces.Box(-8, 8, (1,))})

        def observation(self, obs):
            return {"xy": obs[:2], "w": obs[2:]}

    env = DictObs(gym.make("Pendulum-v1"))
    n = 30
    obs = {"xy": np.zeros((n, 2), np.float32), "w": np.zeros((n, 1), np.float32)}
    demos = Transitions(obs, np.zeros((n, 1)), np.zeros(n), obs, np.zeros(n))
    model = EXPO("MultiInputPolicy", env, demonstrations=demos, seed=0, **SMALL)
    assert isinstance(model.replay_buffer, DictDemoReplayBuffer)
    model.learn(30)
    action, _ = model.predict(env.observation_space.sample())
    assert action.shape == (1,) and -2 <= action[0] <= 2


# ----------------------------------------------------------------------------- bad input
def _bad(n=20, obs_dim=3, act=0.0, obs_fill=0.0):
    return Transitions(
        np.full((n, obs_dim), obs_fill, np.float32),
        np.full((n, 1), act, np.float32),
        np.zeros(n),
        np.zeros((n, obs_dim), np.float32),
        np.arange(n) % 10 == 9,
        source="bad.npz",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(env="CartPole-v1"), "continuous .Box. action space.*DQN"),
        (dict(n_edit_samples=8, n_base_samples=4), r"n_edit_samples=8 must lie in \[0, n_base_samples=4\]"),
        (dict(demo_ratio=1.5, demonstrations=_bad()), r"demo_ratio=1.5 is outside \[0, 1\]"),
        (dict(demo_ratio=0.5), "none were given.*demo_ratio=0"),
        (dict(demonstrations=_bad(obs_dim=5)), r"shape \(5,\) per step but .* shape \(3,\)"),
        (dict(demonstrations=_bad(obs_fill=np.nan)), "observations at episode 0 step 0 of bad.npz is not finite"),
        (
            dict(demonstrations=_bad(act=2.5)),
            r"action 2.5 at episode 0 step 0 of bad.npz is outside the action space \[-2, 2\]",
        ),
        (dict(demonstrations=_bad(n=0)), "holds no transitions"),
        (dict(num_min_qs=7), r"num_min_qs=7 must lie in \[1, n_critics=4\]"),
        (dict(edit_beta=0.0), "edit_beta=0.0 must be > 0"),
    ],
)
def test_bad_input_is_rejected_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_unbounded_action_space_is_rejected():
    class Unbounded(gym.ActionWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.action_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)

        def action(self, a):
            return a

    with pytest.raises(ValueError, match=r"bounded action space.*RescaleAction"):
        make(Unbounded(gym.make("Pendulum-v1")))


def test_nan_in_a_later_episode_is_located():
    demos = _bad(n=30)
    demos.rewards[23] = np.inf
    with pytest.raises(ValueError, match=r"rewards at episode 2 step 3 of bad\.npz"):
        make(demonstrations=demos)


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("torch_compile", [False, True])
def test_trains_and_acts_on_cuda(pendulum_demos, torch_compile):
    model = make(demonstrations=pendulum_demos, device="cuda", torch_compile=torch_compile)
    model.learn(30)
    assert next(model.policy.parameters()).device.type == "cuda"
    assert model.replay_buffer.sample(8).actions.device.type == "cuda"
    action, _ = model.predict(np.zeros(3, np.float32))
    assert action.shape == (1,)


def test_warm_start_fine_tunes_without_the_dataset(mc_demos):
    """Paper 5.5: after pretraining, drop the demonstrations and start from episodes of the pretrained policy."""
    env = gym.make("MountainCarContinuous-v0", max_episode_steps=40)
    model = make(env, demonstrations=mc_demos, learning_starts=0)
    model.pretrain(20)
    model.warm_start(3)
    assert model.replay_buffer.n_demos == 0 and model.demo_ratio == 0.0
    assert model.replay_buffer.pos == 3 * 40 and model.replay_buffer.timeouts[:120].sum() == 3  # 3 truncated episodes
    batch = model.replay_buffer.sample(32)
    assert batch.observations.shape == (32, 2)
    model.learn(30, reset_num_timesteps=False)
    assert model.num_timesteps == 150
