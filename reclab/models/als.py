"""Alternating least squares factor models: implicit feedback (Hu et al.) and explicit ratings.

Both models alternate between solving every user's factors with the item factors fixed and every
item's factors with the user factors fixed; each half-sweep is a set of independent small ridge
regressions, run in parallel by the numba kernels of :mod:`reclab.models._als_kernels`.

Determinism: every row's solve is sequential and independent of the others, and the one sum over
rows (the Gram matrix) is taken in fixed blocks in a fixed order, so the same data, parameters
and seed give bit-identical factors for any ``num_threads`` on one machine.
"""

from __future__ import annotations

import contextlib
import warnings

import numba
import numpy as np
import scipy.sparse as sp

from reclab.models import _als_kernels as kernels
from reclab.models.base import (FactorModel, check_bool, check_choice, check_float, check_int,
                                check_seed)
from reclab.models.baseline import RatingBaseline

__all__ = ["ImplicitALS", "ExplicitALS"]

# Standard deviation of the initial factors, small as in `implicit`. The scale hardly matters: on
# ML-100k, 0.001 to 0.3 give ExplicitALS test RMSEs within 0.0004 of each other.
_INIT_SCALE = 0.01


@contextlib.contextmanager
def _numba_threads(num_threads: int):
    """Run numba parallel kernels on ``num_threads`` threads (0 = all), then restore the setting."""
    available = numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    numba.set_num_threads(available if num_threads == 0 else min(num_threads, available))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


class _Rows:
    """One orientation of the training matrix, in the dtypes the kernels are compiled for.

    ``indptr`` int64, ``indices`` int32 and one float array of per-entry values, plus the row
    chunks that balance the parallel sweep over long-tailed rows.
    """

    def __init__(self, matrix: sp.csr_matrix, values: np.ndarray, factors: int):
        # Writable too: numba compiles a separate kernel for read-only arrays (Interactions
        # hands out read-only ones), which would double the compile time.
        self.indptr = np.require(matrix.indptr, dtype=np.int64, requirements=["C", "W"])
        self.indices = np.require(matrix.indices, dtype=np.int32, requirements=["C", "W"])
        self.values = np.require(values, requirements=["C", "W"])
        self.counts = np.diff(self.indptr)
        self.bounds = kernels.row_chunks(self.indptr, factors)

    @classmethod
    def both(cls, matrix: sp.csr_matrix, values: np.ndarray, factors: int):
        """Users x items and items x users views of ``matrix`` with ``values`` as its entries."""
        by_user = sp.csr_matrix((values, matrix.indices, matrix.indptr), shape=matrix.shape)
        by_item = by_user.T.tocsr()
        by_item.sort_indices()
        return cls(by_user, by_user.data, factors), cls(by_item, by_item.data, factors)


def _init_factors(rng: np.random.Generator, rows: int, factors: int, scale: float, dtype):
    return (rng.standard_normal((rows, factors)) * scale).astype(dtype)


