"""Top-N selection: the one function that turns a score matrix into ranked item lists.

Both ``Recommender.recommend`` and ``reclab.evaluate`` call :func:`top_n`, so that what a model
recommends and what is evaluated are, by construction, the same lists.

Conventions
-----------
- Higher score = better. Lists are sorted by score, descending; equal scores are ordered by the
  lower item index first, so results are deterministic whatever the platform's sort does.
- Ranking compares the scores as float32 (the dtype returned), so the order shown is exactly the
  order of the returned scores.
- An item is a candidate unless it is excluded (a stored entry of ``exclude``), outside
  ``candidates``, or scored ``-inf``. When a row has fewer than ``n`` candidates, the tail of the
  row is padded with item id ``-1`` and score ``-inf``; the output always has ``n`` columns.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclab._validate import check_int
from reclab.errors import ReclabError

__all__ = ["top_n"]

# Rows processed at once are bounded so that the temporaries (a float32 copy, a boolean mask and
# the partition) stay near 32 MB whatever the batch the caller passes.
_CHUNK_ELEMENTS = 1 << 23


def _candidate_mask(candidates, n_items: int) -> np.ndarray | None:
    """Boolean mask over items from an index array or a boolean mask; None means all items."""
    if candidates is None:
        return None
    values = np.asarray(candidates)
    if values.dtype == bool:
        if values.shape != (n_items,):
            raise ReclabError(f"a boolean candidates mask must have shape ({n_items},) (one entry "
                              f"per item), got {values.shape}")
        return values
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
        raise ReclabError("candidates must be a 1-D array of integer item indices or a boolean "
                          f"mask over items; got dtype {values.dtype} with shape {values.shape}")
    bad = values[(values < 0) | (values >= n_items)]
    if bad.size:
        raise ReclabError(f"candidate item indices out of range: {bad[:10].tolist()}; valid "
                          f"indices are 0..{n_items - 1}")
    mask = np.zeros(n_items, dtype=bool)
    mask[values.astype(np.int64)] = True
    return mask


def _check_exclude(exclude, shape) -> sp.csr_matrix | None:
    if exclude is None:
        return None
    if not sp.issparse(exclude):
        raise ReclabError(f"exclude must be a scipy.sparse matrix (rows aligned with scores), got "
                          f"{type(exclude).__name__}")
    if exclude.shape != shape:
        raise ReclabError(f"exclude has shape {exclude.shape} but scores have shape {shape}; "
                          "they must match (one row per scored user, one column per item)")
    return exclude.tocsr()


def _top_n_chunk(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tie-exact top ``n`` of each row of a float32 array whose unavailable items are ``-inf``."""
    m, n_items = scores.shape
    k = min(n, n_items)
    if k < n_items:
        # kth = the k-th largest score of each row. Everything strictly above it is in the top k;
        # of the items equal to it, the lowest indices fill the remaining slots. argpartition
        # alone would pick an arbitrary subset of the tied items.
        kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k]
        selected = scores > kth[:, None]
        need = k - selected.sum(axis=1)
        tie_rows, tie_cols = np.nonzero(scores == kth[:, None])   # row-major: cols ascending
        row_start = np.searchsorted(tie_rows, np.arange(m))
        position = np.arange(tie_rows.size) - row_start[tie_rows]
        keep = position < need[tie_rows]
        selected[tie_rows[keep], tie_cols[keep]] = True
        cols = np.nonzero(selected)[1].reshape(m, k)
    else:
        cols = np.broadcast_to(np.arange(n_items), (m, n_items))
    values = np.take_along_axis(scores, cols, axis=1)
    # cols are ascending within each row, so a stable sort by -score breaks ties by lower index.
    order = np.argsort(-values, axis=1, kind="stable")
    ids = np.take_along_axis(cols, order, axis=1).astype(np.int64)
    values = np.take_along_axis(values, order, axis=1)
    ids[values == -np.inf] = -1
    if k < n:
        ids = np.concatenate([ids, np.full((m, n - k), -1, dtype=np.int64)], axis=1)
        values = np.concatenate([values, np.full((m, n - k), -np.inf, dtype=np.float32)], axis=1)
    return ids, values


def top_n(scores, n: int, exclude=None, candidates=None) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``n`` best items of each row of a score matrix.

    Parameters
    ----------
    scores : array-like of float, shape (m, n_items)
        Scores of every item for ``m`` users (or query items); higher is better. NaN is an error.
        Items scored ``-inf`` are treated as unavailable.
    n : int
        Length of each list, >= 1. Always the number of output columns, even when it exceeds the
        number of candidates (the tail is then padded).
    exclude : scipy.sparse matrix, shape (m, n_items), optional
        Items to leave out, row by row: every stored entry (whatever its value, even an explicit
        zero) removes that item from that row. Typically the users' training interactions.
    candidates : array-like of int or bool, optional
        Items allowed in every row: either item indices, shape (c,), or a boolean mask, shape
        (n_items,). None (default) allows every item.

    Returns
    -------
    ids : np.ndarray of int64, shape (m, n)
        Item indices, best first; ties in score are ordered by lower item index. ``-1`` pads
        rows with fewer than ``n`` candidates.
    scores : np.ndarray of float32, shape (m, n)
        The matching scores, non-increasing along each row; ``-inf`` where ``ids`` is ``-1``.

    Raises
    ------
    ReclabError
        If ``n`` is not an integer >= 1, ``scores`` is not 2-D or contains NaN, or ``exclude`` /
        ``candidates`` do not match the number of items.

    Notes
    -----
    Cost is O(m * n_items) for a partition per row plus O(m * n log n) to sort the selected
    items; the whole score matrix is never sorted. Rows are processed in chunks so temporaries
    stay bounded.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from reclab.ranking import top_n
    >>> scores = np.array([[0.1, 0.9, 0.9, 0.5]])
    >>> ids, best = top_n(scores, 3, exclude=sp.csr_matrix(([1.0], ([0], [2])), shape=(1, 4)))
    >>> ids
    array([[1, 3, 0]])
    """
    n = check_int("n", n, low=1)
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ReclabError(f"scores must be a 2-D array (users x items), got shape {scores.shape}")
    if scores.dtype.kind not in "fiu":
        raise ReclabError(f"scores must be numeric, got dtype {scores.dtype}")
    m, n_items = scores.shape
    exclude = _check_exclude(exclude, scores.shape)
    allowed = _candidate_mask(candidates, n_items)
    ids = np.empty((m, n), dtype=np.int64)
    best = np.empty((m, n), dtype=np.float32)
    chunk = max(1, _CHUNK_ELEMENTS // max(n_items, 1))
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        block = np.array(scores[start:stop], dtype=np.float32, copy=True)
        if np.isnan(block).any():
            rows = start + np.unique(np.nonzero(np.isnan(block))[0])
            raise ReclabError(f"scores contain NaN in rows {rows[:10].tolist()}; a model that "
                              "produces NaN has diverged (check its regularization)")
        if exclude is not None:
            part = exclude[start:stop]
            rows = np.repeat(np.arange(stop - start), np.diff(part.indptr))
            block[rows, part.indices] = -np.inf
        if allowed is not None:
            block[:, ~allowed] = -np.inf
        ids[start:stop], best[start:stop] = _top_n_chunk(block, n)
    return ids, best
