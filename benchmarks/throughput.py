"""Throughput of the EXPO update at the paper's settings: straightforward vs fast path, fp32, bf16, torch.compile.

    python benchmarks/throughput.py            # full table, base policies, scaling sweep (about 13 minutes on 2 cores)
    python benchmarks/throughput.py --quick    # smaller sweep
    python benchmarks/throughput.py --only bases --repeat 3   # base-policy rows alone (DDPM 10 steps, flow 1, 2, 4, 10)
    python benchmarks/throughput.py --only precision --repeat 3   # fp32 vs mixed precision, eager and compiled, by part
    python benchmarks/throughput.py --only acting --repeat 3   # acting latency alone, the same four variants (3 min)
    python benchmarks/throughput.py --only kernels   # the host's GEMM kernels and peaks, and the sampler's choice (1 min)
    python benchmarks/throughput.py --only update    # fp32 update per sampler kernel, eager and compiled, vs the authors'
    python benchmarks/throughput.py --threads 1    # torch threads (default: all cores); printed in the table

AntMaze sizes (obs 29, act 8), batch 256, N = K = 8, T = 10, 10 critics of 256x3, UTD 1 and 20. Each configuration
runs in its own process, so its peak memory (max RSS, replay buffer kept small) is its own. GFLOP/s counts the
denoiser FLOPs of the TD backup only (B x N x T denoiser passes per critic update), as a fraction of the host's best
GEMM rate measured in the same run on the same threads: the best of torch's default kernel, oneDNN with packed weights,
inductor's max-autotune templates and (where benchmarks/reference/.venv exists) the reference's XLA per CPU-second,
the kernel named. Writes Markdown tables and a plot to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces

OBS_DIM, ACT_DIM, BATCH = 29, 8, 256


class ShapeEnv(gym.Env):
    """An env with AntMaze's shapes; only its spaces matter here."""

    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    action_space = spaces.Box(-1, 1, (ACT_DIM,), np.float32)

    def reset(self, seed=None, options=None):
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}


def denoiser_flops_per_row_step(width: int = 256, blocks: int = 3) -> float:
    """Multiply-adds x 2 of one denoiser call with the sampler's split input layer (obs projected once)."""
    return 2.0 * (blocks * 2 * width * 4 * width + ACT_DIM * width + width * ACT_DIM)


XLA_PROBE = """
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
out = {}
for name in ("float32", "bfloat16"):
    r, dt = np.random.default_rng(0), getattr(jnp, name)
    pairs = [(jnp.asarray(r.normal(size=(m, k)), dt), jnp.asarray(r.normal(size=(k, n)), dt)) for m, k, n in SHAPES]
    f = jax.jit(jnp.dot)
    for a, b in pairs:
        f(a, b).block_until_ready()
    best = 0.0
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(10):
            for a, b in pairs:
                f(a, b).block_until_ready()
        flops = 10 * sum(2 * m * k * n for m, k, n in SHAPES)
        best = max(best, flops / (time.process_time() - cpu) / 1e9)
    out[name] = best
print(json.dumps(out))
"""


def xla_rates() -> dict[str, float]:
    """The reference's XLA (JAX 0.4.30, benchmarks/reference/.venv) on the same shapes, per CPU-second: XLA keeps
    a second thread busy even with --xla_cpu_multi_thread_eigen=false, so its wall-clock rate is not one core's."""
    python = Path(__file__).parent / "reference" / ".venv" / "bin" / "python"
    if not python.exists():
        return {}
    from sb3_expo.common.kernels import PROBE_SHAPES

    code = XLA_PROBE.replace("SHAPES", repr(PROBE_SHAPES))
    env = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false", "PATH": "/usr/bin:/bin"}
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, env=env, timeout=300)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return {}


