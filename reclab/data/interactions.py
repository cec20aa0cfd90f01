"""``Interactions``: the users x items container every part of reclab reads.

Rules this container keeps (and that the rest of reclab relies on):

- Built once, never changed in place: the arrays are read-only and every operation (``select``,
  ``restrict``, ``with_matrix``, ``union``) returns a new object.
- Users and items are internal indices ``0..n-1``; ``user_ids[i]`` / ``item_ids[j]`` are the
  original ids, sorted, so that the same input in any row order gives the same container and the
  same ``fingerprint()``.
- ``matrix`` is a CSR matrix (float32, sorted indices, one stored entry per observed pair). A stored
  entry is an interaction even when its value is 0 (residuals after normalization can be 0), so
  explicit zeros are never eliminated.
- ``timestamps`` (float64 seconds, or None) are aligned with ``matrix.data``, entry for entry.
- ``items`` (pandas DataFrame or None) holds item metadata (``title``, ``genres``, ...) indexed by
  item index.
- ``item_features`` / ``user_features`` (CSR float32, items x features / users x features, or None)
  are content features (genres, release decade, tags, age group, ...), row ``j`` for item index
  ``j``, named by ``item_feature_names`` / ``user_feature_names``. They follow the rows through every
  operation (``restrict`` slices them, ``union`` takes an item's from the side holding its
  interactions, the others keep them) and into the ``.npz`` split files.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclab.data.entries import canonical_entries
from reclab.data.features import check_features, features_from_frame, readonly
from reclab.errors import ReclabError

__all__ = ["Interactions", "check_interactions"]

_MIXED_KINDS = ("mixed", "mixed-integer")


def _row(label):
    """A row's index label as messages show it: ``4``, not ``np.int64(4)``."""
    return label.item() if isinstance(label, np.generic) else label


def _check_ids(values: pd.Series, role: str) -> np.ndarray:
    """Validate one id column and return it as a numpy array (int64, float64 or str objects)."""
    if values.isna().any():
        row = values.index[values.isna().to_numpy()][0]
        raise ReclabError(f"{role} column has a missing id at row {_row(row)!r}; every row needs a {role} id")
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind in _MIXED_KINDS:
        types = sorted({type(v).__name__ for v in values.head(10_000)})
        raise ReclabError(
            f"{role} ids mix types {types}; use one type for every {role} id "
            f"(for example convert them all with .astype(str))"
        )
    if kind in ("integer",):
        return _integer_ids(values, role)
    if kind in ("floating", "mixed-integer-float"):
        return values.to_numpy(dtype=np.float64)
    if kind in ("string", "unicode"):
        return values.astype(str).to_numpy(dtype=object)
    raise ReclabError(f"{role} ids must be integers or strings, got values of kind {kind!r}")


def _integer_ids(values: pd.Series, role: str) -> np.ndarray:
    """Integer ids with their exact values: int64, or uint64 when some id is above 2**63 - 1.

    A plain ``to_numpy(int64)`` would wrap unsigned ids above 2**63 - 1 to negative ones.
    """
    if pd.api.types.is_unsigned_integer_dtype(values):
        ids = values.to_numpy(dtype=np.uint64)
        return ids if ids.size and ids.max() > np.iinfo(np.int64).max else ids.astype(np.int64)
    if pd.api.types.is_signed_integer_dtype(values):
        return values.to_numpy(dtype=np.int64)
    # Python ints in an object column: exact in int64, or in uint64 when all are >= 0.
    for dtype in (np.int64, np.uint64):
        try:
            return values.to_numpy(dtype=dtype)
        except OverflowError:
            continue
    raise ReclabError(f"{role} ids {values.min()!r} .. {values.max()!r} do not fit in 64 bits (int64, or "
                      f"uint64 when none is negative); use ids in that range or convert them to strings")


