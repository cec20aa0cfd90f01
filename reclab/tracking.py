"""MLflow tracking of the pipeline: the only module of reclab that imports mlflow.

Runs
----
A pipeline is one parent run (tag ``reclab.pipeline``), each stage a nested run (tags
``mlflow.parentRunId`` and ``reclab.stage`` = ``preprocess`` | ``tune`` | ``train`` |
``postprocess`` | ``evaluate``), each tuning trial a run nested under the ``tune`` run. Every run
is created and ended explicitly through an :class:`mlflow.MlflowClient` with its run id, so no
global "active run" exists and library code never starts a run by itself (any fluent
``mlflow.log_*`` call would silently start one).

Stages exchange data only through MLflow artifacts of the earlier stage runs: the split as
``.npz`` arrays (``split/train.npz``, ``split/valid.npz``, ``split/test.npz``), the best
parameters as JSON (``best_params.json``), the fitted model as a reclab ``.npz`` file
(``reclab_model/model.npz``, plus the pyfunc model at ``model``). A notebook opened alone (no
``parent_run_id``) finds the latest finished run of the stage before it in its experiment and
continues that run's pipeline.

Store
-----
``MLFLOW_TRACKING_URI`` (or an explicit ``tracking_uri``) selects any MLflow store or server.
Without it, reclab uses MLflow's own default local layout, but anchored at the project folder
rather than the current directory (a notebook runs in ``notebooks/``, ``reclab run`` at the
top): a SQLite database ``<project>/mlflow.db`` with artifacts under ``<project>/mlruns/``. The
project folder is the nearest folder, from the current one upwards, holding ``pyproject.toml``
or ``.git``; failing that, the current folder. Experiments that reclab creates in a SQLite store
keep their artifacts in ``mlruns/`` beside the database file, whatever the current directory.
Several processes may share one SQLite store (pipelines started at once, their kernels): the
first to open a new database builds MLflow's schema while the others wait on a file lock.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote

import numpy as np
import pandas as pd
import scipy.sparse as sp

with warnings.catch_warnings():
    # mlflow imports tqdm.auto, which warns in Jupyter kernels without ipywidgets.
    warnings.filterwarnings("ignore", message="IProgress not found")
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.entities import Dataset as _DatasetEntity
    from mlflow.entities import DatasetInput, InputTag, LoggedModelOutput, Metric, Param, RunTag
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

from reclab.config import Config
from reclab._io import atomic_write
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.stages import STAGES

__all__ = [
    "STAGES", "project_root", "tracking_uri", "experiment_id", "start_pipeline", "start_stage",
    "StageRun", "TuningCheckpoint", "FitLogger", "find_stage_run", "stage_runs", "log_notebook", "fail_stage",
    "end_pipeline", "pipeline_summary", "pipeline_state", "reopen_pipeline", "load_interactions",
    "save_interactions", "metric_key", "RecommenderPyfunc", "run_table", "load_report",
    "ui_path", "experiments_with_runs", "open_pipeline",
]
_NOTE = "mlflow.note.content"
_PARENT = "mlflow.parentRunId"
# Versions recorded with every run (tags version.<name>), the packages that decide the numbers.
_PACKAGES = ("numpy", "scipy", "pandas", "numba", "scikit-learn", "scikit-optimize", "mlflow",
             "papermill", "matplotlib", "pyyaml", "pyspark")
# MLflow params are limited to 6000 characters; longer values are cut with a marker.
_MAX_PARAM = 6000
# Figures that the pipeline run carries as well as their stage run (see StageRun.log_figure).
_HEADLINE_FIGURES = ("convergence", "precision_recall_at_k")
# Where `reclab ui` serves a local store by default (its --host and --port).
_UI_ADDRESS = "http://127.0.0.1:5000"


# -- store ------------------------------------------------------------------------------------
def project_root(start=None) -> Path:
    """The project folder: nearest folder from ``start`` (default the current one) upwards that
    holds ``pyproject.toml`` or ``.git``; ``start`` itself when there is none."""
    start = Path.cwd() if start is None else Path(start)
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return start


def tracking_uri(uri: str | None = None) -> str:
    """The MLflow tracking URI reclab uses.

    Parameters
    ----------
    uri : str, optional
        Explicit URI; wins over everything.

    Returns
    -------
    str
        ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<project>/mlflow.db`` (see the
        module docstring).
    """
    if uri:
        return str(uri)
    from_env = os.environ.get("MLFLOW_TRACKING_URI")
    if from_env:
        return from_env
    return "sqlite:///" + (project_root() / "mlflow.db").as_posix()


def _sqlite_folder(uri: str) -> Path | None:
    """Folder of a local SQLite store's database file, or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///"):])
    if not path or path == ":memory:":
        return None
    return Path(path if os.path.isabs(path) else os.path.abspath(path)).parent


@contextlib.contextmanager
def _no_progress_bars():
    """MLflow draws a progress bar for every artifact download; inside a notebook that is
    noise in the outputs. Its switch is an environment variable read at each call."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def _quiet_mlflow_log():
    """MLflow logs at INFO while saving a model ("Validating input example ..."); not news."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _download(client: MlflowClient, run_id: str, path: str, folder) -> Path:
    with _no_progress_bars():
        return Path(client.download_artifacts(run_id, path, str(folder)))


# Local SQLite stores this process has created or checked (see _prepare_sqlite_store).
_PREPARED_STORES: set = set()


def _prepare_sqlite_store(uri: str) -> None:
    """Create or upgrade a local SQLite store's schema once, one process at a time.

    MLflow creates the tables of a new database, and migrates an old one, the first time a
    process opens it, without any lock between processes: several pipelines started at once on
    a new ``mlflow.db`` then fail with "table ... already exists" or "duplicate column name".
    Opening the store under an exclusive ``flock`` on ``mlruns/.<db name>.lock`` beside the
    database (``mlruns/`` is git-ignored with the database) makes one process build the schema
    while the others wait, then find it complete. Everything after that goes through MLflow's
    sessions, which wait up to 20 s (SQLite ``busy_timeout``) for another writer.
    """
    folder = _sqlite_folder(uri)
    if folder is None or uri in _PREPARED_STORES:
        return
    _check_sqlite_file(uri, folder / Path(unquote(uri[len("sqlite:///"):])).name)
    try:
        import fcntl
    except ImportError:   # Windows: no flock; MLflow builds the schema unguarded there
        fcntl = None
    with contextlib.suppress(ImportError):
        # Seconds of imports that MLflow makes on first opening a SQL store: made here, outside
        # the lock, so that processes do not queue for them.
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    lock_file = folder / "mlruns" / f".{Path(unquote(uri[len('sqlite:///'):])).name}.lock"
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_file, "a")
    except OSError:   # a store in a read-only folder: no process builds its schema from here
        lock = None
    try:
        if lock is not None and fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        MlflowClient(tracking_uri=uri)   # opening the store creates / upgrades the schema
    except mlflow.exceptions.MlflowException as error:
        raise ReclabError(f"MLflow store {uri} cannot be opened: {str(error).splitlines()[0]}") from None
    finally:
        if lock is not None:
            lock.close()   # releases the lock
    _PREPARED_STORES.add(uri)


def _check_sqlite_file(uri: str, path: Path) -> None:
    """Refuse, naming the store and the cause, what MLflow would otherwise fail on with SQLAlchemy
    tracebacks (after minutes of retries): a database file that is not SQLite (left untouched),
    a folder in its place, or a new store in a folder that cannot be written."""
    if path.is_dir():
        raise ReclabError(f"MLflow store {uri}: {str(path)!r} is a folder, not a database file")
    if path.is_file():
        try:
            with open(path, "rb") as handle:
                header = handle.read(16)
        except OSError as error:
            raise ReclabError(f"MLflow store {uri} cannot be read: {error.strerror}") from None
        if header and header != b"SQLite format 3\x00":
            raise ReclabError(f"MLflow store {uri}: {str(path)!r} is not an SQLite database (corrupt, or "
                              f"another kind of file); it was left as it is. Point MLFLOW_TRACKING_URI "
                              f"(or --tracking-uri) to another file")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        raise ReclabError(f"MLflow store {uri} cannot be created: folder {str(path.parent)!r}: "
                          f"{error.strerror}; point MLFLOW_TRACKING_URI (or --tracking-uri) to a "
                          f"writable folder") from None


