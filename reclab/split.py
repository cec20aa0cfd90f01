"""Train/test splits of interactions.

Every split masks stored entries with :meth:`Interactions.select`, so train and test keep the full
users x items id space (the same indices), never share an entry, and together hold every entry of
the input. Per-user splits hold out a share of each user's interactions but always leave at least
one in train, so that every user can be scored; a user with a single interaction stays in train.

Randomness comes from ``numpy.random.default_rng(seed)`` only: the same data and seed give the same
split, which :func:`fingerprint` identifies.
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

from reclab._validate import check_int, check_seed
from reclab.data import Interactions
from reclab.data.features import without_interaction_features
from reclab.errors import ReclabError

__all__ = ["METHODS", "cold_items", "cold_users", "fingerprint", "kfold", "leave_k_out", "new_users",
           "random_holdout", "temporal", "validation_folds"]

#: The splits that hold out one test part, ``(train, test) = method(data, ...)``: the pipeline's
#: ``split.method`` names one of them.
METHODS = ("random_holdout", "leave_k_out", "temporal", "cold_items", "cold_users")


# -- validation -------------------------------------------------------------------------------
def _check_data(data) -> None:
    if not isinstance(data, Interactions):
        raise ReclabError(f"a split needs an Interactions object, got {type(data).__name__}")


def _check_fraction(test_frac) -> float:
    if isinstance(test_frac, bool) or not isinstance(test_frac, numbers.Real) or not 0 < test_frac < 1:
        raise ReclabError(f"test_frac must be a number strictly between 0 and 1, got {test_frac!r}")
    return float(test_frac)


# -- shared machinery -------------------------------------------------------------------------
def _rows(data: Interactions) -> np.ndarray:
    """The user index of every stored entry, in CSR order."""
    return np.repeat(np.arange(data.n_users), data.user_counts())


def _rank_within_user(data: Interactions, rows: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Rank (0, 1, ...) of each entry among its user's entries, ordered by ``keys``.

    ``keys`` follow ``numpy.lexsort`` (the last is the primary key). One vectorized sort of all
    entries, with the user as the outermost key, replaces a loop over users.
    """
    order = np.lexsort(keys + (rows,))
    rank = np.empty(data.nnz, dtype=np.int64)
    # Sorting by user first leaves the users in CSR order, so the entry at sorted position p
    # belongs to user rows[p] and its rank is p minus where that user starts.
    rank[order] = np.arange(data.nnz) - data.matrix.indptr[rows]
    return rank


