"""Baseline predictor: global mean plus regularized user and item biases."""

from __future__ import annotations

import numpy as np

from reclab.models.base import Recommender, check_int
from reclab.models.baseline import RatingBaseline

__all__ = ["Bias"]


class Bias(RatingBaseline, Recommender):
    """Rating baseline ``r_hat(u, i) = mu + b_u + b_i``.

    ``mu`` is the mean training rating; the biases are the regularized least squares estimates of
    :class:`reclab.normalize.BiasNormalizer`, alternating ``iterations`` times between

    ``b_i = sum_u (r_ui - mu - b_u) / (item_reg + n_i)`` and
    ``b_u = sum_i (r_ui - mu - b_i) / (user_reg + n_u)``,

    so that items and users with few ratings are shrunk towards the mean (explicit ratings only:
    ``fit`` rejects implicit data, where biases mean nothing). Predictions are clipped
    to the training rating range. Ranking uses ``score(u, i) = b_i`` (the terms constant for a user
    do not change the order): the same best-rated-item list for everyone, minus seen items.

    Parameters
    ----------
    user_reg, item_reg : float, >= 0
        Shrinkage of the user and item biases, in pseudo-ratings
        (:class:`~reclab.models.baseline.RatingBaseline`).
    iterations : int, >= 1
        Alternating passes.

    Attributes
    ----------
    global_mean_ : float
        ``mu``, in rating units.
    user_bias_ : numpy.ndarray of float32, shape (n_users_,)
    item_bias_ : numpy.ndarray of float32, shape (n_items_,)

    Examples
    --------
    >>> model = Bias(user_reg=10.0, item_reg=25.0).fit(train)   # doctest: +SKIP
    >>> model.predict([0, 1], [10, 20])                          # doctest: +SKIP
    """

    def __init__(self, user_reg: float = 10.0, item_reg: float = 25.0, iterations: int = 3):
        self.user_reg = user_reg
        self.item_reg = item_reg
        self.iterations = iterations

    def _validate_params(self) -> None:
        super()._validate_params()   # user_reg, item_reg (RatingBaseline)
        check_int("iterations", self.iterations, low=1, model=self)

    def _fit(self, train, report) -> None:
        self._fit_baseline(train, self.iterations)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.repeat(self.item_bias_[None, :], users.size, axis=0)

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]
