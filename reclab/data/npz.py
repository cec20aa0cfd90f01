"""The ``.npz`` file of :class:`~reclab.data.Interactions`: one file, written atomically and read
with ``allow_pickle=False``.

The pipeline's preprocess stage logs its split in this format (``split/train.npz``, ...; see
:mod:`reclab.tracking.artifacts`). Keys of the archive: ``indptr``, ``indices``, ``data`` and
``shape`` (the CSR matrix), ``user_ids`` / ``item_ids`` (text ids as fixed-width unicode),
``timestamps`` when present, ``item_columns`` and ``item.<column>`` (the columns of ``items``:
numbers, booleans and dates as they are, other values as text, with ``item_missing.<column>``
marking a text column's missing values), and ``item_features.{data,indices,indptr,shape,names}``
/ ``user_features.*``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclab._io import atomic_write, read_npz
from reclab.data.interactions import Interactions
from reclab.errors import ReclabError

__all__ = ["id_array", "load_interactions", "save_interactions", "text_array"]

#: The keys every file of save_interactions holds (the CSR matrix and the ids).
_KEYS = ("indptr", "indices", "data", "shape", "user_ids", "item_ids")


def text_array(values) -> np.ndarray:
    """Strings as a fixed-width unicode array (object arrays would need pickle)."""
    return np.asarray([str(value) for value in values], dtype=str) if len(values) else np.array(
        [], dtype="<U1")


def id_array(ids: np.ndarray) -> np.ndarray:
    """Ids as an array ``np.savez`` stores without pickle: text ids (object arrays) as fixed-width
    unicode, numeric ids as they are."""
    return text_array(ids) if ids.dtype == object else np.asarray(ids)


def save_interactions(path, data: Interactions) -> Path:
    """Write ``data`` to one ``.npz`` file (atomically, no pickle): the CSR arrays, the ids, the
    timestamps, the columns of ``data.items`` and the user / item features (CSR arrays and
    names, under ``item_features.*`` / ``user_features.*``)."""
    matrix = data.matrix
    arrays = {"indptr": matrix.indptr, "indices": matrix.indices, "data": matrix.data,
              "shape": np.asarray(matrix.shape, dtype=np.int64),
              "user_ids": id_array(data.user_ids), "item_ids": id_array(data.item_ids)}
    if data.timestamps is not None:
        arrays["timestamps"] = np.asarray(data.timestamps)
    if data.items is not None:
        columns = [str(column) for column in data.items.columns]
        arrays["item_columns"] = text_array(columns)
        for name, values in data.items.items():
            column, stored = str(name), values.to_numpy()
            if stored.dtype.kind in "biufcmM":   # numbers, booleans, dates: as they are
                arrays[f"item.{column}"] = stored
                continue
            missing = values.isna().to_numpy()
            arrays[f"item.{column}"] = text_array(np.where(missing, "", stored.astype(object)))
            if missing.any():   # read back as missing values, not as empty text
                arrays[f"item_missing.{column}"] = missing
    for role in ("item", "user"):
        features = getattr(data, f"{role}_features")
        if features is not None:
            for part in ("data", "indices", "indptr"):
                arrays[f"{role}_features.{part}"] = getattr(features, part)
            arrays[f"{role}_features.shape"] = np.asarray(features.shape, dtype=np.int64)
            arrays[f"{role}_features.names"] = text_array(getattr(data, f"{role}_feature_names"))
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _item_column(archive: dict, column: str) -> np.ndarray:
    """One column of ``items`` as saved: text as objects (missing values NaN again), other types
    as they are."""
    values = archive[f"item.{column}"]
    if values.dtype.kind != "U":
        return values
    values = values.astype(object)
    if f"item_missing.{column}" in archive:
        values[archive[f"item_missing.{column}"]] = np.nan
    return values


def _interactions(archive: dict) -> Interactions:
    shape = tuple(int(size) for size in archive["shape"])
    matrix = sp.csr_matrix((archive["data"], archive["indices"], archive["indptr"]), shape=shape)
    user_ids, item_ids = archive["user_ids"], archive["item_ids"]
    timestamps = archive.get("timestamps")
    items = None
    if "item_columns" in archive:
        items = pd.DataFrame({str(column): _item_column(archive, column)
                              for column in archive["item_columns"]}, index=item_ids)
    features = {}
    for role in ("item", "user"):
        if f"{role}_features.shape" in archive:
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


def load_interactions(path) -> Interactions:
    """Read a file written by :func:`save_interactions` (``allow_pickle=False``).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ReclabError
        Naming ``path``: not an ``.npz`` archive, truncated or corrupt, another ``.npz`` than
        :func:`save_interactions` writes (its keys missing), or arrays that do not make one
        :class:`Interactions`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no interactions file at {path}")
    hint = "an interactions file is what save_interactions(path, data) writes"
    archive = read_npz(path, "interactions file", hint)
    missing = [key for key in _KEYS if key not in archive]
    if missing:
        raise ReclabError(f"{path} is not an interactions file: it has no {', '.join(missing)} "
                          f"(it holds {', '.join(sorted(archive)) or 'nothing'}); {hint}")
    try:
        return _interactions(archive)
    except (ValueError, TypeError, KeyError, IndexError) as error:   # ReclabError is a ValueError
        raise ReclabError(f"{path} holds arrays that make no interactions (a damaged or altered "
                          f"file): {str(error).strip(chr(39))}") from None
