"""Demonstration loaders on data this project makes itself (no hub downloads)."""

import json

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest
from gymnasium import spaces

from sb3_expo import EXPO
from sb3_expo.datasets import load_demonstrations
from sb3_expo.datasets.robomimic import robomimic_env_meta
from sb3_expo.demo import CPU_CONFIG

from .conftest import SMALL


class DictPendulum(gym.ObservationWrapper):
    """Pendulum with Dict observations {'angle': cos/sin, 'velocity'} to exercise flattening."""

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = spaces.Dict(
            {"angle": spaces.Box(-1, 1, (2,), np.float32), "velocity": spaces.Box(-8, 8, (1,), np.float32)}
        )

    def observation(self, obs):
        return {"angle": obs[:2], "velocity": obs[2:]}


def _episodes(env, n, steps, terminate_at=None):
    from minari.data_collector import EpisodeBuffer

    buffers, rng = [], np.random.default_rng(0)
    for ep in range(n):
        obs, _ = env.reset(seed=ep)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        for t in range(steps):
            action = rng.uniform(-2, 2, size=(1,)).astype(np.float32)
            obs, reward, _, _, _ = env.step(action)
            done = terminate_at is not None and t == terminate_at
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terms.append(done)
            truncs.append(not done and t == steps - 1)
            if done:
                break
        if isinstance(observations[0], dict):
            observations = {k: np.array([o[k] for o in observations]) for k in observations[0]}
        else:
            observations = np.array(observations)
        buffers.append(
            EpisodeBuffer(
                observations=observations,
                actions=np.array(actions),
                rewards=rewards,
                terminations=terms,
                truncations=truncs,
                infos={},
            )
        )
    return buffers


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_minari_dataset_by_id_terminations_and_truncations(minari_root):
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    minari.create_dataset_from_buffers("sb3-expo/pendulum-test-v0", _episodes(env, 3, 20, terminate_at=9), env=env)
    demos = load_demonstrations("minari:sb3-expo/pendulum-test-v0", env)
    assert len(demos) == 30 and demos.n_episodes == 3  # each episode stopped at its 10th step
    assert demos.terminations.sum() == 3 and demos.truncations.sum() == 0
    np.testing.assert_allclose(demos.next_observations[:9], demos.observations[1:10])  # obs / next_obs aligned
    model = EXPO("MlpPolicy", env, demonstrations="minari:sb3-expo/pendulum-test-v0", seed=0, **SMALL)
    assert model.replay_buffer.n_demos == 30


def test_minari_dict_observations_flattened_in_key_order_or_kept(minari_root):
    env = DictPendulum(gym.make("Pendulum-v1", max_episode_steps=15))
    minari.create_dataset_from_buffers("sb3-expo/dict-pendulum-v0", _episodes(env, 2, 15), env=env)
    flat = load_demonstrations("minari:sb3-expo/dict-pendulum-v0")
    assert flat.observations.shape == (30, 3) and flat.truncations.sum() == 2
    kept = load_demonstrations("minari:sb3-expo/dict-pendulum-v0", flatten=False)
    np.testing.assert_allclose(
        flat.observations, np.concatenate([kept.observations["angle"], kept.observations["velocity"]], 1)
    )
    kept.validate(env.observation_space, env.action_space)  # dicts fit a MultiInputPolicy env as they are


def test_missing_minari_dataset_says_where_it_looked_and_how_to_make_one(minari_root):
    expected = r"not on this machine: looked in .*minari.*MINARI_DATASETS_PATH=.*generate pointmaze-umaze\)"
    with pytest.raises(FileNotFoundError, match=expected):
        load_demonstrations("minari:sb3-expo/pointmaze-umaze-v0")


def _write_robomimic(path, n_demos=3, steps=5, keys=("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")):
    sizes = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 10}
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20}})
        for i in range(n_demos):
            demo = data.create_group(f"demo_{i}")
            for group in ("obs", "next_obs"):
                for key in keys:
                    demo.create_dataset(f"{group}/{key}", data=rng.normal(size=(steps, sizes[key])) + i)
            demo.create_dataset("actions", data=rng.uniform(-1, 1, (steps, 7)))
            demo.create_dataset("rewards", data=np.r_[np.zeros(steps - 1), 1.0])
            demo.create_dataset("dones", data=np.r_[np.zeros(steps - 1), 1])
        f.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_2"]))


