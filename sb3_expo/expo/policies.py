"""ExpoPolicy: the networks of EXPO and its on-the-fly (OTF) action selection.

Base policy (DDPM, online + EMA copy), Gaussian edit policy, critic ensemble and its target. The algorithm
(expo.py) decides what is updated when; this module decides how an action is chosen (reference section 3).
"""

from __future__ import annotations

import copy
import math
from typing import Any, NamedTuple

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from sb3_expo.common.diffusion import Denoiser, DiffusionPolicy, xavier_
from sb3_expo.common.ensemble import CriticEnsemble

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class EditPolicy(nn.Module):
    """tanh-Gaussian edit on (s, a_base), scaled by beta: a_edit = a_base + beta * tanh(u), u ~ N(mu, sigma)."""

    def __init__(self, features_dim: int, action_dim: int, net_arch: list[int], edit_beta: float, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        last = features_dim + action_dim
        for width in net_arch:  # Dense -> Dropout -> ReLU, as in the reference
            layers += [xavier_(nn.Linear(last, width)), nn.Dropout(dropout), nn.ReLU()]
            last = width
        self.trunk = nn.Sequential(*layers)
        self.mu = xavier_(nn.Linear(last, action_dim))
        self.log_std = xavier_(nn.Linear(last, action_dim))
        self.edit_beta = edit_beta

    def forward(
        self, features: th.Tensor, base_actions: th.Tensor, deterministic: bool = False, noise: th.Tensor | None = None
    ) -> tuple[th.Tensor, th.Tensor]:
        """Edited actions and log pi(beta * e_hat), with the tanh Jacobian and the -d*log(beta) correction."""
        h = self.trunk(th.cat([features, base_actions], dim=-1))
        mu, log_std = self.mu(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)
        u = mu if deterministic else mu + log_std.exp() * (th.randn_like(mu) if noise is None else noise)
        gaussian = -0.5 * ((u - mu) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        log_jacobian = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))  # log(1 - tanh(u)^2), stable
        d = base_actions.shape[-1]
        log_prob = (gaussian - log_jacobian).sum(-1) - d * math.log(self.edit_beta)
        return base_actions + self.edit_beta * th.tanh(u), log_prob


CandidateNoise = tuple[th.Tensor, th.Tensor]  # ([T, B*N, d] diffusion noise, [B*K, d] edit noise)


class OTFActions(NamedTuple):
    actions: th.Tensor  # [B, d], not clipped (edited actions may reach 1 + beta)
    edited: th.Tensor  # [B] bool: the chosen candidate is an edited one


