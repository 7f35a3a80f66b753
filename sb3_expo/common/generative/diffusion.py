"""Diffusion policies: a noise schedule, a noise-prediction loss, and two samplers (DDPM ancestral, DDIM).

EXPO's base policy (the default) is the reference's DDPM: VP schedule with T = 10, IDQL's residual denoiser fed the
raw integer step index, loss summed over action dimensions, ancestral sampler with variance beta_t clipped to [-1, 1]
after every step (docs/expo-reference.md section 1.1). sampler="ddim" samples the same model deterministically
from x_T. GoRL's diffusion decoder (v2) uses the same class with a linear alpha-bar schedule, the "epsilon_delta"
output (a zero network is the identity map) and no clipping (docs/gorl-reference.md section 2.4).
"""

from __future__ import annotations

from typing import Literal

import torch as th
from torch import nn

from sb3_expo.common.generative.base import DenoisingPolicy
from sb3_expo.common.generative.networks import Denoiser


def vp_beta_schedule(n_steps: int, b_min: float = 0.1, b_max: float = 10.0) -> th.Tensor:
    """Variance-preserving betas: beta_i = 1 - exp(-b_min/T - (b_max - b_min)(2i - 1)/(2 T^2)), i = 1..T."""
    i = th.arange(1, n_steps + 1, dtype=th.float64)
    alphas = th.exp(-b_min / n_steps - 0.5 * (b_max - b_min) * (2 * i - 1) / n_steps**2)
    return (1.0 - alphas).float()


def noise_schedule(kind: str, n_steps: int) -> tuple[th.Tensor, th.Tensor]:
    """(alpha, alpha-bar) at step indices 0..T-1 (index 0 is the least noisy); the clean action has alpha-bar 1."""
    if kind == "vp":
        alphas = 1.0 - vp_beta_schedule(n_steps)
        return alphas, th.cumprod(alphas, dim=0)
    if kind == "linear_alpha_bar":  # GoRL v2: abar(t) = 1e-3 + 0.999 (1 - t) on t = 0.1, ..., 1
        t = th.arange(1, n_steps + 1, dtype=th.float64) / n_steps
        alpha_bars = (1e-3 + 0.999 * (1.0 - t)).float()
        return alpha_bars / th.cat([th.ones(1), alpha_bars[:-1]]), alpha_bars
    raise ValueError(f"unknown noise schedule {kind!r}: use 'vp' or 'linear_alpha_bar'.")