def test_robomimic_hdf5_keys_filter_and_first_n_demos(tmp_path):
    path = tmp_path / "lift.hdf5"
    _write_robomimic(path, n_demos=3)
    demos = load_demonstrations(f"robomimic:{path}")
    assert demos.observations.shape == (15, 19) and demos.actions.shape == (15, 7)  # 3+4+2+10 in EXPO's key order
    assert demos.terminations.sum() == 3  # each demo ends solved
    assert len(load_demonstrations(f"robomimic:{path}?n_demos=2")) == 10
    train = load_demonstrations(f"robomimic:{path}?filter_key=train")
    assert len(train) == 10 and train.observations[5:, 0].mean() > 1.0  # demo_0 then demo_2 (shifted by +2)
    pos = load_demonstrations(f"robomimic:{path}?obs_keys=robot0_eef_pos")
    assert pos.observations.shape == (15, 3)
    assert robomimic_env_meta(path)["env_name"] == "Lift"


def test_robomimic_bad_files_name_the_problem(tmp_path):
    _write_robomimic(tmp_path / "no_object.hdf5", keys=("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"))
    with pytest.raises(ValueError, match=r"observation keys \['object'\] are not in .*no_object.hdf5 demo_0/obs"):
        load_demonstrations(f"robomimic:{tmp_path / 'no_object.hdf5'}")
    with h5py.File(tmp_path / "empty.hdf5", "w"):
        pass
    with pytest.raises(ValueError, match="holds no demonstrations"):
        load_demonstrations(f"robomimic:{tmp_path / 'empty.hdf5'}")
    with pytest.raises(ValueError, match=r"no filter key 'valid'; it has \['train'\]"):
        load_demonstrations(f"robomimic:{tmp_path / 'no_object.hdf5'}?filter_key=valid&obs_keys=robot0_eef_pos")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_demonstrations(f"robomimic:{tmp_path / 'missing.hdf5'}")


def test_npz_arrays_and_unknown_sources(tmp_path):
    n = 12
    np.savez(
        tmp_path / "d4rl.npz",
        observations=np.zeros((n, 3)),
        actions=np.zeros((n, 1)),
        rewards=np.ones(n),
        next_observations=np.zeros((n, 3)),
        terminals=np.arange(n) == n - 1,
        timeouts=np.arange(n) == 5,
    )
    demos = load_demonstrations(str(tmp_path / "d4rl.npz"), gym.make("Pendulum-v1"))
    assert demos.n_episodes == 2 and demos.terminations.sum() == 1
    np.savez(tmp_path / "partial.npz", observations=np.zeros((n, 3)))
    with pytest.raises(ValueError, match=r"lacks the arrays \['actions', 'next_observations', 'rewards', 'terminals'\]"):
        load_demonstrations(str(tmp_path / "partial.npz"))
    with pytest.raises(ValueError, match="unknown demonstration source 'ftp://x'"):
        load_demonstrations("ftp://x")


def test_offline_to_online_on_pointmaze_with_generated_demonstrations(minari_root, tmp_path):
    """generate -> minari dataset -> pretrain (imitation) -> evaluate -> learn, with success from the maze's goal."""
    from stable_baselines3.common.callbacks import EvalCallback

    from sb3_expo.datasets.generate import generate
    from sb3_expo.datasets.pointmaze import make_pointmaze

    assert generate("pointmaze-umaze", episodes=10) == "sb3-expo/pointmaze-umaze-v0"
    env = make_pointmaze("PointMaze_UMaze-v3")
    model = EXPO(
        "MultiInputPolicy",
        env,
        demonstrations="minari:sb3-expo/pointmaze-umaze-v0",
        ema_tau=0.01,
        seed=0,
        **{**CPU_CONFIG, "learning_starts": 0},
    )

    def success_rate(n=10):
        eval_env, wins = make_pointmaze("PointMaze_UMaze-v3"), 0
        for i in range(n):
            obs, _ = eval_env.reset(seed=1000 + i)
            done = False
            while not done:
                obs, _, terminated, truncated, info = eval_env.step(model.predict(obs)[0])
                done = terminated or truncated
            wins += info["is_success"]
        return wins / n

    before = success_rate()
    model.pretrain(1000, log_interval=10**6)
    pretrained = success_rate()
    assert before <= 0.3 and pretrained >= 0.6  # imitation of 10 scripted demonstrations already solves most mazes
    callback = EvalCallback(make_pointmaze("PointMaze_UMaze-v3"), n_eval_episodes=3, eval_freq=150, log_path=str(tmp_path))
    model.learn(300, callback=callback)
    assert np.load(tmp_path / "evaluations.npz")["successes"].shape == (2, 3)


