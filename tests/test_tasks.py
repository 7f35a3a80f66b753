"""The paper's tasks as the paper ran them: one env id = env + task wrappers + the same change to demonstrations.

Datasets are made here in the official minari layouts from the real envs (sb3_expo.datasets.generate *-format).
"""

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from sb3_expo import EXPO
from sb3_expo.common.callbacks import InfoEvalCallback
from sb3_expo.common.wrappers import RewardShift
from sb3_expo.datasets import load_demonstrations
from sb3_expo.datasets.experts import rollout_episodes
from sb3_expo.datasets.generate import generate
from sb3_expo.datasets.tasks import AlignedPenTarget, register_envs

from .conftest import SMALL

register_envs()


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_adroit_demonstrations_get_the_binary_reward_the_online_task_gives(minari_root):
    """D4RL's pen data keep the dense shaped reward; the paper trains on success - 1 for both halves of each batch."""
    generate("adroit-pen-format", episodes=3, seed=0, dataset_id="D4RL/pen/human-v2")
    raw = load_demonstrations("minari:D4RL/pen/human-v2")
    assert raw.successes is not None and 0 < raw.successes.mean() < 1 and len(np.unique(raw.rewards)) > 2  # dense

    task = gym.make("AdroitPenBinary-v1", max_episode_steps=50)  # the zoo entry's env, shortened like the data
    model = EXPO("MlpPolicy", task, demonstrations="minari:D4RL/pen/human-v2", seed=0, **SMALL)
    demo_rewards = model.replay_buffer.demo_rewards[:, 0]
    np.testing.assert_array_equal(demo_rewards, raw.successes - 1.0)

    # the same episodes replayed online through the task env: the rewards the agent gets there are the same
    episodes, _ = rollout_episodes(task, AlignedPenTarget(task), 3, seed=0)
    online = np.concatenate([e["rewards"] for e in episodes])
    np.testing.assert_array_equal(online, demo_rewards)
    assert not model.replay_buffer.demo_dones.any()  # Adroit never terminates: success does not end the episode


def test_adroit_runs_its_full_length_after_a_success_and_logs_the_solved_fraction(tmp_path):
    env = gym.make("AdroitPenBinary-v1")
    expert = AlignedPenTarget(env)
    env.reset(seed=0)
    expert.reset()
    solved, steps, done, info = 0, 0, False, {}
    while not done:
        _, reward, terminated, truncated, info = env.step(expert(None))
        steps += 1
        solved += int(info["is_success"])
        assert reward == float(info["is_success"]) - 1.0
        done = terminated or truncated
    assert steps == 100 and solved > 0 and not terminated  # the paper's pen horizon, past the first success
    assert info["solved_fraction"] == pytest.approx(solved / 100)

    # the Monitor the zoo adds wraps the whole task, so it logs the binary return and the solved fraction
    monitor = {"info_keywords": ("is_success", "solved_fraction")}
    venv = make_vec_env("AdroitPenBinary-v1", n_envs=1, monitor_dir=str(tmp_path), monitor_kwargs=monitor)
    model = EXPO("MlpPolicy", venv, seed=0, **SMALL)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    evaluation = make_vec_env("AdroitPenBinary-v1", n_envs=1)
    callback = InfoEvalCallback(evaluation, n_eval_episodes=2, eval_freq=100)
    callback.info_keywords = ("solved_fraction",)
    model.learn(100, callback=callback)
    header, row = (tmp_path / "0.monitor.csv").read_text().splitlines()[1:3]
    assert header.split(",")[-2:] == ["is_success", "solved_fraction"] and row.split(",")[1] == "100"
    assert float(row.split(",")[0]) == pytest.approx(-100 * (1 - float(row.split(",")[-1])))  # return = -(T - solved)
    logged = pd.read_csv(tmp_path / "log/progress.csv")
    fraction = logged["eval/solved_fraction"].dropna()
    assert len(fraction) == 1 and 0 <= fraction.iloc[0] <= 1
    assert fraction.iloc[0] == pytest.approx(1 + logged["eval/mean_reward"].dropna().iloc[0] / 100)  # same episodes


def test_antmaze_is_evaluated_on_the_datasets_own_maze_with_d4rl_observations(minari_root):
    generate("antmaze-large-format", episodes=3, seed=0, dataset_id="D4RL/antmaze/large-diverse-v1")
    raw = load_demonstrations("minari:D4RL/antmaze/large-diverse-v1", flatten=False)
    assert set(raw.observations) == {"achieved_goal", "desired_goal", "observation"}
    goals = {tuple(np.round(g, 3)) for g in raw.observations["desired_goal"]}
    assert len(goals) > 1  # the data were recorded with a new goal per episode ("diverse")

    env = RewardShift(gym.make("AntMazeLargeDiverseD4RL-v1"))
    assert env.observation_space.shape == (29,) and env.spec.max_episode_steps == 1000
    maze = env.unwrapped.maze
    cells = set()
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_allclose(obs[:2], env.unwrapped.data.qpos[:2])  # D4RL's layout: x, y first
        cells.add((tuple(maze.cell_xy_to_rowcol(obs[:2])), tuple(maze.cell_xy_to_rowcol(env.unwrapped.goal))))
    assert cells == {((1, 1), (7, 9))}  # the same start and goal cells every episode (the dataset's eval maze)

    model = EXPO("MlpPolicy", env, demonstrations="minari:D4RL/antmaze/large-diverse-v1", seed=0, **SMALL)
    buffer = model.replay_buffer
    np.testing.assert_allclose(
        buffer.demo_observations,
        np.concatenate([raw.observations["achieved_goal"], raw.observations["observation"]], 1),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(buffer.demo_rewards[:, 0], raw.rewards - 1.0)  # r - 1, once
    shifted_twice = load_demonstrations("minari:D4RL/antmaze/large-diverse-v1?reward_shift=-1", env)
    np.testing.assert_array_equal(shifted_twice.rewards, raw.rewards - 1.0)  # the option and the wrapper: one shift


def test_success_in_a_demonstration_terminates_it_as_online(minari_root):
    """The recorded success flag becomes a termination where the online task ends the episode on success."""
    generate("antmaze-large-format", episodes=2, seed=0, dataset_id="D4RL/antmaze/large-diverse-v1")
    raw = load_demonstrations("minari:D4RL/antmaze/large-diverse-v1", flatten=False)
    raw.successes = np.zeros(len(raw), bool)
    raw.successes[[5, 50]] = True
    demos = load_demonstrations(raw, gym.make("AntMazeLargeDiverseD4RL-v1"))
    assert np.flatnonzero(demos.terminations).tolist() == [5, 50]
