"""What an off-policy algorithm needs to learn from demonstrations the way EXPO does (EXPO and RLPD share it).

`DemonstrationLearning` goes before SB3's algorithm class in the bases: it builds the DemoReplayBuffer with the
demonstrations (resolved from a source string, transformed by the env's task wrappers), refuses a buffer class that
would drop them, seeds VecNormalize statistics from them, lets a model load without them (it acts; learn() asks for
them back) and keeps them out of the saved zip unless they are a source string. With n-step returns, learn() ends
the episode of the last stored transition (as a truncation) whenever the env restarts, so no target runs across.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_expo.common.buffers import DEMO_BUFFERS, DemoReplayBuffer, DictDemoReplayBuffer
from sb3_expo.common.callbacks import refuse_parallel_training
from sb3_expo.common.transitions import Transitions
from sb3_expo.datasets import load_demonstrations


class DemonstrationLearning:
    """Mixin for OffPolicyAlgorithm subclasses with `demonstrations` and `demo_ratio` arguments."""

    demonstrations: Transitions | str | None
    demo_ratio: float
    _strict_demonstrations: bool  # at construction a missing source is an error; load() only warns
    _demos_missing: bool
    _truncate_last_traj: bool  # load_replay_buffer: the buffer's last episode does not go on in the env

    def _init_demonstrations(self, demonstrations: Transitions | str | None, demo_ratio: float | None, strict: bool) -> None:
        self.demonstrations = demonstrations
        self.demo_ratio = (0.5 if demonstrations is not None else 0.0) if demo_ratio is None else float(demo_ratio)
        self._strict_demonstrations = strict
        self._truncate_last_traj = False

    def _check_demonstration_arguments(self) -> None:
        name = type(self).__name__
        if not 0.0 <= self.demo_ratio <= 1.0:
            raise ValueError(
                f"demo_ratio={self.demo_ratio} is outside [0, 1]: it is the fraction of each batch taken from demonstrations."
            )
        if self.demo_ratio > 0 and self.demonstrations is None:
            raise ValueError(
                f"demo_ratio={self.demo_ratio} asks for demonstrations in every batch but none were given: "
                "pass demonstrations=... or set demo_ratio=0 for pure online training."
            )
        uses_demos = self.demonstrations is not None or self.demo_ratio > 0
        buffer_class = self.replay_buffer_class  # type: ignore[attr-defined]
        if uses_demos and buffer_class is not None and not issubclass(buffer_class, DEMO_BUFFERS):
            raise ValueError(
                f"replay_buffer_class={buffer_class.__name__} cannot mix demonstrations into the batches, so "
                f"they would be dropped: leave replay_buffer_class unset ({name} then uses DemoReplayBuffer), use a "
                "subclass of sb3_expo.DemoReplayBuffer, or train without demonstrations (demonstrations=None, demo_ratio=0)."
            )
        if self.n_steps > 1 and isinstance(self.observation_space, spaces.Dict):  # type: ignore[attr-defined]
            raise ValueError(f"n_steps={self.n_steps}: n-step returns are not supported for Dict observations (as in SB3).")  # type: ignore[attr-defined]

    def _setup_demo_buffer(self) -> None:
        """The demonstration buffer, built before SB3's _setup_model (which then keeps it)."""
        if self.replay_buffer_class is None:  # type: ignore[has-type]
            self.replay_buffer_class = (
                DictDemoReplayBuffer if isinstance(self.observation_space, spaces.Dict) else DemoReplayBuffer  # type: ignore[attr-defined]
            )
        # A model loaded without its demonstrations can act; training it needs them back (see _setup_learn).
        demos = self._resolve_demonstrations() if self.replay_buffer is None else None  # type: ignore[has-type]
        self._demos_missing = (self.demonstrations is None or (self.replay_buffer is None and demos is None)) and (  # type: ignore[has-type]
            self.demo_ratio > 0
        )
        if self.replay_buffer is None and issubclass(self.replay_buffer_class, DEMO_BUFFERS):  # type: ignore[has-type]
            # Built here, not by SB3, so the demonstrations never enter replay_buffer_kwargs (saved with the model).
            n_step = dict(n_steps=self.n_steps, gamma=self.gamma) if self.n_steps > 1 else {}  # type: ignore[attr-defined]
            self.replay_buffer = self.replay_buffer_class(
                self.buffer_size,  # type: ignore[attr-defined]
                self.observation_space,  # type: ignore[attr-defined]
                self.action_space,  # type: ignore[attr-defined]
                device=self.device,  # type: ignore[attr-defined]
                n_envs=self.n_envs,  # type: ignore[attr-defined]
                optimize_memory_usage=self.optimize_memory_usage,  # type: ignore[attr-defined]
                demonstrations=demos,
                demo_ratio=0.0 if self._demos_missing else self.demo_ratio,
                **{**n_step, **self.replay_buffer_kwargs},  # type: ignore[attr-defined]
            )
            if self._vec_normalize_env is not None:  # type: ignore[attr-defined]  # pretraining sees the demos' statistics
                self.replay_buffer.seed_normalization(self._vec_normalize_env, self.gamma)  # type: ignore[attr-defined]

    def _resolve_demonstrations(self) -> Transitions | None:
        """The demonstrations, transformed by the env's task wrappers as its online data are; None if there are none.

        load() re-resolves a saved source string; if it is not on this machine the model still loads (and acts) with
        a warning, and learn() asks for the demonstrations. At construction a missing source is an error.
        """
        if self.demonstrations is None:
            return None
        try:
            return load_demonstrations(self.demonstrations, self.env, self.observation_space)  # type: ignore[attr-defined]
        except FileNotFoundError as error:
            if self._strict_demonstrations:
                raise
            warnings.warn(f"loaded without its demonstrations, which act no part in acting: {error}", stacklevel=4)
            return None

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self._demos_missing:
            name = type(self).__name__
            raise ValueError(
                f"this model trains with demo_ratio={self.demo_ratio} but was loaded without its demonstrations: "
                f"pass them again ({name}.load(path, env, demonstrations=...)) or call model.load_replay_buffer(path)."
            )
        # the next transition starts a new episode: SB3 resets the env (a new run, or none is under way), or the
        # buffer was loaded from elsewhere
        if reset_num_timesteps or self._last_obs is None or self._truncate_last_traj:  # type: ignore[attr-defined]
            self._truncate_last_transition()
        self._truncate_last_traj = False
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)  # type: ignore[misc]

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        refuse_parallel_training(type(self).__name__, callback)
        return super()._init_callback(callback, progress_bar)  # type: ignore[misc]

    def _truncate_last_transition(self) -> None:
        """Mark the last stored transition as truncated (unless it terminated), so n-step returns never run from the
        episode it ends into the next one. One-step targets are unchanged: a truncation matters only with done set."""
        buffer = self.replay_buffer  # type: ignore[attr-defined]
        if getattr(buffer, "n_steps", 1) > 1 and (buffer.pos > 0 or buffer.full):
            last = (buffer.pos - 1) % buffer.buffer_size
            buffer.timeouts[last] = np.logical_or(buffer.timeouts[last], ~buffer.dones[last].astype(bool))

    def load_replay_buffer(self, path: Any, truncate_last_traj: bool = True) -> None:
        """Load a saved buffer as it was saved. With ``truncate_last_traj`` (SB3's meaning: the last episode in the
        buffer has ended) the next learn() marks its last transition as truncated, so n-step returns never run
        across the restart; the env restarting at learn() has the same effect."""
        super().load_replay_buffer(path, truncate_last_traj)  # type: ignore[misc]
        self._truncate_last_traj = truncate_last_traj
        self._demos_missing = self.demo_ratio > 0 and not getattr(self.replay_buffer, "n_demos", 0)

    def _excluded_save_params(self) -> list[str]:
        excluded = [*super()._excluded_save_params(), "_demos_missing", "_strict_demonstrations", "_truncate_last_traj"]  # type: ignore[misc]
        # A source string is saved (load() resolves it again); Transitions travel with save_replay_buffer only.
        return excluded if isinstance(self.demonstrations, str) else [*excluded, "demonstrations"]
