# reclab: two commands on a fresh clone, `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
export RECLAB_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install run test test-fast bench lab ui clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync -q --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/reclab run -p params/default.yaml

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not spark and not browser"

# Benchmark peers (implicit, scikit-surprise) are installed only here, never for `make test`.
bench: $(STAMP)
	$(VENV)/bin/uv pip sync -q --python $(PY) requirements-bench.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	$(PY) -m benchmarks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 notebooks/

ui: $(STAMP)
	$(VENV)/bin/reclab ui

clean:
	rm -rf $(VENV) mlruns mlflow.db