class ImplicitALS(FactorModel):
    """Implicit-feedback matrix factorization by alternating least squares (Hu, Koren & Volinsky).

    Every stored interaction counts as a positive observation: preference ``p_ui = 1`` with
    confidence ``c_ui = 1 + alpha``; every other (user, item) pair has ``p_ui = 0`` and
    ``c_ui = 1``. The factors minimize

    ``L = sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum_u |x_u|^2 + sum_i |y_i|^2)``

    over *all* pairs, and items are ranked by ``score(u, i) = x_u . y_i``.

    The rating value is deliberately not used as ``r_ui`` (``c_ui = 1 + alpha r_ui``): on
    MovieLens 100k (80/20 per-user random holdout, grid over factors, regularization and alpha)
    binary confidence reached precision@10 0.377 against 0.364 for rating-scaled confidence, and
    was better at the settings that suit each data set; a watched-but-disliked movie is still a
    strong signal of what a user watches.
    Stored entries with a value <= 0 are ignored (treated as unobserved), with a warning: negative
    values are residuals of normalized ratings, not interactions, and stored zeros (a 0/1 column)
    are interactions to everything else.

    Each iteration solves all users, then all items. A user's factors solve
    ``(Y^T Y + Y^T (C_u - I) Y + lambda I) x_u = Y^T C_u p_u``, where ``Y^T Y + lambda I`` is
    computed once per sweep and the correction only runs over the user's own items
    (O(nnz k) per sweep instead of O(n_users n_items k)). With ``use_cg`` (the default) the
    system is solved approximately by ``cg_steps`` conjugate-gradient steps warm-started from the
    previous factors (Takacs, Pilaszy & Tikk 2011, as ``implicit``'s ``least_squares_cg``), at
    O(nnz k cg_steps + (n_users + n_items) k^2 cg_steps) per iteration; otherwise exactly by
    Cholesky, at O(nnz k^2 + (n_users + n_items) k^3). Exact solves make the loss non-increasing;
    CG solves make it decrease in practice and reach the same quality at a fraction of the cost.

    Parameters
    ----------
    factors : int, >= 1
        Dimension ``k`` of the latent factors.
    regularization : float, >= 0
        ``lambda``, in the loss's units (squared confidence-weighted error summed over every
        user-item pair), so it does not scale with the number of a user's interactions. ``0`` is
        allowed and stays finite: a numerically singular exact solve (more factors than items
        can determine) gets the smallest diagonal jitter among about 1e-4, 1e-3, ... times its
        mean diagonal (2e-13, 2e-12, ... for float64) that lets Cholesky succeed, and CG stops
        at a direction of zero curvature.
    alpha : float, >= 0
        Extra confidence of an observed pair: ``c_ui = 1 + alpha``.
    iterations : int, >= 1
        Alternating sweeps (users then items).
    cg_steps : int, >= 1
        Conjugate-gradient steps per solve (with ``use_cg``).
    use_cg : bool
        Conjugate gradient (fast) instead of exact Cholesky solves.
    dtype : {"float32", "float64"}
        Floating type of the factors (and of the CG arithmetic).
    num_threads : int, >= 0
        Threads for the parallel sweeps; 0 means every thread numba was started with (more is
        capped at that). Results do not depend on it.
    seed : int, >= 0
        Seed of ``numpy.random.default_rng`` for the initial factors (normal, std 0.01).

    Attributes
    ----------
    user_factors_ : numpy.ndarray, shape (n_users_, factors)
        ``x_u`` (zero for a user without training interactions: the minimizer of ``L``).
    item_factors_ : numpy.ndarray, shape (n_items_, factors)
        ``y_i`` (zero for an item without training interactions).

    Notes
    -----
    The loss passed to ``callback`` is ``L`` divided by the total confidence
    ``sum_{u,i} c_ui = n_users n_items + alpha nnz`` (a weighted mean squared error plus the
    penalty), computed after each iteration in O(nnz k + (n_users + n_items) k^2) and only when
    a callback or progress output asks for it.

    Defaults were chosen on MovieLens 100k and ml-latest-small (80/20 per-user random holdout,
    precision@10 0.376 and 0.294 at the defaults; 0.377 and 0.309 at the best grid points). The
    regularization that works is far larger than ``implicit``'s default 0.01 because ``L`` sums
    over every pair (943 x 1682 pairs against 80k interactions), and a small ``alpha`` is best on
    rating data, where popularity carries much of the signal. Good settings lie on a ridge where
    ``regularization`` grows with ``alpha`` (about 20 at 1, 25-30 at 2); tune them together.

    References
    ----------
    Y. Hu, Y. Koren, C. Volinsky, "Collaborative Filtering for Implicit Feedback Datasets",
    ICDM 2008. G. Takacs, I. Pilaszy, D. Tikk, "Applications of the conjugate gradient method
    for implicit feedback collaborative filtering", RecSys 2011.

    Examples
    --------
    >>> model = ImplicitALS(factors=32, seed=0).fit(train)        # doctest: +SKIP
    >>> ids, scores = model.recommend([0, 1], n=10)                # doctest: +SKIP
    """

    def __init__(self, factors: int = 64, regularization: float = 20.0, alpha: float = 1.0,
                 iterations: int = 15, cg_steps: int = 3, use_cg: bool = True,
                 dtype: str = "float32", num_threads: int = 0, seed: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.use_cg = use_cg
        self.dtype = dtype
        self.num_threads = num_threads
        self.seed = seed

    def _validate_params(self) -> None:
        check_int("factors", self.factors, low=1, model=self)
        check_float("regularization", self.regularization, low=0.0, model=self)
        check_float("alpha", self.alpha, low=0.0, model=self)
        check_int("iterations", self.iterations, low=1, model=self)
        check_int("cg_steps", self.cg_steps, low=1, model=self)
        check_bool("use_cg", self.use_cg, model=self)
        check_choice("dtype", self.dtype, ("float32", "float64"), model=self)
        check_int("num_threads", self.num_threads, low=0, model=self)
        check_seed(self.seed, model=self)

    def _fit(self, train, report) -> None:
        dtype = np.dtype(self.dtype)
        k = int(self.factors)
        regularization = float(self.regularization)
        matrix = train.matrix
        if (matrix.data <= 0).any():
            ignored = int(np.count_nonzero(matrix.data <= 0))
            why = (("negative values look like residuals of normalized ratings, but it learns from "
                    "which items each user interacted with; fit it on the interactions themselves")
                   if (matrix.data < 0).any() else   # no count or rating is negative: residuals
                   ("a stored 0 (a 0/1 'liked' column) is no interaction to it, but still one to "
                    "the splits, Popularity and the evaluation: drop those rows, or set the "
                    "evaluation's relevance_threshold"))
            warnings.warn(f"{type(self).__name__} ignores the {ignored} of the {matrix.nnz} training "
                          f"interactions whose value is <= 0: {why}", stacklevel=3)
            matrix = matrix.copy()
            matrix.data[matrix.data <= 0] = 0
            matrix.eliminate_zeros()
        weight = np.full(matrix.nnz, self.alpha, dtype=dtype)   # c_ui - 1 on observed pairs
        users, items = _Rows.both(matrix, weight, k)
        confidence = weight + 1 if not self.use_cg else None   # c_ui, both orientations alike
        rng = np.random.default_rng(self.seed)
        user_factors = _init_factors(rng, train.n_users, k, _INIT_SCALE, dtype)
        item_factors = _init_factors(rng, train.n_items, k, _INIT_SCALE, dtype)
        total_confidence = (float(train.n_users) * float(train.n_items)
                            + float(weight.sum(dtype=np.float64)))
        with _numba_threads(self.num_threads):
            for iteration in range(1, self.iterations + 1):
                self._sweep(users, item_factors, user_factors, regularization, confidence)
                self._sweep(items, user_factors, item_factors, regularization, confidence)
                loss = None
                if report.wants_loss:
                    loss = _implicit_loss(users, user_factors, item_factors, regularization)
                    loss /= total_confidence
                report(iteration, loss)
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors

    def _sweep(self, rows: _Rows, fixed: np.ndarray, solved: np.ndarray, regularization: float,
               confidence: np.ndarray | None):
        """Solve every row of ``solved`` (users or items) with the other side ``fixed``."""
        gram = kernels.gram(fixed, regularization)
        with kernels.dynamic_schedule():
            if self.use_cg:
                kernels.implicit_cg_sweep(rows.indptr, rows.indices, rows.values, fixed,
                                          gram.astype(solved.dtype), solved,
                                          int(self.cg_steps), rows.bounds)
            else:
                kernels.cholesky_sweep(rows.indptr, rows.indices, rows.values, confidence,
                                       fixed, gram, 0.0, solved, rows.bounds,
                                       kernels.pivot_floor(solved.dtype), False)


def _implicit_loss(users: _Rows, user_factors, item_factors, regularization: float) -> float:
    """``L`` of :class:`ImplicitALS` in float64 (rows summed in a fixed order)."""
    item_gram = kernels.gram(item_factors, 0.0)
    with kernels.dynamic_schedule():
        data = kernels.implicit_loss_rows(users.indptr, users.indices, users.values, user_factors,
                                          item_factors, item_gram, users.bounds)
    penalty = (np.square(user_factors, dtype=np.float64).sum()
               + np.square(item_factors, dtype=np.float64).sum())
    return float(data.sum() + regularization * penalty)


class ExplicitALS(RatingBaseline, FactorModel):
    """Biased matrix factorization of explicit ratings by ALS with weighted-lambda regularization.

    Ratings are first normalized by the baseline ``mu + b_u + b_i`` of
    :class:`reclab.normalize.BiasNormalizer` (``user_reg``, ``item_reg``); the factors then fit
    the residuals ``e_ui = r_ui - mu - b_u - b_i`` of the observed pairs only, minimizing

    ``sum_{(u,i) observed} (e_ui - p_u . q_i)^2 + lambda (sum_u n_u |p_u|^2 + sum_i n_i |q_i|^2)``

    where ``n_u`` and ``n_i`` count the ratings of user u and item i (Zhou et al. 2008): the
    ridge grows with the evidence, so one ``lambda`` suits light and heavy users alike. Each
    half-sweep solves every user's (then every item's) k x k system exactly by Cholesky; a row
    with fewer ratings n than factors is solved through the equivalent n x n system
    ``p_u = Q^T (Q Q^T + lambda n I)^-1 e`` instead, so the long tail costs almost nothing.

    ``predict(u, i) = mu + b_u + b_i + p_u . q_i``, clipped to the training rating range; ranking
    uses ``b_i + p_u . q_i`` (the prediction minus terms constant for the user).

    Parameters
    ----------
    factors : int, >= 1
        Dimension ``k`` of the latent factors.
    regularization : float, >= 0
        ``lambda`` (per rating). ``0`` is allowed and stays finite: an underdetermined solve (a
        user with fewer ratings than factors) gets the smallest diagonal jitter among 1e-4,
        1e-3, ... times its mean diagonal that lets Cholesky succeed, which keeps the factors
        in the directions its ratings do not determine near zero.
    iterations : int, >= 1
        Alternating sweeps (users then items).
    user_reg, item_reg : float, >= 0
        Shrinkage of the user and item biases, in pseudo-ratings (see :class:`Bias`).
    num_threads : int, >= 0
        Threads for the parallel sweeps; 0 means all. Results do not depend on it.
    seed : int, >= 0
        Seed of ``numpy.random.default_rng`` for the initial item factors (normal, std 0.01).

    Attributes
    ----------
    global_mean_ : float
    user_bias_ : numpy.ndarray of float32, shape (n_users_,)
    item_bias_ : numpy.ndarray of float32, shape (n_items_,)
    user_factors_ : numpy.ndarray of float32, shape (n_users_, factors)
        ``p_u``; zero for a user without training ratings.
    item_factors_ : numpy.ndarray of float32, shape (n_items_, factors)
        ``q_i``; zero for an item without training ratings.

    Notes
    -----
    The loss passed to ``callback`` is the objective above divided by the number of training
    ratings (so its first term is the training mean squared error of the residual fit).

    Defaults were chosen on MovieLens 100k and ml-latest-small (80/20 per-user random holdout)
    for accuracy per second: test RMSE 0.913 and 0.852 in 0.04 and 0.06 s on 2 cores. The most
    accurate setting of a grid over factors (5-100), ``lambda`` (0.03-0.2) and iterations (3-20),
    ``factors=50, regularization=0.12, iterations=10``, reaches 0.911 and 0.849 in about 3.5
    times the time; quality is flat in ``factors`` from 50 up.

    References
    ----------
    Y. Zhou, D. Wilkinson, R. Schreiber, R. Pan, "Large-Scale Parallel Collaborative Filtering
    for the Netflix Prize", AAIM 2008.

    Examples
    --------
    >>> model = ExplicitALS(seed=0).fit(train)        # doctest: +SKIP
    >>> model.predict([0, 0], [10, 20])                # doctest: +SKIP
    """

    def __init__(self, factors: int = 24, regularization: float = 0.14, iterations: int = 8,
                 user_reg: float = 10.0, item_reg: float = 25.0, num_threads: int = 0,
                 seed: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.user_reg = user_reg
        self.item_reg = item_reg
        self.num_threads = num_threads
        self.seed = seed

    def _validate_params(self) -> None:
        super()._validate_params()   # user_reg, item_reg (RatingBaseline)
        check_int("factors", self.factors, low=1, model=self)
        check_float("regularization", self.regularization, low=0.0, model=self)
        check_int("iterations", self.iterations, low=1, model=self)
        check_int("num_threads", self.num_threads, low=0, model=self)
        check_seed(self.seed, model=self)

    def _fit(self, train, report) -> None:
        k = int(self.factors)
        regularization = float(self.regularization)
        residuals = self._fit_baseline(train).transform(train).matrix
        values = np.ascontiguousarray(residuals.data, dtype=np.float32)
        users, items = _Rows.both(residuals, values, k)
        ones = np.ones(residuals.nnz, dtype=np.float32)
        rng = np.random.default_rng(self.seed)
        user_factors = np.zeros((train.n_users, k), dtype=np.float32)
        item_factors = _init_factors(rng, train.n_items, k, _INIT_SCALE, np.float32)
        item_factors[items.counts == 0] = 0.0
        no_base = np.zeros((k, k), dtype=np.float64)
        floor = kernels.pivot_floor(np.float32)
        with _numba_threads(self.num_threads), kernels.dynamic_schedule():
            for iteration in range(1, self.iterations + 1):
                kernels.cholesky_sweep(users.indptr, users.indices, ones, users.values,
                                       item_factors, no_base, regularization, user_factors,
                                       users.bounds, floor, True)
                kernels.cholesky_sweep(items.indptr, items.indices, ones, items.values,
                                       user_factors, no_base, regularization, item_factors,
                                       items.bounds, floor, True)
                loss = None
                if report.wants_loss:
                    squared = kernels.squared_error_rows(users.indptr, users.indices, users.values,
                                                         user_factors, item_factors, users.bounds)
                    penalty = (
                        users.counts @ np.square(user_factors, dtype=np.float64).sum(axis=1)
                        + items.counts @ np.square(item_factors, dtype=np.float64).sum(axis=1))
                    loss = (squared.sum() + regularization * penalty) / residuals.nnz
                report(iteration, loss)
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors
