"""Benchmark data: synthetic long-tail interaction matrices shaped like MovieLens-20M.

At 20M ratings the matrix is 138,000 users x 27,000 items (ML-20M's shape); smaller sizes keep the
items and the ratings per user and scale the users, so that the work per rating stays comparable and
time should grow linearly with the number of ratings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

FULL_RATINGS = 20_000_000
FULL_USERS = 138_000
FULL_ITEMS = 27_000


def long_tail(n_ratings: int, seed: int = 0, factors: int = 16, n_items: int = FULL_ITEMS) -> sp.csr_matrix:
    """A users x items CSR of ``n_ratings`` distinct implicit interactions (values 1..5).

    Item popularity is Zipf-like (exponent 1) and user activity lognormal, both long-tailed like
    MovieLens; the values come from a low-rank model so that ranking quality is meaningful.
    ``n_items`` changes the catalog only (the users still scale with ``n_ratings``).
    """
    rng = np.random.default_rng(seed)
    n_users = max(1_000, round(FULL_USERS * n_ratings / FULL_RATINGS))
    item_weight = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_weight = rng.permutation(item_weight / item_weight.sum())
    user_weight = rng.lognormal(0.0, 1.0, n_users)
    user_weight /= user_weight.sum()
    # Draw with replacement, drop repeated pairs, then keep exactly n_ratings distinct pairs.
    draws = int(n_ratings * 1.3)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_ratings:
        users = rng.choice(n_users, size=draws, p=user_weight)
        items = rng.choice(n_items, size=draws, p=item_weight)
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * n_items + items]))
    keys = np.sort(rng.choice(keys, size=n_ratings, replace=False))
    rows, cols = keys // n_items, keys % n_items
    user_factors = rng.normal(size=(n_users, factors)).astype(np.float32)
    item_factors = rng.normal(size=(n_items, factors)).astype(np.float32)
    affinity = np.einsum("ij,ij->i", user_factors[rows], item_factors[cols]) / np.sqrt(factors)
    values = np.clip(np.round(3.0 + affinity), 1, 5).astype(np.float32)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    return sp.csr_matrix((values, cols.astype(np.int32), indptr), shape=(n_users, n_items))
