from gym.utils import seeding

__all__ = ["seeding"]
