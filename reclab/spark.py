"""Spark backend: train ALS on a Spark cluster and compute ranking metrics inside Spark.

For data sets that outgrow one machine, this module keeps reclab's interface while the heavy work
runs in Spark:

- :class:`reclab.models.SparkALS` (in ``reclab/models/spark_als.py``, with the other models) is a
  reclab :class:`~reclab.models.base.FactorModel` (``fit``, ``recommend``, ``predict``,
  ``similar_items``, ``save``, scikit-learn parameters, so ``reclab.tune`` and ``reclab.evaluate``
  work unchanged) trained by ``pyspark.ml.recommendation.ALS``, with the session and the
  DataFrame helpers of this module. The learned factors come back as numpy arrays.
- :func:`evaluate` computes the ranking metrics of a factor model inside Spark (top-K per user by
  a cross join of the factor tables, seen items removed by a left anti join), with the
  conventions of :func:`reclab.evaluate`, and gives the same numbers as :func:`reclab.evaluate`.
- :func:`read_interactions` reads Parquet or CSV straight into a Spark DataFrame;
  :func:`to_interactions` collects one into reclab :class:`~reclab.data.Interactions`.
- :func:`get_session` starts (once) or returns the SparkSession everything here uses.

pyspark (with Java 17) is an optional dependency, ``pip install reclab[spark]``; it is imported
only when a function here needs it, so this module (and loading a saved ``SparkALS``, which holds
numpy arrays only) works without it.

Limits
------
Training and :func:`evaluate` run on the cluster. The driver holds what reclab's model contract
needs in memory: the factors (``4 * factors * (n_users + n_items)`` bytes) and the training
interactions as a CSR matrix (``seen_``, used to filter seen items; about 8 bytes per
interaction, plus about 40 transiently while :meth:`SparkALS.fit` collects a DataFrame). A data
set of a few hundred million interactions fits a driver with tens of GB; beyond that, keep the
lists in Spark with :func:`evaluate` and do not call ``recommend`` on the driver.
:func:`evaluate` scores every (evaluated user, item) pair, ``O(n_users * n_items * factors)``
work spread over the cluster, as Spark's own ``recommendForAllUsers`` does.

Timing a fit (for benchmarks)
-----------------------------
Start the session first (``get_session()``, about 10-20 s of JVM start-up) and fit once to warm
up the JVM's compiler (the first fit is 2-4x slower); then time ``model.fit(train)``, which
includes uploading the ratings and collecting the factors.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from reclab.data import Interactions, check_held_out, check_overlap
from reclab.errors import ReclabError
from reclab._validate import check_cutoffs, check_seed, check_threshold
from reclab.metrics import RANKING_METRICS

__all__ = ["evaluate", "get_session", "read_interactions", "to_interactions"]

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
LOG4J2 = Path(__file__).with_name("spark-log4j2.properties")


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


def _quietly(function, *args, **kwargs):
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
            session = _quietly(builder.getOrCreate)
    running = session.sparkContext.master
    if master is not None and running != master:
        raise ReclabError(f"a SparkSession with master {running!r} is already active, but master "
                          f"{master!r} was asked for; stop it first (get_session().stop()) or pass "
                          f"master=None to use it")
    return session


# -- moving data between numpy and Spark ------------------------------------------------------
def to_spark(session, columns: dict):
    """A Spark DataFrame from numpy columns (via Arrow; float32 arrays of shape (n, k) become
    ``array<float>`` columns)."""
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.ndim == 2:
            offsets = np.arange(values.shape[0] + 1, dtype=np.int32) * values.shape[1]
            arrays[name] = pa.ListArray.from_arrays(pa.array(offsets),
                                                    pa.array(np.ascontiguousarray(values).reshape(-1)))
        else:
            arrays[name] = pa.array(values)
    return _quietly(session.createDataFrame, pa.table(arrays))


def collect(frame) -> dict:
    """A Spark DataFrame's columns as numpy arrays (``array<float>`` columns as (n, k) float32)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _quietly(frame.toArrow)
    out = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
            out[name] = flat.astype(np.float32).reshape(len(column), -1 if len(column) else 0)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def index_table(session, role: str, ids: np.ndarray):
    """A small table mapping original ids (column ``role``) to indices (``role + "_index"``),
    broadcast to every join with it."""
    functions = sql_functions()
    table = to_spark(session, {role: ids, f"{role}_index": np.arange(len(ids), dtype=np.int32)})
    return functions.broadcast(table)


