"""Pre-processing of interactions before splitting: dense-enough filtering (k-core)."""

from __future__ import annotations

import numpy as np

from reclab._validate import check_int
from reclab.data import Interactions
from reclab.errors import ReclabError

__all__ = ["kcore"]


def kcore(data: Interactions, min_user: int = 5, min_item: int = 5) -> Interactions:
    """Keep the largest part of ``data`` where every user and every item is active enough.

    Users with fewer than ``min_user`` interactions and items with fewer than ``min_item`` are
    removed, repeatedly (removing an item can push a user below the threshold, and so on), until
    every remaining user has at least ``min_user`` and every remaining item at least ``min_item``
    interactions. The result is unique: it does not depend on the order of removals.

    Parameters
    ----------
    data : Interactions
    min_user, min_item : int
        Thresholds, integers >= 1 (1 only drops users and items without interactions).

    Returns
    -------
    Interactions
        Re-indexed to the remaining users and items (ids, item metadata and features follow); ``truth`` is
        dropped, as by :meth:`Interactions.restrict`, when anything was removed (``data`` itself
        is returned when nothing was).

    Raises
    ------
    ReclabError
        Bad thresholds, or no interaction survives the filtering.
    """
    min_user = check_int("min_user", min_user, low=1)
    min_item = check_int("min_item", min_item, low=1)
    if not isinstance(data, Interactions):
        raise ReclabError(f"kcore needs an Interactions object, got {type(data).__name__}")
    original = f"{data.n_users} users, {data.n_items} items, {data.nnz} interactions"
    while True:
        users = np.flatnonzero(data.user_counts() >= min_user)
        items = np.flatnonzero(data.item_counts() >= min_item)
        if len(users) == data.n_users and len(items) == data.n_items and data.nnz > 0:
            return data
        if len(users) and len(items):
            data = data.restrict(users=users, items=items)
        if len(users) == 0 or len(items) == 0 or data.nnz == 0:
            raise ReclabError(
                f"no interactions left after k-core filtering with min_user={min_user}, "
                f"min_item={min_item} (input: {original}); lower the thresholds")
