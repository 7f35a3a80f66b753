"""GoRL (Zhang, Wan et al., arXiv 2512.02581): a Gaussian latent policy trained by PPO, acting through a frozen
generative decoder that is refitted, from the policy's own rollouts, between stages.

SB3's PPO does the reinforcement learning unchanged (rollout buffer, GAE, clipping, logging, callbacks); this class
adds the stage schedule (docs/gorl-reference.md section 3): the env is driven through the decoder (PPO's actions are
latents), and at each stage boundary the stage's best latent policy collects data, a new decoder is fitted on it
from scratch, and the latent policy restarts. The latent layer stays inside: predict() and get_env() are in the env's
own action units, as for every SB3 algorithm.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import ConstantSchedule
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, unwrap_vec_normalize

from sb3_expo.common.callbacks import refuse_parallel_training
from sb3_expo.gorl.policies import GoRLPolicy, MlpPolicy

SelfGoRL = TypeVar("SelfGoRL", bound="GoRL")
LATENT_BOUND = 1e4
MIN_STAGE_ROLLOUTS = 3  # the fewest PPO updates a stage gets: a shorter one would hand over an untrained policy
DICT_OBSERVATIONS = (
    "GoRL takes Box observations (its latent policy's running normaliser and its decoder read one flat vector): "
    "flatten dict observations first, e.g. gymnasium.wrappers.FlattenObservation(env), and use 'MlpPolicy' (the "
    "DeepMind Control tasks: sb3_expo.datasets.tasks registers them flattened, e.g. HopperStandDMC-v0)."
)


def _env_like(venv: VecEnv | None) -> gym.Env | None:
    """A new env like the (first) one inside a VecEnv: its registered id (task wrappers included: gym.make records
    the outermost id on the unwrapped env) and its time limit; None if it has no registered id or no time limit."""
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    if not isinstance(venv, DummyVecEnv):
        return None
    env, limit = venv.envs[0], None
    spec = env.unwrapped.spec
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            limit = env._max_episode_steps
            break
        env = env.env
    if spec is None or (limit is None and spec.max_episode_steps is None):
        return None  # evaluation episodes might never end
    return gym.make(spec, max_episode_steps=limit) if limit else gym.make(spec)


def is_dm_control(venv: VecEnv) -> bool:
    """Whether the env is a DeepMind Control suite task (rewards in [0, 1] per step by the suite's design): shimmy's
    dm_control/... ids, this package's <Domain><Task>DMC-v0 ids, or shimmy's dm_control env however it was made."""
    from sb3_expo.datasets.tasks import DMC_TASKS

    try:
        spec = venv.get_attr("spec", indices=[0])[0]
    except Exception:  # an env that cannot say (e.g. a VecEnv of another kind)
        spec = None
    if spec is not None and (spec.id.startswith("dm_control/") or spec.id in DMC_TASKS):
        return True
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    if isinstance(venv, DummyVecEnv):
        return type(venv.envs[0].unwrapped).__module__.startswith("shimmy.dm_control")
    return False


def auto_reward_scale(venv: VecEnv) -> float:
    """reward_scale='auto': GoRL's x10 where its rewards come from (DeepMind Control, [0, 1] per step), else 1."""
    return 10.0 if is_dm_control(venv) else 1.0


class LatentActionEnv(VecEnvWrapper):
    """The env as PPO sees it in GoRL: actions are latents z, decoded into tanh(g(s, z)) with the raw observation;
    rewards are scaled by `reward_scale` (brax PPO's reward scaling, which GoRL uses; episode statistics stay raw)."""

    def __init__(self, venv: VecEnv, reward_scale: float = 1.0):
        action_space = venv.action_space
        if not isinstance(action_space, spaces.Box) or not np.all(np.isfinite(action_space.low)):
            raise ValueError(f"GoRL needs a bounded Box action space, got {action_space}.")
        shape = (int(np.prod(action_space.shape)),)
        # the latent is unbounded in GoRL; SB3 asks for finite bounds, which a Gaussian with sigma <= 10 never meets
        super().__init__(venv, action_space=spaces.Box(-LATENT_BOUND, LATENT_BOUND, shape, np.float32))
        self.env_action_space, self.reward_scale = action_space, reward_scale
        self.policy: GoRLPolicy | None = None  # set by GoRL once its policy exists
        self._raw_obs: np.ndarray | None = None
        self.last_pre_tanh: np.ndarray | None = None  # u of the last step (what decoder data record)

    def _original(self, obs: np.ndarray) -> np.ndarray:
        normalizer = unwrap_vec_normalize(self.venv)
        return normalizer.get_original_obs() if normalizer is not None else obs

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._raw_obs = self._original(obs)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        assert self.policy is not None and self._raw_obs is not None, "GoRL sets the policy and resets the env first"
        policy = self.policy
        with th.no_grad():
            obs = th.as_tensor(self._raw_obs, device=policy.device).float().flatten(1)
            z = th.as_tensor(actions, device=policy.device).float().reshape(len(obs), -1)
            u = policy.decoder(obs, z)
            env_actions = policy.env_actions(u)
        self.last_pre_tanh = u.cpu().numpy()
        env_actions = env_actions.cpu().numpy().reshape((-1, *self.env_action_space.shape))
        self.venv.step_async(env_actions.astype(self.env_action_space.dtype, copy=False))

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self._raw_obs = self._original(obs)
        return obs, rewards * self.reward_scale, dones, infos


class GoRL(PPO):
    """
    GoRL: PPO on a Gaussian latent policy whose latent is the starting noise of a frozen generative decoder.

    Stage k trains the latent policy with PPO (decoder frozen) for its share of the budget; at its end the stage's best
    latent policy (by deterministic evaluation) collects data with stochastic latents, a new decoder is fitted from
    scratch to map fresh N(0, I) noise to those pre-tanh actions, and the next stage starts a new latent policy.
    Stage 0 decodes with the identity, so it is Gaussian PPO in pre-tanh space.

    It is used as PPO: predict() returns env actions (the decoded latent), get_env() is the env in its own action
    units, and every PPO argument is accepted (model.env, what PPO's rollouts step, is that env behind the latent-action
    layer, LatentActionEnv). Not supported: use_sde (the latent's sigma is a network output, GoRL's head) and dict
    observations (flatten them first).

    Where the values come from (official code, docs/gorl-reference.md): v1 = the repository's first release (the
    paper's figure), v2 = its later release, ours = chosen here, usually because the official value needs 2048 MJX
    environments.

    :param decoder: "flow" (rectified flow; v1 and v2 "gorl_fm") or "ddim" (v2 "gorl_diffusion" form)
    :param decoder_steps: sampler steps (10, v1/v2); decoder_width, decoder_layers: the MLP (64 x 4, v1 pipeline)
    :param stage_fractions: the stages' shares of the budget (1/3, 1/3, 1/6, 1/6: v1 and v2's 60M/60M/30M/30M)
    :param clip_range, later_clip_range: PPO clip in stage 0 and later stages (0.15, 0.3: v1; v2 diffusion keeps 0.15);
        a clip_range schedule applies to stage 0 only
    :param clip_range_vf: PPO's value clipping (None: off, as officially and in SB3); the same in every stage: it bounds
        each update's value change around that rollout's own values, which a stage switch does not change. It is in
        the units of the scaled rewards (reward_scale), as GoRL's value net is
    :param normalize_advantage, target_kl, rollout_buffer_class, rollout_buffer_kwargs: PPO's, the same in every stage
        (the official code normalises advantages per minibatch, as PPO's default, and has no target_kl)
    :param use_sde: refused when True (the latent's sigma is an output of GoRL's head, not gSDE's); sde_sample_freq
        is accepted and unused
    :param max_grad_norm, later_max_grad_norm: gradient-norm clip (0.5, 1.0: v1; v2 uses 0.5 throughout)
    :param latent_penalty, later_latent_penalty: lambda_z of the L2 term mean(mu^2) + mean(sigma^2) (5e-4, 1e-3: v1, v2)
    :param latent_reset: "fresh" (v1, v2 flow: a new latent policy, value net and observation statistics every stage,
        same seed) or "warm" (v2 diffusion: keep them, fresh optimizer)
    :param latent_init: "default" (v1) or "gaussian" (v2 option: z ~ N(0, I) exactly at each stage's start)
    :param handoff: "best" (v1, v2: the stage's best policy by deterministic evaluation collects the decoder data) or
        "last"; stage_evals evaluations of eval_episodes episodes per stage (ours: 5 x 5; v1: 10 x 128 envs)
    :param eval_env: the env those evaluations use (default: a new one made from the training env's id); with a seed,
        each evaluation resets it with that seed, so a stage's policies are compared on the same episodes and a seeded
        run repeats exactly
    :param decoder_data_steps: env steps collected for each refit: a fraction of the budget (float) or a count (int)
        (ours 0.025; v2 collects 4096 episodes, 2.3% of its 180M budget; v1 19.7M steps, 11%)
    :param count_collection_steps: count those steps in num_timesteps (ours, default) or not (the official accounting,
        which leaves them off the x-axis)
    :param decoder_fit_steps, decoder_batch_size, decoder_learning_rate: the fit (ours 5000 x 1024; lr 3e-4: v1/v2;
        v2 fits 50,000 steps of 8192), keeping the step with the best validation loss (v2: every 100 steps)
    :param decoder_val_fraction: episodes held out for validation (0.1, v2's episode-level split)
    :param decoder_target_clip: pre-tanh targets clipped to +-3 (v2; v1 does not clip)
    :param reward_scale: rewards times this inside the PPO update (value targets and GAE; logged returns stay raw).
        "auto" (ours, default): 10 on DeepMind Control suite tasks (shimmy's dm_control/... envs and this package's
        <Domain><Task>DMC-v0 ids), where rewards lie in [0, 1] per step and v1/v2 use 10 (brax PPO config), and 1
        everywhere else (SB3's PPO: unscaled): x10 of a larger reward (Pendulum's, down to -16 per step) makes the
        value loss's gradient the one norm clip that actor and critic share (the actor's part: 0.03% of it, x1: 0.3%),
        and the first update moves the latent mean 1.5x less (2.2x with SB3's Adam eps 1e-5); returns at 50k steps
        were level (benchmarks/results/gorl/reward_scale.md). A number is used as given; model.reward_scale holds it
    :param policy_kwargs: the policy's (GoRLPolicy); its optimizer is Adam with eps 1e-8 (v1/v2: optax's Adam, whose
        eps is 1e-8; SB3's PPO uses 1e-5) over the latent policy and the value net together, one gradient-norm clip
        over both (max_grad_norm, as optax.clip_by_global_norm on the whole update): pass
        policy_kwargs=dict(optimizer_kwargs=...) to change it (the user's optimizer_kwargs replace this default)

    PPO's own defaults here are GoRL's (playground brax config): learning_rate 1e-3, n_epochs 16, gamma 0.995,
    gae_lambda 0.95, ent_coef 0.01 (latent entropy, no tanh term), vf_coef 0.25, 32 minibatches per update
    (batch_size 64 of n_steps 2048: ours, scaled down from 30 x 2048 environments)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: GoRLPolicy

    def __init__(
        self,
        policy: str | type[GoRLPolicy],
        env: GymEnv | str,
        decoder: str = "flow",
        decoder_steps: int = 10,
        decoder_width: int = 64,
        decoder_layers: int = 4,
        stage_fractions: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 6, 1 / 6),
        learning_rate: float = 1e-3,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 16,
        gamma: float = 0.995,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.15,
        later_clip_range: float = 0.3,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.01,
        vf_coef: float = 0.25,
        max_grad_norm: float = 0.5,
        later_max_grad_norm: float = 1.0,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
        latent_penalty: float = 5e-4,
        later_latent_penalty: float = 1e-3,
        latent_reset: str = "fresh",
        latent_init: str = "default",
        handoff: str = "best",
        stage_evals: int = 5,
        eval_episodes: int = 5,
        eval_env: GymEnv | None = None,
        decoder_data_steps: float = 0.025,
        count_collection_steps: bool = True,
        decoder_fit_steps: int = 5000,
        decoder_batch_size: int = 1024,
        decoder_learning_rate: float = 3e-4,
        decoder_val_fraction: float = 0.1,
        decoder_target_clip: float | None = 3.0,
        reward_scale: float | str = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if latent_reset not in ("fresh", "warm"):
            raise ValueError(f"latent_reset={latent_reset!r}: use 'fresh' (v1) or 'warm' (v2 diffusion).")
        if handoff not in ("best", "last"):
            raise ValueError(f"handoff={handoff!r}: use 'best' or 'last'.")
        if not stage_fractions or any(f <= 0 for f in stage_fractions):
            raise ValueError(f"stage_fractions={stage_fractions}: give one positive share of the budget per stage.")
        if (latent_penalty or later_latent_penalty) and not ent_coef:
            raise ValueError(
                "GoRL's latent penalty rides on PPO's entropy term: give ent_coef > 0 (GoRL uses 0.01), or turn the "
                "penalty off (latent_penalty=0, later_latent_penalty=0)."
            )
        if use_sde:
            raise ValueError(
                "GoRL does not support use_sde: its latent policy's standard deviation is an output of its network "
                "(GoRL's head), not gSDE's. Leave use_sde (and sde_sample_freq) out of a PPO config."
            )
        if policy == "MultiInputPolicy":
            raise ValueError(DICT_OBSERVATIONS)
        if reward_scale != "auto" and not isinstance(reward_scale, numbers.Real):
            raise ValueError(f"reward_scale={reward_scale!r}: use 'auto' or a number.")
        self.reward_scale = reward_scale  # 'auto' is resolved once the env is known (_connect_env)
        policy_kwargs = {**(policy_kwargs or {}), "decoder": decoder, "decoder_steps": decoder_steps}
        policy_kwargs.update(decoder_width=decoder_width, decoder_layers=decoder_layers, latent_init=latent_init)
        policy_kwargs.setdefault("init_seed", 0 if seed is None else int(seed))
        self.decoder, self.decoder_steps, self.decoder_width, self.decoder_layers = (
            decoder,
            decoder_steps,
            decoder_width,
            decoder_layers,
        )
        self.stage_fractions = tuple(float(f) / sum(stage_fractions) for f in stage_fractions)
        self.later_clip_range, self.later_max_grad_norm = later_clip_range, later_max_grad_norm
        self.latent_penalty, self.later_latent_penalty = latent_penalty, later_latent_penalty
        self.latent_reset, self.latent_init, self.handoff = latent_reset, latent_init, handoff
        self.stage_evals, self.eval_episodes, self.eval_env = stage_evals, eval_episodes, eval_env
        self.decoder_data_steps, self.count_collection_steps = decoder_data_steps, count_collection_steps
        self.decoder_fit_steps, self.decoder_batch_size = decoder_fit_steps, decoder_batch_size
        self.decoder_learning_rate, self.decoder_val_fraction = decoder_learning_rate, decoder_val_fraction
        self.decoder_target_clip = decoder_target_clip
        self.stage = 0
        self.stage_ends: list[int] = []  # num_timesteps at which each stage ends (planned at the first learn())
        self.stage_history: list[dict[str, Any]] = []  # per finished stage: where it ended, the decoder fit
        self._next_eval = 0
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            target_kl=target_kl,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if isinstance(self.env, LatentActionEnv):
            self.policy_kwargs["env_action_space"] = self.env.env_action_space
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ env
    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """SB3's wrapping, then the latent-action layer (construction, load(env=...) and set_env all come here)."""
        if isinstance(env, LatentActionEnv):
            return env
        venv = PPO._wrap_env(env, verbose, monitor_wrapper)
        if isinstance(venv.observation_space, spaces.Dict):
            raise ValueError(DICT_OBSERVATIONS)
        if isinstance(venv.observation_space, (spaces.Discrete, spaces.MultiDiscrete)):
            raise ValueError(
                f"GoRL takes Box or MultiBinary observations, not {venv.observation_space}: its decoder reads the raw "
                "observation vector, which for a discrete space is an index. One-hot encode it first (a gymnasium "
                "ObservationWrapper returning a Box)."
            )
        if unwrap_vec_normalize(venv) is not None:
            warnings.warn(
                "GoRL normalises observations itself (its policy's running statistics, the decoder's fixed ones); "
                "a VecNormalize around the env normalises them twice. Leave VecNormalize out (zoo: normalize: false).",
                stacklevel=3,
            )
        return LatentActionEnv(venv)

    def get_env(self) -> VecEnv | None:
        """The env in its own action units, as for every SB3 algorithm (predict()'s actions go straight in); PPO's
        rollouts step self.env, the same env behind the latent-action layer."""
        return self.env.venv if isinstance(self.env, LatentActionEnv) else self.env

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._connect_env()

    def _connect_env(self) -> None:
        if isinstance(self.env, LatentActionEnv):
            if self.reward_scale == "auto":  # once: a loaded or continued model keeps the scale its value net learnt
                self.reward_scale = auto_reward_scale(self.env.venv)
            self.env.policy, self.env.reward_scale = self.policy, float(self.reward_scale)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.policy.ent_coef = float(self.ent_coef)
        self.policy.latent_penalty = self.latent_penalty if self.stage == 0 else self.later_latent_penalty
        self._connect_env()

    # ------------------------------------------------------------------ the stage schedule
    def _setup_learn(
        self, total_timesteps: int, callback: MaybeCallback = None, reset_num_timesteps: bool = True, *args, **kwargs
    ):
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, *args, **kwargs)
        if not self.stage_ends or reset_num_timesteps:  # a run's plan is made once; learn(reset_num_timesteps=False)
            self._plan(self._total_timesteps, start=self.num_timesteps)  # (and -i from a checkpoint) continues it
        else:
            self._plan_evals()
        return result

    def _plan(self, total: int, start: int = 0) -> None:
        """The stages left share the budget from `start` on, in their fractions, in whole rollouts of PPO: each gets
        at least MIN_STAGE_ROLLOUTS, and when the decoder data are counted each refit's collection steps are set aside
        first. A budget too small for every stage trains fewer (the first ones), with a warning that says so. The
        last stage ends at `total`, where PPO stops (within one rollout, as PPO does)."""
        rollout = self.n_steps * self.n_envs
        fractions = self.stage_fractions[self.stage :]
        data = self._data_steps(total) if self.count_collection_steps else 0
        budget = total - start
        n = len(fractions)
        while n > 1 and n * MIN_STAGE_ROLLOUTS * rollout + (n - 1) * data > budget:
            n -= 1
        if n < len(fractions) or budget < MIN_STAGE_ROLLOUTS * rollout:
            what = f"stages {self.stage}-{self.stage + n - 1}" if n > 1 else f"stage {self.stage} only"
            if budget < MIN_STAGE_ROLLOUTS * rollout:
                what += f", {max(-(-budget // rollout), 1)} PPO update(s)"
            warnings.warn(
                f"GoRL's {budget} steps left are too few for its {len(fractions)} stage(s) (each needs at least "
                f"{MIN_STAGE_ROLLOUTS} rollouts of n_steps x n_envs = {rollout} steps"
                + (f", and each refit {data} steps of decoder data" if data and len(fractions) > 1 else "")
                + f"): training {what}. Raise the budget, or lower n_steps or decoder_data_steps.",
                stacklevel=6,  # learn()'s caller
            )
        fractions = fractions[:n]
        ppo_steps = budget - (n - 1) * data
        ends, used = [], 0
        for k, fraction in enumerate(fractions[:-1]):
            room = ppo_steps - used - (n - 1 - k) * MIN_STAGE_ROLLOUTS * rollout  # the stages after it keep their minimum
            share = max(round(ppo_steps * fraction / sum(fractions) / rollout), MIN_STAGE_ROLLOUTS) * rollout
            used += min(share, room // rollout * rollout)
            ends.append(start + used + k * data)
        done = (self.stage_ends + [0] * self.stage)[: self.stage]  # the finished stages' ends stay as they were
        self.stage_ends = [*done, *ends, total]
        self._plan_evals()

    def _plan_evals(self) -> None:
        begin = self.stage_ends[self.stage - 1] if self.stage else 0
        length = self.stage_ends[self.stage] - begin
        self._eval_points = [begin + length * (i + 1) // max(self.stage_evals, 1) for i in range(self.stage_evals)]
        self._next_eval = 0
        while self._next_eval < len(self._eval_points) and self._eval_points[self._next_eval] <= self.num_timesteps:
            self._next_eval += 1

    def train(self) -> None:
        """One PPO update, then the latent policy's observation statistics, evaluations and, at its end, the next stage."""
        super().train()
        if hasattr(self.policy.features_extractor, "update"):  # the latent policy's running observation statistics
            self.policy.features_extractor.update(th.as_tensor(self.rollout_buffer.observations, device=self.device))
        self.logger.record("gorl/stage", self.stage)
        if self.policy.latent_penalty:
            self.logger.record("gorl/latent_l2", getattr(self.policy, "_last_penalty", 0.0))  # mean(mu^2) + mean(sigma^2)
        if self.handoff == "best":
            self._evaluate_if_due()
        last = len(self.stage_ends) - 1  # the stages the budget allows (see _plan)
        if self.stage < last and self.num_timesteps >= self.stage_ends[self.stage]:
            self.next_stage()

    def _evaluate_if_due(self) -> None:
        if self._next_eval >= len(self._eval_points) or self.num_timesteps < self._eval_points[self._next_eval]:
            return
        while self._next_eval < len(self._eval_points) and self._eval_points[self._next_eval] <= self.num_timesteps:
            self._next_eval += 1
        env = self._evaluation_env()
        if env is None:
            return
        if self.seed is not None:
            env.seed(self.seed)  # the same episodes for each of the stage's policies, and for a rerun with this seed
        mean_return, _ = evaluate_policy(self, env, n_eval_episodes=self.eval_episodes, deterministic=True, warn=False)
        self.logger.record("gorl/stage_eval_return", mean_return)
        if mean_return > float(self.policy.best_return):
            self.policy.keep_as_best(float(mean_return))

    def _evaluation_env(self) -> VecEnv | None:
        if self.eval_env is None:
            self.eval_env = _env_like(self.env)
            if self.eval_env is None:
                warnings.warn(
                    "GoRL could not make an evaluation env like the training env (no registered id or no time limit): "
                    "the last latent policy of each stage collects the decoder data (handoff='last'); pass eval_env=...",
                    stacklevel=2,
                )
                self.handoff = "last"
                return None
        if not isinstance(self.eval_env, VecEnv):
            self.eval_env = PPO._wrap_env(self.eval_env, verbose=0, monitor_wrapper=True)
        return self.eval_env  # type: ignore[return-value]

    def next_stage(self) -> None:
        """End the current stage: its best latent policy collects data, a new decoder is fitted, a new policy starts."""
        finished = self.stage
        if self.handoff == "best":
            self._evaluate_if_due()
            self.policy.restore_best()
        obs, u, episodes = self.collect_decoder_data()
        fit = self.fit_decoder(obs, u, episodes)
        self.stage += 1
        self.stage_history.append({"stage": finished, "ended_at": self.num_timesteps, **fit})
        self.clip_range = ConstantSchedule(self.later_clip_range)
        self.max_grad_norm = self.later_max_grad_norm
        self.policy.latent_penalty = self.later_latent_penalty
        self.policy.reset_latent_policy(self.policy.init_generator(), keep_weights=self.latent_reset == "warm")
        self._plan(self._total_timesteps, start=self.num_timesteps)  # the stages left, from where this one starts
        self._last_obs = self.env.reset()  # type: ignore[union-attr,assignment]
        self._last_episode_starts = np.ones((self.env.num_envs,), dtype=bool)  # type: ignore[union-attr]
        self.logger.record("gorl/stage", self.stage)
        if self.verbose >= 1:
            print(f"GoRL stage {self.stage} from step {self.num_timesteps}: decoder val loss {fit['val_loss']:.4f}")

    def _data_steps(self, total: int | None = None) -> int:
        """Env steps collected for one decoder refit."""
        if isinstance(self.decoder_data_steps, int) and not isinstance(self.decoder_data_steps, bool):
            return self.decoder_data_steps
        return max(int(self.decoder_data_steps * (total or self._total_timesteps)), 100)

    @th.no_grad()
    def collect_decoder_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw observation, pre-tanh action u, episode id) from the composite policy with stochastic latents."""
        env: LatentActionEnv = self.env  # type: ignore[assignment]
        n_envs, target = env.num_envs, self._data_steps()
        self.policy.set_training_mode(False)
        obs = env.reset()
        episode = np.arange(n_envs)
        next_episode = n_envs
        records: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        while len(records) * n_envs < target:
            raw = env._raw_obs
            z, _, _ = self.policy(th.as_tensor(obs, device=self.device).float())
            obs, _, dones, _ = env.step(z.cpu().numpy())
            records.append((raw.reshape(n_envs, -1), env.last_pre_tanh.reshape(n_envs, -1), episode.copy()))
            for i in np.flatnonzero(dones):
                episode[i], next_episode = next_episode, next_episode + 1
        if self.count_collection_steps:
            self.num_timesteps += len(records) * n_envs
        stacked = [np.concatenate([r[k] for r in records]) for k in range(3)]
        return stacked[0].astype(np.float32), stacked[1].astype(np.float32), stacked[2]

    def fit_decoder(self, obs: np.ndarray, u: np.ndarray, episodes: np.ndarray) -> dict[str, float]:
        """A new decoder fitted from scratch: fresh N(0, I) noise -> the recorded pre-tanh actions (not the latents)."""
        decoder = self.policy.decoder
        rng = np.random.default_rng(None if self.seed is None else self.seed + 1000 * (self.stage + 1))
        ids = np.unique(episodes)
        held_out = rng.choice(ids, size=max(1, round(self.decoder_val_fraction * len(ids))), replace=False)
        val = np.isin(episodes, held_out) if len(ids) > 1 else rng.random(len(episodes)) < self.decoder_val_fraction
        if val.all() or not val.any():  # too few episodes to split them: a transition-level split (v1's)
            val = rng.random(len(episodes)) < self.decoder_val_fraction
        targets = np.clip(u, -self.decoder_target_clip, self.decoder_target_clip) if self.decoder_target_clip else u
        device = self.device
        train_obs, train_u = th.as_tensor(obs[~val], device=device), th.as_tensor(targets[~val], device=device)
        val_obs, val_u = th.as_tensor(obs[val], device=device), th.as_tensor(targets[val], device=device)
        generative = decoder.fresh_generative().to(device)
        mean, std = train_obs.mean(0), train_obs.std(0, unbiased=False)
        normalize = lambda x: (x - mean) / (std + 1e-8)  # noqa: E731  (the decoder's own fixed normaliser)
        optimizer = th.optim.Adam(generative.parameters(), lr=self.decoder_learning_rate)
        best_val, best_state, losses = math.inf, None, []
        generator = th.Generator(device=device).manual_seed(int(rng.integers(2**31)))
        for step in range(1, self.decoder_fit_steps + 1):
            idx = th.randint(0, len(train_obs), (self.decoder_batch_size,), device=device, generator=generator)
            loss = generative.loss(normalize(train_obs[idx]), train_u[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            if step % 100 == 0 or step == self.decoder_fit_steps:
                with th.no_grad():
                    val_loss = float(np.mean([generative.loss(normalize(val_obs), val_u).item() for _ in range(4)]))
                if val_loss < best_val:
                    best_val, best_state = val_loss, {k: v.clone() for k, v in generative.state_dict().items()}
        generative.load_state_dict(best_state)  # type: ignore[arg-type]
        decoder.generative = generative.requires_grad_(False)
        decoder.obs_mean.copy_(mean)
        decoder.obs_std.copy_(std)
        decoder.fitted.fill_(True)
        fit_loss = float(th.stack(losses[-100:]).mean())
        if hasattr(self, "_logger"):  # (fit_decoder can be called outside learn())
            self.logger.record("gorl/decoder_fit_loss", fit_loss)
            self.logger.record("gorl/decoder_val_loss", best_val)
            self.logger.record("gorl/decoder_data_steps", len(obs))
        return {"fit_loss": fit_loss, "val_loss": best_val, "data_steps": len(obs)}

    # ------------------------------------------------------------------ SB3 plumbing
    def learn(
        self: SelfGoRL,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "GoRL",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfGoRL:
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        refuse_parallel_training(type(self).__name__, callback)
        return super()._init_callback(callback, progress_bar)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "eval_env", "_eval_points"]
