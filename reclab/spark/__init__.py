"""Spark backend: train ALS on a Spark cluster and compute ranking metrics inside Spark.

For data sets that outgrow one machine, this module keeps reclab's interface while the heavy work
runs in Spark:

- :class:`reclab.models.SparkALS` (in ``reclab/models/spark_als.py``, with the other models) is a
  reclab :class:`~reclab.models.base.FactorModel` (``fit``, ``recommend``, ``predict``,
  ``similar_items``, ``save``, scikit-learn parameters, so ``reclab.tune`` and ``reclab.evaluate``
  work unchanged) trained by ``pyspark.ml.recommendation.ALS``, with the session and the
  DataFrame helpers of this module. The learned factors come back as numpy arrays.
- :func:`evaluate` computes the ranking metrics of a factor model inside Spark (top-K per user by
  a cross join of the factor tables, seen items removed by a left anti join), with the
  conventions of :func:`reclab.evaluate`, and gives the same numbers as :func:`reclab.evaluate`.
- :func:`read_interactions` reads Parquet or CSV straight into a Spark DataFrame;
  :func:`to_interactions` collects one into reclab :class:`~reclab.data.Interactions`.
- :func:`get_session` starts (once) or returns the SparkSession everything here uses.

pyspark (with Java 17) is an optional dependency, ``pip install reclab[spark]``; it is imported
only when a function here needs it, so this module (and loading a saved ``SparkALS``, which holds
numpy arrays only) works without it.

Limits
------
Training and :func:`evaluate` run on the cluster. The driver holds what reclab's model contract
needs in memory: the factors (``4 * factors * (n_users + n_items)`` bytes) and the training
interactions as a CSR matrix (``seen_``, used to filter seen items; about 8 bytes per
interaction, plus about 40 transiently while :meth:`SparkALS.fit` collects a DataFrame). A data
set of a few hundred million interactions fits a driver with tens of GB; beyond that, keep the
lists in Spark with :func:`evaluate` and do not call ``recommend`` on the driver.
:func:`evaluate` scores every (evaluated user, item) pair, ``O(n_users * n_items * factors)``
work spread over the cluster, as Spark's own ``recommendForAllUsers`` does.

Timing a fit (for benchmarks)
-----------------------------
Start the session first (``get_session()``, about 10-20 s of JVM start-up) and fit once to warm
up the JVM's compiler (the first fit is 2-4x slower); then time ``model.fit(train)``, which
includes uploading the ratings and collecting the factors.
"""

from reclab.spark.evaluation import evaluate
from reclab.spark.frames import read_interactions, to_interactions
from reclab.spark.session import get_session

__all__ = ["evaluate", "get_session", "read_interactions", "to_interactions"]
