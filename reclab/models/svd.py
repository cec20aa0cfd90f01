"""Truncated SVD of the bias-normalized rating matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from reclab.errors import ReclabError
from reclab.models.base import FactorModel, check_int, check_seed
from reclab.models.baseline import RatingBaseline

__all__ = ["SVD", "truncated_svd"]


class SVD(RatingBaseline, FactorModel):
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

    SVD is a rating predictor: it learns how much a user will like an item, not which items a user
    will pick, and its top-N lists are poor (precision@10 0.115 on MovieLens 100k, 80/20 split,
    below Popularity's 0.192). To rank, use :class:`PureSVD` (the SVD of the interaction matrix
    itself, 0.36), :class:`EASE` or :class:`ImplicitALS`; the pipeline warns when ``model: SVD``
    is tuned for a ranking metric.

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

    def __init__(self, factors: int = 50, user_reg: float = 10.0, item_reg: float = 25.0,
                 seed: int = 0):
        self.factors = factors
        self.user_reg = user_reg
        self.item_reg = item_reg
        self.seed = seed

    def _validate_params(self) -> None:
        super()._validate_params()   # user_reg, item_reg (RatingBaseline)
        check_int("factors", self.factors, low=1, model=self)
        check_seed(self.seed, model=self)

    def _fit(self, train, report) -> None:
        residuals = self._fit_baseline(train).transform(train).matrix.astype(np.float64)
        u, s, v = truncated_svd(residuals, self.factors, self.seed, owner="SVD")
        scale = np.sqrt(s)
        self.user_factors_ = (u * scale).astype(np.float32)
        self.item_factors_ = (v * scale).astype(np.float32)
        self.singular_values_ = s.astype(np.float32)


def truncated_svd(matrix, factors: int, seed: int, owner: str):
    """The rank-``factors`` truncated SVD ``matrix ~ U diag(s) V^T``, reproducibly.

    ARPACK (``scipy.sparse.linalg.svds``) starts from a vector drawn with ``seed``; the triplets
    are sorted by decreasing singular value and sign-fixed (the largest-magnitude entry of each
    column of ``V`` is positive), so the same matrix and seed give the same factors. An all-zero
    matrix (ARPACK cannot start on it) gives zeros.

    Parameters
    ----------
    matrix : scipy.sparse matrix of float64, shape (m, n)
    factors : int, < min(m, n)
    seed : int
    owner : str
        The model's name, for the error when ``factors`` is too large.

    Returns
    -------
    u : numpy.ndarray of float64, shape (m, factors)
    s : numpy.ndarray of float64, shape (factors,), decreasing
    v : numpy.ndarray of float64, shape (n, factors)

    Raises
    ------
    ReclabError
        If ``factors >= min(m, n)``.
    """
    limit = min(matrix.shape)
    if limit < 2:
        raise ReclabError(f"{owner} needs at least 2 users and 2 items (factors must be smaller than "
                          f"both), but the training data has {matrix.shape[0]} user(s) x "
                          f"{matrix.shape[1]} item(s); use Bias or Popularity for such data")
    if factors >= limit:
        raise ReclabError(f"{owner} factors={factors} must be smaller than min(n_users, n_items) = "
                          f"{limit} of the training data; use factors <= {limit - 1}")
    if not matrix.data.any():
        return (np.zeros((matrix.shape[0], factors)), np.zeros(factors),
                np.zeros((matrix.shape[1], factors)))
    rng = np.random.default_rng(seed)
    start = rng.uniform(-1.0, 1.0, size=limit)
    u, s, vt = svds(matrix, k=factors, v0=start, rng=rng)
    order = np.argsort(-s, kind="stable")
    u, s, vt = u[:, order], s[order], vt[order]
    # Each singular pair is defined up to a joint sign flip; fix it from the item side.
    pivot = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(vt.shape[0]), pivot])
    signs[signs == 0] = 1.0
    u, v = u * signs, vt.T * signs
    # A row or column with no nonzero entry has an exactly zero factor (X v = 0, X^T u = 0), but
    # ARPACK returns round-off there (~1e-15), which a cosine would scale to unit length: an item
    # nobody rated would look 0.9 similar to others. Zero them, as the mathematics says.
    magnitude = abs(sp.csr_matrix(matrix))
    u[np.asarray(magnitude.sum(axis=1)).ravel() == 0] = 0.0
    v[np.asarray(magnitude.sum(axis=0)).ravel() == 0] = 0.0
    return u, s, v