def _client(uri: str | None) -> MlflowClient:
    uri = tracking_uri(uri)
    _prepare_sqlite_store(uri)
    return MlflowClient(tracking_uri=uri)


def experiment_id(name: str, uri: str | None = None) -> str:
    """Id of experiment ``name``, created when missing.

    In a SQLite store its artifacts go to ``mlruns/<name>`` beside the database file, so that
    the store is the same whichever folder the creating process runs in.
    """
    client = _client(uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage != "active":
            raise ReclabError(f"MLflow experiment {name!r} is deleted; restore it in the MLflow UI "
                              f"or choose another experiment name")
        return found.experiment_id
    folder = _sqlite_folder(tracking_uri(uri))
    location = None
    if folder is not None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        location = (folder / "mlruns" / safe).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        # Another process created it between the lookup and here (concurrent pipelines).
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


# -- environment ------------------------------------------------------------------------------
def _git_commit(root: Path) -> tuple[str | None, bool]:
    """(commit hash or None, working tree has uncommitted changes)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None, False
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, False


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _environment_tags() -> dict:
    commit, dirty = _git_commit(Path(__file__).resolve().parent.parent)
    tags = {"reclab.version": _version("reclab"), "reclab.python": platform.python_version(),
            "reclab.executable": sys.executable}
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["reclab.git_commit"] = commit + ("-dirty" if dirty else "")
    tags.update({f"version.{name}": _version(name) for name in _PACKAGES})
    return tags


def _run_name(params: Mapping, suffix: str | None = None) -> str:
    name = f"{params['dataset']}/{params['model']}/{params['tune']['method']}"
    return f"{name}/{suffix}" if suffix else name


def _log_params(client: MlflowClient, run_id: str, values: Mapping) -> None:
    items = []
    for key, value in values.items():
        text = "None" if value is None else str(value)
        if len(text) > _MAX_PARAM:
            text = text[:_MAX_PARAM - 12] + " [truncated]"
        items.append(Param(str(key), text))
    for start in range(0, len(items), 100):   # MLflow accepts at most 100 params per batch
        client.log_batch(run_id, params=items[start:start + 100], synchronous=True)


def metric_key(name: str) -> str:
    """MLflow metric key of a reclab metric name: ``"precision@10"`` -> ``"precision_at_10"``."""
    return str(name).replace("@", "_at_")


# -- runs -------------------------------------------------------------------------------------
def start_pipeline(params: Mapping, uri: str | None = None, runner: str = "reclab run",
                   params_text: str | None = None) -> str:
    """Create the parent run of a pipeline and return its id.

    Parameters
    ----------
    params : dict
        The pipeline's configuration (:meth:`reclab.config.Config.load`); logged flattened, and as
        ``params.yaml`` (``params_text``, or its :meth:`~reclab.config.Config.dump`).
    uri : str, optional
        Tracking URI (see :func:`tracking_uri`).
    runner : str
        Value of tag ``reclab.pipeline``: who drives the stages (``"reclab run"`` or
        ``"notebook"``).
    """
    client = _client(uri)
    exp = experiment_id(params["experiment"], uri)
    tags = {"reclab.pipeline": runner, **_environment_tags()}
    run = client.create_run(exp, run_name=_run_name(params), tags=tags)
    try:
        _log_params(client, run.info.run_id, params.flatten())
        client.log_text(run.info.run_id, params_text or params.dump(), "params.yaml")
        client.set_tag(run.info.run_id, _NOTE,
                       f"Pipeline {_run_name(params)} (seed {params['seed']}), started by {runner}.")
    except BaseException:   # the caller never gets the id: end the run here, not RUNNING forever
        with contextlib.suppress(Exception):
            client.set_terminated(run.info.run_id, status="FAILED")
        raise
    return run.info.run_id


def stage_runs(parent_run_id: str, uri: str | None = None) -> list:
    """Stage runs of a pipeline (every attempt), oldest first."""
    client = _client(uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.`{_PARENT}` = '{parent_run_id}'",
                              order_by=["attributes.start_time ASC"], max_results=1000)
    return [run for run in runs if "reclab.stage" in run.data.tags]


def find_stage_run(stage: str, experiment: str, parent_run_id: str | None = None,
                   uri: str | None = None, status: str | None = "FINISHED"):
    """The latest run of ``stage`` (with ``status``; None for any) in experiment ``experiment``,
    within pipeline ``parent_run_id`` when given; None when there is none."""
    if stage not in STAGES:
        raise ReclabError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    conditions = [f"tags.`reclab.stage` = '{stage}'"]
    if parent_run_id:
        conditions.append(f"tags.`{_PARENT}` = '{parent_run_id}'")
    if status:
        conditions.append(f"attributes.status = '{status}'")
    runs = client.search_runs([found.experiment_id], filter_string=" and ".join(conditions),
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def _pipeline_params(client: MlflowClient, parent_run_id: str, overrides: Mapping | None) -> dict:
    """The parameters of a pipeline run (its ``params.yaml``), with ``overrides`` on top."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            text = _download(client, parent_run_id, "params.yaml", folder).read_text(encoding="utf-8")
        except (mlflow.exceptions.MlflowException, OSError):
            raise ReclabError(f"run {parent_run_id} has no params.yaml artifact; is it a reclab "
                              f"pipeline run?") from None
    return Config.loads(text, f"params.yaml of pipeline run {parent_run_id}", overrides)


def start_stage(stage: str, params_file=None, overrides: Mapping | None = None,
                parent_run_id: str | None = None, uri: str | None = None) -> "StageRun":
    """Start the nested run of one stage (called at the top of each stage notebook).

    Parameters
    ----------
    stage : str
        One of :data:`STAGES`.
    params_file : str or os.PathLike, optional
        Parameter file of a new pipeline (always validated; also names the experiment). None
        (the notebooks' default) is the project's ``params/default.yaml``, whatever the current
        folder (papermill runs a notebook in the folder it was started from).
    overrides : mapping, optional
        ``{dotted key: value}`` on top (see :func:`reclab.config.notebook_overrides`).
    parent_run_id : str, optional
        The pipeline run (``reclab run`` passes it). When None the notebook was opened alone:
        ``preprocess`` starts a new pipeline; a later stage continues the latest pipeline of
        the experiment only while it is open (see :func:`open_pipeline`), else it stops with a
        message that names that pipeline and how to choose one.
    uri : str, optional
        Tracking URI (see :func:`tracking_uri`).

    Returns
    -------
    StageRun
        Its ``params`` are those of the pipeline: ``params_file`` for a new pipeline (and under
        ``reclab run``, which passes the pipeline's own file), else the joined pipeline run's
        ``params.yaml``; ``overrides`` on top in every case.

    Notes
    -----
    A stage run in a pipeline that already has a finished run of the same stage supersedes it:
    the earlier run gets tag ``reclab.superseded_by`` (and a note saying so), and the finished
    runs of the later stages, made from it, get tag ``reclab.outdated``. The later stages read
    the newest finished run of each stage.
    """
    if stage not in STAGES:
        raise ReclabError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
    file_given = params_file is not None
    if not file_given:
        from reclab.stages import default_params_file

        params_file = default_params_file()
    client = _client(uri)
    if parent_run_id and not file_given:   # given only the pipeline: that pipeline's parameters
        params = _pipeline_params(client, parent_run_id, overrides)
    else:
        params = Config.load(params_file, overrides)
    exp = experiment_id(params["experiment"], uri)
    interactive = not parent_run_id
    joined = "given"
    if interactive:
        if STAGES.index(stage) == 0:
            parent_run_id = start_pipeline(params, uri, runner="notebook")
            joined = "new"
        else:
            parent_run_id = open_pipeline(stage, params, overrides, uri,
                                          compare_file=file_given)
            params = _pipeline_params(client, parent_run_id, overrides)
            client.update_run(parent_run_id, status="RUNNING")
            joined = "continued"
    else:
        try:
            parent = client.get_run(parent_run_id)
        except mlflow.exceptions.MlflowException:
            raise ReclabError(f"no pipeline run {parent_run_id!r} at {tracking_uri(uri)}") from None
        if parent.info.experiment_id != exp:
            raise ReclabError(f"pipeline run {parent_run_id} belongs to experiment id "
                              f"{parent.info.experiment_id}, not to {params['experiment']!r} ({exp})")
    tags = {_PARENT: parent_run_id, "reclab.stage": stage, **_environment_tags()}
    run = client.create_run(exp, run_name=_run_name(params, f"{STAGES.index(stage) + 1}-{stage}"),
                            tags=tags)
    if interactive:
        # A notebook opened alone has no runner to end its runs: when its kernel exits before
        # stage.finish() (an error in a cell, then the kernel shut down), end them here.
        atexit.register(_end_if_running, client.tracking_uri, run.info.run_id, parent_run_id)
    _log_params(client, run.info.run_id, params.flatten())
    if joined != "new":
        _supersede(client, stage, parent_run_id, run.info.run_id, uri)
    return StageRun(client, run.info.run_id, parent_run_id, exp, stage, params, interactive, joined)


def open_pipeline(stage: str, params: Mapping, overrides: Mapping | None = None,
                  uri: str | None = None, compare_file: bool = False) -> str:
    """The pipeline that stage ``stage``, opened alone, continues: its run id.

    It is the pipeline of the latest finished run of the stage before ``stage`` in experiment
    ``params["experiment"]``, and only while that pipeline is open: it has no finished
    ``stage`` run yet, no ``reclab run`` is driving it, and its parameters agree with what the
    notebook was given (``overrides``; with ``compare_file``, also every parameter of
    ``params``, read from an explicit parameter file).

    Raises
    ------
    ReclabError
        No such pipeline, or the latest one is not open: the message names it, says why, and
        how to choose (``parent_run_id``, or a new pipeline from stage 1).
    """
    experiment = params["experiment"]
    earlier = STAGES[STAGES.index(stage) - 1]
    found = find_stage_run(earlier, experiment, uri=uri)
    if found is None:
        raise ReclabError(f"no finished {earlier!r} run in MLflow experiment {experiment!r} at "
                          f"{tracking_uri(uri)}; run the {earlier} notebook (or `reclab run`) first")
    client = _client(uri)
    pipeline_id = found.data.tags[_PARENT]
    parent = client.get_run(pipeline_id)
    name = f"{parent.info.run_name!r} (run {pipeline_id})"
    choose = (f"to run {stage!r} in it anyway (superseding its earlier {stage!r} run), pass "
              f"parent_run_id={pipeline_id!r}; for a new pipeline run the notebooks from "
              f"01_preprocess (or `reclab run`)")
    if find_stage_run(stage, experiment, pipeline_id, uri=uri) is not None:
        raise ReclabError(f"the latest pipeline of experiment {experiment!r}, {name}, already has a "
                          f"finished {stage!r} stage, so a notebook opened alone does not join it; "
                          + choose)
    if parent.info.status == "RUNNING" and parent.data.tags.get("reclab.pipeline") == "reclab run":
        raise ReclabError(f"the latest pipeline of experiment {experiment!r}, {name}, is being run "
                          f"by `reclab run` (or was killed: then `reclab run --resume "
                          f"{pipeline_id}`); {choose}")
    theirs = _pipeline_params(client, pipeline_id, None).flatten()
    mine = params.flatten()
    keys = (mine if compare_file else
            {key for key in mine for given in (overrides or {})
             if key == given or key.startswith(given + ".")})
    differ = sorted(key for key in keys if key != "experiment" and theirs.get(key) != mine[key])
    if differ:
        shown = ", ".join(f"{key}={mine[key]!r} (pipeline: {theirs.get(key)!r})" for key in differ[:5])
        raise ReclabError(f"the latest pipeline of experiment {experiment!r}, {name}, was made with "
                          f"other parameters than this notebook's: {shown}; " + choose)
    return pipeline_id


def _supersede(client: MlflowClient, stage: str, parent_run_id: str, run_id: str,
               uri: str | None) -> None:
    """Mark the earlier finished runs of ``stage`` in the pipeline as superseded by ``run_id``,
    and the finished runs of the later stages as outdated (see :func:`start_stage`)."""
    later = STAGES[STAGES.index(stage) + 1:]
    for run in stage_runs(parent_run_id, uri):
        tags = run.data.tags
        if (run.info.run_id == run_id or run.info.status != "FINISHED"
                or "reclab.superseded_by" in tags):
            continue
        if tags["reclab.stage"] == stage:
            client.set_tag(run.info.run_id, "reclab.superseded_by", run_id)
            note = tags.get(_NOTE, "")
            client.set_tag(run.info.run_id, _NOTE,
                           f"**Superseded** by run {run_id} of the same stage.\n\n{note}")
        elif tags["reclab.stage"] in later and "reclab.outdated" not in tags:
            client.set_tag(run.info.run_id, "reclab.outdated",
                           f"made from a {stage!r} run superseded by {run_id}; run this stage again")


def _end_if_running(uri: str, run_id: str, parent_run_id: str) -> None:
    """At exit: mark a stage run and its pipeline run KILLED if they are still RUNNING."""
    folder = _sqlite_folder(uri)
    if folder is not None and not (folder / Path(unquote(uri[len("sqlite:///"):])).name).is_file():
        return   # the store is gone (a temporary one): nothing to end, and no retries to wait for
    try:
        client = MlflowClient(tracking_uri=uri)
        for target in (run_id, parent_run_id):
            if client.get_run(target).info.status == "RUNNING":
                client.set_tag(target, "reclab.error", "interrupted: the process running the stage "
                                                       "exited before the stage finished")
                client.set_terminated(target, status="KILLED")
    except Exception:   # at exit, a store that cannot be reached cannot be helped
        pass


class StageRun:
    """One stage's MLflow run, with what a stage notebook logs and reads.

    Created by :func:`start_stage`; every method writes to this run by its id (no active run).

    Attributes
    ----------
    run_id, parent_run_id, experiment_id : str
    stage : str
    params : dict
        The validated parameters the stage runs with.
    """

    def __init__(self, client: MlflowClient, run_id: str, parent_run_id: str, experiment_id_: str,
                 stage: str, params: dict, interactive: bool, joined: str = "given"):
        self.client = client
        self.joined = joined
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.experiment_id = experiment_id_
        self.stage = stage
        self.params = params
        self._interactive = interactive
        self._tracking_uri = client.tracking_uri

    def __repr__(self) -> str:
        return self._describe_pipeline()

    def _repr_html_(self) -> str:
        import html

        return f"<p>{html.escape(self._describe_pipeline()).replace(chr(10), '<br>')}" \
               f"<br><a href=\"{html.escape(self.pipeline_url())}\" target=\"_blank\">" \
               f"open the pipeline in the MLflow UI</a></p>"

    def pipeline_url(self) -> str:
        """Address of the pipeline run in the MLflow UI: the tracking server itself, or for a
        local store the address ``reclab ui`` serves by default."""
        uri = self._tracking_uri
        base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else _UI_ADDRESS
        return base + ui_path(self.experiment_id, self.parent_run_id)

    def _describe_pipeline(self) -> str:
        """Which pipeline this stage belongs to, in words (the first output of every notebook)."""
        how = {"new": "a new pipeline, started by this notebook",
               "continued": "continued: the latest pipeline of the experiment, still open",
               "given": "the pipeline given as parent_run_id"}[self.joined]
        name = _run_name(self.params)
        lines = [f"Stage {self.stage!r} (run {self.run_id}) of pipeline {name!r} "
                 f"(run {self.parent_run_id}): {how}.",
                 f"Experiment {self.params['experiment']!r}, store {self._tracking_uri}.",
                 f"MLflow UI (`reclab ui` for a local store): {self.pipeline_url()}"]
        return "\n".join(lines)

    # -- writing ----------------------------------------------------------------------------------
    def log_params(self, values: Mapping, prefix: str = "") -> None:
        """Log parameters (``prefix`` + key); lists and mappings as JSON text."""
        _log_params(self.client, self.run_id,
                    {f"{prefix}{key}": (json.dumps(value, sort_keys=True, default=str)
                                        if isinstance(value, (list, tuple, dict)) else value)
                     for key, value in values.items()})

    def log_metrics(self, values: Mapping, step: int = 0, run_id: str | None = None,
                    model_id: str | None = None) -> None:
        """Log metrics; ``@`` in names becomes ``_at_``. Non-finite values are skipped. With
        ``model_id`` they are also the metrics of that MLflow logged model."""
        now = int(time.time() * 1000)
        metrics = [Metric(metric_key(key), float(value), now, int(step), model_id=model_id)
                   for key, value in values.items() if value is not None and np.isfinite(float(value))]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id or self.run_id, metrics=metrics[start:start + 1000],
                                  synchronous=True)

    def set_tags(self, values: Mapping, run_id: str | None = None) -> None:
        """Set tags (values as text) on this run (or ``run_id``)."""
        tags = [RunTag(str(key), str(value)) for key, value in values.items()]
        self.client.log_batch(run_id or self.run_id, tags=tags, synchronous=True)

    def describe(self, text: str, run_id: str | None = None) -> None:
        """Set the run description shown in the MLflow UI (markdown)."""
        self.client.set_tag(run_id or self.run_id, _NOTE, text)

    def log_figure(self, figure, name: str) -> str:
        """Log a matplotlib figure as ``figures/<name>.png``; returns the artifact path. The
        headline figures (tuning convergence, precision and recall at K) also go to the pipeline
        run, so that MLflow's Compare page shows them side by side."""
        path = f"figures/{name}.png"
        for run_id in (self.run_id, self.parent_run_id) if name in _HEADLINE_FIGURES else (
                self.run_id,):
            self.client.log_figure(run_id, figure, path, save_kwargs={"dpi": 110,
                                                                      "bbox_inches": "tight"})
        return path

    def log_table(self, frame: pd.DataFrame, name: str, index: bool = False) -> str:
        """Log a table as ``tables/<name>.csv``; returns the artifact path."""
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / f"{name}.csv"
            frame.to_csv(local, index=index)
            self.client.log_artifact(self.run_id, str(local), "tables")
        return f"tables/{name}.csv"

    def log_dict(self, values: Mapping, path: str) -> None:
        """Log a JSON artifact at ``path``."""
        self.client.log_dict(self.run_id, dict(values), path)

    def log_dataset(self, data: Interactions, name: str, context: str) -> None:
        """Record ``data`` as an MLflow dataset input of this run (name, digest = its
        fingerprint, schema and row count; the values themselves are not stored)."""
        import mlflow.data

        with warnings.catch_warnings():
            # A hint that integer columns cannot hold missing values: ids and counts never do.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            dataset = mlflow.data.from_pandas(data.to_frame(), name=name,
                                              digest=data.fingerprint()[:16])
            entity = _DatasetEntity(**dataset.to_dict())   # the schema is inferred here
        inputs = [DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])]
        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, datasets=inputs)
                return
            except mlflow.exceptions.MlflowException as error:
                # MLflow looks the dataset up and inserts it when missing, in one transaction:
                # another pipeline logging the same data (same experiment, name and digest) at
                # the same moment makes that insert break the unique key, and the transaction
                # rolls back whole. The next attempt finds that pipeline's dataset and links it.
                if "UNIQUE constraint failed: datasets." not in str(error) or attempt == 2:
                    raise

    def log_split(self, data: Interactions, train: Interactions, valid: Interactions,
                  test: Interactions) -> dict:
        """Log the split: ``split/{train,valid,test}.npz`` (read by the later stages), the
        three parts as MLflow dataset inputs, and the fingerprints as tags of this run and the
        pipeline run.

        Returns
        -------
        dict
            ``reclab.data_fingerprint`` (of ``data``), ``reclab.split_fingerprint`` (train +
            valid against test: identifies the test split) and ``reclab.tuning_split_fingerprint``
            (train against valid).
        """
        from reclab import split

        with tempfile.TemporaryDirectory() as folder:
            for part, values in (("train", train), ("valid", valid), ("test", test)):
                save_interactions(Path(folder) / f"{part}.npz", values)
            self.client.log_artifacts(self.run_id, folder, "split")
        name = self.params["dataset"]
        for values, part, context in ((train, "train", "training"), (valid, "valid", "validation"),
                                      (test, "test", "testing")):
            self.log_dataset(values, f"{name}/{part}", context)
        tags = {"reclab.data_fingerprint": data.fingerprint(),
                "reclab.split_fingerprint": split.fingerprint(train.union(valid), test),
                "reclab.tuning_split_fingerprint": split.fingerprint(train, valid)}
        self.set_tags(tags)
        self.set_tags(tags, run_id=self.parent_run_id)
        return tags

    def log_best(self, best_params: Mapping, best_score: float, metric: str, model_name: str,
                 warnings=()) -> None:
        """Log the tuning result: ``best_params.json`` and params ``best.<name>``, metric
        ``best_<metric>``.

        ``warnings`` (:func:`reclab.tuning.boundary_warnings`) go into ``best_params.json`` and,
        joined, into tag ``reclab.boundary_warning`` of this run and of the pipeline run, so that
        ``reclab run``'s summary and the MLflow UI show them.

        The params ``best.<name>`` also go to the pipeline run, so that pipelines compare on
        the values tuning chose (MLflow UI, ``reclab compare``), not only on their search
        spaces. MLflow params cannot change: a tune stage run again in the same pipeline (same
        seed, so the same search) leaves the pipeline's values as the first one logged them.
        """
        record = {"model": model_name, "params": dict(best_params), "metric": metric,
                  "score": float(best_score), "warnings": list(warnings)}
        self.log_dict(record, "best_params.json")
        if warnings:
            tag = {"reclab.boundary_warning": " ".join(warnings)[:4000]}
            self.set_tags(tag)
            self.set_tags(tag, run_id=self.parent_run_id)
        self.log_params(best_params, prefix="best.")
        self.log_metrics({f"best_{metric}": best_score})
        logged = self.client.get_run(self.parent_run_id).data.params
        _log_params(self.client, self.parent_run_id,
                    {f"best.{name}": value for name, value in best_params.items()
                     if f"best.{name}" not in logged})

    def trial_logger(self, metric: str, restored_from: str | None = None):
        """A callback for :func:`reclab.tuning.tune`: one run per finished trial, nested under
        this (tune) run, with the trial's parameters, score and validation metrics.

        Parameters
        ----------
        metric : str
            Name of the tuned metric (``"ndcg@10"``); the trial's score is logged under it.
        restored_from : str, optional
            For trials read back from a checkpoint: the tune run that ran them, set as tag
            ``reclab.restored_from`` of their runs.

        Returns
        -------
        callable
            ``callback(trial)`` for a :class:`reclab.tuning.Trial`. A failed trial's run is
            FAILED, with its error in tag ``reclab.error``. The run names its model (param
            ``model``, tag ``reclab.model``) and, with several folds, logs the score on each
            (``<metric>_fold_0``, ...) and their standard deviation (``<metric>_std``).
        """
        stage_run = self.client.get_run(self.run_id)
        tags = {_PARENT: self.run_id, **{key: value for key, value in stage_run.data.tags.items()
                                         if key.startswith(("version.", "reclab.version"))}}

        def log_trial(trial) -> None:
            run = self.client.create_run(
                self.experiment_id, run_name=f"{stage_run.info.run_name}/trial-{trial.number:03d}",
                tags={**tags, "reclab.trial": str(trial.number),
                      **({"reclab.model": trial.model} if trial.model else {}),
                      **({"reclab.restored_from": restored_from} if restored_from else {})})
            _log_params(self.client, run.info.run_id,
                        {**({"model": trial.model} if trial.model else {}), **trial.params})
            values = {**trial.metrics, metric: trial.score, "seconds": trial.seconds}
            if len(trial.fold_scores) > 1:   # the per-fold scores and their spread
                values.update({f"{metric}_fold_{fold}": score
                               for fold, score in enumerate(trial.fold_scores)})
                values[f"{metric}_std"] = trial.score_std
            self.log_metrics(values, run_id=run.info.run_id)
            self.log_metrics({metric: trial.score}, step=trial.number)
            if trial.error:
                self.client.set_tag(run.info.run_id, "reclab.error", trial.error[:4000])
            self.client.set_terminated(run.info.run_id,
                                       status="FINISHED" if trial.ok else "FAILED")
        return log_trial

    def tuning_checkpoint(self) -> "TuningCheckpoint":
        """The checkpoint file of this tune stage's search, continuing an interrupted one.

        The file (see ``checkpoint`` of :func:`reclab.tuning.tune`) lives in a temporary folder
        of this process, removed when the ``with`` block ends, and is logged as artifact
        ``tuning/checkpoint.jsonl`` of this run after every trial (:meth:`TuningCheckpoint.save`
        is the ``tune`` callback that does it), so that it outlives a kernel that fails or is
        killed. When this pipeline has an unfinished
        (FAILED, KILLED or still RUNNING) tune run with such an artifact, the latest one is
        downloaded first: ``tune`` then reads its finished trials back and runs only the rest.
        The restored trials are logged again as runs nested under this run (tag
        ``reclab.restored_from``), so that this run holds the whole search; tag
        ``reclab.resumed_from`` of this run names the run they come from.

        Examples
        --------
        >>> with stage.tuning_checkpoint() as checkpoint:                      # doctest: +SKIP
        ...     result = tune(model, space, train, valid, checkpoint=checkpoint.path,
        ...                   callbacks=[stage.trial_logger("precision@10"), checkpoint.save])
        """
        from reclab.tuning import Trial

        checkpoint = TuningCheckpoint(self, Path(tempfile.mkdtemp(prefix="reclab-tune-")))
        earlier = [run for run in reversed(stage_runs(self.parent_run_id, self._tracking_uri))
                   if run.data.tags.get("reclab.stage") == "tune" and run.info.run_id != self.run_id
                   and run.info.status != "FINISHED"]
        for run in earlier:
            listed = {item.path for item in self.client.list_artifacts(run.info.run_id, "tuning")}
            if "tuning/checkpoint.jsonl" not in listed:
                continue
            with tempfile.TemporaryDirectory() as download:
                local = _download(self.client, run.info.run_id, "tuning/checkpoint.jsonl", download)
                content = local.read_bytes()
            # A line cut short by a killed upload is not a trial (tune drops it too).
            lines = content[:content.rfind(b"\n") + 1].decode("utf-8").splitlines()
            with atomic_write(checkpoint.path, "wb") as handle:
                handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
            trials = [Trial.from_record(json.loads(line)) for line in lines[1:]]
            log = self.trial_logger(self.params["tune"]["metric"], restored_from=run.info.run_id)
            for trial in trials:
                log(trial)
            self.set_tags({"reclab.resumed_from": run.info.run_id,
                           "reclab.restored_trials": len(trials)})
            checkpoint.resumed_from, checkpoint.n_restored = run.info.run_id, len(trials)
            checkpoint.save()
            break
        return checkpoint

    def fit_logger(self) -> "FitLogger":
        """A ``callback(iteration, seconds, loss)`` for ``model.fit`` that logs the training curve
        (metrics ``train_loss`` and ``iteration_seconds`` by iteration) and keeps it
        (:meth:`FitLogger.frame`)."""
        return FitLogger(self)

    def log_report(self, report, model_name: str | None = None) -> None:
        """Log an :class:`~reclab.evaluation.EvaluationReport`.

        The tuned model's report (``model_name`` None) gives metrics ``precision_at_10``,
        ``precision_at_10_ci_low``, ... on this run and on the pipeline run (so that pipelines
        compare in the MLflow UI); a baseline's report gives ``<model_name>/precision_at_10``, ...
        on this run only. The summary (with intervals) and the per-user table are logged as
        ``tables/summary[_<name>].csv`` and ``tables/per_user[_<name>].csv``.
        """
        values = report.mlflow_metrics()
        suffix = "" if model_name is None else f"_{model_name}"
        if model_name is None:
            self.log_metrics(values, model_id=self._logged_model_id())
            self.log_metrics(values, run_id=self.parent_run_id)
            # What reclab compare needs to pair two runs' per-user values (load_report).
            self.set_tags({"reclab.test_fingerprint": report.test_fingerprint,
                           "reclab.relevance_threshold": str(report.relevance_threshold),
                           "reclab.k": json.dumps(list(report.k))})
        else:
            self.log_metrics({f"{model_name}/{key}": value for key, value in values.items()})
        self.log_table(report.to_frame(), f"summary{suffix}")
        self.log_table(report.per_user, f"per_user{suffix}")

    def log_model(self, model, data: Interactions, n_example_users: int = 3) -> str:
        """Log the fitted model: the reclab file at ``reclab_model/model.npz`` and an MLflow
        pyfunc model at ``model`` (see :class:`RecommenderPyfunc`).

        Parameters
        ----------
        model : fitted reclab model
        data : Interactions
            What the model was fitted on: gives the original user / item ids and titles.
        n_example_users : int
            Users of the input example (the first ones by index).

        Returns
        -------
        str
            ``runs:/<run id>/model``, the URI that ``mlflow.pyfunc.load_model`` takes.
        """
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            model_file = model.save(folder / "model.npz")
            catalog = folder / "catalog.npz"
            _save_catalog(catalog, data)
            self.client.log_artifact(self.run_id, str(model_file), "reclab_model")
            code = folder / "reclab_pyfunc.py"
            # Models from code: MLflow stores this file, not a pickle of a live object.
            code.write_text("import mlflow.models\n"
                            "from reclab.tracking import RecommenderPyfunc\n\n"
                            "mlflow.models.set_model(RecommenderPyfunc())\n", encoding="utf-8")
            users = data.user_ids[:max(1, n_example_users)]
            example = pd.DataFrame({"user": users, "n": np.full(len(users), 5, dtype=np.int64)})
            local = folder / "model"
            # Saving checks the input example against the model, which MLflow loads back with
            # a download progress bar (red stderr in a notebook).
            with warnings.catch_warnings(), _quiet_mlflow_log(), _no_progress_bars():
                # Hints about integer columns and type hints, about a signature given explicitly.
                warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
                warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")
                mlflow.pyfunc.save_model(
                    str(local), python_model=str(code),
                    artifacts={"model": str(model_file), "catalog": str(catalog)},
                    signature=_signature(data), input_example=example,
                    pip_requirements=[f"{name}=={_version(name)}"
                                      for name in ("numpy", "scipy", "pandas", "numba", "mlflow")],
                    metadata={"reclab_version": _version("reclab"),
                              "model_class": type(model).__name__})
            self.client.log_artifacts(self.run_id, str(local), "model")
            self._log_logged_model(model, local)
        return f"runs:/{self.run_id}/model"

    def _log_logged_model(self, model, local: Path) -> str:
        """The saved pyfunc model in ``local`` as an MLflow logged model named after the model
        class, made by this run (the runs table's Models column links to it); its id is tag
        ``reclab.model_id`` of this run, and the evaluate stage logs the test metrics to it.

        Not named ``model`` like the run's artifact folder: MLflow 3 would then resolve
        ``runs:/<id>/model`` through the logged model, with the default tracking URI rather
        than the run's store.
        """
        params = {name: str(value) for name, value in model.get_params().items()}
        logged = self.client.create_logged_model(
            self.experiment_id, name=type(model).__name__, source_run_id=self.run_id, params=params,
            model_type=type(model).__name__, tags={"reclab.pipeline_run": self.parent_run_id})
        self.client.log_model_artifacts(logged.model_id, str(local))
        self.client.finalize_logged_model(logged.model_id, "READY")
        self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, 0)])
        self.set_tags({"reclab.model_id": logged.model_id})
        return logged.model_id

    def _logged_model_id(self) -> str | None:
        """Id of the logged model of this pipeline's train stage (None: no such stage or an
        older run without one)."""
        train = find_stage_run("train", self.params["experiment"], self.parent_run_id,
                               uri=self._tracking_uri)
        return None if train is None else train.data.tags.get("reclab.model_id")

    def log_artifact(self, path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def finish(self, summary: str | None = None) -> None:
        """End the stage run (FINISHED), with ``summary`` as its description. A notebook opened
        alone also marks its pipeline run finished (``reclab run`` ends it itself)."""
        if summary:
            self.describe(summary)
        self.client.set_terminated(self.run_id, status="FINISHED")
        if self._interactive:
            self.client.set_terminated(self.parent_run_id, status="FINISHED")

    # -- reading the earlier stages ---------------------------------------------------------------
    def earlier(self, stage: str) -> str:
        """Run id of the latest finished run of ``stage`` in this pipeline."""
        found = find_stage_run(stage, self.params["experiment"], self.parent_run_id,
                               uri=self._tracking_uri)
        if found is None:
            raise ReclabError(f"pipeline run {self.parent_run_id} has no finished {stage!r} stage; "
                              f"run the {stage} notebook (or `reclab run --resume "
                              f"{self.parent_run_id}`) first")
        return found.info.run_id

    def _download(self, stage: str, path: str, folder: str) -> Path:
        run_id = self.earlier(stage)
        local = _download(self.client, run_id, path, folder)
        self.set_tags({f"reclab.input.{stage}": run_id})
        return local

    def load_split(self) -> tuple[Interactions, Interactions, Interactions]:
        """(train, valid, test) logged by this pipeline's ``preprocess`` stage."""
        with tempfile.TemporaryDirectory() as folder:
            local = self._download("preprocess", "split", folder)
            return tuple(load_interactions(local / f"{part}.npz")
                         for part in ("train", "valid", "test"))

    def load_best(self) -> dict:
        """``{"model", "params", "metric", "score", "warnings"}`` logged by the ``tune`` stage.

        The model must be one that these parameters tune (``model``, or one of ``tune.models``).
        """
        with tempfile.TemporaryDirectory() as folder:
            local = self._download("tune", "best_params.json", folder)
            best = json.loads(local.read_text(encoding="utf-8"))
        if best["model"] not in self.params.tuned_models():
            raise ReclabError(f"the tune stage of pipeline {self.parent_run_id} tuned "
                              f"{best['model']!r} but model is {self.params['model']!r}; start a "
                              f"new pipeline to work with {self.params['model']!r}")
        return best

    def load_trials(self) -> list:
        """The trials of this pipeline's ``tune`` stage (:class:`reclab.tuning.Trial`, with typed
        parameters), read from its checkpoint artifact ``tuning/checkpoint.jsonl``."""
        from reclab.tuning import Trial

        with tempfile.TemporaryDirectory() as folder:
            text = self._download("tune", "tuning/checkpoint.jsonl", folder).read_text(encoding="utf-8")
        # The first line identifies the search; the others are trials, one JSON object each.
        return [Trial.from_record(json.loads(line)) for line in text.splitlines()[1:]]

    def load_model(self):
        """The fitted reclab model logged by the ``train`` stage."""
        from reclab.models import load

        with tempfile.TemporaryDirectory() as folder:
            local = self._download("train", "reclab_model/model.npz", folder)
            return load(local)

    def model_uri(self) -> str:
        """``runs:/<train run id>/model``: the pyfunc model of this pipeline's ``train`` stage."""
        return f"runs:/{self.earlier('train')}/model"


class TuningCheckpoint:
    """A tune stage's checkpoint file, made by :meth:`StageRun.tuning_checkpoint`.

    Attributes
    ----------
    path : pathlib.Path
        The JSON-lines file to pass as ``checkpoint`` to :func:`reclab.tuning.tune`.
    resumed_from : str or None
        The interrupted tune run whose finished trials the file holds, if any.
    n_restored : int
        Trials read back from it (0 for a new search).
    """

    def __init__(self, stage: StageRun, folder: Path):
        import weakref

        self._stage = stage
        self.path = folder / "checkpoint.jsonl"
        self.resumed_from: str | None = None
        self.n_restored = 0
        # Also at garbage collection or exit when close() is never called (no with block).
        self._remove = weakref.finalize(self, shutil.rmtree, folder, True)

    def __enter__(self) -> "TuningCheckpoint":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Remove the local file and its folder (the logged artifact stays)."""
        self._remove()

    def save(self, trial=None) -> None:
        """Log the file as ``tuning/checkpoint.jsonl`` of the tune run; a ``tune`` callback
        (``trial`` is not used: the file already holds it)."""
        if self.path.is_file():
            self._stage.log_artifact(self.path, "tuning")

    def __repr__(self) -> str:
        if self.resumed_from is None:
            return "TuningCheckpoint(new search; logged as tuning/checkpoint.jsonl after every trial)"
        return (f"TuningCheckpoint(continues tune run {self.resumed_from}: {self.n_restored} "
                f"finished trial(s) restored)")


class FitLogger:
    """Training-curve callback made by :meth:`StageRun.fit_logger`."""

    def __init__(self, stage: StageRun):
        self._stage = stage
        self._rows: list[tuple[int, float, float]] = []

    def __call__(self, iteration: int, seconds: float, loss: float | None = None) -> None:
        loss = np.nan if loss is None else float(loss)
        self._rows.append((int(iteration), float(seconds), loss))
        self._stage.log_metrics({"train_loss": loss, "iteration_seconds": seconds}, step=iteration)

    def frame(self) -> pd.DataFrame:
        """``iteration``, ``seconds`` (of that iteration) and ``loss`` (NaN where the model
        reports none), one row per iteration."""
        return pd.DataFrame(self._rows, columns=["iteration", "seconds", "loss"])


# -- interactions as .npz ---------------------------------------------------------------------
def _text_array(values) -> np.ndarray:
    """Strings as a fixed-width unicode array (object arrays would need pickle)."""
    return np.asarray([str(value) for value in values], dtype=str) if len(values) else np.array(
        [], dtype="<U1")


def _id_array(ids: np.ndarray) -> np.ndarray:
    return _text_array(ids) if ids.dtype == object else np.asarray(ids)


def save_interactions(path, data: Interactions) -> Path:
    """Write ``data`` to one ``.npz`` file (atomically, no pickle): the CSR arrays, the ids, the
    timestamps, the text columns of ``data.items`` and the user / item features (CSR arrays and
    names, under ``item_features.*`` / ``user_features.*``)."""
    matrix = data.matrix
    arrays = {"indptr": matrix.indptr, "indices": matrix.indices, "data": matrix.data,
              "shape": np.asarray(matrix.shape, dtype=np.int64),
              "user_ids": _id_array(data.user_ids), "item_ids": _id_array(data.item_ids)}
    if data.timestamps is not None:
        arrays["timestamps"] = np.asarray(data.timestamps)
    if data.items is not None:
        columns = [str(column) for column in data.items.columns]
        arrays["item_columns"] = _text_array(columns)
        for column in columns:
            arrays[f"item.{column}"] = _text_array(data.items[column].fillna("").astype(str))
    for role in ("item", "user"):
        features = getattr(data, f"{role}_features")
        if features is not None:
            for part in ("data", "indices", "indptr"):
                arrays[f"{role}_features.{part}"] = getattr(features, part)
            arrays[f"{role}_features.shape"] = np.asarray(features.shape, dtype=np.int64)
            arrays[f"{role}_features.names"] = _text_array(getattr(data, f"{role}_feature_names"))
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def load_interactions(path) -> Interactions:
    """Read a file written by :func:`save_interactions` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as archive:
        shape = tuple(int(size) for size in archive["shape"])
        matrix = sp.csr_matrix((archive["data"], archive["indices"], archive["indptr"]), shape=shape)
        user_ids, item_ids = archive["user_ids"], archive["item_ids"]
        timestamps = archive["timestamps"] if "timestamps" in archive.files else None
        items = None
        if "item_columns" in archive.files:
            items = pd.DataFrame({str(column): archive[f"item.{column}"].astype(object)
                                  for column in archive["item_columns"]}, index=item_ids)
        features = {}
        for role in ("item", "user"):
            if f"{role}_features.shape" in archive.files:
                features[f"{role}_features"] = sp.csr_matrix(
                    tuple(archive[f"{role}_features.{part}"] for part in ("data", "indices", "indptr")),
                    shape=tuple(int(size) for size in archive[f"{role}_features.shape"]))
                features[f"{role}_feature_names"] = archive[f"{role}_features.names"].tolist()
    if user_ids.dtype.kind == "U":
        user_ids = user_ids.astype(object)
    if item_ids.dtype.kind == "U":
        item_ids = item_ids.astype(object)
        if items is not None:
            items.index = item_ids
    return Interactions.from_matrix(matrix, user_ids=user_ids, item_ids=item_ids,
                                    timestamps=timestamps, items=items, **features)


def _save_catalog(path: Path, data: Interactions) -> None:
    """Ids and titles the pyfunc model maps indices with (the model file holds the rest)."""
    arrays = {"user_ids": _id_array(data.user_ids), "item_ids": _id_array(data.item_ids),
              "titles": _text_array(data.titles(np.arange(data.n_items)))}
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)


