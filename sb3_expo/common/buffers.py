"""DemoReplayBuffer: an SB3 replay buffer that mixes a fixed demonstration set into every sampled batch.

Every batch of size B holds round(B * demo_ratio) demonstration transitions and B - that many online ones,
each part drawn uniformly with replacement (RLPD's symmetric sampling; reference section 4.1). The
demonstrations are kept beside the online data, never inserted into it, and are pickled with the buffer, so
``save_replay_buffer`` / ``load_replay_buffer`` keep them. Works as ``replay_buffer_class`` for any SB3
off-policy algorithm (SAC, TD3, TQC, CrossQ, EXPO). ``n_steps > 1`` gives n-step returns as SB3's
NStepReplayBuffer does, for the online part and the demonstrations alike (flat observations only); the buffer is
then an NStepReplayBuffer (``DemoReplayBuffer(..., n_steps=3)`` builds an NStepDemoReplayBuffer).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.preprocessing import get_obs_shape
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_expo.common.transitions import Transitions, take

ONLINE_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")  # SB3's, a row per step


class _DemoMixin:
    """Demonstration storage and mixed sampling, shared by the flat and the Dict buffer."""

    observation_space: spaces.Space
    action_space: spaces.Box

    n_steps: int = 1
    gamma: float = 0.99

    def _set_demonstrations(self, demonstrations: Transitions | None, demo_ratio: float | None) -> None:
        if demo_ratio is None:
            demo_ratio = 0.5 if demonstrations is not None else 0.0
        if not 0.0 <= demo_ratio <= 1.0:
            raise ValueError(
                f"demo_ratio={demo_ratio} is outside [0, 1]: it is the fraction of each batch taken from demonstrations."
            )
        if demo_ratio > 0 and demonstrations is None:
            raise ValueError(
                f"demo_ratio={demo_ratio} asks for demonstrations in every batch but none were given: "
                "pass demonstrations=Transitions(...) or set demo_ratio=0 for pure online training."
            )
        self.demo_ratio = float(demo_ratio)
        self.n_demos = 0
        if demonstrations is None:
            return
        demonstrations.validate(self.observation_space, self.action_space)
        low, high = self.action_space.low, self.action_space.high
        actions = demonstrations.actions.reshape(len(demonstrations), *self.action_space.shape)
        self.n_demos = len(demonstrations)
        self.demo_observations = _as_float(demonstrations.observations, self.observation_space)
        self.demo_next_observations = _as_float(demonstrations.next_observations, self.observation_space)
        self.demo_actions = (2.0 * (actions - low) / (high - low) - 1.0).reshape(self.n_demos, -1).astype(np.float32)
        self.demo_rewards = demonstrations.rewards.astype(np.float32).reshape(-1, 1)
        self.demo_dones = demonstrations.terminations.astype(np.float32).reshape(-1, 1)
        self.demo_episode_ends = demonstrations.terminations | demonstrations.truncations
        self.demo_episode_ends[-1] = True  # the recording stops there: never look past it
        if self.n_steps > 1:
            self._set_demo_n_step()

    def _set_demo_n_step(self) -> None:
        """Per demonstration row: the rewards of its next n steps inside its episode, and where the n-step target ends.

        Stored as the reward sequence (so a VecNormalize env normalises each reward, as for online samples) plus the
        row of the last step; the next observation, done flag and discount are those of that row, as in SB3.
        """
        n, rows = self.n_steps, np.arange(self.n_demos)
        next_end = np.empty(self.n_demos, dtype=np.int64)  # the first episode end at or after each row
        following = self.n_demos - 1
        for i in range(self.n_demos - 1, -1, -1):
            following = i if self.demo_episode_ends[i] else following
            next_end[i] = following
        self.demo_last = np.minimum(next_end, rows + n - 1)
        offsets = np.arange(n)
        inside = rows[:, None] + offsets <= self.demo_last[:, None]
        following_rewards = self.demo_rewards[np.minimum(rows[:, None] + offsets, self.n_demos - 1), 0]
        self.demo_reward_seq = np.where(inside, following_rewards, 0.0).astype(np.float32)
        self.demo_discounts = (self.gamma ** (self.demo_last - rows + 1)).astype(np.float32).reshape(-1, 1)

    def drop_demonstrations(self) -> None:
        """Forget the demonstrations; every batch is online data from now on."""
        self.n_demos, self.demo_ratio = 0, 0.0
        for name in [k for k in self.__dict__ if k.startswith("demo_") and k != "demo_ratio"]:
            del self.__dict__[name]

    def n_demo_samples(self, batch_size: int) -> int:
        return round(batch_size * self.demo_ratio) if self.n_demos else 0

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> Any:
        """A batch with exactly n_demo_samples(batch_size) demonstrations first, then online transitions."""
        return self.sample_minibatches(1, batch_size, env)

    def sample_minibatches(self, n_minibatches: int, batch_size: int, env: VecNormalize | None = None) -> Any:
        """n_minibatches batches in one draw, rows [g*B, (g+1)*B) being batch g, each with the exact demo share."""
        n_demo = self.n_demo_samples(batch_size)
        parts = []
        if n_demo:
            parts.append(self.sample_demonstrations(n_minibatches * n_demo, env))
        if batch_size - n_demo:
            if self.size() == 0:
                raise RuntimeError("the replay buffer holds no online transitions yet: collect some before sampling.")
            parts.append(super().sample(n_minibatches * (batch_size - n_demo), env))  # type: ignore[misc]
        if len(parts) == 1:
            return parts[0]
        return _interleave(parts, n_minibatches)

    def sample_demonstrations(self, batch_size: int, env: VecNormalize | None = None) -> Any:
        """Demonstrations only (imitation pretraining), normalised like online data when VecNormalize is used."""
        if not self.n_demos:
            raise RuntimeError("this buffer holds no demonstrations.")
        idx = np.random.randint(0, self.n_demos, size=batch_size)
        if self.n_steps > 1:
            last = self.demo_last[idx]
            rewards = self._normalize_reward(self.demo_reward_seq[idx], env)  # type: ignore[attr-defined]
            powers = self.gamma ** np.arange(self.n_steps, dtype=np.float32)
            data = (
                self._normalize_obs(take(self.demo_observations, idx), env),  # type: ignore[attr-defined]
                self.demo_actions[idx],
                self._normalize_obs(take(self.demo_next_observations, last), env),  # type: ignore[attr-defined]
                self.demo_dones[last],
                (rewards * powers).sum(axis=1, keepdims=True).astype(np.float32),
                self.demo_discounts[idx],
            )
        else:
            data = (
                self._normalize_obs(take(self.demo_observations, idx), env),  # type: ignore[attr-defined]
                self.demo_actions[idx],
                self._normalize_obs(take(self.demo_next_observations, idx), env),  # type: ignore[attr-defined]
                self.demo_dones[idx],
                self._normalize_reward(self.demo_rewards[idx], env),  # type: ignore[attr-defined]
            )
        return self._samples_type(*(self._to_torch_obs(x) for x in data))

    def seed_normalization(self, env: VecNormalize, gamma: float) -> bool:
        """Give a fresh VecNormalize env the statistics of the demonstrations (observations, discounted returns).

        Otherwise pretraining normalises with the statistics of an env that has not run yet, and the first online
        steps move them far from what the base policy learned on. Only a VecNormalize that has seen no step is
        changed (statistics loaded from a file are kept); returns whether it was.
        """
        if not self.n_demos or not env.training:
            return False
        fresh_obs = env.norm_obs and all(rms.count < 1 for rms in _as_dict(env.obs_rms).values())
        if fresh_obs:
            observations = _as_dict(self.demo_observations)
            for key, rms in _as_dict(env.obs_rms).items():
                rms.update(observations[key].reshape(self.n_demos, *rms.mean.shape))
        fresh_reward = env.norm_reward and env.ret_rms.count < 1
        if fresh_reward:
            returns, running = np.empty(self.n_demos), 0.0
            for i, reward in enumerate(self.demo_rewards[:, 0]):
                running = running * gamma + reward
                returns[i] = running
                if self.demo_episode_ends[i]:
                    running = 0.0
            env.ret_rms.update(returns)
        return fresh_obs or fresh_reward

    def _to_torch_obs(self, x: np.ndarray | dict[str, np.ndarray]) -> th.Tensor | dict[str, th.Tensor]:
        if isinstance(x, dict):
            return {k: self.to_torch(v) for k, v in x.items()}  # type: ignore[attr-defined]
        return self.to_torch(x)  # type: ignore[attr-defined]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with the filled rows only (save_replay_buffer, checkpoints): a buffer of a million rows early in a
        run writes what it holds, not its whole allocation. Unpickling restores the full-size arrays."""
        state = self.__dict__.copy()
        if not getattr(self, "full", True):
            for name in ONLINE_ARRAYS:
                if state.get(name) is not None:
                    # optimize_memory_usage keeps the last transition's next observation in observations[pos]
                    rows = self.pos + (name == "observations" and self.optimize_memory_usage)  # type: ignore[attr-defined]
                    state[name] = take(state[name], slice(0, rows))
            state["_pickled_rows"] = True
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        trimmed = state.pop("_pickled_rows", False)
        self.__dict__.update(state)
        if trimmed:
            for name in ONLINE_ARRAYS:
                if state.get(name) is not None:
                    setattr(self, name, _full_size(state[name], self.buffer_size))  # type: ignore[attr-defined]


