"""Shared fixtures: the real MovieLens data (skipped with a reason when absent) and its standard
split; four pipelines run at once, read by several test files. How the suite is spread over
pytest-xdist workers (``make test`` runs two): one test file per worker at a time, so that module
fixtures run once, and the files that read the session's four pipelines in the same worker."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reclab as rl
from helpers import FOUR_PIPELINES, FOUR_PIPELINES_EXPERIMENT, QUIET, SMALL_PIPELINE

# Test files whose tests read the session fixture four_pipelines: one xdist worker runs them all.
FOUR_PIPELINES_FILES = ("test_browser.py", "test_concurrency.py", "test_readme.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Group each test by its file for ``--dist loadgroup`` (a module's fixtures then run in one
    worker only), and the readers of four_pipelines together."""
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group(
            "four_pipelines" if name in FOUR_PIPELINES_FILES else name))


@pytest.fixture(scope="session")
def shared_path():
    """``shared_path("zips/ml-latest-small.zip")``: that path in the real-data folder RECLAB_DATA_DIR,
    or skip the test saying how to provide it.

    The folder is read when the session starts, so tests that then clear RECLAB_DATA_DIR (to check
    the lookup order) still find the real files.
    """
    folder = os.environ.get("RECLAB_DATA_DIR")

    def path(relative: str) -> Path:
        if not folder or not (Path(folder) / relative).exists():
            pytest.skip(f"real MovieLens data not found: no {relative} in RECLAB_DATA_DIR={folder!r}; "
                        "set RECLAB_DATA_DIR to the shared data folder (../shared/data)")
        return Path(folder) / relative

    return path


@pytest.fixture(scope="session")
def data_dir(shared_path) -> Path:
    """RECLAB_DATA_DIR, when it holds ml-100k (else the test is skipped)."""
    return shared_path("ml-100k/u.data").parents[1]


@pytest.fixture(scope="session")
def ml100k(data_dir):
    return rl.datasets.load("ml-100k", data_dir=data_dir, download=False)


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    """The protocol of the quality bands: 80/20 per-user random holdout, seed 42."""
    return rl.split.random_holdout(ml100k, test_frac=0.2, seed=42)


@pytest.fixture(scope="session")
def synthetic_data():
    return rl.datasets.synthetic(seed=0)


# -- four pipelines at once, read by several test files --------------------------------------
@pytest.fixture(scope="session")
def four_pipelines(tmp_path_factory):
    """Four ``reclab run`` pipelines started at the same moment on one new SQLite store (the
    store from ``MLFLOW_TRACKING_URI``): ImplicitALS and SVD, each with seeds 11 and 12, so that
    pipelines of one seed share their test split. Run once per session: the concurrency test
    checks that everything was logged, the browser test compares two of them in the MLflow UI.

    Returns ``{"folder", "uri", "runs": {(model, seed): pipeline run id}, "stdout": {(model,
    seed): what reclab run printed}, "seconds"}``.
    """
    folder = tmp_path_factory.mktemp("four-pipelines")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, **QUIET, "MLFLOW_TRACKING_URI": uri}
    reclab = Path(sys.executable).parent / "reclab"
    started = time.monotonic()
    processes = {}
    for model, seed in FOUR_PIPELINES:
        settings = [*SMALL_PIPELINE, f"experiment={FOUR_PIPELINES_EXPERIMENT}", f"model={model}",
                    f"seed={seed}"]
        processes[model, seed] = subprocess.Popen(
            [str(reclab), "run", "--output", str(folder / f"out-{model}-{seed}"),
             *[item for value in settings for item in ("--set", value)]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=folder)
    runs, printed = {}, {}
    for key, process in processes.items():
        out, err = process.communicate(timeout=1200)
        assert process.returncode == 0, (key, out[-2000:], err[-3000:])
        runs[key], printed[key] = re.search(r"MLflow run id: (\w+)", out).group(1), out
    return {"folder": folder, "uri": uri, "runs": runs, "stdout": printed,
            "seconds": time.monotonic() - started}
