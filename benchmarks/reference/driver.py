"""Run the authors' EXPO (Servo97/EXPO at b7ed710) and the RLPD authors' code (ikostrikov/rlpd at c90fd4b) on the
evidence suite's tasks, through their own agents, with our settings translated one to one (issue #23).

Runs in the reference venv (bash benchmarks/reference/setup.sh makes it), one CPU thread:

    benchmarks/reference/.venv/bin/python benchmarks/reference/driver.py translate
    benchmarks/reference/.venv/bin/python benchmarks/reference/driver.py run --algo expo rlpd \\
        --tasks MountainCarContinuous-v0 --seeds 1
    benchmarks/reference/.venv/bin/python benchmarks/reference/driver.py check      # imports and one update each

What is theirs: the learners (`EXPOLearner.create` / `SACLearner.create`, `update(batch, utd_ratio)`,
`sample_actions`, `eval_actions`), their replay buffer and dataset classes (uniform sampling with replacement).
What is ours, as in their training scripts: the loop (random warm-up, one update per env step after it, symmetric
50/50 batches interleaved offline/online as their `combine` does). What is the evidence suite's (benchmarks/evidence.py
at the scale's settings): the envs (stepped by benchmarks/reference/ours.py in the project's venv, which builds them
with evidence.make_env), the demonstrations (evidence.demonstrations, exported to an .npz), the budget, and the
evaluation (success rate over one episode on each held-out reset seed 10000 + i, every eval_every steps and at step 0;
EXPO samples its actions, RLPD takes its mode, as the two evaluate in their code).

Each run is saved as JSON in benchmarks/evidence.py's run format under
benchmarks/results/parity/runs/<scale>/<task>/ (a finished run is not repeated); benchmarks/reference/report.py
(project venv) compares them with our runs through the evidence report machinery.
"""

from __future__ import annotations

import os

