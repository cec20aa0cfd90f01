"""Most-popular baseline."""

from __future__ import annotations

import numpy as np

from reclab.models.base import Recommender

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Recommend the items with the most training interactions, the same list for everyone.

    ``score(u, i) = n_i``, the number of stored training interactions of item ``i`` (whatever
    their rating), so every user gets the most popular items they have not seen; equal counts are
    ordered by lower item index. It has no parameters and does not predict ratings.

    Attributes
    ----------
    item_counts_ : numpy.ndarray of float32, shape (n_items_,)
        Training interactions per item (counts, stored as float32 scores).

    Examples
    --------
    >>> model = Popularity().fit(train)          # doctest: +SKIP
    >>> ids, counts = model.recommend(0, n=10)   # doctest: +SKIP
    """

    ranks_new_users = True   # the same list for everyone, a user without interactions included

    def __init__(self):
        pass

    def _fit(self, train, report) -> None:
        self.item_counts_ = train.item_counts().astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.repeat(self.item_counts_[None, :], users.size, axis=0)
