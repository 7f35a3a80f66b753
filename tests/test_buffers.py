import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_expo import EXPO, RLPD, DemoReplayBuffer, DictDemoReplayBuffer, Transitions

from .conftest import SMALL


def _demos(n=40, obs_dim=3, reward=1.0):
    rng = np.random.default_rng(0)
    return Transitions(
        rng.normal(size=(n, obs_dim)).astype(np.float32),
        rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        np.full(n, reward),
        rng.normal(size=(n, obs_dim)).astype(np.float32),
        np.arange(n) % 10 == 9,
    )


def _buffer(demo_ratio=0.5, n_online=50, **kwargs):
    obs_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    act_space = spaces.Box(-2, 2, (1,), np.float32)
    buf = DemoReplayBuffer(1000, obs_space, act_space, "cpu", demonstrations=_demos(), demo_ratio=demo_ratio, **kwargs)
    for _ in range(n_online):  # online transitions carry reward 0, demonstrations reward 1
        buf.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    return buf


@pytest.mark.parametrize(("ratio", "expected"), [(0.5, 128), (0.25, 64), (1.0, 256), (0.0, 0)])
def test_every_batch_holds_the_exact_demo_fraction(ratio, expected):
    buf = _buffer(ratio)
    for _ in range(5):
        batch = buf.sample(256)
        assert int(batch.rewards.sum()) == expected
        assert batch.observations.shape == (256, 3)


def test_demo_actions_are_scaled_to_minus_one_one_like_sb3():
    buf = _buffer()
    np.testing.assert_allclose(buf.demo_actions, _demos().actions / 2.0, atol=1e-6)
    assert buf.sample_demonstrations(64).actions.abs().max() <= 1.0


def test_terminations_stop_bootstrap_and_truncations_do_not():
    demos = _demos()
    demos.truncations[:] = np.arange(len(demos)) % 10 == 4
    obs_space, act_space = spaces.Box(-np.inf, np.inf, (3,), np.float32), spaces.Box(-2, 2, (1,), np.float32)
    buf = DemoReplayBuffer(100, obs_space, act_space, "cpu", demonstrations=demos)
    assert buf.demo_dones.sum() == demos.terminations.sum() == 4


def test_demonstrations_survive_save_and_load_replay_buffer(tmp_path):
    env = gym.make("Pendulum-v1")
    model = SAC(
        "MlpPolicy",
        env,
        replay_buffer_class=DemoReplayBuffer,
        replay_buffer_kwargs=dict(demonstrations=_demos()),
        learning_starts=10,
        batch_size=16,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    model.learn(20)
    model.save_replay_buffer(tmp_path / "buf.pkl")
    fresh = SAC("MlpPolicy", env, learning_starts=10, seed=0, policy_kwargs=dict(net_arch=[16]))
    fresh.load_replay_buffer(tmp_path / "buf.pkl")
    assert isinstance(fresh.replay_buffer, DemoReplayBuffer)
    assert fresh.replay_buffer.n_demos == 40 and fresh.replay_buffer.pos == 20
    np.testing.assert_array_equal(fresh.replay_buffer.demo_observations, model.replay_buffer.demo_observations)


@pytest.mark.parametrize("algo", [SAC, TD3, TQC, CrossQ])
def test_works_as_replay_buffer_class_of_sb3_and_contrib_algorithms(algo):
    env = gym.make("Pendulum-v1")
    model = algo(
        "MlpPolicy",
        env,
        replay_buffer_class=DemoReplayBuffer,
        learning_starts=16,
        batch_size=16,
        replay_buffer_kwargs=dict(demonstrations=_demos()),
        policy_kwargs=dict(net_arch=[16, 16]),
        seed=0,
    )
    seen = []
    sample = model.replay_buffer.sample
    model.replay_buffer.sample = lambda n, env=None: seen.append(sample(n, env)) or seen[-1]
    model.learn(40)
    assert seen and all(int(b.rewards.eq(1.0).sum()) == 8 for b in seen)


def test_demonstrations_are_normalised_with_vecnormalize_statistics():
    venv = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0), norm_reward=False)
    model = SAC(
        "MlpPolicy",
        venv,
        replay_buffer_class=DemoReplayBuffer,
        learning_starts=50,
        batch_size=16,
        replay_buffer_kwargs=dict(demonstrations=_demos()),
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
    )
    model.learn(60)
    np.random.seed(3)
    batch = model.replay_buffer.sample_demonstrations(8, env=venv)
    np.random.seed(3)
    idx = np.random.randint(0, 40, size=8)
    expected = venv.normalize_obs(_demos().observations[idx])
    np.testing.assert_allclose(batch.observations.numpy(), expected, atol=1e-5)
    assert not np.allclose(expected, _demos().observations[idx])  # normalisation really changed them


def test_dict_observations():
    obs_space = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Box(-1, 1, (3,))})
    act_space = spaces.Box(-1, 1, (2,), np.float32)
    n = 12
    obs = {"a": np.zeros((n, 2), np.float32), "b": np.ones((n, 3), np.float32)}
    demos = Transitions(obs, np.zeros((n, 2)), np.ones(n), obs, np.zeros(n))
    buf = DictDemoReplayBuffer(100, obs_space, act_space, "cpu", demonstrations=demos)
    o = {"a": np.zeros((1, 2)), "b": np.zeros((1, 3))}
    for _ in range(5):
        buf.add(o, o, np.zeros((1, 2)), np.zeros(1), np.zeros(1), [{}])
    batch = buf.sample(10)
    assert batch.observations["b"].shape == (10, 3)
    assert int(batch.observations["b"].sum()) == 5 * 3  # 5 demo rows of ones, 5 online rows of zeros
    assert int(batch.rewards.sum()) == 5


def test_sampling_with_no_online_data_says_so():
    buf = _buffer(n_online=0)
    with pytest.raises(RuntimeError, match="no online transitions"):
        buf.sample(16)
    assert buf.sample_demonstrations(16).rewards.sum() == 16


def test_bad_ratio_and_missing_demonstrations_are_rejected():
    obs_space, act_space = spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (1,))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        DemoReplayBuffer(10, obs_space, act_space, demonstrations=_demos(), demo_ratio=1.5)
    with pytest.raises(ValueError, match="none were given"):
        DemoReplayBuffer(10, obs_space, act_space, demo_ratio=0.5)
    assert DemoReplayBuffer(10, obs_space, act_space).demo_ratio == 0.0  # plain online buffer


def test_samples_are_torch_on_the_buffer_device():
    batch = _buffer().sample(8)
    assert isinstance(batch.actions, th.Tensor) and batch.actions.device.type == "cpu"


def test_one_draw_of_g_minibatches_gives_each_the_exact_demo_share():
    buf = _buffer(0.5)
    batch = buf.sample_minibatches(5, 32)
    assert batch.rewards.shape == (160, 1)
    per_minibatch = batch.rewards.view(5, 32).sum(1)
    assert per_minibatch.tolist() == [16.0] * 5


def test_with_n_steps_the_buffer_is_an_sb3_n_step_buffer():
    obs_space, act_space = spaces.Box(-np.inf, np.inf, (3,), np.float32), spaces.Box(-2, 2, (1,), np.float32)
    n_step = DemoReplayBuffer(10, obs_space, act_space, demonstrations=_demos(), n_steps=3, gamma=0.9)
    assert isinstance(n_step, NStepReplayBuffer) and isinstance(n_step, DemoReplayBuffer)
    assert (n_step.n_steps, n_step.gamma) == (3, 0.9) and n_step.sample_demonstrations(4).discounts is not None
    assert not isinstance(DemoReplayBuffer(10, obs_space, act_space), NStepReplayBuffer)


RLPD_SMALL = dict(buffer_size=1000, batch_size=32, gradient_steps=2, learning_starts=20, policy_kwargs=dict(net_arch=[32]))
ALGO_SMALL = {EXPO: {**SMALL, "buffer_size": 1000}, RLPD: RLPD_SMALL}


@pytest.mark.parametrize("algo", [EXPO, RLPD])
def test_n_step_buffer_saves_exactly_and_no_target_crosses_a_restart(algo, tmp_path, pendulum_demos):
    """SB3's save/load round trip is exact; the restart is marked when learn() resumes, not when the buffer loads."""
    model = algo("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos, n_steps=3, seed=0, **ALGO_SMALL[algo])
    assert isinstance(model.replay_buffer, NStepReplayBuffer) and model.replay_buffer.n_steps == 3
    model.learn(30)  # Pendulum's episodes last 200 steps: the buffer ends in the middle of one
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    resumed = algo("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos, n_steps=3, seed=1, **ALGO_SMALL[algo])
    resumed.load_replay_buffer(tmp_path / "buffer.pkl")
    saved, loaded = model.replay_buffer, resumed.replay_buffer
    assert type(loaded) is type(saved) and (loaded.pos, loaded.full) == (saved.pos, saved.full) == (30, False)
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts", "demo_observations"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(saved, name), err_msg=name)

    resumed.learn(10, reset_num_timesteps=False)  # the env restarts: step 30 begins a new episode
    model.learn(10)  # a second learn() restarts the env as well
    for buffer in (resumed.replay_buffer, model.replay_buffer):
        assert buffer.pos == 40
        batch = buffer._get_samples(np.array([28]))  # 3-step target from step 28: steps 28 and 29, no further
        np.testing.assert_allclose(batch.next_observations[0].numpy(), buffer.next_observations[29, 0])
        assert batch.discounts.item() == pytest.approx(0.99**2) and batch.dones.item() == 0.0
        expected = buffer.rewards[28, 0] + 0.99 * buffer.rewards[29, 0]
        assert batch.rewards.item() == pytest.approx(expected, rel=1e-5)
