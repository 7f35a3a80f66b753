"""The documentation site: it builds with warnings as errors, and its examples work.

- Every ```python block runs: a page's blocks in order, in one fresh process and working folder, the way a reader
  would paste them. Training calls run at a tiny budget (the prelude below caps `learn`, `pretrain` and
  `warm_start`; nothing else is changed), so the examples keep the budgets a user would give.
- Every command in a ```bash block is checked without running it (most train for hours or install packages): an
  rl-zoo3, `expo-zoo`, `python -m ...` or `python benchmarks/...` command must be accepted by that program's own
  argument parser; a `make` target must exist; a `pip install` must name extras and pins the project has; a program
  must be installed. tests/test_zoo.py runs the zoo commands themselves at tiny budgets.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)


def test_the_site_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    for page in ("index", "modules/expo", "modules/gorl", "modules/rlpd", "misc/changelog", "misc/evidence"):
        assert (tmp_path / f"{page}.html").exists(), page
    # the parameters are rendered from the docstrings
    expo = (tmp_path / "modules/expo.html").read_text()
    assert "edit_beta" in expo and "n_base_samples" in expo


# Caps the budget of every training call; the rest of the example runs as written.
PRELUDE = """
import torch
torch.set_num_threads(1)
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

_setup_learn = BaseAlgorithm._setup_learn

def _tiny_setup_learn(self, total_timesteps, callback=None, reset_num_timesteps=True, *args, **kwargs):
    if isinstance(self, OnPolicyAlgorithm):
        tiny = self.n_steps * self.n_envs  # one rollout, one update
    else:  # one update, counted from where this call starts
        done = 0 if reset_num_timesteps else self.num_timesteps
        tiny = max(getattr(self, "learning_starts", 0) - done, 0) + self.n_envs
    return _setup_learn(self, min(total_timesteps, tiny), callback, reset_num_timesteps, *args, **kwargs)

BaseAlgorithm._setup_learn = _tiny_setup_learn

import sb3_expo
for cls in (sb3_expo.EXPO, sb3_expo.RLPD):
    _pretrain = cls.pretrain
    cls.pretrain = lambda self, n, *a, _f=_pretrain, **k: _f(self, min(n, 5), *a, **k)
_warm_start = sb3_expo.EXPO.warm_start
sb3_expo.EXPO.warm_start = lambda self, n, _f=_warm_start: _f(self, min(n, 1))
"""

EXAMPLE_PAGES = [p for p in PAGES if blocks(p, "python")]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=[p.relative_to(DOCS).as_posix() for p in EXAMPLE_PAGES])
def test_python_examples_run(page, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(PRELUDE + "\n".join(f"# --- block {i}\n{b}" for i, b in enumerate(blocks(page, "python"))))
    env = {**os.environ, "MUJOCO_GL": "egl", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{page}:\n{result.stderr[-5000:]}"


def commands(page: Path) -> list[str]:
    """The commands of a page's bash blocks, continuation lines joined, comments dropped."""
    found = []
    for block in blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


COMMANDS = [(p, c) for p in [*PAGES, ROOT / "README.md"] for c in commands(p)]

# Parses each argv with its program's own argparse parser, then stops before the program does anything.
PARSE_ONLY = """
import argparse, json, os, runpy, sys
class Parsed(Exception):
    pass
_parse = argparse.ArgumentParser.parse_args
def parse_args(self, args=None, namespace=None):
    _parse(self, args, namespace)
    raise Parsed
argparse.ArgumentParser.parse_args = parse_args
for target, argv in json.loads(sys.argv[1]):
    sys.argv = [target, *argv]
    try:
        if target.endswith(".py"):
            sys.path.insert(0, os.path.dirname(target))  # as `python script.py` does
            runpy.run_path(target, run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except Parsed:
        continue
    sys.exit(f"{target} {argv}: the program ran past its argument parser")
"""

ZOO_SCRIPTS = {"train": "rl_zoo3.train", "enjoy": "rl_zoo3.enjoy", "record_video": "rl_zoo3.record_video"}


def program(line: str) -> tuple[str, list[str]] | None:
    """The (module or script, argv) a command runs through argparse; None for the other commands, checked here."""
    words = shlex.split(line)
    if words[0] == "export":
        return None  # a setting the next commands read (e.g. PGPASSWORD), not a program
    if words[0] == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M)
        assert set(words[1:]) <= set(targets), f"no such make target: {line}"
        return None
    if words[0] == "pip":
        section = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
        extras = re.findall(r"^(\w+) = ", section, re.M)
        for word in words[2:]:
            named = re.fullmatch(r"sb3-expo\[([\w,]+)\]", word)
            if named:
                assert set(named[1].split(",")) <= set(extras), f"no such extra: {line}"
            elif "==" in word:
                assert word in (ROOT / "Makefile").read_text(), f"a pin the Makefile does not install: {line}"
        return None
    if words[0] in ("rl_zoo3", "expo-zoo"):
        return ZOO_SCRIPTS[words[1]], words[2:]
    if words[:2] == ["python", "-m"]:
        return words[2], words[3:]
    if words[0] == "python":
        return str(ROOT / words[1]), words[2:]
    assert Path(sys.executable).with_name(words[0]).exists(), f"not installed: {words[0]}"
    return None


def test_commands_are_accepted():
    parsed = [run for _, line in COMMANDS if (run := program(line))]
    assert len(parsed) > 20  # the zoo, generator and benchmark commands of the pages
    result = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, json.dumps(parsed)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_readme_examples_are_the_docs_examples():
    """The README's Python examples are run above, as the quick start page's: each is one of that page's blocks."""
    quickstart = blocks(DOCS / "guide" / "quickstart.md", "python")
    readme = blocks(ROOT / "README.md", "python")
    assert len(readme) >= 3  # EXPO, RLPD, GoRL
    for block in readme:
        assert block in quickstart, block


def test_readme_links_resolve():
    """The README's relative links (to the docs pages, plots and files) point at files in the repository."""
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)", readme):
        assert (ROOT / target).exists(), target
