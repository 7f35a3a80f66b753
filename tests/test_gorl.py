"""GoRL: the latent policy on SB3's PPO, the frozen decoder and the stage schedule, against hand-checkable cases."""

import csv
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_expo import GoRL
from sb3_expo.datasets.tasks import DMC_TASKS  # (registers GoRL's DeepMind Control task ids)
from sb3_expo.gorl import GoRLPolicy
from sb3_expo.gorl.gorl import LatentActionEnv

from .conftest import AnyObservations

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
    gorl = GoRL("MlpPolicy", "Pendulum-v1", stage_fractions=(1.0,), handoff="last", reward_scale=10, policy_kwargs=kwargs,
                **settings)  # fmt: skip
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
    if count:  # the 2 x 100 collection steps count: set aside first, the stages share the rest in whole rollouts
        # 824 / 4 = 206 -> 3 rollouts of 64; stage 1 starts at 192 + 100 and shares 632 with stage 2: 1/3 -> 3 rollouts
        assert model.stage_ends == [192, 292 + 192, 1024]
        assert switches == [192 + 100, 484 + 100] and 1024 <= model.num_timesteps < 1024 + 64  # within one rollout
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
    tiny = {**TINY, "n_steps": 32}  # 2 envs: rollouts of 64 steps, so 512 steps hold both stages' 3 rollouts
    model = GoRL("MlpPolicy", env, stage_fractions=(0.5, 0.5), handoff="last", seed=0, decoder_data_steps=128, **tiny)
    assert isinstance(model.env, LatentActionEnv) and model.action_space.shape == (1,)
    model.learn(512)
    assert model.stage == 1
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


class RecordActions(gym.Wrapper):
    """Remembers the actions the env itself receives."""

    def __init__(self, env):
        super().__init__(env)
        self.received = []

    def step(self, action):
        self.received.append(np.array(action))
        return super().step(action)


def test_get_env_acts_in_the_envs_own_action_units(recwarn):
    """SB3's own loop, vec_env.step(model.predict(obs)), executes the predicted action, as for every SB3 algorithm."""
    env = DummyVecEnv([lambda: RecordActions(gym.make("Pendulum-v1", max_episode_steps=50))])
    model = GoRL("MlpPolicy", env, stage_fractions=(0.5, 0.5), handoff="last", seed=0, decoder_data_steps=64, **TINY)
    model.learn(448)  # through a refit (2 stages x 3 rollouts + 64 data steps): the decoder is no longer the identity
    assert model.stage == 1 and bool(model.policy.decoder.fitted)
    vec_env = model.get_env()
    assert vec_env is env and vec_env.action_space == gym.make("Pendulum-v1").action_space
    obs = vec_env.reset()
    for _ in range(5):
        action, _ = model.predict(obs, deterministic=True)
        obs, *_ = vec_env.step(action)
        np.testing.assert_array_equal(env.envs[0].received[-1], action[0])  # executed as predicted, not decoded again
    # evaluate_policy(model, model.get_env()) evaluates the policy predict() gives: the same returns as a fresh env's
    fresh = DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=50)])
    vec_env.seed(5)
    fresh.seed(5)
    ours = evaluate_policy(model, vec_env, n_eval_episodes=1, return_episode_rewards=True, warn=False)
    assert ours == evaluate_policy(model, fresh, n_eval_episodes=1, return_episode_rewards=True, warn=False)
    # the SB3 API around it still works: set_env with it, callbacks, continuing a run
    model.set_env(model.get_env())
    eval_callback = EvalCallback(Monitor(gym.make("Pendulum-v1", max_episode_steps=50)), eval_freq=64, n_eval_episodes=1)
    model.learn(128, reset_num_timesteps=False, callback=eval_callback)
    assert eval_callback.last_mean_reward < 0 and model.get_env() is env and model.num_timesteps >= 256 + 128
    assert not [w for w in recwarn if "not of the same type" in str(w.message)]


