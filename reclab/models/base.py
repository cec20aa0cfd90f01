"""The model contract: one base class for every recommender, one for factor models.

Every reclab model follows the scikit-learn estimator contract: ``__init__`` only stores its
keyword arguments, ``fit`` validates them and the data, and learned state lives in attributes whose
names end in ``_`` (``user_factors_``, ``item_bias_``) that never exist before ``fit``.

What is shared lives here, once: parameter handling, user/item validation (the one place where
unknown users and items are handled), top-N recommendation with seen-item filtering, item
similarities, rating prediction with clipping, fit progress reporting, and saving (the file
format and ``load`` are in :mod:`reclab.models.persistence`).

Writing a model
---------------
A subclass implements only how it learns and scores:

- ``__init__(self, a=1, b=0.1)``: store each argument under its own name, nothing else.
- ``_validate_params(self)``: check parameters with :func:`check_int`, :func:`check_float`, ... .
- ``_fit(self, train, report)``: learn from ``train`` (an :class:`~reclab.data.Interactions`) and
  set attributes ending in ``_``. ``fit`` has already set ``n_users_``, ``n_items_``, ``seen_``
  (and ``rating_range_`` for rating models). Iterative models call ``report(iteration, loss)``
  after each iteration; ``report.wants_loss`` tells whether anyone will look at the loss. A model
  whose iterations run in one opaque step (SparkALS) sets ``reports_each_iteration = False`` and
  calls ``report(iterations, loss)`` once, at the end: no made-up per-iteration points.
- ``_score(self, users)``: float32 scores (len(users), n_items) for validated user indices.
- optionally ``_item_similarities(self, items)`` (enables ``similar_items``/``item_similarity``)
  and, with ``predicts_ratings = True``, ``_predict_pairs(self, users, items)``.

:class:`FactorModel` implements ``_score``, ``_item_similarities`` and ``_predict_pairs`` from
``user_factors_`` / ``item_factors_`` (and, with ``_learns_biases = True``, ``global_mean_``,
``user_bias_``, ``item_bias_``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

# Re-exported: model authors check their parameters with these (see the module docstring).
from reclab._validate import check_bool, check_choice, check_float, check_indices, check_int, check_seed
from reclab.errors import ReclabError
from reclab.estimator import Estimator
from reclab.models._als_kernels import row_products
from reclab.models.persistence import load, register, registered_models, save_model
from reclab.ranking import candidate_mask, top_n

__all__ = ["Recommender", "FactorModel", "clone", "load", "registered_models", "interaction_matrix",
           "check_int", "check_float", "check_bool", "check_seed", "check_choice"]
# Users scored at once by recommend(): bounds the dense (batch, n_items) float32 score block
# (2048 x 27k items is ~220 MB).
_USER_BATCH = 2048
# Pairs predicted at once: bounds the (batch, factors) gathers in predict().
_PAIR_BATCH = 1 << 16
# Longest list recommend() / similar_items() pad beyond a small catalog (n=10 on 4 items is fine).
_MAX_PADDING = 1024

# -- fit progress -----------------------------------------------------------------------------------
class _Report:
    """Per-iteration reporting for ``fit``: times iterations, calls the callback, prints progress."""

    def __init__(self, name: str, callback, progress: bool):
        self.name = name
        self.callback = callback
        self.progress = progress
        self.wants_loss = callback is not None or progress
        self._last = time.perf_counter()

    def __call__(self, iteration: int, loss: float | None = None) -> None:
        now = time.perf_counter()
        seconds, self._last = now - self._last, now
        loss = None if loss is None else float(loss)
        if self.progress:
            shown = "" if loss is None else f", loss {loss:.6g}"
            print(f"{self.name} iteration {iteration}: {seconds:.3f} s{shown}", file=sys.stderr)
        if self.callback is not None:
            self.callback(iteration, seconds, loss)


def _check_train(train, owner: str):
    from reclab.data import Interactions  # here, not at import time: data imports nothing of ours

    if not isinstance(train, Interactions):
        raise ReclabError(f"{owner}.fit expects a reclab Interactions, got {type(train).__name__}; "
                          "build one with Interactions.from_frame(df) or Interactions.from_matrix(csr)")
    if train.nnz == 0 or train.n_users == 0 or train.n_items == 0:
        raise ReclabError(f"{owner}.fit got empty training data ({train.n_users} users x "
                          f"{train.n_items} items, {train.nnz} interactions); it needs at least one")
    return train


class Recommender(Estimator):
    """Base class of every reclab model: fit on interactions, then score, rank and save.

    Users and items are internal indices (``0..n_users_-1``, ``0..n_items_-1``); an
    :class:`~reclab.data.Interactions` maps them to and from the original ids.

    Attributes
    ----------
    predicts_ratings : bool
        Class attribute: True for models whose ``predict`` returns ratings.
    n_users_, n_items_ : int
        Shape of the training data (set by ``fit``, like every attribute ending in ``_``).
    seen_ : scipy.sparse.csr_matrix, shape (n_users_, n_items_)
        The training interactions (a reference to ``train.matrix``, not a copy); its stored
        entries are the items ``recommend(filter_seen=True)`` leaves out.
    rating_range_ : numpy.ndarray of float32, shape (2,)
        Smallest and largest training rating; only for models with ``predicts_ratings``.

    Notes
    -----
    Unknown users and items are handled here and nowhere else: every public method validates its
    ``users``/``items`` argument, and any index that is negative, not an integer, or outside the
    training data's range raises :class:`~reclab.errors.ReclabError` (a ``ValueError``) naming the
    bad indices and the valid range. There is no silent fallback. A user inside the range that had
    no training interactions is *known*: it gets whatever its learned state gives (popularity
    order, bias-only or zero-factor scores). An item without training interactions (a brand-new
    title, or a cold item of :func:`reclab.split.cold_items`) is known too, but a collaborative
    model knows nothing about it, so it ranks such items *last*: ``score_items`` and
    ``recommend`` give them, per user, one score below that user's lowest score of an item with
    interactions (all equal, so they tie among themselves). Models that score items from their
    content features (``uses_item_features = True``: ``ContentKNN``, ``HybridALS``) rank them by
    those. Original ids are mapped to indices by ``Interactions.user_index`` / ``item_index``,
    which reject unknown ids in the same way.

    Examples
    --------
    >>> import reclab as rl                                            # doctest: +SKIP
    >>> data = rl.datasets.synthetic(seed=0)                           # doctest: +SKIP
    >>> train, test = rl.split.random_holdout(data, test_frac=0.2, seed=42)   # doctest: +SKIP
    >>> model = rl.models.ImplicitALS(factors=32, seed=0).fit(train)   # doctest: +SKIP
    >>> ids, scores = model.recommend([0, 1, 2], n=10)                 # doctest: +SKIP
    >>> ids.shape                                                      # doctest: +SKIP
    (3, 10)
    >>> model.save("als.npz"); model = rl.models.load("als.npz")       # doctest: +SKIP
    """

    #: True for models whose ``predict`` returns ratings on the training scale.
    predicts_ratings = False
    #: True for models that score items from ``item_features`` (so items without training
    #: interactions are scored, not ranked last; see Notes).
    uses_item_features = False
    #: True for models that rank items for a user without training interactions (a new
    #: subscriber, a user of :func:`reclab.split.cold_users`' test) better than chance: by
    #: popularity, item biases or feature-mapped factors. The others give such a user one score
    #: for every item.
    ranks_new_users = False
    #: False for iterative models that cannot observe their iterations (SparkALS runs them all in
    #: one Spark job): ``fit`` then reports once, after the last iteration (see ``fit``).
    reports_each_iteration = True
    # Learned arrays named user_* / item_* whose rows are not one per user / item (load checks
    # the others' shapes against n_users_ / n_items_).
    _not_per_row: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Only concrete models (those that learn something) can be saved, so only they are loadable.
        if not cls.__name__.startswith("_") and cls._fit is not Recommender._fit:
            register(cls)

    def check_params(self) -> "Recommender":
        """Check every parameter now, as ``fit`` does first; return ``self``.

        Raises
        ------
        ReclabError
            Naming the first invalid parameter (a parameter file's is refused before its pipeline
            starts: :mod:`reclab.config.checks`).
        """
        self._validate_params()
        return self

    def _validate_params(self) -> None:
        """Check every parameter (called by ``fit``); raise ``ReclabError`` naming a bad one."""

    def _learned_shapes(self, learned: dict, n_users: int, n_items: int) -> dict:
        """The shape each learned array must have, by name, for ``n_users`` x ``n_items`` training
        data (checked by :func:`reclab.models.persistence.load`): ``seen_``, one row per user or
        item for arrays named ``user_*`` / ``item_*`` (except ``_not_per_row``), and
        ``rating_range_`` for rating models."""
        expected = {"seen_": (n_users, n_items)}
        for key, value in learned.items():
            # Per-user and per-item arrays have one row per user or item.
            if key in self._not_per_row:
                continue
            if key.startswith("user_") and hasattr(value, "shape"):
                expected[key] = (n_users,) + tuple(value.shape[1:])
            elif key.startswith("item_") and hasattr(value, "shape"):
                expected[key] = (n_items,) + tuple(value.shape[1:])
        if self.predicts_ratings:
            expected["rating_range_"] = (2,)
        return expected

    # -- learned state ---------------------------------------------------------------------------
    def _learned_names(self) -> list[str]:
        return sorted(name for name in vars(self) if name.endswith("_") and not name.startswith("_"))

    def _clear_learned(self) -> None:
        for name in self._learned_names():
            delattr(self, name)
        # Private caches derived from learned state (they end without "_") go too.
        for name in [name for name in vars(self) if name.startswith("_cache")]:
            delattr(self, name)

    def _check_fitted(self) -> None:
        if "n_items_" not in vars(self):
            raise ReclabError(f"{type(self).__name__} is not fitted; call fit(train) first")

    def _validate_users(self, users) -> np.ndarray:
        """User indices as 1-D int64, checked against the training data (see class docstring)."""
        self._check_fitted()
        return check_indices(users, self.n_users_, "user", type(self).__name__)

    def _validate_items(self, items) -> np.ndarray:
        """Item indices as 1-D int64, checked against the training data (see class docstring)."""
        self._check_fitted()
        return check_indices(items, self.n_items_, "item", type(self).__name__)

    def _check_length(self, n) -> int:
        """A list length ``n >= 1``; beyond ``max(n_items_, _MAX_PADDING)`` it is refused: the
        rest of such a list could only be padding, and an absurd length (``10**12``) would be
        allocated before anything else could fail."""
        n = check_int("n", n, low=1)
        if n > max(self.n_items_, _MAX_PADDING):
            raise ReclabError(f"n={n} is more than the {self.n_items_} items {type(self).__name__} was "
                              f"trained on; a list holds each item at most once (n up to "
                              f"{max(self.n_items_, _MAX_PADDING)} is accepted, padded with -1 beyond "
                              f"{self.n_items_})")
        return n

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, train, callback=None, progress: bool = False) -> "Recommender":
        """Learn from training interactions; return ``self``.

        Parameters
        ----------
        train : reclab.Interactions
            Users x items training data (ratings, or 1.0 for implicit feedback); not empty.
        callback : callable, optional
            For iterative models, called after each iteration as ``callback(iteration, seconds,
            loss)``: ``iteration`` counts from 1, ``seconds`` is that iteration's wall time,
            ``loss`` the training objective (float) or None when the model does not compute one.
            A model with ``reports_each_iteration = False`` calls it once, after its last
            iteration, with ``seconds`` the whole training time.
        progress : bool
            Print one line per iteration to stderr. Off by default.

        Returns
        -------
        self

        Raises
        ------
        ReclabError
            If ``train`` is not a non-empty ``Interactions`` or a parameter is invalid. A failed
            fit leaves the model unfitted (no partial learned state).
        """
        name = type(self).__name__
        # Before any check: a fit refused for a bad parameter must not leave the previous fit
        # serving (and being saved next to the new parameters).
        self._clear_learned()
        train = _check_train(train, name)
        self.check_params()
        if callback is not None and not callable(callback):
            raise ReclabError(f"callback must be callable as callback(iteration, seconds, loss), "
                              f"got {callback!r}")
        progress = check_bool("progress", progress)
        try:
            self.n_users_, self.n_items_ = (int(size) for size in train.shape)
            self.seen_ = train.matrix
            if self.predicts_ratings:
                values = train.matrix.data
                self.rating_range_ = np.array([values.min(), values.max()], dtype=np.float32)
            self._fit(train, _Report(name, callback, progress))
        except BaseException:
            self._clear_learned()
            raise
        return self

    def _fit(self, train, report) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _fit(train, report)")

    # -- scoring and ranking -----------------------------------------------------------------------
    def score_items(self, users) -> np.ndarray:
        """Raw scores of every item for some users (higher = better; seen items NOT filtered).

        Parameters
        ----------
        users : int or array-like of int, shape (m,)
            User indices.

        Returns
        -------
        numpy.ndarray of float32, shape (m, n_items_)
            One row per user (a scalar user gives shape (1, n_items_)).
        """
        users = self._validate_users(users)
        return self._ranking_scores(users)

    def _ranked_last(self) -> np.ndarray | None:
        """Mask of the items ranked last, those without training interactions (class Notes); None
        when the rule moves nothing: a model scoring item features ranks them itself, and no
        item, or every item, lacks interactions. ``reclab.spark.evaluate`` ranks by it too."""
        if self.uses_item_features:
            return None
        cache = vars(self).get("_cache_unrated")
        if cache is None or cache[0] is not self.seen_:
            cache = (self.seen_, np.bincount(self.seen_.indices, minlength=self.n_items_) == 0)
            self._cache_unrated = cache
        unrated = cache[1]
        return None if not unrated.any() or unrated.all() else unrated

    def _ranking_scores(self, users: np.ndarray) -> np.ndarray:
        """``_score`` as float32, with items without training interactions ranked last (class Notes)."""
        scores = np.asarray(self._score(users), dtype=np.float32)
        unrated = self._ranked_last()
        if unrated is None:
            return scores
        if not scores.flags.writeable or scores.base is not None:
            scores = scores.copy()
        lowest = scores[:, ~unrated].min(axis=1)
        # Strictly below the lowest rated item whatever the scale (float32 subtraction of 1 from a
        # huge score would be a no-op).
        scores[:, unrated] = (lowest - np.maximum(1.0, np.abs(lowest)))[:, None]
        return scores

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _score(users)")

    def recommend(self, users, n: int = 10, filter_seen: bool = True, candidates=None):
        """Top-``n`` items for one or many users.

        Parameters
        ----------
        users : int or array-like of int, shape (m,)
            User indices.
        n : int
            List length, >= 1. When fewer than ``n`` candidates remain the tail is padded with
            item ``-1`` and score ``-inf``. A length beyond both the catalog and 1024 is refused.
        filter_seen : bool
            Leave out each user's training items (``seen_``).
        candidates : array-like of int or bool, optional
            Allowed items for every user: item indices or a boolean mask over items.

        Returns
        -------
        ids : numpy.ndarray of int64, shape (m, n) (or (n,) for a scalar user)
            Item indices, best first; equal scores are ordered by lower item index.
        scores : numpy.ndarray of float32, same shape
            The model's scores of those items (see ``score_items``).
        """
        scalar = np.ndim(users) == 0
        users = self._validate_users(users)
        n = self._check_length(n)
        filter_seen = check_bool("filter_seen", filter_seen)
        if candidates is not None and np.asarray(candidates).dtype != bool:
            candidates = self._validate_items(candidates)   # names bad indices like everywhere else
        candidates = candidate_mask(candidates, self.n_items_)
        ids = np.empty((users.size, n), dtype=np.int64)
        scores = np.empty((users.size, n), dtype=np.float32)
        for start in range(0, users.size, _USER_BATCH):
            batch = users[start:start + _USER_BATCH]
            exclude = self.seen_[batch] if filter_seen else None
            block = self._ranking_scores(batch)
            ids[start:start + batch.size], scores[start:start + batch.size] = top_n(
                block, n, exclude=exclude, candidates=candidates)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    # -- item similarities ---------------------------------------------------------------------------
    def _item_similarities(self, items: np.ndarray) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} has no item similarities; use ItemKNN or a factor "
                        "model (SVD, ExplicitALS, ImplicitALS)")

    def _similarities(self, items: np.ndarray) -> np.ndarray:
        """``_item_similarities`` as float32 within [-1, 1]: a cosine of float32 vectors can
        round to just above 1 (1.0000001 for two items with the same ratings)."""
        return np.clip(np.asarray(self._item_similarities(items), dtype=np.float32), -1.0, 1.0)

    def similar_items(self, items, n: int = 10):
        """The ``n`` items most similar to each given item, the item itself excluded.

        Similarity is the model's own (cosine of item factors for factor models, cosine of
        rating columns for ItemKNN), in [-1, 1].

        Parameters
        ----------
        items : int or array-like of int, shape (m,)
            Item indices.
        n : int
            List length, >= 1 (padded with ``-1`` / ``-inf`` beyond the catalog; a length beyond
            both the catalog and 1024 is refused).

        Returns
        -------
        ids : numpy.ndarray of int64, shape (m, n) (or (n,) for a scalar item)
        scores : numpy.ndarray of float32, same shape
            Similarities, non-increasing; ties ordered by lower item index.
        """
        scalar = np.ndim(items) == 0
        items = self._validate_items(items)
        n = self._check_length(n)
        ids = np.empty((items.size, n), dtype=np.int64)
        scores = np.empty((items.size, n), dtype=np.float32)
        for start in range(0, items.size, _USER_BATCH):
            batch = items[start:start + _USER_BATCH]
            itself = sp.csr_matrix((np.ones(batch.size, np.float32), batch, np.arange(batch.size + 1)),
                                   shape=(batch.size, self.n_items_))
            block = self._similarities(batch)
            ids[start:start + batch.size], scores[start:start + batch.size] = top_n(
                block, n, exclude=itself)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def item_similarity(self, item: int, others) -> np.ndarray:
        """Similarity of one item to each of ``others`` (float32, shape (len(others),)).

        The same similarity as :meth:`similar_items`; used by ``reclab.postprocess`` to explain
        a recommendation ("because you watched ...").
        """
        if np.ndim(item) != 0:
            raise ReclabError(f"item must be a single item index, got shape {np.shape(item)}")
        item = self._validate_items(item)
        others = self._validate_items(others)
        return self._similarities(item)[0, others]

    # -- rating prediction ---------------------------------------------------------------------------
    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, clipped to the training rating range.

        Parameters
        ----------
        users, items : int or array-like of int
            Pairs as two aligned index arrays of the same length (a scalar is broadcast).

        Returns
        -------
        numpy.ndarray of float32
            One rating per pair, in ``[rating_range_[0], rating_range_[1]]``; shape of the
            broadcast inputs (a scalar for two scalars).

        Raises
        ------
        TypeError
            If the model does not predict ratings (``predicts_ratings`` is False).
        """
        if not self.predicts_ratings:
            raise TypeError(f"{type(self).__name__} does not predict ratings; use recommend() "
                            "(rating models: Bias, SVD, ExplicitALS)")
        scalar = np.ndim(users) == 0 and np.ndim(items) == 0
        users = self._validate_users(users)
        items = self._validate_items(items)
        if users.size != items.size:
            if users.size == 1:
                users = np.repeat(users, items.size)
            elif items.size == 1:
                items = np.repeat(items, users.size)
            else:
                raise ReclabError(f"users and items must have the same length (one pair each), got "
                                  f"{users.size} users and {items.size} items")
        out = np.empty(users.size, dtype=np.float32)
        for start in range(0, users.size, _PAIR_BATCH):
            stop = start + _PAIR_BATCH
            out[start:stop] = self._predict_pairs(users[start:stop], items[start:stop])
        np.clip(out, self.rating_range_[0], self.rating_range_[1], out=out)
        return out[0] if scalar else out

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _predict_pairs(users, items)")

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the fitted model to one ``.npz`` file (atomically) and return its path.

        The file holds every learned attribute as arrays (sparse ones as ``name.data``,
        ``name.indices``, ``name.indptr``, ``name.shape``) and a ``__meta__`` JSON entry with the
        format, class, parameters, reclab version and a sha256 of everything else, which
        :func:`load` verifies. The file is written at exactly ``path`` (no suffix is added);
        its folder must exist (``ReclabError`` otherwise). Parameters made invalid after the fit
        (``set_params``) are refused: :func:`load` would refuse the file.
        """
        self._check_fitted()
        self.check_params()
        return save_model(self, path)


def clone(model: Recommender) -> Recommender:
    """A new, unfitted model of the same class with the same parameters."""
    if not isinstance(model, Recommender):
        raise ReclabError(f"clone expects a reclab model, got {type(model).__name__}")
    return type(model)(**model.get_params())


def interaction_matrix(matrix: sp.csr_matrix, binarize: bool = True, dtype=np.float64) -> sp.csr_matrix:
    """``X`` as ranking models read the training data: the same sparsity as ``matrix`` (users x
    items CSR), every stored entry 1.0 with ``binarize`` or its value (the rating) otherwise, in
    ``dtype``. A new matrix; ``matrix`` is not changed."""
    values = np.ones(matrix.nnz, dtype=dtype) if binarize else matrix.data.astype(dtype)
    return sp.csr_matrix((values, matrix.indices, matrix.indptr), shape=matrix.shape)


def _row_products(rows: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``rows @ other.T`` in float32, each output row to the last bit independent of how many
    rows are computed (:func:`reclab.models._als_kernels.row_products`): ``recommend(u)`` and
    ``recommend([..., u, ...])`` agree on every processor."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    out = np.zeros((rows.shape[0], other.shape[0]), dtype=np.float32)
    row_products(rows, np.ascontiguousarray(other.T, dtype=np.float32), out)
    return out


class FactorModel(Recommender):
    """Base for latent factor models: ``score(u, i) = p_u . q_i`` (+ item bias).

    Subclasses learn

    - ``user_factors_`` : float32 (n_users_, factors), ``p_u``
    - ``item_factors_`` : float32 (n_items_, factors), ``q_i``

    and, when the class sets ``_learns_biases = True``, the rating-scale baseline
    ``global_mean_`` (float, mu), ``user_bias_`` (float32 (n_users_,), b_u) and ``item_bias_``
    (float32 (n_items_,), b_i). Then

    - ``predict(u, i) = mu + b_u + b_i + p_u . q_i`` (clipped to the training rating range),
    - ranking score ``score_items(u)[i] = b_i + p_u . q_i``: the predicted rating minus the terms
      constant for the user, so ranking by it ranks by predicted rating.

    ``similar_items`` and ``item_similarity`` use the cosine of item factors (an item with an
    all-zero factor vector has similarity 0 to everything).
    """

    _learns_biases = False

    def _learned_shapes(self, learned: dict, n_users: int, n_items: int) -> dict:
        expected = super()._learned_shapes(learned, n_users, n_items)
        if "item_factors_" in learned:
            expected["user_factors_"] = (n_users, learned["item_factors_"].shape[-1])
        return expected

    def _item_offset(self) -> np.ndarray | None:
        """Per-item term added to every user's scores, shape (n_items_,), or None."""
        return self.item_bias_ if self._learns_biases else None

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = _row_products(self.user_factors_[users], self.item_factors_)
        offset = self._item_offset()
        if offset is not None:
            scores += offset
        return scores

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        ratings = np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[items])
        if self._learns_biases:
            ratings = ratings + (self.global_mean_ + self.user_bias_[users] + self.item_bias_[items])
        return ratings

    def _normalized_item_factors(self) -> np.ndarray:
        # Cached for repeated similar_items calls; keyed by the factor array itself so that a refit
        # (or load) can never serve a stale copy.
        cache = vars(self).get("_cache_normalized")
        if cache is None or cache[0] is not self.item_factors_:
            factors = self.item_factors_.astype(np.float32)
            norms = np.linalg.norm(factors, axis=1, keepdims=True)
            normalized = np.divide(factors, norms, out=np.zeros_like(factors), where=norms > 0)
            cache = (self.item_factors_, normalized)
            self._cache_normalized = cache
        return cache[1]

    def _item_similarities(self, items: np.ndarray) -> np.ndarray:
        normalized = self._normalized_item_factors()
        return _row_products(normalized[items], normalized)

