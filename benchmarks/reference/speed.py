"""The authors' EXPO (Servo97/EXPO at b7ed710) timed at the paper's settings, for the speed rows of issues #23 and #27.

Runs in the reference venv, one XLA thread (driver.py sets XLA_FLAGS=--xla_cpu_multi_thread_eigen=false):

    benchmarks/reference/.venv/bin/python benchmarks/reference/speed.py            # JSON on stdout and in --out

AntMaze sizes (obs 29, act 8), batch 256, N = K = 8, T = 10, 10 critics of 256 x 3 with LayerNorm, the released
denoiser (width 256, 3 blocks), as benchmarks/throughput.py times ours. `update(batch, utd)` is timed for UTD 1 and 20
(ms per critic update, wall and CPU time: XLA keeps a second thread busy), and acting as released and compiled whole
(driver.CompiledActions). Random data: only the shapes matter.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import driver  # first: sets the XLA/thread environment before JAX loads
import numpy as np

OBS_DIM, ACT_DIM, BATCH, N, T, CRITICS = 29, 8, 256, 8, 10, 10


def warm_up(fn, jitted) -> int:
    """Call fn until a call compiles nothing new: their `update` recompiles on its first calls, as the weak types of
    the agent's scalars settle (three compilations at UTD 1); returns the number of warm-up calls."""
    calls = 0
    while True:
        size = jitted._cache_size()
        fn()
        calls += 1
        if jitted._cache_size() == size:
            return calls


def timed(fn, reps: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - wall) / reps, (time.process_time() - cpu) / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="timed calls per UTD (after one compiling call)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    import gym.spaces
    import jax

    learner, _, _ = driver.load_reference("expo")
    obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(OBS_DIM,), dtype=np.float32, seed=0)
    act_space = gym.spaces.Box(-1.0, 1.0, shape=(ACT_DIM,), dtype=np.float32, seed=0)
    agent = learner.create(
        0,
        obs_space,
        act_space,
        hidden_dims=(256, 256, 256),
        num_qs=CRITICS,
        num_min_qs=2,
        critic_layer_norm=True,
        N=N,
        n_edit_samples=N,
        T=T,
        edit_action_scale=0.05,
        actor_num_blocks=3,
        backup_entropy=False,
    )
    rng = np.random.default_rng(0)

    def batch(rows: int) -> dict:
        return dict(
            observations=rng.normal(size=(rows, OBS_DIM)).astype(np.float32),
            actions=rng.uniform(-1, 1, size=(rows, ACT_DIM)).astype(np.float32),
            rewards=rng.normal(size=rows).astype(np.float32),
            masks=np.ones(rows, np.float32),
            dones=np.zeros(rows, bool),
            next_observations=rng.normal(size=(rows, OBS_DIM)).astype(np.float32),
        )

    result: dict = dict(
        reference="Servo97/EXPO b7ed710",
        host=driver.host(),
        versions=driver.versions(),
        batch=BATCH,
        n_base=N,
        n_edit=N,
        steps=T,
        critics=CRITICS,
    )
    for utd in (1, 20):
        data = batch(BATCH * utd)
        state = {"agent": agent}

        def update(data=data, utd=utd, state=state):
            state["agent"], _ = state["agent"].update(data, utd)
            jax.block_until_ready(state["agent"])

        warm = warm_up(update, learner.update)
        wall, cpu = timed(update, args.reps)
        result[f"utd{utd}"] = {
            "ms_per_critic_update": 1e3 * wall / utd,
            "cpu_ms_per_critic_update": 1e3 * cpu / utd,
            "warm_up_calls": warm,
        }
        print(f"UTD {utd}: {1e3 * wall / utd:.0f} ms per critic update, {1e3 * cpu / utd:.0f} ms CPU", file=sys.stderr)
    obs = rng.normal(size=OBS_DIM).astype(np.float32)
    compiled = driver.CompiledActions(learner)
    acts = {"released": lambda: agent.eval_actions(obs), "compiled": lambda: compiled("eval_actions", agent, obs)}
    for name, act in acts.items():
        act()
        wall, cpu = timed(act, 50)
        result[f"act_{name}"] = {"ms": 1e3 * wall, "cpu_ms": 1e3 * cpu}
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
