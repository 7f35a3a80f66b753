"""What an SB3 user relies on, checked the way stable-baselines3's own tests check SAC (issue: the SB3 contract)."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from torch import nn

from sb3_expo import EXPO, RLPD, DemoReplayBuffer, Transitions
from sb3_expo.expo.policies import EditPolicy

from .conftest import SMALL, AnyObservations


def make(env="Pendulum-v1", **kwargs):
    return EXPO("MlpPolicy", env, seed=0, **{**SMALL, **kwargs})


# ----------------------------------------------------------------------------- deterministic predict
def test_deterministic_predict_is_a_fixed_function_of_the_observation(tmp_path, pendulum_demos):
    model = make(demonstrations=pendulum_demos)
    model.learn(30)
    obs = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    th.manual_seed(1)
    first, _ = model.predict(obs, deterministic=True)
    th.manual_seed(2)
    np.random.seed(2)
    second, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(first, second)  # whatever the global RNG state
    alone = np.concatenate([model.predict(o, deterministic=True)[0] for o in obs]).reshape(first.shape)
    np.testing.assert_allclose(alone, first, atol=1e-6)  # and whatever else is in the batch
    model.save(tmp_path / "expo")
    loaded = EXPO.load(tmp_path / "expo", env=gym.make("Pendulum-v1"))
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], first)  # SB3's test_save_load
    # stochastic acting still samples: two calls differ
    a, _ = model.predict(obs, deterministic=False)
    b, _ = model.predict(obs, deterministic=False)
    assert not np.array_equal(a, b)


def test_deterministic_actions_spread_across_states_like_sampled_ones():
    """Each state draws its own fixed noise: different states do not share one draw (no systematic bias)."""
    model = make("MountainCarContinuous-v0", n_base_samples=1, n_edit_samples=0)
    obs = np.stack([np.full(2, 1e-3 * i, np.float32) for i in range(300)])  # nearly the same state, 300 times
    fixed, _ = model.predict(obs, deterministic=True)
    sampled, _ = model.predict(obs, deterministic=False)
    assert np.std(fixed) > 0.7 * np.std(sampled) > 0  # as spread as stochastic samples, not one draw for all


def test_deterministic_predict_treats_a_negative_zero_like_a_zero():
    """A negated zero velocity (-0.0) is the same observation as 0.0: the same deterministic action."""
    model = make("MountainCarContinuous-v0")
    positive, negative = np.array([-0.5, 0.0], np.float32), np.array([-0.5, -0.0], np.float32)
    same, _ = model.predict(positive, deterministic=True)
    np.testing.assert_array_equal(model.predict(negative, deterministic=True)[0], same)


@pytest.mark.parametrize("base", ["flow", "ddim"])
def test_bf16_acts_and_trains_with_a_built_in_base_on_another_network(base, pendulum_demos):
    """precision='bf16' with a documented non-default network (GoRL's TimeMLP) samples from its bf16 copy too."""
    from sb3_expo.common.generative import DiffusionPolicy, FlowPolicy
    from sb3_expo.common.generative.networks import TimeMLP

    cls = FlowPolicy if base == "flow" else DiffusionPolicy
    policy = cls(3, 1, 4, net=TimeMLP(3, 1, width=16, n_layers=2, zero_final=False))
    model = make(demonstrations=pendulum_demos, precision="bf16", policy_kwargs={**SMALL["policy_kwargs"], "base": policy})
    model.learn(30)  # the backup's chain and acting both run the bf16 copy
    obs = np.zeros((2, 3), np.float32)
    assert model.predict(obs, deterministic=True)[0].shape == (2, 1)
    reference = model.policy.base_ema.sample(th.zeros(2, 3), noise := model.policy.base_ema.draw_noise(2, "cpu"))
    low = model.policy.base_ema.sample(th.zeros(2, 3), noise, model.policy.acting_net())
    assert low.dtype == th.float32
    th.testing.assert_close(low, reference, atol=0.05, rtol=0)


def test_deterministic_mode_sampled_evaluates_the_papers_way(pendulum_demos):
    model = make(demonstrations=pendulum_demos, deterministic_mode="sampled")
    obs = np.zeros((4, 3), np.float32)
    th.manual_seed(0)
    a, _ = model.predict(obs, deterministic=True)
    th.manual_seed(0)
    b, _ = model.predict(obs, deterministic=False)
    np.testing.assert_array_equal(a, b)  # deterministic=True samples like deterministic=False
    assert not np.array_equal(a, model.predict(obs, deterministic=True)[0])
    assert model.policy.deterministic_mode == "sampled"
    with pytest.raises(ValueError, match="deterministic_mode='mean'"):
        make(deterministic_mode="mean")


def test_expected_subset_min_is_the_mean_of_the_min_over_all_subsets():
    from itertools import combinations

    from sb3_expo.common.ensemble import CriticEnsemble

    ens = CriticEnsemble(4, [8], n_critics=5)
    feats, acts = th.randn(7, 3), th.randn(7, 1)
    q = ens(feats, acts)
    for m in (1, 2, 5):
        brute = th.stack([q[list(s)].min(0).values for s in combinations(range(5), m)]).mean(0)
        th.testing.assert_close(ens.expected_subset_min(feats, acts, m), brute)


# ----------------------------------------------------------------------------- spaces and sizes
class SquareActions(gym.Env):
    """A 2x2 Box action space; reward for matching a fixed target matrix."""

    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.Box(-1, 1, (2, 2), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        assert action.shape == (2, 2)
        self.t += 1
        reward = -float(np.abs(action - np.array([[0.5, -0.5], [0.0, 0.3]])).sum())
        return self.observation_space.sample(), reward, False, self.t >= 20, {}


def test_multi_dimensional_box_actions_learn_save_and_load(tmp_path):
    n = 40
    demos = Transitions(
        np.zeros((n, 3), np.float32),
        np.full((n, 2, 2), 0.1, np.float32),
        np.zeros(n),
        np.zeros((n, 3), np.float32),
        np.zeros(n),
    )
    model = EXPO("MlpPolicy", SquareActions(), demonstrations=demos, seed=0, **SMALL)
    model.learn(60)
    action, _ = model.predict(np.zeros(3, np.float32), deterministic=True)
    assert action.shape == (2, 2)
    assert model.replay_buffer.actions.shape[-1] == 4
    model.save(tmp_path / "square")
    loaded = EXPO.load(tmp_path / "square", env=SquareActions(), demonstrations=demos)
    np.testing.assert_array_equal(loaded.predict(np.zeros(3, np.float32), deterministic=True)[0], action)
    loaded.learn(10, reset_num_timesteps=False)


@pytest.mark.parametrize("algo", ["EXPO", "RLPD"])
@pytest.mark.parametrize("space", [spaces.Discrete(4), spaces.MultiDiscrete([3, 2]), spaces.MultiBinary(3)], ids=str)
def test_discrete_observations_learn_from_demonstrations_save_and_load(algo, space, tmp_path):
    """The docs' "Can I use?" tables: Discrete, MultiDiscrete and MultiBinary observations work, as with SAC."""
    n = 40
    space.seed(0)
    obs = np.array([space.sample() for _ in range(n + 1)])
    demos = Transitions(obs[:-1], np.full((n, 2), 0.1, np.float32), np.zeros(n), obs[1:], np.zeros(n))
    cls = {"EXPO": EXPO, "RLPD": RLPD}[algo]
    kwargs = (
        SMALL
        if algo == "EXPO"
        else dict(batch_size=32, gradient_steps=2, learning_starts=20, policy_kwargs=dict(net_arch=[32], n_critics=2))
    )
    model = cls("MlpPolicy", AnyObservations(space), demonstrations=demos, seed=0, **kwargs)
    model.learn(40)
    action = model.predict(obs[0], deterministic=True)[0]
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)
    model.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m", env=AnyObservations(space), demonstrations=demos)
    np.testing.assert_array_equal(loaded.predict(obs[0], deterministic=True)[0], action)


def test_one_critic_trains_and_too_large_a_subset_is_refused(pendulum_demos):
    model = make(demonstrations=pendulum_demos, policy_kwargs={**SMALL["policy_kwargs"], "n_critics": 1})
    assert model.num_min_qs == 1 and model.policy.num_min_qs == 1
    model.learn(25)
    with pytest.raises(ValueError, match=r"num_min_qs=3 must lie in \[1, n_critics=2\]"):
        make(num_min_qs=3, policy_kwargs={**SMALL["policy_kwargs"], "n_critics": 2})


def test_dict_net_arch_sets_edit_and_critic_widths_as_sac_does():
    model = make(policy_kwargs={**SMALL["policy_kwargs"], "net_arch": dict(pi=[16], qf=[24, 12])})
    assert [m.out_features for m in model.edit.trunk if isinstance(m, nn.Linear)] == [16]
    assert [layer.weight.shape[-1] for layer in model.critic.hidden] == [24, 12]
    model.learn(25)


# ----------------------------------------------------------------------------- training mode
class BatchNormExtractor(BaseFeaturesExtractor):
    """A learnable extractor with batch norm: fails on one observation in training mode."""

    def __init__(self, observation_space, features_dim=8):
        super().__init__(observation_space, features_dim)
        self.net = nn.Sequential(nn.Linear(observation_space.shape[0], features_dim), nn.BatchNorm1d(features_dim), nn.ReLU())

    def forward(self, obs):
        return self.net(obs)


def test_every_module_evaluates_while_acting_and_a_batch_norm_extractor_works(pendulum_demos):
    policy_kwargs = {**SMALL["policy_kwargs"], "features_extractor_class": BatchNormExtractor}
    model = make(demonstrations=pendulum_demos, policy_kwargs=policy_kwargs, learning_starts=10)
    modes = []
    original = model.policy.candidates

    def record(*args, **kwargs):
        modes.append([m.training for m in model.policy.modules()])
        return original(*args, **kwargs)

    model.policy.candidates = record
    model.learn(30)  # acting from a single observation would fail in training mode ("more than 1 value per channel")
    assert modes and not any(any(m) for m in modes)  # nothing in training mode while sampling
    model.predict(np.zeros(3, np.float32))


def test_a_learnable_features_extractor_is_trained_by_the_critic(pendulum_demos):
    policy_kwargs = {**SMALL["policy_kwargs"], "features_extractor_class": BatchNormExtractor}
    model = make(demonstrations=pendulum_demos, policy_kwargs=policy_kwargs, learning_starts=10)
    extractor = model.policy.features_extractor
    assert model.policy.trains_features
    optimized = {id(p) for group in model.critic.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in optimized for p in extractor.parameters())
    before = [p.clone() for p in extractor.parameters()]
    target_before = [p.clone() for p in model.policy.features_extractor_target.parameters()]
    stats_before = extractor.net[1].running_mean.clone()
    model.learn(30)
    assert all(not th.equal(a, b) for a, b in zip(before, extractor.parameters()))
    # the target copy follows slowly (Polyak), and the batch-norm statistics were updated in training mode
    moved = [(a - b).abs().sum() for a, b in zip(target_before, model.policy.features_extractor_target.parameters())]
    assert all(m > 0 for m in moved)
    assert not th.equal(stats_before, extractor.net[1].running_mean)
    th.testing.assert_close(model.policy.features_extractor_target.net[1].running_mean, extractor.net[1].running_mean)


# ----------------------------------------------------------------------------- n-step returns
def test_n_step_returns_match_sb3_for_online_data_and_hold_for_demonstrations():
    gamma, n = 0.9, 3
    ends = np.array([0, 0, 0, 0, 1, 0, 0, 1], bool)  # two episodes: 5 and 3 steps, both terminate
    rewards = np.arange(1.0, 9.0)
    obs = np.arange(8, dtype=np.float32)[:, None].repeat(3, 1)
    demos = Transitions(obs, np.zeros((8, 1)), rewards, obs + 100, ends)
    model = make(demonstrations=demos, n_steps=n, gamma=gamma)
    buffer = model.replay_buffer
    assert isinstance(buffer, DemoReplayBuffer) and buffer.n_steps == n
    np.random.seed(0)
    batch = buffer.sample_demonstrations(64)
    for row in range(64):
        first = int(batch.observations[row, 0])
        last = min(first + n - 1, 4 if first <= 4 else 7)
        expected = sum(gamma ** (j - first) * rewards[j] for j in range(first, last + 1))
        assert batch.rewards[row, 0].item() == pytest.approx(expected, rel=1e-5)
        assert batch.next_observations[row, 0].item() == last + 100
        assert batch.discounts[row, 0].item() == pytest.approx(gamma ** (last - first + 1))
        assert batch.dones[row, 0].item() == float(ends[last])

    # online samples are SB3's NStepReplayBuffer's, given the same data and the same random indices
    reference = NStepReplayBuffer(100, buffer.observation_space, buffer.action_space, n_steps=n, gamma=gamma)
    rng = np.random.default_rng(0)
    for t in range(30):
        o, r, d = rng.normal(size=(1, 3)), rng.normal(size=1), np.array([t % 7 == 6])
        for b in (buffer, reference):
            b.add(o, o + 1, np.zeros((1, 1)), r, d, [{}])
    idx = np.arange(25)
    ours, theirs = buffer._get_samples(idx), reference._get_samples(idx)
    for a, b in zip(ours, theirs):
        th.testing.assert_close(a, b)
    model.learn(25)  # trains with the discounts of the buffer


def test_n_step_is_refused_for_dict_observations():
    env = gym.wrappers.TransformObservation(
        gym.make("Pendulum-v1"), lambda o: {"x": o}, spaces.Dict({"x": spaces.Box(-8, 8, (3,), np.float32)})
    )
    with pytest.raises(ValueError, match="n_steps=3: n-step returns are not supported for Dict observations"):
        EXPO("MultiInputPolicy", env, n_steps=3, **SMALL)


# ----------------------------------------------------------------------------- nothing dropped silently
def test_a_buffer_that_cannot_mix_demonstrations_is_refused(pendulum_demos):
    with pytest.raises(ValueError, match="replay_buffer_class=ReplayBuffer cannot mix demonstrations"):
        make(demonstrations=pendulum_demos, replay_buffer_class=ReplayBuffer)
    make(replay_buffer_class=ReplayBuffer).learn(25)  # without demonstrations any SB3 buffer is fine


def test_edit_log_prob_stays_exact_when_the_std_is_tiny_next_to_the_mean():
    """log N(u; mu, sigma) from the draw itself: ((u - mu) / sigma)^2 cancels in float32 when sigma << |mu|."""
    edit = EditPolicy(2, 1, [4], edit_beta=0.5)
    with th.no_grad():
        edit.mu.weight.zero_()
        edit.mu.bias.fill_(3.0)
        edit.log_std.weight.zero_()
        edit.log_std.bias.fill_(-18.0)
    noise = th.tensor([[1.3], [-0.7]])
    _, log_prob = edit(th.zeros(2, 2), th.zeros(2, 1), noise=noise)
    u = 3.0 + math.exp(-18.0) * noise.double()
    exact = -0.5 * noise.double() ** 2 + 18.0 - 0.5 * math.log(2 * math.pi) - th.log(1 - th.tanh(u) ** 2) - math.log(0.5)
    th.testing.assert_close(log_prob.double(), exact.squeeze(-1), rtol=1e-4, atol=1e-3)


def test_vec_normalize_statistics_come_from_the_demonstrations_before_pretraining(mc_demos):
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("MountainCarContinuous-v0")]), gamma=0.99)
    model = EXPO("MlpPolicy", venv, demonstrations=mc_demos, **SMALL)
    np.testing.assert_allclose(venv.obs_rms.mean, mc_demos.observations.mean(0), rtol=1e-4, atol=1e-5)
    assert venv.ret_rms.count > len(mc_demos) - 1
    model.pretrain(5)
    batch = model.replay_buffer.sample_demonstrations(512, env=venv)
    assert abs(batch.observations.mean(0)).max() < 0.3  # normalised with the demonstrations' statistics
    loaded_stats = VecNormalize(DummyVecEnv([lambda: gym.make("MountainCarContinuous-v0")]))
    loaded_stats.obs_rms.update(np.ones((10, 2)))  # statistics that came from elsewhere (a file) are kept
    EXPO("MlpPolicy", loaded_stats, demonstrations=mc_demos, **SMALL)
    np.testing.assert_allclose(loaded_stats.obs_rms.mean, 1.0, atol=1e-3)