def _id_type(ids: np.ndarray) -> str:
    return "string" if ids.dtype == object or ids.dtype.kind == "U" else (
        "long" if ids.dtype.kind in "iu" else "double")


def _signature(data: Interactions) -> ModelSignature:
    inputs = Schema([ColSpec(_id_type(data.user_ids), "user"), ColSpec("long", "n", required=False)])
    outputs = Schema([ColSpec(_id_type(data.user_ids), "user"), ColSpec(_id_type(data.item_ids), "item"),
                      ColSpec("long", "rank"), ColSpec("float", "score"), ColSpec("string", "title")])
    return ModelSignature(inputs=inputs, outputs=outputs)


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """A reclab model served through MLflow's pyfunc interface.

    ``load_context`` reads the reclab model file (``artifacts["model"]``) and the id / title
    catalog (``artifacts["catalog"]``); nothing is unpickled.

    ``predict`` takes a DataFrame with a ``user`` column (original user ids) and an optional
    ``n`` column (list length per row, default 10) and returns a DataFrame with one row per
    recommendation: ``user``, ``item`` (original ids), ``rank`` (1 = best), ``score`` (float32
    model score) and ``title``; each user's training items are left out. An unknown user raises
    ``ValueError`` naming it.
    """

    def load_context(self, context) -> None:
        from reclab.models import load

        self.model_ = load(context.artifacts["model"])
        with np.load(context.artifacts["catalog"], allow_pickle=False) as archive:
            self.user_ids_ = archive["user_ids"]
            self.item_ids_ = archive["item_ids"]
            self.titles_ = archive["titles"]
        self.user_lookup_ = {value: index for index, value in enumerate(self.user_ids_.tolist())}

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "user" not in frame.columns:
            raise ReclabError(f"input needs a 'user' column of user ids; columns are "
                              f"{list(frame.columns)}")
        users = frame["user"].tolist()
        unknown = [user for user in users if user not in self.user_lookup_]
        if unknown:
            raise ReclabError(f"unknown user id(s) {unknown[:10]}; the model knows "
                              f"{len(self.user_lookup_)} users, e.g. {self.user_ids_[:3].tolist()}")
        indices = np.asarray([self.user_lookup_[user] for user in users], dtype=np.int64)
        if "n" in frame.columns:
            lengths = frame["n"].fillna(10).astype(np.int64).to_numpy()
        else:
            lengths = np.full(len(users), 10, dtype=np.int64)
        if len(users) and lengths.min() < 1:
            raise ReclabError(f"n must be >= 1, got {int(lengths.min())}")
        if not len(users):
            return pd.DataFrame({"user": [], "item": [], "rank": [], "score": [], "title": []})
        # Rows beyond the catalog would only be padding, which is dropped below: cap the length.
        ids, scores = self.model_.recommend(indices, n=int(min(lengths.max(), self.model_.n_items_)),
                                            filter_seen=True)
        rows_user, rows_item, rows_rank, rows_score = [], [], [], []
        for row, (user, length) in enumerate(zip(users, lengths)):
            keep = ids[row, :length] >= 0
            items = ids[row, :length][keep]
            rows_user.extend([user] * items.size)
            rows_item.append(items)
            rows_rank.append(np.arange(1, items.size + 1))
            rows_score.append(scores[row, :length][keep])
        items = np.concatenate(rows_item)
        return pd.DataFrame({"user": rows_user, "item": self.item_ids_[items],
                             "rank": np.concatenate(rows_rank).astype(np.int64),
                             "score": np.concatenate(rows_score).astype(np.float32),
                             "title": self.titles_[items].astype(str)})