def _newest_first(data: Interactions, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each entry among its user's, newest first; equal times in a random order (``rng``):
    by item index, the higher ids went to test (on ML-100K the less popular films)."""
    return _rank_within_user(data, rows, rng.random(data.nnz), -data.timestamps)


def _held_out_count(counts: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``wanted`` clipped to [0, n - 1] per user, so every user keeps one entry in train."""
    return np.clip(wanted, 0, np.maximum(counts - 1, 0))


def _fraction_count(counts: np.ndarray, test_frac: float) -> np.ndarray:
    # Half rounds up (floor(x + 0.5)), not to even: 2.5 -> 3, the same for every n.
    return _held_out_count(counts, np.floor(test_frac * counts + 0.5).astype(np.int64))


def _split(data: Interactions, test_mask: np.ndarray) -> tuple[Interactions, Interactions]:
    return data.select(~test_mask), data.select(test_mask)


# -- splits -----------------------------------------------------------------------------------
def random_holdout(data: Interactions, test_frac: float = 0.2,
                   seed: int = 42) -> tuple[Interactions, Interactions]:
    """Hold out a random share of each user's interactions (per-user masking).

    A user with ``n >= 2`` interactions gets ``round(test_frac * n)`` of them, at random, in
    test (halves round up), clipped to ``[0, n - 1]`` so that at least one stays in train; a user
    with one interaction stays in train.

    Parameters
    ----------
    data : Interactions
    test_frac : float
        Share of each user's interactions held out, in (0, 1).
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    train, test : Interactions
        Same id space as ``data``, disjoint, together equal to ``data``.
    """
    _check_data(data)
    test_frac = _check_fraction(test_frac)
    rng = np.random.default_rng(check_seed(seed))
    rows = _rows(data)
    rank = _rank_within_user(data, rows, rng.random(data.nnz))
    return _split(data, rank < _fraction_count(data.user_counts(), test_frac)[rows])


def leave_k_out(data: Interactions, k: int = 5, seed: int = 42) -> tuple[Interactions, Interactions]:
    """Hold out ``k`` random interactions per user (fewer when the user has ``<= k``).

    A user with ``n`` interactions gets ``min(k, n - 1)`` in test, so at least one stays in train.

    Parameters
    ----------
    data : Interactions
    k : int
        Interactions held out per user, >= 1.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    train, test : Interactions
    """
    _check_data(data)
    k = check_int("k", k, low=1)
    rng = np.random.default_rng(check_seed(seed))
    rows = _rows(data)
    counts = data.user_counts()
    rank = _rank_within_user(data, rows, rng.random(data.nnz))
    return _split(data, rank < _held_out_count(counts, np.full_like(counts, k))[rows])


def temporal(data: Interactions, test_frac: float = 0.2, per_user: bool = False,
             seed: int = 42) -> tuple[Interactions, Interactions]:
    """Hold out the most recent interactions.

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    test_frac : float
        In (0, 1).
    per_user : bool
        False (default): one global cut at the ``1 - test_frac`` quantile of all timestamps;
        interactions strictly after it go to test (ties at the cut stay in train), so test is
        about ``test_frac`` of the data and users active only after the cut are in test only, as
        new users would be. True: each user's last ``round(test_frac * n)`` interactions go to test,
        clipped to ``[0, n - 1]`` as in :func:`random_holdout`; equal timestamps are ordered at
        random (``seed``).
    seed : int
        Seed of ``numpy.random.default_rng`` for the order of a user's equal timestamps
        (``per_user=True``): on ML-100K 500 of the 943 users have equal timestamps at their cut.
        Ordered by item index instead, the higher ids went to test, which on ML-100K are the less
        popular films: EASE's precision@10 was 0.169 against 0.176 (seed 42).

    Returns
    -------
    train, test : Interactions
    """
    _check_data(data)
    test_frac = _check_fraction(test_frac)
    rng = np.random.default_rng(check_seed(seed))
    if data.timestamps is None:
        raise ReclabError("temporal split needs timestamps, and this data has none; build it with "
                          "Interactions.from_frame(..., timestamp='<column>') or use random_holdout")
    times = data.timestamps
    if not per_user:
        cut = np.quantile(times, 1.0 - test_frac)
        test = times > cut
        if not test.any():
            raise ReclabError(f"temporal split put nothing in test: no timestamp is after the "
                              f"{1 - test_frac:.2f} quantile {cut!r} (too many equal timestamps); "
                              f"use per_user=True or random_holdout")
        return _split(data, test)
    rows = _rows(data)
    return _split(data, _newest_first(data, rows, rng) < _fraction_count(data.user_counts(), test_frac)[rows])


def kfold(data: Interactions, n_splits: int = 5,
          seed: int = 42) -> list[tuple[Interactions, Interactions]]:
    """Per-user stratified k-fold cross-validation.

    Each user's interactions are shuffled and dealt round-robin over the folds (starting at a
    random fold per user, so fold sizes stay balanced): every interaction is in exactly one test
    fold, and each fold holds about ``1 / n_splits`` of each user's interactions. A user with one
    interaction is never in a test fold. A user with ``n >= 2`` keeps at least one interaction in
    every training fold (a fold holds at most ``ceil(n / n_splits) <= n - 1`` of them).

    Parameters
    ----------
    data : Interactions
    n_splits : int
        Number of folds, >= 2.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    list of (train, test)
        ``n_splits`` pairs over the id space of ``data``.
    """
    _check_data(data)
    n_splits = check_int("n_splits", n_splits, low=2)
    rng = np.random.default_rng(check_seed(seed))
    rows = _rows(data)
    rank = _rank_within_user(data, rows, rng.random(data.nnz))
    offset = rng.integers(0, n_splits, data.n_users)
    fold = (rank + offset[rows]) % n_splits
    fold[data.user_counts()[rows] < 2] = -1
    return [_split(data, fold == f) for f in range(n_splits)]


def _cold(data: Interactions, test_frac: float, seed: int, role: str) -> tuple[Interactions, Interactions]:
    """Every interaction of a random ``test_frac`` of the users or items (``role``) goes to test."""
    _check_data(data)
    test_frac = _check_fraction(test_frac)
    rng = np.random.default_rng(check_seed(seed))
    counts = data.item_counts() if role == "item" else data.user_counts()
    # Only users (items) with interactions can be made cold: one without any (such as the cold ones
    # of an earlier split, when valid is held out of what test left) would make the split smaller
    # than test_frac, by a random amount. With every one active this is the same draw as over all.
    active = np.flatnonzero(counts)
    size = len(active)
    n_cold = int(np.floor(test_frac * size + 0.5))
    if not 1 <= n_cold < size:
        raise ReclabError(f"cold_{role}s with test_frac={test_frac} moves {n_cold} of {size} {role}s to "
                          f"test (of those with interactions); choose test_frac so that at least one "
                          f"{role} is cold and one is not")
    cold = np.zeros(len(counts), dtype=bool)
    cold[rng.permutation(active)[:n_cold]] = True
    held = cold[data.matrix.indices] if role == "item" else cold[_rows(data)]
    if role == "item":   # a new title has no user tags: train does not see the cold items' tags
        return _without_tags(data, cold).select(~held), data.select(held)
    return _split(data, held)


def _without_tags(data: Interactions, items: np.ndarray) -> Interactions:
    """``data`` with the features made from users' interactions dropped for ``items`` (a mask)."""
    if data.item_features is None:
        return data
    return data.with_features(without_interaction_features(data.item_features, data.item_feature_names,
                                                           items), data.item_feature_names)


def cold_items(data: Interactions, test_frac: float = 0.2,
               seed: int = 0) -> tuple[Interactions, Interactions]:
    """Cold-start items: every interaction of a random ``test_frac`` of the items goes to test.

    ``round(test_frac * n)`` items (halves round up), drawn uniformly from the ``n`` items with
    interactions (never one without, such as the cold items of an earlier split), become
    *cold*: train holds none of their interactions, test all of them (and nothing else). Train and
    test keep one id space, so the cold items stay in train's id space with no interactions, as a
    title added to the catalog after training would. Their ids are
    ``train.item_ids[train.item_counts() == 0]`` (with any item that had no interaction at all);
    the cold-start protocol ranks only them: ``evaluate(model, train, test, candidates=those ids)``.
    Their features made from users' interactions (``tag=...``,
    :data:`reclab.data.features.INTERACTION_GROUPS`) are dropped in train, which every model is
    fitted on: a new title has no user tags, and the held-out movies' tags came from the users
    whose ratings are held out. Test keeps them (no model is fitted on it), so that
    ``train.union(test)`` is ``data`` again (:meth:`~reclab.data.Interactions.union` takes an
    item's features from the side that holds its interactions).

    Parameters
    ----------
    data : Interactions
    test_frac : float
        Share of the items made cold, in (0, 1); at least one item must be cold and one warm.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    train, test : Interactions
        Same id space as ``data`` (features included), disjoint, together equal to ``data``.
    """
    return _cold(data, test_frac, seed, "item")


def cold_users(data: Interactions, test_frac: float = 0.2,
               seed: int = 0) -> tuple[Interactions, Interactions]:
    """Cold-start users: every interaction of a random ``test_frac`` of the users goes to test.

    As :func:`cold_items`, for users: the cold users keep their place (and their
    ``user_features``) in train's id space with no interactions, so only the models whose
    ``ranks_new_users`` is True rank items for them better than chance: by popularity, item
    biases (Bias, SVD, ExplicitALS) or factors mapped from their features, else the users' mean
    (HybridALS); the others give such a user one score for every item.
    """
    return _cold(data, test_frac, seed, "user")


def validation_folds(train: Interactions, valid: Interactions, n_folds: int = 3,
                     seed: int = 0) -> list[tuple[Interactions, Interactions]]:
    """``n_folds`` (fit, holdout) pairs over ``train + valid`` with disjoint, equally sized holdouts.

    Fold 0 is ``(train, valid)`` itself. Every other fold holds out what ``valid`` holds out, so
    that the mean score over the folds estimates the same quantity as ``valid`` alone, with less
    noise:

    - the most recent interactions (``valid`` from :func:`temporal`: every ``valid``
      interaction is at least as recent as every ``train`` one, or, per user, as the user's):
      fold ``j >= 1`` holds out the ``j``-th period before ``valid``'s, as many interactions as
      ``valid`` holds (per user with ``per_user=True``), and fits on the interactions before
      it only: a model fitted on the future would be scored on predicting the past (on ML-100K
      with ``temporal(per_user=True)``, EASE's precision@10 was 0.33 on such folds, 0.14 on
      ``valid``). These folds fit on less than ``train``;
    - per-user interactions (``valid`` from :func:`random_holdout`, :func:`leave_k_out`):
      fold ``j >= 1`` holds out, for each user, as many of the user's
      ``train`` interactions as ``valid`` holds for that user (``v_u``): those ranked
      ``(j - 1) v_u`` to ``j v_u - 1`` in a seeded per-user shuffle of ``train``. Every fold
      fits on as many interactions as ``train`` (fewer only for a user whose ``train`` runs out;
      a fold that would hold out less than half of what ``valid`` holds is refused);
    - whole users or items (``valid`` from :func:`cold_users` or :func:`cold_items`: none of its
      users, or items, has a ``train`` interaction): fold ``j >= 1`` holds out every
      interaction of as many other users (items) as ``valid`` has, the ``j``-th block of a
      seeded shuffle of those with ``train`` interactions. A per-user holdout would be empty
      for cold users and would hold warm items for cold ones. A fold's held-out items lose their
      features made from users' interactions (tags), as :func:`cold_items`' cold items do: with
      them, ContentKNN's precision@10 on ml-latest-small's folds 1 and 2 was 0.142 and 0.153,
      0.081 on ``valid``.

    Each fold but the temporal ones fits on every other interaction of ``train + valid``; the
    holdouts of all folds are disjoint.

    Parameters
    ----------
    train, valid : Interactions
        Disjoint, over the same users and items (as the splits here make them).
    n_folds : int
        >= 1; 1 returns ``[(train, valid)]``.
    seed : int
        Seed of ``numpy.random.default_rng`` for the shuffle.

    Returns
    -------
    list of (fit, holdout)
        ``fit`` and ``holdout`` of each fold are disjoint and, but for the temporal folds,
        together equal ``train + valid``.
    """
    _check_data(train)
    _check_data(valid)
    n_folds = check_int("n_folds", n_folds, low=1)
    rng = np.random.default_rng(check_seed(seed))
    folds = [(train, valid)]
    if n_folds == 1:
        return folds
    train.union(valid)   # refuses two splits that do not share their id space or overlap
    role = fold_role(train, valid)
    if role in ("time", "user time"):
        return folds + _earlier_folds(train, valid, n_folds, role, rng)
    if role is None:
        rows = _rows(train)
        rank = _rank_within_user(train, rows, rng.random(train.nnz))
        size = valid.user_counts()[rows]
        held_by_fold = [(rank >= (fold - 1) * size) & (rank < fold * size)
                        for fold in range(1, n_folds)]
        short = [fold for fold, held in enumerate(held_by_fold, 1)
                 if 2 * np.count_nonzero(held) < valid.nnz]
        if short:   # the users' train ran out: that fold would not estimate what valid does
            raise ReclabError(f"{n_folds} validation folds: fold {short[0]} would hold out "
                              f"{np.count_nonzero(held_by_fold[short[0] - 1])} interactions against "
                              f"valid's {valid.nnz}, as the users' training interactions run out "
                              f"(each fold holds out as many of a user's as valid does); use at most "
                              f"{short[0]} folds")
    else:
        counts, held_out = ((train.user_counts(), valid.user_counts()) if role == "user"
                            else (train.item_counts(), valid.item_counts()))
        n_cold = int(np.count_nonzero(held_out))
        warm = np.flatnonzero(counts)
        if len(warm) < n_cold * (n_folds - 1):
            raise ReclabError(f"{n_folds} validation folds of {n_cold} cold {role}s each need "
                              f"{n_cold * (n_folds - 1)} other {role}s with training interactions; "
                              f"train has {len(warm)}: use fewer folds")
        order = rng.permutation(warm)
        entity = _rows(train) if role == "user" else train.matrix.indices
        held_by_fold = [np.isin(entity, order[(fold - 1) * n_cold:fold * n_cold])
                        for fold in range(1, n_folds)]
    for held in held_by_fold:
        rest, holdout = _split(train, held)
        if role == "item":   # what the fold fits on lacks its cold items' tags, as cold_items' train does
            items = np.zeros(train.n_items, dtype=bool)
            items[train.matrix.indices[held]] = True
            rest = _without_tags(rest, items)
        folds.append((rest.union(valid), holdout))
    return folds


def fold_role(train: Interactions, valid: Interactions) -> str | None:
    """What the extra :func:`validation_folds` hold out, by the kind of ``valid``: ``"user"`` or
    ``"item"`` (whole users or items, :func:`cold_role`), ``"time"`` or ``"user time"`` (the
    periods before ``valid``'s, in all or per user: :func:`temporal`), None (interactions of
    each user, at random)."""
    return cold_role(train, valid) or _temporal_role(train, valid)


def _temporal_role(train: Interactions, valid: Interactions) -> str | None:
    """``"time"`` when ``valid`` holds what came after every ``train`` interaction (a global
    :func:`temporal` split), ``"user time"`` when each user's ``valid`` interactions came after
    the user's ``train`` ones (``temporal(per_user=True)``), else None.

    Some interaction must come strictly later than one it follows: when every time ties (one
    timestamp for all, or one per user), any split passes the test, and a random holdout's folds
    would fit on ever less data as a temporal split's do."""
    if train.timestamps is None or valid.timestamps is None or valid.nnz == 0 or train.nnz == 0:
        return None
    if valid.timestamps.min() >= train.timestamps.max() > train.timestamps.min() or (
            valid.timestamps.min() > train.timestamps.max()):
        return "time"
    latest = np.full(train.n_users, -np.inf)
    np.maximum.at(latest, _rows(train), train.timestamps.astype(np.float64))
    earliest = np.full(valid.n_users, np.inf)
    np.minimum.at(earliest, _rows(valid), valid.timestamps.astype(np.float64))
    both = np.isfinite(latest) & np.isfinite(earliest)
    later = np.all(earliest >= latest) and bool(np.any(earliest[both] > latest[both]))
    return "user time" if later else None


def _earlier_folds(train: Interactions, valid: Interactions, n_folds: int, role: str, rng) -> list:
    """Folds 1.. of a temporal ``valid``: each holds out the window of ``train`` just before the
    previous fold's (as many interactions as ``valid``: in all, or per user) and fits on what came
    before it, never on its future."""
    times = train.timestamps.astype(np.float64)
    if role == "time":   # newest first; equal times by position, as one stable order
        rank = np.empty(train.nnz, dtype=np.int64)
        rank[np.lexsort((-np.arange(train.nnz), -times))] = np.arange(train.nnz)
        size = np.full(train.nnz, valid.nnz)
    else:   # newest first within each user, as temporal orders them
        rows = _rows(train)
        rank = _newest_first(train, rows, rng)
        size = valid.user_counts()[rows]
    folds = []
    for fold in range(1, n_folds):
        held = (rank >= (fold - 1) * size) & (rank < fold * size)
        fit = train.select(rank >= fold * size)
        if 2 * np.count_nonzero(held) < valid.nnz or fit.nnz == 0:
            raise ReclabError(f"{n_folds} validation folds of a temporal split: fold {fold} would "
                              f"hold out {np.count_nonzero(held)} interactions against valid's "
                              f"{valid.nnz} (each fold holds out the period before the previous "
                              f"one's and fits on what came before it); use at most {fold} folds")
        folds.append((fit, train.select(held)))
    return folds


def cold_role(train: Interactions, valid: Interactions) -> str | None:
    """``"user"`` when no user of ``valid`` has a ``train`` interaction (a :func:`cold_users`
    split), ``"item"`` when no item of it has (:func:`cold_items`), else None: what the extra
    :func:`validation_folds` hold out (whole users, whole items, or interactions per user)."""
    if valid.nnz == 0:
        return None
    for role, in_train, in_valid in (("user", train.user_counts(), valid.user_counts()),
                                     ("item", train.item_counts(), valid.item_counts())):
        if not np.any(in_train[in_valid > 0]):
            return role
    return None


def new_users(train: Interactions, test: Interactions) -> np.ndarray:
    """Indices of the users with ``test`` interactions and none in ``train``: new subscribers, for
    whom a collaborative model has learned nothing. All of a :func:`cold_users` test; most of a
    :func:`temporal` one, whose late users rated nothing before the cut-off (64% of the test users
    of ML-100K's 80/20 temporal split, 76% of ml-latest-small's); none on per-user holdouts."""
    return np.flatnonzero((test.user_counts() > 0) & (train.user_counts() == 0))


def fingerprint(train: Interactions, test: Interactions) -> str:
    """A stable sha256 (hex) identifying a split: the same data and seed give the same value.

    Both sides must share one id space (as every split here produces).
    """
    for role, side in (("train", train), ("test", test)):
        if not isinstance(side, Interactions):
            raise ReclabError(f"{role} must be an Interactions object, got {type(side).__name__}")
    if train.shape != test.shape or not np.array_equal(train.user_ids, test.user_ids) \
            or not np.array_equal(train.item_ids, test.item_ids):
        raise ReclabError("train and test must share one id space (come from the same split); "
                          f"got shapes {train.shape} and {test.shape}")
    digest = hashlib.sha256(b"reclab-split-v1\x1e")
    digest.update(train.fingerprint().encode() + b"\x1e" + test.fingerprint().encode())
    return digest.hexdigest()