def test_sac_still_takes_the_demo_buffer_with_n_step(pendulum_demos):
    """DemoReplayBuffer stays a plain SB3 buffer: SAC with n-step returns and demonstrations."""
    model = SAC(
        "MlpPolicy",
        "Pendulum-v1",
        replay_buffer_class=DemoReplayBuffer,
        replay_buffer_kwargs=dict(demonstrations=pendulum_demos, n_steps=3, gamma=0.99),
        learning_starts=20,
        batch_size=32,
        policy_kwargs=dict(net_arch=[16]),
    )
    model.learn(40)
    assert model.replay_buffer.sample(8).discounts is not None


# ----------------------------------------------------------------------------- crash-safe checkpoints
def test_checkpoints_use_sb3s_names_and_the_last_step_is_saved(tmp_path, pendulum_demos):
    from sb3_expo.common.callbacks import ResumableCheckpointCallback, latest_checkpoint

    model = make(demonstrations=pendulum_demos)
    model.learn(100, callback=ResumableCheckpointCallback(25, str(tmp_path), keep=2))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "rl_model_100_steps.zip",
        "rl_model_25_steps.zip",
        "rl_model_50_steps.zip",
        "rl_model_75_steps.zip",
        "rl_model_replay_buffer_100_steps.pkl",
        "rl_model_replay_buffer_75_steps.pkl",
    ]  # SB3 CheckpointCallback's names; the one due at the last step is written; every model, the newest two buffers
    checkpoint = latest_checkpoint(tmp_path)
    loaded = EXPO.load(checkpoint.model)
    loaded.load_replay_buffer(checkpoint.replay_buffer)
    assert checkpoint.num_timesteps == loaded.num_timesteps == loaded.replay_buffer.pos == 100