# -- what the pipeline runner needs -----------------------------------------------------------
def log_notebook(run_id: str, path, uri: str | None = None) -> None:
    """Log an executed notebook as ``notebook/<file name>`` of ``run_id``, and rendered as
    HTML (``notebook/<stem>.html``, which MLflow's artifact viewer shows as a page)."""
    client = _client(uri)
    client.log_artifact(run_id, str(path), "notebook")
    with tempfile.TemporaryDirectory() as folder:
        client.log_artifact(run_id, str(_notebook_html(path, folder)), "notebook")


def _notebook_html(path, folder) -> Path:
    """The executed notebook ``path`` rendered by nbconvert (its HTML exporter, figures
    embedded) into ``folder``; returns the HTML file."""
    import nbconvert
    import nbformat

    body, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.read(str(path), as_version=4))
    html = Path(folder) / f"{Path(path).stem}.html"
    html.write_text(body, encoding="utf-8")
    return html


def fail_stage(parent_run_id: str, stage: str, notebook, message: str,
               uri: str | None = None, status: str = "FAILED") -> str | None:
    """Mark a stage and its pipeline FAILED after a notebook raised (or KILLED, interrupted).

    The stage's RUNNING run (or, when the notebook failed before starting one, a new run for
    the record) gets the executed notebook with the error, tag ``reclab.error`` and ``status``;
    so do the pipeline run and any trial run still RUNNING under the stage run. Returns the
    stage run id.

    ``status="KILLED"`` is for an interruption (Ctrl-C, SIGTERM): when the stage then has no
    RUNNING run (its kernel had not started one yet, or had just finished it), no run is made
    for the record; only the pipeline run is marked, and None is returned.
    """
    if status not in ("FAILED", "KILLED"):
        raise ReclabError(f"status must be 'FAILED' or 'KILLED', got {status!r}")
    client = _client(uri)
    parent = client.get_run(parent_run_id)
    runs = [run for run in stage_runs(parent_run_id, uri)
            if run.data.tags.get("reclab.stage") == stage and run.info.status == "RUNNING"]
    text = message if len(message) <= 4000 else message[:3990] + " [...]"
    if runs:
        run_id = runs[-1].info.run_id
    elif status == "KILLED":
        client.set_tag(parent_run_id, "reclab.error", text)
        client.set_terminated(parent_run_id, status=status)
        return None
    else:
        run_id = client.create_run(parent.info.experiment_id,
                                   run_name=f"{parent.info.run_name}/{STAGES.index(stage) + 1}-{stage}",
                                   tags={_PARENT: parent_run_id, "reclab.stage": stage}).info.run_id
    if notebook is not None and Path(notebook).is_file():
        client.log_artifact(run_id, str(notebook), "notebook")
    for target in (run_id, parent_run_id):
        client.set_tag(target, "reclab.error", text)
    what = "failed" if status == "FAILED" else "was interrupted"
    client.set_tag(run_id, _NOTE, f"Stage {stage} {what}:\n\n```\n{text}\n```")
    # A kernel stopped while logging a tuning trial leaves that trial's run RUNNING.
    for trial in client.search_runs([parent.info.experiment_id], max_results=1000,
                                    filter_string=f"tags.`{_PARENT}` = '{run_id}' and "
                                                  f"attributes.status = 'RUNNING'"):
        client.set_terminated(trial.info.run_id, status=status)
    client.set_terminated(run_id, status=status)
    client.set_terminated(parent_run_id, status=status)
    return run_id


