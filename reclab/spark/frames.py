"""Spark DataFrames of interactions: reading Parquet or CSV (:func:`read_interactions`, which
checks the values as it reads them), collecting into reclab :class:`~reclab.data.Interactions`
(:func:`to_interactions`), and moving numpy columns to and from Spark."""

from __future__ import annotations

import numpy as np

from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.spark.session import get_session, is_spark_frame, quietly, sql_functions


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
    return quietly(session.createDataFrame, pa.table(arrays))


def collect(frame) -> dict:
    """A Spark DataFrame's columns as numpy arrays (``array<float>`` columns as (n, k) float32)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = quietly(frame.toArrow)
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
    return sql_functions().col(_quoted(name))


def _quoted(name: str) -> str:
    """``name`` as a Spark SQL identifier (in backticks, a backtick doubled)."""
    return "`" + name.replace("`", "``") + "`"


# An integer as int() writes it: CSV ids are cast to long only when every one is, within a long's
# range (as reclab.datasets.read_interactions reads them: "007" and "7", or "-0" and "0", stay two
# ids, and 1234567890123456789, 19 digits, is an integer).
_INTEGER_TEXT = "^(0|-?[1-9][0-9]*)$"


#: The largest magnitude of each number column: ratings are stored as float32, where a larger
#: one becomes inf; a timestamp only has to be finite.
#: The column a CSV is read with where Spark keeps the text of a row whose fields do not match
#: the header's (``columnNameOfCorruptRecord``); null for every other row.
_MALFORMED = "_reclab_malformed_row"


_LARGEST = {"rating": float(np.finfo(np.float32).max), "timestamp": float(np.finfo(np.float64).max)}


def _checked_columns(frame, path, user: str, item: str, numbers: dict, text_ids: bool,
                     header: bool = True):
    """The id columns and the numbers (role -> a double column) to select, after one pass over
    ``frame`` that refuses, naming the file, the column and a value, what Spark would otherwise
    fail on (or, without ANSI mode, turn into a null) at the frame's first use: a missing id, a
    rating or timestamp (``numbers``, role -> column name) that is missing, not a number (nor, for
    a timestamp, a date-time) or not finite, and text timestamps mixing numbers and date-times.
    With ``text_ids`` (a CSV, read with the :data:`_MALFORMED` column) the ids are cast to long
    integers where every one is written as an integer, and a row with more or fewer fields than
    the header (or the first line, without ``header``) is refused."""
    functions = sql_functions()

    def count(condition):
        return functions.count(functions.when(condition, 1))

    def smallest(condition, name):   # an offending value, the same one on every run
        return functions.min(functions.when(condition, column(name).cast("string")))

    checks = [count(column(name).isNull()) for name in (user, item)]
    if text_ids:
        checks += [count(column(_MALFORMED).isNotNull()), smallest(column(_MALFORMED).isNotNull(), _MALFORMED)]
        checks += [count(~(column(name).rlike(_INTEGER_TEXT)
                           & functions.expr(f"try_cast({_quoted(name)} AS BIGINT)").isNotNull()))
                   for name in (user, item)]
    values = {role: _number(frame, path, role, name) for role, name in numbers.items()}
    # Text timestamps are numbers (seconds) or ISO 8601 date-times, one or the other, as reclab's
    # own reader reads them.
    dated = (_date_time(numbers["timestamp"]) if "timestamp" in numbers
             and frame.schema[numbers["timestamp"]].dataType.typeName() == "string" else None)
    for role, name in numbers.items():
        value = values[role]
        malformed = column(name).isNotNull() & value.isNull()
        if role == "timestamp" and dated is not None:
            malformed = malformed & dated.isNull()
        infinite = functions.isnan(value) | (functions.abs(value) > _LARGEST[role])
        checks += [count(column(name).isNull()), count(malformed), smallest(malformed, name),
                   count(infinite), smallest(infinite, name)]
    if dated is not None:
        date_time = values["timestamp"].isNull() & dated.isNotNull()
        checks += [count(values["timestamp"].isNotNull()), count(date_time),
                   smallest(date_time, numbers["timestamp"])]
    found = iter(frame.agg(*checks).first())
    missing_ids = next(found), next(found)
    if text_ids:
        n_malformed, malformed = next(found), next(found)
        if n_malformed:
            names = [name for name in frame.columns if name != _MALFORMED]
            raise ReclabError(f"{path}: {_values(n_malformed, 'row')} {'has' if n_malformed == 1 else 'have'} "
                              f"more or fewer fields than the {len(names)} columns its "
                              f"{'header names' if header else 'first line has'} ({', '.join(names)}), "
                              f"such as {malformed.rstrip(chr(10) + chr(13))!r}; give every row the "
                              f"{'header' if header else 'first line'}'s fields (no separator at a "
                              f"line's end)")
    blank = "an empty field" if text_ids else "null"
    for role, name, missing in zip(("user", "item"), (user, item), missing_ids):
        if missing:
            raise ReclabError(f"{path}: {role} column {name!r} has {_values(missing, 'missing id')} "
                              f"({blank}); every row needs a user and an item id")
    others = [next(found), next(found)] if text_ids else [1, 1]
    for role, name in numbers.items():
        missing, n_malformed, malformed, n_infinite, infinite = (next(found) for _ in range(5))
        if missing:
            implicit = " (none at all: implicit feedback, rating=None)" if role == "rating" else ""
            raise ReclabError(f"{path}: {role} column {name!r} has {_values(missing, 'missing value')} "
                              f"({blank}); every row needs a {role}{implicit}")
        if n_malformed:
            unit = {"rating": "a number", "timestamp": "a number (seconds)"}[role]
            if role == "timestamp" and dated is not None:
                unit = "a number (seconds) or an ISO 8601 date-time"
            raise ReclabError(f"{path}: {role} column {name!r} has {_values(n_malformed, 'value')} that "
                              f"{'is' if n_malformed == 1 else 'are'} not {unit}, such as {malformed!r}")
        if n_infinite:
            within = " within float32's range (+-3.4e38)" if role == "rating" else ""
            raise ReclabError(f"{path}: {role} column {name!r} has {_values(n_infinite, 'value')} that "
                              f"{'is' if n_infinite == 1 else 'are'} not a finite number{within}, such as "
                              f"{infinite!r}")
    if dated is not None:
        n_numbers, n_dates, date = next(found), next(found), next(found)
        if n_numbers and n_dates:
            raise ReclabError(f"{path}: timestamp column {numbers['timestamp']!r} mixes numbers (seconds) "
                              f"and date-times, such as {date!r}; write every timestamp one way")
        if n_dates:
            values["timestamp"] = dated
    ids = [column(name).cast("long") if not other else column(name)
           for name, other in zip((user, item), others)]
    return ids, values


#: Spark types whose values :func:`_number` casts to a double (text is cast where it is a number).
_CAST = {"byte", "short", "integer", "long", "float", "double", "decimal", "boolean", "string"}


def _number(frame, path, role: str, name: str):
    """Column ``name`` as a double: a date-time as seconds since 1970-01-01 UTC (one without a time
    zone read as UTC, and a date as its midnight UTC, as reclab's own reader does), anything else
    cast (null if no number)."""
    functions = sql_functions()
    quoted = _quoted(name)
    kind = frame.schema[name].dataType
    if kind.typeName() == "timestamp":
        return functions.expr(f"unix_micros({quoted}) / 1e6")
    if kind.typeName() == "timestamp_ntz":
        return functions.expr(f"{_ntz_micros(quoted)} / 1e6")
    if kind.typeName() == "date":
        return functions.expr(f"unix_date({quoted}) * 86400.0")
    if kind.typeName() not in _CAST:
        raise ReclabError(f"{path}: {role} column {name!r} holds values of type {kind.simpleString()}, "
                          f"not numbers{' or date-times' if role == 'timestamp' else ''}")
    return functions.expr(f"try_cast({quoted} AS DOUBLE)")


#: A date-time written with its time zone: Z or an offset after the time of day.
_ZONED = "[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?[ ]*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _date_time(name: str):
    """Text column ``name`` read as ISO 8601 date-times, in seconds since 1970-01-01 UTC (null
    where a value is none): one with a time zone in it there, one without in UTC (not in the
    session's time zone, as Spark's cast would read it), as reclab's own reader does."""
    quoted = _quoted(name)
    # Spark reads a zoned time of day only with its seconds: 12:30Z as 12:30:00Z.
    seconds = f"regexp_replace({quoted}, '([T ][0-9]{{2}}:[0-9]{{2}})([ ]*[Z+-])', '$1:00$2')"
    return sql_functions().expr(
        f"(CASE WHEN {quoted} RLIKE '{_ZONED}' THEN unix_micros(try_cast({seconds} AS TIMESTAMP)) "
        f"ELSE {_ntz_micros(f'try_cast({quoted} AS TIMESTAMP_NTZ)')} END) / 1e6")


def _ntz_micros(sql: str) -> str:
    """Spark SQL: microseconds from 1970-01-01 00:00 to the TIMESTAMP_NTZ ``sql`` (read as UTC)."""
    return f"timestampdiff(MICROSECOND, TIMESTAMP_NTZ'1970-01-01 00:00:00', {sql})"


def _values(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


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
        integers (long) when every one is written as an integer within a long's range, else
        strings, so that ``007`` and ``7`` stay two ids. For a CSV without header the columns
        are named ``_c0``, ``_c1``, ...
    rating : str or None
        Column of ratings; None for implicit feedback (every rating is 1.0).
    timestamp : str or None
        Column of timestamps, if any: numbers (seconds), or date-times (Parquet's date-times and
        dates, or a CSV's ISO 8601 text such as ``2020-01-01T12:30:00+02:00``; one without a
        time zone is read as UTC, as :func:`reclab.datasets.read_interactions` reads them), read
        as seconds since 1970-01-01 UTC. A column mixing numbers and date-times is refused.
    format : {"parquet", "csv"}
    sep, header : str, bool
        CSV only: field separator and whether the first line names the columns. Every column is
        read as text (ratings and timestamps are cast to numbers).
    session : SparkSession, optional
        Default :func:`get_session`.

    Returns
    -------
    pyspark.sql.DataFrame
        Columns ``user``, ``item``, ``rating`` (float) and, when given, ``timestamp`` (double):
        what :class:`SparkALS`, :func:`evaluate` and :func:`to_interactions` read.

    Raises
    ------
    ReclabError
        Naming the file, the column and a value, when a row has no user or item id, or its rating
        or timestamp is missing, not a number (nor, for a timestamp, a date-time) or not finite
        (nor within float32's range), or when a CSV's timestamps mix numbers and date-times, or a
        CSV row has more or fewer fields than its header (Spark would drop the extra ones). One
        pass over the data checks this (and, for a CSV, whether the ids are integers): otherwise Spark
        would fail at the frame's first use, deep inside a job (ANSI mode, Spark 4's default), or
        read a bad value as a null rating (without it).

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
        layout = dict(sep=sep, header=bool(header), ignoreLeadingWhiteSpace=True,
                      ignoreTrailingWhiteSpace=True)
        columns = session.read.csv(str(path), **layout).schema   # the header's (or first line's)
        # Spark drops a row's fields beyond the header's ("1,2,3,4" under "user,item,rating" is
        # read as 1,2,3) and fills a short row with nulls; such a row keeps its text in this
        # column, which the check below refuses (as reclab's own reader refuses the file).
        from pyspark.sql.types import StringType, StructField

        marked = type(columns)(columns.fields + [StructField(_MALFORMED, StringType())])
        frame = session.read.csv(str(path), schema=marked, columnNameOfCorruptRecord=_MALFORMED,
                                 **layout)
    else:
        raise ReclabError(f"format must be 'parquet' or 'csv', got {format!r}")
    check_columns(frame, user, item, rating, timestamp)
    numbers = {role: name for role, name in (("rating", rating), ("timestamp", timestamp))
               if name is not None}
    ids, values = _checked_columns(frame, path, user, item, numbers, text_ids=format == "csv",
                                   header=header)
    ratings = functions.lit(1.0) if rating is None else values["rating"]
    selected = [ids[0].alias("user"), ids[1].alias("item"), ratings.cast("float").alias("rating")]
    if timestamp is not None:
        selected.append(values["timestamp"].alias("timestamp"))
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
    table = quietly(frame.select(*[column(name) for name in wanted]).toArrow)
    if table.num_rows == 0:
        raise ReclabError("no interactions: the Spark DataFrame is empty")
    return Interactions.from_frame(table.to_pandas(), user=user, item=item, rating=rating,
                                   timestamp=timestamp)
