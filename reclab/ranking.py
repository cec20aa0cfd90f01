"""Top-N selection: the one function that turns a score matrix into ranked item lists.

Both ``Recommender.recommend`` and ``reclab.evaluate`` call :func:`top_n`, so that what a model
recommends and what is evaluated are, by construction, the same lists, except where scores tie:
evaluate then breaks the ties by :func:`tie_keys` (a seeded hash) rather than by index, so that a
model that cannot tell items apart is scored as chance, not by the order of the ids.

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
from numba import njit, prange

from reclab._validate import check_int
from reclab.errors import ReclabError

__all__ = ["candidate_mask", "tie_keys", "top_n"]


def _murmur3_int(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """MurmurHash3 (x86, 32-bit) of one 4-byte integer per entry, as Spark's ``hash`` hashes an int
    column: uint32 arithmetic, wrapping."""
    def rotl(x, r):
        return (x << np.uint32(r)) | (x >> np.uint32(32 - r))

    k1 = rotl(values.astype(np.uint32) * np.uint32(0xCC9E2D51), 15) * np.uint32(0x1B873593)
    h1 = rotl(seed ^ k1, 13) * np.uint32(5) + np.uint32(0xE6546B64)
    h1 ^= np.uint32(4)
    h1 ^= h1 >> np.uint32(16)
    h1 *= np.uint32(0x85EBCA6B)
    h1 ^= h1 >> np.uint32(13)
    h1 *= np.uint32(0xC2B2AE35)
    return h1 ^ (h1 >> np.uint32(16))


def tie_keys(seed: int, users, items) -> np.ndarray:
    """Pseudo-random keys that order tied items, one per (user, item): ``evaluate`` ranks equal
    scores by ascending key (then by index), so ties are broken at random, the same way for a
    user whatever else is scored, and the same way Spark does (``reclab.spark.evaluate``).

    The key is Spark SQL's ``hash(seed mod 2**31, user, item)`` over three int columns
    (MurmurHash3, seed 42, chained), a signed int32. Returns shape ``(len(users), len(items))``.
    """
    users = np.asarray(users, dtype=np.int64).astype(np.int32)
    items = np.asarray(items, dtype=np.int64).astype(np.int32)
    with np.errstate(over="ignore"):
        start = _murmur3_int(np.array([seed % 2**31], dtype=np.int32), np.full(1, 42, np.uint32))
        per_user = _murmur3_int(users, np.broadcast_to(start, users.shape))
        keys = _murmur3_int(np.broadcast_to(items, (users.size, items.size)), per_user[:, None])
    return keys.view(np.int32)


def candidate_mask(candidates, n_items: int) -> np.ndarray | None:
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


@njit(cache=True, inline="always")
def _worse(value_a, item_a, value_b, item_b):
    """Whether (value_a, item_a) ranks below (value_b, item_b): lower score, or the same score
    and a higher item index."""
    return value_a < value_b or (value_a == value_b and item_a > item_b)


@njit(cache=True, inline="always")
def _sift_down(values, items, size, position):
    """Restore the heap below ``position``: every entry ranks no higher than its children, so
    the lowest-ranked kept item is at the root."""
    while True:
        child = 2 * position + 1
        if child >= size:
            return
        if child + 1 < size and _worse(values[child + 1], items[child + 1], values[child], items[child]):
            child += 1
        if not _worse(values[child], items[child], values[position], items[position]):
            return
        values[position], values[child] = values[child], values[position]
        items[position], items[child] = items[child], items[position]
        position = child


@njit(parallel=True, cache=True)
def _top_n_rows(scores, n, exclude_indptr, exclude_indices, allowed, ids, best, has_nan):
    """Top ``n`` of every row in one pass over its scores, rows in parallel.

    Items are visited in ascending index order and the ``n`` best so far are kept in a heap
    whose root is the lowest ranked of them. A new item can only tie a kept one with a higher
    index, which ranks below it, so it enters exactly when its score is strictly greater than
    the root's. The kept items are then sorted by heap extraction. Cost: one comparison per
    item plus O(log n) per entry into the heap (about ``n log(n_items / n)`` entries for scores
    in random order, at most ``n_items``) and O(n log n) for the sort. Excluded items (sorted
    column indices per row) are skipped as runs between them; ``allowed`` is a boolean mask over
    items. Scores are compared as float32; ``-inf`` is unavailable; NaN marks its row in
    ``has_nan``.
    """
    m, n_items = scores.shape
    minus_inf = np.float32(-np.inf)
    for row in prange(m):
        values = best[row]
        items = ids[row]
        size = 0
        segment_start = 0
        pointer = exclude_indptr[row]
        stop = exclude_indptr[row + 1]
        while segment_start < n_items:
            # the run of items up to the next excluded one
            segment_end = n_items
            while pointer < stop:
                excluded = exclude_indices[pointer]
                pointer += 1
                if excluded >= segment_start:
                    segment_end = excluded
                    break
            for item in range(segment_start, segment_end):
                value = np.float32(scores[row, item])
                if value != value:
                    has_nan[row] = True
                    continue
                if size == n and not value > values[0]:
                    continue
                if value == minus_inf or not allowed[item]:
                    continue
                if size < n:   # add as a leaf and move it up past every entry ranked higher
                    position = size
                    size += 1
                    while position > 0:
                        parent = (position - 1) // 2
                        if not _worse(value, item, values[parent], items[parent]):
                            break
                        values[position] = values[parent]
                        items[position] = items[parent]
                        position = parent
                    values[position] = value
                    items[position] = item
                else:          # replace the root, the lowest ranked kept item
                    values[0] = value
                    items[0] = item
                    _sift_down(values, items, size, 0)
            segment_start = segment_end + 1
        # Heap extraction: the lowest ranked goes last, so the row ends best first.
        for last in range(size - 1, 0, -1):
            values[0], values[last] = values[last], values[0]
            items[0], items[last] = items[last], items[0]
            _sift_down(values, items, last, 0)
        for position in range(size, n):
            items[position] = -1
            values[position] = minus_inf


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
    One pass over each row's scores (rows in parallel), keeping the ``n`` best so far in a heap:
    O(m * n_items) comparisons plus O(m * n_items * log n) at worst for the heap; the score
    matrix is neither sorted nor copied (unless it is not float32/float64 or not C-contiguous).

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
    allowed = candidate_mask(candidates, n_items)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float32)
    scores = np.ascontiguousarray(scores)   # one compiled kernel per dtype
    if exclude is None:
        exclude_indptr = np.zeros(m + 1, dtype=np.int64)
        exclude_indices = np.zeros(0, dtype=np.int32)
    else:
        if not exclude.has_sorted_indices:
            exclude = exclude.sorted_indices()
        exclude_indptr = exclude.indptr.astype(np.int64, copy=False)
        exclude_indices = exclude.indices.astype(np.int32, copy=False)
    if allowed is None:
        allowed = np.ones(n_items, dtype=bool)
    ids = np.empty((m, n), dtype=np.int64)
    best = np.empty((m, n), dtype=np.float32)
    has_nan = np.zeros(m, dtype=bool)
    _top_n_rows(scores, n, exclude_indptr, exclude_indices, allowed, ids, best, has_nan)
    if has_nan.any():
        rows = np.nonzero(has_nan)[0]
        raise ReclabError(f"scores contain NaN in rows {rows[:10].tolist()}; a model that "
                          "produces NaN has diverged (check its regularization)")
    return ids, best