def _check_ratings(values: pd.Series, column: str) -> np.ndarray:
    if pd.api.types.is_complex_dtype(values):
        # Converting to float would silently drop the imaginary part.
        raise ReclabError(f"rating column {column!r} holds complex numbers ({complex(values.iloc[0])!r} ...); "
                          f"ratings must be real numbers")
    if values.isna().any():
        row = _row(values.index[values.isna()][0])
        raise ReclabError(f"rating column {column!r} has a missing value (NaN) at row {row!r}; every row "
                          f"needs a rating (none at all: implicit feedback, rating None)")
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() & values.notna()
    if bad.any():
        row = values.index[bad.to_numpy()][0]
        raise ReclabError(
            f"rating column {column!r} has a non-numeric value {values.loc[row]!r} at row {_row(row)!r}; "
            f"ratings must be numbers"
        )
    ratings = numeric.to_numpy(dtype=np.float64)
    finite = np.isfinite(ratings)
    if not finite.all():
        position = int(np.flatnonzero(~finite)[0])
        raise ReclabError(f"rating column {column!r} has the value {float(ratings[position])!r} at row "
                          f"{_row(values.index[position])!r}; ratings must be finite numbers")
    # Values are stored as float32: a larger magnitude would become inf there.
    too_large = np.abs(ratings) > np.finfo(np.float32).max
    if too_large.any():
        position = int(np.flatnonzero(too_large)[0])
        raise ReclabError(
            f"rating column {column!r} has the value {float(ratings[position])!r} at row "
            f"{_row(values.index[position])!r}, beyond the float32 range (+-3.4e38) ratings are stored in"
        )
    return ratings