def test_a_write_killed_halfway_leaves_the_previous_checkpoint_and_resuming_replaces_the_abandoned_ones(
    tmp_path, pendulum_demos, monkeypatch
):
    from sb3_expo.common.callbacks import latest_checkpoint, save_checkpoint

    model = make(demonstrations=pendulum_demos)
    for _ in range(3):
        model.learn(50, reset_num_timesteps=False)
        save_checkpoint(model, tmp_path, keep=3)
    assert latest_checkpoint(tmp_path).num_timesteps == 150

    # a run resumed from the checkpoint at 50 into the same folder is killed while it writes its checkpoint at 100
    resumed = EXPO.load(tmp_path / "rl_model_50_steps.zip", env=model.get_env())
    resumed.load_replay_buffer(tmp_path / "rl_model_replay_buffer_50_steps.pkl")
    resumed.learn(50, reset_num_timesteps=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # like a SIGKILL here: nothing after this line of the write runs

    monkeypatch.setattr(resumed, "save_replay_buffer", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(resumed, tmp_path, keep=3)
    assert latest_checkpoint(tmp_path).num_timesteps == 150  # complete checkpoints only; the half-written one is hidden
    monkeypatch.undo()

    (tmp_path / "rl_model_replay_buffer_175_steps.pkl").write_bytes(b"")  # a part whose model a kill never wrote
    save_checkpoint(resumed, tmp_path, keep=2, replace_later=True)  # replaces the abandoned run's 100 and 150
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "rl_model_100_steps.zip",
        "rl_model_50_steps.zip",
        "rl_model_replay_buffer_100_steps.pkl",
        "rl_model_replay_buffer_50_steps.pkl",
    ]  # no temporary files or orphaned parts left, nothing of the abandoned run
    latest = EXPO.load(latest_checkpoint(tmp_path).model)
    th.testing.assert_close(latest.critic.state_dict(), resumed.critic.state_dict())


def test_checkpoints_hold_the_vec_normalize_statistics(tmp_path, pendulum_demos):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from sb3_expo.common.callbacks import ResumableCheckpointCallback, latest_checkpoint

    env = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]))
    make(env=env, demonstrations=pendulum_demos).learn(50, callback=ResumableCheckpointCallback(50, str(tmp_path)))
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.vecnormalize.name == "rl_model_vecnormalize_50_steps.pkl"
    loaded = VecNormalize.load(str(checkpoint.vecnormalize), DummyVecEnv([lambda: gym.make("Pendulum-v1")]))
    np.testing.assert_array_equal(loaded.obs_rms.mean, env.obs_rms.mean)


