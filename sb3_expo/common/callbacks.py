"""Callbacks for long runs: checkpoints a run resumes from after a crash, and task metrics in evaluations.

ResumableCheckpointCallback is SB3's CheckpointCallback, with the same files under the same names (those the zoo's
`enjoy --load-checkpoint N`, `--load-last-checkpoint` and `record_training` read), written so that a kill at any
moment leaves complete checkpoints only:

    <save_path>/rl_model_<N>_steps.zip                    the model, with its schedules and optimizers
    <save_path>/rl_model_replay_buffer_<N>_steps.pkl      the replay buffer (off-policy algorithms)
    <save_path>/rl_model_vecnormalize_<N>_steps.pkl       VecNormalize statistics (when the env has them)

Every file is written under a hidden temporary name first; then the buffer and statistics are renamed into place and
the model last, so a model file means its checkpoint is complete. Every model is kept, as SB3 keeps them; the replay
buffers, the large part, of the newest `keep` only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback

PREFIX = "rl_model"  # the zoo's name_prefix: its commands look for rl_model_<N>_steps.zip
PARTS = {"replay_buffer": "pkl", "vecnormalize": "pkl"}  # SB3's checkpoint_type names, beside the model


class Checkpoint(NamedTuple):
    """The files of one complete checkpoint (replay_buffer and vecnormalize are None where the run has none)."""

    num_timesteps: int
    model: Path
    replay_buffer: Path | None
    vecnormalize: Path | None


class ResumableCheckpointCallback(CheckpointCallback):
    """SB3's CheckpointCallback with the replay buffer and VecNormalize statistics, crash-safe.

    A checkpoint due at step N is written once that step is complete (stored in the buffer and trained on): at the
    start of the next rollout, or when training ends having reached its total (not when it is interrupted). Every
    model is kept, as SB3 does; the replay buffers of the newest `keep` checkpoints (0: all) are kept too. A run
    resumed into the same folder (reset_num_timesteps=False) replaces the checkpoints the abandoned run wrote past it.
    """

    def __init__(self, save_freq: int, save_path: str, name_prefix: str = PREFIX, keep: int = 2, verbose: int = 0):
        super().__init__(save_freq, save_path, name_prefix, save_replay_buffer=True, save_vecnormalize=True, verbose=verbose)
        self.keep = keep
        self._due = self._resuming = False
        self._total = 0

    def _on_training_start(self) -> None:
        self._total = int(self.locals.get("total_timesteps", 0))  # after _setup_learn: the step count to reach
        self._resuming = not self.locals.get("reset_num_timesteps", True)
        clean_checkpoints(self.save_path, self.name_prefix)

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self._due = True
        return True

    def _on_rollout_start(self) -> None:
        self._save_if_due()

    def _on_training_end(self) -> None:
        if self.model.num_timesteps >= self._total:  # finished, not interrupted in the middle of an update
            self._save_if_due()

    def _save_if_due(self) -> None:
        if self._due:
            self._due = False
            path = save_checkpoint(self.model, self.save_path, self.name_prefix, self.keep, replace_later=self._resuming)
            self._resuming = False
            if self.verbose >= 1:
                print(f"Saving checkpoint to {path}")


def save_checkpoint(
    model: BaseAlgorithm, save_path: str | Path, name_prefix: str = PREFIX, keep: int = 2, replace_later: bool = False
) -> Path:
    """Write a complete checkpoint of `model` into save_path (see the module docstring); returns the model's path.

    :param keep: the newest `keep` checkpoints keep their replay buffer (0: all); models and statistics all stay
    :param replace_later: remove the checkpoints past this step (a resumed run replacing the one it abandoned)
    """
    root = Path(save_path)
    root.mkdir(parents=True, exist_ok=True)
    clean_checkpoints(root, name_prefix)
    step = int(model.num_timesteps)
    final = _paths(root, name_prefix, step)
    written: dict[str, Path] = {}  # part -> its temporary file
    model.save(written.setdefault("model", _temporary(final["model"])))
    if getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(written.setdefault("replay_buffer", _temporary(final["replay_buffer"])))  # type: ignore[attr-defined]
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(str(written.setdefault("vecnormalize", _temporary(final["vecnormalize"]))))
    for path in written.values():
        _sync(path)
    # Uncommit what this checkpoint replaces (model file first), then put the parts into place and the model last:
    # a model file means a complete checkpoint. Only renames happen between the two, no writing.
    for checkpoint in _checkpoints(root, name_prefix):
        if checkpoint.num_timesteps == step or (replace_later and checkpoint.num_timesteps > step):
            _remove(root, name_prefix, checkpoint.num_timesteps)
    for part in [*PARTS, "model"]:
        if part in written:
            os.replace(written[part], final[part])
    _sync(root)
    by_age = sorted(_checkpoints(root, name_prefix), key=lambda c: c.model.stat().st_mtime_ns)
    for old in by_age[:-keep] if keep > 0 else []:
        if old.replay_buffer is not None:
            old.replay_buffer.unlink(missing_ok=True)  # the large part; the model and statistics stay, as in SB3
    return final["model"]


def clean_checkpoints(save_path: str | Path, name_prefix: str = PREFIX) -> None:
    """Remove what a run killed during a write left: temporary files, and parts whose model was never written."""
    root = Path(save_path)
    if not root.is_dir():
        return
    for leftover in root.glob(f".{name_prefix}_*.tmp"):
        leftover.unlink(missing_ok=True)
    complete = {c.num_timesteps for c in _checkpoints(root, name_prefix)}
    for checkpoint in _checkpoints(root, name_prefix, complete=False):
        if checkpoint.num_timesteps not in complete:
            _remove(root, name_prefix, checkpoint.num_timesteps)


def latest_checkpoint(save_path: str | Path, name_prefix: str = PREFIX) -> Checkpoint | None:
    """The newest complete checkpoint in save_path, or None."""
    checkpoints = _checkpoints(Path(save_path), name_prefix)
    return checkpoints[-1] if checkpoints else None


def checkpoint_of(model_path: str | Path) -> Checkpoint | None:
    """The checkpoint whose model file this is (None if the name is not rl_model_<N>_steps.zip or it is missing)."""
    path = Path(model_path)
    match = re.fullmatch(r"(.+)_(\d+)_steps\.zip", path.name)
    if match is None or not path.is_file():
        return None
    return _checkpoint(path.parent, match.group(1), int(match.group(2)))


def _paths(root: Path, name_prefix: str, step: int) -> dict[str, Path]:
    """SB3 CheckpointCallback's names: <prefix>_<N>_steps.zip and <prefix>_<part>_<N>_steps.pkl."""
    paths = {part: root / f"{name_prefix}_{part}_{step}_steps.{ext}" for part, ext in PARTS.items()}
    return {"model": root / f"{name_prefix}_{step}_steps.zip", **paths}


