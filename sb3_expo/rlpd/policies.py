"""RLPD's policy: SB3's SAC actor (tanh-Gaussian) with an ensemble of LayerNorm critics in batched weights."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.sac.policies import SACPolicy

from sb3_expo.common.ensemble import CriticEnsemble


class EnsembleCritic(BaseModel):
    """Q_i(s, a) for i = 1..n_critics from one CriticEnsemble (Dense -> LayerNorm -> ReLU); returns [E, B]."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        n_critics: int = 10,
        layer_norm: bool = True,
        share_features_extractor: bool = False,
        normalize_images: bool = True,
        **_: Any,  # activation_fn: the ensemble uses ReLU, as RLPD
    ):
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        action_dim = int(th.tensor(action_space.shape).prod())
        self.share_features_extractor = share_features_extractor
        self.n_critics = n_critics
        self.q_networks = CriticEnsemble(features_dim + action_dim, net_arch, n_critics, layer_norm=layer_norm)

    def forward(self, obs: PyTorchObs, actions: th.Tensor, members: th.Tensor | None = None) -> th.Tensor:
        with th.set_grad_enabled(not self.share_features_extractor):  # a shared extractor learns from the actor only
            features = self.extract_features(obs, self.features_extractor)
        return self.q_networks(features, actions, members)

    def random_subset(self, size: int) -> th.Tensor:
        return self.q_networks.random_subset(size)


class RLPDPolicy(SACPolicy):
    """SAC's policy with RLPD's critics: `n_critics` (10) LayerNorm critics (`critic_layer_norm`) in batched weights.

    net_arch as SAC's: a list for both, or dict(pi=[...], qf=[...]); RLPD's default is 256 x 2 for both.
    """

    def __init__(self, *args: Any, n_critics: int = 10, critic_layer_norm: bool = True, **kwargs: Any):
        self.critic_layer_norm = critic_layer_norm
        kwargs.setdefault("net_arch", [256, 256])
        super().__init__(*args, n_critics=n_critics, **kwargs)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> EnsembleCritic:  # type: ignore[override]
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return EnsembleCritic(**critic_kwargs, layer_norm=self.critic_layer_norm).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "critic_layer_norm": self.critic_layer_norm}


MlpPolicy = RLPDPolicy


class CnnPolicy(RLPDPolicy):
    """RLPDPolicy for image observations (SB3's NatureCNN, as SAC's CnnPolicy); actor and critics each have their own."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class MultiInputPolicy(RLPDPolicy):
    """RLPDPolicy for Dict observations (SB3's CombinedExtractor)."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)
