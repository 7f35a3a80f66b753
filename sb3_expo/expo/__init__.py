from sb3_expo.expo.expo import EXPO
from sb3_expo.expo.policies import ExpoPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["EXPO", "ExpoPolicy", "MlpPolicy", "MultiInputPolicy"]