@pytest.mark.parametrize("algo", ["EXPO", "RLPD", "GoRL"])
def test_parallel_train_callback_is_refused_clearly(algo, pendulum_demos):
    """rl_zoo3's ParallelTrainCallback reloads the model as SAC and trains that in a thread: RLPD's run crashed in the
    thread while the run went on untrained; every one of ours refuses it before training."""
    from rl_zoo3.callbacks import ParallelTrainCallback

    from sb3_expo import RLPD, GoRL

    if algo == "EXPO":
        model = make(demonstrations=pendulum_demos)
    elif algo == "RLPD":
        model = RLPD("MlpPolicy", "Pendulum-v1", demonstrations=pendulum_demos, learning_starts=20, gradient_steps=1)
    else:
        model = GoRL("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=32)
    with pytest.raises(ValueError, match=f"{algo} does not support rl_zoo3's ParallelTrainCallback"):
        model.learn(64, callback=[ParallelTrainCallback()])
    assert model.num_timesteps == 0


@pytest.mark.parametrize("optimize_memory_usage", [False, True])
def test_a_saved_buffer_holds_only_its_filled_rows_and_loads_back_whole(tmp_path, pendulum_demos, optimize_memory_usage):
    memory = dict(optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False))
    memory = memory if optimize_memory_usage else {}
    model = make(demonstrations=pendulum_demos, buffer_size=200_000, **memory)
    model.learn(40)
    model.save_replay_buffer(tmp_path / "buffer")
    size = (tmp_path / "buffer.pkl").stat().st_size
    assert size < 200_000  # 40 rows and the demonstrations, not 200,000 pre-allocated rows (about 10 MB)
    loaded = make(demonstrations=pendulum_demos, buffer_size=200_000, **memory)
    loaded.load_replay_buffer(tmp_path / "buffer")
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        if getattr(model.replay_buffer, name, None) is not None:  # (no next_observations when memory-optimised)
            np.testing.assert_array_equal(getattr(loaded.replay_buffer, name), getattr(model.replay_buffer, name))
    rows = np.arange(40)
    saved, back = model.replay_buffer._get_samples(rows), loaded.replay_buffer._get_samples(rows)
    th.testing.assert_close(back.next_observations, saved.next_observations)  # the last one's too (memory-optimised)
    assert loaded.replay_buffer.pos == 40 and loaded.replay_buffer.observations.shape[0] == 200_000
    loaded.learn(20, reset_num_timesteps=False)  # and fills on from there
    assert loaded.replay_buffer.pos == 60


@pytest.mark.parametrize("algo", ["EXPO", "RLPD"])
def test_the_same_seed_gives_the_same_run(algo, pendulum_demos):
    from sb3_expo import RLPD

    def run():
        if algo == "EXPO":
            model = make(demonstrations=pendulum_demos)
        else:
            small = dict(learning_starts=20, gradient_steps=2, policy_kwargs=dict(net_arch=[32, 32], n_critics=4))
            model = RLPD("MlpPolicy", "Pendulum-v1", seed=0, demonstrations=pendulum_demos, **small)
        return model.learn(60).policy.state_dict()

    first, second = run(), run()
    for name in first:
        th.testing.assert_close(first[name], second[name], rtol=0, atol=0, msg=name)
