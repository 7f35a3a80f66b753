"""Demonstration sources -> Transitions. Loaders import common, never expo."""

from sb3_expo.datasets.experts import collect_demonstrations, mountain_car_expert

__all__ = ["collect_demonstrations", "mountain_car_expert"]
