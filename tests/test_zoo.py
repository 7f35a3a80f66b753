"""rl-zoo3 and optuna, end to end, as a user types it: subprocesses with tiny budgets on Pendulum-v1."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from sb3_expo import EXPO
from sb3_expo.datasets import load_demonstrations
from sb3_expo.datasets.tasks import register_envs
from sb3_expo.zoo import default_config

BIN = Path(sys.executable).parent
TINY = ["-params", "learning_starts:50", "gradient_steps:1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run(args, cwd, env=None, check=True, timeout=600):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def zoo(*args, cwd, **kwargs):
    return run([BIN / "rl_zoo3", *map(str, args)], cwd, **kwargs)


def expo_train(*args, cwd, **kwargs):
    return zoo("train", "--algo", "expo", "--env", "Pendulum-v1", *args, cwd=cwd, **kwargs)


def test_train_enjoy_continue_and_record_video(tmp_path):
    expo_train("-n", 120, "-f", "logs", "--seed", 0, "--save-replay-buffer", *TINY, cwd=tmp_path)
    run_dir = tmp_path / "logs/expo/Pendulum-v1_1"
    assert (run_dir / "Pendulum-v1.zip").exists() and (run_dir / "replay_buffer.pkl").exists()
    config = yaml.unsafe_load((run_dir / "Pendulum-v1/config.yml").read_text())
    assert dict(config)["demonstrations"] == "scripted:Pendulum-v1?episodes=5"  # the shipped expo.yml entry

    enjoy = zoo(
        "enjoy", "--algo", "expo", "--env", "Pendulum-v1", "-f", "logs", "--exp-id", 1, "-n", 50, "--no-render", cwd=tmp_path
    )
    assert "Loading" in enjoy.stdout

    cont = expo_train("-n", 60, "-f", "logs", "--seed", 1, "-i", run_dir / "Pendulum-v1.zip", *TINY, cwd=tmp_path)
    assert "Loading replay buffer" in cont.stdout
    continued = EXPO.load(tmp_path / "logs/expo/Pendulum-v1_2/Pendulum-v1.zip")
    first = EXPO.load(run_dir / "Pendulum-v1.zip")
    # training went on from the saved networks and schedule (the zoo itself restarts num_timesteps at 0)
    assert continued._n_base_updates == first._n_base_updates + 60 - 50

    run(
        [
            BIN / "python",
            "-m",
            "rl_zoo3.record_video",
            "--algo",
            "expo",
            "--env",
            "Pendulum-v1",
            "-f",
            "logs",
            "--exp-id",
            2,
            "-n",
            30,
        ],
        tmp_path,
    )
    assert glob.glob(str(tmp_path / "logs/expo/Pendulum-v1_2/videos/*.mp4"))


def test_expo_zoo_command_works_without_the_startup_hook(tmp_path):
    no_hook = {**ENV, "SB3_EXPO_ZOO_HOOK": "0"}
    refused = expo_train(cwd=tmp_path, env=no_hook, check=False)
    assert refused.returncode != 0 and "invalid choice: 'expo'" in refused.stderr  # the hook is what registers it
    run(
        [BIN / "expo-zoo", "train", "--algo", "expo", "--env", "Pendulum-v1", "-n", 60, "-f", "logs", *TINY],
        tmp_path,
        env=no_hook,
    )
    run(
        [BIN / "python", "-m", "rl_zoo3.train", "--algo", "expo", "--env", "Pendulum-v1", "-n", 60, "-f", "logs", *TINY],
        tmp_path,
    )
    assert len(glob.glob(str(tmp_path / "logs/expo/Pendulum-v1_*/Pendulum-v1.zip"))) == 2


def test_local_hyperparams_file_wins_and_conf_wins_over_it(tmp_path, monkeypatch):
    (tmp_path / "hyperparams").mkdir()
    local = yaml.safe_load(Path(default_config()).read_text())
    local["Pendulum-v1"]["learning_starts"] = 77
    (tmp_path / "hyperparams/expo.yml").write_text(yaml.safe_dump(local))
    monkeypatch.chdir(tmp_path)
    assert Path(default_config()).resolve() == (tmp_path / "hyperparams/expo.yml").resolve()
    expo_train("-n", 80, "-f", "logs", "-params", "gradient_steps:1", cwd=tmp_path)
    saved = dict(yaml.unsafe_load((tmp_path / "logs/expo/Pendulum-v1_1/Pendulum-v1/config.yml").read_text()))
    assert saved["learning_starts"] == 77

    local["Pendulum-v1"]["learning_starts"] = 55
    (tmp_path / "other.yml").write_text(yaml.safe_dump(local))
    expo_train("-n", 80, "-f", "logs", "-conf", "other.yml", "-params", "gradient_steps:1", cwd=tmp_path)
    saved = dict(yaml.unsafe_load((tmp_path / "logs/expo/Pendulum-v1_2/Pendulum-v1/config.yml").read_text()))
    assert saved["learning_starts"] == 55


def test_optimize_tunes_edit_beta_and_writes_a_report(tmp_path):
    out = expo_train(
        "-n",
        100,
        "-f",
        "logs",
        "-optimize",
        "--n-trials",
        2,
        "--n-jobs",
        1,
        "--n-evaluations",
        2,
        "--eval-episodes",
        1,
        "--sampler",
        "random",
        "--pruner",
        "median",
        *TINY,
        cwd=tmp_path,
    )
    assert "Number of finished trials:  2" in out.stdout
    report = pd.read_csv(glob.glob(str(tmp_path / "logs/expo/report_Pendulum-v1_2-trials-*.csv"))[0])
    assert len(report) == 2 and set(report["params_edit_beta"]) <= {0.05, 0.1, 0.3, 0.7}


def _tune(tmp_path, storage, study, env, trials=2):
    return subprocess.Popen(
        [
            BIN / "rl_zoo3",
            "train",
            "--algo",
            "expo",
            "--env",
            "Pendulum-v1",
            "-n",
            "100",
            "-f",
            "logs",
            "-optimize",
            "--n-trials",
            str(trials),
            "--n-jobs",
            "1",
            "--n-evaluations",
            "1",
            "--eval-episodes",
            "1",
            "--sampler",
            "random",
            "--pruner",
            "none",
            "--storage",
            storage,
            "--study-name",
            study,
            *TINY,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_workers_share_one_journal_file_study_and_a_trial_can_be_replayed(tmp_path):
    storage = str(tmp_path / "study.log")
    workers = [_tune(tmp_path, storage, "expo-journal", ENV) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    study = optuna.load_study(
        study_name="expo-journal", storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    )
    assert len(study.trials) == 4 and all("edit_beta" in t.params for t in study.trials)
    expo_train(
        "-n",
        60,
        "-f",
        "replay",
        "--storage",
        storage,
        "--study-name",
        "expo-journal",
        "--trial-id",
        1,
        "-params",
        "learning_starts:50",
        cwd=tmp_path,
    )
    saved = dict(yaml.unsafe_load((tmp_path / "replay/expo/Pendulum-v1_1/Pendulum-v1/config.yml").read_text()))
    assert saved["edit_beta"] == study.trials[1].params["edit_beta"]
    assert saved["n_edit_samples"] == study.trials[1].params["n_base_samples"]


def _postgres_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def postgres(tmp_path):
    """A throwaway PostgreSQL server on 127.0.0.1 with password auth (scram-sha-256), stopped afterwards."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (make test installs Debian's postgresql as root)")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(f"/tmp/expo-pg-{os.getpid()}")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o777)
    password = "s3cret-expo-pw"
    (root / "pw").write_text(password)
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run(
        [
            *as_postgres,
            bindir / "initdb",
            "-D",
            root / "data",
            "-U",
            "expo",
            "--pwfile",
            root / "pw",
            "--auth",
            "scram-sha-256",
        ],
        root,
    )
    run(
        [
            *as_postgres,
            bindir / "pg_ctl",
            "-D",
            root / "data",
            "-l",
            root / "log",
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root}",
            "start",
        ],
        root,
    )
    env = {**ENV, "PGPASSWORD": password}
    try:
        run([bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "expo", "optuna"], root, env=env)
        yield f"postgresql://expo@127.0.0.1:{port}/optuna", env, password
    finally:
        run([*as_postgres, bindir / "pg_ctl", "-D", root / "data", "-m", "fast", "stop"], root, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_postgresql_study_without_leaking_the_password(tmp_path, postgres):
    url, env, password = postgres
    # as the guide says: create the study (and optuna's schema) once, then start the workers together; two processes
    # creating optuna's tables at the same moment race (optuna issue #1092)
    run(
        [BIN / "optuna", "create-study", "--storage", url, "--study-name", "expo-pg", "--direction", "maximize"],
        tmp_path,
        env=env,
    )
    workers = [_tune(tmp_path, url, "expo-pg", env) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    os.environ["PGPASSWORD"] = password
    try:
        study = optuna.load_study(study_name="expo-pg", storage=url)
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        attrs = str(study.user_attrs)
    finally:
        del os.environ["PGPASSWORD"]
    assert len(trials) == 4 and all("edit_beta" in t.params for t in trials)
    written = "".join(
        Path(p).read_text(errors="ignore")
        for p in glob.glob(str(tmp_path / "logs/**/*"), recursive=True)
        if Path(p).is_file() and not p.endswith(".pkl")
    )
    assert password not in "".join(outputs) + written + attrs


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the warning given when CUDA is missing")
def test_device_cuda_without_a_gpu_warns_instead_of_falling_back_silently(tmp_path):
    out = expo_train("-n", 20, "-f", "logs", "--device", "cuda", cwd=tmp_path)
    assert "device='cuda' was asked for but CUDA is not available" in out.stderr


def test_pointmaze_entry_trains_on_generated_demonstrations(tmp_path):
    env = {**ENV, "MINARI_DATASETS_PATH": str(tmp_path / "minari")}
    run([BIN / "python", "-m", "sb3_expo.datasets.generate", "pointmaze-umaze", "--episodes", "3"], tmp_path, env=env)
    zoo(
        "train",
        "--algo",
        "expo",
        "--env",
        "PointMaze_UMaze-v3",
        "-n",
        80,
        "-f",
        "logs",
        "-params",
        "learning_starts:40",
        cwd=tmp_path,
        env=env,
    )
    saved = dict(yaml.unsafe_load((tmp_path / "logs/expo/PointMaze_UMaze-v3_1/PointMaze_UMaze-v3/config.yml").read_text()))
    assert saved["demonstrations"] == "minari:sb3-expo/pointmaze-umaze-v0"


def test_the_evaluation_env_gets_the_entrys_env_kwargs(tmp_path):
    """The PointMaze entry's env_kwargs (continuing_task: False) reach the env the zoo evaluates on (EvalCallback and
    -optimize's trials), not only the training env, as rl_zoo3 2.9 alone does; --eval-env-kwargs still wins."""
    import argparse

    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_expo.zoo import register

    register()
    for eval_kwargs, expected in ((None, False), ({"continuing_task": True}, True)):
        manager = ExperimentManager(
            argparse.Namespace(), "expo", "PointMaze_UMaze-v3", str(tmp_path), eval_env_kwargs=eval_kwargs, device="cpu"
        )
        hyperparams, _ = manager.read_hyperparameters()
        manager._preprocess_hyperparams(hyperparams)
        train_env, eval_env = manager.create_envs(1, no_log=True), manager.create_envs(1, eval_env=True, no_log=True)
        assert train_env.envs[0].unwrapped.continuing_task is False
        assert eval_env.envs[0].unwrapped.continuing_task is expected
        train_env.close(), eval_env.close()


def test_yaml_typo_and_unknown_env_give_the_zoos_usual_errors(tmp_path):
    typo = expo_train("-n", 50, "-params", "edit_bta:0.1", cwd=tmp_path, check=False)
    assert typo.returncode != 0 and "unexpected keyword argument 'edit_bta'" in typo.stderr
    unknown = zoo("train", "--algo", "expo", "--env", "NoSuchEnv-v0", "-n", 50, cwd=tmp_path, check=False)
    assert unknown.returncode != 0 and "NoSuchEnv-v0 not found in gym registry" in unknown.stderr


ZOO_KEYS = {
    "policy",
    "n_timesteps",
    "env_wrapper",
    "env_kwargs",
    "normalize",
    "n_envs",
    "frame_stack",
    "callback",
    "vec_env_wrapper",
    "monitor_kwargs",
}


def test_every_yaml_entry_names_real_expo_arguments_and_a_demonstration_source():
    import inspect

    entries = yaml.safe_load(Path(default_config()).read_text())
    entries.pop("evidence")  # the evidence suite's settings (tests/test_evidence.py), not a zoo entry
    expo_args = set(inspect.signature(EXPO).parameters)
    for env_id, params in entries.items():
        assert set(params) <= expo_args | ZOO_KEYS, (env_id, set(params) - expo_args - ZOO_KEYS)
        assert all(not isinstance(v, str) or not v[:1].isdigit() for v in params.values()), env_id  # 1e-3 -> !!float
        source = params.get("demonstrations", "")
        assert env_id == "default" or source.split(":")[0] in {"scripted", "minari", "robomimic"}, env_id
    for env_id in ("MountainCarContinuous-v0", "Pendulum-v1"):  # the CPU entries resolve here and now
        assert len(load_demonstrations(entries[env_id]["demonstrations"], gym.make(env_id))) > 0
    assert entries["AdroitPenBinary-v1"]["edit_beta"] == 0.7 and entries["AntMazeLargeDiverseD4RL-v1"]["num_min_qs"] == 1
    register_envs()
    paper = [k for k, v in entries.items() if v.get("n_timesteps", 0) >= 300_000 and k != "default"]
    assert len(paper) == 8 and all(entries[k]["deterministic_mode"] == "sampled" for k in paper)  # evaluated as the paper
    assert all(k in gym.registry for k in paper)


# ----------------------------------------------------------------------------- the hook costs other zoo users nothing
def test_importing_the_zoo_loads_nothing_of_ours_and_other_algorithms_print_nothing_of_ours(tmp_path):
    timing = run([BIN / "python", "-X", "importtime", "-c", "import rl_zoo3"], tmp_path).stderr
    ours = [line.split("|")[-1].strip() for line in timing.splitlines() if "sb3_expo" in line or "robotics" in line]
    assert ours == ["_sb3_expo_zoo_hook"], ours
    sac = zoo("train", "--algo", "sac", "--env", "Pendulum-v1", "-n", 120, "-f", "logs", cwd=tmp_path)
    text = (sac.stdout + sac.stderr).lower()
    assert "sb3_expo" not in text and "sb3-expo" not in text and "adroit" not in text
    listing = zoo("train", "--help", cwd=tmp_path).stdout
    assert "expo" in listing and "gorl" in listing  # still offered, lazily


def test_a_flow_base_from_the_yaml_policy_kwargs(tmp_path):
    kwargs = "dict(base='flow', diffusion_steps=4, net_arch=[32, 32], n_critics=2, denoiser_width=32, denoiser_blocks=1)"
    expo_train(
        "-n", 80, "-f", "logs", "-params", "learning_starts:50", "gradient_steps:1", f"policy_kwargs:{kwargs}", cwd=tmp_path
    )
    model = EXPO.load(tmp_path / "logs/expo/Pendulum-v1_1/Pendulum-v1.zip")
    assert type(model.base).__name__ == "FlowPolicy" and model.base.n_steps == 4


# ----------------------------------------------------------------------------- crashes and resuming
def _wait_for(condition, process, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before it could be killed:\n{process.stdout.read()[-3000:]}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.02)


def _crash_run(tmp_path, *args, env=None):
    command = [
        BIN / "rl_zoo3",
        "train",
        "--algo",
        "expo",
        "--env",
        "Pendulum-v1",
        "-n",
        400,
        "-f",
        "logs",
        "--save-freq",
        50,
        "--seed",
        0,
        *TINY,
        *args,
    ]
    return subprocess.Popen(
        [str(a) for a in command], cwd=tmp_path, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_killed_run_resumes_from_its_latest_complete_checkpoint_and_the_zoo_reads_its_checkpoints(tmp_path):
    from sb3_expo.common.callbacks import latest_checkpoint

    # 1. killed mid-run (SIGKILL: no chance to save anything on the way out)
    first = _crash_run(tmp_path)
    run1 = tmp_path / "logs/expo/Pendulum-v1_1"

    def reached(steps):
        latest = latest_checkpoint(run1) if run1.exists() else None
        return latest is not None and latest.num_timesteps >= steps

    _wait_for(lambda: reached(150), first)
    first.kill()
    first.wait()
    checkpoint = latest_checkpoint(run1)
    assert checkpoint.model.name == f"rl_model_{checkpoint.num_timesteps}_steps.zip"  # the zoo's names, SB3's for the rest
    assert checkpoint.replay_buffer.name == f"rl_model_replay_buffer_{checkpoint.num_timesteps}_steps.pkl"
    model = EXPO.load(checkpoint.model)
    model.load_replay_buffer(checkpoint.replay_buffer)
    steps = model.num_timesteps
    assert steps == checkpoint.num_timesteps and model.replay_buffer.pos == steps  # every online transition is there
    assert model.replay_buffer.n_demos == 1000 and model._n_base_updates == steps - 50  # demonstrations, schedules

    # 2. the zoo's own commands read the checkpoints
    kept = sorted(int(p.name.split("_")[2]) for p in run1.glob("rl_model_*_steps.zip"))
    assert kept == list(range(50, steps + 1, 50))  # every model, as SB3 keeps them; the newest two buffers
    buffers = {p.name for p in run1.glob("rl_model_replay_buffer_*")}
    assert buffers == {f"rl_model_replay_buffer_{n}_steps.pkl" for n in kept[-2:]}
    enjoy = ["enjoy", "--algo", "expo", "--env", "Pendulum-v1", "-f", "logs", "--exp-id", 1, "-n", 20, "--no-render"]
    zoo(*enjoy, "--load-checkpoint", kept[0], cwd=tmp_path)
    zoo(*enjoy, "--load-last-checkpoint", cwd=tmp_path)
    record = [BIN / "python", "-m", "rl_zoo3.record_video", "--algo", "expo", "--env", "Pendulum-v1", "-f", "logs"]
    run([*record, "--exp-id", 1, "-n", 20, "--load-checkpoint", kept[0]], tmp_path)  # what record_training runs per checkpoint
    assert glob.glob(str(run1 / f"videos/checkpoint-{kept[0]}-*.mp4"))

    # 3. resumed to the end from the checkpoint: the run finishes at the total it was started with, nothing lost or
    # counted twice
    third = _crash_run(tmp_path, "-i", checkpoint.model, "--save-replay-buffer")
    output = third.communicate(timeout=600)[0]
    assert third.returncode == 0, output[-3000:]
    assert f"Resuming from a checkpoint at {steps} of 400 steps" in output
    final = EXPO.load(tmp_path / "logs/expo/Pendulum-v1_2/Pendulum-v1.zip")
    final.load_replay_buffer(tmp_path / "logs/expo/Pendulum-v1_2/replay_buffer.pkl")
    assert final.num_timesteps == 400 and final.replay_buffer.pos == 400 and final._n_base_updates == 350
    assert final.replay_buffer.n_demos == 1000
    last = latest_checkpoint(tmp_path / "logs/expo/Pendulum-v1_2")
    assert last.num_timesteps == 400  # the one due at the last step

    # 4. -i from a run's last checkpoint is the zoo's usual -i: -n more steps (nothing is left of the run to resume)
    more = expo_train("-n", 60, "-f", "logs", "-i", last.model, *TINY, cwd=tmp_path)
    assert "Resuming" not in more.stdout
    assert EXPO.load(tmp_path / "logs/expo/Pendulum-v1_3/Pendulum-v1.zip").num_timesteps == 60


def test_parallel_train_callback_is_refused_before_the_run_starts(tmp_path):
    refused = expo_train(
        "-n", 60, "-f", "logs", "-params", "learning_starts:50", "callback:'rl_zoo3.callbacks.ParallelTrainCallback'",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "EXPO does not support rl_zoo3's ParallelTrainCallback" in refused.stderr
    assert "AttributeError" not in refused.stderr and not (tmp_path / "logs/expo/Pendulum-v1_1/Pendulum-v1.zip").exists()


def test_a_paper_entry_trains_on_its_task_and_logs_its_metric(tmp_path, monkeypatch):
    """AdroitPenBinary-v1 from expo.yml on a locally made D4RL-format dataset (the real data cannot be fetched here),
    shrunk with -params: binary rewards, full episodes, solved_fraction in the Monitor and the evaluations."""
    env = {**ENV, "MINARI_DATASETS_PATH": str(tmp_path / "minari")}
    missing = zoo(
        "train", "--algo", "expo", "--env", "AdroitPenBinary-v1", "-n", 10, "-f", "no-data", cwd=tmp_path, env=env, check=False
    )
    assert missing.returncode != 0 and "generate adroit-pen-format --dataset-id D4RL/pen/human-v2" in missing.stderr
    generate = [BIN / "python", "-m", "sb3_expo.datasets.generate", "adroit-pen-format", "--episodes", "2"]
    run([*generate, "--dataset-id", "D4RL/pen/human-v2"], tmp_path, env=env)
    small = "dict(net_arch=[32, 32], n_critics=2, denoiser_width=32, denoiser_blocks=1, edit_dropout=0.1)"
    zoo(
        "train",
        "--algo",
        "expo",
        "--env",
        "AdroitPenBinary-v1",
        "-n",
        200,
        "-f",
        "logs",
        "--eval-freq",
        200,
        "--eval-episodes",
        1,
        "-params",
        "gradient_steps:1",
        "batch_size:32",
        "n_base_samples:2",
        "n_edit_samples:2",
        f"policy_kwargs:{small}",
        cwd=tmp_path,
        env=env,
    )
    run_dir = tmp_path / "logs/expo/AdroitPenBinary-v1_1"
    monitor = pd.read_csv(run_dir / "0.monitor.csv", skiprows=1)
    assert list(monitor["l"]) == [100, 100] and set(monitor.columns) >= {"is_success", "solved_fraction"}
    assert np.allclose(monitor["r"], -100 * (1 - monitor["solved_fraction"]))  # the binary reward, full length
    with pytest.warns(UserWarning, match="loaded without its demonstrations"):  # elsewhere, without the dataset: acts
        model = EXPO.load(run_dir / "AdroitPenBinary-v1.zip")
    assert model.policy.deterministic_mode == "sampled" and model.edit_beta == 0.7
    model.predict(np.zeros(45, np.float32))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    assert EXPO.load(run_dir / "AdroitPenBinary-v1.zip").replay_buffer.n_demos == 100  # here, with it (2 x 50 steps)


# ----------------------------------------------------------------------------- GoRL through the same three entry points
GORL_TINY = ["n_steps:64", "batch_size:64", "n_epochs:2", "decoder_fit_steps:50", "stage_evals:1", "eval_episodes:1"]


def gorl_train(*args, cwd, params=(), **kwargs):
    return zoo("train", "--algo", "gorl", "--env", "Pendulum-v1", *args, "-params", *GORL_TINY, *params, cwd=cwd, **kwargs)


def test_gorl_trains_enjoys_and_resumes_its_stage_from_a_checkpoint(tmp_path):
    from sb3_expo import GoRL
    from sb3_expo.common.callbacks import latest_checkpoint

    out = gorl_train("-n", 1200, "-f", "logs", "--seed", 0, "--save-freq", 300, cwd=tmp_path)
    assert (
        "| gorl/" in out.stdout and "decoder_val_loss" in out.stdout and "stage_eval_return" in out.stdout
    )  # progress on stdout
    run1 = tmp_path / "logs/gorl/Pendulum-v1_1"
    model = GoRL.load(run1 / "Pendulum-v1.zip")
    assert model.stage == 3 and [h["stage"] for h in model.stage_history] == [0, 1, 2]  # all four stages ran
    assert 1200 - model.stage_history[-1]["ended_at"] >= 3 * 64  # the last stage (from its data on) trained 3 rollouts
    assert model.policy.decoder.fitted and model.n_steps == 64  # the -params reached GoRL
    assert dict(yaml.unsafe_load((run1 / "Pendulum-v1/config.yml").read_text()))["n_timesteps"] == 100_000  # gorl.yml

    zoo("enjoy", "--algo", "gorl", "--env", "Pendulum-v1", "-f", "logs", "--exp-id", 1, "-n", 50, "--no-render", cwd=tmp_path)

    # a checkpoint from the middle of the run continues in its stage, on the run's own schedule, to the run's total
    checkpoints = sorted(run1.glob("rl_model_*_steps.zip"), key=lambda p: int(p.name.split("_")[2]))
    middle = GoRL.load(checkpoints[0])
    assert 0 < middle.num_timesteps < 1200 and middle.stage < 3
    out = gorl_train("-n", 1200, "-f", "logs", "--seed", 1, "-i", checkpoints[0], cwd=tmp_path)
    assert f"Resuming from a checkpoint at {middle.num_timesteps} of 1200 steps" in out.stdout
    resumed = GoRL.load(tmp_path / "logs/gorl/Pendulum-v1_2/Pendulum-v1.zip")
    assert resumed.stage == 3 and 1200 <= resumed.num_timesteps < 1200 + 64 and resumed.stage_ends == model.stage_ends
    assert resumed.stage_history[: len(middle.stage_history)] == middle.stage_history  # nothing redone
    assert latest_checkpoint(run1) is not None


def test_gorl_with_a_budget_too_small_for_its_stages_trains_stage_0_and_says_so(tmp_path):
    from sb3_expo import GoRL

    out = gorl_train("-n", 160, "-f", "logs", "--seed", 0, cwd=tmp_path)  # 2.5 rollouts of 64: no room for a refit
    assert "too few for its 4 stage(s)" in out.stderr and "training stage 0 only, 3 PPO update(s)" in out.stderr
    model = GoRL.load(tmp_path / "logs/gorl/Pendulum-v1_1/Pendulum-v1.zip")
    assert model.stage == 0 and model.stage_history == [] and 160 <= model.num_timesteps < 160 + 64
    assert model._n_updates > 0  # a trained latent policy, not a fresh one


def test_gorl_optimize_tunes_its_main_knobs(tmp_path):
    out = gorl_train(
        "-n", 512, "-f", "logs", "-optimize", "--n-trials", 2, "--n-jobs", 1, "--n-evaluations", 1,
        "--eval-episodes", 1, "--sampler", "random", "--pruner", "none", cwd=tmp_path,
    )  # fmt: skip
    assert "Number of finished trials:  2" in out.stdout
    report = pd.read_csv(glob.glob(str(tmp_path / "logs/gorl/report_Pendulum-v1_2-trials-*.csv"))[0])
    assert len(report) == 2 and report["value"].notna().all()
    assert set(report["params_stage_split"]) <= {"official", "quarters", "halves"}
    assert set(report["params_decoder_steps"]) <= {2, 5, 10}


def test_rlpd_trains_enjoys_and_tunes_through_the_zoo(tmp_path):
    from sb3_expo import RLPD

    args = [
        "train",
        "--algo",
        "rlpd",
        "--env",
        "Pendulum-v1",
        "-f",
        "logs",
        "-params",
        "learning_starts:50",
        "gradient_steps:1",
    ]
    zoo(*args, "-n", 150, "--seed", 0, cwd=tmp_path)
    model = RLPD.load(tmp_path / "logs/rlpd/Pendulum-v1_1/Pendulum-v1.zip")
    assert model.critic.q_networks.n_critics == 4 and model.demonstrations == "scripted:Pendulum-v1?episodes=5"  # rlpd.yml
    zoo("enjoy", "--algo", "rlpd", "--env", "Pendulum-v1", "-f", "logs", "--exp-id", 1, "-n", 50, "--no-render", cwd=tmp_path)
    out = zoo(*args, "-n", 100, "-optimize", "--n-trials", 2, "--n-evaluations", 1, "--eval-episodes", 1,
              "--sampler", "random", "--pruner", "none", cwd=tmp_path)  # fmt: skip
    assert "Number of finished trials:  2" in out.stdout
    report = pd.read_csv(glob.glob(str(tmp_path / "logs/rlpd/report_Pendulum-v1_2-trials-*.csv"))[0])
    assert set(report["params_num_min_qs"]) <= {1, 2}


def test_gorl_and_ppo_train_on_the_papers_dmc_task_through_the_zoo(tmp_path):
    """HopperStandDMC-v0 (GoRL's headline task, flat observations): `--algo gorl` with its gorl.yml entry (x10 rewards),
    and SB3's PPO baseline with `--gym-packages` and -conf hyperparams/ppo_dmc.yml."""
    from sb3_expo import GoRL

    env = ["--env", "HopperStandDMC-v0", "-f", "logs", "--seed", 0]
    tiny = ["n_steps:64", "batch_size:64", "n_epochs:1", "decoder_fit_steps:20", "stage_evals:1", "eval_episodes:1"]
    out = zoo("train", "--algo", "gorl", *env, "-n", 700, "-params", *tiny, cwd=tmp_path)
    assert "training stages 0-1" in out.stderr  # 700 steps: two stages (and a refit) of the four
    model = GoRL.load(tmp_path / "logs/gorl/HopperStandDMC-v0_1/HopperStandDMC-v0.zip")
    assert model.stage == 1 and model.policy.decoder.fitted and model.reward_scale == 10.0
    assert model.observation_space.shape == (15,) and model.batch_size == 64  # flat observations; -params won over gorl.yml
    config = dict(yaml.unsafe_load((tmp_path / "logs/gorl/HopperStandDMC-v0_1/HopperStandDMC-v0/config.yml").read_text()))
    assert config["n_timesteps"] == 1_000_000 and config["decoder_fit_steps"] == 20  # gorl.yml's entry, -params over it
    ppo_dmc = Path(__file__).resolve().parents[1] / "hyperparams" / "ppo_dmc.yml"
    params = ["-params", "n_steps:128", "batch_size:64", "n_epochs:1"]
    zoo("train", "--algo", "ppo", *env, "-n", 128, "--gym-packages", "sb3_expo.datasets.tasks", "-conf", ppo_dmc, *params,
        cwd=tmp_path)  # fmt: skip
    config = dict(yaml.unsafe_load((tmp_path / "logs/ppo/HopperStandDMC-v0_1/HopperStandDMC-v0/config.yml").read_text()))
    assert config["clip_range"] == 0.1 and "SiLU" in config["policy_kwargs"]  # ppo_dmc.yml's entry