def interaction_columns(data: Interactions) -> dict:
    matrix = data.matrix
    users = np.repeat(np.arange(data.n_users, dtype=np.int32), np.diff(matrix.indptr))
    return {"user": users, "item": matrix.indices.astype(np.int32),
            "rating": np.asarray(matrix.data, dtype=np.float32)}


def check_columns(frame, user: str, item: str, rating: str | None, timestamp: str | None,
                  owner: str | None = None):
    missing = [c for c in (user, item, rating, timestamp) if c is not None and c not in frame.columns]
    if missing:
        raise ReclabError(f"{owner + ': ' if owner else ''}column{'s' if len(missing) > 1 else ''} "
                          f"{missing} not found; columns are {frame.columns}")


def column(name: str):
    """Column ``name`` as written: quoted, so that a dot or a backtick is part of the name
    (``functions.col("user.id")`` would read field ``id`` of a struct column ``user``)."""
    return sql_functions().col("`" + name.replace("`", "``") + "`")


# An integer as int() writes it, within a long: CSV ids are cast to long only when every one is
# (as reclab.datasets.read_interactions reads them: "007" and "7" stay two ids).
_INTEGER_TEXT = "^-?(0|[1-9][0-9]{0,17})$"


def _ids_as_written(frame, columns):
    """The CSV id ``columns`` (text) as long integers where every id is written as an integer."""
    functions = sql_functions()
    others = frame.agg(*[functions.count(functions.when(~column(name).rlike(_INTEGER_TEXT), 1))
                         for name in columns]).first()
    return [column(name).cast("long") if not other else column(name) for name, other in zip(columns, others)]


def read_interactions(path, user: str = "user", item: str = "item", rating: str | None = "rating",
                      timestamp: str | None = None, format: str = "parquet", sep: str = ",",
                      header: bool = True, session=None):
    """Read interactions from Parquet or CSV into a Spark DataFrame (nothing is collected).

    Parameters
    ----------
    path : str or path-like
        A file, a folder of part files or a glob, on any file system Spark reads (``hdfs://``,
        ``s3a://``, local).
    user, item : str
        Columns of the user and item ids (integers or strings), named as written (a dot or a
        backtick is part of the name, not a nested field). A CSV's ids are read as written:
        integers (long) when every one is written as an integer, else strings, so that ``007`` and
        ``7`` stay two ids. For a CSV without header the columns are named ``_c0``, ``_c1``, ...
    rating : str or None
        Column of ratings; None for implicit feedback (every rating is 1.0).
    timestamp : str or None
        Column of timestamps in seconds, if any.
    format : {"parquet", "csv"}
    sep, header : str, bool
        CSV only: field separator and whether the first line names the columns. Every column is
        read as text (ratings and timestamps are cast to numbers), and one pass over the file
        tells whether the ids are integers.
    session : SparkSession, optional
        Default :func:`get_session`.

    Returns
    -------
    pyspark.sql.DataFrame
        Columns ``user``, ``item``, ``rating`` (float) and, when given, ``timestamp`` (double):
        what :class:`SparkALS`, :func:`evaluate` and :func:`to_interactions` read.

    Examples
    --------
    >>> ratings = read_interactions("ml-100k/u.data", user="_c0", item="_c1", rating="_c2",
    ...                             timestamp="_c3", format="csv", sep="\\t", header=False)  # doctest: +SKIP
    >>> model = SparkALS(factors=32).fit(ratings)                                   # doctest: +SKIP
    """
    functions = sql_functions()
    session = get_session() if session is None else session
    if format == "parquet":
        frame = session.read.parquet(str(path))
    elif format == "csv":
        # Spaces around a field ("1, 10, 4.0") are layout, not part of an id (as reclab's reader)
        frame = session.read.csv(str(path), sep=sep, header=bool(header),
                                 ignoreLeadingWhiteSpace=True, ignoreTrailingWhiteSpace=True)
    else:
        raise ReclabError(f"format must be 'parquet' or 'csv', got {format!r}")
    check_columns(frame, user, item, rating, timestamp)
    ids = [column(user), column(item)] if format == "parquet" else _ids_as_written(frame, [user, item])
    ratings = functions.lit(1.0) if rating is None else column(rating)
    selected = [ids[0].alias("user"), ids[1].alias("item"), ratings.cast("float").alias("rating")]
    if timestamp is not None:
        selected.append(column(timestamp).cast("double").alias("timestamp"))
    return frame.select(*selected)