def end_unfinished_pipeline(parent_run_id: str, message: str, uri: str | None = None,
                            status: str = "FAILED") -> None:
    """Mark a pipeline run still RUNNING, and its stage and trial runs still RUNNING, ``status``
    (FAILED, or KILLED when interrupted), with ``message`` as tag ``reclab.error``.

    For a runner that leaves outside a stage's own error handling (an unwritable output folder,
    a store error while logging, a signal between stages); a run already ended is left as it is.
    """
    client = _client(uri)
    parent = client.get_run(parent_run_id)
    if parent.info.status != "RUNNING":
        return
    text = message if len(message) <= 4000 else message[:3990] + " [...]"
    pending = [parent_run_id]
    while pending:   # the pipeline run, its stage runs, their trial runs
        run_id = pending.pop()
        children = client.search_runs([parent.info.experiment_id], max_results=1000,
                                      filter_string=f"tags.`{_PARENT}` = '{run_id}' and "
                                                    f"attributes.status = 'RUNNING'")
        pending.extend(child.info.run_id for child in children)
        if run_id != parent_run_id:
            client.set_terminated(run_id, status=status)
    client.set_tag(parent_run_id, "reclab.error", text)
    client.set_terminated(parent_run_id, status=status)


def end_pipeline(parent_run_id: str, summary: str | None = None, uri: str | None = None) -> None:
    """Mark the pipeline run FINISHED, with ``summary`` as its description."""
    client = _client(uri)
    if summary:
        client.set_tag(parent_run_id, _NOTE, summary)
    if "reclab.error" in client.get_run(parent_run_id).data.tags:   # a resumed pipeline succeeded
        client.delete_tag(parent_run_id, "reclab.error")
    client.set_terminated(parent_run_id, status="FINISHED")