def test_the_same_seed_gives_the_same_run_through_a_stage_switch(tmp_path):
    """The hand-off evaluations (which pick the policy that collects the decoder data) are seeded with the run."""

    def run(name):
        model = GoRL("MlpPolicy", "Pendulum-v1", stage_fractions=(0.5, 0.5), stage_evals=2, eval_episodes=1, seed=7,
                     decoder_data_steps=64, **TINY)  # fmt: skip
        model.set_logger(configure(str(tmp_path / name), ["csv"]))
        model.learn(448)  # 2 stages x 3 rollouts of 64, and 64 steps of decoder data
        with open(tmp_path / name / "progress.csv") as f:
            rows = list(csv.DictReader(f))
        returns = [row["gorl/stage_eval_return"] for row in rows if row["gorl/stage_eval_return"]]
        return model, returns

    (first, first_returns), (second, second_returns) = run("a"), run("b")
    assert first.stage == 1 and len(first_returns) >= 3  # (the last update's are never dumped: SB3 logs before train)
    assert first_returns == second_returns  # the same evaluations (they pick the policy whose rollouts fit the decoder)
    assert first.stage_history == second.stage_history
    for a, b in zip(first.policy.state_dict().values(), second.policy.state_dict().values()):
        assert th.equal(a, b)


