from sb3_expo.gorl.gorl import GoRL, LatentActionEnv
from sb3_expo.gorl.policies import GoRLPolicy, MlpPolicy

__all__ = ["GoRL", "GoRLPolicy", "LatentActionEnv", "MlpPolicy"]
