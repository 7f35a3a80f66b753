"""EXPO: Expressive Policy Optimization (Dong, Li, Sadigh, Finn, 2025) as an SB3 off-policy algorithm.

This class holds the schedule: what is updated when (reference section 2). The networks and the on-the-fly
action selection live in policies.py.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule
from stable_baselines3.common.utils import configure_logger, update_learning_rate
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from sb3_expo.common import compiled
from sb3_expo.common.demo_learning import DemonstrationLearning
from sb3_expo.common.ensemble import CriticEnsemble, default_num_min_qs
from sb3_expo.common.generative import DenoisingPolicy, load_generative_policy
from sb3_expo.common.transitions import Transitions, take
from sb3_expo.expo.policies import BASES, ExpoPolicy, MlpPolicy, MultiInputPolicy

SelfEXPO = TypeVar("SelfEXPO", bound="EXPO")


class EXPO(DemonstrationLearning, OffPolicyAlgorithm):
    """
    Expressive Policy Optimization: a diffusion base policy trained by imitation only, a small Gaussian edit
    policy that moves base actions by at most ``edit_beta`` toward higher Q, and a critic ensemble; actions
    (and TD targets) come from the best of N base samples plus K edited ones.
    Paper: https://arxiv.org/abs/2507.07986. Defaults are the paper's Table 1 unless docs/modules/expo.md says otherwise.

    :param policy: "MlpPolicy", "MultiInputPolicy" (Dict observations) or an ExpoPolicy subclass
    :param env: the environment (continuous, bounded actions)
    :param learning_rate: 3e-4 for every network; the base and edit policies follow a cosine decay on top
    :param learning_starts: uniform-random steps before training (reference start_training = 5000)
    :param gradient_steps: G, critic updates per ``train()`` call (UTD 20); base, edit and temperature take one
    :param demonstrations: demonstrations mixed into every batch: Transitions, or a source string for
        ``sb3_expo.datasets.load_demonstrations`` (e.g. "scripted:Pendulum-v1?episodes=5"); None: pure online
    :param demo_ratio: fraction of each batch from demonstrations (0.5 with demonstrations, else 0)
    :param edit_beta: largest edit per action dimension, in the [-1, 1] scale (beta)
    :param n_base_samples: N base-policy samples per state
    :param n_edit_samples: K of them edited (K <= N; K = 0 is the "no edits" ablation)
    :param num_min_qs: size of the random target-critic subset whose min selects and bootstraps (default
        min(2, n_critics): 2 as in the paper)
    :param otf_backup: bootstrap with the on-the-fly action; False uses one base sample (ablation)
    :param ema_tau: EMA rate of the acting copy of the base policy (0.001)
    :param lr_decay_steps: cosine decay horizon of the base/edit learning rate in optimizer steps (0: constant)
    :param ent_coef: "auto" (learned, start 1.0), "auto_<init>", or a fixed float
    :param target_entropy: "auto" is -d/2 (reference), or a float
    :param adjust_target_entropy: use -d/2 + d*log(beta) instead (reference option, off by default)
    :param max_log_ent_coef: bound on ``|log alpha|`` so alpha can never overflow (ours; the reference has none)
    :param clip_edited_actions: store clip(a, -1, 1) in the buffer instead of the raw edited action
    :param deterministic_mode: what predict(deterministic=True) means: "fixed" (default: a fixed noise draw for the
        base samples, the mean edit and the expected subset-min choice, so the same observation always gets the same
        action) or "sampled" (deterministic=True samples like deterministic=False: the paper's evaluation, for the
        zoo's EvalCallback and enjoy, which always ask for deterministic actions)
    :param n_steps: n-step returns, as SAC's (demonstrations get the same n-step targets); 1 is the reference
    :param precision: "fp32" (default), "bf16" or "auto" (bf16 where the hardware multiplies bf16 natively: CPUs with
        AMX or AVX512-BF16, CUDA GPUs of compute capability 8.0 or newer; fp32 elsewhere). bf16 is mixed precision
        for the whole update: the backup's denoising chain and acting sample from bfloat16 copies of the base
        policy's weights, the critic, edit and base steps and the candidate selection run their matmuls under bf16
        autocast; master weights, optimizer state, gradients, losses, Q values, the sampler's state, time features,
        log-probabilities and the temperature stay float32 (ours; docs/guide/performance.md). Saved with the model.
    :param bf16_sampler: deprecated: True is precision="bf16", False precision="fp32"
    :param torch_compile: run the hot paths, the denoising chain (acting and backup) and the critic ensemble, through
        torch.compile, with CUDA graphs on CUDA (ours, off by default: a minute or two of compilation at the first
        calls; falls back to eager if it fails)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "MultiInputPolicy": MultiInputPolicy}
    policy: ExpoPolicy

    def __init__(
        self,
        policy: str | type[ExpoPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 5000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 20,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        demonstrations: Transitions | str | None = None,
        demo_ratio: float | None = None,
        edit_beta: float = 0.05,
        n_base_samples: int = 8,
        n_edit_samples: int = 8,
        num_min_qs: int | None = None,
        otf_backup: bool = True,
        ema_tau: float = 0.001,
        lr_decay_steps: int = 3_000_000,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        adjust_target_entropy: bool = False,
        max_log_ent_coef: float = 20.0,
        clip_edited_actions: bool = False,
        deterministic_mode: str = "fixed",
        precision: str = "fp32",
        torch_compile: bool = False,
        bf16_sampler: bool | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if str(device).startswith("cuda") and not th.cuda.is_available():  # SB3 would fall back silently
            warnings.warn(f"device={device!r} was asked for but CUDA is not available: EXPO runs on the CPU.", stacklevel=2)
        if _init_setup_model and hasattr(env, "action_space"):
            _check_action_space(env.action_space)  # before SB3's own, terser assertions
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            support_multi_env=True,
        )
        self._init_demonstrations(demonstrations, demo_ratio, strict=_init_setup_model)  # load() only warns
        self.edit_beta, self.n_base_samples, self.n_edit_samples = edit_beta, n_base_samples, n_edit_samples
        n_critics = self.policy_kwargs.get("n_critics", 10)
        self.num_min_qs = default_num_min_qs(num_min_qs, n_critics)
        self.otf_backup, self.ema_tau, self.lr_decay_steps = otf_backup, ema_tau, lr_decay_steps
        self.ent_coef, self.target_entropy, self.adjust_target_entropy = ent_coef, target_entropy, adjust_target_entropy
        self.max_log_ent_coef, self.clip_edited_actions = max_log_ent_coef, clip_edited_actions
        self.deterministic_mode = deterministic_mode
        if bf16_sampler is not None:
            warnings.warn(
                f"bf16_sampler is deprecated: use precision={'bf16' if bf16_sampler else 'fp32'!r}.",
                FutureWarning,
                stacklevel=2,
            )
            precision = "bf16" if bf16_sampler else "fp32"
        self.precision, self.torch_compile = precision, torch_compile
        self.log_ent_coef: th.Tensor | None = None
        self.ent_coef_optimizer: th.optim.Adam | None = None
        self._n_base_updates = 0  # optimizer steps of the base policy, pretraining included (cosine schedule)
        self._n_edit_updates = 0
        self._acted, self._acted_edited = 0, 0
        if _init_setup_model:
            self._check_arguments()
            self._setup_model()

    def _check_arguments(self) -> None:
        """Every mistake we can see before training, with its fix."""
        _check_action_space(self.action_space)
        obs_spaces = (
            self.observation_space.spaces.values()
            if isinstance(self.observation_space, spaces.Dict)
            else [self.observation_space]
        )
        if any(is_image_space(s) for s in obs_spaces):
            raise ValueError("EXPO's policies take vector observations; image observations are not supported.")
        if not 1 <= self.n_base_samples:
            raise ValueError(f"n_base_samples={self.n_base_samples}: draw at least one base action per state.")
        if not 0 <= self.n_edit_samples <= self.n_base_samples:
            raise ValueError(
                f"n_edit_samples={self.n_edit_samples} must lie in [0, n_base_samples={self.n_base_samples}]: "
                "the edit policy edits K of the N base samples. Raise n_base_samples or lower n_edit_samples."
            )
        if self.edit_beta <= 0:
            raise ValueError(f"edit_beta={self.edit_beta} must be > 0; use n_edit_samples=0 to turn edits off.")
        n_critics = self.policy_kwargs.get("n_critics", 10)
        if not 1 <= self.num_min_qs <= n_critics:
            raise ValueError(f"num_min_qs={self.num_min_qs} must lie in [1, n_critics={n_critics}].")
        self._check_demonstration_arguments()
        if self.deterministic_mode not in ("fixed", "sampled"):
            raise ValueError(f"deterministic_mode={self.deterministic_mode!r}: use 'fixed' or 'sampled'.")

    def _setup_model(self) -> None:
        self._setup_demo_buffer()
        base = self.policy_kwargs.get("base")
        if isinstance(base, (str, Path)) and base not in BASES:  # a file (e.g. from the zoo's YAML): load it once, so the
            self.policy_kwargs["base"] = load_generative_policy(base)  # saved model holds the policy, not the path
        self.policy_kwargs.update(
            edit_beta=self.edit_beta,
            n_base_samples=self.n_base_samples,
            n_edit_samples=self.n_edit_samples,
            num_min_qs=self.num_min_qs,
            deterministic_mode=self.deterministic_mode,
        )
        n_steps, self.n_steps = self.n_steps, 1  # our buffer computes n-step returns itself; SB3 would warn it ignores them
        super()._setup_model()
        self.n_steps = n_steps
        self._create_aliases()
        self._bf16_net: nn.Module | None = None  # the backup's bfloat16 denoiser, made at the first train()
        self._bf16 = self._resolve_precision()
        self.policy.bf16_acting = self._bf16
        for module in (self.base, self.base_ema, self.critic, self.critic_target):
            if isinstance(module, (DenoisingPolicy, CriticEnsemble)):
                module.compile_mode = compiled.compile_mode(self.device, self.torch_compile)

        action_dim = int(np.prod(self.action_space.shape))  # type: ignore[arg-type]
        if self.target_entropy == "auto":
            self.target_entropy = -action_dim / 2 + (
                action_dim * math.log(self.edit_beta) if self.adjust_target_entropy else 0.0
            )
        self.target_entropy = float(self.target_entropy)
        if isinstance(self.ent_coef, str) and self.ent_coef.startswith("auto"):
            init = float(self.ent_coef.split("_")[1]) if "_" in self.ent_coef else 1.0
            self.log_ent_coef = th.full((1,), math.log(init), device=self.device).requires_grad_(True)
            self.ent_coef_optimizer = th.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))
        else:
            self.ent_coef_tensor = th.tensor(float(self.ent_coef), device=self.device)

    def _create_aliases(self) -> None:
        self.base, self.base_ema, self.edit = self.policy.base, self.policy.base_ema, self.policy.edit
        self.critic, self.critic_target = self.policy.critic, self.policy.critic_target
        self._critic_params, self._critic_target_params = list(self.critic.parameters()), list(self.critic_target.parameters())
        self._extractor_buffers: tuple[list[th.Tensor], list[th.Tensor]] = ([], [])
        if self.policy.features_extractor_target is not None:  # a learnable extractor follows the critic's Polyak average
            extractor, target = self.policy.features_extractor, self.policy.features_extractor_target
            self._critic_params += list(extractor.parameters())
            self._critic_target_params += list(target.parameters())
            self._extractor_buffers = (list(extractor.buffers()), list(target.buffers()))  # batch-norm statistics: copied
        self._base_params, self._base_ema_params = list(self.base.parameters()), list(self.base_ema.parameters())

    # ------------------------------------------------------------------ acting
    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The env gets clip(a); the buffer keeps the unclipped edited action a (reference section 9)."""
        if self.num_timesteps < learning_starts:
            buffer_action = self.policy.scale_action(np.array([self.action_space.sample() for _ in range(n_envs)]))
        else:
            obs, _ = self.policy.obs_to_tensor(self._last_obs)  # type: ignore[arg-type]
            with th.no_grad():
                chosen = self.policy.sample_actions(obs)
            buffer_action = chosen.actions.cpu().numpy().reshape(n_envs, *self.action_space.shape)  # type: ignore[misc]
            self._acted += len(buffer_action)
            self._acted_edited += int(chosen.edited.sum())
        if action_noise is not None:
            buffer_action = buffer_action + action_noise()
        if self.clip_edited_actions:
            buffer_action = np.clip(buffer_action, -1.0, 1.0)
        return self.policy.unscale_action(np.clip(buffer_action, -1.0, 1.0)), buffer_action

    # ------------------------------------------------------------------ training
    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """G critic updates on G minibatches, then one base, one edit and one temperature update on the last.

        The base and edit policies do not change during the G critic updates, so the backup's candidate actions
        for all G minibatches are drawn in one batched call; each update still selects among them with the
        target critic of its own step. Same algorithm as sb3_expo.expo.reference, which the tests compare to.
        """
        self.policy.set_training_mode(False)  # sampling never uses dropout; each gradient step switches its module on
        lr = self.lr_schedule(self._current_progress_remaining)
        for optimizer in (self.critic.optimizer, self.ent_coef_optimizer):
            if optimizer is not None:
                update_learning_rate(optimizer, lr)

        data = self._sample_minibatches(gradient_steps, batch_size)
        last = slice((gradient_steps - 1) * batch_size, gradient_steps * batch_size)  # base, edit and temperature
        if self.policy.trains_features:  # the extractor changes at every critic step: features per minibatch
            critic_stats = [self._critic_step_on_observations(data, rows) for rows in _minibatches(gradient_steps, batch_size)]
            with th.no_grad():
                last_features = self.policy.features(take(data.observations, last))
        else:
            with th.no_grad():
                features = self.policy.features(data.observations)
                next_features = self.policy.features(data.next_observations)
                candidates = self._backup_candidates(next_features)
            critic_stats = []
            for rows in _minibatches(gradient_steps, batch_size):
                discounts = data.discounts[rows] if data.discounts is not None else self.gamma
                critic_stats.append(
                    self._critic_step(
                        features[rows],
                        data.actions[rows],
                        data.rewards[rows],
                        data.dones[rows],
                        discounts,
                        next_features[rows],
                        candidates[rows],
                    )
                )
            last_features = features[last]
        base_loss = self._base_step(last_features, data.actions[last], lr)
        edit_stats = self._edit_step(last_features, data.actions[last], lr) if self.n_edit_samples > 0 else None
        self._n_updates += gradient_steps

        # One host synchronisation per train() call, for logging.
        critic_loss, q_values, target_q, backup_edited = th.stack([th.stack(s) for s in critic_stats]).mean(0).tolist()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/learning_rate", lr)
        self.logger.record("train/critic_loss", critic_loss)
        self.logger.record("train/q_values", q_values)
        self.logger.record("train/target_q_values", target_q)
        self.logger.record("train/backup_edited_fraction", backup_edited)
        self.logger.record("train/base_loss", base_loss.item())
        self.logger.record("train/base_learning_rate", self.base.optimizer.param_groups[0]["lr"])
        if edit_stats is not None:
            for key, value in zip(("edit_loss", "edit_q_values", "entropy", "ent_coef", "ent_coef_loss"), edit_stats):
                if value is not None:
                    self.logger.record(f"train/{key}", value.item())
        if self._acted:
            self.logger.record("rollout/edited_fraction", self._acted_edited / self._acted)
            self._acted, self._acted_edited = 0, 0

    def _sample_minibatches(self, n_minibatches: int, batch_size: int) -> ReplayBufferSamples:
        """G minibatches in one buffer draw (rows [gB, (g+1)B) are minibatch g)."""
        buffer = self.replay_buffer
        if hasattr(buffer, "sample_minibatches"):
            return buffer.sample_minibatches(n_minibatches, batch_size, env=self._vec_normalize_env)
        return buffer.sample(n_minibatches * batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]

    def _resolve_precision(self) -> bool:
        """Whether this model computes in bf16 where `precision` allows it (models saved with bf16_sampler included)."""
        legacy = self.__dict__.pop("bf16_sampler", None)  # saved by an earlier version
        if legacy is not None:
            warnings.warn(
                "this model was saved with bf16_sampler, now precision: its setting is kept.", FutureWarning, stacklevel=2
            )
            self.precision = "bf16" if legacy else "fp32"
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}: use one of {PRECISIONS}.")
        built_in = isinstance(self.base, DenoisingPolicy)
        if self.precision == "bf16" and not built_in:
            raise ValueError(
                f"precision='bf16' runs a copy of a built-in base policy's network in bfloat16; the base "
                f"{type(self.base).__name__} is not one of them: use precision='fp32' (or 'auto', which then means fp32)."
            )
        return built_in and (self.precision == "bf16" or (self.precision == "auto" and native_bf16(self.device)))

    def _backup_candidates(self, next_features: th.Tensor) -> th.Tensor:
        """Candidates for the TD backup, from the online (not EMA) base policy; one base sample for the ablation."""
        net = self._low_precision_net() if self._bf16 else None  # one cast for all G minibatches
        with self._mixed():  # the edit of the candidates; the chain runs on `net` (its state x stays float32)
            if self.otf_backup:
                return self.policy.candidates(next_features, self.base, net=net)
            return self.base.sample(next_features, net=net).unsqueeze(1)

    def _mixed(self) -> th.autocast:
        """bf16 autocast where precision asks for it (matmuls in bf16 from float32 master weights), else a no-op."""
        return th.autocast(self.device.type, dtype=th.bfloat16, enabled=self._bf16)

    @th.no_grad()  # like the target and EMA updates: an in-place copy from trained weights must record no history
    def _low_precision_net(self) -> nn.Module:
        """The base denoiser in bfloat16: one copy, refreshed in place (no allocation, fixed addresses for CUDA graphs)."""
        if self._bf16_net is None:
            self._bf16_net = self.base.low_precision_net()
        else:
            th._foreach_copy_(list(self._bf16_net.parameters()), list(self.base.net.parameters()))
        return self._bf16_net

    def _critic_step(
        self,
        features: th.Tensor,
        actions: th.Tensor,
        rewards: th.Tensor,
        dones: th.Tensor,
        discounts: th.Tensor | float,
        next_features: th.Tensor,
        candidates: th.Tensor,
    ) -> tuple[th.Tensor, ...]:
        with th.no_grad(), self._mixed():
            next_actions = self.policy.select(next_features, candidates)  # target critic of this step, subset 1
            next_q = self.critic_target.subset_min(next_features, next_actions.actions, self.num_min_qs)  # subset 2
            target_q = (rewards + (1 - dones) * discounts * next_q.unsqueeze(-1)).squeeze(-1)
        with self._mixed():
            q_values = self.critic(features, actions)  # [E, B], float32 (the output layer is): all regress onto one target
        loss = F.mse_loss(q_values, target_q.expand_as(q_values))
        self.critic.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic.optimizer.step()
        with th.no_grad():  # outside no_grad the target would join the autograd graph, one node more per update
            th._foreach_lerp_(self._critic_target_params, self._critic_params, self.tau)
            if self._extractor_buffers[0]:
                th._foreach_copy_(self._extractor_buffers[1], self._extractor_buffers[0])
        return loss.detach(), q_values.detach().mean(), target_q.mean(), next_actions.edited.float().mean()

    def _critic_step_on_observations(self, data: ReplayBufferSamples, rows: slice) -> tuple[th.Tensor, ...]:
        """A critic step that also trains a learnable features extractor (SAC trains its critic's extractor this way).

        The backup samples its candidates from the online extractor's features, and the target critic selects and
        bootstraps on its target extractor's; the online critic regresses on features with gradient.
        """
        next_obs = take(data.next_observations, rows)
        with th.no_grad():
            candidates = self._backup_candidates(self.policy.features(next_obs))
            next_features = self.policy.target_features(next_obs)
        self.policy.features_extractor.train()
        features = self.policy.features(take(data.observations, rows))
        self.policy.features_extractor.eval()
        discounts = data.discounts[rows] if data.discounts is not None else self.gamma
        return self._critic_step(
            features, data.actions[rows], data.rewards[rows], data.dones[rows], discounts, next_features, candidates
        )

    def _cosine(self, step: int) -> float:
        """The reference's cosine decay to 0 over lr_decay_steps optimizer steps (1.0 when disabled)."""
        if not self.lr_decay_steps:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(step, self.lr_decay_steps) / self.lr_decay_steps))

    def _base_step(self, features: th.Tensor, actions: th.Tensor, lr: float) -> th.Tensor:
        """One imitation step of the diffusion policy on (s, a) from the batch, then the EMA update."""
        update_learning_rate(self.base.optimizer, lr * self._cosine(self._n_base_updates))
        self.base.train()
        with self._mixed():
            loss = self.base.loss(features, actions)
        self.base.eval()
        self.base.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.base.optimizer.step()
        self._n_base_updates += 1
        with th.no_grad():
            th._foreach_lerp_(self._base_ema_params, self._base_params, self.ema_tau)
        return loss.detach()

    def _edit_step(self, features: th.Tensor, actions: th.Tensor, lr: float) -> tuple[th.Tensor | None, ...]:
        """Edit policy on buffer actions against the mean of all online critics, then the temperature."""
        update_learning_rate(self.edit.optimizer, lr * self._cosine(self._n_edit_updates))
        alpha = self.log_ent_coef.detach().exp() if self.log_ent_coef is not None else self.ent_coef_tensor
        self.edit.train(True)
        with self._mixed():
            edited, log_prob = self.edit(features, actions)
            self.edit.train(False)
            self.critic.requires_grad_(False)
            q_edit = self.critic(features, edited).mean(dim=0)
            self.critic.requires_grad_(True)
        loss = (alpha * log_prob - q_edit).mean()
        self.edit.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.edit.optimizer.step()
        self._n_edit_updates += 1

        entropy = -log_prob.detach().mean()
        ent_coef_loss = self._temperature_step(entropy) if self.log_ent_coef is not None else None
        return loss.detach(), q_edit.detach().mean(), entropy, alpha.reshape(()), ent_coef_loss

    def _temperature_step(self, entropy: th.Tensor) -> th.Tensor:
        """jaxrl-form temperature update, d loss / d log(alpha) = alpha * (H - target), with |log alpha| bounded.

        With beta < 0.3 the reference target entropy -d/2 is unattainable, so alpha rises for the whole run;
        the bound (decision 10.3) keeps it finite by design instead of by an optimizer overflow.
        """
        assert self.log_ent_coef is not None and self.ent_coef_optimizer is not None
        loss = (self.log_ent_coef.exp() * (entropy - self.target_entropy)).sum()
        self.ent_coef_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.ent_coef_optimizer.step()
        with th.no_grad():
            self.log_ent_coef.clamp_(-self.max_log_ent_coef, self.max_log_ent_coef)
        return loss.detach()

    # ------------------------------------------------------------------ pretraining
    def pretrain(
        self: SelfEXPO, n_steps: int, batch_size: int | None = None, log_interval: int = 1000, progress_bar: bool = False
    ) -> SelfEXPO:
        """Imitation-only pretraining of the base policy on the demonstrations (reference 4.6).

        Critic, edit policy and temperature are left untouched; the base optimizer's step count carries on
        into learn(), so the cosine learning-rate schedule continues where pretraining stopped.
        """
        buffer = self.replay_buffer
        if not getattr(buffer, "n_demos", 0):
            raise ValueError(
                "pretrain() trains the base policy on demonstrations, but this model has none: pass demonstrations=... ."
            )
        if not hasattr(self, "_logger"):
            self.set_logger(configure_logger(self.verbose, self.tensorboard_log, "EXPO_pretrain"))
        batch_size = batch_size or self.batch_size
        lr = self.lr_schedule(1.0)
        losses = []
        for step in tqdm(range(1, n_steps + 1), disable=not progress_bar, desc="pretrain"):
            data = buffer.sample_demonstrations(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            with th.no_grad():
                features = self.policy.features(data.observations)
            losses.append(self._base_step(features, data.actions, lr))
            if step % log_interval == 0 or step == n_steps:
                self.logger.record("pretrain/base_loss", th.stack(losses).mean().item())
                self.logger.record("pretrain/base_learning_rate", self.base.optimizer.param_groups[0]["lr"])
                self.logger.dump(step=self._n_base_updates)
                losses = []
        return self

    def warm_start(self: SelfEXPO, n_episodes: int) -> SelfEXPO:
        """Fine-tuning without the dataset (paper section 5.5): drop the demonstrations and fill the buffer with
        n_episodes of the current (pretrained) policy; learn() then trains on online data only (demo_ratio 0).

        These steps are not counted in num_timesteps unless learn(reset_num_timesteps=False) follows.
        """
        buffer = self.replay_buffer
        if hasattr(buffer, "drop_demonstrations"):
            buffer.drop_demonstrations()
        self.demonstrations, self.demo_ratio, self._demos_missing = None, 0.0, False
        self._last_obs = self.env.reset()  # type: ignore[union-attr]
        if self._vec_normalize_env is not None:
            self._last_original_obs = self._vec_normalize_env.get_original_obs()
        self.policy.set_training_mode(False)
        finished = 0
        while finished < n_episodes:
            actions, buffer_actions = self._sample_action(0, None, self.n_envs)
            new_obs, rewards, dones, infos = self.env.step(actions)  # type: ignore[union-attr]
            self.num_timesteps += self.n_envs
            self._store_transition(buffer, buffer_actions, new_obs, rewards, dones, infos)  # type: ignore[arg-type]
            finished += int(dones.sum())
        return self

    # ------------------------------------------------------------------ SB3 plumbing
    def learn(
        self: SelfEXPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "EXPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfEXPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        excluded = [*super()._excluded_save_params(), "base", "base_ema", "edit", "critic", "critic_target"]
        excluded += ["_critic_params", "_critic_target_params", "_base_params", "_base_ema_params", "_bf16_net", "_bf16"]
        return excluded

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts = ["policy", "base.optimizer", "edit.optimizer", "critic.optimizer"]
        if self.ent_coef_optimizer is not None:
            return [*state_dicts, "ent_coef_optimizer"], ["log_ent_coef"]
        return state_dicts, ["ent_coef_tensor"]


PRECISIONS = ("fp32", "bf16", "auto")


def native_bf16(device: th.device | str) -> bool:
    """Whether `device` multiplies bfloat16 natively (what precision="auto" asks): CUDA compute capability >= 8.0, or
    a CPU with AMX tiles or AVX512-BF16 (without them bf16 matmuls are emulated and slower than fp32)."""
    device = th.device(device)
    if device.type == "cuda":
        return th.cuda.is_available() and th.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(th.cpu, name, lambda: False)() for name in checks)
    return False


def _minibatches(n_minibatches: int, batch_size: int) -> list[slice]:
    return [slice(g * batch_size, (g + 1) * batch_size) for g in range(n_minibatches)]


def _check_action_space(space: spaces.Space) -> None:
    if not isinstance(space, spaces.Box):
        raise ValueError(f"EXPO needs a continuous (Box) action space, got {space}. For discrete actions use DQN or QR-DQN.")
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise ValueError(
            f"EXPO needs a bounded action space, got {space}: wrap the env in gymnasium.wrappers.ClipAction "
            "and RescaleAction(env, -1, 1) to give the actions finite bounds."
        )
