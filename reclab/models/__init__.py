"""Recommender models, all following the contract of :class:`reclab.models.base.Recommender`.

``Popularity``, ``Bias``, ``ItemKNN`` and ``SVD`` are baselines (``SVD`` predicts ratings);
``ExplicitALS`` and ``ImplicitALS`` are the alternating least squares factor models; ``EASE``,
``RP3beta`` and ``PureSVD`` are the strong simple ranking models. ``load`` rebuilds any of them from
a file written by ``model.save(path)``; ``clone`` gives an unfitted copy with the same parameters.
"""

from reclab.models.als import ExplicitALS, ImplicitALS
from reclab.models.ease import EASE
from reclab.models.base import FactorModel, Recommender, clone, load
from reclab.models.bias import Bias
from reclab.models.knn import ItemKNN
from reclab.models.popularity import Popularity
from reclab.models.svd import SVD

__all__ = ["Recommender", "FactorModel", "clone", "load", "Popularity", "Bias", "ItemKNN", "SVD",
           "ExplicitALS", "ImplicitALS", "EASE"]

# Spark's ALS keeps reclab's contract, so params files and models.load know it by name; pyspark itself
# is imported only when a SparkALS is fitted. Its contract checks live in tests/test_spark.py.
from reclab.spark import SparkALS  # noqa: E402, F401 (exported by name, outside __all__)