class DiffusionPolicy(DenoisingPolicy):
    """A diffusion model over actions: noise-prediction loss, DDPM (ancestral) or DDIM (deterministic) sampling.

    :param sampler: "ddpm" (stochastic; the reference) or "ddim" (eta = 0: a deterministic map from x_T)
    :param schedule: "vp" (EXPO) or "linear_alpha_bar" (GoRL v2)
    :param parameterization: "epsilon" (the net predicts the noise) or "epsilon_delta" (GoRL v2: the DDIM update is
        x + c_t * net, so a zero network leaves x unchanged)
    :param clip_sample: clip to [-1, 1] inside the chain (DDPM: x after every step; DDIM: the predicted x_0) and at the end
    :param loss_reduction: "sum" over action dimensions then mean over the batch (EXPO) or "mean" over everything (GoRL)
    :param net: the network (obs, x_t, time input) -> output; default IDQL's residual denoiser
    :param time_input: what the network receives as time at step index i: "index" (i, the reference) or
        "fraction" ((i + 1) / T, GoRL)
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_steps: int = 10,
        width: int = 256,
        n_blocks: int = 3,
        sampler: Literal["ddpm", "ddim"] = "ddpm",
        schedule: str = "vp",
        parameterization: Literal["epsilon", "epsilon_delta"] = "epsilon",
        clip_sample: bool = True,
        loss_reduction: Literal["sum", "mean"] = "sum",
        output_scale: float = 1.0,
        net: nn.Module | None = None,
        time_input: Literal["index", "fraction"] = "index",
    ):
        super().__init__()
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler={sampler!r}: use 'ddpm' or 'ddim'.")
        if parameterization == "epsilon_delta" and (sampler != "ddim" or clip_sample):
            raise ValueError("parameterization='epsilon_delta' is a DDIM parameterization without clipping.")
        if n_steps < 1:
            raise ValueError(f"n_steps={n_steps}: a diffusion policy needs at least one step.")
        self.obs_dim, self.action_dim, self.n_steps = obs_dim, action_dim, n_steps
        self.sampler, self.schedule, self.parameterization = sampler, schedule, parameterization
        self.clip_sample, self.loss_reduction, self.output_scale = clip_sample, loss_reduction, output_scale
        self.net = net if net is not None else Denoiser(obs_dim, action_dim, width, n_blocks)
        alphas, alpha_bars = noise_schedule(schedule, n_steps)
        previous = th.cat([th.ones(1), alpha_bars[:-1]])
        betas = 1.0 - alphas
        self.register_buffer("betas", betas)
        self.register_buffer("alphas", alphas)
        self.register_buffer("alpha_bars", alpha_bars)
        times = th.arange(n_steps, dtype=th.float32)
        self.register_buffer("times", times if time_input == "index" else (times + 1) / n_steps, persistent=False)
        # Sampler coefficients as Python floats: no tensor ops per step.
        # DDPM: x <- x_coef x - eps_coef eps + sigma z.
        self._x_coef = (1.0 / alphas.sqrt()).tolist()
        self._eps_coef = (betas / ((1.0 - alpha_bars).sqrt() * alphas.sqrt())).tolist()
        self._sigma = betas.sqrt().tolist()
        # DDIM from index t to t - 1: x0 = (x - sqrt(1 - abar_t) eps) / sqrt(abar_t), x = sqrt(abar_prev) x0 + ...
        self._abar = alpha_bars.double().tolist()
        self._abar_prev = previous.double().tolist()
        # epsilon_delta: x <- r x + c eps = x + c * delta with delta = eps - (1 - r) / c * x
        self._ddim_r = [(p / a) ** 0.5 for a, p in zip(self._abar, self._abar_prev)]
        self._ddim_c = [(1 - p) ** 0.5 - r * (1 - a) ** 0.5 for a, p, r in zip(self._abar, self._abar_prev, self._ddim_r)]

    def draw_noise(self, rows: int, device: th.device | str, generator: th.Generator | None = None) -> th.Tensor:
        """[T, rows, d] for DDPM (x_T, then the noise of each step), [1, rows, d] (x_T only) for DDIM."""
        steps = self.n_steps if self.sampler == "ddpm" else 1
        return th.randn(steps, rows, self.action_dim, device=device, generator=generator)

    def loss(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Noise-prediction loss at a uniformly drawn step index."""
        t = th.randint(0, self.n_steps, (actions.shape[0],), device=actions.device)
        noise = th.randn_like(actions)
        alpha_bar = self.alpha_bars[t].unsqueeze(-1)
        noisy = alpha_bar.sqrt() * actions + (1 - alpha_bar).sqrt() * noise
        target = noise
        if self.parameterization == "epsilon_delta":
            r = th.tensor(self._ddim_r, device=actions.device, dtype=actions.dtype)[t].unsqueeze(-1)
            c = th.tensor(self._ddim_c, device=actions.device, dtype=actions.dtype)[t].unsqueeze(-1)
            target = noise - (1 - r) / c * noisy
        error = (self.output_scale * self.net(obs, noisy, self.times[t]) - target).pow(2)
        return error.sum(-1).mean() if self.loss_reduction == "sum" else error.mean()

    def _sample(self, obs: th.Tensor, noise: th.Tensor, net: nn.Module) -> th.Tensor:
        predict = step_function(net, obs, self.times)
        x = noise[0]  # x_T; the chain itself stays float32 whatever the weights' dtype
        for t in range(self.n_steps - 1, -1, -1):
            eps = predict(t, x)
            if self.output_scale != 1.0:
                eps = eps * self.output_scale
            if self.sampler == "ddpm":
                x = th.add(x * self._x_coef[t], eps, alpha=-self._eps_coef[t])  # (x - beta/sqrt(1-abar) eps)/sqrt(alpha)
                if t > 0:
                    x.add_(noise[t], alpha=self._sigma[t])
                if self.clip_sample:
                    x.clamp_(-1.0, 1.0)
            elif self.parameterization == "epsilon_delta":
                x = th.add(x, eps, alpha=self._ddim_c[t])
            else:
                x0 = th.add(x, eps, alpha=-((1 - self._abar[t]) ** 0.5)).mul_(1.0 / self._abar[t] ** 0.5)
                if self.clip_sample:
                    x0.clamp_(-1.0, 1.0)
                x = x0 if t == 0 else th.add(x0 * self._abar_prev[t] ** 0.5, eps, alpha=(1 - self._abar_prev[t]) ** 0.5)
        return x.clamp_(-1.0, 1.0) if self.clip_sample else x


def step_function(net: nn.Module, obs: th.Tensor, times: th.Tensor):
    """f(i, x) = net(obs, x, times[i]), with what the network can precompute once per sampling call precomputed.

    For the residual denoiser, the observation is projected once and the time embedding of every step computed once.
    """
    if isinstance(net, Denoiser):
        w_action, obs_proj, w_cond = net.split_input(obs.to(net.input.weight.dtype))
        cond_proj = net.time_embedding(times) @ w_cond.T  # [T, width]: depends on the step only
        linears = net.block_linears()  # the host's kernel, weights packed once for the T steps where that is faster
        return lambda i, x: net.forward_projected(obs_proj, w_action, cond_proj[i], x.to(obs_proj.dtype), linears)
    dtype = next(net.parameters(), obs).dtype
    if dtype == obs.dtype:
        return lambda i, x: net(obs, x, times[i])

    def low_precision_step(i: int, x: th.Tensor) -> th.Tensor:
        # Any other network with low-precision weights (e.g. GoRL's TimeMLP as an EXPO base): its inputs may meet
        # float32 tensors inside it (time features, buffers), so it runs under autocast; the chain stays float32.
        with th.autocast(obs.device.type, dtype=dtype):
            return net(obs.to(dtype), x.to(dtype), times[i]).to(x.dtype)

    return low_precision_step
