"""gym.utils.seeding.np_random: a numpy Generator and the seed it was made from (the reference datasets use it)."""

from __future__ import annotations

import numpy as np


def np_random(seed: int | None = None) -> tuple[np.random.Generator, int]:
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**32)
    return np.random.default_rng(seed), seed