class ExpoPolicy(BasePolicy):
    """Policy class for EXPO.

    :param net_arch: hidden sizes of each critic and of the edit-policy trunk (shared, as in the reference)
    :param n_critics: critic ensemble size (10)
    :param diffusion_steps: T of the DDPM base policy (10)
    :param denoiser_width: width of the residual denoiser (256, fixed in the reference)
    :param denoiser_blocks: residual blocks of the denoiser (3)
    :param edit_beta: largest edit per action dimension (in the [-1, 1] action scale)
    :param n_base_samples: N base actions drawn per state
    :param n_edit_samples: K of them edited (K <= N); K = 0 turns the edit policy off
    :param num_min_qs: size of the random target-critic subset whose min selects candidates
    :param edit_dropout: dropout in the edit trunk, active only in its own gradient step (0.1 for Adroit)
    :param base_weight_decay: AdamW weight decay of the base policy (1e-4)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        n_critics: int = 10,
        diffusion_steps: int = 10,
        denoiser_width: int = 256,
        denoiser_blocks: int = 3,
        edit_beta: float = 0.05,
        n_base_samples: int = 8,
        n_edit_samples: int = 8,
        num_min_qs: int = 2,
        edit_dropout: float = 0.0,
        base_weight_decay: float = 1e-4,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=True,  # predict() maps [-1, 1] back to the env's bounds
            normalize_images=normalize_images,
        )
        self.net_arch = [256, 256, 256] if net_arch is None else list(net_arch)
        self.n_critics, self.diffusion_steps = n_critics, diffusion_steps
        self.denoiser_width, self.denoiser_blocks = denoiser_width, denoiser_blocks
        self.edit_beta, self.n_base_samples, self.n_edit_samples = edit_beta, n_base_samples, n_edit_samples
        self.num_min_qs, self.edit_dropout, self.base_weight_decay = num_min_qs, edit_dropout, base_weight_decay
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.features_extractor = self.make_features_extractor()
        features_dim, action_dim = self.features_extractor.features_dim, int(self.action_space.shape[0])
        lr = lr_schedule(1)
        self.base = DiffusionPolicy(features_dim, action_dim, self.diffusion_steps, self.denoiser_width, self.denoiser_blocks)
        self.base_ema = copy.deepcopy(self.base).requires_grad_(False)
        self.base.optimizer = th.optim.AdamW(self.base.parameters(), lr=lr, weight_decay=self.base_weight_decay)
        self.edit = EditPolicy(features_dim, action_dim, self.net_arch, self.edit_beta, self.edit_dropout)
        self.edit.optimizer = self.optimizer_class(self.edit.parameters(), lr=lr, **self.optimizer_kwargs)
        self.critic = CriticEnsemble(features_dim + action_dim, self.net_arch, self.n_critics)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic.optimizer = self.optimizer_class(self.critic.parameters(), lr=lr, **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            n_critics=self.n_critics,
            diffusion_steps=self.diffusion_steps,
            denoiser_width=self.denoiser_width,
            denoiser_blocks=self.denoiser_blocks,
            edit_beta=self.edit_beta,
            n_base_samples=self.n_base_samples,
            n_edit_samples=self.n_edit_samples,
            num_min_qs=self.num_min_qs,
            edit_dropout=self.edit_dropout,
            base_weight_decay=self.base_weight_decay,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data

    def features(self, obs: PyTorchObs) -> th.Tensor:
        return self.extract_features(obs, self.features_extractor)

    def candidates(
        self,
        features: th.Tensor,
        base: DiffusionPolicy,
        deterministic: bool = False,
        noise: CandidateNoise | None = None,
        net: Denoiser | None = None,
    ) -> th.Tensor:
        """[B, N + K, d]: N base samples per state, then edited copies of the first K (just N when N = 1).

        net: denoiser weights to sample with instead of base's own (the bfloat16 copy of the training backup).
        """
        n, k = self.n_base_samples, self.n_edit_samples
        batch = features.shape[0]
        base_noise, edit_noise = self.candidate_noise(batch, features.device) if noise is None else noise
        base_actions = base.sample(features.repeat_interleave(n, dim=0), base_noise, net).view(batch, n, -1)
        if n == 1 or k == 0:
            return base_actions
        edited, _ = self.edit(
            features.repeat_interleave(k, dim=0), base_actions[:, :k].reshape(batch * k, -1), deterministic, edit_noise
        )
        return th.cat([base_actions, edited.view(batch, k, -1)], dim=1)

    def candidate_noise(self, n_states: int, device: th.device | str) -> CandidateNoise:
        """The standard normals candidates() consumes for n_states states (one draw, so it can be batched)."""
        base_noise = self.base.draw_noise(n_states * self.n_base_samples, device)
        edit_rows = n_states * self.n_edit_samples if self.n_base_samples > 1 else 0
        return base_noise, th.randn(edit_rows, base_noise.shape[-1], device=device)

    def select(self, features: th.Tensor, candidates: th.Tensor) -> OTFActions:
        """Per state, the candidate with the highest min over a fresh random subset of the target critic."""
        batch, n_cand = candidates.shape[:2]
        if n_cand == 1:  # N = 1 (or the single-sample backup): no selection, as in the reference
            return OTFActions(candidates[:, 0], th.zeros(batch, dtype=th.bool, device=candidates.device))
        flat = candidates.reshape(batch * n_cand, -1)
        q = self.critic_target.subset_min(features.repeat_interleave(n_cand, dim=0), flat, self.num_min_qs)
        best = q.view(batch, n_cand).argmax(dim=1)
        return OTFActions(candidates[th.arange(batch, device=features.device), best], best >= self.n_base_samples)

    def otf_actions(self, features: th.Tensor, base: DiffusionPolicy, deterministic: bool = False) -> OTFActions:
        """Best of N base samples plus K edited copies, by the min over a random target-critic subset."""
        return self.select(features, self.candidates(features, base, deterministic))

    def sample_actions(self, obs: PyTorchObs, deterministic: bool = False) -> OTFActions:
        """Acting and evaluation: OTF with the EMA base policy; actions unclipped, in [-1, 1] scale."""
        return self.otf_actions(self.features(obs), self.base_ema, deterministic)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        # What the env sees: clip(a_edit, -1, 1); predict() then maps it to the env's bounds.
        return self.sample_actions(observation, deterministic).actions.clamp(-1.0, 1.0)

    def set_training_mode(self, mode: bool) -> None:
        # Only the edit policy has dropout, and the algorithm switches it on for its own step only.
        self.edit.train(mode)
        self.training = mode


MlpPolicy = ExpoPolicy


class MultiInputPolicy(ExpoPolicy):
    """ExpoPolicy for Dict observations: the keys are flattened and concatenated (CombinedExtractor)."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)
