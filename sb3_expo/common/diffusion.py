"""The expressive base policy: a DDPM (VP schedule) with IDQL's residual MLP denoiser.

Everything here follows the EXPO reference (docs/expo-reference.md section 1.1): raw integer time index
into learnable Fourier features, a time-only conditioning MLP, input order [a_t, s, cond], pre-LayerNorm
residual blocks with 4x expansion and swish, per-step clipping in the sampler, variance beta_t.
"""

from __future__ import annotations

import copy
import math

import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_expo.common import compiled

LAYER_NORM_EPS = 1e-6  # flax default, used by the reference
# Rows per sampler chunk on CPU, so the [rows, 1024] intermediates stay in cache. Measured on the 2-core CI CPU
# (benchmarks/throughput.py, 40,960 rows): fp32 50% of the matmul peak unchunked, 90% in chunks of 1024; bf16
# 2.8x faster in chunks of 8192 than unchunked. GPUs are not chunked.
CPU_CHUNK_ROWS = {th.float32: 1024, th.bfloat16: 8192}


def vp_beta_schedule(n_steps: int, b_min: float = 0.1, b_max: float = 10.0) -> th.Tensor:
    """Variance-preserving betas: beta_i = 1 - exp(-b_min/T - (b_max - b_min)(2i - 1)/(2 T^2)), i = 1..T."""
    i = th.arange(1, n_steps + 1, dtype=th.float64)
    alphas = th.exp(-b_min / n_steps - 0.5 * (b_max - b_min) * (2 * i - 1) / n_steps**2)
    return (1.0 - alphas).float()


def xavier_(layer: nn.Linear) -> nn.Linear:
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def lecun_normal_(layer: nn.Linear) -> nn.Linear:
    """flax's default Dense init: truncated normal with variance 1/fan_in."""
    std = math.sqrt(1.0 / layer.in_features) / 0.87962566103423978  # flax's truncation correction
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(layer.bias)
    return layer


