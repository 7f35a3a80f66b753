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
from collections.abc import Sequence
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
from stable_baselines3.common.utils import ConstantSchedule, update_learning_rate
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, unwrap_vec_normalize

from sb3_expo.common.callbacks import refuse_parallel_training
from sb3_expo.gorl.policies import GoRLPolicy, MlpPolicy

SelfGoRL = TypeVar("SelfGoRL", bound="GoRL")
LATENT_BOUND = 1e4
MIN_STAGE_ROLLOUTS = 3  # the fewest PPO updates a stage gets: a shorter one would hand over an untrained policy
# The official code's settings, by name (docs/gorl-reference.md sections 3.1-3.4): the values a recipe sets for the
# arguments left at None; an argument given explicitly wins over its recipe.
RECIPES: dict[str, dict[str, Any]] = {
    # v1's flow pipeline (run_gorl_fm.py): the paper's figure
    "v1-flow": dict(
        decoder="flow",
        later_learning_rate=None,  # the stage-0 learning rate throughout (1e-3)
        later_clip_range=0.3,
        later_max_grad_norm=1.0,
        latent_reset="fresh",
        decoder_pair_weight=0.0,
    ),
    # v2's gorl_diffusion as v2 runs it on dm_control (configs/methods/gorl_diffusion.toml)
    "v2-diffusion": dict(
        decoder="ddim",  # epsilon_delta + linear_alpha_bar, output scale 0.25, 64 x 4
        later_learning_rate=(3e-4, 1e-4),  # stage 1: 3e-4, stages 2+: 1e-4
        later_clip_range=0.15,
        later_max_grad_norm=0.5,
        latent_reset="warm",  # the previous best latent policy and its observation statistics, a fresh Adam
        decoder_pair_weight=1e-3,
    ),
}
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

    :param recipe: the official setting the arguments left at None take their values from (an argument given
        explicitly always wins over its recipe's value). "v1-flow" (default): v1's flow pipeline, the paper's figure:
        decoder "flow", later_clip_range 0.3, later_max_grad_norm 1.0, learning rate 1e-3 in every stage,
        latent_reset "fresh", no pairwise decoder loss. "v2-diffusion": v2's gorl_diffusion as v2 runs it on
        DeepMind Control: decoder "ddim", later_clip_range 0.15, later_max_grad_norm 0.5, later_learning_rate
        (3e-4, 1e-4) (stage 1: 3e-4, stages 2+: 1e-4), latent_reset "warm", decoder_pair_weight 1e-3. Both: stage 0
        with clip 0.15, grad norm 0.5, lr 1e-3, latent penalty 5e-4 -> 1e-3 (v1 and v2 alike); stage_settings(k)
        gives a stage's values
    :param decoder: "flow" (rectified flow; v1 and v2 "gorl_fm") or "ddim" (v2 "gorl_diffusion": its epsilon_delta
        parameterisation and linear_alpha_bar schedule, output scale 0.25); None: the recipe's
    :param decoder_steps: sampler steps (10, v1/v2); decoder_width, decoder_layers: the MLP (64 x 4, v1 pipeline)
    :param stage_fractions: the stages' shares of the budget (1/3, 1/3, 1/6, 1/6: v1 and v2's 60M/60M/30M/30M)
    :param learning_rate, later_learning_rate: the latent policy's learning rate in stage 0 (1e-3: v1/v2; a schedule
        applies to stage 0, and to every stage while later_learning_rate is None) and in later stages: a number, or one
        per later stage with the last repeating (None: learning_rate runs on, v1; v2 diffusion: (3e-4, 1e-4))
    :param clip_range, later_clip_range: PPO clip in stage 0 and later stages (0.15, 0.3: v1; v2 diffusion keeps 0.15;
        None: the recipe's); a clip_range schedule applies to stage 0 only
    :param clip_range_vf: PPO's value clipping (None: off, as officially and in SB3); the same in every stage: it bounds
        each update's value change around that rollout's own values, which a stage switch does not change. It is in
        the units of the scaled rewards (reward_scale), as GoRL's value net is
    :param normalize_advantage, target_kl, rollout_buffer_class, rollout_buffer_kwargs: PPO's, the same in every stage
        (the official code normalises advantages per minibatch, as PPO's default, and has no target_kl)
    :param use_sde: refused when True (the latent's sigma is an output of GoRL's head, not gSDE's); sde_sample_freq
        is accepted and unused
    :param max_grad_norm, later_max_grad_norm: gradient-norm clip (0.5, 1.0: v1; v2 uses 0.5 throughout; None: the
        recipe's)
    :param latent_penalty, later_latent_penalty: lambda_z of the L2 term mean(mu^2) + mean(sigma^2) (5e-4, 1e-3: v1, v2)
    :param latent_reset: "fresh" (v1, v2 flow: a new latent policy, value net and observation statistics every stage,
        same seed) or "warm" (v2 diffusion: the previous stage's best latent policy, value net and observation
        statistics carried over, with a fresh optimizer); None: the recipe's
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
    :param decoder_epochs, decoder_batch_size, decoder_learning_rate: the fit is sized by the data: decoder_epochs
        epochs (50: v1, and v2 diffusion's 50 x floor(N_train / batch) steps) of floor(N_train / batch) shuffled
        batches of decoder_batch_size (ours 1024; v1/v2: 8192), Adam lr 3e-4 (v1/v2), validated after every epoch,
        keeping the weights with the best validation loss (v1; v2: every 100 steps)
    :param decoder_patience: stop when the validation loss has not improved for this many epochs (20: v1; v2 runs
        all its steps; None: never stop early)
    :param decoder_min_fit_steps: at least this many steps whatever the data size (ours, 500: a CPU run's few thousand
        transitions would otherwise get a few dozen steps; the official datasets are millions)
    :param decoder_fit_steps: an explicit cap on the fit's steps (None, default: no cap); it wins over
        decoder_min_fit_steps, so a zoo entry's or test's cap keeps its run time
    :param decoder_val_fraction: episodes held out for validation (0.1, v2's episode-level split)
    :param decoder_target_clip: pre-tanh targets clipped to +-3 (v2; v1 does not clip)
    :param decoder_pair_weight: v2's pairwise decoder loss, weight x mean((g(s, z) - u)^2) on the recorded latents z
        and (clipped) pre-tanh actions u of the collected data, through the full decode (gradient through the
        sampler's chain), added to the fit's loss: it keeps the new decoder consistent with a warm-started latent
        policy (v2 diffusion: 1e-3; v1, v2 flow: 0, off). None: the recipe's
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
        recipe: str = "v1-flow",
        decoder: str | None = None,
        decoder_steps: int = 10,
        decoder_width: int = 64,
        decoder_layers: int = 4,
        stage_fractions: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 6, 1 / 6),
        learning_rate: float | Schedule = 1e-3,
        later_learning_rate: float | Sequence[float] | None = None,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 16,
        gamma: float = 0.995,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.15,
        later_clip_range: float | None = None,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.01,
        vf_coef: float = 0.25,
        max_grad_norm: float = 0.5,
        later_max_grad_norm: float | None = None,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        target_kl: float | None = None,
        latent_penalty: float = 5e-4,
        later_latent_penalty: float = 1e-3,
        latent_reset: str | None = None,
        latent_init: str = "default",
        handoff: str = "best",
        stage_evals: int = 5,
        eval_episodes: int = 5,
        eval_env: GymEnv | None = None,
        decoder_data_steps: float = 0.025,
        count_collection_steps: bool = True,
        decoder_epochs: int = 50,
        decoder_patience: int | None = 20,
        decoder_min_fit_steps: int = 500,
        decoder_fit_steps: int | None = None,
        decoder_batch_size: int = 1024,
        decoder_learning_rate: float = 3e-4,
        decoder_val_fraction: float = 0.1,
        decoder_target_clip: float | None = 3.0,
        decoder_pair_weight: float | None = None,
        reward_scale: float | str = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if recipe not in RECIPES:
            raise ValueError(f"recipe={recipe!r}: use one of {sorted(RECIPES)}.")
        given = dict(
            decoder=decoder,
            later_learning_rate=later_learning_rate,
            later_clip_range=later_clip_range,
            later_max_grad_norm=later_max_grad_norm,
            latent_reset=latent_reset,
            decoder_pair_weight=decoder_pair_weight,
        )
        settings = {name: RECIPES[recipe][name] if value is None else value for name, value in given.items()}
        decoder, later_learning_rate, later_clip_range, later_max_grad_norm, latent_reset, decoder_pair_weight = (
            settings[name] for name in given
        )
        if isinstance(later_learning_rate, numbers.Real):
            later_learning_rate = float(later_learning_rate)
        elif later_learning_rate is not None:
            later_learning_rate = tuple(float(lr) for lr in later_learning_rate)
            if not later_learning_rate:
                raise ValueError("later_learning_rate=(): give a number, or one per later stage (the last repeats).")
        if decoder_epochs < 1 or (decoder_patience is not None and decoder_patience < 1):
            raise ValueError(
                f"decoder_epochs={decoder_epochs}, decoder_patience={decoder_patience}: use >= 1 (patience None: off)."
            )
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
        self._first_clip_range, self._first_max_grad_norm = clip_range, max_grad_norm  # stage 0's (PPO's attributes change)
        self.recipe, self.later_learning_rate = recipe, later_learning_rate
        self.decoder_pair_weight = float(decoder_pair_weight)
        self.decoder_epochs, self.decoder_patience = decoder_epochs, decoder_patience
        self.decoder_min_fit_steps = decoder_min_fit_steps
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
        if self.stage > 0:  # a loaded model in a later stage: that stage's learning rate (SB3 rebuilds the schedule)
            self._apply_stage_settings()
        self._connect_env()

    def stage_settings(self, stage: int) -> dict[str, Any]:
        """The PPO settings stage `stage` runs with: learning rate (a number, or the stage-0 schedule), clip range,
        gradient-norm clip, latent penalty lambda_z, and whether the latent policy is carried over into it."""
        if stage == 0:
            return dict(
                learning_rate=self.learning_rate,
                clip_range=self._first_clip_range,
                max_grad_norm=self._first_max_grad_norm,
                latent_penalty=self.latent_penalty,
                warm_start=False,
            )
        lr = self.later_learning_rate
        if lr is None:
            lr = self.learning_rate
        elif isinstance(lr, (tuple, list)):  # (a saved model holds a list)
            lr = lr[min(stage, len(lr)) - 1]  # one per later stage, the last repeating
        return dict(
            learning_rate=lr,
            clip_range=self.later_clip_range,
            max_grad_norm=self.later_max_grad_norm,
            latent_penalty=self.later_latent_penalty,
            warm_start=self.latent_reset == "warm",
        )

    def _apply_stage_settings(self) -> None:
        """The current (later) stage's PPO settings, onto PPO's attributes and the latent policy."""
        settings = self.stage_settings(self.stage)
        self.clip_range = ConstantSchedule(settings["clip_range"])
        self.max_grad_norm = settings["max_grad_norm"]
        self.policy.latent_penalty = settings["latent_penalty"]
        if self.later_learning_rate is not None:  # (None: the stage-0 learning rate, a schedule included, runs on)
            self.lr_schedule = ConstantSchedule(settings["learning_rate"])
            update_learning_rate(self.policy.optimizer, settings["learning_rate"])

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
        obs, u, episodes, z = self.collect_decoder_data()
        fit = self.fit_decoder(obs, u, episodes, latents=z)
        self.stage += 1
        self.stage_history.append({"stage": finished, "ended_at": self.num_timesteps, **fit})
        self.policy.reset_latent_policy(self.policy.init_generator(), keep_weights=self.latent_reset == "warm")
        self._apply_stage_settings()  # (after the reset: the new optimizer gets the stage's learning rate)
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
    def collect_decoder_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(raw observation, pre-tanh action u, episode id, latent z) from the composite policy with stochastic latents
        (v2 records z too: its pairwise decoder loss ties the new decoder to them)."""
        env: LatentActionEnv = self.env  # type: ignore[assignment]
        n_envs, target = env.num_envs, self._data_steps()
        self.policy.set_training_mode(False)
        obs = env.reset()
        episode = np.arange(n_envs)
        next_episode = n_envs
        records: list[tuple[np.ndarray, ...]] = []
        while len(records) * n_envs < target:
            raw = env._raw_obs
            z, _, _ = self.policy(th.as_tensor(obs, device=self.device).float())
            z = z.cpu().numpy()
            obs, _, dones, _ = env.step(z)
            records.append(
                (raw.reshape(n_envs, -1), env.last_pre_tanh.reshape(n_envs, -1), episode.copy(), z.reshape(n_envs, -1))
            )
            for i in np.flatnonzero(dones):
                episode[i], next_episode = next_episode, next_episode + 1
        if self.count_collection_steps:
            self.num_timesteps += len(records) * n_envs
        obs_, u, episodes, latents = (np.concatenate([r[k] for r in records]) for k in range(4))
        return obs_.astype(np.float32), u.astype(np.float32), episodes, latents.astype(np.float32)

    def _validation_loss(self, generative: th.nn.Module, obs: th.Tensor, u: th.Tensor, z: th.Tensor | None) -> float:
        """The fit's validation loss on the held-out episodes (normalised observations): the generative loss (its mean
        over 4 draws of time and noise), plus the pairwise term when it is on (what the fit minimises)."""
        with th.no_grad():
            loss = float(np.mean([generative.loss(obs, u).item() for _ in range(4)]))
            if z is not None:
                loss += self.decoder_pair_weight * float((generative.sample(obs, z.unsqueeze(0)) - u).pow(2).mean())
        return loss

    def decoder_fit_plan(self, n_train: int) -> tuple[int, int, int]:
        """(batch size, steps per epoch, most steps) of a fit on n_train transitions: epochs of floor(n_train / batch)
        shuffled batches (v1's epochs, v2's 50 x floor(N / batch) steps), decoder_epochs of them, at least
        decoder_min_fit_steps in all, at most decoder_fit_steps (an explicit cap wins over the minimum)."""
        batch = max(1, min(self.decoder_batch_size, n_train))
        per_epoch = max(1, n_train // batch)
        most = max(self.decoder_epochs * per_epoch, self.decoder_min_fit_steps)
        if self.decoder_fit_steps is not None:
            most = min(most, self.decoder_fit_steps)
        return batch, per_epoch, max(most, 1)

    def fit_decoder(
        self, obs: np.ndarray, u: np.ndarray, episodes: np.ndarray, latents: np.ndarray | None = None
    ) -> dict[str, float]:
        """A new decoder fitted from scratch: fresh N(0, I) noise -> the recorded pre-tanh actions (not the latents),
        in epochs over the data, validated after each, stopped when the validation loss has not improved for
        decoder_patience epochs (after decoder_min_fit_steps), keeping the best-validation weights. With
        decoder_pair_weight > 0 and the recorded latents, v2's pairwise term is added: weight x mean((g(s, z) - u)^2),
        the full decode with its gradient through the sampler's chain."""
        decoder = self.policy.decoder
        rng = np.random.default_rng(None if self.seed is None else self.seed + 1000 * (self.stage + 1))
        ids = np.unique(episodes)
        held_out = rng.choice(ids, size=max(1, round(self.decoder_val_fraction * len(ids))), replace=False)
        val = np.isin(episodes, held_out) if len(ids) > 1 else rng.random(len(episodes)) < self.decoder_val_fraction
        if val.all() or not val.any():  # too few episodes to split them: a transition-level split (v1's)
            val = rng.random(len(episodes)) < self.decoder_val_fraction
        targets = np.clip(u, -self.decoder_target_clip, self.decoder_target_clip) if self.decoder_target_clip else u
        device = self.device
        pairwise = self.decoder_pair_weight > 0 and latents is not None
        train_obs, train_u = th.as_tensor(obs[~val], device=device), th.as_tensor(targets[~val], device=device)
        val_obs, val_u = th.as_tensor(obs[val], device=device), th.as_tensor(targets[val], device=device)
        train_z = th.as_tensor(latents[~val], device=device) if pairwise else None  # type: ignore[index]
        val_z = th.as_tensor(latents[val], device=device) if pairwise else None  # type: ignore[index]
        generative = decoder.fresh_generative().to(device)
        mean, std = train_obs.mean(0), train_obs.std(0, unbiased=False)
        normalize = lambda x: (x - mean) / (std + 1e-8)  # noqa: E731  (the decoder's own fixed normaliser)
        train_obs, val_obs = normalize(train_obs), normalize(val_obs)
        optimizer = th.optim.Adam(generative.parameters(), lr=self.decoder_learning_rate)
        batch, per_epoch, most = self.decoder_fit_plan(len(train_obs))
        best_val, best_state, best_epoch, losses, pair_losses = math.inf, None, 0, [], []
        generator = th.Generator(device=device).manual_seed(int(rng.integers(2**31)))
        step = epoch = 0
        while step < most:
            epoch += 1
            order = th.randperm(len(train_obs), device=device, generator=generator)
            for i in range(min(per_epoch, most - step)):
                idx = order[i * batch : (i + 1) * batch]
                loss = generative.loss(train_obs[idx], train_u[idx])
                if pairwise:
                    decoded = generative.sample(train_obs[idx], train_z[idx].unsqueeze(0))  # type: ignore[index]
                    pair = (decoded - train_u[idx]).pow(2).mean()
                    pair_losses.append(pair.detach())
                    loss = loss + self.decoder_pair_weight * pair
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
                step += 1
            val_loss = self._validation_loss(generative, val_obs, val_u, val_z)
            if val_loss < best_val:
                best_val, best_epoch = val_loss, epoch
                best_state = {k: v.clone() for k, v in generative.state_dict().items()}
            elif self.decoder_patience is not None and epoch - best_epoch >= self.decoder_patience:
                if step >= min(self.decoder_min_fit_steps, most):
                    break
        generative.load_state_dict(best_state)  # type: ignore[arg-type]
        decoder.generative = generative.requires_grad_(False)
        decoder.obs_mean.copy_(mean)
        decoder.obs_std.copy_(std)
        decoder.fitted.fill_(True)
        fit_loss = float(th.stack(losses[-per_epoch:]).mean())
        result = {"fit_loss": fit_loss, "val_loss": best_val, "data_steps": len(obs), "fit_steps": step,
                  "fit_epochs": epoch, "best_epoch": best_epoch}  # fmt: skip
        if pair_losses:
            result["pair_loss"] = float(th.stack(pair_losses[-per_epoch:]).mean())
        if hasattr(self, "_logger"):  # (fit_decoder can be called outside learn())
            for key in ("fit_loss", "val_loss", "data_steps", "fit_steps", "best_epoch", "pair_loss"):
                if key in result:
                    self.logger.record(f"gorl/decoder_{key}", result[key])
        return result

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
