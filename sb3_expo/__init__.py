"""sb3-expo: EXPO (Expressive Policy Optimization), GoRL and RLPD for stable-baselines3."""

from sb3_expo.common.buffers import DemoReplayBuffer, DictDemoReplayBuffer, NStepDemoReplayBuffer
from sb3_expo.common.transitions import Transitions
from sb3_expo.expo import EXPO, ExpoPolicy, MlpPolicy, MultiInputPolicy
from sb3_expo.gorl import GoRL, GoRLPolicy
from sb3_expo.rlpd import RLPD, RLPDPolicy

__version__ = "0.1.0"

__all__ = [
    "EXPO",
    "RLPD",
    "DemoReplayBuffer",
    "DictDemoReplayBuffer",
    "ExpoPolicy",
    "GoRL",
    "GoRLPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "NStepDemoReplayBuffer",
    "RLPDPolicy",
    "Transitions",
    "__version__",
]
