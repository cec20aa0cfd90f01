"""A ratings file of the user's own as :class:`~reclab.data.Interactions`: one row per (user,
item) event in delimited text or Parquet, and optionally a file of the items (titles, genres).

:func:`read_interactions` is the local counterpart of :func:`reclab.spark.read_interactions`
(the same column arguments) and what the pipeline's ``dataset: file`` reads; ``reclab.datasets``
re-exports it beside the MovieLens loaders. Every error names the file and the problem, with the
line of a bad value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from reclab.data.features import genre_features
from reclab.data.interactions import Interactions
from reclab.errors import ReclabError

__all__ = ["PARQUET_SUFFIXES", "read_interactions"]

#: Suffixes read as Parquet; any other file is read as delimited text.
PARQUET_SUFFIXES = (".parquet", ".pq")
# An integer as int() writes it: an id column of a text file is read as integers only when every
# id is one, so that "007" and "7" (or "-0" and "0") stay two ids (numbers would make them one).
_INTEGER_TEXT = r"0|-?[1-9][0-9]*"
# What pandas reads as a missing value by default. Numbers (ratings, timestamps) keep that; ids and
# titles are read as written, where "NA", "None" or "null" can be a name, and only an empty field
# is missing.
_MISSING = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
            "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


def _first_parquet_rows(path: Path, nrows: int) -> pd.DataFrame:
    """The first ``nrows`` rows of a Parquet file, reading its first record batches only (not the
    whole table, then its head)."""
    import pyarrow.parquet

    source, batches, count = pyarrow.parquet.ParquetFile(path), [], 0
    for batch in source.iter_batches(batch_size=max(nrows, 1)):
        batches.append(batch)
        count += batch.num_rows
        if count >= nrows:
            break
    return pyarrow.Table.from_batches(batches, source.schema_arrow).to_pandas().head(nrows)


def _ids_as_written(values: pd.Series) -> pd.Series:
    """An id column read as text: integers when every id is written as an integer (int64, or
    uint64 above its range), else the strings as written. Spaces around an id ("1, 10, 4.0")
    are layout, not part of it: ``" 10"`` was a string id of its own, no match for the items
    file's 10."""
    values = values.str.strip()
    if values.str.fullmatch(_INTEGER_TEXT).all():
        for dtype in ("int64", "uint64"):
            try:
                return values.astype(dtype)
            except (OverflowError, ValueError):
                continue
    return values


