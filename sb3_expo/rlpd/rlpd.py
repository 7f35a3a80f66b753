"""RLPD (Ball, Smith, Kostrikov, Levine 2023, "Efficient Online Reinforcement Learning with Offline Data"): SAC with a
LayerNorm critic ensemble, the min over a random subset of it in the backup, symmetric 50/50 sampling of
demonstrations and online data, and a high update-to-data ratio. EXPO's main baseline, built from EXPO's own parts
(the critic ensemble, the demonstration buffer) on SB3's SAC.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import configure_logger

from sb3_expo.common.demo_learning import DemonstrationLearning
from sb3_expo.common.ensemble import default_num_min_qs
from sb3_expo.common.transitions import Transitions
from sb3_expo.rlpd.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, RLPDPolicy

SelfRLPD = TypeVar("SelfRLPD", bound="RLPD")


class RLPD(DemonstrationLearning, SAC):
    """
    RLPD: SAC with prior data done right. Per ``train()`` call: G critic updates (UTD G), each on its own minibatch,
    bootstrapping from the min over ``num_min_qs`` randomly chosen target critics (a fresh subset every update), the
    entropy term included in the backup; then one actor and one temperature update on the last minibatch, the actor
    maximising the *mean* of all critics. Batches are half demonstrations, half online data.

    Defaults are the published RLPD configuration (rlpd_config on top of sac_config): 10 critics with LayerNorm,
    num_min_qs 2, 256 x 2 networks, lr 3e-4 for actor, critics and temperature, gamma 0.99, tau 0.005, initial
    temperature 1.0, target entropy -dim(A)/2, entropy backup on; UTD 20 and batch 256 (the paper's D4RL/Adroit runs).
    ``learning_starts`` is 5000, EXPO's (the reference scripts' start_training), so the two start alike.

    :param demonstrations: Transitions or a source string for ``sb3_expo.datasets.load_demonstrations``; None: online
    :param demo_ratio: fraction of each batch from demonstrations (0.5 with demonstrations: RLPD's symmetric sampling)
    :param num_min_qs: target critics in the random subset whose min is bootstrapped (2; min(2, n_critics) by default)
    :param backup_entropy: subtract ``alpha * log pi(a'|s')`` in the target (RLPD: True)

    Other arguments are SAC's, and so are the policy aliases (MlpPolicy, CnnPolicy for images, MultiInputPolicy);
    ``policy_kwargs`` takes ``n_critics`` (10), ``critic_layer_norm`` (True) and ``net_arch`` (256 x 2, or
    dict(pi=..., qf=...)).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: RLPDPolicy

    def __init__(
        self,
        policy: str | type[RLPDPolicy],
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
        num_min_qs: int | None = None,
        backup_entropy: bool = True,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
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
            ent_coef=ent_coef,
            target_entropy=target_entropy,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self._init_demonstrations(demonstrations, demo_ratio, strict=_init_setup_model)  # load() only warns
        n_critics = self.policy_kwargs.get("n_critics", 10)
        self.num_min_qs = default_num_min_qs(num_min_qs, n_critics)
        self.backup_entropy = backup_entropy
        if _init_setup_model:
            if not 1 <= self.num_min_qs <= n_critics:
                raise ValueError(f"num_min_qs={self.num_min_qs} must lie in [1, n_critics={n_critics}].")
            self._check_demonstration_arguments()
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_demo_buffer()
        if self.target_entropy == "auto":  # RLPD's -dim(A)/2 (SB3's SAC uses -dim(A))
            self.target_entropy = -float(np.prod(self.action_space.shape)) / 2  # type: ignore[arg-type]
        n_steps, self.n_steps = self.n_steps, 1  # our buffer computes n-step returns itself; SB3 would warn it ignores them
        super()._setup_model()
        self.n_steps = n_steps

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        ent_coef = th.exp(self.log_ent_coef.detach()) if self.ent_coef_optimizer is not None else self.ent_coef_tensor

        critic_losses = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts.flatten() if data.discounts is not None else self.gamma  # n-step or gamma
            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
                subset = self.critic_target.random_subset(self.num_min_qs)  # type: ignore[attr-defined]
                next_q = self.critic_target(data.next_observations, next_actions, subset).min(dim=0).values
                if self.backup_entropy:
                    next_q = next_q - ent_coef * next_log_prob
                target = data.rewards.flatten() + (1 - data.dones.flatten()) * discounts * next_q
            q_values = self.critic(data.observations, data.actions)  # [E, B]
            critic_loss = ((q_values - target) ** 2).mean()
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            critic_losses.append(critic_loss.detach())
            with th.no_grad():
                th._foreach_lerp_(self._target_params, self._critic_params, self.tau)
                if self.batch_norm_stats:
                    th._foreach_copy_(self.batch_norm_stats_target, self.batch_norm_stats)

        # one actor and one temperature update per call, on the last minibatch (RLPD)
        actions_pi, log_prob = self.actor.action_log_prob(data.observations)
        q_pi = self.critic(data.observations, actions_pi).mean(dim=0)  # the mean of all critics
        actor_loss = (ent_coef * log_prob - q_pi).mean()
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()
        entropy = -log_prob.detach().mean()
        if self.ent_coef_optimizer is not None:  # RLPD's form: alpha * (entropy - target), i.e. d/dlog(alpha) = alpha (H - H*)
            ent_coef_loss = self.log_ent_coef.exp() * (entropy - self.target_entropy)
            self.ent_coef_optimizer.zero_grad()
            ent_coef_loss.backward()
            self.ent_coef_optimizer.step()
            self.logger.record("train/ent_coef_loss", ent_coef_loss.item())
        if self.batch_norm_stats:  # as SAC, after the actor step: its pass through the critic moved the statistics too
            th._foreach_copy_(self.batch_norm_stats_target, self.batch_norm_stats)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", ent_coef.item())
        self.logger.record("train/entropy", entropy.item())
        self.logger.record("train/actor_loss", actor_loss.item())
        self.logger.record("train/critic_loss", th.stack(critic_losses).mean().item())

    def pretrain(self: SelfRLPD, n_steps: int, batch_size: int | None = None, log_interval: int = 1000) -> SelfRLPD:
        """Behaviour cloning of the actor on the demonstrations (maximum likelihood of their actions under the
        tanh-Gaussian): the "RLPD with a BC-pretrained actor" of offline-to-online comparisons. Critics, temperature
        and the step count are left as they are."""
        clone_actor(self, n_steps, batch_size or self.batch_size, log_interval)
        return self

    def _create_aliases(self) -> None:
        super()._create_aliases()
        self._critic_params, self._target_params = list(self.critic.parameters()), list(self.critic_target.parameters())

    def learn(
        self: SelfRLPD,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "RLPD",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRLPD:
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_critic_params", "_target_params"]


def clone_actor(model: SAC, n_steps: int, batch_size: int, log_interval: int = 1000) -> None:
    """Behaviour cloning of a SAC-family actor (SAC, RLPD) on the demonstrations of its DemoReplayBuffer."""
    buffer = model.replay_buffer
    if not getattr(buffer, "n_demos", 0):
        raise ValueError("pretrain() clones the demonstrations, but this model has none: pass demonstrations=... .")
    if not hasattr(model, "_logger"):
        model.set_logger(configure_logger(model.verbose, model.tensorboard_log, f"{type(model).__name__}_pretrain"))
    actor = model.actor
    actor.set_training_mode(True)
    losses = []
    for step in range(1, n_steps + 1):
        data = buffer.sample_demonstrations(batch_size, env=model._vec_normalize_env)  # type: ignore[union-attr]
        mean, log_std, _ = actor.get_action_dist_params(data.observations)
        loss = -actor.action_dist.proba_distribution(mean, log_std).log_prob(data.actions).mean()
        actor.optimizer.zero_grad()
        loss.backward()
        actor.optimizer.step()
        losses.append(loss.detach())
        if step % log_interval == 0 or step == n_steps:
            model.logger.record("pretrain/actor_bc_loss", th.stack(losses).mean().item())
            model.logger.dump(step=step)
            losses = []
    actor.set_training_mode(False)
