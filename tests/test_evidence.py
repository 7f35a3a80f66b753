"""The evidence suite (benchmarks/evidence.py): fair settings, a real run end to end, and honest aggregation."""

import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("evidence", ROOT / "benchmarks" / "evidence.py")
evidence = importlib.util.module_from_spec(spec)
sys.modules["evidence"] = evidence
spec.loader.exec_module(evidence)


@pytest.mark.parametrize("scale", list(evidence.load_block()))
def test_every_method_builds_on_every_task_with_the_same_batch_and_update_ratio(scale):
    config = evidence.load_config(scale)
    for task in config["tasks"]:
        demos = evidence.demonstrations(task, 1)
        settings = set()
        for method, (_, key, with_demos, _) in evidence.METHODS.items():
            if key not in config:  # a scale that compares some methods only (cpu-paper-nets: EXPO and RLPD)
                continue
            if method == "EXPO, tuned" and task not in config.get("tuned", {}).get("tasks", []):
                continue  # tuned on the suite's tasks only (benchmarks/results/tuning/best.json)
            model = evidence.build_model(method, evidence.make_env(task), demos, config, seed=0, task=task)
            settings.add((model.batch_size, model.gradient_steps, model.train_freq.frequency, model.learning_starts))
            buffer = model.replay_buffer
            demo_rows = buffer.n_demo_samples(model.batch_size) if hasattr(buffer, "n_demo_samples") else 0
            assert demo_rows == (model.batch_size // 2 if with_demos else 0), (task, method)
        assert len(settings) == 1, (scale, task, settings)  # one batch size and UTD for all methods
    assert config["seeds"] >= 3


def test_a_small_suite_runs_resumes_and_writes_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "RESULTS", tmp_path)
    config = copy.deepcopy(evidence.load_config("cpu"))
    task = "MountainCarContinuous-v0"
    config["tasks"][task].update(steps=300, eval_every=150)
    config["eval_episodes"] = 2
    runs = [r for r in evidence.plan("main", "cpu", config, [task], [0, 1]) if r.method in ("EXPO", "SAC, no demos")]
    assert len(runs) == 4
    for run in runs:
        record = evidence.execute(run, config)
        assert record["steps"] == [0, 150, 300] and len(record["success"]) == 3
        assert record["deterministic_eval"] == (run.method != "EXPO")  # EXPO is evaluated stochastically
    assert all(r.path.exists() for r in evidence.plan("main", "cpu", config, [task], [0, 1]) if r in runs)
    text = evidence.report("main", "cpu", config, [task], elapsed=60.0)
    assert "| EXPO | " in text and "| SAC, no demos | " in text and "CrossQ" not in text  # only what was run
    assert "demonstrations" in text.lower() and "5 scripted episodes" in text
    assert (tmp_path / "cpu" / f"main_{task}.png").stat().st_size > 10_000
    assert (tmp_path / "cpu" / "main.md").read_text() == text


def record(method, successes, every=500):
    return dict(
        task="T",
        method=method,
        seed=0,
        n_demos=5,
        steps=[i * every for i in range(len(successes))],
        success=successes,
        wall_seconds=1.0,
        demo_transitions=100,
        expert_success=1.0,
        deterministic_eval=method != "EXPO",
    )