def inductor_rate(dtype: th.dtype) -> float | None:
    """torch.compile's max-autotune CPU GEMM templates (C++ micro-kernels, else the best ATen kernel) on the probe shapes."""
    import torch._inductor.config as inductor_config
    from torch.nn import functional as F

    from sb3_expo.common.kernels import PROBE_SHAPES

    try:
        with inductor_config.patch(max_autotune=True, max_autotune_gemm_backends="CPP,ATEN"):
            calls = []
            for rows, n_in, n_out in PROBE_SHAPES:
                x, w = th.randn(rows, n_in, dtype=dtype), th.randn(n_out, n_in, dtype=dtype)
                f = th.compile(lambda x, w=w: F.linear(x, w), dynamic=False)
                f(x)
                calls.append(lambda f=f, x=x: f(x))
    except Exception:  # no C++ compiler, or no template for this dtype on this CPU
        return None
    flops = sum(2 * r * i * o for r, i, o in PROBE_SHAPES)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(10):
            for call in calls:
                call()
        best = max(best, 10 * flops / (time.perf_counter() - start) / 1e9)
    return best


def kernel_rates(dtype: th.dtype, full: bool = False, xla: dict[str, float] | None = None) -> dict[str, float]:
    """GFLOP/s of each GEMM kernel this host offers for `dtype` on the sampler's shapes (kernels.PROBE_SHAPES), at
    torch's current threads: torch's default (aten: MKL on x86) and oneDNN with packed weights; with full=True also
    inductor's max-autotune templates and the reference's XLA (`xla`, per CPU-second). Fractions are of the best."""
    from sb3_expo.common.kernels import gemm_rates

    rates = gemm_rates(dtype, seconds=1.0)
    if full:
        compiled = inductor_rate(dtype)
        if compiled is not None:
            rates["inductor max-autotune"] = compiled
        if xla and str(dtype)[6:] in xla:
            rates["XLA (per CPU-second)"] = xla[str(dtype)[6:]]
    return rates


def best(rates: dict[str, float]) -> tuple[float, str]:
    kernel = max(rates, key=rates.get)
    return rates[kernel], kernel


def matmul_peak(dtype: th.dtype) -> float:
    """The best rate among torch's kernels on this host (default path and packed oneDNN) for `dtype`."""
    return best(kernel_rates(dtype))[0]


