"""rl-zoo3 integration: `register()` makes `--algo expo`, `gorl` and `rlpd` and their tuning available in this process.

rl_zoo3 2.9 has no plug-in hook: its `--algo` choices are the keys of `rl_zoo3.utils.ALGOS` when the parser is
built, and its default config path points inside the rl_zoo3 package. The plain `rl_zoo3` command gets lazy entries
from a start-up hook (see `_sb3_expo_zoo_hook.py`), which calls `register()` once one of ours is asked for;
`expo-zoo` calls it directly. For EXPO, GoRL and RLPD runs, register() also changes three things in the zoo:

- `--save-freq` writes crash-safe checkpoints in the zoo's layout (rl_model_<N>_steps.zip with the replay buffer and
  VecNormalize statistics under SB3's names beside it; sb3_expo.common.callbacks), and `-i <run>/rl_model_<N>_steps.zip`
  resumes the run where it stopped, with that checkpoint's buffer and statistics, up to the total steps it was
  started with;
- evaluations log the mean of the task metrics named in `monitor_kwargs: info_keywords` (e.g. eval/solved_fraction);
- the default config is this package's hyperparams/<algo>.yml (./hyperparams/<algo>.yml wins; -conf always wins).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import warnings
from pathlib import Path
from typing import Any

CONFIGS = {"expo": "expo.yml", "gorl": "gorl.yml", "rlpd": "rlpd.yml"}
CLASSES = {"expo": "EXPO", "gorl": "GoRL", "rlpd": "RLPD"}


def default_config(algo: str = "expo") -> str:
    """./hyperparams/<algo>.yml when it exists, else the copy shipped in the package (or in the source checkout)."""
    name = CONFIGS[algo]
    package = Path(__file__).resolve().parent.parent
    for candidate in (Path("hyperparams") / name, package / "hyperparams" / name, package.parent / "hyperparams" / name):
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(f"no {name} found in ./hyperparams or in the sb3_expo package.")


def register() -> None:
    """Add EXPO, GoRL and RLPD to rl_zoo3's ALGOS, samplers and converters; patch its ExperimentManager for their runs."""
    from rl_zoo3 import exp_manager, hyperparams_opt, utils

    import sb3_expo
    from sb3_expo.datasets.tasks import register_envs
    from sb3_expo.zoo.tuning import CONVERTERS, SAMPLERS

    register_envs()  # the paper's task ids: AntMaze...D4RL-v1, Adroit...Binary-v1, Robomimic...-v0 (imported when made)
    try:  # PointMaze, AntMaze, Adroit ids, when gymnasium-robotics is installed
        import gymnasium

        # its import prints a notice about the Dense Adroit rewards, which no entry of ours uses
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            import gymnasium_robotics

        gymnasium.register_envs(gymnasium_robotics)
    except ImportError:
        pass
    for algo in CONFIGS:
        if hasattr(sb3_expo, CLASSES[algo]):
            utils.ALGOS[algo] = getattr(sb3_expo, CLASSES[algo])
            hyperparams_opt.HYPERPARAMS_SAMPLER[algo] = SAMPLERS[algo]
            hyperparams_opt.HYPERPARAMS_CONVERTER[algo] = CONVERTERS[algo]
    _patch(exp_manager.ExperimentManager)


def _patch(manager: type) -> None:
    if getattr(manager, "_sb3_expo_patched", False):
        return
    manager._sb3_expo_patched = True
    init = getattr(manager.__init__, "_sb3_expo_original", manager.__init__)  # under the start-up hook's lazy wrapper
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        algo = bound.arguments.get("algo")
        if algo in CONFIGS and bound.arguments.get("config") is None:  # -conf always wins
            bound.arguments["config"] = default_config(algo)
        init(*bound.args, **bound.kwargs)

    create_callbacks, learn, preprocess = manager.create_callbacks, manager.learn, manager._preprocess_hyperparams
    load_pretrained, maybe_normalize = manager._load_pretrained_agent, manager._maybe_normalize

    def preprocess_for_ours(self: Any, hyperparams: dict[str, Any]) -> Any:
        """rl_zoo3 2.9 gives an entry's `env_kwargs` to the training env only: its evaluation env (EvalCallback,
        -optimize's trials) is made without them (e.g. PointMaze evaluated as a continuing task). Ours evaluate on
        the env they train on, unless --eval-env-kwargs says otherwise."""
        out = preprocess(self, hyperparams)
        if self.algo in CONFIGS and self._eval_env_kwargs_args is None:
            self.eval_env_kwargs = self.env_kwargs
        return out

    def create_callbacks_for_ours(self: Any) -> None:
        if self.algo in CONFIGS:  # an entry's `callback` is there already: refuse it before anything is built
            from sb3_expo.common.callbacks import refuse_parallel_training

            refuse_parallel_training(CLASSES[self.algo], self.callbacks)
        create_callbacks(self)
        if self.algo in CONFIGS:
            _use_our_callbacks(self)

    def learn_for_ours(self: Any, model: Any) -> None:
        total = int(model._total_timesteps or 0)  # the target of the run that saved the checkpoint
        if _checkpoint(self) is not None and model.num_timesteps < total:
            return _resume(self, model, total)
        return learn(self, model)  # a final model (or a run's last checkpoint): the zoo's -i, -n more steps

    def load_pretrained_for_ours(self: Any, hyperparams: dict[str, Any], env: Any) -> Any:
        """-i from a checkpoint: the zoo's loading, with the checkpoint's own replay buffer (the zoo would take the
        run's final replay_buffer.pkl, or none)."""
        checkpoint = _checkpoint(self)
        if checkpoint is None:
            return load_pretrained(self, hyperparams, env)
        from rl_zoo3.utils import ALGOS

        print("Loading pretrained agent")
        kwargs = {k: v for k, v in hyperparams.items() if k not in ("policy", "policy_kwargs")}  # as the zoo does
        model = ALGOS[self.algo].load(
            self.trained_agent,
            env=env,
            seed=self.seed,
            tensorboard_log=self.tensorboard_log,
            verbose=self.verbose,
            device=self.device,
            **kwargs,
        )
        if checkpoint.replay_buffer is not None:
            print("Loading replay buffer")
            model.load_replay_buffer(checkpoint.replay_buffer, truncate_last_traj=self.truncate_last_trajectory)
        elif hasattr(model, "replay_buffer"):
            warnings.warn(
                f"{checkpoint.model.name} has no replay buffer beside it (only the newest checkpoints keep theirs): "
                "resuming with an empty online buffer.",
                stacklevel=2,
            )
        return model

    def maybe_normalize_for_ours(self: Any, env: Any, eval_env: bool) -> Any:
        """-i from a checkpoint: its own VecNormalize statistics (the zoo would take the run's latest ones)."""
        checkpoint = _checkpoint(self)
        if checkpoint is None or checkpoint.vecnormalize is None:
            return maybe_normalize(self, env, eval_env)
        from stable_baselines3.common.vec_env import VecNormalize

        print("Loading saved VecNormalize stats")
        env = VecNormalize.load(str(checkpoint.vecnormalize), env)
        if eval_env:
            env.training, env.norm_reward = False, False
        return env

    manager.__init__ = __init__
    manager.create_callbacks = create_callbacks_for_ours
    manager.learn = learn_for_ours
    manager._preprocess_hyperparams = preprocess_for_ours
    manager._load_pretrained_agent = load_pretrained_for_ours
    manager._maybe_normalize = maybe_normalize_for_ours


def _checkpoint(manager: Any) -> Any:
    """The checkpoint that `-i` names, for our algorithms (None for a final model, or another algorithm)."""
    if manager.algo not in CONFIGS or not manager.continue_training:
        return None
    from sb3_expo.common.callbacks import checkpoint_of

    return checkpoint_of(manager.trained_agent)


def _use_our_callbacks(manager: Any) -> None:
    """The zoo's checkpoint and evaluation callbacks, turned into their resumable / task-metric versions."""
    from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

    from sb3_expo.common.callbacks import InfoEvalCallback, ResumableCheckpointCallback

    metrics = tuple(k for k in manager.monitor_kwargs.get("info_keywords", ()) if k != "is_success")
    for i, callback in enumerate(manager.callbacks):
        if type(callback) is CheckpointCallback:
            manager.callbacks[i] = ResumableCheckpointCallback(
                callback.save_freq, callback.save_path, callback.name_prefix, verbose=callback.verbose
            )
        elif type(callback) is EvalCallback:
            callback.__class__ = InfoEvalCallback  # the zoo's own, with every argument it chose; set up at training start
            callback.info_keywords = metrics


def _resume(manager: Any, model: Any, total_timesteps: int) -> None:
    """The zoo's learn() for a run continued from one of its checkpoints: the step count and schedules go on."""
    print(f"Resuming from a checkpoint at {model.num_timesteps} of {total_timesteps} steps")
    kwargs: dict[str, Any] = {"reset_num_timesteps": False}
    if manager.log_interval > -1:
        kwargs["log_interval"] = manager.log_interval
    elif manager.log_interval < -1:
        kwargs["log_interval"] = None
    if manager.callbacks:
        kwargs["callback"] = manager.callbacks
    try:
        model.learn(max(total_timesteps - model.num_timesteps, 0), **kwargs)
    except KeyboardInterrupt:
        pass
    finally:
        if manager.callbacks:
            manager.callbacks[0].on_training_end()
        try:
            model.env.close()
        except EOFError:
            pass
