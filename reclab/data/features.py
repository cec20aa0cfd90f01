"""Content features of users and items: checked, read-only CSR matrices with one name per column
(see :class:`reclab.data.Interactions`, which carries them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclab.errors import ReclabError

__all__ = ["INTERACTION_GROUPS", "check_features", "feature_groups_of", "features_from_frame", "genre_features",
           "indicator_features", "readonly", "without_interaction_features"]

#: Feature groups made from users' interactions with an item, such as MovieLens' tags (``tag=...``),
#: which users put on the movies they rated: a title added after training has none, so
#: :func:`without_interaction_features` takes them from the cold items of a cold-start split.
INTERACTION_GROUPS = ("tag",)


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only array with these values; a writeable input is copied, never frozen in place."""
    if array.flags.writeable:
        array = np.array(array, copy=True, order="C")
        array.flags.writeable = False
    return array


def check_features(features, names, ids: np.ndarray, role: str):
    """Content features of users or items as (read-only CSR float32, names as a str array), or (None, None).

    ``features`` is a scipy.sparse matrix or a 2-D array with one row per {role} index, with
    ``names`` one string per column (default ``f0, f1, ...``), or a pandas DataFrame indexed by
    original {role} id, aligned to ``ids`` (the {role}s' original ids, in index order) by
    :func:`features_from_frame`, its columns the names: read by position, a table in another
    order than the ids would give each {role} another's features. Wrong shapes and NaN or
    infinite values raise ``ReclabError`` naming them; stored zeros are dropped (a 0 is not
    having the feature).
    """
    if features is None:
        if names is not None:
            raise ReclabError(f"{role}_feature_names given without {role}_features")
        return None, None
    if isinstance(features, pd.DataFrame):
        if names is not None:
            raise ReclabError(f"{role}_feature_names given with a DataFrame of {role}_features, whose "
                              f"columns name the features; rename its columns instead")
        features, names = features_from_frame(features, ids, role)
    n_rows = len(ids)
    try:
        if not sp.issparse(features):   # a None among the numbers is NaN then, refused below, not 0
            features = np.asarray(features, dtype=np.float64)
        matrix = sp.csr_matrix(features, dtype=np.float32, copy=True)
        matrix.check_format(full_check=True)   # a crafted file must not make scipy read out of bounds
    except (TypeError, ValueError) as error:
        raise ReclabError(f"{role}_features must be a 2-D numeric array or scipy.sparse matrix with one row "
                          f"per {role}, got {type(features).__name__}: {error}") from None
    if matrix.shape[0] != n_rows:
        raise ReclabError(f"{role}_features has {matrix.shape[0]} rows, expected {n_rows} (one per {role}, "
                          f"in {role} index order)")
    matrix.sum_duplicates()
    # A stored 0 is no feature: counted as one, it changed the idf weights of because_you_like.
    matrix.eliminate_zeros()
    matrix.sort_indices()
    if not np.isfinite(matrix.data).all():
        entry = int(np.flatnonzero(~np.isfinite(matrix.data))[0])
        row = int(np.searchsorted(matrix.indptr, entry, side="right") - 1)
        column = int(matrix.indices[entry])
        raise ReclabError(f"{role}_features has {int((~np.isfinite(matrix.data)).sum())} NaN or infinite "
                          f"value(s), the first at {role} index {row}, feature {column}; features must be "
                          f"finite numbers")
    if names is None:
        names = [f"f{column}" for column in range(matrix.shape[1])]
    names = np.asarray([str(name) for name in names], dtype=str) if len(names) else np.array([], dtype="<U1")
    if names.shape != (matrix.shape[1],):
        raise ReclabError(f"{role}_feature_names has {names.size} names for {matrix.shape[1]} feature columns")
    for name in ("data", "indices", "indptr"):
        setattr(matrix, name, readonly(getattr(matrix, name)))
    return matrix, readonly(names)


