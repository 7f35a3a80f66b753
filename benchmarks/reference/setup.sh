#!/usr/bin/env bash
# One-command set-up of the reference side (issue #23): the authors' EXPO and the RLPD authors' code at their commits,
# in their own virtual environment (benchmarks/reference/.venv), outside `make test`.
#
#   bash benchmarks/reference/setup.sh [EXPO_SOURCE] [RLPD_SOURCE]
#
# A source is a git repository holding the commit: a clone (work tree) or a bare git directory (a mirror). Defaults:
# $REFERENCE_EXPO_SOURCE / $REFERENCE_RLPD_SOURCE, else the mirrors /work/.mirror/Servo97+EXPO/repo and
# /work/.mirror/ikostrikov+rlpd/repo if present, else a clone from GitHub (needs network to github.com).
# The commits are extracted with `git archive` into benchmarks/reference/.cache/ (git-ignored); nothing of theirs
# is copied into the repository. Environment: PYTHON (default python3, 3.9-3.12), REFERENCE_VENV.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$HERE/.cache"
VENV="${REFERENCE_VENV:-$HERE/.venv}"
PYTHON="${PYTHON:-python3}"

EXPO_URL=https://github.com/Servo97/EXPO
EXPO_COMMIT=b7ed7103089ad2d15d3f32386469dcc0e1333279   # "Initial commit", the authors' initial release
RLPD_URL=https://github.com/ikostrikov/rlpd
RLPD_COMMIT=c90fd4baf28c9c9ef40a81460a2e395092844f88   # "Initial commit"

EXPO_SOURCE="${1:-${REFERENCE_EXPO_SOURCE:-/work/.mirror/Servo97+EXPO/repo}}"
RLPD_SOURCE="${2:-${REFERENCE_RLPD_SOURCE:-/work/.mirror/ikostrikov+rlpd/repo}}"

# git_dir SOURCE URL NAME: prints a git directory that holds the commit (the source's, or a fresh bare clone)
git_dir() {
  local source="$1" url="$2" name="$3"
  if [ -d "$source" ]; then
    if git --git-dir="$source" rev-parse --git-dir >/dev/null 2>&1 && [ ! -d "$source/.git" ]; then
      echo "$source"
    else
      git -C "$source" rev-parse --absolute-git-dir
    fi
    return
  fi
  echo "setup: $source not found, cloning $url (needs network to GitHub)" >&2
  git clone --quiet --bare "$url" "$CACHE/$name.git" >&2
  echo "$CACHE/$name.git"
}

# extract NAME SOURCE URL COMMIT: the commit's tree into .cache/NAME-COMMIT (once)
extract() {
  local name="$1" source="$2" url="$3" commit="$4"
  local dest="$CACHE/$name-${commit:0:7}"
  if [ -f "$dest/.complete" ]; then
    echo "setup: $name at ${commit:0:7} already in $dest"
    return
  fi
  local gd
  gd="$(git_dir "$source" "$url" "$name")"
  if ! git --git-dir="$gd" cat-file -e "$commit^{commit}" 2>/dev/null; then
    echo "setup: $gd does not hold commit $commit of $url" >&2
    exit 1
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  git --git-dir="$gd" archive "$commit" | tar -x -C "$dest"
  echo "$commit" >"$dest/.complete"
  echo "setup: $name at ${commit:0:7} extracted to $dest"
}

mkdir -p "$CACHE"
extract EXPO "$EXPO_SOURCE" "$EXPO_URL" "$EXPO_COMMIT"
extract rlpd "$RLPD_SOURCE" "$RLPD_URL" "$RLPD_COMMIT"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# Known to work here: jax/jaxlib 0.4.30, flax 0.8.5, optax 0.2.3, tensorflow-probability 0.24 (its JAX substrate,
# imported explicitly), numpy < 2. ml_collections reads the authors' config files; PyYAML our hyperparams/expo.yml.
# No gym: the driver puts a stub on the path (benchmarks/reference/stub/gym), used only for space types and seeding.
"$VENV/bin/python" -m pip install --quiet \
  "jax==0.4.30" "jaxlib==0.4.30" "flax==0.8.5" "optax==0.2.3" "tensorflow-probability==0.24.0" \
  "numpy<2" "scipy<1.14" "ml_collections" "pyyaml"

# Smoke check: both learners import and build on a 2-d task, single-threaded.
XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  "$VENV/bin/python" "$HERE/driver.py" check
echo "setup: done. Run: $VENV/bin/python $HERE/driver.py --help"