def _checkpoint(root: Path, name_prefix: str, step: int) -> Checkpoint:
    paths = _paths(root, name_prefix, step)
    parts = {part: paths[part] if paths[part].is_file() else None for part in PARTS}
    return Checkpoint(step, paths["model"], parts["replay_buffer"], parts["vecnormalize"])


def _checkpoints(root: Path, name_prefix: str, complete: bool = True) -> list[Checkpoint]:
    """The checkpoints in root, oldest first; complete=False also lists parts whose model was never written."""
    pattern = re.compile(rf"{re.escape(name_prefix)}_(?:(?:{'|'.join(PARTS)})_)?(\d+)_steps\.(?:zip|pkl)")
    steps = set()
    for path in root.glob(f"{name_prefix}_*_steps.*") if root.is_dir() else []:
        match = pattern.fullmatch(path.name)
        if match and (not complete or path.suffix == ".zip"):
            steps.add(int(match.group(1)))
    return [_checkpoint(root, name_prefix, step) for step in sorted(steps)]


def _remove(root: Path, name_prefix: str, step: int) -> None:
    for path in _paths(root, name_prefix, step).values():
        path.unlink(missing_ok=True)  # the model first: the checkpoint is incomplete from then on


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _sync(path: Path) -> None:
    """fsync a file or folder (best effort: some file systems refuse it for folders)."""
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


def refuse_parallel_training(name: str, callback: Any) -> None:
    """rl_zoo3's ParallelTrainCallback reloads the model as SAC or TQC and trains that copy in a thread: for these
    algorithms its thread would crash (or train the wrong algorithm) while the run goes on. Refuse it up front."""
    pending = list(callback) if isinstance(callback, list) else [callback]
    while pending:
        item = pending.pop()
        if isinstance(item, CallbackList):
            pending.extend(item.callbacks)
        elif any(cls.__name__ == "ParallelTrainCallback" for cls in type(item).__mro__):
            raise ValueError(
                f"{name} does not support rl_zoo3's ParallelTrainCallback: it reloads the model as SAC or TQC and "
                f"trains that copy in a thread, which {name}'s update is not. Remove it (zoo: the entry's `callback`); "
                f"{name} trains in the main loop, with its gradient_steps per env step."
            )


class InfoEvalCallback(EvalCallback):
    """EvalCallback that also logs the mean of per-episode task metrics found in the final info of each evaluation
    episode (eval/<key>), e.g. Adroit's "solved_fraction": the keys are `info_keywords`."""

    def __init__(self, *args: Any, info_keywords: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.info_keywords = info_keywords

    def _init_callback(self) -> None:
        super()._init_callback()
        self._info_values: list[dict[str, float]] = []  # one dict per finished evaluation episode

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        if not locals_["done"] or not self.info_keywords:
            return
        values = self._info_values
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
