from sb3_expo.rlpd.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, RLPDPolicy
from sb3_expo.rlpd.rlpd import RLPD

__all__ = ["RLPD", "CnnPolicy", "MlpPolicy", "MultiInputPolicy", "RLPDPolicy"]
