"""GoRL's networks: the Gaussian latent policy (trained by PPO) and the frozen generative decoder it acts through.

PPO sees the latent z as its action; the env receives tanh(decoder(s, z)), rescaled to the env's bounds. z is the
decoder sampler's starting point, never an input beside the observation (docs/gorl-reference.md sections 2 and 6).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from sb3_expo.common.generative import DiffusionPolicy, FlowPolicy, TimeMLP

STD_MIN, STD_MAX = 1e-3, 10.0  # GoRL: sigma = softplus(rho) + 1e-3, clipped to [1e-3, 10]
ADAM_EPS = 1e-8  # GoRL's optimizer: optax.scale_by_adam's default eps (v1/v2)


class RunningObsNorm(BaseFeaturesExtractor):
    """The latent policy's own observation normaliser, (obs - mean) / sqrt(var + 1e-8), from running statistics that
    GoRL updates after each PPO update with that rollout's observations (v2's "rollout consistent" order)."""

    def __init__(self, observation_space: spaces.Box):
        super().__init__(observation_space, int(np.prod(observation_space.shape)))
        size = self.features_dim
        self.register_buffer("mean", th.zeros(size))
        self.register_buffer("var", th.ones(size))
        self.register_buffer("count", th.zeros(()))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return (obs.flatten(1) - self.mean) / th.sqrt(self.var + 1e-8)

    @th.no_grad()
    def update(self, obs: th.Tensor) -> None:
        """Merge a batch into the statistics (parallel variance formula, as SB3's RunningMeanStd)."""
        batch = obs.reshape(-1, self.features_dim).to(self.mean)
        n, mean, var = batch.shape[0], batch.mean(0), batch.var(0, unbiased=False)
        total = self.count + n
        delta = mean - self.mean
        m2 = self.var * self.count + var * n + delta.pow(2) * self.count * n / total
        self.mean.add_(delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def reset(self) -> None:
        self.mean.zero_()
        self.var.fill_(1.0)
        self.count.zero_()


class LatentGaussianDistribution(DiagGaussianDistribution):
    """A diagonal Gaussian over z whose standard deviation is an output of the network (GoRL's head)."""

    def proba_distribution_from_head(self, head: th.Tensor) -> LatentGaussianDistribution:
        mean, rho = head.chunk(2, dim=-1)
        std = (F.softplus(rho) + STD_MIN).clamp(STD_MIN, STD_MAX)
        self.distribution = th.distributions.Normal(mean, std)
        return self


class LatentDecoder(nn.Module):
    """The frozen decoder: u = g(s, z), the sampler started at z, with its own fixed observation normaliser.

    Before its first fit it is the identity (GoRL's stage 0). `kind`: "flow" (rectified flow, Euler from t = 1 to 0)
    or "ddim" (deterministic DDIM, GoRL v2's epsilon_delta form: a zero network is the identity); both on GoRL's
    SiLU MLP over [obs, x_t, sin/cos time features], no clipping (u is pre-tanh).
    """

    def __init__(self, obs_dim: int, action_dim: int, kind: str = "flow", steps: int = 10, width: int = 64, layers: int = 4):
        super().__init__()
        if kind not in ("flow", "ddim"):
            raise ValueError(f"decoder={kind!r}: use 'flow' or 'ddim'.")
        self.obs_dim, self.action_dim, self.kind = obs_dim, action_dim, kind
        self.steps, self.width, self.layers = steps, width, layers
        self.generative = self.fresh_generative()
        self.register_buffer("obs_mean", th.zeros(obs_dim))
        self.register_buffer("obs_std", th.ones(obs_dim))
        self.register_buffer("fitted", th.zeros((), dtype=th.bool))  # False: the identity (stage 0)

    def fresh_generative(self) -> nn.Module:
        """A newly initialised model (every refit starts from scratch, as in GoRL)."""
        net = TimeMLP(self.obs_dim, self.action_dim, self.width, self.layers, zero_final=True)
        if self.kind == "flow":
            return FlowPolicy(
                self.obs_dim, self.action_dim, self.steps, net=net, clip_output=False, loss_reduction="mean", time_scale=1.0
            )
        return DiffusionPolicy(
            self.obs_dim,
            self.action_dim,
            self.steps,
            sampler="ddim",
            schedule="linear_alpha_bar",
            parameterization="epsilon_delta",
            clip_sample=False,
            loss_reduction="mean",
            output_scale=0.25,
            net=net,
            time_input="fraction",
        )

    def normalize(self, obs: th.Tensor) -> th.Tensor:
        return (obs.flatten(1) - self.obs_mean) / (self.obs_std + 1e-8)

    def forward(self, obs: th.Tensor, z: th.Tensor) -> th.Tensor:
        """Pre-tanh actions u for raw observations and latents z (z is the sampler's x at its start)."""
        if not bool(self.fitted):
            return z
        return self.generative.sample(self.normalize(obs), z.unsqueeze(0))


class GoRLPolicy(ActorCriticPolicy):
    """PPO policy of GoRL: a Gaussian over the latent z (its action space), plus the decoder the env is driven through.

    The actor is obs -> 32 x 4 -> (mu, rho), the critic obs -> 256 x 5 -> V, SiLU, lecun-uniform weights and zero
    biases (GoRL's networks); observations go through the policy's own running normaliser. predict() decodes:
    it returns env actions tanh(g(s, z)) rescaled to the env's bounds, with z = mu when deterministic.

    :param env_action_space: the env's action space (the policy's own action space is the latent Box)
    :param decoder: "flow" or "ddim"; decoder_steps, decoder_width, decoder_layers: its sampler steps and MLP size
    :param latent_init: "default" (GoRL v1: a fresh head gives mu ~ 0, sigma ~ 0.69) or "gaussian" (v2's option:
        the head's weights zeroed and its bias set so that z ~ N(0, I) exactly, the prior the decoder was fitted on)
    :param init_seed: seed of the latent policy's initialisation, the same at every stage (GoRL v1)
    :param optimizer_kwargs: the optimizer's (default: Adam with eps 1e-8, GoRL's optax Adam; SB3's PPO uses 1e-5).
        One optimizer over the latent policy and the value net, as GoRL's single Adam; given optimizer_kwargs replace
        this default (torch's Adam eps is 1e-8 too)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: dict[str, list[int]] | list[int] | None = None,
        activation_fn: type[nn.Module] = nn.SiLU,
        env_action_space: spaces.Box | None = None,
        decoder: str = "flow",
        decoder_steps: int = 10,
        decoder_width: int = 64,
        decoder_layers: int = 4,
        latent_init: str = "default",
        init_seed: int = 0,
        features_extractor_class: type[BaseFeaturesExtractor] = RunningObsNorm,
        **kwargs: Any,
    ):
        if latent_init not in ("default", "gaussian"):
            raise ValueError(f"latent_init={latent_init!r}: use 'default' or 'gaussian'.")
        self.env_action_space = env_action_space if env_action_space is not None else action_space
        self.decoder_kind, self.decoder_steps = decoder, decoder_steps
        self.decoder_width, self.decoder_layers, self.latent_init = decoder_width, decoder_layers, latent_init
        self.init_seed = init_seed
        self.latent_penalty = 0.0  # lambda_z; GoRL sets it per stage
        self.ent_coef = 0.01  # PPO's entropy coefficient, which the penalty rides on (see evaluate_actions)
        kwargs.setdefault("ortho_init", False)  # GoRL's init instead (reset_latent_policy)
        if kwargs.get("optimizer_kwargs") is None and kwargs.get("optimizer_class", th.optim.Adam) is th.optim.Adam:
            kwargs["optimizer_kwargs"] = {"eps": ADAM_EPS}  # GoRL's Adam (optax's eps); SB3's default would be 1e-5
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=dict(pi=[32] * 4, vf=[256] * 5) if net_arch is None else net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            share_features_extractor=True,
            **kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        self._build_mlp_extractor()
        latent_dim = int(np.prod(self.action_space.shape))
        self.action_dist = LatentGaussianDistribution(latent_dim)
        self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, 2 * latent_dim)  # (mu, rho)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        obs_dim = int(np.prod(self.observation_space.shape))
        self.decoder = LatentDecoder(
            obs_dim, latent_dim, self.decoder_kind, self.decoder_steps, self.decoder_width, self.decoder_layers
        )
        self.decoder.requires_grad_(False)
        # the best latent policy of the current stage (GoRL collects decoder data with it), saved with the model
        self.best = nn.ModuleDict({name: copy.deepcopy(module) for name, module in self._latent_modules().items()})
        self.best.requires_grad_(False)
        self.register_buffer("best_return", th.tensor(-math.inf))
        self.lr_schedule = lr_schedule
        self.reset_latent_policy(self.init_generator())

    def init_generator(self) -> th.Generator:
        """The latent policy's initialisation: the same seed at every stage (GoRL v1)."""
        return th.Generator().manual_seed(self.init_seed)

    def _latent_modules(self) -> dict[str, nn.Module]:
        return {
            "features_extractor": self.features_extractor,
            "mlp_extractor": self.mlp_extractor,
            "action_net": self.action_net,
            "value_net": self.value_net,
        }

    def latent_parameters(self) -> list[nn.Parameter]:
        return [p for module in self._latent_modules().values() for p in module.parameters()]

    def reset_latent_policy(self, generator: th.Generator, keep_weights: bool = False) -> None:
        """A fresh latent policy (GoRL v1: every stage, same seed; value net and observation statistics too) and a
        fresh optimizer. keep_weights: only the optimizer is new (v2's warm start)."""
        if not keep_weights:
            for module in (self.mlp_extractor, self.action_net, self.value_net):
                for layer in module.modules():
                    if isinstance(layer, nn.Linear):
                        bound = math.sqrt(3.0 / layer.in_features)
                        nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                        nn.init.zeros_(layer.bias)
            if hasattr(self.features_extractor, "reset"):
                self.features_extractor.reset()
            if self.latent_init == "gaussian":  # z ~ N(0, I) at the stage's start: mu = 0, sigma = 1
                with th.no_grad():
                    self.action_net.weight.zero_()
                    half = self.action_net.bias.shape[0] // 2
                    self.action_net.bias[:half] = 0.0
                    self.action_net.bias[half:] = math.log(math.expm1(1.0 - STD_MIN))  # softplus^-1(1 - 1e-3)
        self.optimizer = self.optimizer_class(self.latent_parameters(), lr=self.lr_schedule(1), **self.optimizer_kwargs)
        self.best_return.fill_(-math.inf)

    def keep_as_best(self, mean_return: float) -> None:
        self.best.load_state_dict(
            {f"{n}.{k}": v for n, m in self._latent_modules().items() for k, v in m.state_dict().items()}
        )
        self.best_return.fill_(mean_return)

    def restore_best(self) -> None:
        if math.isfinite(float(self.best_return)):
            for name, module in self._latent_modules().items():
                module.load_state_dict(self.best[name].state_dict())

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            env_action_space=self.env_action_space,
            decoder=self.decoder_kind,
            decoder_steps=self.decoder_steps,
            decoder_width=self.decoder_width,
            decoder_layers=self.decoder_layers,
            latent_init=self.latent_init,
            init_seed=self.init_seed,
        )
        return data

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> LatentGaussianDistribution:
        return self.action_dist.proba_distribution_from_head(self.action_net(latent_pi))

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """PPO's terms, with GoRL's latent penalty lambda_z (mean(mu^2) + mean(sigma^2)) carried by the entropy term:
        PPO's loss adds ent_coef * -mean(entropy), so returning entropy - (lambda_z / ent_coef) * penalty adds exactly
        lambda_z * penalty and leaves SB3's PPO.train unchanged (the logged entropy loss includes it)."""
        latent_pi, latent_vf = self.mlp_extractor(self.extract_features(obs))
        distribution = self._get_action_dist_from_latent(latent_pi)
        entropy = distribution.entropy()
        if self.latent_penalty:
            normal = distribution.distribution
            penalty = normal.mean.pow(2).mean(-1) + normal.stddev.pow(2).mean(-1)
            entropy = entropy - (self.latent_penalty / self.ent_coef) * penalty
            self._last_penalty = float(penalty.detach().mean())
        return self.value_net(latent_vf), distribution.log_prob(actions), entropy

    def env_actions(self, u: th.Tensor) -> th.Tensor:
        """What the env receives for pre-tanh actions u: tanh(u) rescaled to the env's bounds."""
        low = th.as_tensor(self.env_action_space.low, device=u.device, dtype=u.dtype).flatten()
        high = th.as_tensor(self.env_action_space.high, device=u.device, dtype=u.dtype).flatten()
        return low + (th.tanh(u) + 1.0) * 0.5 * (high - low)

    def decode(self, obs: th.Tensor, z: th.Tensor) -> th.Tensor:
        """Env actions for raw observations and latents."""
        return self.env_actions(self.decoder(obs.float(), z))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """Env actions: the latent (its mean when deterministic) decoded, tanh'd and rescaled to the env's bounds."""
        z = self.get_distribution(observation).get_actions(deterministic=deterministic)
        return self.decode(observation.flatten(1), z)  # type: ignore[union-attr]

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Env actions (decoded), for evaluation and deployment, through SB3's BasePolicy.predict (its input checks,
        and the env's action shape, bounds and dtype); PPO's rollouts use forward() (latents)."""
        latent_space, self.action_space = self.action_space, self.env_action_space
        try:
            return super().predict(observation, state, episode_start, deterministic)
        finally:
            self.action_space = latent_space


MlpPolicy = GoRLPolicy