def to_interactions(frame, user: str = "user", item: str = "item", rating: str | None = "rating",
                    timestamp: str | None = "timestamp") -> Interactions:
    """Collect a Spark DataFrame of interactions into reclab :class:`~reclab.data.Interactions`.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per interaction, for example from :func:`read_interactions`.
    user, item, rating, timestamp : str or None
        Column names; ``rating=None`` means implicit feedback; a ``timestamp`` column that does
        not exist is ignored only when left at its default.

    Returns
    -------
    Interactions
        Built by :meth:`Interactions.from_frame` (ids sorted, duplicates resolved as it
        documents), so it indexes users and items exactly as :meth:`SparkALS.fit` does for the
        same DataFrame.
    """
    if not is_spark_frame(frame):
        raise ReclabError(f"to_interactions needs a Spark DataFrame, got {type(frame).__name__}")
    if timestamp == "timestamp" and "timestamp" not in frame.columns:
        timestamp = None
    check_columns(frame, user, item, rating, timestamp)
    wanted = [c for c in (user, item, rating, timestamp) if c is not None]
    table = _quietly(frame.select(*[column(name) for name in wanted]).toArrow)
    if table.num_rows == 0:
        raise ReclabError("no interactions: the Spark DataFrame is empty")
    return Interactions.from_frame(table.to_pandas(), user=user, item=item, rating=rating,
                                   timestamp=timestamp)


# -- evaluation inside Spark ---------------------------------------------------------------------
def _pairs(session, value, name: str, model, threshold):
    """(user, item[, rating]) pairs of an Interactions or a DataFrame of ids, as a Spark frame of
    ``user`` (a key: the index, or the original id), ``user_index`` and ``item`` (indices; null
    for ids the model does not know)."""
    functions = sql_functions()
    if isinstance(value, Interactions):
        if value.shape != (model.n_users_, model.n_items_):
            raise ReclabError(f"{name} has shape {value.shape} but the model was fitted on "
                              f"{(model.n_users_, model.n_items_)}; use a split of the data it was "
                              f"fitted on (the same users and items)")
        matrix = value.matrix
        if threshold is not None:
            matrix = value.select(value.matrix.data >= threshold).matrix
        users = np.repeat(np.arange(value.n_users, dtype=np.int32), np.diff(matrix.indptr))
        frame = to_spark(session, {"user": users, "item": matrix.indices.astype(np.int32)})
        return frame.withColumn("user_index", functions.col("user"))
    if not is_spark_frame(value):
        raise ReclabError(f"{name} must be reclab Interactions or a Spark DataFrame, got "
                          f"{type(value).__name__}")
    if threshold is not None:
        value = value.where(functions.col("rating") >= threshold)
    value = value.select("user", "item").distinct()
    return (value.join(index_table(session, "user", model.user_ids_), "user", "left")
            .join(index_table(session, "item", model.item_ids_), "item", "left")
            .select("user", "user_index", functions.col("item_index").alias("item")))


#: What a join compares ids as, by Spark type or numpy kind (integers of any width match).
_ID_KINDS = {"tinyint": "integers", "smallint": "integers", "int": "integers", "bigint": "integers",
             "string": "strings", "i": "integers", "u": "integers", "U": "strings", "O": "strings"}


def _id_kind(dtype) -> str:
    key = dtype.kind if isinstance(dtype, np.dtype) else dtype.simpleString()
    return _ID_KINDS.get(key, "double" if key == "f" else key)


