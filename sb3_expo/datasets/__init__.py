"""Demonstration sources -> Transitions. Loaders import common, never expo."""

from sb3_expo.datasets.experts import EXPERTS, collect_demonstrations, mountain_car_expert, pendulum_expert
from sb3_expo.datasets.sources import load_demonstrations

__all__ = ["EXPERTS", "collect_demonstrations", "load_demonstrations", "mountain_car_expert", "pendulum_expert"]
