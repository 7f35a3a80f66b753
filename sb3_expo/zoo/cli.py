"""`expo-zoo train|enjoy|record_video|...`: rl_zoo3's commands with EXPO registered, no start-up hook needed."""

from __future__ import annotations

import runpy
import sys

from sb3_expo.zoo import register

MODULES = {"record_video": "rl_zoo3.record_video", "record_training": "rl_zoo3.record_training"}


def main() -> None:
    register()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in MODULES:
        del sys.argv[1]
        runpy.run_module(MODULES[command], run_name="__main__", alter_sys=True)
        return
    from rl_zoo3.cli import main as zoo_main

    zoo_main()


if __name__ == "__main__":
    main()
