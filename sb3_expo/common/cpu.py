"""CPU allocator setting that the sampler's large intermediates need.

glibc serves each large tensor with mmap and returns it to the OS when freed, so every [rows, 1024] activation
of the sampler is page-faulted in afresh: an fp32 silu on 8192 x 1024 took 39 ms instead of 9.5 ms on the CI CPU
(benchmarks/throughput.py). Keeping freed memory in the heap removes that; the process keeps its peak memory
instead of returning it. This is what jemalloc/tcmalloc give PyTorch on CPU. Off with SB3_EXPO_MALLOPT=0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc malloc.h
_applied = False


def keep_freed_memory() -> bool:
    """Tell glibc to serve large blocks from the heap and not to trim it (once per process); False if not glibc."""
    global _applied
    if _applied or os.environ.get("SB3_EXPO_MALLOPT", "1") == "0":
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _applied = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to do
        _applied = False
    return _applied