class DemoReplayBuffer(_DemoMixin, ReplayBuffer):
    """ReplayBuffer whose every sample mixes in demonstrations by ``demo_ratio`` (0.5 when demonstrations are given).

    ``n_steps`` > 1: n-step returns (SB3's NStepReplayBuffer targets) for online samples and demonstrations; the
    buffer built is then an NStepDemoReplayBuffer, an SB3 NStepReplayBuffer.

    :param buffer_size: Max number of online transitions
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: SB3's memory-efficient variant (not with n_steps > 1)
    :param handle_timeout_termination: Handle timeouts (truncations) separately from terminations, as SB3
    :param demonstrations: the demonstrations mixed into every batch (None: a plain online buffer)
    :param demo_ratio: fraction of each batch from demonstrations (0.5 when demonstrations are given)
    :param n_steps: steps of the n-step returns (keyword only, as in SB3's NStepReplayBuffer)
    :param gamma: discount of the n-step returns
    """

    _samples_type = ReplayBufferSamples

    def __new__(cls, *args: Any, n_steps: int = 1, **kwargs: Any) -> DemoReplayBuffer:
        # n-step returns: an NStepReplayBuffer, which SB3 users check for (a subclass of ours samples n-step returns
        # either way, and derives from NStepDemoReplayBuffer to be one too)
        if n_steps > 1 and cls is DemoReplayBuffer:
            cls = NStepDemoReplayBuffer
        return super().__new__(cls)

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        demonstrations: Transitions | None = None,
        demo_ratio: float | None = None,
        *,
        n_steps: int = 1,
        gamma: float = 0.99,
    ):
        if n_steps > 1 and optimize_memory_usage:
            raise ValueError("n-step returns do not support optimize_memory_usage=True (as SB3's NStepReplayBuffer).")
        super().__init__(
            buffer_size, observation_space, action_space, device, n_envs, optimize_memory_usage, handle_timeout_termination
        )
        self.n_steps, self.gamma = int(n_steps), float(gamma)
        self._set_demonstrations(demonstrations, demo_ratio)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        if self.n_steps > 1:  # also a DemoReplayBuffer pickled with n_steps > 1 before it became an NStepReplayBuffer
            return NStepReplayBuffer._get_samples(self, batch_inds, env)  # type: ignore[arg-type]
        return ReplayBuffer._get_samples(self, batch_inds, env)