def kernels_section(out: Path, threads: int) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The host's GEMM kernels and peaks, and the kernel the sampler uses here (common/kernels.py's cached probe)."""
    from sb3_expo.common.kernels import cpu_kernel, host_key

    xla = xla_rates()
    rates = {name: kernel_rates(dtype, full=True, xla=xla) for name, dtype in (("fp32", th.float32), ("bf16", th.bfloat16))}
    chosen = {"fp32": cpu_kernel(th.float32), "bf16": cpu_kernel(th.bfloat16)}
    kernels = sorted({k for r in rates.values() for k in r}, key=lambda k: -rates["fp32"].get(k, 0.0))
    lines = [
        f"GEMM kernels on this host ({host_key()}; {threads} threads; GFLOP/s on the sampler's shapes "
        "1024x256 @ 256x1024 and 1024x1024 @ 1024x256, best of 3 rounds; - where the host has no such kernel):",
        "",
        "| kernel | fp32 | bf16 |",
        "|---|---|---|",
    ]
    for kernel in kernels:
        cells = [f"{rates[d][kernel]:.0f}" if kernel in rates[d] else "-" for d in ("fp32", "bf16")]
        lines.append(f"| {kernel} | " + " | ".join(cells) + " |")
    for d in ("fp32", "bf16"):
        peak, kernel = best(rates[d])
        lines.append(f"| best {d} | {peak:.0f} ({kernel}) | |" if d == "fp32" else f"| best {d} | | {peak:.0f} ({kernel}) |")
    lines += ["", f"The sampler's linears run on: fp32 {chosen['fp32']}, bf16 {chosen['bf16']} (sb3_expo/common/kernels.py)."]
    (out / "throughput_kernels.md").write_text("\n".join(lines) + "\n")
    (out / "throughput_kernels.json").write_text(
        json.dumps({"host": host_key(), "threads": threads, "rates": rates, "chosen": chosen}, indent=1)
    )
    print("\n".join(lines))
    return lines, rates


def make_model(n_base: int = 8, steps: int = 10, bf16: bool = False, torch_compile: bool = False, base: str = "ddpm"):
    from sb3_expo import EXPO, Transitions

    rng = np.random.default_rng(0)
    n_demo = 5000
    demos = Transitions(
        rng.normal(size=(n_demo, OBS_DIM)).astype(np.float32),
        rng.uniform(-1, 1, (n_demo, ACT_DIM)).astype(np.float32),
        rng.random(n_demo).astype(np.float32),
        rng.normal(size=(n_demo, OBS_DIM)).astype(np.float32),
        rng.random(n_demo) < 0.01,
    )
    model = EXPO(
        "MlpPolicy",
        ShapeEnv(),
        buffer_size=20_000,
        demonstrations=demos,
        n_base_samples=n_base,
        n_edit_samples=n_base,
        policy_kwargs=dict(diffusion_steps=steps, base=base),
        precision="bf16" if bf16 else "fp32",
        torch_compile=torch_compile,
        seed=0,
    )
    for _ in range(5000):
        obs = rng.normal(size=(1, OBS_DIM))
        model.replay_buffer.add(obs, obs, rng.uniform(-1, 1, (1, ACT_DIM)), rng.random(1), rng.random(1) < 0.01, [{}])
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(None, [""]))
    return model


def acting_ms(model, weights_move: bool = False) -> float:
    """Median latency of predict() on one observation (the best-of-(N + K) acting path), after a warm-up.

    weights_move: bump the EMA weights' version counters before each call, as a training step does, so that each
    call takes the path acting takes during training (the bf16 acting copy refreshed first).
    """
    obs = np.zeros(OBS_DIM, np.float32)
    first = next(model.policy.base_ema.parameters())
    latencies = []
    for i in range(55):
        if weights_move:
            with th.no_grad():
                first.add_(0.0)
        t = time.perf_counter()
        model.predict(obs)
        if i >= 5:  # warm-up (and, with torch_compile, compilation)
            latencies.append(time.perf_counter() - t)
    return 1e3 * float(np.median(latencies))


def measure_acting(config: dict) -> dict:
    """Acting latency of one variant with fixed weights (evaluation, deployment) and with weights that move between
    calls (training)."""
    model = make_model(8, 10, config["bf16"], config["compile"])
    return {**config, "fixed": acting_ms(model), "training": acting_ms(model, weights_move=True)}


def measure(config: dict) -> dict:
    """One configuration in this process: seconds per train() call, acting latency, peak RSS."""
    th.manual_seed(0)
    model = make_model(config["n_base"], config["steps"], config["bf16"], config["compile"], config.get("base", "ddpm"))
    batch, utd = config["batch"], config["utd"]
    if config["path"] == "reference":
        from sb3_expo.expo.reference import ReferenceUpdate

        reference = ReferenceUpdate(model)

        def update() -> None:
            reference.train(utd, batch)
    else:

        def update() -> None:
            model.train(utd, batch)

    warm = time.perf_counter()
    update()  # warm-up (and, with torch_compile, the compilation of the backup chain and of the critic steps)
    warmup_s = time.perf_counter() - warm
    reps = config["reps"]
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(reps):
        update()
    per_call = (time.perf_counter() - start) / reps
    return {
        **config,
        "ms_per_env_step": 1e3 * per_call,
        "ms_per_critic_update": 1e3 * per_call / utd,
        "cpu_ms_per_critic_update": 1e3 * (time.process_time() - cpu) / reps / utd,
        "backup_gflops": batch * config["n_base"] * config["steps"] * denoiser_flops_per_row_step() * utd / per_call / 1e9,
        "act_ms": acting_ms(model),
        "warmup_s": warmup_s,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def variant_name(row: dict) -> str:
    return ("bf16" if row["bf16"] else "fp32") + (" + torch_compile" if row["compile"] else "")


def measure_parts(config: dict) -> dict:
    """One precision variant at UTD 20 in this process: train() as a whole, then each of its parts timed alone on
    the same G minibatches (ms per env step): the backup's sampling chain (with the candidates' edits), the
    selection and bootstrap of the 20 critic steps, the rest of those steps (critic forward, backward, Adam,
    target update), the base step and the edit step (with the temperature); acting latency."""
    th.manual_seed(0)
    model = make_model(8, 10, config["bf16"], config["compile"])
    utd, batch, reps = 20, BATCH, config["reps"]
    model.train(utd, batch)  # warm-up and compilation
    start = time.perf_counter()
    for _ in range(reps):
        model.train(utd, batch)
    whole = (time.perf_counter() - start) / reps

    data = model._sample_minibatches(utd, batch)
    with th.no_grad():
        features, next_features = model.policy.features(data.observations), model.policy.features(data.next_observations)
    candidates = model._backup_candidates(next_features)
    rows = [slice(g * batch, (g + 1) * batch) for g in range(utd)]
    lr = model.lr_schedule(1.0)

    def timed(fn) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return 1e3 * (time.perf_counter() - start) / reps

    def chain() -> None:
        with th.no_grad():
            model._backup_candidates(next_features)

    def selection() -> None:
        for r in rows:
            with th.no_grad(), model._mixed():
                chosen = model.policy.select(next_features[r], candidates[r])
                model.critic_target.subset_min(next_features[r], chosen.actions, model.num_min_qs)

    def critic_steps() -> None:
        for r in rows:
            model._critic_step(
                features[r], data.actions[r], data.rewards[r], data.dones[r], model.gamma, next_features[r], candidates[r]
            )

    parts = {
        "backup chain": timed(chain),
        "selection": timed(selection),
        "critic steps": timed(critic_steps),
        "base step": timed(lambda: model._base_step(features[rows[-1]], data.actions[rows[-1]], lr)),
        "edit step": timed(lambda: model._edit_step(features[rows[-1]], data.actions[rows[-1]], lr)),
    }
    parts["critic steps"] -= parts["selection"]  # _critic_step includes the selection: keep the rest
    chain_flops = batch * utd * 8 * 10 * denoiser_flops_per_row_step()
    return {
        **config,
        "ms_per_env_step": 1e3 * whole,
        "ms_per_critic_update": 1e3 * whole / utd,
        "parts_ms": parts,
        "chain_gflops": chain_flops / parts["backup chain"] / 1e6,
        "backup_gflops": chain_flops / whole / 1e9,
        "act_ms": acting_ms(model),
    }


PRECISION_VARIANTS = [(False, False), (True, False), (False, True), (True, True)]  # (bf16, torch_compile)


def precision_runs(config: dict, mode: str, repeat: int, key: str) -> tuple[list[list[dict]], list[tuple[float, float]]]:
    """`repeat` interleaved rounds of the four precision variants, each measurement in its own process (printing
    `key` of each), and the (fp32, bf16) matmul rates measured at the start and the end."""
    rates = [(matmul_peak(th.float32), matmul_peak(th.bfloat16))]
    runs: list[list[dict]] = [[] for _ in PRECISION_VARIANTS]
    for r in range(repeat):
        for i, (bf16, compiled) in enumerate(PRECISION_VARIANTS):
            runs[i].append(run_in_subprocess({**config, "bf16": bf16, "compile": compiled}, mode))
            print(f"  run {r + 1}: {variant_name(runs[i][-1])}: {key} {runs[i][-1][key]:.1f}", flush=True)
    rates.append((matmul_peak(th.float32), matmul_peak(th.bfloat16)))
    return runs, rates


def precision_section(base: dict, out: Path, repeat: int) -> list[str]:
    """Mixed precision against fp32 at UTD 20, eager and compiled, each part timed; `repeat` interleaved runs, medians,
    the fp32 and bf16 matmul rates measured at the start and the end."""
    runs, rates = precision_runs({**base, "reps": 2}, "parts", repeat, "ms_per_env_step")
    peak16 = max(r[1] for r in rates)

    def med(i: int, fn) -> float:
        return float(np.median([fn(row) for row in runs[i]]))

    fp32_step = [row["ms_per_env_step"] for row in runs[0]]
    lines = [
        f"Mixed precision (UTD 20, paper settings, {base['threads']} threads; best GEMM rate (torch kernels) at start / "
        f"end: fp32 {rates[0][0]:.0f} / {rates[1][0]:.0f}, bf16 {rates[0][1]:.0f} / {rates[1][1]:.0f} GFLOP/s; "
        f"median of {repeat} interleaved runs, range in brackets; speed-up vs fp32 eager per run, then median):",
        "",
        "| variant | ms / env step | speed-up | backup chain GFLOP/s (% of bf16 rate) | whole update, backup GFLOP/s "
        "(% of bf16 rate) | acting ms |",
        "|---|---|---|---|---|---|",
    ]
    for i, _ in enumerate(PRECISION_VARIANTS):
        steps = [row["ms_per_env_step"] for row in runs[i]]
        speedup = float(np.median([f / s for f, s in zip(fp32_step, steps)]))
        chain, whole = med(i, lambda r: r["chain_gflops"]), med(i, lambda r: r["backup_gflops"])
        act = med(i, lambda r: r["act_ms"])
        lines.append(
            f"| {variant_name(runs[i][0])} | {np.median(steps):.0f} [{min(steps):.0f}-{max(steps):.0f}] | {speedup:.2f}x "
            f"| {chain:.0f} ({chain / peak16:.0%}) | {whole:.0f} ({whole / peak16:.0%}) | {act:.1f} |"
        )
    names = list(runs[0][0]["parts_ms"])
    lines += [
        "",
        "Where the time of one env step goes (ms, medians; each part timed alone on the same minibatches):",
        "",
        "| variant | " + " | ".join(names) + " | sum of parts | train() |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for i, _ in enumerate(PRECISION_VARIANTS):
        parts = [med(i, lambda r, n=n: r["parts_ms"][n]) for n in names]
        lines.append(
            f"| {variant_name(runs[i][0])} | "
            + " | ".join(f"{p:.0f}" for p in parts)
            + f" | {sum(parts):.0f} | {med(i, lambda r: r['ms_per_env_step']):.0f} |"
        )
    (out / "throughput_precision.md").write_text("\n".join(lines) + "\n")
    (out / "throughput_precision.json").write_text(json.dumps({"runs": runs, "rates": rates}, indent=1))
    print("\n".join(lines))
    return lines


def acting_section(base: dict, out: Path, repeat: int) -> list[str]:
    """Acting latency, fp32 and bf16, eager and compiled; `repeat` interleaved runs, medians and ranges, with the
    matmul rates at the start and the end."""
    runs, rates = precision_runs(base, "acting", repeat, "fixed")

    def cell(rows: list[dict], key: str) -> str:
        values = [row[key] for row in rows]
        return f"{np.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"

    lines = [
        f"Acting latency (one observation, best of N + K = 8 + 8, T = 10, paper networks; {base['threads']} threads; "
        f"best GEMM rate (torch kernels) at start / end: fp32 {rates[0][0]:.0f} / {rates[1][0]:.0f}, bf16 {rates[0][1]:.0f} / "
        f"{rates[1][1]:.0f} GFLOP/s; ms, median of 50 calls, median [range] of {repeat} interleaved runs):",
        "",
        "| variant | fixed weights (evaluation, deployment) | weights moving (training) |",
        "|---|---|---|",
    ]
    lines += [f"| {variant_name(rows[0])} | {cell(rows, 'fixed')} | {cell(rows, 'training')} |" for rows in runs]
    (out / "throughput_acting.md").write_text("\n".join(lines) + "\n")
    (out / "throughput_acting.json").write_text(json.dumps({"runs": runs, "rates": rates}, indent=1))
    print("\n".join(lines))
    return lines


GEMMS = ["aten", "onednn"]  # SB3_EXPO_CPU_GEMM: torch's default path, oneDNN packed (the probe picks one per host)
AUTHORS_SPEED = Path(__file__).parent / "results" / "parity" / "speed.json"  # benchmarks/reference/speed.py


def update_section(base: dict, out: Path) -> list[str]:
    """The fp32 update at the paper's settings on each sampler kernel (forced torch default, forced oneDNN; the header
    names the one the host's probe chooses), eager and with torch_compile, UTD 1 and 20, as fractions of the host's
    best fp32 GEMM rate; the authors' JAX update (benchmarks/reference/speed.py, same sizes) beside it."""
    from sb3_expo.common.kernels import cpu_kernel

    kernel_lines, rates = kernels_section(out, base["threads"])
    rows = []
    for compiled in (False, True):
        for gemm in GEMMS if not compiled else ["inductor"]:  # compiled: inductor's linears, whatever SB3_EXPO_CPU_GEMM says
            for utd in (1, 20):
                config = {**base, "path": "fast", "bf16": False, "compile": compiled, "utd": utd}
                config["gemm"] = gemm if gemm in GEMMS else None
                rows.append(run_in_subprocess({**config, "reps": 3 if utd == 1 else 1}))
                print(
                    f"  {variant_name(rows[-1])} gemm {gemm} UTD {utd}: {rows[-1]['ms_per_critic_update']:.0f} ms/update",
                    flush=True,
                )
    peak, kernel = best({**rates["fp32"], "aten (end)": matmul_peak(th.float32)})
    lines = [
        *kernel_lines,
        "",
        f"fp32 update at the paper's settings ({base['threads']} threads; sampler kernel forced with SB3_EXPO_CPU_GEMM or "
        f"chosen by the probe, here {cpu_kernel(th.float32)}; fractions of the host's best fp32 rate, {peak:.0f} GFLOP/s "
        f"({kernel}); backup denoiser FLOPs only; CPU ms = process CPU time per critic update):",
        "",
        "| implementation | sampler kernel | UTD | ms / critic update | CPU ms / critic update | backup GFLOP/s | % of best "
        "fp32 | acting ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| sb3-expo, {variant_name(r)} | {r['gemm'] or 'inductor'} | {r['utd']} | {r['ms_per_critic_update']:.0f} | "
            f"{r['cpu_ms_per_critic_update']:.0f} | {r['backup_gflops']:.0f} | {r['backup_gflops'] / peak:.0%} | "
            f"{r['act_ms']:.1f} |"
        )
    if AUTHORS_SPEED.exists():
        theirs = json.loads(AUTHORS_SPEED.read_text())
        for utd in (1, 20):
            if f"utd{utd}" in theirs:
                t = theirs[f"utd{utd}"]
                flops = BATCH * theirs["n_base"] * theirs["steps"] * denoiser_flops_per_row_step() / 1e9
                lines.append(
                    f"| authors' EXPO (JAX, {theirs['reference']}) | XLA | {utd} | {t['ms_per_critic_update']:.0f} | "
                    f"{t['cpu_ms_per_critic_update']:.0f} | {1e3 * flops / t['ms_per_critic_update']:.0f} | "
                    f"{1e3 * flops / t['ms_per_critic_update'] / peak:.0%} | {theirs['act_compiled']['ms']:.1f} (compiled "
                    f"whole; {theirs['act_released']['ms']:.1f} as released) |"
                )
        lines.append(f"\nAuthors' rows: {AUTHORS_SPEED.relative_to(Path(__file__).parents[1])}, host {theirs['host']}.")
    (out / "throughput_update.md").write_text("\n".join(lines) + "\n")
    (out / "throughput_update.json").write_text(json.dumps({"rows": rows, "rates": rates, "peak": peak}, indent=1))
    print("\n".join(lines))
    return lines


