"""rl-zoo3 integration: `register()` makes `--algo expo` and its tuning available in this process.

rl_zoo3 2.9 has no plug-in hook: its `--algo` choices are the keys of `rl_zoo3.utils.ALGOS` when the parser is
built, and its default config path points inside the rl_zoo3 package. `register()` fills both gaps. The plain
`rl_zoo3` command calls it through a start-up hook (see `_sb3_expo_zoo_hook.py`); `expo-zoo` calls it directly.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

CONFIG_NAME = "expo.yml"


def default_config() -> str:
    """./hyperparams/expo.yml when it exists, else the copy shipped in the package (or in the source checkout)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (
        Path("hyperparams") / CONFIG_NAME,
        package / "hyperparams" / CONFIG_NAME,
        package.parent / "hyperparams" / CONFIG_NAME,
    ):
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(f"no {CONFIG_NAME} found in ./hyperparams or in the sb3_expo package.")


def register() -> None:
    """Add EXPO to rl_zoo3's ALGOS, hyperparameter sampler and converter; default its config to expo.yml."""
    from rl_zoo3 import exp_manager, hyperparams_opt, utils

    from sb3_expo import EXPO
    from sb3_expo.datasets.robosuite_tasks import register_envs
    from sb3_expo.zoo.tuning import convert_expo_params, sample_expo_params

    register_envs()  # RobomimicLift-v0, ... (robosuite is imported only when one is made)
    try:  # PointMaze, AntMaze, Adroit ids, when gymnasium-robotics is installed
        import gymnasium
        import gymnasium_robotics

        gymnasium.register_envs(gymnasium_robotics)
    except ImportError:
        pass
    utils.ALGOS["expo"] = EXPO
    hyperparams_opt.HYPERPARAMS_SAMPLER["expo"] = sample_expo_params
    hyperparams_opt.HYPERPARAMS_CONVERTER["expo"] = convert_expo_params
    manager = exp_manager.ExperimentManager
    if not getattr(manager.__init__, "_sb3_expo", False):
        manager.__init__ = _with_expo_defaults(manager.__init__)


def _with_expo_defaults(init: Any) -> Any:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        if bound.arguments.get("algo") == "expo":
            if bound.arguments.get("config") is None:  # -conf always wins
                bound.arguments["config"] = default_config()
        init(*bound.args, **bound.kwargs)

    wrapped._sb3_expo = True  # type: ignore[attr-defined]
    return wrapped