def test_lift_generator_writes_a_robomimic_file_that_loads_and_rebuilds_its_env(tmp_path):
    pytest.importorskip("robosuite", reason="robosuite is in the [robomimic] extra (installed by make test)")
    from sb3_expo.datasets.generate import generate
    from sb3_expo.datasets.robosuite_tasks import robomimic_env

    path = tmp_path / "lift.hdf5"
    generate("lift", episodes=2, out=path)
    demos = load_demonstrations(f"robomimic:{path}")
    assert demos.observations.shape[1] == 19 and demos.terminations.sum() == 2  # both scripted lifts succeed
    env = robomimic_env(str(path))
    demos.validate(env.observation_space, env.action_space)
    model = EXPO("MlpPolicy", env, demonstrations=f"robomimic:{path}?n_demos=1", seed=0, **SMALL)
    model.learn(25)
    assert model.replay_buffer.n_demos < len(demos)


def test_lift_resets_are_reproducible_from_the_seed():
    pytest.importorskip("robosuite", reason="robosuite is in the [robomimic] extra (installed by make test)")
    from sb3_expo.datasets.robosuite_tasks import RobosuiteEnv

    first, second = RobosuiteEnv("Lift"), RobosuiteEnv("Lift")
    a, b, c = first.reset(seed=3)[0], second.reset(seed=3)[0], first.reset(seed=4)[0]
    assert np.array_equal(a, b) and not np.allclose(a, c)  # same cube placement for the same seed only


def test_reward_wrappers_apply_alike_to_online_data_and_demonstrations():
    from sb3_expo.common.wrappers import BinarySuccessReward, RewardShift, SuccessInfo, transform_demonstrations

    class Goal(gym.Wrapper):  # succeeds on the third step, like a maze goal
        def reset(self, **kwargs):
            self.t = 0
            return self.env.reset(**kwargs)

        def step(self, action):
            self.t += 1
            obs, _, term, trunc, info = self.env.step(action)
            return obs, float(self.t == 3), term, trunc, {**info, "success": self.t == 3}

    shifted = RewardShift(SuccessInfo(Goal(gym.make("Pendulum-v1"))), shift=-1.0)
    shifted.reset(seed=0)
    steps = [shifted.step(np.zeros(1, np.float32)) for _ in range(3)]
    assert [s[1] for s in steps] == [-1.0, -1.0, 0.0]  # AntMaze's r - 1: sparse 0/1 becomes -1/0
    assert steps[-1][2] and steps[-1][4]["is_success"] and not steps[0][2]  # success terminates
    original = load_demonstrations("scripted:Pendulum-v1?episodes=1").rewards
    demos = transform_demonstrations(shifted, load_demonstrations("scripted:Pendulum-v1?episodes=1"))
    np.testing.assert_allclose(demos.rewards, original - 1.0, rtol=1e-6)  # the demonstrations get the same shift
    binary = BinarySuccessReward(Goal(gym.make("Pendulum-v1")))
    binary.reset(seed=0)
    assert [binary.step(np.zeros(1, np.float32))[1] for _ in range(3)] == [-1.0, -1.0, 0.0]  # Adroit: success - 1


def test_minari_recovers_the_recording_env(minari_root):
    from sb3_expo.datasets.minari import minari_env

    env = gym.make("Pendulum-v1", max_episode_steps=10)
    minari.create_dataset_from_buffers("sb3-expo/recover-v0", _episodes(env, 1, 10), env=env)
    recovered = minari_env("sb3-expo/recover-v0")
    assert recovered.spec.id == "Pendulum-v1" and recovered.observation_space == env.observation_space


def test_minari_by_path_and_reward_shift_option(minari_root):
    env = gym.make("Pendulum-v1", max_episode_steps=10)
    minari.create_dataset_from_buffers("sb3-expo/by-path-v0", _episodes(env, 2, 10), env=env)
    by_id = load_demonstrations("minari:sb3-expo/by-path-v0")
    by_path = load_demonstrations(f"minari:{minari_root / 'sb3-expo/by-path-v0'}")
    np.testing.assert_array_equal(by_id.observations, by_path.observations)
    shifted = load_demonstrations("minari:sb3-expo/by-path-v0?reward_shift=-1")
    np.testing.assert_allclose(shifted.rewards, by_id.rewards - 1.0, rtol=1e-6)
