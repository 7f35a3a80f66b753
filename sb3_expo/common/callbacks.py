"""Callbacks for long runs: checkpoints a run resumes from after a crash, and task metrics in evaluations.

ResumableCheckpointCallback writes everything needed to continue (the model with its schedules, the online replay
buffer, VecNormalize statistics) into a fresh folder and renames it into place, so a kill at any moment leaves
either the previous complete checkpoint or the new complete one, never a half-written one. Layout (the zoo's, so
`rl_zoo3 train ... -i <checkpoint>/model.zip` finds the buffer and the statistics next to the model):

    <save_path>/checkpoints/<num_timesteps>/model.zip, replay_buffer.pkl, <env_name>/vecnormalize.pkl, checkpoint.json
    <save_path>/checkpoints/latest -> the newest complete checkpoint
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

CHECKPOINT_INFO = "checkpoint.json"
# Seconds to pause in the middle of writing a checkpoint: lets the crash tests kill a run during a write.
DELAY_VARIABLE = "SB3_EXPO_CHECKPOINT_DELAY"


class ResumableCheckpointCallback(CheckpointCallback):
    """Every `save_freq` calls, a complete checkpoint written atomically; the newest `keep` are kept.

    :param env_name: folder name of the VecNormalize statistics inside a checkpoint (the zoo's layout)
    """

    def __init__(self, save_freq: int, save_path: str, env_name: str = "", keep: int = 2, verbose: int = 0):
        super().__init__(save_freq, save_path, verbose=verbose)
        self.env_name, self.keep = env_name, keep
        self.total_timesteps: int | None = None

    def _on_training_start(self) -> None:
        self.total_timesteps = int(self.locals.get("total_timesteps", 0)) or None  # the run's target, for resuming

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self.__dict__["_due"] = True  # saved when the step is complete: stored in the buffer and trained on
        return True

    def _on_rollout_start(self) -> None:
        if self.__dict__.pop("_due", False):
            path = save_checkpoint(self.model, self.save_path, self.env_name, self.total_timesteps, self.keep)
            if self.verbose >= 1:
                print(f"Saving checkpoint to {path}")


def save_checkpoint(
    model: BaseAlgorithm, save_path: str | Path, env_name: str = "", total_timesteps: int | None = None, keep: int = 2
) -> Path:
    """Write a checkpoint of `model` under save_path/checkpoints and point `latest` at it; returns its folder."""
    root = Path(save_path) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".partial-*"):  # left by a run killed during a write
        shutil.rmtree(stale, ignore_errors=True)
    step = int(model.num_timesteps)
    partial = root / f".partial-{step}-{os.getpid()}"
    partial.mkdir()
    model.save(partial / "model.zip")
    delay = float(os.environ.get(DELAY_VARIABLE, "0") or 0)
    if delay:
        time.sleep(delay)
    if getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(partial / "replay_buffer.pkl")  # type: ignore[attr-defined]
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        (partial / env_name).mkdir(parents=True, exist_ok=True)
        vec_normalize.save(str(partial / env_name / "vecnormalize.pkl"))
    info = {"num_timesteps": step, "total_timesteps": total_timesteps, "algo": type(model).__name__, "time": time.time()}
    (partial / CHECKPOINT_INFO).write_text(json.dumps(info, indent=1))
    _sync_tree(partial)
    final = root / str(step)
    if final.exists():
        shutil.rmtree(final)
    os.rename(partial, final)  # atomic: the folder appears complete or not at all
    _point(root / "latest", final.name)
    _sync(root)
    kept = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    for old in kept[: max(len(kept) - keep, 0)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(save_path: str | Path) -> Path | None:
    """The newest complete checkpoint folder under save_path (or save_path/checkpoints), or None."""
    root = Path(save_path)
    root = root / "checkpoints" if (root / "checkpoints").is_dir() else root
    latest = root / "latest"
    if latest.exists() and (latest / CHECKPOINT_INFO).is_file():
        return latest.resolve()
    complete = [p for p in root.glob("[0-9]*") if (p / CHECKPOINT_INFO).is_file()]
    return max(complete, key=lambda p: int(p.name)) if complete else None


def checkpoint_info(model_path: str | Path) -> dict[str, Any] | None:
    """What a checkpoint records about its run, given the path of its model.zip (None if it is not a checkpoint)."""
    info = Path(model_path).parent / CHECKPOINT_INFO
    return json.loads(info.read_text()) if info.is_file() else None


def _point(link: Path, target: str) -> None:
    """Make `link` a symbolic link to `target`, replacing it atomically."""
    fresh = link.with_name(f".{link.name}-{os.getpid()}")
    if fresh.is_symlink() or fresh.exists():
        fresh.unlink()
    os.symlink(target, fresh)
    os.replace(fresh, link)


def _sync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        _sync(path)
    _sync(folder)


class InfoEvalCallback(EvalCallback):
    """EvalCallback that also logs the mean of per-episode task metrics found in the final info of each evaluation
    episode (eval/<key>), e.g. Adroit's "solved_fraction": the keys are `info_keywords`."""

    info_keywords: tuple[str, ...] = ()

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        if not locals_["done"] or not self.info_keywords:
            return
        values = self.__dict__.setdefault("_info_values", [])  # one dict per finished evaluation episode
        values.append({k: float(locals_["info"][k]) for k in self.info_keywords if k in locals_["info"]})
        if len(values) < self.n_eval_episodes:
            return
        for key in self.info_keywords:  # the last episode: recorded before EvalCallback dumps this evaluation
            seen = [episode[key] for episode in values if key in episode]
            if seen:
                self.logger.record(f"eval/{key}", float(np.mean(seen)))
                if self.verbose >= 1:
                    print(f"Eval {key}: {np.mean(seen):.3f}")
        values.clear()
