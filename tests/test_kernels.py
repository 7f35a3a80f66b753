"""The sampler's GEMM kernel is chosen per host (common/kernels.py): oneDNN with packed weights computes what F.linear
computes, repacks when the weights move, and keeps SB3's contract (same deterministic action, across save/load)."""

import json

import numpy as np
import pytest
import torch as th

from sb3_expo import EXPO
from sb3_expo.common import kernels
from sb3_expo.common.generative.diffusion import DiffusionPolicy

from .conftest import SMALL


def _sample(policy: DiffusionPolicy, obs: th.Tensor, noise: th.Tensor) -> th.Tensor:
    with th.no_grad():
        return policy.sample(obs, noise)


def test_onednn_sampler_matches_the_default_kernel_and_repacks_when_weights_move(monkeypatch):
    th.manual_seed(0)
    policy = DiffusionPolicy(obs_dim=5, action_dim=3, width=64, n_blocks=2).requires_grad_(False)
    obs, noise = th.randn(300, 5), policy.draw_noise(300, "cpu", th.Generator().manual_seed(1))
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "aten")
    default = _sample(policy, obs, noise)
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "onednn")
    packed = _sample(policy, obs, noise)
    th.testing.assert_close(packed, default, atol=1e-4, rtol=0)  # kernels round differently, nothing more
    assert th.equal(_sample(policy, obs, noise), packed)  # the cached packed copy: identical from call to call

    with th.no_grad():
        for block in policy.net.blocks:  # an optimiser / EMA step: in place, the version counter moves
            block.fc1.weight.mul_(1.5)
    moved = _sample(policy, obs, noise)
    assert (moved - packed).abs().max() > 1e-2  # the new weights are used, not a stale packed copy
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "aten")
    th.testing.assert_close(moved, _sample(policy, obs, noise), atol=1e-4, rtol=0)


def test_deterministic_actions_stay_identical_on_onednn_and_survive_save_and_load(monkeypatch, tmp_path):
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "onednn")
    model = EXPO("MlpPolicy", "Pendulum-v1", seed=0, **SMALL).learn(40)
    obs = np.array([0.3, -0.9, 0.5], np.float32)
    first, _ = model.predict(obs, deterministic=True)
    second, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(first, second)
    model.save(tmp_path / "expo")
    loaded, _ = EXPO.load(tmp_path / "expo").predict(obs, deterministic=True)
    np.testing.assert_array_equal(loaded, first)


def test_the_probe_verdict_is_cached_per_host(monkeypatch, tmp_path):
    monkeypatch.delenv("SB3_EXPO_CPU_GEMM", raising=False)
    monkeypatch.setenv("SB3_EXPO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_CHOICE", {})
    choice = kernels.cpu_kernel(th.float32)
    entries = json.loads((tmp_path / "gemm.json").read_text())
    (entry,) = entries.values()
    assert next(iter(entries)).startswith(kernels.host_key()) and entry["kernel"] == choice
    assert entry["gflops"]["aten"] > 0 and choice in kernels.KERNELS

    def no_probe(*args, **kwargs):
        raise AssertionError("probed again")

    monkeypatch.setattr(kernels, "gemm_rates", no_probe)
    monkeypatch.setattr(kernels, "_CHOICE", {})  # a new process on the same host reads the file
    assert kernels.cpu_kernel(th.float32) == choice


def test_a_forced_kernel_is_checked_and_never_one_the_cpu_lacks(monkeypatch):
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "mkl")
    with pytest.raises(ValueError, match="SB3_EXPO_CPU_GEMM"):
        kernels.cpu_kernel(th.float32)
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "onednn")
    expected = kernels.ONEDNN if kernels.onednn_runs(th.bfloat16) else kernels.ATEN
    assert kernels.cpu_kernel(th.bfloat16) == expected


def test_training_a_denoiser_never_takes_the_packed_path(monkeypatch):
    """Weights that train in the call are not packed: the imitation loss gets gradients through F.linear."""
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "onednn")
    policy = DiffusionPolicy(obs_dim=2, action_dim=2, width=16, n_blocks=1)
    obs = th.randn(8, 2)
    noise = policy.draw_noise(8, "cpu")
    x = policy.sample(obs, noise)
    x.sum().backward()
    assert policy.net.blocks[0].fc1.weight.grad is not None