def _read_frame(path, sep: str, header: bool, encoding: str, nrows: int | None,
                role: str, ids: tuple[str, ...] = (), texts: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str]:
    """The file as a table and how its rows are numbered in messages (the index is that number).
    The ``ids`` columns of a text file are read as written (:func:`_ids_as_written`), and so are
    the ``texts`` columns: in both only an empty field is missing, not ``NA`` or ``None``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ReclabError(f"{role} file {str(path)!r} " + ("is not a file" if path.exists() else "not found"))
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        if parquet:
            frame = pd.read_parquet(path) if nrows is None else _first_parquet_rows(path, nrows)
            frame.index = np.arange(1, len(frame) + 1)
            return frame, "rows numbered from 1"
        # Blank lines are read (as empty rows, dropped below) so that a row's number is its line's.
        text = {name if header else int(name[2:]): str for name in (*ids, *texts)
                if header or (name.startswith("_c") and name[2:].isdigit())}
        # A longer separator ("::" of MovieLens' .dat files) is a regular expression, which only
        # pandas' Python parser reads (r"\s+" excepted); it has no low_memory option.
        parser = {"engine": "python"} if len(sep) > 1 and sep != r"\s+" else {"low_memory": False}
        # index_col=False: a first row with one field more than the header ("1,2,3,4" under
        # "user,item,rating", or a separator at its end) made pandas take its first field for
        # an index, shifting the others: user 2, item 3, rating 4. Refused below instead.
        layout = dict(sep=sep, header=0 if header else None, encoding=encoding, skipinitialspace=True,
                      index_col=False, **parser)
        # Missing values per column, which needs the columns first (the header, or the first line).
        columns = pd.read_csv(path, nrows=0 if header else 1, **layout).columns
        missing = {column: [""] if column in text else _MISSING for column in columns}
        with warnings.catch_warnings():
            # pandas' warning that index_col=False drops the fields beyond the header's
            warnings.filterwarnings("error", "Length of header or names does not match",
                                    pd.errors.ParserWarning)
            try:
                frame = pd.read_csv(path, nrows=nrows, skip_blank_lines=False, dtype=text,
                                    keep_default_na=False, na_values=missing, **layout)
            except pd.errors.ParserWarning:
                raise ReclabError(f"{path}: its first row has more fields than the {len(columns)} "
                                  f"columns its {'header' if header else 'first line'} names "
                                  f"({', '.join(map(str, columns))}); give every row the header's "
                                  f"fields (no separator at a line's end)") from None
    except ReclabError:   # a ValueError, already worded
        raise
    except UnicodeDecodeError as error:
        raise ReclabError(f"{path}: is not {encoding} text ({error.reason}); "
                          f"give its encoding, such as encoding='latin-1' (file.encoding in a "
                          f"parameter file)") from None
    except (ValueError, OSError, ImportError, LookupError) as error:   # pandas' ParserError included
        how = "as Parquet" if parquet else f"with sep={sep!r}, encoding={encoding!r}"
        raise ReclabError(f"{path}: cannot be read {how} ({type(error).__name__}: "
                          f"{str(error).strip()})") from None
    first = 2 if header else 1
    frame.index = np.arange(first, first + len(frame))
    if not header:
        frame.columns = [f"_c{number}" for number in range(frame.shape[1])]
    frame = frame.dropna(how="all")
    for name in ids:
        if name in frame.columns:
            frame[name] = _ids_as_written(frame[name])
    return frame, "rows numbered as the lines of the file"


def _dates_or_numbers(values: pd.Series, column: str) -> pd.Series:
    """A timestamp column of text as date-times (UTC) when none of its values is a number; any
    other column as it is (:meth:`Interactions.from_frame` names a value that is no number)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values
    numbers = pd.to_numeric(values, errors="coerce").notna()
    if numbers.any():
        dates = pd.to_datetime(values[~numbers], format="ISO8601", utc=True, errors="coerce").notna()
        if dates.any():   # not a date-time named as a bad number
            row = values[~numbers].index[dates.to_numpy()][0]
            raise ReclabError(f"timestamp column {column!r} mixes numbers (seconds) and date-times, "
                              f"such as {values.loc[row]!r} at row {int(row)}; write every timestamp "
                              f"one way")
        return values
    dates = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    bad = dates.isna() & values.notna()
    if bad.any():
        row = values.index[bad.to_numpy()][0]
        raise ReclabError(f"timestamp column {column!r} has the value {values.loc[row]!r} at row "
                          f"{int(row)}, neither a number (seconds) nor an ISO 8601 date-time")
    return dates


def _item_table(path, item: str, title: str | None, genres: str | None, sep: str, header: bool,
                encoding: str) -> pd.DataFrame:
    """The items file as ``Interactions.items`` wants it: indexed by item id, with ``title``
    and ``genres`` columns (a repeated id keeps its last row)."""
    frame, numbered = _read_frame(path, sep, header, encoding, None, "items", ids=(item,),
                                  texts=tuple(name for name in (title, genres) if name is not None))
    wanted = {"item": item, "title": title, "genres": genres}
    for role, column in wanted.items():
        if column is not None and column not in frame.columns:
            raise ReclabError(f"{path}: {role} column {column!r} not found; columns are "
                              f"{[str(name) for name in frame.columns]}")
    missing = frame[item].isna().to_numpy()
    if missing.any():
        raise ReclabError(f"{path}: item column {item!r} has a missing id at row "
                          f"{int(frame.index[missing][0])} ({numbered})")
    table = pd.DataFrame({role: frame[column].to_numpy() for role, column in wanted.items()
                          if role != "item" and column is not None},
                         index=pd.Index(frame[item].to_numpy()))
    return table[~table.index.duplicated(keep="last")]