def pipeline_state(parent_run_id: str, uri: str | None = None) -> dict:
    """What ``--resume`` needs of a pipeline run: ``{"params_text": str, "finished": [stage,
    ...]}``, its ``params.yaml`` text and the stages that have a finished run."""
    client = _client(uri)
    try:
        parent = client.get_run(parent_run_id)
    except mlflow.exceptions.MlflowException:
        raise ReclabError(f"no MLflow run {parent_run_id!r} at {tracking_uri(uri)}") from None
    if "reclab.pipeline" not in parent.data.tags:
        raise ReclabError(f"run {parent_run_id} is not a reclab pipeline run (no reclab.pipeline "
                          f"tag); pass the id of the parent run")
    with tempfile.TemporaryDirectory() as folder:
        text = _download(client, parent_run_id, "params.yaml", folder).read_text(encoding="utf-8")
    finished = sorted({run.data.tags["reclab.stage"] for run in stage_runs(parent_run_id, uri)
                       if run.info.status == "FINISHED"}, key=STAGES.index)
    return {"params_text": text, "finished": finished}


def reopen_pipeline(parent_run_id: str, uri: str | None = None) -> None:
    """Set a pipeline run back to RUNNING, as ``--resume`` continues it."""
    _client(uri).update_run(parent_run_id, status="RUNNING")


