"""The interface of a generative policy (EXPO's base policy, GoRL's decoder) and the checks a user's own one gets.

A generative policy turns noise into actions, conditioned on the observation, and learns by imitation:

- ``action_dim``: the (flat) action size; ``obs_dim``: the observation (features) size, checked against the env;
- ``draw_noise(rows, device, generator=None)``: the noise ``sample`` consumes for ``rows`` actions (default: one
  [1, rows, action_dim] standard normal draw); the same generator state gives the same noise;
- ``sample(obs, noise=None)``: [rows, action_dim] actions in [-1, 1], a deterministic function of (obs, noise);
- ``loss(obs, actions)``: a scalar imitation loss on a batch (actions in EXPO's [-1, 1] scale);
- optionally ``ema_copy()``: the module EXPO acts with at first (e.g. the EMA weights a pretrained policy shipped
  with); EXPO keeps it as the exponential moving average of the trained one from then on. Default: a copy.

Subclass GenerativePolicy (it supplies draw_noise) or provide the same methods on any nn.Module.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch as th
from torch import nn

from sb3_expo.common import compiled
from sb3_expo.common.generative.networks import FourierFeatures


class GenerativePolicy(nn.Module):
    """Base class of the generative policies; see the module docstring for the contract."""

    obs_dim: int
    action_dim: int
    compile_mode: str | None = None  # torch.compile mode of the sampling chain (common/compiled.py); None: eager

    def draw_noise(self, rows: int, device: th.device | str, generator: th.Generator | None = None) -> th.Tensor:
        return th.randn(1, rows, self.action_dim, device=device, generator=generator)

    def sample(self, obs: th.Tensor, noise: th.Tensor | None = None) -> th.Tensor:
        raise NotImplementedError

    def loss(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        raise NotImplementedError

    def ema_copy(self) -> nn.Module:
        return copy.deepcopy(self)


class DenoisingPolicy(GenerativePolicy):
    """A generative policy whose sampler runs one network (`net`) over a chain of steps: DDPM, DDIM, flow.

    `sample` splits rows into cache-sized chunks on CPU and routes the chain through torch.compile when asked;
    `net=` samples with other weights of the same network (the bfloat16 copy of EXPO's backup).
    """

    net: nn.Module
    n_steps: int
    # Rows per sampler chunk on CPU, so the [rows, 4 * width] intermediates stay in cache. Measured on the 2-core CI
    # CPU (benchmarks/throughput.py, 40,960 rows): fp32 50% of the matmul peak unchunked, 90% in chunks of 1024. The
    # bf16 copy uses the same size (every bf16 figure in docs/guide/performance.md was measured so). GPUs are not chunked.
    CPU_CHUNK_ROWS = 1024

    def sample(self, obs: th.Tensor, noise: th.Tensor | None = None, net: nn.Module | None = None) -> th.Tensor:
        n, net = obs.shape[0], net or self.net
        if noise is None:
            noise = self.draw_noise(n, obs.device)
        chunk = self.CPU_CHUNK_ROWS if obs.device.type == "cpu" else n
        fn = type(self)._sample
        if n > chunk:
            return th.cat(
                [compiled.run(self, fn, obs[i : i + chunk], noise[:, i : i + chunk], net) for i in range(0, n, chunk)]
            )
        return compiled.run(self, fn, obs, noise, net)

    def _sample(self, obs: th.Tensor, noise: th.Tensor, net: nn.Module) -> th.Tensor:
        raise NotImplementedError

    def low_precision_net(self, dtype: th.dtype = th.bfloat16) -> nn.Module:
        """A copy of the network in `dtype`, for sampling many rows fast (one cast, reused for all of them).

        Learnable Fourier time features stay float32: their phases reach tens of radians, beyond bf16's resolution.
        """
        net = copy.deepcopy(self.net).requires_grad_(False)
        for module in net.modules():
            if not isinstance(module, FourierFeatures):
                for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
                    if tensor.is_floating_point():
                        tensor.data = tensor.data.to(dtype)
        return net


def check_generative_policy(policy: nn.Module, obs_dim: int, action_dim: int, role: str = "base policy") -> None:
    """Raise a ValueError that says what to fix if `policy` cannot serve as a base policy for these sizes."""
    name = type(policy).__name__
    for method, what in (
        ("loss", "an imitation loss: loss(obs, actions) -> scalar tensor (EXPO trains its base policy by imitation only)"),
        ("sample", "a sampler: sample(obs, noise) -> [rows, action_dim] actions in [-1, 1]"),
        (
            "draw_noise",
            "draw_noise(rows, device, generator=None) -> the noise sample() consumes (or subclass "
            "sb3_expo.common.generative.GenerativePolicy, which provides it)",
        ),
    ):
        if not callable(getattr(policy, method, None)):
            raise ValueError(f"the {role} {name} has no {method}(): it needs {what}.")
    for attr, expected, what in (("obs_dim", obs_dim, "observation"), ("action_dim", action_dim, "action")):
        got = getattr(policy, attr, None)
        if got is not None and int(got) != expected:
            raise ValueError(
                f"the {role} {name} was built for {what}s of size {got}, but this env's {what}s have size {expected}: "
                f"it was trained for another env (or other observation keys / wrappers)."
            )
    device = next(iter(policy.parameters()), th.empty(0)).device
    obs = th.zeros(3, obs_dim, device=device)
    was_training = policy.training
    policy.eval()
    try:
        with th.no_grad():
            noise = policy.draw_noise(3, device, th.Generator(device).manual_seed(0))
            actions = policy.sample(obs, noise)
    except RuntimeError as error:
        raise ValueError(
            f"the {role} {name} could not sample for observations of size {obs_dim} (this env's): {error}"
        ) from error
    finally:
        policy.train(was_training)
    check_samples(actions, len(obs), action_dim, f"the {role} {name}")
    # EXPO's deterministic actions draw the base noise from a generator seeded by the observation
    same = [policy.draw_noise(3, device, th.Generator(device).manual_seed(0)) for _ in range(2)]
    if not th.equal(*same):
        raise ValueError(
            f"the {role} {name}'s draw_noise(rows, device, generator) gave different noise for two generators in the "
            "same state: it must draw from `generator` (th.randn(..., generator=generator)), or deterministic actions "
            "would not be a fixed function of the observation."
        )


def check_samples(actions: th.Tensor, rows: int, action_dim: int, who: str) -> None:
    """Samples must be [rows, action_dim], finite and inside [-1, 1] (EXPO's action scale)."""
    if tuple(actions.shape) != (rows, action_dim):
        raise ValueError(
            f"{who} returned actions of shape {tuple(actions.shape)} for {rows} rows; expected ({rows}, {action_dim})."
        )
    if not bool(th.isfinite(actions).all()):
        raise ValueError(f"{who} returned non-finite actions (nan or inf).")
    worst = float(actions.abs().max()) if actions.numel() else 0.0
    if worst > 1.0 + 1e-5:
        raise ValueError(
            f"{who} returned an action of magnitude {worst:.4g}, outside [-1, 1]: base policies work in the scaled "
            "action space [-1, 1] (clip or tanh their output)."
        )


def load_generative_policy(path: str | Path) -> nn.Module:
    """A policy saved whole with torch.save(policy, path) (its class must be importable where it is loaded)."""
    if not Path(path).is_file():
        raise ValueError(
            f"base={str(path)!r} is neither a built-in base ('ddpm', 'ddim', 'flow') nor an existing file of a policy "
            "saved with torch.save(policy, path)."
        )
    policy = th.load(path, map_location="cpu", weights_only=False)  # a whole module, saved by the user
    if not isinstance(policy, nn.Module):
        raise ValueError(f"{path} holds a {type(policy).__name__}, not a policy module saved with torch.save(policy, path).")
    return policy
