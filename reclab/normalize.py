"""Bias normalization of explicit ratings: global mean plus regularized user and item biases."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclab._validate import check_float, check_int
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.estimator import Estimator

__all__ = ["BiasNormalizer"]


class BiasNormalizer(Estimator):
    """Global mean plus regularized item and user biases (Koren's baseline predictor).

    The baseline of user ``u`` and item ``i`` is ``b_ui = mu + b_u + b_i``, with ``mu`` the mean
    of the training ratings and the biases found by alternating regularized averages, item first::

        b_i = sum_{u in R(i)} (r_ui - mu - b_u) / (item_reg + |R(i)|)
        b_u = sum_{i in R(u)} (r_ui - mu - b_i) / (user_reg + |R(u)|)

    (Koren, "Factor in the neighbors", TKDD 2010, section 2.1). The regularization shrinks the
    biases of users and items with few ratings towards 0. ``transform`` replaces every rating by
    its residual ``r_ui - b_ui``; ``inverse_transform`` adds the baseline back.

    ``get_params`` / ``set_params`` / ``repr`` are the models' (:class:`reclab.estimator.Estimator`).

    Parameters
    ----------
    user_reg, item_reg : float
        Shrinkage of the user and item biases (in pseudo-ratings), >= 0.
    iterations : int
        Alternating passes (item then user biases), >= 1; 3 is enough in practice.

    Attributes
    ----------
    global_mean_ : float
        Mean training rating ``mu``.
    user_bias_ : numpy.ndarray of float64, shape (n_users,)
    item_bias_ : numpy.ndarray of float64, shape (n_items,)
        Users or items without training ratings get bias 0.
    user_ids_, item_ids_ : numpy.ndarray
        The fitted data's ids: ``transform`` takes data of these ids (a split of the fitted data).

    Examples
    --------
    >>> import reclab as rl
    >>> data = rl.datasets.synthetic(seed=0)
    >>> normalizer = BiasNormalizer().fit(data)
    >>> residuals = normalizer.transform(data)         # same pattern, values r - mu - b_u - b_i
    """

    def __init__(self, user_reg: float = 10.0, item_reg: float = 25.0, iterations: int = 3):
        self.user_reg = user_reg
        self.item_reg = item_reg
        self.iterations = iterations

    # -- fitting -----------------------------------------------------------------------------
    def _validate(self) -> None:
        check_float("user_reg", self.user_reg, low=0.0)
        check_float("item_reg", self.item_reg, low=0.0)
        check_int("iterations", self.iterations, low=1)

    def fit(self, data: Interactions) -> "BiasNormalizer":
        """Learn ``global_mean_``, ``item_bias_`` and ``user_bias_`` from explicit ratings.

        Parameters
        ----------
        data : Interactions
            Explicit ratings (not implicit feedback, where every value is 1 and biases say nothing).

        Returns
        -------
        self
        """
        self._validate()
        if not isinstance(data, Interactions):
            raise ReclabError(f"fit needs an Interactions object, got {type(data).__name__}")
        if data.nnz == 0:
            raise ReclabError("fit needs at least one rating; the data is empty")
        if data.implicit:
            raise ReclabError("BiasNormalizer needs explicit ratings; this data is implicit "
                              "(every value is 1.0), so there are no biases to learn")
        rows = np.repeat(np.arange(data.n_users), data.user_counts())
        cols = data.matrix.indices
        ratings = np.asarray(data.matrix.data, dtype=np.float64)
        user_count = data.user_counts().astype(np.float64)
        item_count = data.item_counts().astype(np.float64)
        mu = float(ratings.mean())
        centered = ratings - mu
        user_bias = np.zeros(data.n_users)
        item_bias = np.zeros(data.n_items)
        # With a regularization of 0 a user or item without ratings would divide 0 by 0.
        user_denominator = np.maximum(float(self.user_reg) + user_count, np.finfo(float).tiny)
        item_denominator = np.maximum(float(self.item_reg) + item_count, np.finfo(float).tiny)
        for _ in range(self.iterations):
            item_bias = np.bincount(cols, centered - user_bias[rows], data.n_items) / item_denominator
            user_bias = np.bincount(rows, centered - item_bias[cols], data.n_users) / user_denominator
        self.global_mean_ = mu
        self.user_bias_ = user_bias
        self.item_bias_ = item_bias
        self.user_ids_, self.item_ids_ = data.user_ids, data.item_ids
        return self

    # -- using the fit -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "global_mean_"):
            raise ReclabError("this BiasNormalizer is not fitted yet; call fit(data) first")

    def _indices(self, users, items) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users)
        items = np.asarray(items)
        if users.shape != items.shape:
            raise ReclabError(f"users and items must have the same shape, got {users.shape} and {items.shape}")
        for role, index, size in (("user", users, len(self.user_bias_)), ("item", items, len(self.item_bias_))):
            if index.size and (not np.issubdtype(index.dtype, np.integer) or index.min() < 0 or index.max() >= size):
                raise ReclabError(f"{role} indices must be integers in [0, {size}), got {index.dtype} "
                                  f"values {index.reshape(-1)[:5].tolist()} ...")
        return users, items

    def predict(self, users, items) -> np.ndarray:
        """Baseline ratings ``mu + b_u + b_i`` of (user, item) index pairs, float32, shape of ``users``."""
        self._check_fitted()
        users, items = self._indices(users, items)
        baseline = self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]
        return baseline.astype(np.float32)

    def transform(self, data: Interactions) -> Interactions:
        """Residuals ``r_ui - mu - b_u - b_i`` as the values of a copy of ``data``.

        ``data`` must share the id space of the fitted data (for example a split of it). The
        sparsity pattern and timestamps are kept; a residual of exactly 0 stays a stored entry.
        """
        self._check_fitted()
        self._check_space(data)
        rows = np.repeat(np.arange(data.n_users), data.user_counts())
        cols = data.matrix.indices
        residual = (np.asarray(data.matrix.data, np.float64) - self.global_mean_
                    - self.user_bias_[rows] - self.item_bias_[cols])
        # Built from (data, indices, indptr) directly: arithmetic on a sparse matrix would drop
        # the entries whose residual is 0, which are still observed ratings.
        matrix = sp.csr_matrix((residual.astype(np.float32), np.array(cols), np.array(data.matrix.indptr)),
                               shape=data.shape)
        return data.with_matrix(matrix, timestamps=data.timestamps)

    def inverse_transform(self, users, items, values) -> np.ndarray:
        """Ratings from residuals: ``values + mu + b_u + b_i`` for (user, item) index pairs, float32."""
        self._check_fitted()
        users, items = self._indices(users, items)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != users.shape:
            raise ReclabError(f"values must have the shape of users {users.shape}, got {values.shape}")
        return (values + self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]).astype(np.float32)

    def _check_space(self, data) -> None:
        if not isinstance(data, Interactions):
            raise ReclabError(f"transform needs an Interactions object, got {type(data).__name__}")
        fitted = (len(self.user_bias_), len(self.item_bias_))
        if data.shape != fitted:
            raise ReclabError(f"data has shape {data.shape}, but this normalizer was fitted on "
                              f"{fitted}; transform data of the same id space (a split of the "
                              f"fitted data)")
        for role, ids in (("user", self.user_ids_), ("item", self.item_ids_)):
            if not np.array_equal(getattr(data, f"{role}_ids"), ids):   # else others' biases
                raise ReclabError(f"data has other {role} ids than the data this normalizer was "
                                  f"fitted on; transform data of the same id space (a split of "
                                  f"the fitted data)")