def _check_id_frames(model, train, test, threshold) -> None:
    """evaluate's checks of DataFrames of ids, before any join: columns, ids of one kind in train,
    test and the model, no null id, check_overlap on distinct pairs (not the model's own pairs)."""
    functions = sql_functions()
    frames = {"train": train, "test": test}
    for name, frame in frames.items():
        rating = "rating" if threshold is not None and name == "test" else None
        check_columns(frame, "user", "item", rating, None, owner=f"{name} DataFrame")
    owner = type(model).__name__
    if not hasattr(model, "user_ids_"):
        raise ReclabError(f"train and test are Spark DataFrames of ids, but {owner} does not record the "
                          f"ids it was trained on; pass Interactions (a split of the training data) or "
                          f"use a SparkALS model")
    for role in ("user", "item"):
        # Spark would join other kinds through an implicit cast, matching 5 to both '5' and '005'.
        types = [frame.schema[role].dataType.simpleString() for frame in (train, test)]
        kinds = [_id_kind(frame.schema[role].dataType) for frame in (train, test)]
        fitted = _id_kind(np.asarray(getattr(model, f"{role}_ids_")).dtype)
        if kinds[0] != kinds[1] or kinds[0] != fitted:
            which = (f"of train are {types[0]} but those of test are {types[1]}" if kinds[0] != kinds[1]
                     else f"of train and test are {types[0]} but those {owner} was fitted on are {fitted}")
            target = {"integers": "bigint", "strings": "string"}.get(fitted, fitted)
            raise ReclabError(f"the {role} ids {which}, which Spark would join through an implicit cast "
                              f"(matching 5 to both '5' and '005'); cast both {role} columns to the type "
                              f"of the model's ids (frame[{role!r}].cast({target!r})), or read train and "
                              f"test with the same schema as the data it was fitted on")
    counts = []
    for name, frame in frames.items():
        nulls = [functions.count(functions.when(functions.col(role).isNull(), 1))
                 for role in ("user", "item")]
        row = frame.agg(functions.count_distinct("user", "item"), *nulls).first()
        for role, n_missing in zip(("user", "item"), row[1:]):
            if n_missing:
                raise ReclabError(f"the {name} DataFrame's {role} column has {n_missing} missing (null) "
                                  f"id{'s' if n_missing > 1 else ''}; every row needs a user and an item "
                                  f"id (drop the others: frame.dropna(subset=['user', 'item']))")
        counts.append(row[0])
    pairs = [frame.select("user", "item").distinct() for frame in (train, test)]
    check_overlap(counts[0], counts[1], pairs[0].join(pairs[1], ["user", "item"]).count())