MEASURES = {"one": measure, "parts": measure_parts, "acting": measure_acting}


def run_in_subprocess(config: dict, mode: str = "one") -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", mode, json.dumps(config)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # (mode, config as JSON): one measurement
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller scaling sweep")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--only", choices=["kernels", "update", "bases", "precision", "acting"], help="run one section alone")
    parser.add_argument("--repeat", type=int, default=1, help="--only bases|precision|acting: interleaved measurements")
    parser.add_argument("--threads", type=int, default=th.get_num_threads(), help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.measure:
        mode, config = args.measure[0], json.loads(args.measure[1])
        th.set_num_threads(config.get("threads", th.get_num_threads()))
        if config.get("gemm"):
            os.environ["SB3_EXPO_CPU_GEMM"] = config["gemm"]
        print(json.dumps(MEASURES[mode](config)))
        return
    th.set_num_threads(args.threads)
    print(f"{args.threads} threads", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    base = dict(n_base=8, steps=10, batch=BATCH, bf16=False, compile=False, reps=1 if args.quick else 2, threads=args.threads)
    if args.only == "kernels":
        kernels_section(args.out, args.threads)
        return
    if args.only == "update":
        update_section(base, args.out)
        return
    if args.only == "bases":
        bases_section(base, args.out, args.repeat)
        return
    if args.only == "precision":
        precision_section(base, args.out, args.repeat)
        return
    if args.only == "acting":
        acting_section(base, args.out, args.repeat)
        return
    kernel_lines, rates = kernels_section(args.out, args.threads)  # measured again at the end; the best is kept
    (peak32, kernel32), (peak16, kernel16) = best(rates["fp32"]), best(rates["bf16"])
    rows = []
    paths = [
        ("reference", False, False),
        ("fast", False, False),
        ("fast", True, False),
        ("fast", False, True),
        ("fast", True, True),
    ]
    for path, bf16, compiled in paths:  # (path, bf16 sampler, torch_compile)
        for utd in (1, 20):
            config = {**base, "path": path, "bf16": bf16, "compile": compiled, "utd": utd}
            rows.append(run_in_subprocess({**config, "reps": base["reps"] * (3 if utd == 1 else 1)}))
            ms = rows[-1]["ms_per_critic_update"]
            print(f"  {path:9s} {variant_name(rows[-1])} UTD {utd:2d}: {ms:.0f} ms/update", flush=True)

    peak32, peak16 = max(peak32, matmul_peak(th.float32)), max(peak16, matmul_peak(th.bfloat16))
    lines = [
        *kernel_lines,
        "",
        f"Machine: {th.get_num_threads()} threads, torch {th.__version__}; the host's best GEMM rate fp32 {peak32:.0f} "
        f"GFLOP/s ({kernel32}), bf16 {peak16:.0f} GFLOP/s ({kernel16}), best of the start and the end.",
        "",
        "| path | variant | UTD | ms / critic update | ms / env step | backup denoiser GFLOP/s | % of the best fp32 rate "
        "| acting ms | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['path']} | {variant_name(r)} | {r['utd']} | {r['ms_per_critic_update']:.0f} "
            f"| {r['ms_per_env_step']:.0f} | {r['backup_gflops']:.0f} | {r['backup_gflops'] / peak32:.0%} "
            f"| {r['act_ms']:.1f} | {r['peak_rss_gib']:.2f} |"
        )

    sweep = {"n_base": [4, 8, 16], "steps": [5, 10, 20], "batch": [128, 256, 512], "utd": [1, 5, 20]}
    if args.quick:
        sweep = {k: [v[0], v[-1]] for k, v in sweep.items()}
    scaling = {}
    for key, values in sweep.items():
        scaling[key] = []
        for value in values:
            config = {**base, "path": "fast", "utd": 1, "reps": 2, key: value}
            if key == "utd":
                config["reps"] = 1
            scaling[key].append(run_in_subprocess(config)["ms_per_critic_update"])
            print(f"  scaling {key}={value}: {scaling[key][-1]:.0f} ms/update", flush=True)
    lines += [
        "",
        "Fast path, fp32: ms per critic update as one setting varies (others at the paper's values).",
        "",
        "| setting | values | ms / critic update |",
        "|---|---|---|",
    ]
    for key, values in sweep.items():
        lines.append(f"| {key} | {values} | {[round(v) for v in scaling[key]]} |")

    lines += ["", *bases_section(base, args.out, args.repeat)]
    table = "\n".join(lines)
    print("\n" + table)
    (args.out / "throughput.md").write_text(table + "\n")
    (args.out / "throughput.json").write_text(
        json.dumps({"rows": rows, "scaling": scaling, "sweep": sweep, "peak_fp32": peak32, "peak_bf16": peak16}, indent=1)
    )
    plot(rows, scaling, sweep, args.out / "throughput.png")


BASES = [("ddpm", 10), ("flow", 10), ("flow", 4), ("flow", 2), ("flow", 1)]


def bases_section(base: dict, out: Path, repeat: int = 1) -> list[str]:
    """EXPO's base policies at the paper's settings (UTD 20, fast path, fp32 eager): the backup's cost per sampler step.
    With repeat > 1 every base is measured that many times, interleaved, and the table gives medians and ranges."""
    peak32 = matmul_peak(th.float32)
    runs: list[list[dict]] = [[] for _ in BASES]
    for r in range(repeat):
        for i, (name, steps) in enumerate(BASES):
            runs[i].append(run_in_subprocess({**base, "path": "fast", "utd": 20, "base": name, "steps": steps}))
            print(f"  run {r + 1}: base {name} {steps} steps: {runs[i][-1]['ms_per_critic_update']:.0f} ms/update", flush=True)
    peak32 = max(peak32, matmul_peak(th.float32))

    def median(i: int, key: str) -> float:
        return float(np.median([row[key] for row in runs[i]]))

    ddpm = [row["ms_per_critic_update"] for row in runs[0]]
    lines = [
        f"Base policies (fast path, fp32 eager, UTD 20, {base.get('threads', th.get_num_threads())} threads; best GEMM rate "
        f"fp32 {peak32:.0f} GFLOP/s; median of {repeat} interleaved run(s), range in brackets; ratios per run, then median):",
        "",
        "| base | sampler steps | ms / critic update | vs DDPM (10 steps) | backup denoiser GFLOP/s | acting ms |",
        "|---|---|---|---|---|---|",
    ]
    for i, (name, steps) in enumerate(BASES):
        ms = [row["ms_per_critic_update"] for row in runs[i]]
        ratio = float(np.median([m / d for m, d in zip(ms, ddpm)]))
        spread = f" [{min(ms):.0f}-{max(ms):.0f}]" if repeat > 1 else ""
        lines.append(
            f"| {name} | {steps} | {median(i, 'ms_per_critic_update'):.0f}{spread} | {ratio:.2f}x "
            f"| {median(i, 'backup_gflops'):.0f} | {median(i, 'act_ms'):.1f} |"
        )
    (out / "throughput_bases.md").write_text("\n".join(lines) + "\n")
    (out / "throughput_bases.json").write_text(json.dumps({"runs": runs, "peak_fp32": peak32}, indent=1))
    print("\n".join(lines))
    return lines


def plot(rows: list[dict], scaling: dict, sweep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(sweep), figsize=(4 * (1 + len(sweep)), 3.4))
    labels = [f"{r['path']}\n{variant_name(r)}\nUTD{r['utd']}" for r in rows]
    axes[0].bar(range(len(rows)), [r["ms_per_critic_update"] for r in rows], color="tab:blue")
    axes[0].set_xticks(range(len(rows)), labels, fontsize=7)
    axes[0].set_ylabel("ms per critic update")
    axes[0].set_title("paper settings")
    for ax, (key, values) in zip(axes[1:], sweep.items()):
        ax.plot(values, scaling[key], marker="o")
        ax.set(xlabel=key, title=f"fast fp32 vs {key}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
