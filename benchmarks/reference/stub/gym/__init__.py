"""A stand-in for the `gym` package, on the path of the reference driver only (benchmarks/reference/driver.py).

The reference learners (EXPO at b7ed710, RLPD at c90fd4b) import gym for two things: space types (``gym.Space``,
``gym.spaces.Box``, ``gym.spaces.Dict``; an example observation and action come from ``Space.sample()``, and their
replay buffer allocates from ``shape`` and ``dtype``) and seeding (``gym.utils.seeding.np_random``). Environments are
not built through gym: the driver steps our gymnasium tasks in the project's own venv (benchmarks/reference/ours.py).
"""

from gym import spaces, utils
from gym.spaces import Space

__all__ = ["Space", "spaces", "utils"]
