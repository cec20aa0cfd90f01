"""Ranking and rating metrics: pure, vectorized functions over a batch of users.

These are the only definitions of reclab's metrics (docs/architecture.md, "Conventions");
:func:`reclab.evaluate` and :func:`reclab.evaluation.ranking_metrics` build their inputs and call
them.

Ranking metrics take a batch of top-K lists already reduced to whether each rank is a hit:

``hits`` : bool array, shape (m, K)
    ``hits[u, r]`` is True when the item at rank ``r + 1`` of user ``u``'s list is one of the
    user's relevant test items. Padding (id -1, when a user has fewer than K candidate items) is
    never a hit.
``n_relevant`` : int array, shape (m,)
    Number of relevant test items of each user, at least 1: users without relevant items are not
    evaluated (the caller drops and counts them), so no metric is ever NaN.

and return one value per user, shape (m,). Each ``*_at_k`` function takes ``k`` (an int,
``1 <= k <= K``, default K) and uses the first ``k`` ranks. :func:`metric_at_every_k` returns a
metric at every cutoff ``1..K`` at once, shape (m, K); it is what the ``*_at_k`` functions and the
evaluation report's curves are computed from, so each formula is written once.

Example
-------
>>> hits = np.array([[True, False, True]])
>>> precision_at_k(hits, k=3), recall_at_k(hits, np.array([4]), k=3)
(array([0.66666667]), array([0.5]))
"""

from __future__ import annotations

import numpy as np

from reclab._validate import check_int, check_k
from reclab.errors import ReclabError

__all__ = [
    "RANKING_METRICS",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "mrr_at_k",
    "hit_rate_at_k",
    "coverage_at_k",
    "metric_at_every_k",
    "coverage_at_every_k",
    "rmse",
    "mae",
    "RATING_METRICS",
    "check_metric_name",
    "bootstrap_ratios",
    "percentile_interval",
    "sign_flip_p_value",
    "holm",
]

#: Per-user ranking metrics, in the order reports list them.
RANKING_METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
#: Metrics of predicted ratings, on the rating scale (lower is better).
RATING_METRICS = ("rmse", "mae")


def check_metric_name(name) -> tuple[str, int | None]:
    """``(name, cut-off)`` of a metric name as reports and MLflow spell it: a ranking metric or
    coverage at a cut-off >= 1 (``"precision@10"``, ``"coverage@20"``; cut-off an int) or a rating
    metric (``"rmse"``, ``"mae"``; cut-off None)."""
    known = (f"{', '.join(RANKING_METRICS)} or coverage at a cut-off (e.g. 'precision@10'), or "
             f"{' / '.join(repr(metric) for metric in RATING_METRICS)}")
    if not isinstance(name, str):
        raise ReclabError(f"metric must be a string such as 'precision@10' ({known}), got {name!r}")
    if name in RATING_METRICS:
        return name, None
    base, at, cut = name.partition("@")
    # As reports spell the cut-off (str(int)): 'precision@010' or a non-ASCII digit names no key.
    if not at or base not in (*RANKING_METRICS, "coverage") or not (cut.isascii() and cut.isdigit()) \
            or cut != str(int(cut)) or int(cut) < 1:
        raise ReclabError(f"unknown metric {name!r}; use {known}")
    return name, int(cut)


def _check_hits(hits) -> np.ndarray:
    hits = np.asarray(hits)
    if hits.ndim != 2 or hits.dtype != bool:
        raise ReclabError(f"hits must be a boolean array of shape (users, K), got {hits.dtype} {hits.shape}")
    if hits.shape[1] < 1:
        raise ReclabError(f"hits has no ranks (shape {hits.shape}); K must be at least 1")
    return hits


def _check_n_relevant(n_relevant, hits: np.ndarray) -> np.ndarray:
    n_relevant = np.asarray(n_relevant)
    if n_relevant.shape != (hits.shape[0],) or not np.issubdtype(n_relevant.dtype, np.integer):
        raise ReclabError(f"n_relevant must be integers of shape ({hits.shape[0]},), one per row of "
                          f"hits, got {n_relevant.dtype} {n_relevant.shape}")
    if hits.shape[0] and n_relevant.min() < 1:
        raise ReclabError(f"n_relevant has {int((n_relevant < 1).sum())} user(s) with no relevant item; "
                          f"drop (and count) those users before computing metrics, which would be "
                          f"undefined (0/0) for them")
    n_hits = hits.sum(axis=1)
    if np.any(n_hits > n_relevant):
        row = int(np.flatnonzero(n_hits > n_relevant)[0])
        raise ReclabError(f"row {row} of hits has {int(n_hits[row])} hits but n_relevant is "
                          f"{int(n_relevant[row])}; a list cannot hit more items than are relevant")
    return n_relevant.astype(np.int64)


