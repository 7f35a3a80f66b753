"""The reference driver's parts that need nothing from its JAX venv (benchmarks/reference/, issue #23): the translation
of the evidence block against hyperparams/expo.yml and our constructors' defaults, translation.md being current, and
ours.py (demonstration export, env server) that the driver calls in this venv."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "reference"
sys.path.insert(0, str(REFERENCE))

import translation  # noqa: E402
from wire import read_message, write_message  # noqa: E402

TASK_DIMS = {"MountainCarContinuous-v0": 1, "PointMaze_UMaze-v3": 2, "PointMaze_Medium-v3": 2, "RobomimicLift-v0": 7}


def defaults(cls) -> dict:
    return {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if v.default is not inspect._empty}


def test_our_defaults_are_the_constructors():
    from sb3_expo import EXPO, RLPD
    from sb3_expo.expo.policies import ExpoPolicy
    from sb3_expo.rlpd.policies import RLPDPolicy

    for cls, key in ((EXPO, "expo"), (ExpoPolicy, "expo_policy"), (RLPD, "rlpd")):
        actual = defaults(cls)
        for name, value in translation.OURS_DEFAULTS[key].items():
            assert actual[name] == value, f"{cls.__name__}.{name}: {actual[name]!r}, translation.py says {value!r}"
    rlpd_policy = defaults(RLPDPolicy)
    assert rlpd_policy["n_critics"] == 10 and rlpd_policy["critic_layer_norm"] is True
    assert "[256, 256]" in inspect.getsource(RLPDPolicy.__init__)  # translation.RLPD_NET_ARCH
    assert "[256, 256, 256]" in inspect.getsource(ExpoPolicy.__init__)  # translation.EXPO_NET_ARCH


@pytest.mark.parametrize("scale", list(translation.load_block()))
def test_every_scale_translates(scale):
    """No setting of ours without a translation; both learners, every task of the scale."""
    config = translation.load_block()[scale]
    for task in config["tasks"]:
        for algo in translation.REFERENCES:
            if ("expo" if algo == "expo" else "rlpd") not in config:
                continue
            tr = translation.translate(algo, config, task, TASK_DIMS.get(task, 2))
            assert all(len(row) == 4 and row[3] for row in tr.rows)


def test_cpu_scale_one_to_one():
    config = translation.load_block()["cpu"]
    expo, rlpd = config["expo"], config["rlpd"]
    for task, dim in TASK_DIMS.items():
        tr = translation.translate("expo", config, task, dim)
        kw, loop = tr.create_kwargs, tr.loop
        pk = expo["policy_kwargs"]
        assert kw["hidden_dims"] == tuple(pk["net_arch"]) and kw["num_qs"] == pk["n_critics"]
        assert kw["actor_num_blocks"] == pk["denoiser_blocks"]
        assert tr.widths == {"denoiser_width": pk["denoiser_width"], "cond_widths": (pk["denoiser_width"],) * 2}
        assert (kw["N"], kw["n_edit_samples"]) == (expo["n_base_samples"], expo["n_edit_samples"])
        assert kw["num_min_qs"] == 2 and kw["edit_action_scale"] == 0.05 and kw["T"] == 10
        assert kw["actor_tau"] == 0.001 and kw["decay_steps"] == 3_000_000 and kw["tau"] == 0.005
        assert kw["target_entropy"] is None and kw["backup_entropy"] is False and kw["critic_layer_norm"] is True
        assert (loop["batch_size"], loop["utd_ratio"], loop["start_training"]) == (
            expo["batch_size"],
            expo["gradient_steps"],
            expo["learning_starts"],
        )
        task_cfg = config["tasks"][task]
        assert (loop["max_steps"], loop["eval_interval"], loop["demos"]) == (
            task_cfg["steps"],
            task_cfg["eval_every"],
            task_cfg["demos"],
        )
        assert loop["eval_episodes"] == config["eval_episodes"] and loop["offline_ratio"] == 0.5
        unmatched = {u.split(":")[0] for u in tr.unmatched}
        assert unmatched == {"bound on log alpha", "randomness", "random numbers"}, unmatched

        tr = translation.translate("rlpd", config, task, dim)
        kw = tr.create_kwargs
        assert (
            kw["hidden_dims"] == tuple(rlpd["policy_kwargs"]["net_arch"])
            and kw["num_qs"] == rlpd["policy_kwargs"]["n_critics"]
        )
        assert kw["num_min_qs"] == 2 and kw["backup_entropy"] is True and kw["critic_layer_norm"] is True
        assert tr.loop["utd_ratio"] == rlpd["gradient_steps"] and tr.loop["batch_size"] == rlpd["batch_size"]
        assert {u.split(":")[0] for u in tr.unmatched} == {"actor init", "random numbers"}


def test_translation_md_is_current():
    """benchmarks/results/parity/translation.md holds the tables translation.py makes now (driver.py translate)."""
    text = (ROOT / "benchmarks" / "results" / "parity" / "translation.md").read_text()
    config = translation.load_block()["cpu"]
    for algo in translation.REFERENCES:
        table = translation.translate(algo, config, "MountainCarContinuous-v0", 1).table()
        assert table in text, f"translation.md is stale for {algo}: run driver.py translate"


def test_ours_exports_and_serves(tmp_path):
    """ours.py: the evidence suite's demonstrations as an .npz, and the env server's requests."""
    out = tmp_path / "demos.npz"
    ours = [sys.executable, str(REFERENCE / "ours.py")]
    subprocess.run([*ours, "export", "--task", "MountainCarContinuous-v0", "--demos", "1", "--out", str(out)], check=True)
    data = np.load(out)
    assert data["observations"].shape[1] == 2 and data["actions"].shape[1] == 1
    assert len(data["rewards"]) == len(data["terminations"]) and data["terminations"][-1]

    proc = subprocess.Popen(
        [*ours, "serve", "--task", "MountainCarContinuous-v0", "--n-envs", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        write_message(proc.stdin, ("spaces",))
        spaces = read_message(proc.stdout)
        assert spaces["observation_shape"] == [2] and spaces["action_low"] == [-1.0]
        write_message(proc.stdin, ("reset", 1, 10_000))
        first = read_message(proc.stdout)
        write_message(proc.stdin, ("reset", 1, 10_000))
        assert read_message(proc.stdout) == first  # held-out reset seeds give the same start
        write_message(proc.stdin, ("step", 1, [0.5]))
        obs, reward, terminated, truncated, success = read_message(proc.stdout)
        assert len(obs) == 2 and isinstance(reward, float) and not terminated and not truncated and success is None
        write_message(proc.stdin, ("close",))
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill() if proc.poll() is None else None


def test_parity_verdicts_follow_the_interval_of_the_difference():
    """report.py: at parity only when the 95% interval of ours minus theirs (mean success over the run) lies inside
    +-10 points; wholly beyond it is not at parity; crossing its edge is undecided."""
    import report

    same = np.array([0.5, 0.6, 0.7, 0.55, 0.65])
    diff, low, high = report.difference(same, same.copy())
    assert diff == 0 and -0.1 < low <= 0 <= high < 0.1 and report.verdict(low, high) == "at parity"
    diff, low, high = report.difference(np.ones(10), np.zeros(10))
    assert (diff, low, high) == (1.0, 1.0, 1.0) and report.verdict(low, high) == "not at parity"
    diff, low, high = report.difference(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.5, 0.5, 0.5, 0.5]))
    assert low < -0.1 and high > 0.1 and report.verdict(low, high) == "undecided"