def features_from_frame(frame, ids: np.ndarray, role: str):
    """A feature table indexed by original id -> (CSR rows aligned with ``ids``, column names).

    Ids without a row get all-zero features; ids the interactions do not know, duplicate ids,
    duplicate column names, non-numeric (or complex) columns and NaN values raise ``ReclabError``
    naming them.
    """
    if frame is None:
        return None, None
    if not isinstance(frame, pd.DataFrame):
        raise ReclabError(f"{role}_features must be a pandas DataFrame indexed by {role} id, "
                          f"got {type(frame).__name__}")
    if frame.index.has_duplicates:
        raise ReclabError(f"{role}_features has duplicate {role} ids "
                          f"{frame.index[frame.index.duplicated()][:10].tolist()}; one row per {role}")
    if frame.columns.has_duplicates:   # frame[column] would be a table: an AttributeError on .dtype
        raise ReclabError(f"{role}_features has duplicate column names "
                          f"{frame.columns[frame.columns.duplicated()].unique()[:10].tolist()}; each "
                          f"feature needs a name of its own")
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_complex_dtype(dtype):   # float64 would drop the imaginary part
            raise ReclabError(f"{role}_features column {column!r} holds complex numbers ({dtype}); "
                              f"features must be real numbers")
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise ReclabError(f"{role}_features column {column!r} is not numeric ({dtype}); "
                              f"encode it first, for example with pandas.get_dummies")
    values = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row, column = np.argwhere(~np.isfinite(values))[0]
        label = frame.index[row:row + 1].tolist()[0]   # 11, not np.int64(11)
        raise ReclabError(f"{role}_features has a NaN or infinite value at {role} id {label!r}, "
                          f"column {frame.columns[column]!r}; features must be finite numbers")
    index = frame.index.to_numpy()
    if len(index):
        try:
            position = np.clip(np.searchsorted(ids, index), 0, len(ids) - 1)
            known = ids[position] == index
        except TypeError:
            known = np.zeros(len(index), dtype=bool)
        if not known.all():
            unknown = index[~known]
            raise ReclabError(f"{role}_features has {len(unknown)} {role} id(s) not in the interactions, "
                              f"{unknown[:10].tolist()}{' ...' if len(unknown) > 10 else ''}; keep only rows "
                              f"of known {role}s (known ids look like {ids[:3].tolist()})")
    else:
        position = np.zeros(0, dtype=np.int64)
    rows = sp.coo_matrix(values).tocsr()
    # Row r of the table goes to index position[r]; a permutation-like selection matrix does it.
    place = sp.csr_matrix((np.ones(len(index)), (position, np.arange(len(index)))),
                          shape=(len(ids), len(index)))
    return place @ rows, [str(column) for column in frame.columns]


def indicator_features(rows, labels, n_rows: int, prefix: str):
    """0/1 features from (row, label) pairs: ``(CSR float32 (n_rows, n_labels), names)``.

    Columns are the distinct labels, sorted, named ``f"{prefix}={label}"``; a label given twice for
    one row is still one indicator; rows without a pair are all zero.
    """
    labels, columns = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(columns), np.float32), (np.asarray(rows, np.int64), columns)),
                           shape=(n_rows, len(labels)))
    matrix.data[:] = 1.0
    return matrix, [f"{prefix}={label}" for label in labels]


def genre_features(genres: pd.Series):
    """Genre indicators (``genre=Drama``) from genre names joined with ``'|'``, one string per row
    (missing or empty: no genre), as :func:`indicator_features`. Spaces around a name are layout:
    ``"Drama | Comedy"`` has the genres ``Drama`` and ``Comedy`` of ``"Drama|Comedy"``."""
    exploded = genres.reset_index(drop=True).fillna("").astype(str).str.split("|").explode().str.strip()
    exploded = exploded[exploded != ""]
    return indicator_features(exploded.index.to_numpy(), exploded.to_numpy(), len(genres), "genre")


def feature_groups_of(names) -> np.ndarray:
    """Each feature's group: its name up to the first ``=`` (``genre=Drama`` -> ``genre``); names
    without ``=`` (``f0``, ``year``) form one group, ``""``."""
    return np.array([name.split("=", 1)[0] if "=" in name else "" for name in names], dtype=object)


def without_interaction_features(features: sp.csr_matrix, names, rows: np.ndarray) -> sp.csr_matrix:
    """``features`` with the :data:`INTERACTION_GROUPS` columns of ``rows`` (a boolean mask over
    the rows) dropped: what those rows' items would have if nobody had interacted with them. The
    tags of a cold-start split's held-out movies come from the users whose held-out ratings are
    to be predicted (who tags a movie has mostly rated it), and say which movies are rated most."""
    columns = np.isin(feature_groups_of(names), INTERACTION_GROUPS)
    if not columns.any() or not rows.any():
        return features
    coo = sp.coo_matrix(features)
    keep = ~(rows[coo.row] & columns[coo.col])
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=features.shape)
