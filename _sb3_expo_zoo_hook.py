"""Start-up hook (loaded by sb3_expo_zoo.pth): registers EXPO with rl_zoo3 right after `import rl_zoo3`.

It imports nothing heavy at start-up: it only adds a finder that waits for the rl_zoo3 package. Switch it off
with SB3_EXPO_ZOO_HOOK=0. Any failure is reported as a warning, never raised into the user's program.
"""

import os
import sys


class _AfterZooImport:
    """Meta-path finder: lets rl_zoo3 load normally, then calls sb3_expo.zoo.register()."""

    def find_spec(self, name, path=None, target=None):
        if name != "rl_zoo3":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            try:
                from sb3_expo.zoo import register

                register()
            except Exception as error:
                import warnings

                warnings.warn(f"sb3-expo could not register EXPO with rl_zoo3: {error!r}", stacklevel=2)

        spec.loader.exec_module = exec_and_register
        return spec


def install():
    if os.environ.get("SB3_EXPO_ZOO_HOOK", "1").lower() in ("0", "false", "no", "off"):
        return
    if "rl_zoo3" in sys.modules:
        return
    if not any(isinstance(f, _AfterZooImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterZooImport())
