"""SparkALS: reclab's model contract, trained by Spark MLlib's ALS (see :mod:`reclab.spark` for the
session, the DataFrame I/O and the ranking metrics computed inside Spark).

pyspark (with Java 17) is an optional dependency, imported only when a model is fitted, so
loading a saved SparkALS (numpy arrays only) works without it.
"""

from __future__ import annotations

import warnings

import numpy as np

from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.models.base import FactorModel, check_bool, check_float, check_int, check_seed
from reclab.models.baseline import RatingBaseline
from reclab.spark.frames import (check_columns, collect, index_table, interaction_columns, to_interactions,
                                 to_spark)
from reclab.spark.session import check_master, get_session, is_spark_frame, sql_functions

__all__ = ["SparkALS"]

# Number of ALS blocks when num_blocks is None: Spark's own default, fixed rather than derived
# from the cluster's parallelism, because the blocks seed the factor initialization (see SparkALS).
_DEFAULT_BLOCKS = 10
# The largest values of Spark's int and long parameters.
_JAVA_INT_MAX, _JAVA_LONG_MAX = 2**31 - 1, 2**63 - 1
# Rows of float64 scores computed at once by SparkALS._score (about 32 MB of temporaries).
_SCORE_CHUNK_ELEMENTS = 1 << 22


