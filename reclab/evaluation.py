"""Offline evaluation: top-K lists on a held-out split, metrics, bootstrap intervals, comparisons.

:func:`evaluate` scores a fitted model on a test split; :func:`ranking_metrics` does the same from
top-K lists made elsewhere (for example by Spark); :func:`compare` tests whether one report beats
another on the same test split. The metric formulas live in :mod:`reclab.metrics`.

Conventions (docs/architecture.md, "Conventions"):

- Candidates of a user: every item not among the user's training interactions (``train.matrix``).
- Relevant items of a user: the user's test interactions, or only those rated at or above
  ``relevance_threshold`` when it is given. A test pair that is also a training pair stays
  relevant but can never be recommended (it is not a candidate); splits made by
  :mod:`reclab.split` never produce such pairs. Refused (``reclab.data.check_held_out``): a test
  split whose every pair is in ``train``, one that holds every pair of ``train`` (the whole
  data), test pairs the model was fitted on but ``train`` does not hold (their scores are
  learned), and any other pair the model was fitted on but ``train`` does not hold (it would be
  ranked as a candidate: pass what the model was fitted on as ``train``).
- Evaluated users: those with at least one relevant item; the others are counted in
  ``n_skipped`` and appear in no mean.
- Means are macro, over evaluated users. coverage@K is over the lists of the evaluated users.
  rmse / mae are over every test pair of the users considered (``users``), for models that
  predict ratings.
- Ties in score are broken at random: by a hash of (``seed``, user, item),
  :func:`reclab.ranking.tie_keys`, as Spark does it, not by the lower index as ``model.recommend``
  does, which would reward the order of the ids: on ML-100K (low ids: popular 1990s films)
  ImplicitALS, whose scores all tie for a new user, got precision@10 0.196 on new users by index,
  0.053 at random; the plain content profile 0.037 warm, 0.024 at random. Users whose
  ``max(k) + 1`` best scores all differ get exactly ``top_n``'s list.
- Candidates (``candidates=``, original item ids or a boolean mask over the items): only these
  items are ranked, as in the cold-start protocol (rank the cold items only), and only the test
  items among them are relevant, so that the metrics measure the ranking of the candidates: on
  ML-100K's long tail (the 217 test items with <= 5 training interactions) ImplicitALS's
  recall@10 is 0.187 over the 145 users with such a test item; counting every test item as
  relevant, it was 0.002 over all 943, 798 of whom no candidate list could serve. coverage@K and
  rmse / mae are then over the candidates. :func:`compare` pairs only reports with the same
  candidates.
- Intervals: 95% percentile bootstrap over users (users are resampled with replacement, the
  metric's mean recomputed; for rmse / mae the pooled error over the resampled users' pairs).
  Resampling only reuses the values seen, so over a few users an interval is too narrow (of
  zero width when they all score alike): ``n_evaluated`` says how far to trust it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclab._text import p_text
from reclab._validate import check_cutoffs, check_int, check_k, check_threshold
from reclab.data import Interactions, check_held_out, check_interactions, stored_pairs
from reclab.errors import ReclabError
from reclab.metrics import (RANKING_METRICS, bootstrap_ratios, coverage_at_every_k, mae, metric_at_every_k,
                            percentile_interval, rmse, sign_flip_p_value)
from reclab.ranking import candidate_mask, tie_keys, top_n

__all__ = ["EvaluationReport", "Comparison", "evaluate", "ranking_metrics", "compare", "cold_candidates",
           "new_user_reports"]

# Test pairs predicted per model.predict call (bounds the temporaries of rating metrics).
_PREDICT_CHUNK = 1 << 20


# -- report -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class EvaluationReport:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    summary : dict of str -> float
        Mean over evaluated users of every ranking metric at every K (``"precision@10"``,
        ``"recall@10"``, ``"ndcg@10"``, ``"map@10"``, ``"mrr@10"``, ``"hit_rate@10"``), then
        ``"coverage@K"`` for every K, then ``"rmse"`` and ``"mae"`` when the model predicts
        ratings.
    per_user : pandas.DataFrame
        One row per evaluated user, ordered by user index: ``user`` (index), ``user_id``
        (original id), ``n_relevant``, and one column per ranking metric at every K. Its column
        means are the summary's ranking metrics.
    n_evaluated, n_skipped : int
        Users with at least one relevant test item, and users considered but without one.
    k : tuple of int
        The cutoffs, ascending.
    intervals : dict of str -> (float, float)
        95% percentile bootstrap interval of every summary metric except coverage (a property of
        the whole set of lists); empty when ``n_bootstrap`` was 0.
    relevance_threshold : float or None
    n_bootstrap, seed : int
        Bootstrap settings that produced ``intervals``.
    test_fingerprint : str
        ``test.fingerprint()``; :func:`compare` pairs only reports of the same test split.
    candidates : numpy.ndarray or None
        Original ids of the items ranked, sorted, when the evaluation was restricted to a
        candidate set (``evaluate(..., candidates=...)``); None when every item was a candidate.
    """

    summary: dict
    per_user: pd.DataFrame
    n_evaluated: int
    n_skipped: int
    k: tuple
    intervals: dict
    relevance_threshold: float | None
    n_bootstrap: int
    seed: int
    test_fingerprint: str
    # Top-max(k) hit matrix and coverage at every cutoff, kept so curve() needs no re-ranking.
    _hits: np.ndarray = field(default=None, repr=False)
    _coverage: np.ndarray = field(default=None, repr=False)
    candidates: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value:.4f}" for name, value in self.summary.items())
        ranked = "" if self.candidates is None else f"candidates={len(self.candidates)} items, "
        return (f"EvaluationReport(n_evaluated={self.n_evaluated}, n_skipped={self.n_skipped}, "
                f"k={self.k}, {ranked}{shown})")

    def curve(self, metrics=("precision", "recall"), ks=None) -> pd.DataFrame:
        """Metrics at every cutoff, from the top-``max(k)`` lists already computed.

        Parameters
        ----------
        metrics : str or sequence of str
            Any of ``"precision"``, ``"recall"``, ``"ndcg"``, ``"map"``, ``"mrr"``,
            ``"hit_rate"``, ``"coverage"``.
        ks : int or iterable of int, optional
            Cutoffs, each in ``1..min(max(k), n_items)`` (the lists stop at the catalog); default
            every one of them.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``k``, one column per metric (mean over evaluated users; coverage over
            all their lists).
        """
        metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
        max_k = self._hits.shape[1]
        ks = range(1, max_k + 1) if ks is None else [ks] if isinstance(ks, (int, np.integer)) else ks
        ks = np.array([check_k(cut, max_k) for cut in ks], dtype=np.int64)
        n_relevant = self.per_user["n_relevant"].to_numpy()
        columns = {}
        for name in metrics:
            if name == "coverage":
                columns[name] = self._coverage[ks - 1]
            elif name in RANKING_METRICS:
                columns[name] = metric_at_every_k(name, self._hits, n_relevant)[:, ks - 1].mean(axis=0)
            else:
                raise ReclabError(f"unknown metric {name!r} for a curve; choose from "
                                  f"{list(RANKING_METRICS) + ['coverage']}")
        return pd.DataFrame(columns, index=pd.Index(ks, name="k"))

    def to_frame(self) -> pd.DataFrame:
        """The summary as a long table.

        Returns
        -------
        pandas.DataFrame
            One row per summary metric: ``name`` (``"ndcg@10"``), ``metric`` (``"ndcg"``), ``k``
            (nullable int, missing for rmse / mae), ``value``, ``ci_low``, ``ci_high`` (NaN where
            there is no interval: coverage, or ``n_bootstrap=0``).
        """
        rows = []
        for name, value in self.summary.items():
            metric, _, cut = name.partition("@")
            low, high = self.intervals.get(name, (np.nan, np.nan))
            rows.append((name, metric, int(cut) if cut else pd.NA, value, low, high))
        frame = pd.DataFrame(rows, columns=["name", "metric", "k", "value", "ci_low", "ci_high"])
        frame["k"] = frame["k"].astype("Int64")
        return frame

    def mlflow_metrics(self) -> dict:
        """Flat ``{key: float}`` for MLflow: ``@`` becomes ``_at_``, intervals add ``_ci_low`` /
        ``_ci_high`` keys, plus ``n_evaluated`` and ``n_skipped``.

        Example: ``{"precision_at_10": 0.31, "precision_at_10_ci_low": 0.30, ...}``.
        """
        out = {}
        for name, value in self.summary.items():
            key = name.replace("@", "_at_")
            out[key] = float(value)
            if name in self.intervals:
                out[f"{key}_ci_low"], out[f"{key}_ci_high"] = map(float, self.intervals[name])
        out["n_evaluated"] = float(self.n_evaluated)
        out["n_skipped"] = float(self.n_skipped)
        if self.candidates is not None:
            out["n_candidates"] = float(len(self.candidates))
        return out


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two reports on one metric (see :func:`compare`).

    Attributes
    ----------
    metric : str
    mean_a, mean_b : float
        Means of the metric over the paired users.
    difference : float
        ``mean_b - mean_a``: positive when B is better (for every reclab ranking metric, higher is
        better).
    ci_low, ci_high : float
        95% paired percentile bootstrap interval of ``difference``.
    p_value : float
        Two-sided paired randomization (sign-flip) test of ``difference``
        (:func:`reclab.metrics.sign_flip_p_value`); 1.0 when every difference is zero.
    n_users : int
        Users evaluated in both reports.
    """

    metric: str
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_users: int

    def __str__(self) -> str:
        return (f"{self.metric}: B - A = {self.difference:+.4f} (95% CI {self.ci_low:+.4f} to "
                f"{self.ci_high:+.4f}), sign-flip test {p_text(self.p_value, spaced=True)}, "
                f"{self.n_users} paired users (A {self.mean_a:.4f}, B {self.mean_b:.4f})")


# -- argument checks --------------------------------------------------------------------------
def _check_users(users, n_users: int) -> np.ndarray:
    if users is None:
        return np.arange(n_users, dtype=np.int64)
    users = np.asarray(users)
    if users.ndim != 1 or (users.size and users.dtype.kind not in "iu"):
        raise ReclabError(f"users must be a 1-D array of user indices, got {users.dtype} {users.shape}")
    users = users.astype(np.int64)
    bad = users[(users < 0) | (users >= n_users)]
    if bad.size:
        raise ReclabError(f"user indices out of range: {bad[:10].tolist()}; valid indices are 0..{n_users - 1}")
    unique, counts = np.unique(users, return_counts=True)
    if np.any(counts > 1):
        raise ReclabError(f"users has repeated indices {unique[counts > 1][:10].tolist()}; each user "
                          f"is evaluated once")
    return unique


def _relevant(test: Interactions, threshold: float | None,
              allowed: np.ndarray | None) -> sp.csr_matrix:
    """CSR of relevant (user, item) pairs: every test entry, or those rated >= threshold; with
    candidates (``allowed``, a mask over the items) only those of candidate items."""
    keep = np.ones(test.nnz, dtype=bool) if threshold is None else test.matrix.data >= threshold
    if allowed is not None:
        keep &= allowed[test.matrix.indices]
    return test.matrix if keep.all() else test.select(keep).matrix


def _check_candidates(candidates, test: Interactions) -> np.ndarray | None:
    """Original item ids, or a boolean mask over the items -> sorted distinct item indices
    (unknown ids raise, naming them)."""
    if candidates is None:
        return None
    ids = np.asarray(candidates)
    if ids.dtype == bool:   # a mask, as model.recommend and top_n take it: never ids 0 and 1
        ids = test.item_ids[candidate_mask(ids, test.n_items)]
    if ids.ndim != 1 or ids.size == 0:
        raise ReclabError(f"candidates must be a non-empty 1-D array of original item ids, got shape {ids.shape}")
    return np.unique(test.item_index(ids))


def _ranked(scores, n: int, exclude: sp.csr_matrix, allowed: np.ndarray | None, users: np.ndarray,
            seed: int) -> np.ndarray:
    """Top-``n`` item indices per row among the ``allowed`` items (None: all), ties in score broken
    at random (see module notes).

    :func:`top_n` ranks every row one item deeper than asked: a row whose ``n + 1`` best scores all
    differ has one list whatever the order of ties. The others are ranked again over their items
    sorted by :func:`reclab.ranking.tie_keys` (top_n's ties go to the earlier position), excluded
    items scored ``-inf``.
    """
    ids, best = top_n(scores, n + 1, exclude=exclude, candidates=allowed)
    tied = np.flatnonzero(((best[:, 1:] == best[:, :-1]) & (ids[:, 1:] >= 0)).any(axis=1))
    ids = ids[:, :n]
    if tied.size:
        items = np.arange(scores.shape[1]) if allowed is None else np.flatnonzero(allowed)
        block = np.asarray(scores[tied][:, items], dtype=np.float32)
        block[stored_pairs(exclude[tied])[:, items].toarray().astype(bool)] = -np.inf
        order = np.argsort(tie_keys(seed, users[tied], items), axis=1, kind="stable")
        picked, _ = top_n(np.take_along_axis(block, order, axis=1), n)
        ids[tied] = np.where(picked >= 0, items[np.take_along_axis(order, np.maximum(picked, 0), axis=1)], -1)
    return ids


def _predicts_ratings(model) -> bool:
    return bool(getattr(model, "predicts_ratings", False))


# -- shared core ------------------------------------------------------------------------------
def _hits(users: np.ndarray, ids: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """hits[u, r]: whether ids[u, r] is a relevant item of users[u] (padding -1 never is)."""
    n_items = relevant.shape[1]
    # CSR rows with sorted indices make user * n_items + item ascending over all stored entries.
    rows = np.repeat(np.arange(relevant.shape[0], dtype=np.int64), np.diff(relevant.indptr))
    keys = rows * n_items + relevant.indices
    query = users[:, None] * n_items + ids
    if keys.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    position = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (ids >= 0) & (keys[position] == query)


def _rating_errors(model, test: Interactions, users: np.ndarray, allowed: np.ndarray | None):
    """Errors on the test pairs of ``users`` and ``allowed`` items: (truth, prediction, user rows)."""
    matrix = test.matrix
    rows = np.repeat(np.arange(test.n_users, dtype=np.int64), np.diff(matrix.indptr))
    wanted = np.zeros(test.n_users, dtype=bool)
    wanted[users] = True
    keep = wanted[rows] if allowed is None else wanted[rows] & allowed[matrix.indices]
    pair_users, pair_items = rows[keep], matrix.indices[keep].astype(np.int64)
    truth = np.asarray(matrix.data[keep], dtype=np.float64)
    if truth.size == 0:
        return None
    predicted = np.empty(truth.size, dtype=np.float64)
    for start in range(0, truth.size, _PREDICT_CHUNK):
        stop = min(start + _PREDICT_CHUNK, truth.size)
        predicted[start:stop] = model.predict(pair_users[start:stop], pair_items[start:stop])
    if not np.isfinite(predicted).all():
        raise ReclabError(f"{type(model).__name__}.predict returned {int((~np.isfinite(predicted)).sum())} "
                          f"NaN or infinite rating(s) on the test pairs; the model has diverged")
    return truth, predicted, pair_users


def _report(users, ids, relevant, n_skipped, ks, test, threshold, n_bootstrap, seed,
            rating=None, candidates=None) -> EvaluationReport:
    """Build the report of evaluated users (each with >= 1 relevant item) and their top lists."""
    n_relevant = np.diff(relevant.indptr).astype(np.int64)[users]
    hits = _hits(users, ids, relevant)
    hits.flags.writeable = False
    per_user = {"user": users, "user_id": test.user_ids[users], "n_relevant": n_relevant}
    # ids may stop at the catalog size (see evaluate): a cut-off beyond it has the hits of the
    # whole list, and precision still divides them by k.
    cut_columns = np.minimum(ks, ids.shape[1]) - 1
    for name in RANKING_METRICS:
        values = metric_at_every_k(name, hits, n_relevant)[:, cut_columns]
        if name == "precision":
            values = np.cumsum(hits, axis=1, dtype=np.int64)[:, cut_columns] / np.asarray(ks, np.float64)
        for j, cut in enumerate(ks):
            per_user[f"{name}@{cut}"] = values[:, j]
    per_user = pd.DataFrame(per_user)
    metric_names = [f"{name}@{cut}" for name in RANKING_METRICS for cut in ks]
    table = per_user[metric_names].to_numpy(dtype=np.float64)

    summary = dict(zip(metric_names, map(float, table.mean(axis=0))))
    if candidates is None:
        coverage = coverage_at_every_k(ids, test.n_items)
    else:   # distinct recommended items over the candidates (as positions among them), in [0, 1]
        coverage = coverage_at_every_k(np.where(ids >= 0, np.searchsorted(candidates, ids), -1),
                                       len(candidates))
    coverage.flags.writeable = False
    summary.update({f"coverage@{cut}": float(coverage[column]) for cut, column in zip(ks, cut_columns)})
    if rating is not None:
        truth, predicted, pair_users = rating
        summary["rmse"] = rmse(truth, predicted)
        summary["mae"] = mae(truth, predicted)

    intervals = {}
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        low, high = percentile_interval(bootstrap_ratios(table, np.ones(len(users)), n_bootstrap, rng))
        intervals.update({name: (float(lo), float(hi)) for name, lo, hi in zip(metric_names, low, high)})
        if rating is not None:
            # Resample users, not pairs: a user's errors are correlated, and users are the unit
            # the other intervals resample.
            rated, pair_user = np.unique(pair_users, return_inverse=True)
            error = predicted - truth
            sums = np.stack([np.bincount(pair_user, weights=error ** 2, minlength=rated.size),
                             np.bincount(pair_user, weights=np.abs(error), minlength=rated.size)], axis=1)
            counts = np.bincount(pair_user, minlength=rated.size).astype(np.float64)
            replicates = bootstrap_ratios(sums, counts, n_bootstrap, rng)
            replicates[:, 0] = np.sqrt(replicates[:, 0])
            low, high = percentile_interval(replicates)
            intervals["rmse"] = (float(low[0]), float(high[0]))
            intervals["mae"] = (float(low[1]), float(high[1]))

    return EvaluationReport(summary=summary, per_user=per_user, n_evaluated=int(len(users)),
                            n_skipped=int(n_skipped), k=ks, intervals=intervals,
                            relevance_threshold=threshold, n_bootstrap=n_bootstrap, seed=seed,
                            test_fingerprint=test.fingerprint(), _hits=hits, _coverage=coverage,
                            candidates=None if candidates is None else test.item_ids[candidates])


def _no_relevant_error(n_considered: int, threshold, candidates) -> ReclabError:
    rule = "a test interaction" if threshold is None else f"a test rating >= {threshold}"
    among = "" if candidates is None else f" of one of the {len(candidates)} candidate items"
    check = "relevance_threshold" if candidates is None else "relevance_threshold and candidates"
    return ReclabError(f"none of the {n_considered} users considered has {rule}{among}, so there "
                       f"is nothing to evaluate; check the test split and {check}")


# -- public entry points ----------------------------------------------------------------------
def evaluate(model, train: Interactions, test: Interactions, k=(5, 10, 20), relevance_threshold=None,
             users=None, batch_size: int = 2048, n_bootstrap: int = 1000, seed: int = 0,
             candidates=None) -> EvaluationReport:
    """Evaluate a fitted model's top-K lists (and ratings) on a held-out test split.

    Parameters
    ----------
    model : fitted reclab model
        Needs ``score_items(users) -> (len(users), n_items)`` scores. When it predicts ratings
        (``model.predicts_ratings`` is True, see :class:`reclab.models.Recommender`) and the test
        split holds ratings (is not implicit), ``predict(users, items)`` also gives rmse / mae.
    train : Interactions
        What the model was fitted on; these items are not candidates for their user.
    test : Interactions
        Held-out interactions over the same users and items (same ids, same shape).
    k : int or sequence of int
        Cutoffs, each >= 1; lists of length ``max(k)`` are ranked once and cut.
    relevance_threshold : float, optional
        Only test interactions rated at or above it are relevant; default all are.
    users : array of int, optional
        User indices to evaluate; default every user. Users without a relevant item are skipped
        and counted.
    batch_size : int
        Users scored at once; memory is about ``batch_size * n_items * 4`` bytes of scores.
    n_bootstrap : int
        Bootstrap replicates for the intervals (0 skips them).
    seed : int
        Seed of the bootstrap and of the tie-breaking; the same seed gives the same lists and
        intervals.
    candidates : array-like of original item ids, or boolean mask over the items, optional
        Rank only these items (the cold-start protocol ranks the cold items only, see
        :func:`reclab.split.cold_items`). Only the test items among them are relevant: recall
        divides by those, and a user with none is skipped and counted, as a user without a
        relevant item. The report's ``candidates`` lists them. Default: every item.

    Returns
    -------
    EvaluationReport

    Notes
    -----
    Lists are ``model.recommend``'s (:func:`reclab.ranking.top_n`) but for ties in score, broken
    at random (module notes). A user with fewer than ``max(k)`` candidates gets a list padded with
    -1 (never a hit; precision@K still divides by K). Memory is O(batch_size * n_items + n_users *
    max(k)); nothing is O(n_users * n_items).

    Examples
    --------
    >>> report = rl.evaluate(model, train, test, k=(5, 10))          # doctest: +SKIP
    >>> report.summary["ndcg@10"], report.intervals["ndcg@10"]        # doctest: +SKIP
    """
    train = check_interactions(train, "train")
    test = check_interactions(test, "test")
    if not callable(getattr(model, "score_items", None)):
        raise ReclabError(f"model must have a score_items(users) method, got {type(model).__name__}")
    check_held_out(model, train, test)
    ks = check_cutoffs(k)
    threshold = check_threshold(relevance_threshold)
    considered = _check_users(users, test.n_users)
    batch_size = check_int("batch_size", batch_size, low=1)
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, low=0)
    seed = check_int("seed", seed, low=0)
    candidates = _check_candidates(candidates, test)

    allowed = None if candidates is None else candidate_mask(candidates, test.n_items)
    relevant = _relevant(test, threshold, allowed)
    has_relevant = np.diff(relevant.indptr)[considered] > 0
    evaluated = considered[has_relevant]
    if evaluated.size == 0:
        raise _no_relevant_error(considered.size, threshold, candidates)

    # A list holds each item at most once: ranks beyond the catalog would only be padding, so
    # they are never computed (k=10**6 would otherwise allocate users x 10**6 first).
    width = min(ks[-1], test.n_items)
    ids = np.empty((evaluated.size, width), dtype=np.int64)
    for start in range(0, evaluated.size, batch_size):
        batch = evaluated[start:start + batch_size]
        scores = model.score_items(batch)
        if np.shape(scores) != (batch.size, test.n_items):
            raise ReclabError(f"{type(model).__name__}.score_items returned shape {np.shape(scores)} for "
                              f"{batch.size} users; expected ({batch.size}, {test.n_items}). Was the "
                              f"model fitted on this train split?")
        ids[start:start + batch.size] = _ranked(scores, width, train.matrix[batch], allowed, batch, seed)

    rating = _rating_errors(model, test, considered, allowed) if _predicts_ratings(model) and not test.implicit else None
    return _report(evaluated, ids, relevant, considered.size - evaluated.size, ks, test, threshold,
                   n_bootstrap, seed, rating, candidates)


def cold_candidates(train: Interactions, test: Interactions, max_train: int = 0,
                    allow_empty: bool = False, relevance_threshold=None) -> np.ndarray:
    """Original ids of the test items with at most ``max_train`` training interactions.

    With ``max_train=0`` on a :func:`reclab.split.cold_items` split: the cold items, the candidate
    set of the cold-start protocol (``evaluate(..., candidates=cold_candidates(train, test))``).
    With a small ``max_train`` on any split: the items with few training interactions, whose
    metrics say how a model does on the long tail. When there is no such item, or none of them
    is relevant to a test user (rated >= ``relevance_threshold``, the one given to ``evaluate``),
    an error, or with ``allow_empty=True`` an empty array (small or dense data may have no long
    tail).
    """
    train = check_interactions(train, "train")
    test = check_interactions(test, "test")
    max_train = check_int("max_train", max_train, low=0)
    threshold = check_threshold(relevance_threshold)
    chosen = (train.item_counts() <= max_train) & (test.item_counts() > 0)
    relevant = np.bincount(_relevant(test, threshold, None).indices, minlength=test.n_items) > 0
    if not (chosen & relevant).any():
        if allow_empty:
            return test.item_ids[:0]
        rule = "" if threshold is None else f" and a test rating >= {threshold}"
        raise ReclabError(f"no test item has at most {max_train} training interactions{rule}; "
                          f"raise max_train")
    return test.item_ids[chosen]


def new_user_reports(models: dict, train: Interactions, test: Interactions, **options) -> dict:
    """``{name: evaluate(model, train, test, users=new users, **options)}`` for each fitted model:
    the test users without training interactions (:func:`reclab.split.new_users`) apart.

    Empty when there are none, when every test user is one (a :func:`reclab.split.cold_users`
    test: the whole report is theirs already), or when none of them has a relevant test item.
    On a :func:`reclab.split.temporal` split many test users are new (45-76% on the synthetic
    data and MovieLens), and a collaborative model ranks them at about chance; this says how much
    of its score comes from the others.
    """
    from reclab.split import new_users

    if "users" in options:   # they are the new users: evaluate got users= twice (a TypeError)
        raise ReclabError("new_user_reports evaluates the test users without training interactions; "
                          "it takes no users= (call evaluate(..., users=...) for others)")
    new = new_users(check_interactions(train, "train"), check_interactions(test, "test"))
    tested = np.count_nonzero(test.user_counts())
    candidates = _check_candidates(options.get("candidates"), test)
    allowed = None if candidates is None else candidate_mask(candidates, test.n_items)
    relevant = np.diff(_relevant(test, check_threshold(options.get("relevance_threshold")), allowed).indptr)
    if new.size == 0 or new.size == tested or not relevant[new].any():
        return {}
    return {name: evaluate(model, train, test, users=new, **options) for name, model in models.items()}


def ranking_metrics(users, ids, test: Interactions, k=(5, 10, 20), relevance_threshold=None,
                    n_bootstrap: int = 1000, seed: int = 0) -> EvaluationReport:
    """Evaluate top-K lists made elsewhere (for example by Spark) against a test split.

    The lower-level entry behind :func:`evaluate`: same metrics, same report, without rmse / mae.

    Parameters
    ----------
    users : array of int, shape (m,)
        User indices (of ``test``), distinct.
    ids : array of int, shape (m, L), L >= max(k)
        Each user's list of item indices, best first, with seen (training) items already left out;
        -1 pads lists shorter than L. Only the first ``max(k)`` columns are used.
    test : Interactions
    k, relevance_threshold, n_bootstrap, seed
        As in :func:`evaluate`. Users without a relevant item are skipped and counted.

    Returns
    -------
    EvaluationReport
    """
    test = check_interactions(test, "test")
    ks = check_cutoffs(k)
    threshold = check_threshold(relevance_threshold)
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, low=0)
    seed = check_int("seed", seed, low=0)
    raw_users = np.asarray(users)
    considered = _check_users(users, test.n_users)
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[0] != raw_users.size or (ids.size and ids.dtype.kind not in "iu"):
        raise ReclabError(f"ids must be integers of shape ({raw_users.size}, L), one list per user, "
                          f"got {ids.dtype} {ids.shape}")
    if ids.shape[1] < ks[-1]:
        raise ReclabError(f"ids has {ids.shape[1]} columns but k={ks[-1]} needs at least {ks[-1]}; "
                          f"pad short lists with -1")
    ids = ids[np.argsort(raw_users, kind="stable"), :ks[-1]].astype(np.int64)  # rows follow sorted users
    if ids.size and (ids.min() < -1 or ids.max() >= test.n_items):
        raise ReclabError(f"ids must be item indices in [0, {test.n_items}) or -1 for padding, "
                          f"got values in [{ids.min()}, {ids.max()}]")
    ordered = np.sort(ids, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if repeated.any():
        row = int(np.flatnonzero(repeated.any(axis=1))[0])
        raise ReclabError(f"the list of user {considered[row]} repeats an item; each item may appear once")

    relevant = _relevant(test, threshold, None)
    has_relevant = np.diff(relevant.indptr)[considered] > 0
    if not has_relevant.any():
        raise _no_relevant_error(considered.size, threshold, None)
    return _report(considered[has_relevant], ids[has_relevant], relevant, int((~has_relevant).sum()),
                   ks, test, threshold, n_bootstrap, seed)


def compare(report_a: EvaluationReport, report_b: EvaluationReport, metric: str = "precision@10",
            n_bootstrap: int = 1000, seed: int = 0) -> Comparison:
    """Paired comparison of two reports on the same test split: is B better than A?

    Parameters
    ----------
    report_a, report_b : EvaluationReport
        Evaluations of two models on the same test split with the same relevance threshold and
        candidates.
    metric : str
        A per-user metric in both reports, for example ``"ndcg@10"``.
    n_bootstrap : int
        Paired bootstrap replicates (users resampled, both models' values kept together), >= 1.
    seed : int

    Returns
    -------
    Comparison
        ``difference = mean_b - mean_a`` over the users evaluated in both reports, its 95%
        bootstrap interval and the p-value of the two-sided paired sign-flip test of it.
    """
    for name, report in (("report_a", report_a), ("report_b", report_b)):
        if not isinstance(report, EvaluationReport):
            raise ReclabError(f"{name} must be an EvaluationReport, got {type(report).__name__}")
        if metric not in report.per_user.columns or metric in ("user", "user_id", "n_relevant"):
            choices = [c for c in report.per_user.columns if "@" in c]
            raise ReclabError(f"{metric!r} is not a per-user metric of {name}; choose from {choices}")
    if report_a.test_fingerprint != report_b.test_fingerprint \
            or report_a.relevance_threshold != report_b.relevance_threshold:
        raise ReclabError("the reports were made on different test splits or relevance thresholds; "
                          "a paired comparison needs the same test split and threshold")
    ranked = [None if report.candidates is None else np.sort(report.candidates)
              for report in (report_a, report_b)]
    if (ranked[0] is None) != (ranked[1] is None) or (ranked[0] is not None
                                                      and not np.array_equal(*ranked)):
        raise ReclabError("the reports ranked different candidate items (evaluate's candidates=); a "
                          "paired comparison needs the same candidates")
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, low=1)
    seed = check_int("seed", seed, low=0)
    users_a = report_a.per_user["user"].to_numpy()
    users_b = report_b.per_user["user"].to_numpy()
    _, in_a, in_b = np.intersect1d(users_a, users_b, assume_unique=True, return_indices=True)
    if in_a.size == 0:
        raise ReclabError("the reports have no evaluated user in common; nothing to pair")
    values_a = report_a.per_user[metric].to_numpy(dtype=np.float64)[in_a]
    values_b = report_b.per_user[metric].to_numpy(dtype=np.float64)[in_b]
    difference = values_b - values_a
    replicates = bootstrap_ratios(difference[:, None], np.ones(difference.size), n_bootstrap,
                                  np.random.default_rng(seed))
    low, high = percentile_interval(replicates)
    p_value = sign_flip_p_value(difference, np.random.default_rng([seed, 1]))
    return Comparison(metric=metric, mean_a=float(values_a.mean()), mean_b=float(values_b.mean()),
                      difference=float(difference.mean()), ci_low=float(low[0]), ci_high=float(high[0]),
                      p_value=p_value, n_users=int(in_a.size))
