"""The rating baseline ``mu + b_u + b_i`` of the models that learn biases, and its two parameters.

``Bias``, ``SVD``, ``ExplicitALS`` and ``SparkALS`` fit the same baseline
(:class:`reclab.normalize.BiasNormalizer`) with the same parameters ``user_reg`` and ``item_reg``;
:class:`RatingBaseline` holds their check and the fit once.
"""

from __future__ import annotations

import numpy as np

from reclab._validate import check_float
from reclab.errors import ReclabError
from reclab.normalize import BiasNormalizer

__all__ = ["RatingBaseline"]


class RatingBaseline:
    """Mixin of the models with a regularized rating baseline ``mu + b_u + b_i``.

    Put it before the model's base class (``class Bias(RatingBaseline, Recommender)``); the
    model's ``__init__`` stores ``user_reg`` and ``item_reg`` like its other parameters, and its
    ``_validate_params`` calls ``super()._validate_params()``, which checks them here.

    Parameters
    ----------
    user_reg, item_reg : float, >= 0
        Shrinkage of the user and item biases, in pseudo-ratings: a user (item) with ``n``
        ratings keeps ``n / (n + reg)`` of its mean deviation (see
        :class:`reclab.normalize.BiasNormalizer`).
    """

    #: It predicts ratings (on the rating scale, baseline included), and a factor model's learned
    #: biases are part of its scores and of its saved file (``FactorModel._learns_biases``).
    predicts_ratings = True
    _learns_biases = True
    #: A user without ratings is scored ``mu + b_i``: the items' biases rank them.
    ranks_new_users = True

    def _validate_params(self) -> None:
        super()._validate_params()
        check_float("user_reg", self.user_reg, low=0.0, model=self)
        check_float("item_reg", self.item_reg, low=0.0, model=self)

    def _fit_baseline(self, train, iterations: int = 3) -> BiasNormalizer:
        """Fit the rating baseline ``mu + b_u + b_i`` with this model's ``user_reg`` and
        ``item_reg`` (:class:`reclab.normalize.BiasNormalizer`, ``iterations`` alternating passes;
        3, as in ``Bias()``), keep it as ``global_mean_``, ``user_bias_`` and ``item_bias_``
        (float32), and return the normalizer."""
        if train.implicit:   # said by the model's name, not by the BiasNormalizer it uses
            raise ReclabError(f"{type(self).__name__} learns rating biases, but this data is implicit "
                              f"(every value is 1.0); fit a model for implicit feedback, such as "
                              f"ImplicitALS, EASE or Popularity")
        normalizer = BiasNormalizer(self.user_reg, self.item_reg, iterations).fit(train)
        self.global_mean_ = float(normalizer.global_mean_)
        self.user_bias_ = normalizer.user_bias_.astype(np.float32)
        self.item_bias_ = normalizer.item_bias_.astype(np.float32)
        return normalizer
