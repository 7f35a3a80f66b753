"""Which CPU GEMM kernel runs the sampler's linear layers on this host (issue #27).

Torch's default fp32 linear on x86 CPUs is MKL's GEMM. oneDNN, inside the same torch wheel, runs the same product
with weights packed once into its blocked layout; on some CPUs (AMD EPYC with AVX512) it is about twice as fast, on
others no faster, and oneDNN has no bf16 kernel on CPUs without AVX512-BF16. So the choice is measured, not assumed:
the first sampling call per (dtype, threads) times both kernels at the denoiser's shapes, keeps oneDNN only if it
wins by a margin, and caches the verdict per host in ~/.cache/sb3_expo/gemm.json (SB3_EXPO_CACHE_DIR moves it).
SB3_EXPO_CPU_GEMM=aten|onednn forces a kernel (aten: torch's default path).

Only no-grad calls with weights that do not train in the call are routed (EXPO's backup chain, acting):
packing pays off because the same weights serve T steps over many rows. Packed weights are cached per parameter and
repacked when the parameter's version counter moves (an optimiser or EMA step, a load), so every call with the same
weights uses the same kernel and the same packed copy: deterministic actions stay identical from call to call.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch as th
from torch import nn
from torch.nn import functional as F
from torch.utils.weak import WeakIdKeyDictionary

ATEN, ONEDNN = "aten", "onednn"
KERNELS = (ATEN, ONEDNN)
MARGIN = 1.10  # oneDNN must be this much faster than the default to be used (probe noise on a shared VM)
PROBE_SHAPES = ((1024, 256, 1024), (1024, 1024, 256))  # (rows, in, out): a sampler chunk through one residual block

_CHOICE: dict[tuple[th.dtype, int], str] = {}
_PACKED = WeakIdKeyDictionary()  # weight -> ((version, address), packed weight)


def host_key() -> str:
    """The CPU (model name and the ISA flags that decide GEMM speed), torch's version: one cache entry per host."""
    model, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", "x86_64"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}|{','.join(isa)}|torch {th.__version__}"


def onednn_linear(x: th.Tensor, packed: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
    return th.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def pack(weight: th.Tensor, rows: int = 1024) -> th.Tensor:
    """The weight [out, in] in oneDNN's blocked layout (an opaque tensor only oneDNN's linear reads)."""
    return th.ops.mkldnn._reorder_linear_weight(weight.detach(), rows)


@functools.cache
def onednn_runs(dtype: th.dtype) -> bool:
    """Whether this torch has a oneDNN linear for `dtype` on this CPU (bf16 needs AVX512-BF16 or AVX-NE-CONVERT)."""
    try:
        out = onednn_linear(th.ones(2, 8, dtype=dtype), pack(th.ones(4, 8, dtype=dtype), 2), None)
        return th.backends.mkldnn.is_available() and out.shape == (2, 4)
    except (RuntimeError, AttributeError):
        return False


def gemm_rates(dtype: th.dtype, shapes: tuple[tuple[int, int, int], ...] = PROBE_SHAPES, seconds: float = 0.1) -> dict:
    """GFLOP/s of each kernel on `shapes` (summed over them, best of 3 rounds), on torch's current threads; a kernel
    that this host's torch cannot run is absent."""
    rates = {}
    for kernel in KERNELS:
        try:
            calls = []
            for rows, n_in, n_out in shapes:
                x, w, b = th.randn(rows, n_in, dtype=dtype), th.randn(n_out, n_in, dtype=dtype), th.randn(n_out, dtype=dtype)
                if kernel == ONEDNN:
                    packed = pack(w, rows)
                    th.testing.assert_close(onednn_linear(x, packed, b), F.linear(x, w, b), atol=0.5, rtol=0.05)
                    calls.append(lambda x=x, p=packed, b=b: onednn_linear(x, p, b))
                else:
                    calls.append(lambda x=x, w=w, b=b: F.linear(x, w, b))
            flops = sum(2 * r * i * o for r, i, o in shapes)
            best = 0.0
            for _ in range(3):
                n, start = 0, time.perf_counter()
                while n == 0 or time.perf_counter() - start < seconds / 3:
                    for call in calls:
                        call()
                    n += 1
                best = max(best, flops * n / (time.perf_counter() - start) / 1e9)
            rates[kernel] = best
        except (RuntimeError, AttributeError, AssertionError):  # no oneDNN kernel for this dtype on this CPU
            continue
    return rates


def _cache_file() -> Path:
    return Path(os.environ.get("SB3_EXPO_CACHE_DIR", Path.home() / ".cache" / "sb3_expo")) / "gemm.json"


def cpu_kernel(dtype: th.dtype) -> str:
    """The kernel that runs no-grad sampler linears of `dtype` on this host's CPU at torch's current thread count."""
    forced = os.environ.get("SB3_EXPO_CPU_GEMM")
    if forced:
        if forced not in KERNELS:
            raise ValueError(f"SB3_EXPO_CPU_GEMM={forced!r}: use one of {KERNELS}.")
        return forced if forced == ATEN or onednn_runs(dtype) else ATEN
    key = (dtype, th.get_num_threads())
    if key not in _CHOICE:
        if not onednn_runs(dtype):
            _CHOICE[key] = ATEN
            return ATEN
        path, entry = _cache_file(), f"{host_key()}|{str(dtype)[6:]}|{key[1]} threads"
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
        if entry not in cache:
            rates = gemm_rates(dtype)
            wins = ONEDNN in rates and rates[ONEDNN] > MARGIN * rates.get(ATEN, 0.0)
            cache[entry] = {"kernel": ONEDNN if wins else ATEN, "gflops": {k: round(v, 1) for k, v in rates.items()}}
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.tmp")  # whole or absent: parallel workers may probe at once
                partial.write_text(json.dumps(cache, indent=1))
                partial.replace(path)
            except OSError:  # a read-only home: the verdict holds for this process
                pass
        _CHOICE[key] = cache[entry]["kernel"]
    return _CHOICE[key]


def linear(layer: nn.Linear) -> Callable[[th.Tensor], th.Tensor]:
    """x -> layer(x) on this host's kernel for layer's weights: oneDNN with the weights packed (once per weight
    version) where that wins and nothing needs their gradient, else F.linear. Under torch.compile: F.linear (inductor
    picks its own kernels)."""
    weight, bias = layer.weight, layer.bias
    if (
        weight.device.type != "cpu"
        or (weight.requires_grad and th.is_grad_enabled())
        or th.compiler.is_compiling()
        or cpu_kernel(weight.dtype) == ATEN
    ):
        return lambda x: F.linear(x, weight, bias)
    version = (weight._version, weight.data_ptr())
    cached = _PACKED.get(weight)
    if cached is None or cached[0] != version:
        cached = _PACKED[weight] = (version, pack(weight))
    packed = cached[1]
    return lambda x: onednn_linear(x.to(weight.dtype), packed, bias)
