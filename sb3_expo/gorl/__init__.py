from sb3_expo.gorl.gorl import RECIPES, GoRL, LatentActionEnv
from sb3_expo.gorl.policies import GoRLPolicy, MlpPolicy

__all__ = ["RECIPES", "GoRL", "GoRLPolicy", "LatentActionEnv", "MlpPolicy"]