class SparkALS(RatingBaseline, FactorModel):
    """Alternating least squares trained by Spark MLlib (``pyspark.ml.recommendation.ALS``).

    The same model contract as every reclab model; only the training runs in Spark. Users and
    items are passed to Spark as reclab's internal indices, so ids map both ways with no lookup.

    Model
    -----
    Explicit ratings (``implicit=False``), the model of :class:`reclab.models.ExplicitALS`::

        r_ui ~ mu + b_u + b_i + p_u . q_i

    The baseline ``mu + b_u + b_i`` is :class:`reclab.normalize.BiasNormalizer` (``user_reg``,
    ``item_reg``; Spark's ALS has no bias terms), and Spark's ALS factorizes the residuals
    ``r_ui - mu - b_u - b_i`` with the weighted-lambda ridge ``lambda * n_u`` (``n_i``) of
    ExplicitALS, so the two learn the same model with the same parameters (only the initial
    factors differ). ``predict`` returns the sum, clipped to the training rating range; ranking
    scores are ``b_i + p_u . q_i``.

    Implicit feedback (``implicit=True``): Spark's implicit ALS (Hu, Koren and Volinsky 2008)
    with confidence ``1 + alpha * r_ui``, scores ``p_u . q_i``, no ``predict``. Unlike
    ImplicitALS, Spark scales the ridge by each user's (item's) number of interactions, so a
    good ``regularization`` is much smaller than ImplicitALS's.

    Parameters
    ----------
    factors : int
        Latent dimension (Spark's ``rank``), >= 1.
    regularization : float
        Spark's ``regParam``, > 0. Spark scales it by the number of ratings of the user or item
        being solved ("ALS-WR"), as ExplicitALS does.
    iterations : int
        Alternating sweeps (Spark's ``maxIter``), >= 1. Above ~20, set a checkpoint directory
        (``spark.sparkContext.setCheckpointDir``) or Spark's lineage can overflow the stack.
    implicit : bool
        Implicit-feedback ALS instead of explicit ratings.
    alpha : float
        Confidence scale of implicit feedback, >= 0 (unused when ``implicit=False``).
    user_reg, item_reg : float
        Shrinkage of the explicit user and item biases, >= 0, as in ExplicitALS (unused when
        ``implicit=True``).
    seed : int
        Seed of Spark's factor initialization, in [0, 2**63 - 1] (a Java long).
    master : str or None
        Spark master URL; None uses the active session or starts ``local[*]`` (see
        :func:`get_session`).
    num_blocks : int or None
        User and item blocks of Spark's ALS (its parallelism), >= 1; None means 10, Spark's
        default. ``factors``, ``iterations`` and ``num_blocks`` are Java ints (at most 2**31 - 1).

    Attributes
    ----------
    user_factors_ : numpy.ndarray of float32, shape (n_users_, factors)
    item_factors_ : numpy.ndarray of float32, shape (n_items_, factors)
        Ordered by index; users and items without training interactions get zero factors.
    global_mean_, user_bias_, item_bias_ : float, float32 arrays
        The explicit baseline (only when ``implicit=False``).
    user_ids_, item_ids_ : numpy.ndarray
        Original ids by index (from the training Interactions or DataFrame); used by
        :func:`evaluate` to map Spark DataFrames of ids.

    Notes
    -----
    Determinism: the same data, parameters and seed give bit-identical factors (checked by the
    tests, in local mode). Spark seeds each block's initial factors with the seed and the block
    number, so results depend on ``num_blocks``, which is therefore fixed rather than taken from
    the cluster's parallelism. The input's partitioning does not matter (Spark orders each block's
    ratings by id before it solves): the tests check that the same ratings, arriving as
    Interactions or as a differently partitioned DataFrame, give the same bits.

    Spark runs every iteration in one job and exposes neither their times nor a loss, so ``fit``
    reports one point, after the last iteration (``reports_each_iteration = False``):
    ``callback(iterations, seconds, None)`` with ``seconds`` the whole training time (baseline,
    Spark's ALS and collecting the factors). The training curve of a SparkALS is that one point.

    Examples
    --------
    >>> import reclab as rl                                                    # doctest: +SKIP
    >>> train, test = rl.split.random_holdout(rl.datasets.load("ml-100k"), seed=42)  # doctest: +SKIP
    >>> model = SparkALS(factors=10, regularization=0.1, num_blocks=2).fit(train)    # doctest: +SKIP
    >>> rl.spark.evaluate(model, train, test, k=10)["ndcg@10"]                 # doctest: +SKIP
    """

    reports_each_iteration = False

    def __init__(self, factors: int = 10, regularization: float = 0.1, iterations: int = 10,
                 implicit: bool = False, alpha: float = 1.0, user_reg: float = 10.0,
                 item_reg: float = 25.0, seed: int = 0, master: str | None = None,
                 num_blocks: int | None = None):
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.implicit = implicit
        self.alpha = alpha
        self.user_reg = user_reg
        self.item_reg = item_reg
        self.seed = seed
        self.master = master
        self.num_blocks = num_blocks

    # Both depend on a parameter, so they are properties rather than class attributes.
    @property
    def predicts_ratings(self) -> bool:
        return not self.implicit

    @property
    def _learns_biases(self) -> bool:
        return not self.implicit

    @property
    def ranks_new_users(self) -> bool:
        return not self.implicit

    def _validate_params(self) -> None:
        super()._validate_params()   # user_reg, item_reg (RatingBaseline)
        # Spark's ALS takes these as Java ints and its seed as a Java long: a larger value failed
        # inside Spark, after the baseline was fitted, with a Py4J error (NumberFormatException,
        # ClassCastException).
        check_int("factors", self.factors, low=1, high=_JAVA_INT_MAX, model=self)
        # Spark solves each least-squares problem by Cholesky, which needs a positive definite
        # system: with no regularization a user with fewer ratings than factors fails.
        check_float("regularization", self.regularization, low=0.0, low_open=True, model=self)
        check_int("iterations", self.iterations, low=1, high=_JAVA_INT_MAX, model=self)
        check_bool("implicit", self.implicit, model=self)
        check_float("alpha", self.alpha, low=0.0, model=self)
        check_seed(self.seed, model=self)
        check_int("seed", self.seed, low=0, high=_JAVA_LONG_MAX, model=self)
        check_master(self.master, owner=type(self).__name__)
        if self.num_blocks is not None:
            check_int("num_blocks", self.num_blocks, low=1, high=_JAVA_INT_MAX, model=self)

    def fit(self, train, callback=None, progress: bool = False) -> "SparkALS":
        """Learn from an ``Interactions`` or a Spark DataFrame; return ``self``.

        Parameters
        ----------
        train : reclab.Interactions or pyspark.sql.DataFrame
            A DataFrame has columns ``user``, ``item``, ``rating`` (ratings 1.0 for implicit
            feedback when there is no ``rating`` column) and optionally ``timestamp``, as
            :func:`read_interactions` gives; it must hold each (user, item) pair once. It is
            collected to the driver once (see the module's Limits) to build ``seen_`` and index
            users and items like :func:`to_interactions`; the ratings Spark trains on stay in
            Spark. ``fit(df)`` and ``fit(to_interactions(df))`` learn the same
            model, bit for bit.
        callback, progress
            As in :meth:`reclab.models.base.Recommender.fit` (see Notes of the class).

        Returns
        -------
        self
        """
        if not is_spark_frame(train):
            return super().fit(train, callback=callback, progress=progress)
        self._validate_params()
        rating = "rating" if "rating" in train.columns else None
        check_columns(train, "user", "item", rating, None)
        with warnings.catch_warnings():   # repeated pairs are refused below, not kept
            warnings.filterwarnings("ignore", message=".*rows repeat an earlier", category=UserWarning)
            data = to_interactions(train, rating=rating)
        n_rows = train.count()
        if data.nnz != n_rows:
            raise ReclabError(f"the training DataFrame holds {n_rows - data.nnz} repeated (user, item) "
                              f"pair(s); keep one row per pair (for example the latest) before fitting")
        functions = sql_functions()
        session = train.sparkSession
        values = functions.lit(1.0) if rating is None else functions.col(rating)
        indexed = (train.join(index_table(session, "user", data.user_ids), "user")
                   .join(index_table(session, "item", data.item_ids), "item")
                   .select(functions.col("user_index").alias("user"),
                           functions.col("item_index").alias("item"), values.cast("float").alias("rating")))
        self._spark_ratings = indexed
        try:
            return super().fit(data, callback=callback, progress=progress)
        finally:
            del self._spark_ratings

    def _fit(self, train: Interactions, report) -> None:
        from pyspark.ml.recommendation import ALS

        functions = sql_functions()
        ratings = vars(self).get("_spark_ratings")
        session = get_session(self.master) if ratings is None else ratings.sparkSession
        if ratings is None:
            ratings = to_spark(session, interaction_columns(train))
        if not self.implicit:
            if train.implicit:
                raise ReclabError("SparkALS with implicit=False needs explicit ratings, but every value "
                                  "of this data is 1.0; use implicit=True for implicit feedback")
            self._fit_baseline(train)
            # Residuals against the stored (float32) biases, in double, as BiasNormalizer.transform.
            user_bias = to_spark(session, {"user": np.arange(train.n_users, dtype=np.int32),
                                            "user_bias": self.user_bias_.astype(np.float64)})
            item_bias = to_spark(session, {"item": np.arange(train.n_items, dtype=np.int32),
                                            "item_bias": self.item_bias_.astype(np.float64)})
            residual = (functions.col("rating").cast("double") - functions.lit(self.global_mean_)
                        - functions.col("user_bias") - functions.col("item_bias"))
            ratings = (ratings.join(functions.broadcast(user_bias), "user")
                       .join(functions.broadcast(item_bias), "item")
                       .select("user", "item", residual.cast("float").alias("rating")))
        blocks = _DEFAULT_BLOCKS if self.num_blocks is None else self.num_blocks
        als = ALS(rank=self.factors, maxIter=self.iterations, regParam=self.regularization,
                  implicitPrefs=self.implicit, alpha=self.alpha, seed=self.seed,
                  numUserBlocks=blocks, numItemBlocks=blocks, nonnegative=False,
                  userCol="user", itemCol="item", ratingCol="rating")
        fitted = als.fit(ratings)
        self.user_factors_ = _dense_factors(fitted.userFactors, train.n_users, self.factors)
        self.item_factors_ = _dense_factors(fitted.itemFactors, train.n_items, self.factors)
        self.user_ids_ = _savable_ids(train.user_ids)
        self.item_ids_ = _savable_ids(train.item_ids)
        report(self.iterations, None)

    def _score(self, users: np.ndarray) -> np.ndarray:
        # In float64 rounded once to float32, the computation reclab.spark.evaluate does in Spark
        # SQL, so that both rank items identically, near-ties included. The float32 products are
        # exact in float64, and OpenBLAS's dgemm sums them in factor order as Spark does: on
        # ML-100k none of 1.6M scores differs in any bit (a float32 matrix product, the base
        # class's, differs in the last bit for half of them, which reorders near-ties).
        item_factors = self.item_factors_.astype(np.float64)
        offset = self._item_offset()
        offset = None if offset is None else offset.astype(np.float64)
        out = np.empty((users.size, self.n_items_), dtype=np.float32)
        chunk = max(1, _SCORE_CHUNK_ELEMENTS // max(self.n_items_, 1))
        for start in range(0, users.size, chunk):
            block = self.user_factors_[users[start:start + chunk]].astype(np.float64) @ item_factors.T
            if offset is not None:
                block += offset
            out[start:start + chunk] = block
        return out


def _dense_factors(frame, size: int, factors: int) -> np.ndarray:
    """Spark's (id, features) factor table as a dense (size, factors) float32 array by id."""
    columns = collect(frame)
    out = np.zeros((size, factors), dtype=np.float32)
    if columns["id"].size:
        out[columns["id"].astype(np.int64)] = columns["features"]
    return out


def _savable_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as an array ``np.savez`` stores without pickle (strings as fixed-width unicode)."""
    ids = np.asarray(ids)
    return ids.astype(str) if ids.dtype == object else ids