def read_interactions(path, user: str = "user", item: str = "item", rating: str | None = "rating",
                      timestamp: str | None = None, sep: str = ",", header: bool = True,
                      encoding: str = "utf-8", nrows: int | None = None, items=None,
                      title: str | None = "title", genres: str | None = None) -> Interactions:
    """Read a ratings file of your own, one row per (user, item) event.

    Parameters
    ----------
    path : str or path-like
        A delimited text file (CSV, TSV, ...), or Parquet (suffix ``.parquet`` or ``.pq``).
    user, item : str
        Columns of the user and item ids (integers or strings). A text file's ids are read as
        written: integers when every one is written as an integer, else strings, so that ``007``
        and ``7`` stay two ids; only an empty field is a missing id (``NA`` or ``None`` is a
        name, as titles are). A text file without a header line has its columns named ``_c0``,
        ``_c1``, ...
    rating : str or None
        Column of ratings; None for implicit feedback (every row counts as 1.0).
    timestamp : str or None
        Column of timestamps: numbers (seconds) or ISO 8601 date-times (``2024-05-01 12:00:00``).
    sep, header, encoding : str, bool, str
        Text files only: the field separator (``"\\t"`` for tabs, ``r"\\s+"`` for runs of blanks),
        whether the first line names the columns, and the text encoding (``"latin-1"`` for
        ML-100K's ``u.item``; a UTF-8 byte-order mark is skipped).
    nrows : int or None
        Read only the first ``nrows`` rows of ``path`` (a quick check of a file's layout).
    items : str or path-like, optional
        A file of the items in the same format (``sep``, ``header``, ``encoding``), one row per item, whose
        item ids are in the column named ``item`` too, as MovieLens' ``movies.csv`` beside its
        ``ratings.csv``.
    title, genres : str or None
        Columns of the items file: the titles (shown by the top-N and "because you watched"
        lists), and genre names joined with ``'|'``, which become the item features
        ``genre=<name>`` (what ContentKNN and HybridALS read). None: not in the file.

    Returns
    -------
    Interactions
        As :meth:`reclab.Interactions.from_frame` builds them (a repeated (user, item) keeps its
        latest row). Without ``items``: no titles (the ids stand in) and no features; a rated item
        missing from ``items`` has neither.

    Raises
    ------
    ReclabError
        Naming the file and the problem: missing or unparsable, a column not found (listing those
        there are), a missing id, or a rating or timestamp that is no number, with its line.

    Examples
    --------
    >>> import reclab as rl
    >>> data = rl.datasets.read_interactions("ratings.csv", user="userId", item="movieId",
    ...                                      timestamp="timestamp", items="movies.csv",
    ...                                      genres="genres")             # doctest: +SKIP
    """
    frame, numbered = _read_frame(path, sep, header, encoding, nrows, "ratings", ids=(user, item))
    table = None if items is None else _item_table(items, item, title, genres, sep, header, encoding)
    try:
        if timestamp is not None and timestamp in frame.columns:
            frame[timestamp] = _dates_or_numbers(frame[timestamp], timestamp)
        data = Interactions.from_frame(frame, user=user, item=item, rating=rating, timestamp=timestamp,
                                       items=table)
    except ReclabError as error:
        where = f" ({numbered})" if " row " in str(error) else ""
        raise ReclabError(f"{Path(path).expanduser()}: {error}{where}") from None
    if table is None or genres is None:
        return data
    return data.with_features(*genre_features(data.items["genres"]))