class FourierFeatures(nn.Module):
    """Learnable Fourier features of the raw step index: [cos(2 pi t W), sin(2 pi t W)], W ~ N(0, 0.2^2)."""

    def __init__(self, out_dim: int = 128, std: float = 0.2):
        super().__init__()
        self.kernel = nn.Parameter(th.randn(out_dim // 2, 1) * std)

    def forward(self, t: th.Tensor) -> th.Tensor:
        f = 2 * math.pi * t.reshape(-1, 1).to(self.kernel.dtype) @ self.kernel.T
        return th.cat([th.cos(f), th.sin(f)], dim=-1)


class ResidualBlock(nn.Module):
    """Pre-LN block: x + Dense(swish(Dense_4w(LN(x))))."""

    def __init__(self, width: int, expansion: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.fc1 = lecun_normal_(nn.Linear(width, expansion * width))
        self.fc2 = lecun_normal_(nn.Linear(expansion * width, width))

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.fc2(F.silu(self.fc1(self.norm(x))))


class Denoiser(nn.Module):
    """epsilon-prediction network eps(s, a_t, t) of the reference (about 1.7 M parameters at width 256)."""

    def __init__(self, obs_dim: int, action_dim: int, width: int = 256, n_blocks: int = 3, time_dim: int = 128):
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.time_features = FourierFeatures(time_dim)
        self.cond = nn.Sequential(xavier_(nn.Linear(time_dim, width)), nn.SiLU(), xavier_(nn.Linear(width, width)))
        self.input = xavier_(nn.Linear(action_dim + obs_dim + width, width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)])
        self.output = xavier_(nn.Linear(width, action_dim))

    def time_embedding(self, t: th.Tensor) -> th.Tensor:
        return self.cond(self.time_features(t))

    def forward(self, obs: th.Tensor, noisy_action: th.Tensor, t: th.Tensor) -> th.Tensor:
        """The reference network, concat[a_t, s, cond(t)] -> eps; t holds one step index per row."""
        h = self.input(th.cat([noisy_action, obs, self.time_embedding(t)], dim=-1))
        return self.output(F.silu(self.blocks(h)))

    def split_input(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """The input layer split by its three parts, so the sampler projects s once and cond(t) once per step."""
        cond_dim = self.input.in_features - self.action_dim - self.obs_dim
        w_action, w_obs, w_cond = self.input.weight.split([self.action_dim, self.obs_dim, cond_dim], dim=1)
        return w_action, F.linear(obs, w_obs, self.input.bias), w_cond

    def forward_projected(self, obs_proj: th.Tensor, w_action: th.Tensor, cond_proj: th.Tensor, x: th.Tensor) -> th.Tensor:
        """Same value as forward(), given the input layer's observation and time parts already computed.

        Written without module calls and with in-place activations: the sampler runs it T times per action, and
        for one observation (N rows) the per-call overhead is a large part of the acting latency.
        """
        h = th.addmm(obs_proj + cond_proj, x, w_action.T)
        for block in self.blocks:
            y = F.layer_norm(h, h.shape[-1:], block.norm.weight, block.norm.bias, LAYER_NORM_EPS)
            y = F.silu(F.linear(y, block.fc1.weight, block.fc1.bias), inplace=True)
            h = F.linear(y, block.fc2.weight, block.fc2.bias).add_(h)
        return F.linear(F.silu(h, inplace=True), self.output.weight, self.output.bias)


class DiffusionPolicy(nn.Module):
    """DDPM over actions in [-1, 1]^d: imitation loss and the clipped ancestral sampler of the reference."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        n_steps: int = 10,
        width: int = 256,
        n_blocks: int = 3,
        time_dim: int = 128,
        clip_sampler: bool = True,
    ):
        super().__init__()
        self.action_dim, self.n_steps, self.clip_sampler = action_dim, n_steps, clip_sampler
        self.net = Denoiser(obs_dim, action_dim, width, n_blocks, time_dim)
        betas = vp_beta_schedule(n_steps)
        alphas = 1.0 - betas
        alpha_bars = th.cumprod(alphas, dim=0)
        self.register_buffer("betas", betas)
        self.register_buffer("alphas", alphas)
        self.register_buffer("alpha_bars", alpha_bars)
        # Sampler coefficients as Python floats (x <- x_coef * x - eps_coef * eps + sigma * z): no tensor ops per step.
        self._x_coef = (1.0 / alphas.sqrt()).tolist()
        self._eps_coef = (betas / ((1.0 - alpha_bars).sqrt() * alphas.sqrt())).tolist()
        self._sigma = betas.sqrt().tolist()
        # torch.compile mode of the denoising chain (common/compiled.py); the noise is an input drawn outside, so the
        # compiled chain consumes the same random numbers as the eager one
        self.compile_mode: str | None = None

    def loss(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Noise-prediction loss, summed over action dimensions and averaged over the batch."""
        t = th.randint(0, self.n_steps, (actions.shape[0],), device=actions.device)
        noise = th.randn_like(actions)
        alpha_bar = self.alpha_bars[t].unsqueeze(-1)
        noisy = alpha_bar.sqrt() * actions + (1 - alpha_bar).sqrt() * noise
        return (self.net(obs, noisy, t) - noise).pow(2).sum(-1).mean()

    def sample(self, obs: th.Tensor, noise: th.Tensor | None = None, net: Denoiser | None = None) -> th.Tensor:
        """One action per row of obs, by the reference's DDPM sampler (clipped to [-1, 1] after every step).

        noise: [T, rows, d] standard normals (noise[0] is x_T, noise[t] the step-t noise); drawn here if None.
        net: the denoiser weights to use (default self.net), e.g. a bfloat16 copy from low_precision_net().
        """
        n, net = obs.shape[0], net or self.net
        if noise is None:
            noise = self.draw_noise(n, obs.device)
        chunk = CPU_CHUNK_ROWS.get(net.input.weight.dtype, 1024) if obs.device.type == "cpu" else n
        if n > chunk:
            chunks = [
                compiled.run(self, DiffusionPolicy._sample, obs[i : i + chunk], noise[:, i : i + chunk], net)
                for i in range(0, n, chunk)
            ]
            return th.cat(chunks)
        return compiled.run(self, DiffusionPolicy._sample, obs, noise, net)

    def low_precision_net(self, dtype: th.dtype = th.bfloat16) -> Denoiser:
        """A copy of the denoiser in `dtype`, for sampling many rows fast (one cast, reused for all of them)."""
        return copy.deepcopy(self.net).to(dtype).requires_grad_(False)

    def _sample(self, obs: th.Tensor, noise: th.Tensor, net: Denoiser) -> th.Tensor:
        w_action, obs_proj, w_cond = net.split_input(obs.to(net.input.weight.dtype))
        steps = th.arange(self.n_steps, device=obs.device)
        cond_proj = net.time_embedding(steps) @ w_cond.T  # [T, width]: depends on the step only
        x = noise[0]  # the chain itself stays float32 whatever the weights' dtype
        for t in range(self.n_steps - 1, -1, -1):
            eps = net.forward_projected(obs_proj, w_action, cond_proj[t], x.to(obs_proj.dtype))
            x = th.add(x * self._x_coef[t], eps, alpha=-self._eps_coef[t])  # (x - beta/sqrt(1-abar) eps)/sqrt(alpha)
            if t > 0:
                x.add_(noise[t], alpha=self._sigma[t])
            if self.clip_sampler:
                x.clamp_(-1.0, 1.0)
        return x.clamp_(-1.0, 1.0)

    def draw_noise(self, rows: int, device: th.device | str) -> th.Tensor:
        return th.randn(self.n_steps, rows, self.action_dim, device=device)
