"""Networks of the generative policies: EXPO's residual denoiser (IDQL) and GoRL's small time-conditioned MLP.

Both map (observation, x_t, t) to a vector of the action's size: the noise (DDPM/DDIM) or the velocity (flow).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_expo.common import kernels

LAYER_NORM_EPS = 1e-6  # flax default, used by the EXPO reference


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


def lecun_uniform_(layer: nn.Linear) -> nn.Linear:
    """jax's lecun_uniform (GoRL's MLP init): U(-sqrt(3/fan_in), sqrt(3/fan_in)), zero bias."""
    bound = math.sqrt(3.0 / layer.in_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


def full_precision_linear(layer: nn.Linear, x: th.Tensor) -> th.Tensor:
    """layer(x) in float32 even under bf16 autocast: the output layers whose values a loss or a sampler uses directly
    (a Q value of 100 has a resolution of 0.5 in bf16). Cheap: these layers have a handful of outputs."""
    with th.autocast(x.device.type, enabled=False):
        return F.linear(x.float(), layer.weight.float(), None if layer.bias is None else layer.bias.float())


class FourierFeatures(nn.Module):
    """Learnable Fourier features of the time input: [cos(2 pi t W), sin(2 pi t W)], W ~ N(0, 0.2^2).

    The DDPM feeds the raw integer step index (reference); the flow feeds 10 t for t in [0, 1], the same range.
    """

    def __init__(self, out_dim: int = 128, std: float = 0.2):
        super().__init__()
        self.kernel = nn.Parameter(th.randn(out_dim // 2, 1) * std)

    def forward(self, t: th.Tensor) -> th.Tensor:
        # an outer product written element-wise: autocast would run a matmul in bf16, and with t up to T - 1 the
        # phases reach about 30 rad, where bf16 rounding moves them by 0.1 rad. Kept in float32 (see low_precision_net).
        f = 2 * math.pi * t.reshape(-1, 1).to(self.kernel.dtype) * self.kernel.reshape(1, -1)
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
    """The reference's network eps(s, a_t, t) (about 1.7 M parameters at width 256); also the flow's velocity net."""

    def __init__(self, obs_dim: int, action_dim: int, width: int = 256, n_blocks: int = 3, time_dim: int = 128):
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.time_features = FourierFeatures(time_dim)
        self.cond = nn.Sequential(xavier_(nn.Linear(time_dim, width)), nn.SiLU(), xavier_(nn.Linear(width, width)))
        self.input = xavier_(nn.Linear(action_dim + obs_dim + width, width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)])
        self.output = xavier_(nn.Linear(width, action_dim))

    def time_embedding(self, t: th.Tensor) -> th.Tensor:
        return self.cond(self.time_features(t).to(self.cond[0].weight.dtype))

    def forward(self, obs: th.Tensor, noisy_action: th.Tensor, t: th.Tensor) -> th.Tensor:
        """The reference network, concat[a_t, s, cond(t)] -> eps; t holds one time value per row."""
        h = self.input(th.cat([noisy_action, obs, self.time_embedding(t)], dim=-1))
        return full_precision_linear(self.output, F.silu(self.blocks(h)))

    def split_input(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """The input layer split by its three parts, so the sampler projects s once and cond(t) once per step."""
        cond_dim = self.input.in_features - self.action_dim - self.obs_dim
        w_action, w_obs, w_cond = self.input.weight.split([self.action_dim, self.obs_dim, cond_dim], dim=1)
        return w_action, F.linear(obs, w_obs, self.input.bias), w_cond

    def block_linears(self) -> list[tuple[Callable, Callable]]:
        """The residual blocks' two linears as x -> fc(x) on this host's fastest kernel (common/kernels.py): taken once
        per sampling call, they serve its T steps."""
        return [(kernels.linear(block.fc1), kernels.linear(block.fc2)) for block in self.blocks]

    def forward_projected(
        self,
        obs_proj: th.Tensor,
        w_action: th.Tensor,
        cond_proj: th.Tensor,
        x: th.Tensor,
        linears: list[tuple[Callable, Callable]] | None = None,
    ) -> th.Tensor:
        """Same value as forward(), given the input layer's observation and time parts already computed.

        Written without module calls and with in-place activations: the sampler runs it T times per action, and
        for one observation (N rows) the per-call overhead is a large part of the acting latency. `linears`: the
        blocks' linears from block_linears() (default: taken here).
        """
        h = th.addmm(obs_proj + cond_proj, x, w_action.T)
        for block, (fc1, fc2) in zip(self.blocks, linears or self.block_linears()):
            y = F.layer_norm(h, h.shape[-1:], block.norm.weight, block.norm.bias, LAYER_NORM_EPS)
            h = fc2(F.silu(fc1(y), inplace=True)).add_(h)
        return F.linear(F.silu(h, inplace=True), self.output.weight, self.output.bias)


class TimeMLP(nn.Module):
    """GoRL's decoder network: SiLU MLP over concat[s, x_t, emb(t)], emb = [cos 2^k t, sin 2^k t], k < 4.

    t is continuous in [0, 1]. zero_final=True (GoRL v2) makes a fresh decoder output exactly 0.
    """

    def __init__(
        self, obs_dim: int, action_dim: int, width: int = 64, n_layers: int = 4, zero_final: bool = True, n_freqs: int = 4
    ):
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.register_buffer("freqs", 2.0 ** th.arange(n_freqs, dtype=th.float32), persistent=False)
        dims = [obs_dim + action_dim + 2 * n_freqs] + [width] * n_layers
        self.hidden = nn.ModuleList(lecun_uniform_(nn.Linear(i, o)) for i, o in itertools.pairwise(dims))
        self.output = lecun_uniform_(nn.Linear(dims[-1], action_dim))
        if zero_final:
            nn.init.zeros_(self.output.weight)

    def forward(self, obs: th.Tensor, x: th.Tensor, t: th.Tensor) -> th.Tensor:
        f = t.reshape(-1, 1).to(x.dtype) * self.freqs
        h = th.cat([obs, x, th.cos(f).expand(len(x), -1), th.sin(f).expand(len(x), -1)], dim=-1)
        for layer in self.hidden:
            h = F.silu(layer(h))
        return self.output(h)
