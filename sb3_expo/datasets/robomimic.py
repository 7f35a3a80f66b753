"""robomimic low-dim HDF5 files -> Transitions, read with h5py.

The layout (robomimic's low_dim_v141.hdf5): data/demo_N/{obs,next_obs}/<key>, actions, rewards, dones; the env's
metadata as JSON in data.attrs["env_args"]; filter keys as lists of demo names in mask/<filter>. robomimic 0.3.0's
own loaders pull in mujoco_py and torchvision, which do not import here, so this reads the file directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from sb3_expo.common.transitions import Transitions

# The observation keys EXPO used, concatenated in this order (reference section 4.4).
DEFAULT_OBS_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")


def _demo_names(f, path: Path, filter_key: str | None) -> list[str]:
    if "data" not in f or not len(f["data"]):
        raise ValueError(f"{path} holds no demonstrations (no data/demo_N groups): is it a robomimic dataset?")
    if filter_key is None:
        names = list(f["data"].keys())
    else:
        if f"mask/{filter_key}" not in f:
            masks = sorted(f["mask"].keys()) if "mask" in f else []
            raise ValueError(f"{path} has no filter key {filter_key!r}; it has {masks}.")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f[f"mask/{filter_key}"][()]]
    return sorted(names, key=lambda n: int(re.sub(r"\D", "", n) or 0))  # demo_2 before demo_10


def load_robomimic(
    path: str | Path, obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS, filter_key: str | None = None, n_demos: int | None = None
) -> Transitions:
    """Transitions of the first n_demos demonstrations (all by default), observations = obs_keys concatenated.

    Every demonstration ends with done = 1 (the task is solved there), which terminates; the paper keeps the first
    10 Lift demonstrations (n_demos=10).
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"robomimic dataset {path} does not exist.")
    columns: dict[str, list] = {k: [] for k in ("obs", "next_obs", "actions", "rewards", "dones")}
    with h5py.File(path, "r") as f:
        names = _demo_names(f, path, filter_key)
        for name in names[:n_demos]:
            demo = f[f"data/{name}"]
            for group, column in (("obs", "obs"), ("next_obs", "next_obs")):
                missing = [k for k in obs_keys if k not in demo[group]]
                if missing:
                    raise ValueError(
                        f"observation keys {missing} are not in {path} {name}/{group} (it has {sorted(demo[group].keys())}); "
                        "pass obs_keys= with keys the file has."
                    )
                columns[column].append(
                    np.concatenate([np.asarray(demo[group][k]).reshape(len(demo["actions"]), -1) for k in obs_keys], axis=1)
                )
            columns["actions"].append(np.asarray(demo["actions"]))
            columns["rewards"].append(np.asarray(demo["rewards"]))
            columns["dones"].append(np.asarray(demo["dones"]).astype(bool))
    suffix = f"?filter_key={filter_key}" if filter_key else ""
    return Transitions(
        np.concatenate(columns["obs"]).astype(np.float32),
        np.concatenate(columns["actions"]).astype(np.float32),
        np.concatenate(columns["rewards"]),
        np.concatenate(columns["next_obs"]).astype(np.float32),
        np.concatenate(columns["dones"]),
        source=f"{path}{suffix}",
    )


def robomimic_env_meta(path: str | Path) -> dict:
    """The env metadata robomimic stores with the data (env_name, type, env_kwargs), to rebuild the env."""
    import h5py

    with h5py.File(path, "r") as f:
        return json.loads(f["data"].attrs["env_args"])
