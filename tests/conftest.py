"""Shared fixtures: the real MovieLens data (skipped with a reason when absent) and its standard
split; three pipelines run at once, read by several test files. How the suite is spread over
pytest-xdist workers (``make test`` runs two): one test file per worker at a time, so that module
fixtures run once, and the files that read the session's three pipelines in the same worker; a
slow test that needs no module fixture is a unit of its own, and the units that take minutes are
handed out first (longest first), so that both workers finish at about the same time."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reclab as rl
from helpers import PIPELINES_AT_ONCE, AT_ONCE_EXPERIMENT, QUIET, SMALL_PIPELINE

# Every JVM the tests start (the Spark tests' session, the stage kernels of the Spark pipeline
# test) lives for a minute or two of small jobs: the JIT's quick tier alone starts and warms up
# about 30% cheaper in CPU (test_spark.py: 233 -> 167 core-seconds on 2 cores). Its frames are
# larger, so Spark's recursive plan code needs a bigger thread stack. Not a setting for real data.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -Xss16m")

# Test files whose tests read the session fixture pipelines_at_once: one xdist worker runs them all.
AT_ONCE_FILES = ("test_browser.py", "test_concurrency.py", "test_readme.py")


# Slow tests that need no module fixture: each is a work unit of its own (else one per file).
ALONE = {"test_pipeline.py::test_ml100k_pipeline",
         "test_pipeline.py::test_every_stage_works_with_the_model_tuning_picked_not_the_model_named",
         "test_pipeline.py::test_stage_4_explains_with_a_user_who_has_watched_something_on_a_cold_users_split",
         "test_pipeline.py::test_stage_5_reports_the_new_users_of_a_temporal_split_apart",
         "test_pipeline.py::test_ml_latest_small_pipeline_on_spark",
         "test_pipeline.py::test_a_search_the_time_budget_stopped_says_so_in_the_summary_and_the_tune_run",
         "test_concurrency.py::test_sigterm_during_a_stage_leaves_nothing_running_and_resume_finishes",
         "test_concurrency.py::test_processes_opening_a_new_sqlite_store_at_once_all_succeed"}
# The work units that take minutes, then those over 10 s, longest first (measured with
# ``--durations`` and per-test start times): handed out first, so that both workers end at about
# the same time. xdist's own order, by number of tests, left the long ones for last and one worker
# running them alone; the units of 10-30 s, left in collection order, ended one worker 44 s after
# the other.
LONGEST_FIRST = ("pipelines_at_once", "test_pipeline.py",
                 "test_pipeline.py::test_ml_latest_small_pipeline_on_spark",
                 "test_concurrency.py::test_sigterm_during_a_stage_leaves_nothing_running_and_resume_finishes",
                 "test_notebooks_alone.py", "test_pipeline.py::test_ml100k_pipeline", "test_cli.py",
                 "test_spark.py", "test_als.py", "test_tuning.py",
                 "test_pipeline.py::test_every_stage_works_with_the_model_tuning_picked_not_the_model_named",
                 "test_pipeline.py::test_stage_5_reports_the_new_users_of_a_temporal_split_apart",
                 "test_pipeline.py::test_stage_4_explains_with_a_user_who_has_watched_something_on_a_cold_users_split",
                 "test_concurrency.py::test_processes_opening_a_new_sqlite_store_at_once_all_succeed",
                 "test_tracking.py", "test_robustness.py")


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test id (``tests/test_x.py::test_y[param]``): the readers of
    pipelines_at_once together, a test of :data:`ALONE` alone, every other test with its file (its
    module fixtures then run in one worker only)."""
    path, _, name = nodeid.partition("::")
    test = f"{Path(path).name}::{name.partition('[')[0]}"
    if test in ALONE:
        return test
    return "pipelines_at_once" if Path(path).name in AT_ONCE_FILES else Path(path).name


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (``make test``) in the work units of :func:`work_unit`, longest first.

    xdist 3.8 groups by a suffix it writes to ``item._nodeid``, which pytest 9 no longer reads:
    its own loadgroup ran every test as a unit of its own, so both workers ran the session's
    pipelines and every module's pipeline. Here the controller groups the test ids itself.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False   # keep the order of pytest_collection_modifyitems
    return WorkUnitScheduling(config, log)


def pytest_configure(config):
    """Compile reclab's numba kernels once, before any worker or stage kernel starts.

    On a fresh clone numba's cache (``__pycache__`` beside the kernels) is empty: without this,
    both workers and the kernels of the three pipelines started at once would each compile the
    same kernels at the same moment, for seconds of CPU each, all writing the same cache files.
    Here the xdist controller (or the only process) fits the compiled models once in their
    default float32 form, with a training curve, and ranks; every later process loads them from
    the cache. numba compiles one kernel at a time, so a second process fits the Cholesky
    models meanwhile: on 2 cores the compiles took 33 s one after the other, 19 s in two halves.
    """
    if hasattr(config, "workerinput"):   # an xdist worker: the controller has done it
        return
    # Each process: [model, its options, whether it also ranks]; a callback, so that the loss
    # kernels of the training curve are compiled too.
    code = ("import json, sys\nimport reclab as rl\n"
            "data = rl.datasets.synthetic(n_users=60, n_items=80, n_ratings=1500, seed=0)\n"
            "for name, options, rank in json.loads(sys.argv[1]):\n"
            "    model = getattr(rl.models, name)(factors=4, iterations=1, **options)\n"
            "    model.fit(data, callback=lambda *point: None)\n"
            "    if rank:\n"
            "        model.recommend([0, 1], n=5)\n")
    halves = ([["ImplicitALS", {}, True]],
              [["ImplicitALS", {"use_cg": False}, False], ["ExplicitALS", {}, False]])
    processes = [subprocess.Popen([sys.executable, "-c", code, json.dumps(half)],
                                  cwd=Path(__file__).resolve().parent.parent) for half in halves]
    assert [process.wait() for process in processes] == [0, 0], \
        "compiling reclab's numba kernels failed (the error is above)"


def pytest_collection_modifyitems(items):
    """The longest work units first (:data:`LONGEST_FIRST`), the others in collection order."""
    rank = {unit: number for number, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))   # stable


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


# -- three pipelines at once, read by several test files -----------------------------------
@pytest.fixture(scope="session")
def pipelines_at_once(tmp_path_factory):
    """Three ``reclab run`` pipelines started at the same moment on one new SQLite store (the
    store from ``MLFLOW_TRACKING_URI``): ImplicitALS and SVD with seed 11, which share their test
    split, and SVD with seed 12, whose split differs. Run once per session: the concurrency test
    checks that everything was logged, the browser test compares two of them in the MLflow UI.

    Returns ``{"folder", "uri", "runs": {(model, seed): pipeline run id}, "stdout": {(model,
    seed): what reclab run printed}, "seconds"}``.
    """
    folder = tmp_path_factory.mktemp("pipelines-at-once")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, **QUIET, "MLFLOW_TRACKING_URI": uri}
    reclab = Path(sys.executable).parent / "reclab"
    started = time.monotonic()
    processes = {}
    for model, seed in PIPELINES_AT_ONCE:
        settings = [*SMALL_PIPELINE, f"experiment={AT_ONCE_EXPERIMENT}", f"model={model}",
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
