# reclab: two commands on a fresh clone, `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
export RECLAB_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install run test test-fast chromium bench lab ui clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync -q --compile-bytecode --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/reclab run -p params/default.yaml

# The browser test drives Debian's Chromium (never a browser a test tool downloads): installed here
# when missing and this user can (root with apt-get), otherwise one line says what to run.
CHROMIUM := $(shell command -v chromium 2>/dev/null)

chromium:
ifeq ($(CHROMIUM),)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser test (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "the browser test needs Debian's chromium: run 'sudo apt-get install -y chromium', then 'make test'" >&2; \
	  exit 1; \
	fi
endif

test: $(STAMP) chromium
	$(PY) -m pytest -q -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not spark and not browser"

# Benchmark peers (implicit, scikit-surprise) live in their own venv, never in the one `make test` uses.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): requirements-bench.lock pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q uv==$(UV_VERSION)
	$(BENCH_VENV)/bin/uv pip sync -q --compile-bytecode --python $(BENCH_VENV)/bin/python requirements-bench.lock
	$(BENCH_VENV)/bin/uv pip install -q --python $(BENCH_VENV)/bin/python --no-deps -e .
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks $(BENCH_ARGS)

# Jupyter refuses to run as root unless told to (containers and CI machines run as root).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

ui: $(STAMP)
	$(VENV)/bin/reclab ui

clean:
	rm -rf $(VENV) $(BENCH_VENV) mlruns mlflow.db
