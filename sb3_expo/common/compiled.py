"""torch.compile for EXPO's two hot paths (the sampler's denoising chain, the critic ensemble), eager as fallback.

A module opts in with a plain `compile_mode` attribute (None: eager; copies and pickles keep it) and routes its hot
method through `run()`. Shapes are static: one compilation per input shape (acting, the backup's chunk, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch as th

_COMPILED: dict[tuple[Callable, str], Callable] = {}


def compile_mode(device: th.device, enabled: bool) -> str | None:
    """CUDA graphs on CUDA ("reduce-overhead"), fused kernels elsewhere ("default"); None when disabled."""
    if not enabled:
        return None
    return "reduce-overhead" if device.type == "cuda" else "default"


def run(owner: Any, fn: Callable, *args: Any) -> Any:
    """fn(owner, *args), compiled in owner.compile_mode; eager from then on (with a warning) if compilation fails.

    One compiled function per (fn, mode) is shared by all owners: the module is an argument, not a guard, so the
    online and target critics (or base and EMA policies) reuse each other's compilations.
    """
    mode = owner.compile_mode
    if mode is None:
        return fn(owner, *args)
    if (fn, mode) not in _COMPILED:
        _COMPILED[fn, mode] = th.compile(fn, mode=mode, dynamic=False)
    try:
        out = _COMPILED[fn, mode](owner, *args)
    except Exception as error:  # no C++ compiler, an unsupported backend, ...: the eager function is the same algorithm
        warnings.warn(f"torch.compile failed, running {fn.__qualname__} eagerly from now on: {error!r}", stacklevel=3)
        owner.compile_mode = None
        return fn(owner, *args)
    # a CUDA graph's output is overwritten by its next replay, so that mode's result is copied out
    return out.clone() if mode == "reduce-overhead" else out