def pipeline_summary(parent_run_id: str, uri: str | None = None) -> dict:
    """What ``reclab run`` prints at the end, read back from MLflow.

    Returns
    -------
    dict
        ``run_id``, ``run_name``, ``experiment_id``, ``status``, ``stages`` (list of
        ``(stage, run_id, status, seconds)``), ``best`` (tune's best_params.json or None),
        ``metrics`` (evaluate run's metrics, a dict), ``online`` (the description of the online
        stage's run, its A/B result; None without one), ``tracking_uri``.
    """
    client = _client(uri)
    parent = client.get_run(parent_run_id)
    latest = {}
    for run in stage_runs(parent_run_id, uri):
        latest[run.data.tags["reclab.stage"]] = run
    stages = []
    for stage in STAGES:
        run = latest.get(stage)
        if run is not None:
            seconds = ((run.info.end_time or run.info.start_time) - run.info.start_time) / 1000.0
            stages.append((stage, run.info.run_id, run.info.status, seconds))
    best = None
    if "tune" in latest and latest["tune"].info.status == "FINISHED":
        with tempfile.TemporaryDirectory() as folder, contextlib.suppress(Exception):
            best = json.loads(_download(client, latest["tune"].info.run_id, "best_params.json",
                                        folder).read_text(encoding="utf-8"))
    metrics = dict(latest["evaluate"].data.metrics) if "evaluate" in latest else {}
    online = latest["online"].data.tags.get("mlflow.note.content") if "online" in latest else None
    return {"run_id": parent_run_id, "run_name": parent.info.run_name,
            "experiment_id": parent.info.experiment_id, "status": parent.info.status,
            "stages": stages, "best": best, "metrics": metrics, "online": online,
            "tracking_uri": tracking_uri(uri)}


