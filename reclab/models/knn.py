"""Item-based k-nearest-neighbours with cosine similarity."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclab.models.base import Recommender, check_float, check_int
from reclab.ranking import top_n

__all__ = ["ItemKNN"]

# Items whose similarity rows are computed at once: bounds the dense (block, n_items) float64
# block to about 32 MB.
_BLOCK_ELEMENTS = 1 << 22


def _cosine_rows(columns: sp.csc_matrix, norms: np.ndarray, items: np.ndarray,
                 shrinkage: float) -> np.ndarray:
    """Shrunk cosine of items ``items`` against every item, dense float64 (len(items), n_items)."""
    dots = (columns[:, items].T @ columns).toarray()
    denominator = norms[items][:, None] * norms[None, :] + shrinkage
    return np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)


def top_neighbors(similarity_rows, n_items: int, neighbors: int, above: float) -> sp.csr_matrix:
    """Keep each item's ``neighbors`` most similar other items with similarity ``> above`` (all
    of them when ``neighbors`` is at least the number of other items).

    ``similarity_rows(items)`` returns the dense (len(items), n_items) similarities of a block of
    items to every item; blocks bound it to about ``_BLOCK_ELEMENTS`` entries. Ties go to the
    lower item index (:func:`reclab.ranking.top_n`). Returns the float32 CSR matrix (n_items,
    n_items) whose row ``i`` holds item ``i``'s kept neighbours, indices sorted.
    """
    block = max(1, _BLOCK_ELEMENTS // n_items)
    length = max(1, min(neighbors, n_items - 1))   # no item has more other items: lists no longer
    rows, cols, values = [], [], []
    for start in range(0, n_items, block):
        items = np.arange(start, min(start + block, n_items))
        similarities = similarity_rows(items)
        itself = sp.csr_matrix((np.ones(items.size), items, np.arange(items.size + 1)),
                               shape=(items.size, n_items))
        ids, best = top_n(similarities, length, exclude=itself)
        keep = (ids >= 0) & (best > above)
        rows.append(np.broadcast_to(items[:, None], ids.shape)[keep])
        cols.append(ids[keep])
        values.append(best[keep])
    rows, cols, values = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    similarity = sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=(n_items, n_items))
    similarity.sort_indices()
    return similarity


class ItemKNN(Recommender):
    """Item-item nearest neighbours: recommend items similar to what the user rated.

    Items are the columns ``x_i`` (users x 1) of the training matrix ``X`` (ratings, or 1.0 for
    implicit feedback). Their similarity is the shrunk cosine

    ``s(i, j) = x_i . x_j / (||x_i|| ||x_j|| + shrinkage)``

    (``shrinkage = 0`` is the plain cosine; a positive value pulls similarities that rest on few
    co-raters towards 0). Each item ``i`` keeps its ``neighbors`` most similar other items ``j``
    with ``s(i, j) > min_similarity`` (ties by lower index), giving the sparse matrix ``S``. A
    user's scores are ``score(u, j) = sum_i r_ui S[i, j] = (X S)[u, j]``: the rating-weighted sum
    of similarities between ``j`` and the items the user rated, among those that have ``j`` as a
    neighbour. ItemKNN ranks; it does not predict ratings.

    ``similar_items`` and ``item_similarity`` use the full ``s(i, j)`` (not only kept neighbours).

    Parameters
    ----------
    neighbors : int, >= 1
        Neighbours kept per item.
    shrinkage : float, >= 0
        Added to the cosine denominator, in the units of the norms' product (squared ratings).
    min_similarity : float, in [-1, 1]
        Neighbours with similarity at or below this are dropped.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix of float32, shape (n_items_, n_items_)
        ``S``: row ``i`` holds item ``i``'s kept neighbours.
    item_norms_ : numpy.ndarray of float64, shape (n_items_,)
        ``||x_i||``.

    Examples
    --------
    >>> model = ItemKNN(neighbors=50).fit(train)   # doctest: +SKIP
    >>> ids, scores = model.recommend([0, 1], n=10)   # doctest: +SKIP
    """

    def __init__(self, neighbors: int = 50, shrinkage: float = 0.0, min_similarity: float = 0.0):
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.min_similarity = min_similarity

    def _validate_params(self) -> None:
        check_int("neighbors", self.neighbors, low=1, model=self)
        check_float("shrinkage", self.shrinkage, low=0.0, model=self)
        check_float("min_similarity", self.min_similarity, low=-1.0, high=1.0, model=self)

    def _fit(self, train, report) -> None:
        columns = train.matrix.astype(np.float64).tocsc()
        norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=0)).ravel())
        self.similarity_ = top_neighbors(
            lambda items: _cosine_rows(columns, norms, items, float(self.shrinkage)),
            train.n_items, self.neighbors, self.min_similarity)
        self.item_norms_ = norms
        self._cache_columns = columns

    def _columns(self) -> sp.csc_matrix:
        # The training matrix by columns, rebuilt from seen_ after load().
        if vars(self).get("_cache_columns") is None:
            self._cache_columns = self.seen_.astype(np.float64).tocsc()
        return self._cache_columns

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.seen_[users] @ self.similarity_).toarray().astype(np.float32, copy=False)

    def _item_similarities(self, items: np.ndarray) -> np.ndarray:
        return _cosine_rows(self._columns(), self.item_norms_, items, float(self.shrinkage))
