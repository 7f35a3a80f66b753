"""Box and Dict with the attributes the reference code reads (shape, dtype, low, high, spaces, sample, seed)."""

from __future__ import annotations

import numpy as np


class Space:
    def __init__(self, shape: tuple[int, ...] | None = None, dtype: type | None = None, seed: int | None = None):
        self.shape = shape
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.np_random = np.random.default_rng(seed)

    def seed(self, seed: int | None = None) -> list[int | None]:
        self.np_random = np.random.default_rng(seed)
        return [seed]


class Box(Space):
    def __init__(self, low, high, shape: tuple[int, ...] | None = None, dtype: type = np.float32, seed: int | None = None):
        shape = tuple(shape) if shape is not None else np.shape(low)
        super().__init__(shape, dtype, seed)
        self.low = np.broadcast_to(np.asarray(low, dtype=self.dtype), shape).copy()
        self.high = np.broadcast_to(np.asarray(high, dtype=self.dtype), shape).copy()

    def sample(self) -> np.ndarray:
        """Uniform in [low, high] where bounded, standard normal where not (as gym's Box)."""
        bounded = np.isfinite(self.low) & np.isfinite(self.high)
        low, high = np.where(bounded, self.low, 0.0), np.where(bounded, self.high, 0.0)
        draw = np.where(bounded, self.np_random.uniform(low, high), self.np_random.normal(size=self.shape))
        return draw.astype(self.dtype)

    def __repr__(self) -> str:
        return f"Box({self.low.min()}, {self.high.max()}, {self.shape}, {self.dtype})"


class Dict(Space):
    def __init__(self, spaces: dict[str, Space], seed: int | None = None):
        super().__init__(None, None, seed)
        self.spaces = dict(spaces)

    def sample(self) -> dict[str, np.ndarray]:
        return {k: v.sample() for k, v in self.spaces.items()}