def _first_k(hits, k) -> np.ndarray:
    hits = _check_hits(hits)
    k = hits.shape[1] if k is None else check_k(k, hits.shape[1])
    return hits[:, :k]


# -- every cutoff at once ---------------------------------------------------------------------
def _discounts(n_ranks: int) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..n_ranks."""
    return 1.0 / np.log2(np.arange(2, n_ranks + 2, dtype=np.float64))


def metric_at_every_k(metric: str, hits, n_relevant=None) -> np.ndarray:
    """One ranking metric at every cutoff ``k = 1..K``.

    Parameters
    ----------
    metric : {"precision", "recall", "ndcg", "map", "mrr", "hit_rate"}
    hits : bool array, shape (m, K)
    n_relevant : int array, shape (m,), all >= 1
        Needed by recall, ndcg and map; ignored by the others.

    Returns
    -------
    numpy.ndarray of float64, shape (m, K)
        Column ``k - 1`` holds the metric at cutoff ``k``; see the ``*_at_k`` functions for the
        formulas.
    """
    hits = _check_hits(hits)
    if metric not in RANKING_METRICS:
        raise ReclabError(f"unknown ranking metric {metric!r}; choose from {list(RANKING_METRICS)}")
    n_ranks = hits.shape[1]
    ranks = np.arange(1, n_ranks + 1, dtype=np.float64)
    n_hits = np.cumsum(hits, axis=1, dtype=np.int64)  # hits within the first k ranks, every k
    if metric == "precision":
        return n_hits / ranks
    if metric == "hit_rate":
        return (n_hits > 0).astype(np.float64)
    if metric == "mrr":
        first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, n_ranks + 1)
        return np.where(first[:, None] <= ranks, 1.0 / first[:, None], 0.0)
    if n_relevant is None:
        raise ReclabError(f"{metric} needs n_relevant, the number of relevant items of each user")
    n_relevant = _check_n_relevant(n_relevant, hits)
    if metric == "recall":
        return n_hits / n_relevant[:, None].astype(np.float64)
    # Both ndcg and map normalise by the best achievable list: min(relevant, k) hits at the top.
    n_ideal = np.minimum(n_relevant[:, None], np.arange(1, n_ranks + 1))
    if metric == "ndcg":
        discounts = _discounts(n_ranks)
        dcg = np.cumsum(hits * discounts, axis=1)
        ideal_dcg = np.cumsum(discounts)[n_ideal - 1]
        return dcg / ideal_dcg
    precision_at_hits = np.where(hits, n_hits / ranks, 0.0)
    return np.cumsum(precision_at_hits, axis=1) / n_ideal


# -- per-user metrics at one cutoff -----------------------------------------------------------
def precision_at_k(hits, k: int | None = None) -> np.ndarray:
    """precision@k = (hits in the top k) / k.

    The denominator is always ``k``, also when a user has fewer than ``k`` candidate items and
    the list is padded with id -1 (padding is never a hit), so precision@k is the fraction of
    the k slots that hold a relevant item.

    ``hits`` and ``k`` as in the module docstring; one float64 value per user, shape (m,).
    """
    hits = _first_k(hits, k)
    return metric_at_every_k("precision", hits)[:, -1]


def recall_at_k(hits, n_relevant, k: int | None = None) -> np.ndarray:
    """recall@k = (hits in the top k) / n_relevant.

    The denominator is the number of relevant items, not ``min(n_relevant, k)``, so recall@k is
    below 1 whenever a user has more than ``k`` relevant items.

    ``hits``, ``n_relevant`` and ``k`` as in the module docstring; one float64 value per user,
    shape (m,).
    """
    hits = _first_k(hits, k)
    return metric_at_every_k("recall", hits, n_relevant)[:, -1]


def ndcg_at_k(hits, n_relevant, k: int | None = None) -> np.ndarray:
    """nDCG@k = DCG@k / IDCG@k with binary gain.

    ``DCG@k = sum over hit ranks r <= k of 1 / log2(r + 1)`` and
    ``IDCG@k = sum over r = 1..min(n_relevant, k) of 1 / log2(r + 1)``, the DCG of a list with
    every relevant item at the top. Values lie in [0, 1].

    ``hits``, ``n_relevant`` and ``k`` as in the module docstring; one float64 value per user,
    shape (m,).
    """
    hits = _first_k(hits, k)
    return metric_at_every_k("ndcg", hits, n_relevant)[:, -1]


def map_at_k(hits, n_relevant, k: int | None = None) -> np.ndarray:
    """Average precision at k (its mean over users is MAP@k).

    ``AP@k = (sum over hit ranks r <= k of precision@r) / min(n_relevant, k)``, so a list whose
    first ``min(n_relevant, k)`` items are all relevant scores 1.

    ``hits``, ``n_relevant`` and ``k`` as in the module docstring; one float64 value per user,
    shape (m,).
    """
    hits = _first_k(hits, k)
    return metric_at_every_k("map", hits, n_relevant)[:, -1]


def mrr_at_k(hits, k: int | None = None) -> np.ndarray:
    """Reciprocal rank at k (its mean over users is MRR@k).

    ``RR@k = 1 / r`` where ``r`` is the rank of the first hit, or 0 when there is no hit in the
    top k.

    ``hits`` and ``k`` as in the module docstring; one float64 value per user, shape (m,).
    """
    hits = _first_k(hits, k)
    return metric_at_every_k("mrr", hits)[:, -1]


def hit_rate_at_k(hits, k: int | None = None) -> np.ndarray:
    """hit_rate@k = 1 if any of the top k items is relevant, else 0.

    ``hits`` and ``k`` as in the module docstring; one float64 value per user, shape (m,).
    """
    hits = _first_k(hits, k)
    return metric_at_every_k("hit_rate", hits)[:, -1]


# -- catalogue coverage -----------------------------------------------------------------------
def _check_ids(ids, n_items) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer) or ids.shape[1] < 1:
        raise ReclabError(f"ids must be an integer array of shape (users, K) with K >= 1, "
                          f"got {ids.dtype} {ids.shape}")
    if isinstance(n_items, (bool, np.bool_)) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ReclabError(f"n_items must be an int >= 1 (the size of the catalogue), got {n_items!r}")
    if ids.size and (ids.min() < -1 or ids.max() >= n_items):
        raise ReclabError(f"ids must be item indices in [0, {n_items}) or -1 for padding, "
                          f"got values in [{ids.min()}, {ids.max()}]")
    return ids


def coverage_at_every_k(ids, n_items: int) -> np.ndarray:
    """Catalogue coverage at every cutoff ``k = 1..K``.

    Parameters
    ----------
    ids : int array, shape (m, K)
        Top-K item indices of m users, -1 for padding.
    n_items : int
        Number of items in the catalogue.

    Returns
    -------
    numpy.ndarray of float64, shape (K,)
        Entry ``k - 1`` is coverage@k (see :func:`coverage_at_k`).
    """
    ids = _check_ids(ids, n_items)
    n_users, n_ranks = ids.shape
    # Column-major order visits rank 1 of every user, then rank 2, ...; the first position of each
    # distinct item in that order gives the best rank at which any user is shown it.
    flat = ids.T.reshape(-1)
    shown = np.flatnonzero(flat >= 0)
    _, first = np.unique(flat[shown], return_index=True)
    best_rank = shown[first] // max(n_users, 1) + 1
    new_per_rank = np.bincount(best_rank, minlength=n_ranks + 1)[1:]
    return np.cumsum(new_per_rank) / float(n_items)


def coverage_at_k(ids, n_items: int, k: int | None = None) -> float:
    """coverage@k = (distinct items in the top-k lists of all users) / n_items.

    A property of the whole set of lists, not of one user, so it has no per-user values.

    Parameters
    ----------
    ids : int array, shape (m, K)
        Top-K item indices of m users, -1 for padding (never counted).
    n_items : int
        Number of items in the catalogue.
    k : int, 1 <= k <= K, default K

    Returns
    -------
    float in [0, 1]
    """
    ids = _check_ids(ids, n_items)
    k = ids.shape[1] if k is None else check_k(k, ids.shape[1])
    return float(coverage_at_every_k(ids[:, :k], n_items)[-1])


# -- rating metrics ---------------------------------------------------------------------------
def _check_pairs(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or y_true.size == 0:
        raise ReclabError(f"y_true and y_pred must be non-empty 1-D arrays of the same length, "
                          f"got shapes {y_true.shape} and {y_pred.shape}")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ReclabError("y_true and y_pred must be finite; got NaN or infinite values")
    return y_true, y_pred


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, ``sqrt(mean((y_pred - y_true) ** 2))``, on the rating scale.

    ``y_true`` and ``y_pred``: float arrays of one shape (n,), n >= 1, finite.
    """
    y_true, y_pred = _check_pairs(y_true, y_pred)
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error, ``mean(|y_pred - y_true|)``, on the rating scale.

    ``y_true`` and ``y_pred``: float arrays of one shape (n,), n >= 1, finite.
    """
    y_true, y_pred = _check_pairs(y_true, y_pred)
    return float(np.mean(np.abs(y_pred - y_true)))


# -- intervals: the bootstrap over users behind every report's 95% intervals -----------------
# Bootstrap replicates are drawn in chunks of about this many user draws, so that the resampling
# matrix stays near 32 MB whatever the number of users (138k users x 1000 replicates: 1.1 GB).
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22
_CONFIDENCE = 0.95


def bootstrap_ratios(numerators: np.ndarray, denominators: np.ndarray, n_bootstrap: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Replicates of ``sum(numerators) / sum(denominators)`` over users resampled with replacement.

    numerators : (m, p); denominators : (m,). Returns (n_bootstrap, p). A replicate draws m users
    with replacement; how often each user is drawn (a multinomial count vector) weights its row,
    so every metric of a replicate is one matrix product instead of a gather.
    """
    m = denominators.shape[0]
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // m)
    replicates = np.empty((n_bootstrap, numerators.shape[1]))
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        draws = rng.integers(0, m, size=(size, m))
        draws += np.arange(size)[:, None] * m
        counts = np.bincount(draws.reshape(-1), minlength=size * m).reshape(size, m).astype(np.float64)
        replicates[start:start + size] = (counts @ numerators) / (counts @ denominators)[:, None]
    return replicates


