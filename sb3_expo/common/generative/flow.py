"""Flow-matching policy (rectified flow): a velocity field from noise to actions, integrated with Euler steps.

Time runs from t = 1 (noise) to t = 0 (action), as in GoRL: x_t = t eps + (1 - t) a, velocity target eps - a,
and the sampler takes `n_steps` Euler steps from x_1 = noise, evaluating the velocity at t = 1, 1 - 1/S, ..., 1/S.
The sampler is a deterministic map from its start, so the candidates' diversity comes from the N noise draws; any
number of steps from 1 works (one step gives the conditional mean of the actions at the start point).
"""

from __future__ import annotations

from typing import Literal

import torch as th
from torch import nn

from sb3_expo.common.generative.base import DenoisingPolicy
from sb3_expo.common.generative.diffusion import step_function
from sb3_expo.common.generative.networks import Denoiser


class FlowPolicy(DenoisingPolicy):
    """Rectified-flow policy.

    :param n_steps: Euler steps of the sampler (>= 1); training draws t ~ U(0, 1), so one model serves any count
    :param clip_output: clip the final sample to [-1, 1] (EXPO's action scale); GoRL's decoders do not clip
    :param loss_reduction: "sum" over action dimensions then mean (EXPO, like its DDPM loss) or "mean" (GoRL)
    :param time_scale: the network's time input is time_scale * t (10 for the residual denoiser, whose Fourier
        features then see the same range as the DDPM's integer step index; 1 for GoRL's MLP)
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_steps: int = 10,
        width: int = 256,
        n_blocks: int = 3,
        clip_output: bool = True,
        loss_reduction: Literal["sum", "mean"] = "sum",
        output_scale: float = 1.0,
        net: nn.Module | None = None,
        time_scale: float = 10.0,
    ):
        super().__init__()
        if n_steps < 1:
            raise ValueError(f"n_steps={n_steps}: the flow sampler needs at least one Euler step.")
        self.obs_dim, self.action_dim, self.n_steps = obs_dim, action_dim, n_steps
        self.clip_output, self.loss_reduction = clip_output, loss_reduction
        self.output_scale, self.time_scale = output_scale, time_scale
        self.net = net if net is not None else Denoiser(obs_dim, action_dim, width, n_blocks)
        # the velocity is evaluated at t = 1, 1 - 1/S, ..., 1/S (index i of the sampler counts down from S - 1)
        t = th.arange(1, n_steps + 1, dtype=th.float32) / n_steps
        self.register_buffer("times", t * time_scale, persistent=False)

    def loss(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Conditional flow matching: regress the velocity eps - a at a uniformly drawn t."""
        t = th.rand(actions.shape[0], 1, device=actions.device, dtype=actions.dtype)
        noise = th.randn_like(actions)
        x_t = t * noise + (1 - t) * actions
        error = (self.output_scale * self.net(obs, x_t, self.time_scale * t.squeeze(-1)) - (noise - actions)).pow(2)
        return error.sum(-1).mean() if self.loss_reduction == "sum" else error.mean()

    def _sample(self, obs: th.Tensor, noise: th.Tensor, net: nn.Module) -> th.Tensor:
        velocity = step_function(net, obs, self.times)
        dt = 1.0 / self.n_steps
        x = noise[0]
        for i in range(self.n_steps - 1, -1, -1):  # t = (i + 1) / S, from 1 down to 1/S
            x = th.add(x, velocity(i, x), alpha=-dt * self.output_scale)
        return x.clamp_(-1.0, 1.0) if self.clip_output else x