def evaluate(model, train, test, k=10, relevance_threshold=None, session=None, seed: int = 0) -> dict:
    """Ranking metrics of a fitted factor model, computed inside Spark.

    The same metrics, conventions and numbers as :func:`reclab.evaluate` (docs/architecture.md,
    "Conventions"), for data too large to score on one machine: top-K lists are made in Spark
    from the model's factors, seen items are removed, and only the means come back.

    Parameters
    ----------
    model : reclab.models.FactorModel
        Fitted; its ``user_factors_``, ``item_factors_`` (and item biases, for models with
        biases) are sent to Spark. Scores are ``b_i + p_u . q_i`` summed in float64 over the
        factors in order and rounded once to float32, exactly as :meth:`SparkALS.score_items`
        scores, and ties are broken as ``reclab.evaluate`` breaks them: by Spark SQL's
        ``hash(seed, user index, item index)`` (:func:`reclab.ranking.tie_keys`), then by the lower
        item index. Other factor models score in float32, whose last bit can reorder items tied
        to within 1e-7; on ML-100k, ExplicitALS and ImplicitALS still agree with
        ``reclab.evaluate`` to 1e-15.
    train, test : Interactions or pyspark.sql.DataFrame
        Both Interactions over the model's users and items (a split of its training data), or
        both Spark DataFrames with columns ``user``, ``item`` (original ids) and, for ``test`` with a
        threshold, ``rating``; DataFrames need a model that records its ids (``SparkALS``), no
        missing (null) id, and ids of one kind (integers of any width, or strings) in train, test
        and the model (Spark would join others through an implicit cast). Test users unknown to
        the model are scored with zero factors; test items unknown to it are relevant but can
        never be recommended; items without training interactions rank last, as ``score_items``
        ranks them (:class:`reclab.models.Recommender`). Repeated pairs count once. As
        ``reclab.evaluate``, refused: a test split whose every pair is in train, or that holds
        every pair of train (:func:`reclab.data.check_held_out`; on DataFrames by counting pairs,
        so a model fitted on other pairs than train is not detected there).
    k : int or sequence of int
        Cutoffs, each >= 1.
    relevance_threshold : float, optional
        Only test interactions rated at or above it are relevant; default all are.
    session : SparkSession, optional
        Default :func:`get_session` (with the model's ``master``, for a SparkALS).
    seed : int
        Seed of the tie-breaking, as ``reclab.evaluate``'s ``seed``.

    Returns
    -------
    dict of str -> float
        ``"precision@K"``, ``"recall@K"``, ``"ndcg@K"``, ``"map@K"``, ``"mrr@K"``,
        ``"hit_rate@K"`` for every K (macro means over users with at least one relevant test
        item), then ``"coverage@K"``: the keys and values of ``reclab.evaluate(...).summary``
        without rmse / mae.

    Raises
    ------
    ReclabError
        If the model is not a fitted factor model, the data do not match it (DataFrames: a column
        missing, a null id, ids of other types), or no user has a relevant test item.

    Notes
    -----
    Per user ``u`` with relevant set ``R_u`` and list ranks ``r = 1..K``: precision@K =
    hits / K, recall@K = hits / |R_u|, nDCG@K = sum over hit ranks of 1 / log2(r + 1) divided by
    the same sum over ranks 1..min(|R_u|, K), AP@K = sum over hit ranks of precision@r divided
    by min(|R_u|, K), RR@K = 1 / (first hit rank), hit_rate@K = 1 if any hit; coverage@K =
    distinct items in the evaluated users' top-K lists / n_items. Work is one cross join of the
    evaluated users with every item: O(users * items * factors), spread over the cluster; only
    the top K per user are kept (Spark stops each user's sort at K).
    """
    functions = sql_functions()
    from pyspark.sql import Window

    # A factor model by what it has (reclab.models imports this module for SparkALS, so this
    # module cannot import reclab.models; see docs/architecture.md).
    if not (hasattr(model, "user_factors_") or hasattr(type(model), "_item_offset")):
        raise ReclabError(f"evaluate needs a reclab factor model (SparkALS, ExplicitALS, "
                          f"ImplicitALS, SVD), got {type(model).__name__}")
    model._check_fitted()
    ks = check_cutoffs(k)
    seed = check_seed(seed)
    threshold = check_threshold(relevance_threshold)
    if isinstance(train, Interactions) != isinstance(test, Interactions):
        raise ReclabError(f"train and test must both be Interactions or both Spark DataFrames, got "
                          f"{type(train).__name__} and {type(test).__name__}")
    if isinstance(test, Interactions):
        check_held_out(model, train, test)
    else:
        _check_id_frames(model, train, test, threshold)
    if session is None:
        session = get_session(getattr(model, "master", None))
    max_k = ks[-1]

    relevant = _pairs(session, test, "test", model, threshold).cache()
    seen = _pairs(session, train, "train", model, None).select("user", "item").where(
        functions.col("item").isNotNull())
    top = None
    try:
        evaluated = relevant.groupBy("user").agg(
            functions.first("user_index", ignorenulls=True).alias("user_index"),
            functions.count("*").alias("n_relevant"))
        n_factors = int(model.user_factors_.shape[1])
        user_columns = {"user_index": np.arange(model.n_users_, dtype=np.int32)}
        item_columns = {"item": np.arange(model.n_items_, dtype=np.int32)}
        for f in range(n_factors):
            user_columns[f"p{f}"] = model.user_factors_[:, f].astype(np.float32)
            item_columns[f"q{f}"] = model.item_factors_[:, f].astype(np.float32)
        offset = model._item_offset()
        if offset is not None:
            item_columns["b"] = np.asarray(offset, dtype=np.float32)
        # Items without training interactions rank last, tied, as score_items ranks them.
        last = model._ranked_last()
        if last is not None:
            item_columns["rated"] = (~last).astype(np.int32)
        item_factors = to_spark(session, item_columns)
        # Users unknown to the model (a DataFrame test) have no row: zero factors.
        zero = functions.lit(0.0).cast("float")
        users = (evaluated.join(to_spark(session, user_columns), "user_index", "left")
                 .select("user", "user_index", *[functions.coalesce(f"p{f}", zero).alias(f"p{f}")
                                   for f in range(n_factors)]))
        # One column per factor rather than arrays: Spark compiles this expression to Java code,
        # about 10x faster than its interpreted higher-order array functions. The sum runs
        # left to right in double over exact float32 products, then rounds once to float32:
        # bit for bit what SparkALS._score computes with numpy.
        score = functions.lit(0.0)
        for f in range(n_factors):
            score = score + functions.col(f"p{f}").cast("double") * functions.col(f"q{f}").cast("double")
        if offset is not None:
            score = score + functions.col("b").cast("double")
        # The users come grouped (hash partitioned) by user and the items are broadcast, so each
        # user's scores stay in one partition and the per-user ranking shuffles none of them.
        # reclab.ranking.tie_keys: Spark's hash of three int columns
        tie = functions.hash(functions.lit(seed % 2**31).cast("int"),
                             functions.col("user_index").cast("int"), functions.col("item").cast("int"))
        score = score.cast("float")
        if last is not None:   # null: after every scored item, and all equal
            score = functions.when(functions.col("rated") == 1, score)
        scored = (users.crossJoin(functions.broadcast(item_factors))
                  .select("user", "item", score.alias("score"), tie.alias("tie"))
                  .join(seen, ["user", "item"], "left_anti"))
        order = Window.partitionBy("user").orderBy(functions.col("score").desc_nulls_last(),
                                                   functions.col("tie").asc(), functions.col("item").asc())
        top = (scored.withColumn("rank", functions.row_number().over(order))
               .where(functions.col("rank") <= max_k).select("user", "item", "rank").cache())
        hit_order = Window.partitionBy("user").orderBy("rank")
        hits = (top.join(relevant.select("user", "item"), ["user", "item"])
                .withColumn("nth", functions.row_number().over(hit_order)))
        summary, n_evaluated = _summarize(hits, evaluated, ks)
        if n_evaluated == 0:
            rule = "a test interaction" if threshold is None else f"a test rating >= {threshold}"
            raise ReclabError(f"no user has {rule}, so there is nothing to evaluate; check the test "
                              f"split and relevance_threshold")
        shown = [functions.count_distinct(functions.when(functions.col("rank") <= cut, functions.col("item")))
                 .alias(f"coverage@{cut}") for cut in ks]
        coverage = top.agg(*shown).collect()[0].asDict()
    finally:
        relevant.unpersist()
        if top is not None:
            top.unpersist()
    for cut in ks:
        summary[f"coverage@{cut}"] = coverage[f"coverage@{cut}"] / float(model.n_items_)
    return summary