def _check_timestamps(values: pd.Series, column: str) -> np.ndarray:
    if pd.api.types.is_timedelta64_dtype(values):   # else read as ticks of its unit, not seconds
        raise ReclabError(f"timestamp column {column!r} holds durations ({values.dtype}); give "
                          f"date-times, or seconds as numbers (for example .dt.total_seconds())")
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.isna().any():
            raise ReclabError(f"timestamp column {column!r} has missing values")
        # Integers in the column's own unit (s, ms, us or ns; UTC for a time zone-aware column),
        # so that no unit is assumed. Up to 2**53 ticks the division is exact then rounded once;
        # beyond (ns after mid-April 1970), whole seconds and the rest are converted apart.
        per_second = int(np.timedelta64(1, "s") // np.timedelta64(1, values.dt.unit))
        ticks = values.astype("int64").to_numpy()
        seconds = ticks / per_second
        large = np.abs(ticks) > 2**53
        whole, rest = np.divmod(ticks[large], per_second)
        seconds[large] = whole.astype(np.float64) + rest / per_second
        return seconds
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(numeric).all():
        position = int(np.flatnonzero(~np.isfinite(numeric))[0])
        value = values.iloc[position]
        what = ("a missing value" if pd.isna(value) else
                f"the value {value if isinstance(value, str) else float(numeric[position])!r}")
        raise ReclabError(f"timestamp column {column!r} has {what} at row {_row(values.index[position])!r}"
                          f"; timestamps must be numbers (seconds) or datetimes")
    return numeric


def _check_indices(indices, size: int, role: str) -> np.ndarray:
    """Internal indices as int64 (same shape), each in ``[0, size)``; anything else is refused."""
    indices = np.asarray(indices)
    if indices.size and (indices.dtype == bool or indices.dtype.kind not in "iu"):
        raise ReclabError(f"{role} indices must be integers in [0, {size}), got {indices.dtype} values "
                          f"{indices.reshape(-1)[:5].tolist()}; map original ids with {role}_index(ids)")
    # Compared before the cast to int64, which would wrap a uint64 index above 2**63 to a negative one.
    bad = indices[(indices < 0) | (indices >= size)]
    indices = indices.astype(np.int64)
    if bad.size:
        raise ReclabError(f"{role} indices {bad[:10].tolist()} are out of range; {role} indices lie in "
                          f"[0, {size})")
    return indices


def _lookup(ids: np.ndarray, query, role: str) -> np.ndarray:
    query = np.asarray(query)
    scalar = query.ndim == 0
    flat = query.reshape(-1)
    fits = np.ones(flat.shape, dtype=bool)
    if ids.dtype.kind in "iu" and flat.dtype.kind in "iu" and ids.dtype != flat.dtype:
        # int64 against uint64 would compare as float64, where ids near 2**63 collide: compare
        # in the ids' own type, and call a query id outside its range unknown.
        fits = flat >= 0 if ids.dtype.kind == "u" else flat <= np.iinfo(ids.dtype).max
        flat_ids = np.where(fits, flat, 0).astype(ids.dtype)
    else:
        flat_ids = flat
    try:
        position = np.searchsorted(ids, flat_ids)
    except TypeError as error:
        raise ReclabError(f"{role} ids {flat[:5].tolist()} are not of the type of the known ids "
                          f"({ids[:3].tolist()} ...)") from error
    position = np.clip(position, 0, len(ids) - 1)
    found = (ids[position] == flat_ids) & fits
    if not np.all(found):
        missing = flat[~found]
        raise ReclabError(
            f"unknown {role} id(s) {missing[:10].tolist()}{' ...' if len(missing) > 10 else ''}; "
            f"known {role} ids are {ids[:5].tolist()} ... ({len(ids)} in all)"
        )
    position = position.astype(np.int64)
    return position[0] if scalar else position.reshape(query.shape)


class Interactions:
    """Users x items interactions (ratings, or 1.0 for implicit feedback) with their original ids.

    Build one with :meth:`from_frame` or :meth:`from_matrix`; do not call the constructor directly.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, shape (n_users, n_items), float32
        One stored entry per observed (user, item) pair, sorted indices, read-only.
    user_ids, item_ids : numpy.ndarray
        Original ids, sorted; index ``i`` is the user with id ``user_ids[i]``.
    timestamps : numpy.ndarray of float64 or None
        Seconds, aligned with ``matrix.data``.
    items : pandas.DataFrame or None
        Item metadata (for example ``title``, ``genres``), indexed by item index.
    truth : dict of numpy.ndarray or None
        Ground truth of a synthetic data set (true biases and factors); None for real data.
    item_features, user_features : scipy.sparse.csr_matrix of float32 or None
        Content features, shape (n_items, n_item_features) / (n_users, n_user_features), read-only;
        a 0 is never stored (it is not having the feature).
    item_feature_names, user_feature_names : numpy.ndarray of str or None
        One name per feature column (``"genre=Drama"``, ``"decade=1990"``, ``"tag=atmospheric"``).
    """

    def __init__(self, matrix, user_ids, item_ids, timestamps=None, items=None, truth=None,
                 item_features=None, item_feature_names=None, user_features=None,
                 user_feature_names=None):
        matrix = sp.csr_matrix(matrix)
        # A new CSR object over read-only copies, so the caller's matrix is never changed.
        matrix = sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=matrix.shape)
        for name in ("data", "indices", "indptr"):
            setattr(matrix, name, readonly(getattr(matrix, name)))
        self._matrix = matrix
        self._user_ids = readonly(np.asarray(user_ids))
        self._item_ids = readonly(np.asarray(item_ids))
        self._timestamps = None if timestamps is None else readonly(np.asarray(timestamps, np.float64))
        self._items = items
        self._truth = None if truth is None else {k: readonly(np.asarray(v)) for k, v in truth.items()}
        self._item_features, self._item_feature_names = check_features(
            item_features, item_feature_names, self._item_ids, "item")
        self._user_features, self._user_feature_names = check_features(
            user_features, user_feature_names, self._user_ids, "user")
        self._fingerprint = None

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, df: pd.DataFrame, user: str = "user", item: str = "item",
                   rating: str | None = "rating", timestamp: str | None = None,
                   items: pd.DataFrame | None = None,
                   truth: Mapping[str, np.ndarray] | None = None,
                   item_features: pd.DataFrame | None = None,
                   user_features: pd.DataFrame | None = None) -> "Interactions":
        """Build interactions from a table with one row per (user, item) event.

        Parameters
        ----------
        df : pandas.DataFrame
        user, item : str
            Column names of the user and item ids (integers or strings, one type per column).
        rating : str or None
            Column of ratings (finite numbers). None means implicit feedback: every value is 1.0.
        timestamp : str or None
            Column of timestamps (numbers in seconds, or datetimes).
        items : pandas.DataFrame or None
            Item metadata indexed by original item id (for example ``title``, ``genres`` columns);
            items without a row get missing values.
        truth : mapping or None
            Ground truth arrays of a synthetic data set, kept as ``truth``.
        item_features, user_features : pandas.DataFrame or None
            Content features indexed by original item / user id, one numeric column per feature
            (the column names become ``item_feature_names`` / ``user_feature_names``). Items or
            users without a row get all-zero features; ids absent from ``df``, NaN values and
            non-numeric columns raise ``ReclabError`` naming them.

        Notes
        -----
        Duplicate (user, item) rows are never summed: the latest one by timestamp is kept (the last
        row among equal timestamps, or the last row when there are no timestamps), so no stored
        value is ever outside the range of the input ratings; a ``UserWarning`` says how many rows
        were dropped.
        """
        if not isinstance(df, pd.DataFrame):
            raise ReclabError(f"from_frame needs a pandas DataFrame, got {type(df).__name__}")
        columns = list(df.columns)
        for role, column in (("user", user), ("item", item), ("rating", rating), ("timestamp", timestamp)):
            if column is not None and column not in df.columns:
                raise ReclabError(f"{role} column {column!r} not found; columns are {columns}")
            if column is not None and columns.count(column) > 1:
                raise ReclabError(f"{role} column {column!r} appears {columns.count(column)} "
                                  f"times in the table; column names must be unique")
        roles = {"user": user, "item": item, "rating": rating, "timestamp": timestamp}
        for role, column in roles.items():
            other = next((name for name, value in roles.items() if name != role and value == column), None)
            if column is not None and other is not None:
                raise ReclabError(f"{role} and {other} name the same column {column!r}; each role needs "
                                  f"its own column")
        if len(df) == 0:
            raise ReclabError("no interactions: the table is empty")
        users = _check_ids(df[user], "user")
        items_raw = _check_ids(df[item], "item")
        values = (np.ones(len(df)) if rating is None else _check_ratings(df[rating], rating))
        times = None if timestamp is None else _check_timestamps(df[timestamp], timestamp)

        user_ids, user_index = np.unique(users, return_inverse=True)
        item_ids, item_index = np.unique(items_raw, return_inverse=True)
        # Sort by (user, item, time, row) and keep the last entry of each (user, item) run.
        row = np.arange(len(df))
        keys = (row,) if times is None else (row, times)
        order = np.lexsort(keys + (item_index, user_index))
        u, i = user_index[order], item_index[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
        order = order[last]
        if len(order) < len(df):
            warnings.warn(f"{len(df) - len(order)} of the {len(df)} rows repeat an earlier (user, item) "
                          f"pair; each pair keeps its latest row (ratings are never summed). To count "
                          f"repeats (for example views) aggregate the table first and pass the counts "
                          f"as the rating column", UserWarning, stacklevel=2)
        u, i = user_index[order], item_index[order]
        indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(u, minlength=len(user_ids)), out=indptr[1:])
        matrix = sp.csr_matrix(
            (values[order].astype(np.float32), i.astype(np.int32), indptr),
            shape=(len(user_ids), len(item_ids)),
        )
        item_matrix, item_names = features_from_frame(item_features, item_ids, "item")
        user_matrix, user_names = features_from_frame(user_features, user_ids, "user")
        return cls(matrix, user_ids, item_ids,
                   None if times is None else times[order],
                   cls._align_items(items, item_ids), truth,
                   item_features=item_matrix, item_feature_names=item_names,
                   user_features=user_matrix, user_feature_names=user_names)

    @classmethod
    def from_matrix(cls, matrix, user_ids=None, item_ids=None, timestamps=None,
                    items: pd.DataFrame | None = None,
                    truth: Mapping[str, np.ndarray] | None = None,
                    item_features=None, item_feature_names=None,
                    user_features=None, user_feature_names=None) -> "Interactions":
        """Build interactions from a scipy.sparse users x items matrix (every stored entry counts;
        a (user, item) pair stored twice is refused).

        ``user_ids``/``item_ids`` default to ``0..n-1`` and must be unique and sorted, integers
        or strings (floats too), kept as :meth:`from_frame` keeps them (int64, or uint64 above
        2**63 - 1, float64, str objects: Python ints in an object array become int64);
        ``timestamps`` hold one number per stored entry, in ``matrix.data``'s order for a CSR, CSC
        or COO matrix (``matrix.tocoo()``'s otherwise): each stays with its entry when the entries
        are sorted. ``item_features`` /
        ``user_features`` (sparse or 2-D arrays, one row per item / user index, finite numbers)
        come with optional column names (default ``f0, f1, ...``); a pandas DataFrame of them is
        indexed by original id, as :meth:`from_frame` takes it.
        """
        if not sp.issparse(matrix):
            raise ReclabError(f"from_matrix needs a scipy.sparse matrix, got {type(matrix).__name__}")
        if matrix.ndim != 2:
            raise ReclabError(f"from_matrix needs a 2-D matrix, got shape {matrix.shape}")
        matrix, timestamps = canonical_entries(matrix, timestamps, "from_matrix")
        if matrix.nnz == 0:
            raise ReclabError(f"no interactions: the {matrix.shape[0]} x {matrix.shape[1]} matrix has no stored entries")
        n_users, n_items = matrix.shape
        user_ids = np.arange(n_users) if user_ids is None else np.asarray(user_ids)
        item_ids = np.arange(n_items) if item_ids is None else np.asarray(item_ids)
        checked = {}
        for role, ids, size in (("user", user_ids, n_users), ("item", item_ids, n_items)):
            if ids.shape != (size,):
                raise ReclabError(f"{role}_ids has shape {ids.shape}, expected ({size},) for a {matrix.shape} matrix")
            try:
                ascending = size < 2 or bool(np.all(ids[1:] > ids[:-1]))
            except TypeError:
                types = sorted({type(value).__name__ for value in ids.tolist()})
                raise ReclabError(f"{role}_ids mix types {types}; use one type for every {role} id") from None
            if not ascending:
                raise ReclabError(f"{role}_ids must be unique and sorted ascending")
            # The types from_frame keeps (int64 or uint64, float64, str objects): Python ints in an
            # object array were saved as text by save_interactions, then read back as other ids.
            checked[role] = _check_ids(pd.Series(ids, dtype=ids.dtype), role)
        user_ids, item_ids = checked["user"], checked["item"]
        return cls(matrix, user_ids, item_ids, timestamps, cls._align_items(items, item_ids), truth,
                   item_features=item_features, item_feature_names=item_feature_names,
                   user_features=user_features, user_feature_names=user_feature_names)

    @staticmethod
    def _align_items(items, item_ids):
        if items is None:
            return None
        if not isinstance(items, pd.DataFrame):
            raise ReclabError(f"items must be a pandas DataFrame indexed by item id, got {type(items).__name__}")
        if len(items) and len(item_ids) and not items.index.isin(item_ids).any():   # else: no titles
            raise ReclabError(f"none of the {len(items)} ids that index items is an item id of the "
                              f"interactions: items has {_row(items.index[0])!r}, the interactions "
                              f"{_row(item_ids[0])!r}; index items by the item ids as they are written")
        aligned = items[~items.index.duplicated(keep="last")].reindex(pd.Index(item_ids))
        return aligned.reset_index(drop=True)

    # -- properties ---------------------------------------------------------------------------
    matrix = property(lambda self: self._matrix, doc="CSR users x items, float32, read-only.")
    user_ids = property(lambda self: self._user_ids, doc="Original user ids, sorted.")
    item_ids = property(lambda self: self._item_ids, doc="Original item ids, sorted.")
    timestamps = property(lambda self: self._timestamps, doc="Seconds aligned with matrix.data, or None.")
    items = property(lambda self: self._items, doc="Item metadata by item index, or None.")
    truth = property(lambda self: self._truth, doc="Ground truth of a synthetic data set, or None.")
    item_features = property(lambda self: self._item_features,
                             doc="CSR items x features (float32, read-only), or None.")
    item_feature_names = property(lambda self: self._item_feature_names,
                                  doc="Names of the item feature columns, or None.")
    user_features = property(lambda self: self._user_features,
                             doc="CSR users x features (float32, read-only), or None.")
    user_feature_names = property(lambda self: self._user_feature_names,
                                  doc="Names of the user feature columns, or None.")

    @property
    def n_users(self) -> int:
        return self._matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self._matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self._matrix.nnz

    @property
    def shape(self) -> tuple[int, int]:
        return self._matrix.shape

    @property
    def implicit(self) -> bool:
        """True when every stored value is 1.0 (implicit feedback)."""
        return bool(np.all(self._matrix.data == 1.0))

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        return (f"Interactions({self.n_users} users x {self.n_items} items, {self.nnz} interactions"
                f"{', implicit' if self.implicit else ''}{', timestamps' if self._timestamps is not None else ''})")

    # -- ids ----------------------------------------------------------------------------------
    def user_index(self, ids) -> np.ndarray:
        """Original user ids -> indices; unknown ids raise ``ReclabError`` naming them."""
        return _lookup(self._user_ids, ids, "user")

    def item_index(self, ids) -> np.ndarray:
        """Original item ids -> indices; unknown ids raise ``ReclabError`` naming them."""
        return _lookup(self._item_ids, ids, "item")

    def titles(self, item_indices) -> np.ndarray:
        """Titles of items by index (the original id as text where no title is known)."""
        item_indices = _check_indices(item_indices, self.n_items, "item")
        fallback = self._item_ids[item_indices].astype(str)
        if self._items is None or "title" not in self._items.columns:
            return fallback.astype(object)
        titles = self._items["title"].to_numpy(dtype=object)[item_indices]
        missing = pd.isna(titles)
        titles[missing] = fallback[missing]
        return titles

    def user_counts(self) -> np.ndarray:
        """Interactions per user, int64 (n_users,)."""
        return np.diff(self._matrix.indptr).astype(np.int64)

    def item_counts(self) -> np.ndarray:
        """Interactions per item, int64 (n_items,)."""
        return np.bincount(self._matrix.indices, minlength=self.n_items).astype(np.int64)

    # -- conversions --------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per interaction with original ids: ``user, item, rating`` (and ``timestamp``)."""
        rows = np.repeat(np.arange(self.n_users), self.user_counts())
        frame = {"user": self._user_ids[rows], "item": self._item_ids[self._matrix.indices],
                 "rating": np.asarray(self._matrix.data)}
        if self._timestamps is not None:
            frame["timestamp"] = np.asarray(self._timestamps)
        return pd.DataFrame(frame)

    def fingerprint(self) -> str:
        """A stable sha256 (hex) of the ids, the matrix and the timestamps."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(np.asarray(self.shape, np.int64).tobytes())
            for ids in (self._user_ids, self._item_ids):
                digest.update("\x1f".join(map(str, ids.tolist())).encode())
                digest.update(b"\x1e")
            digest.update(np.asarray(self._matrix.indptr, np.int64).tobytes())
            digest.update(np.asarray(self._matrix.indices, np.int32).tobytes())
            digest.update(np.asarray(self._matrix.data, np.float32).tobytes())
            if self._timestamps is not None:
                digest.update(self._timestamps.tobytes())
            for role, features, names in (("item", self._item_features, self._item_feature_names),
                                          ("user", self._user_features, self._user_feature_names)):
                if features is not None:   # absent features leave the digest of older versions unchanged
                    digest.update(f"\x1d{role}-features\x1f".encode() + "\x1f".join(names.tolist()).encode())
                    for part in (features.indptr.astype(np.int64), features.indices.astype(np.int32),
                                 features.data.astype(np.float32)):
                        digest.update(part.tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- derived containers -------------------------------------------------------------------
    def _replace(self, matrix, timestamps, **changes) -> "Interactions":
        fields = dict(user_ids=self._user_ids, item_ids=self._item_ids, items=self._items, truth=self._truth,
                      item_features=self._item_features, item_feature_names=self._item_feature_names,
                      user_features=self._user_features, user_feature_names=self._user_feature_names)
        fields.update(changes)
        return Interactions(matrix, timestamps=timestamps, **fields)

    def select(self, mask) -> "Interactions":
        """Keep the stored entries where ``mask`` (bool, length nnz, CSR order) is True.

        The result has the same users, items and shape (the same id space), so splits made this way
        share indices with the input.
        """
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (self.nnz,):
            raise ReclabError(f"select needs a boolean mask of shape ({self.nnz},), got {mask.dtype} {mask.shape}")
        source = self._matrix
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        rows = np.repeat(np.arange(self.n_users), np.diff(source.indptr))
        np.cumsum(np.bincount(rows[mask], minlength=self.n_users), out=indptr[1:])
        matrix = sp.csr_matrix((source.data[mask], source.indices[mask], indptr), shape=self.shape)
        timestamps = None if self._timestamps is None else self._timestamps[mask]
        return self._replace(matrix, timestamps)

    def restrict(self, users=None, items=None) -> "Interactions":
        """Keep only these user and item indices (re-indexed in ascending order).

        Ids, item metadata and user / item features follow; ``truth`` is dropped, since it describes
        the full data set.
        """
        users = np.arange(self.n_users) if users is None else np.unique(_check_indices(users, self.n_users, "user"))
        items = np.arange(self.n_items) if items is None else np.unique(_check_indices(items, self.n_items, "item"))
        # Carry each entry's position through the slicing so values and timestamps stay aligned
        # (positions start at 1 so that no stored entry is ever a zero).
        source = self._matrix
        positions = sp.csr_matrix((np.arange(1, self.nnz + 1, dtype=np.float64), source.indices, source.indptr),
                                  shape=self.shape)
        sub = positions[users][:, items].tocsr()
        sub.sort_indices()
        kept = sub.data.astype(np.int64) - 1
        matrix = sp.csr_matrix((source.data[kept], sub.indices, sub.indptr), shape=sub.shape)
        timestamps = None if self._timestamps is None else self._timestamps[kept]
        meta = None if self._items is None else self._items.iloc[items].reset_index(drop=True)
        item_features = None if self._item_features is None else self._item_features[items]
        user_features = None if self._user_features is None else self._user_features[users]
        return self._replace(matrix, timestamps, user_ids=self._user_ids[users],
                             item_ids=self._item_ids[items], items=meta, truth=None,
                             item_features=item_features, user_features=user_features)

    def with_features(self, item_features=None, item_feature_names=None, user_features=None,
                      user_feature_names=None) -> "Interactions":
        """The same interactions with these content features (None keeps the current ones).

        ``item_features`` / ``user_features``: scipy.sparse matrices or 2-D arrays with one row per
        item / user index (finite numbers), with optional column names (default ``f0, f1, ...``),
        or pandas DataFrames indexed by original id, as :meth:`from_frame` takes them (aligned to
        the ids, whatever their row order; the columns name the features). Used by the loaders,
        whose tag features are too wide for a dense feature table.
        """
        changes = {}
        if item_features is not None:
            changes.update(item_features=item_features, item_feature_names=item_feature_names)
        elif item_feature_names is not None:
            raise ReclabError("item_feature_names given without item_features")
        if user_features is not None:
            changes.update(user_features=user_features, user_feature_names=user_feature_names)
        elif user_feature_names is not None:
            raise ReclabError("user_feature_names given without user_features")
        return self._replace(self._matrix, self._timestamps, **changes)

    def with_matrix(self, matrix, timestamps=None) -> "Interactions":
        """The same id space with new values (a matrix of the same shape).

        Explicit zeros stay stored entries; a pair stored twice is refused. ``timestamps``, one
        per stored entry in ``matrix.data``'s order (as :meth:`from_matrix` takes them), default to
        the current ones when the sparsity pattern is unchanged.
        """
        if not sp.issparse(matrix):
            raise ReclabError(f"with_matrix needs a scipy.sparse matrix, got {type(matrix).__name__}")
        if matrix.shape != self.shape:
            raise ReclabError(f"with_matrix needs shape {self.shape}, got {matrix.shape}")
        matrix, timestamps = canonical_entries(matrix, timestamps, "with_matrix")
        if timestamps is None and self._timestamps is not None and matrix.nnz == self.nnz \
                and np.array_equal(matrix.indptr, self._matrix.indptr) \
                and np.array_equal(matrix.indices, self._matrix.indices):
            timestamps = self._timestamps
        return self._replace(matrix, timestamps)

    def union(self, other: "Interactions") -> "Interactions":
        """All entries of two disjoint containers over the same id space (for example train + validation).

        An item's features are those of the side that holds its interactions (this side's when
        both or neither do): :func:`reclab.split.cold_items` drops its cold items' tags in train
        only, so the union of train and test has them again, as the final fit on train +
        validation has those of the validation items, which are no longer new there.
        """
        if not isinstance(other, Interactions) or other.shape != self.shape \
                or not np.array_equal(other.user_ids, self._user_ids) \
                or not np.array_equal(other.item_ids, self._item_ids):
            raise ReclabError("union needs interactions over the same users and items (the same split source)")
        if (self._item_features is None) != (other.item_features is None) or (
                self._item_features is not None
                and not np.array_equal(self._item_feature_names, other.item_feature_names)):
            raise ReclabError("union needs the same item features (names) on both sides")
        if (self._timestamps is None) != (other.timestamps is None):
            raise ReclabError("union needs both sides with timestamps or both without")
        a, b = self._matrix.tocoo(), other.matrix.tocoo()
        rows = np.concatenate([a.row, b.row]).astype(np.int64)
        cols = np.concatenate([a.col, b.col]).astype(np.int64)
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        if np.any((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])):
            raise ReclabError("union needs disjoint interactions; both sides hold some of the same (user, item) pairs")
        values = np.concatenate([a.data, b.data])[order]
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_users), out=indptr[1:])
        matrix = sp.csr_matrix((values, cols.astype(np.int32), indptr), shape=self.shape)
        timestamps = None
        if self._timestamps is not None:
            timestamps = np.concatenate([self._timestamps, other.timestamps])[order]
        features = self._item_features
        theirs = None if features is None else (other.item_counts() > 0) & (self.item_counts() == 0)
        if theirs is not None and theirs.any():
            features = (sp.diags((~theirs).astype(np.float32)) @ features
                        + sp.diags(theirs.astype(np.float32)) @ other.item_features).tocsr()
        return self._replace(matrix, timestamps, item_features=features)


def check_interactions(value, name: str) -> Interactions:
    """Check that the argument ``name`` is reclab :class:`Interactions`; return it."""
    if not isinstance(value, Interactions):
        raise ReclabError(f"{name} must be reclab Interactions, got {type(value).__name__}")
    return value
