"""The SparkSession of reclab's Spark backend (:func:`get_session`) and access to pyspark, which
is imported only when a function here needs it (see :mod:`reclab.spark`)."""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import Mapping

from reclab.errors import ReclabError

#: Settings of a session started by :func:`get_session`; ``config`` overrides any of them.
DEFAULT_CONFIG = {
    "spark.app.name": "reclab",
    "spark.driver.memory": "2g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "ERROR",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
_MASTER = re.compile(r"^(local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?|local-cluster\[.+\]|"
                     r"(spark|k8s|mesos)://.+|yarn)$")
#: Shuffle partitions per core of a ``local`` master. Spark's default, 200 whatever the machine,
#: is sized for clusters: on one machine it splits every shuffle of :func:`evaluate` into 200 tiny
#: tasks (MovieLens latest-small on 2 cores: 27 s for the first evaluation, 12.6 s with 4).
SHUFFLE_PARTITIONS_PER_LOCAL_CORE = 2
#: A ``local`` master (the driver alone on this machine); group 1 its number of cores.
_LOCAL = re.compile(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?")
#: The driver's Log4j 2 settings, errors only (its comments say why).
LOG4J2 = Path(__file__).resolve().parent.parent / "spark-log4j2.properties"


# -- pyspark access ----------------------------------------------------------------------------
def sql_functions():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ReclabError("the Spark backend needs pyspark (and Java 17): "
                          "pip install 'reclab[spark]'") from None
    from pyspark.sql import functions

    return functions


def is_spark_frame(value) -> bool:
    try:
        from pyspark.sql import DataFrame
    except ImportError:
        return False
    return isinstance(value, DataFrame)


def quietly(function, *args, **kwargs):
    """Call a pyspark function without its warning that pandas >= 3 is not fully supported.

    reclab hands Spark Arrow tables, never pandas objects, so the warning (raised by pyspark's
    version check on every Arrow conversion) does not concern it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        return function(*args, **kwargs)


def check_master(master, owner: str = "get_session"):
    if master is None:
        return None
    if not isinstance(master, str) or not _MASTER.match(master):
        raise ReclabError(f"{owner} parameter master must be None (local[*]) or a Spark master URL "
                          f"such as 'local[2]', 'spark://host:7077', 'yarn' or 'k8s://...', got {master!r}")
    return master


def _local_defaults(master: str) -> dict:
    """``spark.sql.shuffle.partitions`` of a ``local`` master, by its number of cores
    (:data:`SHUFFLE_PARTITIONS_PER_LOCAL_CORE` per core); nothing for a cluster."""
    found = _LOCAL.fullmatch(master)
    if found is None:
        return {}
    cores = found.group(1) or "1"
    cores = (os.cpu_count() or 1) if cores == "*" else int(cores)
    return {"spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS_PER_LOCAL_CORE * cores)}


def _driver_java_options() -> str:
    """The driver JVM's options when none are given: :data:`LOG4J2`; and, on a machine without a
    system BLAS or LAPACK, no attempt to load one, which would print its failure to load for every
    session whose ALS solves (Spark's own Java implementation is then used, as it is anyway)."""
    import ctypes.util

    options = [f"-Dlog4j2.configurationFile={LOG4J2}"]
    options += [f"-Ddev.ludovic.netlib.{name}.allowNative=false" for name in ("blas", "lapack")
                if ctypes.util.find_library(name) is None]
    return " ".join(options)


@contextlib.contextmanager
def _loopback_driver(master: str):
    """While a ``local`` master's JVM starts: ``SPARK_LOCAL_IP`` 127.0.0.1 unless it is set, so
    that the driver, alone on this machine, listens on the loopback address only (and Spark does
    not warn, for every session, that the host name resolves to it)."""
    own = _LOCAL.fullmatch(master) is not None and "SPARK_LOCAL_IP" not in os.environ
    if own:
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    try:
        yield
    finally:
        if own:
            os.environ.pop("SPARK_LOCAL_IP", None)


def get_session(master: str | None = None, config: Mapping[str, str] | None = None):
    """The SparkSession reclab uses: the active one, or a new one started with small settings.

    Parameters
    ----------
    master : str, optional
        Spark master URL (``"local[2]"``, ``"spark://host:7077"``, ``"yarn"``, ...). None uses
        the active session whatever its master, or starts ``local[*]`` (every local core).
    config : mapping of str to str, optional
        Settings for a new session, over :data:`DEFAULT_CONFIG` (UI off, console progress off,
        log level ERROR, 2 GB driver memory), the driver's Java options (:data:`LOG4J2`, errors
        only, so that Spark's start-up messages stay out of a stage's output; no native BLAS
        where the machine has none) and, for a ``local`` master, 2 shuffle partitions per core
        (:data:`SHUFFLE_PARTITIONS_PER_LOCAL_CORE`) and a driver on the loopback address
        (``SPARK_LOCAL_IP``, unless set). Ignored when a session is already active: Spark fixes
        most settings at start-up.

    Returns
    -------
    pyspark.sql.SparkSession
        The same session on every call until it is stopped, so fits reuse one JVM.

    Raises
    ------
    ReclabError
        If pyspark is missing, ``master`` is not a master URL, or a session is already active
        with a different master (stop it first: ``get_session().stop()``).
    """
    sql_functions()
    from pyspark.sql import SparkSession

    master = check_master(master)
    # The active session is per thread; one started in another thread is the instantiated one.
    session = SparkSession.getActiveSession() or getattr(SparkSession, "_instantiatedSession", None)
    if session is None:
        start = master or "local[*]"
        builder = SparkSession.builder.master(start)
        settings = {**DEFAULT_CONFIG, **_local_defaults(start), **dict(config or {})}
        settings.setdefault("spark.driver.extraJavaOptions", _driver_java_options())
        for key, value in settings.items():
            builder = builder.config(key, str(value))
        with _loopback_driver(start):
            session = quietly(builder.getOrCreate)
    running = session.sparkContext.master
    if master is not None and running != master:
        raise ReclabError(f"a SparkSession with master {running!r} is already active, but master "
                          f"{master!r} was asked for; stop it first (get_session().stop()) or pass "
                          f"master=None to use it")
    return session
