"""ExpoPolicy: the networks of EXPO and its on-the-fly (OTF) action selection.

Base policy (DDPM by default; flow, DDIM or a user's own; online + EMA copy), Gaussian edit policy, critic ensemble
and its target. The algorithm (expo.py) decides what is updated when; this module decides how an action is chosen
(reference section 3).
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any, Literal, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    get_actor_critic_arch,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from sb3_expo.common.ensemble import CriticEnsemble, default_num_min_qs
from sb3_expo.common.generative import DiffusionPolicy, FlowPolicy, check_generative_policy, check_samples
from sb3_expo.common.generative.networks import xavier_

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
BASES = ("ddpm", "ddim", "flow")


def observation_seeds(obs: PyTorchObs) -> list[int]:
    """One 63-bit seed per observation row: a hash of its values (every key's, for Dict observations).

    Hashed as float32 with -0.0 written as +0.0: equal observations get equal seeds, whatever sign a zero carries.
    """
    parts = [obs[k] for k in sorted(obs)] if isinstance(obs, dict) else [obs]
    rows = []
    for part in parts:
        values = part.detach().to("cpu", th.float32).reshape(part.shape[0], -1)
        rows.append(th.where(values == 0, 0.0, values).numpy())
    seeds = []
    for i in range(rows[0].shape[0]):
        digest = hashlib.blake2b(b"".join(r[i].tobytes() for r in rows), digest_size=8).digest()
        seeds.append(int.from_bytes(digest, "little") & (2**63 - 1))
    return seeds


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
        """Edited actions and log pi(beta * e_hat), with the tanh Jacobian and the -d*log(beta) correction.

        The Gaussian term comes from the standard normal draw xi itself (u = mu + sigma xi), not from (u - mu) / sigma,
        which cancels in float32 when sigma is tiny next to mu.
        """
        h = self.trunk(th.cat([features, base_actions], dim=-1))
        with th.autocast(h.device.type, enabled=False):  # heads, noise and log-probability in float32 under autocast
            h = h.float()
            mu, log_std = self.mu(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)
            if deterministic:
                xi = th.zeros_like(mu)
            else:
                xi = th.randn_like(mu) if noise is None else noise
            u = mu + log_std.exp() * xi
            gaussian = -0.5 * xi.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
            log_jacobian = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))  # log(1 - tanh(u)^2), stable
            d = base_actions.shape[-1]
            log_prob = (gaussian - log_jacobian).sum(-1) - d * math.log(self.edit_beta)
            return base_actions + self.edit_beta * th.tanh(u), log_prob


CandidateNoise = tuple[th.Tensor, th.Tensor]  # (the base sampler's noise for B*N rows, [B*K, d] edit noise)


class OTFActions(NamedTuple):
    actions: th.Tensor  # [B, d], not clipped (edited actions may reach 1 + beta)
    edited: th.Tensor  # [B] bool: the chosen candidate is an edited one


class ExpoPolicy(BasePolicy):
    """Policy class for EXPO.

    :param net_arch: hidden sizes of each critic and of the edit-policy trunk: a list (shared, as in the reference)
        or SB3's dict(pi=[...], qf=[...]) (pi: the edit policy, qf: the critics)
    :param n_critics: critic ensemble size (10)
    :param base: the base policy: "ddpm" (the paper's), "ddim" (the same model, deterministic DDIM sampler), "flow"
        (rectified flow, Euler steps), a GenerativePolicy class (built as ``cls(obs_dim=, action_dim=, **base_kwargs)``),
        or a pretrained instance (see sb3_expo.common.generative.base for the interface)
    :param base_kwargs: extra keyword arguments of the base policy's constructor
    :param diffusion_steps: T, the sampler's step count of the built-in bases (10)
    :param denoiser_width: width of the residual denoiser (256, fixed in the reference)
    :param denoiser_blocks: residual blocks of the denoiser (3)
    :param edit_beta: largest edit per action dimension (in the [-1, 1] action scale)
    :param n_base_samples: N base actions drawn per state
    :param n_edit_samples: K of them edited (K <= N); K = 0 turns the edit policy off
    :param num_min_qs: size of the random target-critic subset whose min selects candidates (default min(2, n_critics))
    :param edit_dropout: dropout in the edit trunk, active only in its own gradient step (0.1 for Adroit)
    :param base_weight_decay: AdamW weight decay of the base policy (1e-4)
    :param deterministic_mode: what predict(deterministic=True) does: "fixed" (base noise drawn from a seed that hashes
        the observation, the mean edit, the expected subset-min for the choice: same observation, same action) or "sampled"
        (the same as deterministic=False, i.e. the paper's evaluation; for zoo commands, which always ask for
        deterministic actions)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        n_critics: int = 10,
        base: str | type[nn.Module] | nn.Module = "ddpm",
        base_kwargs: dict[str, Any] | None = None,
        diffusion_steps: int = 10,
        denoiser_width: int = 256,
        denoiser_blocks: int = 3,
        edit_beta: float = 0.05,
        n_base_samples: int = 8,
        n_edit_samples: int = 8,
        num_min_qs: int | None = None,
        edit_dropout: float = 0.0,
        base_weight_decay: float = 1e-4,
        deterministic_mode: Literal["fixed", "sampled"] = "fixed",
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
        if deterministic_mode not in ("fixed", "sampled"):
            raise ValueError(f"deterministic_mode={deterministic_mode!r}: use 'fixed' or 'sampled'.")
        if isinstance(base, str) and base not in BASES:
            raise ValueError(f"base={base!r}: use one of {BASES}, a GenerativePolicy class or a pretrained instance.")
        self.net_arch = [256, 256, 256] if net_arch is None else net_arch
        self.n_critics, self.diffusion_steps = n_critics, diffusion_steps
        self.base_spec, self.base_kwargs = base, dict(base_kwargs or {})
        self.denoiser_width, self.denoiser_blocks = denoiser_width, denoiser_blocks
        self.edit_beta, self.n_base_samples, self.n_edit_samples = edit_beta, n_base_samples, n_edit_samples
        self.num_min_qs = default_num_min_qs(num_min_qs, n_critics)
        self.edit_dropout, self.base_weight_decay = edit_dropout, base_weight_decay
        self.deterministic_mode = deterministic_mode
        self.bf16_acting = False  # set by EXPO from its precision: sample acting candidates from a bf16 copy of base_ema
        self._acting_copy: dict[str, Any] = {}  # that copy and the EMA weights' versions it was made from
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.features_extractor = self.make_features_extractor()
        features_dim = self.features_extractor.features_dim
        self.action_dim = action_dim = int(np.prod(self.action_space.shape))
        edit_arch, critic_arch = get_actor_critic_arch(self.net_arch)
        lr = lr_schedule(1)
        self.base = self._make_base(features_dim, action_dim)
        ema = self.base.ema_copy() if hasattr(self.base, "ema_copy") else copy.deepcopy(self.base)
        self.base_ema = ema.requires_grad_(False)
        self.base.optimizer = th.optim.AdamW(self.base.parameters(), lr=lr, weight_decay=self.base_weight_decay)
        self.edit = EditPolicy(features_dim, action_dim, edit_arch, self.edit_beta, self.edit_dropout)
        self.edit.optimizer = self.optimizer_class(self.edit.parameters(), lr=lr, **self.optimizer_kwargs)
        self.critic = CriticEnsemble(features_dim + action_dim, critic_arch, self.n_critics)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        critic_params = list(self.critic.parameters())
        # A learnable features extractor is trained by the critic loss, as SAC trains its critic's extractor; the target
        # critic reads a Polyak-averaged copy of it, and the base and edit policies see its features detached.
        self.trains_features = any(p.requires_grad for p in self.features_extractor.parameters())
        self.features_extractor_target = (
            copy.deepcopy(self.features_extractor).requires_grad_(False) if self.trains_features else None
        )
        if self.trains_features:
            critic_params += list(self.features_extractor.parameters())
        self.critic.optimizer = self.optimizer_class(critic_params, lr=lr, **self.optimizer_kwargs)
        self.set_training_mode(False)

    def _make_base(self, features_dim: int, action_dim: int) -> nn.Module:
        spec, kwargs = self.base_spec, self.base_kwargs
        sizes = (features_dim, action_dim, self.diffusion_steps, self.denoiser_width, self.denoiser_blocks)
        if spec in ("ddpm", "ddim"):
            return DiffusionPolicy(*sizes, sampler=spec, **kwargs)
        if spec == "flow":
            return FlowPolicy(*sizes, **kwargs)
        base = spec(obs_dim=features_dim, action_dim=action_dim, **kwargs) if isinstance(spec, type) else spec
        if not isinstance(base, nn.Module):
            raise ValueError(f"base={spec!r} is not a torch module: give 'ddpm', 'ddim', 'flow', a class or an instance.")
        check_generative_policy(base, features_dim, action_dim)
        return base

    @property
    def custom_base(self) -> bool:
        return not isinstance(self.base_spec, str)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            n_critics=self.n_critics,
            base=self.base_spec,
            base_kwargs=self.base_kwargs,
            diffusion_steps=self.diffusion_steps,
            denoiser_width=self.denoiser_width,
            denoiser_blocks=self.denoiser_blocks,
            edit_beta=self.edit_beta,
            n_base_samples=self.n_base_samples,
            n_edit_samples=self.n_edit_samples,
            num_min_qs=self.num_min_qs,
            edit_dropout=self.edit_dropout,
            base_weight_decay=self.base_weight_decay,
            deterministic_mode=self.deterministic_mode,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data

    def features(self, obs: PyTorchObs) -> th.Tensor:
        """What the base, edit and online critic see (the online features extractor)."""
        return self.extract_features(obs, self.features_extractor)

    def target_features(self, obs: PyTorchObs) -> th.Tensor:
        """What the target critic sees: the target copy of a learnable extractor, else the same as features()."""
        if self.features_extractor_target is None:
            return self.features(obs)
        return self.extract_features(obs, self.features_extractor_target)

    def candidates(
        self,
        features: th.Tensor,
        base: nn.Module,
        deterministic: bool = False,
        noise: CandidateNoise | None = None,
        net: nn.Module | None = None,
        check: bool = False,
    ) -> th.Tensor:
        """[B, N + K, d]: N base samples per state, then edited copies of the first K (just N when N = 1).

        net: denoiser weights to sample with instead of base's own (the bfloat16 copy of the training backup).
        check: raise a clear error if the base samples have the wrong shape, leave [-1, 1] or are not finite.
        """
        n, k = self.n_base_samples, self.n_edit_samples
        batch = features.shape[0]
        base_noise, edit_noise = self.candidate_noise(batch, features.device) if noise is None else noise
        rows = features.repeat_interleave(n, dim=0)
        samples = base.sample(rows, base_noise) if net is None else base.sample(rows, base_noise, net)
        if check:
            check_samples(samples, len(rows), self.action_dim, f"the base policy {type(base).__name__}")
        base_actions = samples.view(batch, n, -1)
        if n == 1 or k == 0:
            return base_actions
        edited, _ = self.edit(
            features.repeat_interleave(k, dim=0), base_actions[:, :k].reshape(batch * k, -1), deterministic, edit_noise
        )
        return th.cat([base_actions, edited.view(batch, k, -1)], dim=1)

    def candidate_noise(
        self, n_states: int, device: th.device | str, deterministic: bool = False, obs: PyTorchObs | None = None
    ) -> CandidateNoise:
        """The standard normals candidates() consumes for n_states states (one draw, so it can be batched).

        deterministic: each state's N base samples use noise drawn from a generator seeded by a hash of its observation
        (`obs`), on the CPU: a fixed function of the observation, whatever the global RNG, batch or device, that is
        distributed across states like the stochastic draws; no edit noise (the mean edit).
        """
        if deterministic:
            if obs is None:
                raise ValueError("deterministic candidate noise is seeded by the observations: pass obs.")
            generator = th.Generator()
            draws = []
            for seed in observation_seeds(obs):
                generator.manual_seed(seed)
                draws.append(self.base.draw_noise(self.n_base_samples, "cpu", generator))
            base_noise = th.cat(draws, dim=1).to(device)
            return base_noise, th.zeros(n_states * self.n_edit_samples, self.action_dim, device=device)
        base_noise = self.base.draw_noise(n_states * self.n_base_samples, device)
        edit_rows = n_states * self.n_edit_samples if self.n_base_samples > 1 else 0
        return base_noise, th.randn(edit_rows, self.action_dim, device=device)

    def select(self, features: th.Tensor, candidates: th.Tensor, deterministic: bool = False) -> OTFActions:
        """Per state, the candidate with the highest min over a fresh random subset of the target critic.

        deterministic: the expectation of that min over all subsets instead of one random draw.
        """
        batch, n_cand = candidates.shape[:2]
        if n_cand == 1:  # N = 1 (or the single-sample backup): no selection, as in the reference
            return OTFActions(candidates[:, 0], th.zeros(batch, dtype=th.bool, device=candidates.device))
        flat, rows = candidates.reshape(batch * n_cand, -1), features.repeat_interleave(n_cand, dim=0)
        if deterministic:
            q = self.critic_target.expected_subset_min(rows, flat, self.num_min_qs)
        else:
            q = self.critic_target.subset_min(rows, flat, self.num_min_qs)
        best = q.view(batch, n_cand).argmax(dim=1)
        return OTFActions(candidates[th.arange(batch, device=features.device), best], best >= self.n_base_samples)

    def sample_actions(self, obs: PyTorchObs, deterministic: bool = False) -> OTFActions:
        """Acting and evaluation: OTF with the EMA base policy; actions unclipped, in [-1, 1] scale.

        A user's own base policy has its samples checked on every acting call (the training backup trusts them).
        """
        features = self.features(obs)
        noise = self.candidate_noise(features.shape[0], features.device, deterministic, obs) if deterministic else None
        net = self.acting_net()
        candidates = self.candidates(features, self.base_ema, deterministic, noise, net=net, check=self.custom_base)
        return self.select(features, candidates, deterministic)

    @th.no_grad()
    def acting_net(self) -> nn.Module | None:
        """With bf16_acting, the EMA base's denoiser in bfloat16 (acting samples from it; selection stays float32);
        refreshed in place whenever the EMA weights changed (an EMA step, a load), found by their version counters."""
        if not self.bf16_acting:
            return None
        params = list(self.base_ema.net.parameters())
        versions = [p._version for p in params]
        net = self._acting_copy.get("net")
        if net is None:
            net = self._acting_copy["net"] = self.base_ema.low_precision_net()
        elif versions != self._acting_copy["versions"]:
            th._foreach_copy_(list(net.parameters()), params)
        self._acting_copy["versions"] = versions
        return net

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        if self.deterministic_mode == "sampled":
            deterministic = False
        # What the env sees: clip(a_edit, -1, 1); predict() then maps it to the env's bounds.
        return self.sample_actions(observation, deterministic).actions.clamp(-1.0, 1.0)

    def set_training_mode(self, mode: bool) -> None:
        """Every trained module to `mode` (dropout, batch norm); the EMA base and the targets always evaluate."""
        self.train(mode)
        for module in (self.base_ema, self.critic_target, self.features_extractor_target):
            if module is not None:
                module.eval()


MlpPolicy = ExpoPolicy


class MultiInputPolicy(ExpoPolicy):
    """ExpoPolicy for Dict observations: the keys are flattened and concatenated (CombinedExtractor)."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)
