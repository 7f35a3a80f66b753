from sb3_expo.rlpd.policies import MlpPolicy, MultiInputPolicy, RLPDPolicy
from sb3_expo.rlpd.rlpd import RLPD

__all__ = ["RLPD", "MlpPolicy", "MultiInputPolicy", "RLPDPolicy"]