for _key, _value in (
    ("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false"),
    ("OMP_NUM_THREADS", "1"),
    ("MKL_NUM_THREADS", "1"),
    ("OPENBLAS_NUM_THREADS", "1"),
    ("TF_CPP_MIN_LOG_LEVEL", "2"),
    ("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),
):
    os.environ.setdefault(_key, _value)

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = HERE / ".cache"
RESULTS = ROOT / "benchmarks" / "results" / "parity"
sys.path[:0] = [str(HERE / "stub"), str(HERE)]

from translation import DEMO_ACTION_CLIP, REFERENCES, Translation, load_block, translate  # noqa: E402
from wire import read_message, write_message  # noqa: E402

ACTION_DIMS = {"MountainCarContinuous-v0": 1, "PointMaze_UMaze-v3": 2, "PointMaze_Medium-v3": 2, "RobomimicLift-v0": 7}
EVIDENCE_TASKS = ["MountainCarContinuous-v0", "PointMaze_UMaze-v3", "PointMaze_Medium-v3", "RobomimicLift-v0"]


# ---------------------------------------------------------------- the reference code


def load_reference(algo: str, widths: dict[str, Any] | None = None):
    """The reference learner class and its ReplayBuffer / Dataset classes, from .cache/<repo>-<commit>/.

    `widths` binds what EXPO's create() hard-codes (the denoiser's hidden_dim 256 and the time MLP's 2 * time_dim) on
    the classes its module instantiates, so that our scale's denoiser width can be matched without editing their files.
    """
    ref = REFERENCES[algo]
    source = CACHE / ref["folder"]
    if not (source / ".complete").exists():
        raise SystemExit(f"{source} is missing: run bash benchmarks/reference/setup.sh first")
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
    import tensorflow_probability.substrates.jax  # noqa: F401  (their distributions use tfp.substrates.jax)

    module_name, class_name = ref["learner"].rsplit(".", 1)
    module = importlib.import_module(module_name)
    package = ref["package"]
    replay_buffer = importlib.import_module(f"{package}.data.replay_buffer").ReplayBuffer
    dataset = importlib.import_module(f"{package}.data.dataset").Dataset
    if algo == "expo":
        originals = module.__dict__.setdefault("_driver_originals", {})
        originals.setdefault("DiffusionMLPResNet", module.DiffusionMLPResNet)
        originals.setdefault("DiffusionMLP", module.DiffusionMLP)
        module.DiffusionMLPResNet = originals["DiffusionMLPResNet"]
        module.DiffusionMLP = originals["DiffusionMLP"]
        if widths:
            module.DiffusionMLPResNet = functools.partial(originals["DiffusionMLPResNet"], hidden_dim=widths["denoiser_width"])
            cond = originals["DiffusionMLP"]

            def cond_mlp(*args: Any, **kwargs: Any):
                kwargs["hidden_dims"] = tuple(widths["cond_widths"])
                return cond(*args, **kwargs)

            module.DiffusionMLP = cond_mlp
    return getattr(module, class_name), replay_buffer, dataset


def one_dimensional_actions(learner: type) -> type:
    """EXPO at b7ed710 cannot train on a 1-d action space as released: `sample_batch_actions` squeezes its [B, 1]
    backup actions to [B], and the target critic's concatenation with the observations fails. This subclass reshapes
    them back to [B, d] (a shape fix, nothing else); the driver uses it only when d = 1 (MountainCarContinuous)."""

    class EXPOLearner1D(learner):  # flax's PyTreeNode makes the subclass a dataclass too
        def sample_batch_actions(self, observations):
            actions = learner.sample_batch_actions(self, observations)
            return actions.reshape(observations.shape[0], self.action_dim)

    return EXPOLearner1D


class CompiledActions:
    """EXPO's `sample_actions` / `eval_actions`, each compiled by `jax.jit` as one XLA program: the same calls,
    the same math, bit for bit (`check` asserts equal actions and keys), about 10x faster at the cpu scale.

    As released, each action is a chain of separately dispatched JAX calls (about 20 ms at the cpu scale on one
    thread, so evaluation was nearly all of a run's time). To trace them whole, the learner module's `np.array` on
    the result is `jnp.asarray` while tracing, the learners' optimiser states are left out of the traced argument
    (acting never reads them), and only the action and the advanced key come back."""

    def __init__(self, learner: type):
        import inspect
        import types

        import jax
        import jax.numpy as jnp

        self.module = inspect.getmodule(learner.eval_actions)
        names = {k: getattr(np, k) for k in dir(np) if not k.startswith("__")}
        self.traced_np = types.SimpleNamespace(**{**names, "array": jnp.asarray})
        self.calls = {
            name: jax.jit(self.action_and_key(getattr(learner, name))) for name in ("sample_actions", "eval_actions")
        }

    @staticmethod
    def action_and_key(method):
        def call(agent, obs):
            action, agent = method(agent, obs)
            return action, agent.rng

        return call

    @staticmethod
    def slim(agent: Any) -> Any:
        import dataclasses

        from flax.training.train_state import TrainState

        states = {f.name: getattr(agent, f.name) for f in dataclasses.fields(agent)}
        return agent.replace(**{k: v.replace(opt_state=None, tx=None) for k, v in states.items() if isinstance(v, TrainState)})

    def __call__(self, name: str, agent: Any, obs: np.ndarray) -> tuple[np.ndarray, Any]:
        numpy, self.module.np = self.module.np, self.traced_np
        try:
            action, rng = self.calls[name](self.slim(agent), np.asarray(obs, dtype=np.float32))
        finally:
            self.module.np = numpy
        return np.asarray(action), agent.replace(rng=rng)


def count_params(tree: Any) -> int:
    import jax

    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def versions() -> dict[str, str]:
    import flax
    import jax
    import optax
    import tensorflow_probability

    return dict(
        python=platform.python_version(),
        jax=jax.__version__,
        flax=flax.__version__,
        optax=optax.__version__,
        tensorflow_probability=tensorflow_probability.__version__,
        numpy=np.__version__,
    )


def host() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except OSError:
        model = ""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores ({model or platform.processor() or platform.platform()})"


# ---------------------------------------------------------------- our side: envs and demonstrations


def ours_python(arg: str | None) -> str:
    return arg or os.environ.get("SB3_EXPO_PYTHON") or str(ROOT / ".venv" / "bin" / "python")


class Envs:
    """The task's envs, built and stepped by ours.py in the project's venv: index 0 trains, 1..n evaluate."""

    def __init__(self, task: str, n_envs: int, python: str):
        cmd = [python, str(HERE / "ours.py"), "serve", "--task", task, "--n-envs", str(n_envs)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        spaces = self.call("spaces")
        self.obs_shape = tuple(spaces["observation_shape"])
        self.low = np.asarray(spaces["action_low"], dtype=np.float64)
        self.high = np.asarray(spaces["action_high"], dtype=np.float64)

    def call(self, *message: Any) -> Any:
        write_message(self.proc.stdin, message)
        reply = read_message(self.proc.stdout)
        if reply is None or (isinstance(reply, tuple) and reply and reply[0] == "error"):
            raise RuntimeError(f"env server: {reply!r} (its stderr is above)")
        return reply

    def to_env(self, action: np.ndarray) -> list[float]:
        """The reference's RescaleAction(-1, 1) + ClipAction: what the env sees; the buffer keeps the raw action."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        return (self.low + (a + 1.0) * 0.5 * (self.high - self.low)).tolist()

    def reset(self, i: int, seed: int | None) -> np.ndarray:
        return np.asarray(self.call("reset", i, seed), dtype=np.float32)

    def step(self, i: int, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, bool | None]:
        obs, reward, terminated, truncated, success = self.call("step", i, self.to_env(action))
        return np.asarray(obs, dtype=np.float32), reward, terminated, truncated, success

    def close(self) -> None:
        try:
            write_message(self.proc.stdin, ("close",))
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self.proc.wait(timeout=60)


def demonstrations(task: str, n_demos: int, python: str) -> dict[str, Any]:
    """evidence.demonstrations(task, n) through an .npz (exported once by ours.py), as the reference's offline dataset:
    float32, actions scaled to [-1, 1] and clipped to +-(1 - 1e-5) as their loaders do, masks = 1 - terminations."""
    path = CACHE / "demos" / f"{task}__demos{n_demos}.npz"
    if not path.exists():
        cmd = [python, str(HERE / "ours.py"), "export", "--task", task, "--demos", str(n_demos), "--out", str(path)]
        subprocess.run(cmd, check=True, cwd=ROOT)
    data = np.load(path)
    low, high = data["action_low"], data["action_high"]
    actions = 2.0 * (data["actions"] - low) / (high - low) - 1.0
    terminations, truncations = data["terminations"], data["truncations"]
    dataset = dict(
        observations=data["observations"].astype(np.float32),
        actions=np.clip(actions, -DEMO_ACTION_CLIP, DEMO_ACTION_CLIP).astype(np.float32),
        rewards=data["rewards"].astype(np.float32),
        masks=(1.0 - terminations).astype(np.float32),
        dones=terminations | truncations,
        next_observations=data["next_observations"].astype(np.float32),
    )
    return dict(dataset=dataset, expert_success=float(data["expert_success"]), path=str(path))


def interleave(offline: dict, online: dict) -> dict[str, np.ndarray]:
    """Offline rows at even indices, online rows at odd ones (their scripts' symmetric sampling)."""
    batch = {}
    for key, value in offline.items():
        other = online[key]
        if isinstance(value, dict) or hasattr(value, "items"):
            batch[key] = interleave(value, other)
            continue
        value, other = np.asarray(value), np.asarray(other)
        merged = np.empty((len(value) + len(other), *value.shape[1:]), dtype=value.dtype)
        merged[0::2], merged[1::2] = value, other
        batch[key] = merged
    return batch


# ---------------------------------------------------------------- one run


def evaluate(algo: str, agent: Any, envs: Envs, n: int, seed: int, act: CompiledActions | None = None) -> tuple[float, Any]:
    """One episode per eval env on reset seeds seed, seed + 1, ... (benchmarks/evidence.py's success_rate).
    EXPO: eval_actions samples (argmax over N + K candidates) and returns the agent with its key advanced, which
    their D4RL script keeps; RLPD: eval_actions is the mode."""
    obs = {i: envs.reset(1 + i, seed + i) for i in range(n)}
    successes = np.zeros(n)
    active = list(range(n))
    while active:
        still = []
        for i in active:
            if algo == "expo":
                action, agent = act("eval_actions", agent, obs[i]) if act else agent.eval_actions(obs[i])
            else:
                action = agent.eval_actions(obs[i])
            obs[i], _, terminated, truncated, success = envs.step(1 + i, np.asarray(action).reshape(-1))
            if terminated or truncated:
                successes[i] = float(terminated if success is None else success)
            else:
                still.append(i)
        active = still
    return float(successes.mean()), agent


def run_path(scale: str, task: str, algo: str, seed: int, n_demos: int, steps_override: int | None, widths: bool) -> Path:
    name = f"{REFERENCES[algo]['slug']}__demos{n_demos}__seed{seed}"
    if steps_override:
        name += f"__steps{steps_override}"
    if algo == "expo" and not widths:
        name += "__released_widths"
    return RESULTS / "runs" / scale / task / f"{name}.json"


def save(
    path: Path,
    record: dict,
    steps: list,
    success: list,
    train: float,
    start: float,
    evals: float,
    first_update: float | None,
    complete: bool,
) -> None:
    """Write the run after every evaluation (complete=False until the budget is done), so an interrupted run keeps its
    curve; report.py aggregates complete runs only, and `run` repeats incomplete ones."""
    record.update(
        steps=list(steps),
        success=list(success),
        train_seconds=train,
        wall_seconds=time.perf_counter() - start,
        eval_seconds=evals,
        first_update_seconds=first_update,
        complete=complete,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))


def execute(algo: str, scale: str, task: str, seed: int, args: argparse.Namespace) -> dict:
    config = load_block()[scale]
    tr: Translation = translate(algo, config, task, ACTION_DIMS.get(task, 1), match_widths=not args.released_widths)
    loop = dict(tr.loop)
    if args.steps:
        loop["max_steps"] = args.steps
    path = run_path(scale, task, algo, seed, loop["demos"], args.steps, not args.released_widths)
    if path.exists() and not args.force and json.loads(path.read_text()).get("complete", True):
        print(f"{path.relative_to(ROOT)} exists: skipped (--force repeats it)", flush=True)
        return json.loads(path.read_text())
    python = ours_python(args.ours_python)
    start = time.perf_counter()
    demos = demonstrations(task, loop["demos"], python)
    learner, replay_buffer_cls, dataset_cls = load_reference(algo, tr.widths)
    import gym.spaces

    envs = Envs(task, 1 + loop["eval_episodes"], python)
    try:
        action_dim = len(envs.low)
        if action_dim != ACTION_DIMS.get(task, action_dim):
            raise RuntimeError(f"{task}: action dim {action_dim}, translation assumed {ACTION_DIMS[task]}")
        if algo == "expo" and action_dim == 1:
            learner = one_dimensional_actions(learner)
        act = CompiledActions(learner) if algo == "expo" else None
        obs_space = gym.spaces.Box(-np.inf, np.inf, shape=envs.obs_shape, dtype=np.float32, seed=seed)
        act_space = gym.spaces.Box(-1.0, 1.0, shape=(action_dim,), dtype=np.float32, seed=seed)
        agent = learner.create(seed, obs_space, act_space, **tr.create_kwargs)
        replay = replay_buffer_cls(obs_space, act_space, loop["max_steps"])
        replay.seed(seed)
        offline = dataset_cls(demos["dataset"], seed=seed)
        b, g, r = loop["batch_size"], loop["utd_ratio"], loop["offline_ratio"]
        n_online, n_offline = int(b * g * (1 - r)), int(b * g * r)
        ref = REFERENCES[algo]
        record: dict[str, Any] = dict(
            scale=scale,
            task=task,
            method=ref["method"],
            seed=seed,
            n_demos=loop["demos"],
            suite="reference",
            steps=[],
            success=[],
            deterministic_eval=algo != "expo",
            demo_transitions=len(demos["dataset"]["rewards"]),
            expert_success=demos["expert_success"],
            train_seconds=0.0,
            wall_seconds=0.0,
            complete=False,
            budget=loop["max_steps"],
            budget_of_scale=tr.loop["max_steps"],
            reference=dict(repo=ref["repo"], commit=ref["commit"], learner=ref["learner"], compared_with=ref["ours"]),
            create_kwargs={k: (list(v) if isinstance(v, tuple) else v) for k, v in tr.create_kwargs.items()},
            loop=loop,
            released_widths=bool(args.released_widths and algo == "expo"),
            injected_widths={k: (list(v) if isinstance(v, tuple) else v) for k, v in tr.widths.items()},
            one_dimensional_action_fix=bool(algo == "expo" and action_dim == 1),
            compiled_actions=act is not None,
            not_matched=tr.unmatched,
            host=host(),
            versions=versions(),
        )
        eval_time = time.perf_counter()
        success0, agent = evaluate(algo, agent, envs, loop["eval_episodes"], loop["eval_seed"], act)
        eval_seconds = time.perf_counter() - eval_time
        steps, success = [0], [success0]
        save(path, record, steps, success, 0.0, start, eval_seconds, None, False)
        print(f"{task} | {REFERENCES[algo]['method']} | seed {seed}: step 0 success {success0:.0%}", flush=True)
        obs = envs.reset(0, seed)
        train_seconds, first_update_seconds = 0.0, None
        t0 = time.perf_counter()
        for i in range(loop["max_steps"]):
            if i < loop["start_training"]:
                action = act_space.sample()
            else:
                action, agent = act("sample_actions", agent, obs) if act else agent.sample_actions(obs)
                action = np.asarray(action, dtype=np.float32).reshape(action_dim)  # EXPO squeezes d = 1 to a scalar
            next_obs, reward, terminated, truncated, _ = envs.step(0, action)
            replay.insert(
                dict(
                    observations=obs,
                    actions=action,
                    rewards=reward,
                    masks=0.0 if terminated else 1.0,
                    dones=terminated or truncated,
                    next_observations=next_obs,
                )
            )
            obs = envs.reset(0, None) if terminated or truncated else next_obs
            if i >= loop["start_training"]:
                batch = interleave(offline.sample(n_offline), replay.sample(n_online))
                u0 = time.perf_counter()
                agent, _ = agent.update(batch, g)
                if first_update_seconds is None:
                    import jax

                    jax.block_until_ready(agent)
                    first_update_seconds = time.perf_counter() - u0
            if (i + 1) % loop["eval_interval"] == 0 or i + 1 == loop["max_steps"]:
                train_seconds += time.perf_counter() - t0
                e0 = time.perf_counter()
                value, agent = evaluate(algo, agent, envs, loop["eval_episodes"], loop["eval_seed"], act)
                eval_seconds += time.perf_counter() - e0
                steps.append(i + 1)
                success.append(value)
                done = i + 1 == loop["max_steps"]
                save(path, record, steps, success, train_seconds, start, eval_seconds, first_update_seconds, done)
                print(
                    f"{task} | {REFERENCES[algo]['method']} | seed {seed}: step {i + 1} success {value:.0%} "
                    f"({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
                t0 = time.perf_counter()
    finally:
        envs.close()
    params = {"critic": count_params(agent.critic.params), "actor": count_params(agent.actor.params)}
    if algo == "expo":
        params["edit_actor"] = count_params(agent.edit_actor.params)
    record["parameters"] = params
    path.write_text(json.dumps(record, indent=1))
    print(f"saved {path.relative_to(ROOT)}: final {success[-1]:.0%}, {record['wall_seconds']:.0f} s", flush=True)
    return record


# ---------------------------------------------------------------- translation report


NOTES = """\
## What cannot be matched, and protocol choices

- **Random numbers.** Same seed, different generators (PyTorch against JAX keys): runs pair by seed only in name.
- **EXPO's key reuse** (docs expo-reference 8.14): `sample_batch_actions` does not advance the agent's key, so the
  backup's initial diffusion noise and the target subset share randomness. It is in their code; ours draws
  independently.
- **Bound on log alpha** (ours, `max_log_ent_coef` 20): theirs has none. It only acts once |log alpha| reaches 20,
  which these budgets do not.
- **EXPO's denoiser width** is hard-coded (256) in their `DiffusionMLPResNet`, and the time-conditioning MLP is
  2 * time_dim = 256 wide whatever the denoiser. At a scale with a smaller denoiser (cpu: 64) the driver binds
  `hidden_dim` and the time MLP's `hidden_dims` on the classes their `create()` instantiates (their files are not
  changed); `--released-widths` runs the released widths instead (256 and 256, and says so in the run file name).
- **EXPO on a 1-d action space** (MountainCarContinuous): as released, `update()` fails there, because
  `sample_batch_actions` squeezes the backup's [B, 1] actions to [B] before the target critic concatenates them with
  the observations. The driver subclasses the learner and reshapes that one output to [B, d] (only when d = 1);
  `sample_actions` / `eval_actions` return a scalar there, which the driver reshapes to [d] before stepping the env.
- **RLPD's actor initialisation**: SB3's SAC actor (ours) keeps PyTorch's default init; theirs is xavier_uniform.
- **Numerics of the tanh log-probability**: theirs goes through TFP's Tanh bijector (atanh of the sample); ours
  computes it from the Gaussian draw. Equal in exact arithmetic.
- **Evaluation protocol** is the evidence suite's, not their scripts' (100 episodes every 5,000 or 10,000 steps on a
  seed + 42 eval env): one episode on each held-out reset seed 10000 + i, every `eval_every` steps and at step 0;
  success is `info['is_success']` where the env reports it, else termination. EXPO samples (`eval_actions`, argmax
  over N + K, the agent's advanced key kept as their D4RL script does); RLPD takes its mode, as ours does.
- **Budget**: their loop takes max_steps + 1 env steps and evaluates after the update of step i % interval == 0; the
  driver takes exactly the budget and evaluates after every `eval_every` env steps, as benchmarks/evidence.py does.
- **Offline sampling seed**: their scripts leave the offline dataset unseeded; the driver seeds it with the run's seed.
- **Demonstrations**: the evidence suite's scripted episodes (benchmarks/evidence.py `demonstrations`), exported from
  the project's venv to an .npz; actions scaled to [-1, 1] and clipped to +-(1 - 1e-5) as their dataset loaders do;
  masks 1 - terminated (time limits bootstrap), as ours.
- **Environments**: built by benchmarks/evidence.py's `make_env` in the project's venv and stepped over a pipe
  (benchmarks/reference/ours.py): the same env ids, task wrappers and PointMaze flattening; observations cast to
  float32 (their SinglePrecision wrapper); actions clipped and rescaled to the env's bounds (their RescaleAction +
  ClipAction), the buffer keeping the raw action.
"""


def write_translation(scale: str) -> str:
    config = load_block()[scale]
    tasks = [t for t in EVIDENCE_TASKS if t in config["tasks"]]
    first = tasks[0]
    lines = [
        f"# Translation: the evidence block's `{scale}` scale (hyperparams/expo.yml) into the reference implementations",
        "",
        "Written by `benchmarks/reference/driver.py translate` (issue #23). Ours: sb3-expo with benchmarks/evidence.py.",
        "Theirs: the keyword arguments of their learners' `create()` and what their training scripts decide.",
        "",
        "| reference | repository | commit | learner |",
        "|---|---|---|---|",
    ]
    for ref in REFERENCES.values():
        lines.append(f"| {ref['method']} | {ref['url']} | `{ref['commit'][:7]}` | `{ref['learner']}` |")
    lines += ["", "Per task (budget, evaluation, demonstrations, action dimension d):", ""]
    lines += [
        "| task | steps | eval every | eval episodes | demos | d | target entropy -d/2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in tasks:
        t = config["tasks"][task]
        d = ACTION_DIMS[task]
        lines.append(
            f"| {task} | {t['steps']:,} | {t['eval_every']:,} | {config['eval_episodes']} | {t['demos']} | {d} | {-d / 2} |"
        )
    for algo in REFERENCES:
        tr = translate(algo, config, first, ACTION_DIMS[first])
        lines += [
            "",
            f"## {REFERENCES[algo]['ours']} against {REFERENCES[algo]['method']}",
            "",
            f"Shown for {first}; other tasks differ only in the per-task table above (and the 1-d action row is for d = 1).",
            "",
        ]
        lines += [tr.table(), ""]
        if tr.unmatched:
            lines += ["Not matched:", "", *[f"- {u}" for u in tr.unmatched], ""]
        lines += ["`create()` keyword arguments:", "", "```", json.dumps(tr.create_kwargs, default=str), "```"]
        if tr.widths:
            lines += ["", f"Bound on their classes (not exposed by `create()`): {tr.widths}."]
    lines += ["", NOTES]
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "translation.md").write_text(text)
    return text


# ---------------------------------------------------------------- check


def check() -> None:
    """Both learners import, build and take one update on a tiny problem (setup.sh runs this)."""
    import gym.spaces

    obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32, seed=0)
    act_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    batch = dict(
        observations=rng.normal(size=(8, 2)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(8, 1)).astype(np.float32),
        rewards=rng.normal(size=8).astype(np.float32),
        masks=np.ones(8, np.float32),
        dones=np.zeros(8, bool),
        next_observations=rng.normal(size=(8, 2)).astype(np.float32),
    )
    for algo in REFERENCES:
        t0 = time.perf_counter()
        widths = dict(denoiser_width=16, cond_widths=(16, 16)) if algo == "expo" else {}
        learner, replay_buffer_cls, dataset_cls = load_reference(algo, widths)
        if algo == "expo":
            learner = one_dimensional_actions(learner)  # the check's action space is 1-d, as MountainCar's
        kwargs: dict[str, Any] = dict(hidden_dims=(16, 16), num_qs=2, num_min_qs=2, critic_layer_norm=True)
        if algo == "expo":
            kwargs.update(N=2, n_edit_samples=2, T=2, edit_action_scale=0.05, actor_num_blocks=1, backup_entropy=False)
        agent = learner.create(0, obs_space, act_space, **kwargs)
        offline = dataset_cls(batch, seed=0)
        replay = replay_buffer_cls(obs_space, act_space, 4)
        replay.insert({k: v[0] for k, v in batch.items()})
        agent, _ = agent.update(interleave(offline.sample(4), replay.sample(4)), 2)
        action, agent = agent.sample_actions(batch["observations"][0])
        if algo == "expo":
            width = agent.actor.params["DiffusionMLPResNet_0"]["Dense_0"]["kernel"].shape[-1]
            assert width == 16, f"denoiser width {width}: the width binding did not take"
            act = CompiledActions(learner)
            for name in ("sample_actions", "eval_actions"):
                released, after = getattr(agent, name)(batch["observations"][1])
                compiled, after_compiled = act(name, agent, batch["observations"][1])
                assert np.array_equal(np.asarray(released), compiled), (name, released, compiled)
                assert np.array_equal(np.asarray(after.rng), np.asarray(after_compiled.rng)), name
            action, agent = agent.eval_actions(batch["observations"][0])
        else:
            action = agent.eval_actions(batch["observations"][0])
        assert np.asarray(action).size == 1, np.asarray(action).shape
        print(
            f"check: {REFERENCES[algo]['method']} at {REFERENCES[algo]['commit'][:7]}: create, update, act ok "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    print(f"check: {versions()}")


# ---------------------------------------------------------------- command line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="import both learners and take one update each")
    p = sub.add_parser("translate", help="print the translation side by side and write it to translation.md")
    p.add_argument("--scale", default="cpu")
    p = sub.add_parser("run", help="run the reference implementations on the evidence tasks")
    p.add_argument("--algo", nargs="+", choices=list(REFERENCES), default=list(REFERENCES))
    p.add_argument("--scale", default="cpu", help="a key of the evidence block of hyperparams/expo.yml")
    p.add_argument("--tasks", nargs="+", help="default: the scale's evidence tasks")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds 0..n-1 (default: the scale's)")
    p.add_argument("--seed-list", type=int, nargs="+", help="explicit seeds (instead of --seeds)")
    p.add_argument("--steps", type=int, help="a shorter budget than the scale's (recorded; the file name says so)")
    p.add_argument("--released-widths", action="store_true", help="EXPO: keep create()'s hard-coded widths (256)")
    p.add_argument("--ours-python", help="the project's python (default .venv/bin/python or $SB3_EXPO_PYTHON)")
    p.add_argument("--force", action="store_true", help="repeat runs already on disk")
    p.add_argument("--report-only", action="store_true", help="only rebuild the report from the runs on disk")
    args = parser.parse_args()

    if args.command == "check":
        check()
        return
    if args.command == "translate":
        write_translation(args.scale)
        config = load_block()[args.scale]
        for algo in REFERENCES:
            tr = translate(algo, config, "MountainCarContinuous-v0", 1)
            print(f"\n== {REFERENCES[algo]['ours']} (ours) against {REFERENCES[algo]['method']} (theirs), {args.scale} scale")
            print(tr.side_by_side())
        print(f"\nwritten: {(RESULTS / 'translation.md').relative_to(ROOT)}")
        return
    report = [ours_python(args.ours_python), str(HERE / "report.py"), "--scale", args.scale]  # in the project's venv
    if args.report_only:
        subprocess.run(report, check=True)
        return
    config = load_block()[args.scale]
    tasks = args.tasks or [t for t in EVIDENCE_TASKS if t in config["tasks"]]
    seeds = args.seed_list or list(range(args.seeds or config["seeds"]))
    for task in tasks:
        for algo in args.algo:
            tr = translate(algo, config, task, ACTION_DIMS.get(task, 1), match_widths=not args.released_widths)
            print(f"\n== {REFERENCES[algo]['ours']} (ours) against {REFERENCES[algo]['method']} (theirs) on {task}")
            print(tr.side_by_side(), flush=True)
            for seed in seeds:
                execute(algo, args.scale, task, seed, args)
    subprocess.run(report, check=True)


if __name__ == "__main__":
    main()