def _summarize(hits, evaluated, ks) -> tuple[dict, int]:
    """Macro means of every ranking metric at every cutoff from the hit ranks of each user, and
    the number of evaluated users."""
    functions = sql_functions()
    col, when, lit = functions.col, functions.when, functions.lit
    max_k = ks[-1]
    # Discounts and ideal DCGs from numpy, as reclab.metrics computes them, passed as literals.
    discounts = 1.0 / np.log2(np.arange(2, max_k + 2, dtype=np.float64))
    ideal = np.cumsum(discounts)
    discount = functions.array(*[lit(float(d)) for d in discounts])
    ideal_dcg = functions.array(*[lit(float(d)) for d in ideal])
    sums = []
    for cut in ks:
        inside = col("rank") <= cut
        sums += [functions.sum(when(inside, 1).otherwise(0)).alias(f"hits{cut}"),
                 functions.sum(when(inside, functions.element_at(discount, col("rank"))).otherwise(0.0))
                 .alias(f"dcg{cut}"),
                 functions.sum(when(inside, col("nth") / col("rank")).otherwise(0.0)).alias(f"ap{cut}")]
    per_user = hits.groupBy("user").agg(functions.min("rank").alias("first"), *sums)
    table = evaluated.join(per_user, "user", "left").na.fill(0)
    means = []
    for cut in ks:
        n_ideal = functions.least(col("n_relevant"), lit(cut))
        n_hits = col(f"hits{cut}").cast("double")
        values = {
            "precision": n_hits / cut,
            "recall": n_hits / col("n_relevant"),
            "ndcg": col(f"dcg{cut}") / functions.element_at(ideal_dcg, n_ideal.cast("int")),
            "map": col(f"ap{cut}") / n_ideal,
            "mrr": when((col("first") >= 1) & (col("first") <= cut), 1.0 / col("first")).otherwise(0.0),
            "hit_rate": when(col(f"hits{cut}") > 0, 1.0).otherwise(0.0),
        }
        means += [functions.avg(values[name]).alias(f"{name}@{cut}") for name in RANKING_METRICS]
    row = table.agg(functions.count("*").alias("n_users"), *means).collect()[0].asDict()
    if row["n_users"] == 0:
        return {}, 0
    summary = {f"{name}@{cut}": float(row[f"{name}@{cut}"]) for name in RANKING_METRICS for cut in ks}
    return summary, int(row["n_users"])