def percentile_interval(replicates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 95% percentile interval of each column of bootstrap ``replicates``: (low, high)."""
    tail = 100.0 * (1.0 - _CONFIDENCE) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail], axis=0)
    return low, high


# -- paired tests: compare's p-value and stage 5's correction for several comparisons ---------
#: Up to this many non-zero paired differences, the sign-flip test enumerates all 2^m flips.
_EXACT_FLIPS = 16
#: Random sign flips beyond that (p-values from 1 / 10,001 up).
SIGN_FLIPS = 10_000


def sign_flip_p_value(differences: np.ndarray, rng: np.random.Generator, n_flips: int = SIGN_FLIPS) -> float:
    """Two-sided paired randomization (sign-flip) test of the mean of per-user ``differences``.

    Under the null hypothesis each user's two values are exchangeable, so every difference is as
    likely with its sign flipped; the p-value is the share of sign assignments whose mean is at
    least as far from 0 as the observed one: exact over all ``2^m`` assignments of the ``m``
    non-zero differences when ``m <= 16`` (zeros flip to themselves), else ``(1 + hits) /
    (1 + n_flips)`` over random ones. The randomization test that Smucker, Allan & Carterette
    (CIKM 2007) recommend for IR metrics: it tests the mean difference that is reported, where
    the Wilcoxon signed-rank test tests where the differences are centred (90 gains of 0.01 and
    10 losses of 0.09, a mean of 0: signed-rank p = 2.5e-9, this test 1), and for 5 non-zero
    differences among 943 users (Popularity against itself with another tie-breaking seed, on
    ML-100K) scipy's Wilcoxon took the normal approximation, p = 0.066, where this one is 0.125.
    """
    values = np.asarray(differences, dtype=np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        # NaN compares False with everything: no assignment would count, and p would be 0.
        raise ReclabError(f"differences must be a 1-D array of finite numbers (one per user), got shape "
                          f"{values.shape} with {int((~np.isfinite(values)).sum())} NaN or infinite")
    n_flips = check_int("n_flips", n_flips, low=1)
    values = values[values != 0]
    m = values.size
    if m == 0:
        return 1.0
    observed = abs(values.sum())
    # Sums equal to the observed one up to rounding count. The rounding error of a sum of m terms
    # grows with the magnitudes summed (at most about m * eps * sum |values|, the same for every
    # sign assignment), not with the sum: differences that cancel give an observed sum of 1e-16
    # noise, which assignments summing to exactly 0.0, equally far from 0, must not fall below.
    at_least = observed * (1 - 1e-12) - 2 * m * np.finfo(np.float64).eps * np.abs(values).sum()
    if m <= _EXACT_FLIPS:
        flips = 1 - 2 * ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1)
        return float(np.mean(np.abs(flips @ values) >= at_least))
    hits, chunk = 0, max(1, _BOOTSTRAP_CHUNK_ELEMENTS // m)
    for start in range(0, n_flips, chunk):
        flips = rng.integers(0, 2, size=(min(chunk, n_flips - start), m), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(flips @ values) >= at_least))
    return (1 + hits) / (1 + n_flips)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of several p-values (one family of tests, such as a model
    against each baseline): reject where the adjusted value is below alpha, and the chance of
    any false rejection stays at most alpha (Holm 1979)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ReclabError(f"p_values must be a 1-D array (one p-value per test), got shape {p.shape}")
    outside = p[~((p >= 0) & (p <= 1))]   # NaN too
    if outside.size:
        raise ReclabError(f"p_values must lie in [0, 1], got {outside[:5].tolist()}")
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(1.0, adjusted)
    return out
