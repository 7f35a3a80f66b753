"""EXPO learns from a handful of demonstrations where SAC, with the same budget and no demonstrations, does not."""

from stable_baselines3 import SAC

from sb3_expo import EXPO
from sb3_expo.demo import CPU_CONFIG, ENV_ID, SAC_CONFIG, demonstrations, success_rate

BUDGET = 3000  # environment steps; MountainCarContinuous episodes last up to 999 steps


def test_expo_with_five_demos_solves_mountain_car_where_sac_without_does_not():
    """Success is read at 2500 and 3000 steps: once solved, a run can dip at a single evaluation (docs: EXPO, Results)."""
    demos = demonstrations(5)
    assert demos.success_rate == 1.0  # the scripted expert really succeeds
    expo = EXPO("MlpPolicy", ENV_ID, demonstrations=demos, seed=0, **CPU_CONFIG).learn(BUDGET - 500)
    late = [success_rate(expo, n_episodes=10)]  # stochastic evaluation, as in the paper
    expo.learn(500, reset_num_timesteps=False)
    late.append(success_rate(expo, n_episodes=10))
    sac = SAC("MlpPolicy", ENV_ID, seed=0, **SAC_CONFIG).learn(BUDGET)
    assert max(late) >= 0.8, late
    assert success_rate(sac, n_episodes=10) <= 0.2


def test_make_demo_puts_rlpd_with_the_same_demonstrations_beside_expo(tmp_path):
    """`make demo`'s table and plot show EXPO, RLPD (the same demonstrations) and SAC without (tiny budget here)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "sb3_expo.demo", "--steps", "250", "--eval-every", "250", "--eval-episodes", "1",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "steps" not in line]
    assert rows == ["EXPO + demos", "RLPD + demos", "SAC, no demos"], out
    assert (tmp_path / "expo_mountaincar.png").stat().st_size > 0
