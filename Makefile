# The two commands of the README. Each installs what it needs into .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sb3-expo-installed

.PHONY: demo test docs install clean postgres

$(STAMP): pyproject.toml Makefile _sb3_expo_zoo_hook.py sb3_expo_zoo.pth
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: takes the local CPU wheel instead of pulling a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,bench]"
	# robosuite without its mink pin (mink forces numpy<2; only an optional humanoid controller needs it)
	$(PY) -m pip install --quiet --no-deps robosuite==1.5.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m sb3_expo.demo

test: $(STAMP) postgres
	$(PY) -m pytest -q -ra

# The documentation site, with warnings as errors (make test builds it too, in tests/test_docs.py).
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

# The shared-storage tuning test starts its own PostgreSQL server on 127.0.0.1 (skips, saying why, without one).
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
		|| echo "PostgreSQL could not be installed: its test will skip"; }

clean:
	rm -rf $(VENV) demo_out docs/_build
