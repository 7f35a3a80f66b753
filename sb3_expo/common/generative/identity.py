"""The identity decoder: the action is the latent itself (GoRL's stage 0, where the latent policy is plain PPO)."""

from __future__ import annotations

import torch as th

from sb3_expo.common.generative.base import GenerativePolicy


class IdentityDecoder(GenerativePolicy):
    """sample(obs, noise) = noise[0]: no parameters, nothing to learn."""

    def __init__(self, obs_dim: int, action_dim: int):
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim

    def sample(self, obs: th.Tensor, noise: th.Tensor | None = None) -> th.Tensor:
        if noise is None:
            noise = self.draw_noise(obs.shape[0], obs.device)
        return noise[0]

    def loss(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return actions.new_zeros(())
