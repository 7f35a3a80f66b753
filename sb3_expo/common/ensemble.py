"""Critic ensemble stored as one set of batched weights ([E, in, out] per layer), REDQ-style subsampling."""

from __future__ import annotations

import itertools
import math

import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_expo.common import compiled
from sb3_expo.common.generative.networks import LAYER_NORM_EPS


class BatchedLinear(nn.Module):
    """E independent linear layers applied in one batched matmul; each member gets its own xavier init."""

    def __init__(self, n_members: int, in_features: int, out_features: int):
        super().__init__()
        weight = th.empty(n_members, out_features, in_features)
        for w in weight:
            nn.init.xavier_uniform_(w)
        self.weight = nn.Parameter(weight.transpose(1, 2).contiguous())  # [E, in, out]
        self.bias = nn.Parameter(th.zeros(n_members, 1, out_features))

    def forward(self, x: th.Tensor, members: th.Tensor | None = None) -> th.Tensor:
        """x: [B, in] (shared by all members) or [E', B, in]; returns [E', B, out]."""
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        if x.dim() == 2:  # one GEMM for all members: [B, in] @ [in, E*out]
            n_members, in_features, out_features = weight.shape
            flat = x @ weight.permute(1, 0, 2).reshape(in_features, n_members * out_features)
            return flat.view(-1, n_members, out_features).transpose(0, 1) + bias
        return th.baddbmm(bias, x, weight)


class BatchedLayerNorm(nn.Module):
    """LayerNorm with a separate learnable scale and shift per ensemble member."""

    def __init__(self, n_members: int, features: int):
        super().__init__()
        self.weight = nn.Parameter(th.ones(n_members, 1, features))
        self.bias = nn.Parameter(th.zeros(n_members, 1, features))

    def forward(self, x: th.Tensor, members: th.Tensor | None = None) -> th.Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return th.addcmul(bias, F.layer_norm(x, x.shape[-1:], eps=LAYER_NORM_EPS), weight)  # one pass for scale and shift


def default_num_min_qs(num_min_qs: int | None, n_critics: int) -> int:
    """The size of the random target-critic subset whose min is taken: as given, else 2 (EXPO's and RLPD's), or
    n_critics when there are fewer."""
    return min(2, n_critics) if num_min_qs is None else num_min_qs


class CriticEnsemble(nn.Module):
    """Q_i(s, a), i = 1..E: Dense -> LayerNorm -> ReLU per hidden layer, then Dense(1) (reference section 1.4)."""

    def __init__(self, input_dim: int, net_arch: list[int], n_critics: int = 10, layer_norm: bool = True):
        super().__init__()
        self.n_critics = n_critics
        dims = [input_dim, *net_arch]
        self.hidden = nn.ModuleList(BatchedLinear(n_critics, i, o) for i, o in itertools.pairwise(dims))
        self.norms = nn.ModuleList(BatchedLayerNorm(n_critics, o) if layer_norm else nn.Identity() for o in net_arch)
        self.out = BatchedLinear(n_critics, dims[-1], 1)
        self.compile_mode: str | None = None  # torch.compile mode of forward (common/compiled.py), None: eager

    def forward(self, features: th.Tensor, actions: th.Tensor, members: th.Tensor | None = None) -> th.Tensor:
        """Q values of shape [E', B] (E' = len(members), or all members)."""
        return compiled.run(self, CriticEnsemble._forward, features, actions, members)

    def _forward(self, features: th.Tensor, actions: th.Tensor, members: th.Tensor | None) -> th.Tensor:
        h = th.cat([features, actions], dim=-1)
        for linear, norm in zip(self.hidden, self.norms):
            h = linear(h, members)
            h = F.relu(norm(h, members) if isinstance(norm, BatchedLayerNorm) else h, inplace=True)
        with th.autocast(h.device.type, enabled=False):  # Q values in float32 under bf16 autocast: selection, targets, loss
            return self.out(h.float(), members).squeeze(-1)

    def random_subset(self, size: int) -> th.Tensor:
        """Indices of `size` distinct members, drawn afresh on every call (one subset for the whole batch)."""
        return th.randperm(self.n_critics, device=self.out.weight.device)[:size]

    def subset_min(self, features: th.Tensor, actions: th.Tensor, size: int) -> th.Tensor:
        """min over a fresh random subset of `size` members: the value the reference uses to select and bootstrap."""
        return self(features, actions, self.random_subset(size)).min(dim=0).values

    def expected_subset_min(self, features: th.Tensor, actions: th.Tensor, size: int) -> th.Tensor:
        """The expectation of subset_min over all subsets of `size` members, computed exactly (deterministic acting).

        Sorted ascending, the i-th smallest of E values is the min of a random m-subset with probability
        C(E - 1 - i, m - 1) / C(E, m): the mean of all members for m = 1, their min for m = E.
        """
        q = self(features, actions).sort(dim=0).values
        e = self.n_critics
        weights = [math.comb(e - 1 - i, size - 1) / math.comb(e, size) for i in range(e)]
        return (q * q.new_tensor(weights).unsqueeze(-1)).sum(dim=0)