def _evaluate_run(client: MlflowClient, run_id: str, uri: str | None):
    """``run_id`` itself if it is an evaluate run, else its pipeline's latest finished evaluate
    run, else None."""
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ReclabError(f"no MLflow run {run_id!r} at {tracking_uri(uri)}") from None
    if run.data.tags.get("reclab.stage") == "evaluate":
        return run
    if "reclab.pipeline" in run.data.tags:
        return find_stage_run("evaluate", client.get_experiment(run.info.experiment_id).name,
                              run_id, uri=uri)
    return None


def load_report(run_id: str, uri: str | None = None):
    """The model's :class:`~reclab.evaluation.EvaluationReport` logged by an evaluate run (or by
    the evaluate stage of pipeline run ``run_id``), rebuilt from its per-user table, so that
    :func:`reclab.evaluation.compare` can pair two runs. Intervals are not restored and
    ``curve()`` is not available. None when the run has no evaluation."""
    from reclab.evaluation import EvaluationReport

    client = _client(uri)
    run = _evaluate_run(client, run_id, uri)
    if run is None or "reclab.test_fingerprint" not in run.data.tags:
        return None
    with tempfile.TemporaryDirectory() as folder:
        per_user = pd.read_csv(_download(client, run.info.run_id, "tables/per_user.csv", folder))
    metrics, tags = run.data.metrics, run.data.tags
    threshold = tags["reclab.relevance_threshold"]
    summary = {name: float(per_user[name].mean()) for name in per_user.columns if "@" in name}
    return EvaluationReport(
        summary=summary, per_user=per_user, n_evaluated=int(metrics.get("n_evaluated", len(per_user))),
        n_skipped=int(metrics.get("n_skipped", 0)), k=tuple(json.loads(tags["reclab.k"])),
        intervals={}, relevance_threshold=None if threshold == "None" else float(threshold),
        n_bootstrap=0, seed=0, test_fingerprint=tags["reclab.test_fingerprint"])


def run_table(run_ids, uri: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parameters and metrics of runs side by side (for ``reclab compare``).

    A pipeline run is shown with its own parameters and the metrics of its ``evaluate`` stage.

    Returns
    -------
    (params, metrics) : two DataFrames
        Indexed by parameter / metric name, one column per run (its run name and short id).
    """
    client = _client(uri)
    params, metrics, columns = {}, {}, []
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            raise ReclabError(f"no MLflow run {run_id!r} at {tracking_uri(uri)}") from None
        values = dict(run.data.metrics)
        evaluate = _evaluate_run(client, run_id, uri) if "reclab.pipeline" in run.data.tags else None
        if evaluate is not None:
            values = {**dict(evaluate.data.metrics), **values}
        column = f"{run.info.run_name} ({run_id[:8]})"
        columns.append(column)
        params[column] = dict(run.data.params)
        metrics[column] = values
    return (pd.DataFrame(params).reindex(columns=columns).sort_index(),
            pd.DataFrame(metrics).reindex(columns=columns).sort_index())


# -- the MLflow UI ----------------------------------------------------------------------------
def ui_path(experiment_id: str, run_id: str | None = None) -> str:
    """Where an experiment's runs table (or one run's page) is in the MLflow UI: the part of
    the address after ``http://host:port``.

    MLflow 3's UI opens an experiment on its GenAI overview (traces, token costs) unless the
    address says ``workflowType=machine_learning``: a new browser starts its "GenAI / Model
    training" switch at GenAI. reclab's runs are in the runs table of "Model training".
    """
    path = f"/#/experiments/{experiment_id}/runs" + (f"/{run_id}" if run_id else "")
    return path + "?workflowType=machine_learning"


def experiments_with_runs(uri: str | None = None, limit: int = 10) -> list[tuple[str, str]]:
    """``(experiment id, name)`` of the active experiments that hold runs, the most recently
    created first, at most ``limit`` of them (``reclab ui`` prints their addresses).

    Opening a new local SQLite store here creates its schema (see
    :func:`_prepare_sqlite_store`), so call this before starting a server on it.
    """
    client = _client(uri)
    found = []
    for experiment in client.search_experiments(order_by=["creation_time DESC"], max_results=200):
        if client.search_runs([experiment.experiment_id], max_results=1):
            found.append((experiment.experiment_id, experiment.name))
            if len(found) >= limit:
                break
    return found
