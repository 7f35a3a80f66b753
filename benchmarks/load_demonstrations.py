"""How fast a large minari dataset becomes a DemoReplayBuffer: 1M AntMaze-shaped transitions (obs 31, act 8).

    python benchmarks/load_demonstrations.py [--steps 1000000]

Writes the dataset once (1000 episodes of 1000 steps, Dict observations 27 + 2 + 2 as in AntMaze) into a temporary
MINARI_DATASETS_PATH, then, in a fresh process, times load_demonstrations + DemoReplayBuffer construction
(validation included) and reports the process's peak memory above what it held after importing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from gymnasium import spaces

OBS = spaces.Dict(
    {
        "observation": spaces.Box(-np.inf, np.inf, (27,), np.float64),
        "achieved_goal": spaces.Box(-np.inf, np.inf, (2,), np.float64),
        "desired_goal": spaces.Box(-np.inf, np.inf, (2,), np.float64),
    }
)
ACT = spaces.Box(-1, 1, (8,), np.float32)


def write(dataset_id: str, steps: int, episode_length: int = 1000) -> None:
    import minari
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(0)
    buffers = []
    for _ in range(steps // episode_length):
        obs = {k: rng.normal(size=(episode_length + 1, *s.shape)) for k, s in OBS.items()}
        terminations = np.zeros(episode_length, bool)
        truncations = np.zeros(episode_length, bool)
        truncations[-1] = True
        buffers.append(
            EpisodeBuffer(
                observations=obs,
                actions=rng.uniform(-1, 1, (episode_length, 8)).astype(np.float32),
                rewards=list(rng.random(episode_length)),
                terminations=list(terminations),
                truncations=list(truncations),
                infos={},
            )
        )
    minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        action_space=ACT,
        observation_space=OBS,
        author="sb3-expo",
        author_email="sb3-expo@localhost",
        code_permalink="benchmarks/load_demonstrations.py",
        algorithm_name="random",
    )


def load(dataset_id: str) -> dict:
    from sb3_expo import DemoReplayBuffer
    from sb3_expo.datasets import load_demonstrations

    flat = spaces.Box(-np.inf, np.inf, (31,), np.float32)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    demos = load_demonstrations(f"minari:{dataset_id}")
    loaded = time.perf_counter()
    buffer = DemoReplayBuffer(1000, flat, ACT, "cpu", demonstrations=demos)
    done = time.perf_counter()
    return {
        "transitions": buffer.n_demos,
        "load_s": loaded - start,
        "buffer_s": done - loaded,
        "total_s": done - start,
        "peak_gib_above_imports": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(args.load)))
        return
    with tempfile.TemporaryDirectory() as root:
        os.environ["MINARI_DATASETS_PATH"] = root
        dataset_id = f"sb3-expo/antmaze-shaped-{args.steps}-v0"
        start = time.perf_counter()
        write(dataset_id, args.steps)
        print(f"wrote {args.steps} transitions in {time.perf_counter() - start:.0f} s")
        out = subprocess.run([sys.executable, __file__, "--load", dataset_id], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
    print("| transitions | load_demonstrations s | DemoReplayBuffer s | total s | peak memory above imports GiB |")
    print("|---|---|---|---|---|")
    cells = [f"{r['transitions']:,}", *(f"{r[k]:.1f}" for k in ("load_s", "buffer_s", "total_s"))]
    print(f"| {' | '.join(cells)} | {r['peak_gib_above_imports']:.2f} |")


if __name__ == "__main__":
    main()