def test_ppo_arguments_and_a_ppo_zoo_config_carry_over():
    """Every PPO constructor argument is GoRL's too; a PPO entry of rl-zoo3's ppo.yml runs with its hyperparameters."""
    import rl_zoo3
    import yaml
    from stable_baselines3.common.buffers import RolloutBuffer
    from torch import nn

    class TaggedBuffer(RolloutBuffer):
        def __init__(self, *args, tag=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.tag = tag

    with open(f"{rl_zoo3.__path__[0]}/hyperparams/ppo.yml") as f:
        entry = dict(yaml.safe_load(f)["HalfCheetah-v4"])
    for zoo_only in ("normalize", "n_envs", "n_timesteps", "policy"):
        entry.pop(zoo_only)
    entry["policy_kwargs"] = eval(entry["policy_kwargs"], {"nn": nn})  # as the zoo reads it
    entry.update(n_steps=64, batch_size=32, n_epochs=2)  # tiny
    ppo_only = dict(
        clip_range_vf=0.2,
        normalize_advantage=False,
        target_kl=1e-12,  # stops every update within its first epoch
        rollout_buffer_class=TaggedBuffer,
        rollout_buffer_kwargs=dict(tag="mine"),
        use_sde=False,
        sde_sample_freq=-1,
    )
    model = GoRL("MlpPolicy", "Pendulum-v1", stage_fractions=(0.5, 0.5), handoff="last", decoder_data_steps=64,
                 decoder_fit_steps=50, seed=0, **entry, **ppo_only)  # fmt: skip
    model.learn(448)
    assert model.stage == 1
    assert model.normalize_advantage is False and model.target_kl == 1e-12
    assert model.clip_range_vf(1.0) == 0.2 and model.clip_range(1.0) == model.later_clip_range  # vf clip: every stage
    assert isinstance(model.rollout_buffer, TaggedBuffer) and model.rollout_buffer.tag == "mine"
    assert model._n_updates == 6  # 6 updates (3 per stage, the fewest a stage gets), each stopped in its first epoch
    assert model.policy.mlp_extractor.policy_net[0].out_features == 256  # the entry's net_arch
    with pytest.raises(ValueError, match="use_sde"):
        GoRL("MlpPolicy", "Pendulum-v1", use_sde=True)


class Float64Actions(gym.ActionWrapper):
    def __init__(self, env):
        super().__init__(env)
        space = env.action_space
        self.action_space = gym.spaces.Box(space.low.astype(np.float64), space.high.astype(np.float64), dtype=np.float64)

    def action(self, action):
        return action


def test_predict_goes_through_sb3s_checks_and_action_dtype():
    model = GoRL("MlpPolicy", Float64Actions(gym.make("Pendulum-v1")), seed=0, **TINY)
    env = gym.make("Pendulum-v1")
    obs, info = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.dtype == np.float64 and action.shape == (1,)  # as SB3's PPO on this action space
    assert PPO("MlpPolicy", Float64Actions(gym.make("Pendulum-v1"))).predict(obs)[0].dtype == action.dtype
    assert model.predict(obs[None], deterministic=True)[0].shape == (1, 1)
    with pytest.raises(ValueError, match="You are probably mixing Gym API with SB3 VecEnv API"):
        model.predict((obs, info))
    with pytest.raises(ValueError, match="Unexpected observation shape"):
        model.predict(np.zeros(5, np.float32))


class DictObservations(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gym.spaces.Dict({"state": env.observation_space})

    def observation(self, observation):
        return {"state": observation}


@pytest.mark.parametrize("policy", ["MlpPolicy", "MultiInputPolicy"])
def test_dict_observations_are_refused_at_construction_saying_what_to_do(policy):
    with pytest.raises(ValueError, match="FlattenObservation"):
        GoRL(policy, DictObservations(gym.make("Pendulum-v1")), **TINY)
    flat = gym.wrappers.FlattenObservation(DictObservations(gym.make("Pendulum-v1")))
    GoRL("MlpPolicy", flat, stage_fractions=(1.0,), handoff="last", **TINY).learn(64)  # what the message says works


@pytest.mark.parametrize("budget", [64, 150, 500, 800, 1400])
def test_any_budget_ends_within_a_rollout_with_every_stage_trained(budget, recwarn):
    """Stages are whole rollouts, at least 3 each; a budget too small for all four trains fewer, and says so."""
    data = 64
    model = GoRL("MlpPolicy", "Pendulum-v1", handoff="last", seed=0, decoder_data_steps=data, **TINY)  # rollouts of 64
    model.learn(budget)
    assert budget <= model.num_timesteps < budget + 64  # as PPO: stops within one rollout of the budget
    starts = [0] + [h["ended_at"] for h in model.stage_history]  # each stage starts where the last one's data end
    ends = [h["ended_at"] - data for h in model.stage_history] + [model.num_timesteps]
    lengths = [end - start for start, end in zip(starts, ends)]
    stages = len(lengths)
    assert stages == min(4, max(1, (budget + data) // (3 * 64 + data)))  # as many as fit, 3 rollouts + data each
    if budget >= 3 * 64:
        assert all(length >= 3 * 64 for length in lengths)  # no stage hands over (or returns) an untrained policy
    told = [str(w.message) for w in recwarn if "too few for its 4 stage(s)" in str(w.message)]
    assert bool(told) == (stages < 4)
    if stages == 1:
        assert "training stage 0 only" in told[0]


# ----------------------------------------------------------------------------- the official optimiser and reward scale
def first_update(model):
    """One rollout and PPO's update alone: the actor's and critic's gradient norms at the first minibatch (before the
    clip) and how far the update moves the latent mean over the rollout's states."""
    policy = model.policy
    actor = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    critic = [*policy.mlp_extractor.value_net.parameters(), *policy.value_net.parameters()]
    norms, clip = [], th.nn.utils.clip_grad_norm_

    def recording_clip(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        clipped = {id(p) for p in parameters if p.grad is not None}
        assert clipped == {id(p) for p in actor + critic}  # one clip over the latent policy and the value net together
        norms.append([float(th.norm(th.stack([p.grad.norm() for p in ps]))) for ps in (actor, critic)])
        return clip(parameters, max_norm, *args, **kwargs)

    with warnings.catch_warnings():  # (a one-rollout budget: GoRL says it trains stage 0 only)
        warnings.simplefilter("ignore")
        _, callback = model._setup_learn(model.n_steps, None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    obs = th.as_tensor(model.rollout_buffer.observations).reshape(model.n_steps, -1)
    mean = lambda: policy.get_distribution(obs).distribution.mean.detach().clone()  # noqa: E731
    before = mean()
    th.nn.utils.clip_grad_norm_ = recording_clip
    try:
        PPO.train(model)
    finally:
        th.nn.utils.clip_grad_norm_ = clip
    return norms[0], float((mean() - before).pow(2).mean().sqrt())


def test_gorls_adam_has_eps_1e_8_in_every_stage_and_a_users_optimizer_kwargs_win():
    model = GoRL("MlpPolicy", "Pendulum-v1", stage_fractions=(0.5, 0.5), handoff="last", decoder_data_steps=64, **TINY)
    assert type(model.policy.optimizer) is th.optim.Adam and model.policy.optimizer.defaults["eps"] == 1e-8
    optimized = {id(p) for group in model.policy.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.policy.parameters() if p.requires_grad}  # one Adam: actor and critic
    model.learn(448)
    assert model.stage == 1 and model.policy.optimizer.defaults["eps"] == 1e-8  # the next stage's fresh optimizer too
    mine = GoRL("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(optimizer_kwargs=dict(eps=1e-5, weight_decay=0.1)))
    assert mine.policy.optimizer.defaults["eps"] == 1e-5 and mine.policy.optimizer.defaults["weight_decay"] == 0.1
    sgd = GoRL("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(optimizer_class=th.optim.SGD))
    assert "eps" not in sgd.policy.optimizer_kwargs


def test_default_reward_scale_is_x10_on_dmc_and_x1_on_pendulum_where_x10_drowns_the_policys_first_step(tmp_path):
    """GoRL's x10 is for DMC's [0, 1] rewards; on Pendulum's (down to -16 per step) it makes the value loss's gradient
    take the shared clip: the default ('auto') keeps x10 on DMC and uses 1 elsewhere."""
    assert GoRL("MlpPolicy", "HopperStandDMC-v0", **TINY).reward_scale == 10.0
    settings = dict(n_steps=512, batch_size=64, n_epochs=4, seed=0)  # (the seed: the same first rollout for both)
    default = GoRL("MlpPolicy", "Pendulum-v1", **settings)
    (actor, critic), _ = first_update(default)
    official = GoRL("MlpPolicy", "Pendulum-v1", reward_scale=10, **settings)
    (actor_x10, critic_x10), _ = first_update(official)
    assert default.reward_scale == 1.0 and official.reward_scale == 10
    assert actor == pytest.approx(actor_x10, rel=1e-3)  # normalised advantages: the same policy gradient
    assert critic_x10 > 9 * critic and critic_x10 > 1000 * actor_x10  # x10: the critic's gradient is the clip's norm
    kept = lambda a, c: a * min(1.0, 0.5 / float(np.hypot(a, c)))  # noqa: E731  (the actor's gradient after the clip)
    assert kept(actor, critic) > 5 * kept(actor_x10, critic_x10)
    default.save(tmp_path / "gorl")  # the scale chosen is the model's: kept by save/load, with any env
    assert GoRL.load(tmp_path / "gorl", env=gym.make("Pendulum-v1")).reward_scale == 1.0
    with pytest.raises(ValueError, match="reward_scale='x10'"):
        GoRL("MlpPolicy", "Pendulum-v1", reward_scale="x10")


@pytest.mark.parametrize("env_id", sorted(DMC_TASKS))
def test_the_papers_dmc_tasks_are_flat_gymnasium_envs_with_dmcs_episodes_and_rewards(env_id):
    assert len(DMC_TASKS) == 6 and "HopperStandDMC-v0" in DMC_TASKS  # GoRL's six (registered on import)
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == 1000
    assert isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) == 1
    assert isinstance(env.action_space, gym.spaces.Box) and np.all(env.action_space.low == -1)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, gym.make(env_id).reset(seed=0)[0])  # seeded
    env.action_space.seed(0)
    rewards, steps, done = [], 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs in env.observation_space
        rewards.append(float(reward))
        steps += 1
        done = terminated or truncated
    assert steps == 1000 and truncated and not terminated  # DMC: 1000 steps, a time limit, never a termination
    assert 0.0 <= min(rewards) and max(rewards) <= 1.0


@pytest.mark.parametrize("space", [spaces.Discrete(4), spaces.MultiDiscrete([3, 2])], ids=str)
def test_discrete_observations_are_refused_with_what_to_do(space):
    """The docs' "Can I use?" table: GoRL's decoder reads the raw observation vector, so an index is refused clearly."""

    class Discrete(gym.Env):
        observation_space, action_space = space, spaces.Box(-1, 1, (2,), np.float32)

    with pytest.raises(ValueError, match="One-hot encode"):
        GoRL("MlpPolicy", Discrete())


def test_multi_binary_observations_train_and_predict():
    model = GoRL("MlpPolicy", AnyObservations(spaces.MultiBinary(3)), n_steps=64, batch_size=32, n_epochs=2, seed=0)
    model.learn(64)
    action = model.predict(np.array([1, 0, 1], dtype=np.int8), deterministic=True)[0]
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)


# ----------------------------------------------------------------------------- v2's diffusion recipe, data-sized fits
def as_number(value):
    return value(1.0) if callable(value) else value


def test_the_recipes_set_each_stages_settings_and_explicit_arguments_win():
    v1 = GoRL("MlpPolicy", "Pendulum-v1", **TINY)
    v2 = GoRL("MlpPolicy", "Pendulum-v1", recipe="v2-diffusion", **TINY)
    assert (v1.recipe, v1.decoder, v1.latent_reset, v1.decoder_pair_weight) == ("v1-flow", "flow", "fresh", 0.0)
    assert (v2.recipe, v2.decoder, v2.latent_reset, v2.decoder_pair_weight) == ("v2-diffusion", "ddim", "warm", 1e-3)
    assert v2.policy.decoder.kind == "ddim"
    generative = v2.policy.decoder.fresh_generative()  # v2's DDIM form: epsilon_delta on linear alpha-bar, scale 0.25
    assert (generative.parameterization, generative.schedule, generative.output_scale) == (
        "epsilon_delta",
        "linear_alpha_bar",
        0.25,
    )
    columns = ("learning_rate", "clip_range", "max_grad_norm", "latent_penalty", "warm_start")
    table = lambda model: [tuple(as_number(model.stage_settings(k)[c]) for c in columns) for k in range(4)]  # noqa: E731
    assert table(v1) == [(1e-3, 0.15, 0.5, 5e-4, False)] + [(1e-3, 0.3, 1.0, 1e-3, False)] * 3  # v1 (run_gorl_fm.py)
    assert table(v2) == [  # v2 gorl_diffusion (docs/gorl-reference.md section 3.2's table)
        (1e-3, 0.15, 0.5, 5e-4, False),
        (3e-4, 0.15, 0.5, 1e-3, True),
        (1e-4, 0.15, 0.5, 1e-3, True),
        (1e-4, 0.15, 0.5, 1e-3, True),
    ]
    mine = GoRL("MlpPolicy", "Pendulum-v1", recipe="v2-diffusion", decoder="flow", later_clip_range=0.3,
                later_max_grad_norm=1.0, later_learning_rate=5e-4, latent_reset="fresh", decoder_pair_weight=0,
                learning_rate=2e-3, **TINY)  # fmt: skip
    assert (mine.decoder, mine.latent_reset, mine.decoder_pair_weight) == ("flow", "fresh", 0.0)
    assert table(mine)[0][0] == 2e-3 and table(mine)[1:] == [(5e-4, 0.3, 1.0, 1e-3, False)] * 3
    partly = GoRL("MlpPolicy", "Pendulum-v1", recipe="v2-diffusion", later_clip_range=0.2, **TINY)  # one value overridden
    assert table(partly)[1] == (3e-4, 0.2, 0.5, 1e-3, True) and partly.decoder == "ddim"
    with pytest.raises(ValueError, match="recipe='v3'"):
        GoRL("MlpPolicy", "Pendulum-v1", recipe="v3")


def test_the_v2_diffusion_recipe_runs_through_stage_switches_with_its_settings(tmp_path):
    """Three stages: at each switch the best latent policy is carried over (weights and observation statistics) with a
    fresh Adam, the decoder is a DDIM fitted with the pairwise term on the recorded latents, and the stage's PPO
    settings are in force (stage 1: lr 3e-4, stage 2: 1e-4; clip 0.15, grad norm 0.5, lambda_z 1e-3)."""
    model = GoRL("MlpPolicy", "Pendulum-v1", recipe="v2-diffusion", stage_fractions=(1, 1, 1), stage_evals=1, eval_episodes=1,
                 decoder_data_steps=64, seed=0, **TINY)  # fmt: skip
    seen, original = [], model.next_stage

    def next_stage():
        best = {k: v.clone() for k, v in model.policy.best.state_dict().items()}
        original()
        policy = model.policy
        now = {f"{n}.{k}": v for n, m in policy._latent_modules().items() for k, v in m.state_dict().items()}
        assert best.keys() == now.keys() and all(th.equal(best[k], now[k]) for k in best)  # the best policy, carried over
        assert float(policy.features_extractor.count) > 0  # with its observation statistics
        assert not policy.optimizer.state  # a fresh Adam
        seen.append(
            (policy.optimizer.param_groups[0]["lr"], model.clip_range(1.0), model.max_grad_norm, policy.latent_penalty)
        )

    model.next_stage = next_stage
    model.learn(3 * 3 * 64 + 2 * 64)
    assert model.stage == 2 and seen == [(3e-4, 0.15, 0.5, 1e-3), (1e-4, 0.15, 0.5, 1e-3)]
    assert model.policy.optimizer.param_groups[0]["lr"] == 1e-4  # PPO's updates in stage 2 ran at it
    assert model.policy.decoder.kind == "ddim" and all("pair_loss" in h for h in model.stage_history)
    del model.next_stage  # (the wrapper above: not part of the model)
    model.save(tmp_path / "gorl")
    loaded = GoRL.load(tmp_path / "gorl", env=gym.make("Pendulum-v1"))
    assert loaded.stage == 2 and loaded.lr_schedule(1.0) == 1e-4 and loaded.recipe == "v2-diffusion"


class TwoDimActions(gym.Env):
    observation_space, action_space = spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-1, 1, (2,), np.float32)


def test_the_pairwise_loss_ties_the_decoder_to_the_recorded_latents_through_the_decode():
    """u is the recorded z turned by 90 degrees: N(0, I) either way, so the plain loss fits the marginal (and the
    zero-initialised decoder, the identity, already has it) without tying z to u; the pairwise term, whose gradient runs
    through the 10-step decode, does."""
    rng = np.random.default_rng(0)
    n = 2048
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    z = rng.normal(size=(n, 2)).astype(np.float32)
    u = np.stack([-z[:, 1], z[:, 0]], axis=1)
    errors = {}
    for weight in (0.0, 0.5):  # (v2 uses 1e-3 on millions of steps; a larger weight shows it in a few hundred)
        model = GoRL("MlpPolicy", TwoDimActions(), recipe="v2-diffusion", decoder_pair_weight=weight, seed=0,
                     decoder_batch_size=256, decoder_epochs=40, decoder_patience=None, decoder_min_fit_steps=0)  # fmt: skip
        fit = model.fit_decoder(obs, u, np.arange(n) // 64, latents=z)
        assert ("pair_loss" in fit) == (weight > 0)
        with th.no_grad():
            decoded = model.policy.decoder(th.as_tensor(obs), th.as_tensor(z)).numpy()
        errors[weight] = float(np.mean((decoded - u) ** 2))
    assert errors[0.0] > 1.5  # ~2: the identity's E|Rz - z|^2 per dimension
    assert errors[0.5] < 0.1, errors  # (measured: 1.88 without the term, 0.004 with it)


def test_the_decoder_fit_is_sized_by_the_data_and_stops_early_keeping_the_best_weights():
    model = GoRL("MlpPolicy", "Pendulum-v1", decoder_batch_size=128, decoder_epochs=2, decoder_patience=None,
                 decoder_min_fit_steps=0, seed=0)  # fmt: skip
    assert model.decoder_fit_steps is None  # no cap by default
    rng = np.random.default_rng(0)
    fits = []
    for n in (1000, 4000):
        obs, u = rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 1)).astype(np.float32)
        fits.append(model.fit_decoder(obs, u, np.arange(n) // 50))
    assert [f["fit_epochs"] for f in fits] == [2, 2]
    assert fits[0]["fit_steps"] in (12, 14) and fits[1]["fit_steps"] in (56, 58)  # 2 x floor(~900 / 128), 2 x ~3600 / 128
    assert model.decoder_fit_plan(100) == (100, 1, 2)  # less data than a batch: one full batch per epoch
    model.decoder_min_fit_steps = 500
    assert model.decoder_fit_plan(100) == (100, 1, 500)  # the floor
    model.decoder_fit_steps = 30
    assert model.decoder_fit_plan(100_000)[2] == 30 and model.decoder_fit_plan(100)[2] == 30  # the cap wins
    # early stop: a scripted validation curve; the best epoch is the 2nd, patience 3 -> it stops after the 5th
    model.decoder_fit_steps, model.decoder_min_fit_steps, model.decoder_epochs, model.decoder_patience = None, 0, 50, 3
    curve, snapshots = iter([1.0, 0.5, 0.7, 0.6, 0.8, 0.9, 1.0]), []

    def validation(generative, *args):
        snapshots.append({k: v.clone() for k, v in generative.state_dict().items()})
        return next(curve)

    model._validation_loss = validation
    obs, u = rng.normal(size=(1000, 3)).astype(np.float32), rng.normal(size=(1000, 1)).astype(np.float32)
    fit = model.fit_decoder(obs, u, np.arange(1000) // 50)
    assert (fit["fit_epochs"], fit["best_epoch"], fit["val_loss"], len(snapshots)) == (5, 2, 0.5, 5)
    kept = model.policy.decoder.generative.state_dict()
    assert all(th.equal(kept[k], snapshots[1][k]) for k in kept)  # the best epoch's weights, not the last one's
    assert not all(th.equal(kept[k], snapshots[-1][k]) for k in kept)