def test_steps_to_80_and_the_target_verdict():
    fast = [record("EXPO", [0, 0.9, 1, 1, 1, 1, 1])] * 3
    assert evidence.steps_to_threshold(fast[0]) == 500
    slow = [
        record("SAC + demos (RLPD-style)", [0, 0, 0, 0, 0.8, 1, 1]),
        record("SAC + demos (RLPD-style)", [0, 0, 0, 0.5, 0.7, 0.8, 1]),
        record("SAC + demos (RLPD-style)", [0, 0, 0, 0, 0, 0, 0.2]),  # never: counts as 3000 + 500
    ]
    assert evidence.steps_to_threshold(slow[2]) == float("inf")
    rows, _ = evidence.summarise({"EXPO": fast, "SAC + demos (RLPD-style)": slow}, budget=3000, every=500)
    by = {r["method"]: r for r in rows}
    assert by["EXPO"]["to80"][0] == 500 and by["SAC + demos (RLPD-style)"]["to80"][0] == pytest.approx(
        (2000 + 2500 + 3500) / 3
    )
    assert by["SAC + demos (RLPD-style)"]["censored"] and by["SAC + demos (RLPD-style)"]["reached"] == 2
    assert "target MET" in evidence.verdict(rows)
    close = [record("CrossQ + demos", [0, 0.2, 0.9, 1, 1, 1, 1])] * 3  # 1000 steps: EXPO is only 2x faster, CIs apart
    rows, _ = evidence.summarise({"EXPO": fast, "CrossQ + demos": close}, budget=3000, every=500)
    assert "target MET" in evidence.verdict(rows)
    mixed = [*fast[:2], record("EXPO", [0, 0, 0, 0, 0, 0.9, 1])]  # one slow EXPO seed: CIs overlap
    rows, _ = evidence.summarise({"EXPO": mixed, "CrossQ + demos": close}, budget=3000, every=500)
    assert "target NOT met" in evidence.verdict(rows)
    iqm, low, high = {r["method"]: r for r in rows}["EXPO"]["curve"]
    assert (
        np.all(low <= iqm + 1e-9) and np.all(iqm <= high + 1e-9) and iqm[1] == pytest.approx(0.6)
    )  # 3 seeds: nothing to trim, the IQM is the mean
    never = [record("EXPO", [0, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7])] * 3
    rows, _ = evidence.summarise({"EXPO": never, "CrossQ + demos": [record("CrossQ + demos", [0] * 7)] * 3}, 3000, 500)
    assert "undecided" in evidence.verdict(rows)
    assert {r["method"]: r for r in rows}["EXPO"]["area"][0] == pytest.approx(3.9 / 7)  # mean success over the run


def test_offline_to_online_pretrains_every_method_and_reports_the_dip(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "RESULTS", tmp_path)
    config = copy.deepcopy(evidence.load_config("cpu"))
    task = "MountainCarContinuous-v0"
    config["tasks"][task].update(steps=200, eval_every=100)
    config.update(eval_episodes=1, pretrain_steps=300)
    runs = evidence.plan("offline_to_online", "cpu", config, [task], [0])
    assert {r.method for r in runs} == evidence.PRETRAINED and len(runs) == 4
    for run in runs:
        record = evidence.execute(run, config)
        assert record["steps"][0] == 0 and record["steps"][-1] == 200  # success measured right after pretraining
    text = evidence.report("offline_to_online", "cpu", config, [task], elapsed=None)
    assert "| after pretraining | lowest in the first fifth of fine-tuning | final |" in text
    assert text.count("pretrained") >= 8  # every method in both tables


def test_tuning_runs_the_evidence_settings_through_the_zoo():
    """benchmarks/tuning.py tunes EXPO on the task as the evidence suite runs it (same networks, UTD, budget,
    demonstrations, sampled evaluation), so the tuned values are comparable with the defaults there."""
    spec = importlib.util.spec_from_file_location("tuning", ROOT / "benchmarks" / "tuning.py")
    tuning = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tuning)
    cpu = evidence.load_config("cpu")
    task = "MountainCarContinuous-v0"
    entry = tuning.zoo_entry(task, cpu)
    assert entry["n_timesteps"] == cpu["tasks"][task]["steps"]
    for key in ("batch_size", "gradient_steps", "learning_starts", "n_base_samples"):
        assert entry[key] == cpu["expo"][key]
    assert eval(entry["policy_kwargs"]) == cpu["expo"]["policy_kwargs"]
    assert entry["deterministic_mode"] == "sampled"
    from sb3_expo.datasets import load_demonstrations

    tuned_demos = load_demonstrations(entry["demonstrations"])
    suite_demos = evidence.demonstrations(task, cpu["tasks"][task]["demos"])
    np.testing.assert_array_equal(tuned_demos.actions, suite_demos.actions)
    assert tuning.TUNING_SEED not in range(10) and tuning.TUNING_SEED < 10_000  # not a training or evaluation seed
