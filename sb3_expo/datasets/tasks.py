"""The paper's tasks as registered env ids: each id is the env, its task wrappers and so the same transformation of
its demonstrations (the wrappers declare it; EXPO applies it), and the SB3 Monitor the zoo adds wraps the whole task.

- AntMaze<Size><Data>D4RL-v1 (e.g. AntMazeLargeDiverseD4RL-v1): D4RL antmaze as the paper and its baselines ran it,
  from the minari dataset's own evaluation env (minari recovers it: one fixed start cell and one fixed goal cell),
  29-dimensional D4RL observations (x, y, then the rest; no goal), the episode ends at the goal, 1000 steps.
  Needs the dataset on this machine (nothing is downloaded).
- Adroit<Task>Binary-v1 (pen 100 steps, door and relocate 200): the paper's binary Adroit tasks: reward success - 1,
  full-length episodes (no termination at success), info['solved_fraction'] (the paper's metric) and is_success.
- <Domain><Task>DMC-v0 (e.g. HopperStandDMC-v0): GoRL's six DeepMind Control tasks, dm_control's suite task through
  shimmy's gymnasium env (dm_control/hopper-stand-v0) with its dict observation flattened (FlattenObservation, the
  keys in sorted order), so that every SB3 algorithm's MlpPolicy takes it; 1000 steps, rewards in [0, 1] per step.
  dm_control's own tasks, not MuJoCo Playground's MJX ports that the paper ran (their control steps differ), so the
  returns are comparable in scale (at most 1000), not number for number. Needs dm-control and shimmy (the test
  extra); the suite's models are in the dm-control package (nothing is downloaded). These ids are registered when
  this module is imported, so `rl_zoo3 train --algo ppo ... --gym-packages sb3_expo.datasets.tasks` knows them too.

The format generators below record episodes of the real envs in the official dataset layouts, so the loaders and
the zoo entries are tested here without a download (they are not demonstrations of a policy).
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np

from sb3_expo.common.wrappers import BinarySuccessReward, D4RLAntMazeObservation, SolvedFraction, SuccessInfo

R, G = "r", "g"
# The minari D4RL antmaze datasets' evaluation mazes: one reset cell, one goal cell (D4RL's eval=True layout).
EVAL_MAZES = {
    "medium": [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, R, 0, 1, 1, 0, 0, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 1, 0, 0, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 0, 1, 0, 0, 1, 0, 1],
        [1, 0, 0, 0, 1, 0, G, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ],
    "large": [
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, R, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
        [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
        [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
        [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
        [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1, 0, G, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
}
ANTMAZE_TASKS = {
    "AntMazeLargeDiverseD4RL-v1": "D4RL/antmaze/large-diverse-v1",
    "AntMazeLargePlayD4RL-v1": "D4RL/antmaze/large-play-v1",
    "AntMazeMediumDiverseD4RL-v1": "D4RL/antmaze/medium-diverse-v1",
    "AntMazeMediumPlayD4RL-v1": "D4RL/antmaze/medium-play-v1",
}
DMC_TASKS = {  # GoRL's six tasks (docs/gorl-reference.md section 4): id -> dm_control suite (domain, task)
    "CheetahRunDMC-v0": ("cheetah", "run"),
    "FingerSpinDMC-v0": ("finger", "spin"),
    "FingerTurnHardDMC-v0": ("finger", "turn_hard"),
    "FishSwimDMC-v0": ("fish", "swim"),
    "HopperStandDMC-v0": ("hopper", "stand"),
    "WalkerWalkDMC-v0": ("walker", "walk"),
}
DMC_EPISODE_STEPS = 1000  # dm_control's suite: 1000 control steps (its own time limit; the spec says it too)
ADROIT_TASKS = {  # the paper's horizons (pen 100, door and relocate 200)
    "AdroitPenBinary-v1": ("AdroitHandPen-v1", 100),
    "AdroitDoorBinary-v1": ("AdroitHandDoor-v1", 200),
    "AdroitRelocateBinary-v1": ("AdroitHandRelocate-v1", 200),
}


def make_d4rl_antmaze(dataset: str, **kwargs) -> gym.Env:
    """The dataset's evaluation env (fixed start and goal) with D4RL's observations; the goal ends the episode."""
    from sb3_expo.datasets.minari import minari_env

    return SuccessInfo(D4RLAntMazeObservation(minari_env(dataset, eval_env=True, **kwargs)))


def make_adroit_binary(env_id: str, max_episode_steps: int, **kwargs) -> gym.Env:
    """An Adroit hand task with the paper's binary reward, full-length episodes and the solved-fraction metric."""
    _register_robotics()
    env = gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    return SolvedFraction(SuccessInfo(BinarySuccessReward(env), terminate_on_success=False))


