# The README's two commands: `make demo` and `make test`. Both bootstrap .venv first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_USE_LEGACY_KERAS := 1
# TF's C++ logging: only FATAL lines (see tf_ccl4rec/_env.py); our own progress output is what
# users read. Set TF_CPP_MIN_LOG_LEVEL=0 on the command line to see everything.
export TF_CPP_MIN_LOG_LEVEL ?= 3
UV_COMPILE := uv pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_28 --quiet
DEMO_DIR ?= demo_out

.PHONY: venv test lint format demo lock clean

# `make venv SCANN=1` also installs requirements-scann.lock (ScaNN's index; docs/scaling.md).
venv:
	@bash scripts/bootstrap.sh $(VENV) $(if $(SCANN),--scann)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The tests run on tcmalloc when scripts/tcmalloc.sh finds (or, as root, installs) it: ~8 % less
# CPU than glibc's malloc over the suite (README, Performance); without it they run as they are.
test: venv lint
	LD_PRELOAD="$$(bash scripts/tcmalloc.sh)" $(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(PY) -m tf_ccl4rec.demo --out $(DEMO_DIR)

# Regenerate the locks (needs `uv` on PATH: `pip install uv`); commit all three files.
lock:
	$(UV_COMPILE) requirements.in -o requirements.lock
	$(UV_COMPILE) requirements-dev.in -c requirements.lock -o requirements-dev.lock
	$(UV_COMPILE) requirements-scann.in -c requirements.lock -o requirements-scann.lock

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache build *.egg-info
