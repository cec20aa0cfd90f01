"""Truncated SVD of the bias-normalized rating matrix."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import svds

from reclab.errors import ReclabError
from reclab.models.base import FactorModel, check_float, check_int, check_seed

__all__ = ["SVD"]



class SVD(FactorModel):
    """Biased truncated SVD: ``r_hat(u, i) = mu + b_u + b_i + p_u . q_i``.

    The baseline ``mu + b_u + b_i`` is fitted exactly as by ``Bias(user_reg, item_reg)``. The
    residuals ``e_ui = r_ui - mu - b_u - b_i`` of the training pairs form a sparse matrix ``E``
    (unobserved pairs count as residual 0, i.e. "as the baseline predicts"), whose rank-``factors``
    truncated SVD ``E ~ U S V^T`` gives ``p_u = U_u sqrt(S)`` and ``q_i = V_i sqrt(S)``.

    The singular vectors come from ARPACK (``scipy.sparse.linalg.svds``) started from a vector
    drawn with ``seed``, sorted by decreasing singular value and sign-fixed (the largest-magnitude
    entry of each item vector is positive), so the same data and seed give the same factors.
    Ranking uses ``score(u, i) = b_i + p_u . q_i``; ``predict`` is clipped to the training rating
    range.

    Parameters
    ----------
    factors : int, >= 1
        Rank of the approximation; must be smaller than ``min(n_users, n_items)`` of the training
        data (``fit`` raises otherwise).
    user_reg, item_reg : float, >= 0
        Shrinkage of the user and item biases, in pseudo-ratings (see :class:`Bias`).
    seed : int, >= 0
        Seed of the ARPACK starting vector.

    Attributes
    ----------
    global_mean_ : float
    user_bias_ : numpy.ndarray of float32, shape (n_users_,)
    item_bias_ : numpy.ndarray of float32, shape (n_items_,)
    user_factors_ : numpy.ndarray of float32, shape (n_users_, factors)
    item_factors_ : numpy.ndarray of float32, shape (n_items_, factors)
    singular_values_ : numpy.ndarray of float32, shape (factors,)
        Decreasing, in rating units.

    Examples
    --------
    >>> model = SVD(factors=20, seed=0).fit(train)   # doctest: +SKIP
    >>> model.predict(0, [1, 2, 3])                   # doctest: +SKIP
    """

    predicts_ratings = True
    _learns_biases = True

    def __init__(self, factors: int = 50, user_reg: float = 10.0, item_reg: float = 25.0,
                 seed: int = 0):
        self.factors = factors
        self.user_reg = user_reg
        self.item_reg = item_reg
        self.seed = seed

    def _validate_params(self) -> None:
        check_int("factors", self.factors, low=1, model=self)
        check_float("user_reg", self.user_reg, low=0.0, model=self)
        check_float("item_reg", self.item_reg, low=0.0, model=self)
        check_seed(self.seed, model=self)

    def _fit(self, train, report) -> None:
        limit = min(train.shape)
        if limit < 2:
            raise ReclabError(f"SVD needs at least 2 users and 2 items (factors must be smaller than "
                              f"both), but the training data has {train.n_users} user(s) x "
                              f"{train.n_items} item(s); use Bias or Popularity for such data")
        if self.factors >= limit:
            raise ReclabError(f"SVD factors={self.factors} must be smaller than min(n_users, n_items)"
                              f" = {limit} of the training data; use factors <= {limit - 1}")
        residuals = self._fit_baseline(train).transform(train).matrix.astype(np.float64)
        if not residuals.data.any():
            # The baseline already fits every rating; ARPACK cannot start on a zero matrix.
            u = np.zeros((train.n_users, self.factors))
            s = np.zeros(self.factors)
            vt = np.zeros((self.factors, train.n_items))
        else:
            rng = np.random.default_rng(self.seed)
            start = rng.uniform(-1.0, 1.0, size=limit)
            u, s, vt = svds(residuals, k=self.factors, v0=start, rng=rng)
        order = np.argsort(-s, kind="stable")
        u, s, vt = u[:, order], s[order], vt[order]
        # Each singular pair is defined up to a joint sign flip; fix it from the item side.
        pivot = np.argmax(np.abs(vt), axis=1)
        signs = np.sign(vt[np.arange(vt.shape[0]), pivot])
        signs[signs == 0] = 1.0
        scale = np.sqrt(s)
        self.user_factors_ = (u * (signs * scale)).astype(np.float32)
        self.item_factors_ = (vt.T * (signs * scale)).astype(np.float32)
        self.singular_values_ = s.astype(np.float32)