def make_dm_control(domain: str, task: str, **kwargs) -> gym.Env:
    """A DeepMind Control suite task as a gymnasium env with one flat Box observation (shimmy's env, flattened)."""
    import warnings

    try:
        with warnings.catch_warnings():  # dm_control's renderer probe: GLFW's "DISPLAY missing" on a headless machine
            warnings.filterwarnings("ignore", module="glfw")
            import shimmy

            gym.register_envs(shimmy)  # (imports dm_control)
    except ImportError as error:
        raise ImportError(
            "The DeepMind Control tasks need dm-control and shimmy: pip install 'dm-control==1.0.34' 'shimmy[dm-control]' "
            "(or this package's test extra)."
        ) from error
    return gym.wrappers.FlattenObservation(gym.make(f"dm_control/{domain}-{task}-v0", **kwargs))


def register_dm_control_envs() -> None:
    """gymnasium ids for GoRL's DeepMind Control tasks (dm_control is imported only when one is made)."""
    for env_id, (domain, task) in DMC_TASKS.items():
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point="sb3_expo.datasets.tasks:make_dm_control",
                kwargs={"domain": domain, "task": task},
                max_episode_steps=DMC_EPISODE_STEPS,
            )


def register_envs() -> None:
    """gymnasium ids for the paper's tasks (their modules are imported only when one is made)."""
    from sb3_expo.datasets.robosuite_tasks import register_envs as register_robomimic

    register_robomimic()
    register_dm_control_envs()
    for env_id, dataset in ANTMAZE_TASKS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sb3_expo.datasets.tasks:make_d4rl_antmaze", kwargs={"dataset": dataset})
    for env_id, (adroit_id, steps) in ADROIT_TASKS.items():
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point="sb3_expo.datasets.tasks:make_adroit_binary",
                kwargs={"env_id": adroit_id, "max_episode_steps": steps},
            )


def _register_robotics() -> None:
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):  # a notice about the Dense Adroit rewards, which we do not use
        import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


# ----------------------------------------------------------------------------- format generators (tests, smoke runs)
class AlignedPenTarget:
    """Zero actions on AdroitHandPen with the target orientation set to the pen's own at every reset, so some steps
    succeed: episodes of the real env with real success infos (a format check, not a policy)."""

    def __init__(self, env: gym.Env):
        self.env = env

    def reset(self) -> None:
        pen = self.env.unwrapped
        state = pen.get_env_state()
        state["desired_orien"] = pen.data.xquat[pen.obj_body_id].copy()
        pen.set_env_state(state)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(self.env.action_space.shape, np.float32)


class RandomActions:
    """Uniform random actions (the ant cannot be scripted here); a seeded generator, reset with each episode."""

    def __init__(self, env: gym.Env, seed: int = 0):
        self.space, self.seed, self.episode = env.action_space, seed, 0

    def reset(self) -> None:
        self.rng = np.random.default_rng(self.seed + self.episode)
        self.episode += 1

    def __call__(self, obs) -> np.ndarray:
        return self.rng.uniform(self.space.low, self.space.high).astype(np.float32)


def adroit_pen_format(max_episode_steps: int = 50) -> tuple[gym.Env, AlignedPenTarget, None]:
    """The raw AdroitHandPen-v1 (D4RL's dense reward, info['success']), as minari's D4RL/pen datasets record it."""
    _register_robotics()
    env = gym.make("AdroitHandPen-v1", max_episode_steps=max_episode_steps)
    return env, AlignedPenTarget(env), None


def antmaze_large_format(max_episode_steps: int = 100) -> tuple[gym.Env, RandomActions, gym.envs.registration.EnvSpec]:
    """The official minari antmaze layout: data from AntMaze_Large_Diverse_GR-v4 (continuing task, new goals), and an
    evaluation spec with the one-start, one-goal large maze."""
    _register_robotics()
    env = gym.make("AntMaze_Large_Diverse_GR-v4", continuing_task=True, reset_target=True, max_episode_steps=max_episode_steps)
    eval_spec = copy.deepcopy(env.spec)
    eval_spec.kwargs = {**eval_spec.kwargs, "maze_map": EVAL_MAZES["large"]}
    eval_spec.max_episode_steps = 1000
    return env, RandomActions(env), eval_spec


register_dm_control_envs()  # on import: `--gym-packages sb3_expo.datasets.tasks` gives them to every zoo algorithm
