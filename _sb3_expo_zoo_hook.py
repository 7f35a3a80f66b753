"""Start-up hook (loaded by sb3_expo_zoo.pth): makes `--algo expo`, `gorl` and `rlpd` known to rl_zoo3.

It costs every other zoo user nothing: at interpreter start it only adds an import finder, and when rl_zoo3 is
imported it adds lazy entries to rl_zoo3's ALGOS (and, when the zoo's tuning module loads, to its samplers).
Nothing of sb3_expo is imported and nothing is printed until one of ours is asked for: by `--algo expo|gorl|rlpd` on the
command line, or when one of the entries is used. Then sb3_expo.zoo.register() does the full registration.
Off with SB3_EXPO_ZOO_HOOK=0. A failure is reported as a warning, never raised into the user's program.
"""

import os
import sys

OURS = {"expo": "EXPO", "gorl": "GoRL", "rlpd": "RLPD"}


def _full_registration():
    from sb3_expo.zoo import register

    register()


def _requested_on_command_line():
    """--algo expo / --algo=gorl in sys.argv (rl_zoo3 train, enjoy, record_video, ...)."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg == "--algo" and i + 1 < len(args) and args[i + 1] in OURS:
            return True
        if arg.startswith("--algo=") and arg.split("=", 1)[1] in OURS:
            return True
    return False


class _LazyAlgorithm(type):
    """A stand-in class in rl_zoo3's ALGOS: the first use imports sb3_expo and forwards to the real algorithm."""

    def real(cls):
        _full_registration()
        import sb3_expo

        return getattr(sb3_expo, cls._class_name)

    def __call__(cls, *args, **kwargs):
        return cls.real()(*args, **kwargs)

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(cls.real(), name)


def _lazy_algorithm(class_name):
    return _LazyAlgorithm(class_name, (), {"_class_name": class_name, "__module__": "sb3_expo"})


def _lazy_function(algo, kind):
    def call(*args, **kwargs):
        _full_registration()
        from rl_zoo3 import hyperparams_opt

        return getattr(hyperparams_opt, kind)[algo](*args, **kwargs)

    return call


def _after_zoo(module):
    from rl_zoo3 import utils

    for algo, class_name in OURS.items():
        utils.ALGOS.setdefault(algo, _lazy_algorithm(class_name))
    if _requested_on_command_line():  # the env ids (robosuite tasks, gymnasium-robotics) must exist before parsing
        _full_registration()


def _after_tuning(module):
    for algo in OURS:
        module.HYPERPARAMS_SAMPLER.setdefault(algo, _lazy_function(algo, "HYPERPARAMS_SAMPLER"))
        module.HYPERPARAMS_CONVERTER.setdefault(algo, _lazy_function(algo, "HYPERPARAMS_CONVERTER"))


def _after_experiment_manager(module):
    manager = module.ExperimentManager
    init = manager.__init__
    if getattr(init, "_sb3_expo_lazy", False):
        return

    def wrapped(self, args, algo, *rest, **kwargs):
        if algo in OURS:  # e.g. an ExperimentManager built in Python, without the command line
            _full_registration()
            return module.ExperimentManager.__init__(self, args, algo, *rest, **kwargs)
        return init(self, args, algo, *rest, **kwargs)

    wrapped._sb3_expo_lazy = True
    wrapped._sb3_expo_original = init  # what the full registration wraps
    manager.__init__ = wrapped


AFTER_IMPORT = {
    "rl_zoo3": _after_zoo,
    "rl_zoo3.hyperparams_opt": _after_tuning,
    "rl_zoo3.exp_manager": _after_experiment_manager,
}


class _AfterImport:
    """Meta-path finder: lets a module load normally, then runs its AFTER_IMPORT function."""

    def __init__(self):
        self.pending = set(AFTER_IMPORT)

    def find_spec(self, name, path=None, target=None):
        if name not in self.pending:
            return None
        self.pending.discard(name)
        import importlib.util

        sys.meta_path.remove(self)  # find the real spec without finding ourselves again
        try:
            spec = importlib.util.find_spec(name)
        finally:
            if self.pending:
                sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            try:
                AFTER_IMPORT[name](module)
            except Exception as error:
                import warnings

                warnings.warn(f"sb3-expo could not register its algorithms with rl_zoo3: {error!r}", stacklevel=2)

        spec.loader.exec_module = exec_and_register
        return spec


def install():
    if os.environ.get("SB3_EXPO_ZOO_HOOK", "1").lower() in ("0", "false", "no", "off"):
        return
    if "rl_zoo3" in sys.modules:
        return
    if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