class NStepDemoReplayBuffer(DemoReplayBuffer, NStepReplayBuffer):
    """DemoReplayBuffer with n-step returns (``n_steps`` > 1): an SB3 NStepReplayBuffer whose every sample also mixes
    in demonstrations, with the same n-step targets for them. ``DemoReplayBuffer(..., n_steps=n)`` builds one."""


class DictDemoReplayBuffer(_DemoMixin, DictReplayBuffer):
    """DictReplayBuffer (for MultiInputPolicy) with the same demonstration mixing."""

    _samples_type = DictReplayBufferSamples

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        demonstrations: Transitions | None = None,
        demo_ratio: float | None = None,
    ):
        super().__init__(
            buffer_size, observation_space, action_space, device, n_envs, optimize_memory_usage, handle_timeout_termination
        )
        self._set_demonstrations(demonstrations, demo_ratio)


DEMO_BUFFERS = (DemoReplayBuffer, DictDemoReplayBuffer)  # what EXPO mixes demonstrations with


def _as_dict(x: Any) -> dict:
    return x if isinstance(x, dict) else {None: x}


def _as_float(obs: np.ndarray | dict[str, np.ndarray], space: spaces.Space) -> np.ndarray | dict[str, np.ndarray]:
    """Observations in the layout of SB3's buffers (its shape for each space: a Discrete one is stored as [n, 1])."""
    if isinstance(obs, dict):
        return {k: _as_float(obs[k], space[k]) for k in space.keys()}  # type: ignore[return-value]
    return np.asarray(obs, dtype=space.dtype).reshape(len(obs), *get_obs_shape(space))  # type: ignore[misc]


def _full_size(x: np.ndarray | dict[str, np.ndarray], rows: int) -> np.ndarray | dict[str, np.ndarray]:
    """The first rows of a buffer array (or of each key's), zero-padded back to the buffer's size."""
    if isinstance(x, dict):
        return {k: _full_size(v, rows) for k, v in x.items()}  # type: ignore[misc]
    full = np.zeros((rows, *x.shape[1:]), dtype=x.dtype)
    full[: len(x)] = x
    return full


def _interleave(parts: list[Any], n_minibatches: int) -> Any:
    """Concatenate per minibatch: [demo_g, online_g] for g = 0..n-1 (each part holds n equal blocks)."""

    def join(values: tuple[th.Tensor, ...]) -> th.Tensor:
        blocks = [v.view(n_minibatches, -1, *v.shape[1:]) for v in values]
        return th.cat(blocks, dim=1).flatten(0, 1)

    fields = []
    for values in zip(*parts):
        if values[0] is None:
            fields.append(None)
        elif isinstance(values[0], dict):
            fields.append({k: join(tuple(v[k] for v in values)) for k in values[0]})
        else:
            fields.append(join(values))
    return type(parts[0])(*fields)
