"""The MLflow store reclab writes to: its URI, the project folder, and the lock that lets several
processes share a new local SQLite store.

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

import contextlib
import logging
import os
import socket
import tempfile
import urllib.request
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlsplit

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Param

from reclab.errors import ReclabError

__all__ = ["download", "experiment_id", "log_run_params", "no_progress_bars", "open_client", "param_text",
           "prepare_sqlite_store", "project_root", "quiet_mlflow_log", "sqlite_file", "sqlite_folder",
           "tracking_uri"]

# MLflow params are limited to 6000 characters; longer values are cut with a marker.
_MAX_PARAM = 6000


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
        module docstring). A SQLite file given by a relative path (``sqlite:///runs.db``) is
        made absolute against the current folder: ``reclab run`` passes the URI to stage
        kernels that run in ``notebooks/``, where the relative path named another, new store.
    """
    if uri:
        return _store_uri(str(uri), "the MLflow store")
    from_env = os.environ.get("MLFLOW_TRACKING_URI")
    if from_env:
        return _store_uri(from_env, "MLFLOW_TRACKING_URI")
    return "sqlite:///" + (project_root() / "mlflow.db").as_posix()


def _store_uri(uri: str, given: str) -> str:
    """``uri``, unless it is a path without a scheme: MLflow would take that for its file store
    (a folder, in maintenance mode) and fail with a traceback at the first run; a relative
    SQLite path made absolute."""
    if ":" not in uri:
        raise ReclabError(f"{given} {uri!r} is a path, not a store URI: write "
                          f"sqlite:///{uri} for a SQLite file, "
                          f"or http://host:port for an MLflow server")
    if uri.startswith("sqlite:///"):
        path, mark, query = uri[len("sqlite:///"):].partition("?")
        if path and path != ":memory:" and not os.path.isabs(unquote(path)):
            return "sqlite:///" + Path(os.path.abspath(unquote(path))).as_posix() + mark + query
    return uri


def sqlite_file(uri: str) -> Path | None:
    """A local SQLite store's database file (absolute), or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///"):])
    if not path or path == ":memory:":
        return None
    return Path(path if os.path.isabs(path) else os.path.abspath(path))


def sqlite_folder(uri: str) -> Path | None:
    """Folder of a local SQLite store's database file, or None for any other store."""
    database = sqlite_file(uri)
    return None if database is None else database.parent


@contextlib.contextmanager
def no_progress_bars():
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
def quiet_mlflow_log():
    """MLflow logs at INFO while saving a model ("Validating input example ..."); not news."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def download(client: MlflowClient, run_id: str, path: str, folder) -> Path:
    """Download artifact ``path`` of run ``run_id`` into ``folder`` (without a progress bar); the
    local file or folder."""
    with no_progress_bars():
        return Path(client.download_artifacts(run_id, path, str(folder)))


# Local SQLite stores this process has created or checked (see prepare_sqlite_store).
_PREPARED_STORES: set = set()
# MLflow servers this process has found listening (see _check_server).
_REACHED_SERVERS: set = set()


def prepare_sqlite_store(uri: str) -> None:
    """Create or upgrade a local SQLite store's schema once, one process at a time.

    MLflow creates the tables of a new database, and migrates an old one, the first time a
    process opens it, without any lock between processes: several pipelines started at once on
    a new ``mlflow.db`` then fail with "table ... already exists" or "duplicate column name".
    Opening the store under an exclusive ``flock`` on ``mlruns/.<db name>.lock`` beside the
    database (``mlruns/`` is git-ignored with the database) makes one process build the schema
    while the others wait, then find it complete. Everything after that goes through MLflow's
    sessions, which wait up to 20 s (SQLite ``busy_timeout``) for another writer.
    """
    database = sqlite_file(uri)
    if database is None or uri in _PREPARED_STORES:
        return
    _check_sqlite_file(uri, database)
    try:
        import fcntl
    except ImportError:   # Windows: no flock; MLflow builds the schema unguarded there
        fcntl = None
    with contextlib.suppress(ImportError):
        # Seconds of imports that MLflow makes on first opening a SQL store: made here, outside
        # the lock, so that processes do not queue for them.
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    lock_file = database.parent / "mlruns" / f".{database.name}.lock"
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


def _check_server(uri: str) -> None:
    """Refuse an MLflow server that nothing listens at (a wrong port, a server not started): MLflow
    retried its first request for minutes, then failed with a traceback. Checked once per process
    and server; through a proxy MLflow's requests take, the server is not checked here."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or uri in _REACHED_SERVERS \
            or urllib.request.getproxies().get(parts.scheme):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=10):
            pass
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ReclabError(f"MLflow server {uri} does not answer ({reason}); start it, or point "
                          f"--tracking-uri (or MLFLOW_TRACKING_URI) to the store you meant") from None
    _REACHED_SERVERS.add(uri)


def open_client(uri: str | None) -> MlflowClient:
    """A client of the store at :func:`tracking_uri` ``(uri)``, its schema prepared."""
    uri = tracking_uri(uri)
    prepare_sqlite_store(uri)
    _check_server(uri)
    try:
        return MlflowClient(tracking_uri=uri)
    except mlflow.exceptions.MlflowException as error:   # an unknown scheme: a traceback
        first = str(error).strip().splitlines()[0]
        raise ReclabError(f"MLflow store {uri} cannot be opened: {first}") from None


def experiment_id(name: str, uri: str | None = None) -> str:
    """Id of experiment ``name``, created when missing.

    In a SQLite store its artifacts go to ``mlruns/<name>`` beside the database file, so that
    the store is the same whichever folder the creating process runs in.
    """
    client = open_client(uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage != "active":
            raise ReclabError(f"MLflow experiment {name!r} is deleted; restore it in the MLflow UI "
                              f"or choose another experiment name")
        return found.experiment_id
    folder = sqlite_folder(tracking_uri(uri))
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


def param_text(value) -> str:
    """A value as a run's MLflow param holds it: text (None as ``"None"``), cut to MLflow's 6000
    characters with a marker."""
    text = "None" if value is None else str(value)
    return text if len(text) <= _MAX_PARAM else text[:_MAX_PARAM - 12] + " [truncated]"


def log_run_params(client: MlflowClient, run_id: str, values: Mapping) -> None:
    """Log ``values`` as params of run ``run_id`` (:func:`param_text`), in batches of MLflow's 100."""
    items = [Param(str(key), param_text(value)) for key, value in values.items()]
    for start in range(0, len(items), 100):   # MLflow accepts at most 100 params per batch
        client.log_batch(run_id, params=items[start:start + 100], synchronous=True)
