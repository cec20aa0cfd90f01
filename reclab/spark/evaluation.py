"""Ranking metrics of a factor model computed inside Spark (:func:`evaluate`), with the
conventions and numbers of :func:`reclab.evaluate`."""

from __future__ import annotations

import numpy as np

from reclab.data import Interactions, check_held_out, check_overlap
from reclab.errors import ReclabError
from reclab._validate import check_cutoffs, check_seed, check_threshold
from reclab.metrics import RANKING_METRICS
from reclab.spark.frames import check_columns, index_table, to_spark
from reclab.spark.session import get_session, is_spark_frame, sql_functions


def _pairs(session, value, name: str, model, threshold):
    """(user, item[, rating]) pairs of an Interactions or a DataFrame of ids, as a Spark frame of
    ``user`` (a key: the index, or the original id), ``user_index`` and ``item`` (indices; null
    for ids the model does not know)."""
    functions = sql_functions()
    if isinstance(value, Interactions):
        if value.shape != (model.n_users_, model.n_items_):
            raise ReclabError(f"{name} has shape {value.shape} but the model was fitted on "
                              f"{(model.n_users_, model.n_items_)}; use a split of the data it was "
                              f"fitted on (the same users and items)")
        matrix = value.matrix
        if threshold is not None:
            matrix = value.select(value.matrix.data >= threshold).matrix
        users = np.repeat(np.arange(value.n_users, dtype=np.int32), np.diff(matrix.indptr))
        frame = to_spark(session, {"user": users, "item": matrix.indices.astype(np.int32)})
        return frame.withColumn("user_index", functions.col("user"))
    if not is_spark_frame(value):
        raise ReclabError(f"{name} must be reclab Interactions or a Spark DataFrame, got "
                          f"{type(value).__name__}")
    if threshold is not None:
        value = value.where(functions.col("rating") >= threshold)
    value = value.select("user", "item").distinct()
    return (value.join(index_table(session, "user", model.user_ids_), "user", "left")
            .join(index_table(session, "item", model.item_ids_), "item", "left")
            .select("user", "user_index", functions.col("item_index").alias("item")))


#: What a join compares ids as, by Spark type or numpy kind (integers of any width match).
_ID_KINDS = {"tinyint": "integers", "smallint": "integers", "int": "integers", "bigint": "integers",
             "string": "strings", "i": "integers", "u": "integers", "U": "strings", "O": "strings"}


def _id_kind(dtype) -> str:
    key = dtype.kind if isinstance(dtype, np.dtype) else dtype.simpleString()
    return _ID_KINDS.get(key, "double" if key == "f" else key)


def _check_id_frames(model, train, test, threshold) -> None:
    """evaluate's checks of DataFrames of ids, before any join: columns, ids of one kind in train,
    test and the model, no null id, check_overlap on distinct pairs (not the model's own pairs)."""
    functions = sql_functions()
    frames = {"train": train, "test": test}
    for name, frame in frames.items():
        rating = "rating" if threshold is not None and name == "test" else None
        check_columns(frame, "user", "item", rating, None, owner=f"{name} DataFrame")
    owner = type(model).__name__
    if not hasattr(model, "user_ids_"):
        raise ReclabError(f"train and test are Spark DataFrames of ids, but {owner} does not record the "
                          f"ids it was trained on; pass Interactions (a split of the training data) or "
                          f"use a SparkALS model")
    for role in ("user", "item"):
        # Spark would join other kinds through an implicit cast, matching 5 to both '5' and '005'.
        types = [frame.schema[role].dataType.simpleString() for frame in (train, test)]
        kinds = [_id_kind(frame.schema[role].dataType) for frame in (train, test)]
        fitted = _id_kind(np.asarray(getattr(model, f"{role}_ids_")).dtype)
        if kinds[0] != kinds[1] or kinds[0] != fitted:
            which = (f"of train are {types[0]} but those of test are {types[1]}" if kinds[0] != kinds[1]
                     else f"of train and test are {types[0]} but those {owner} was fitted on are {fitted}")
            target = {"integers": "bigint", "strings": "string"}.get(fitted, fitted)
            raise ReclabError(f"the {role} ids {which}, which Spark would join through an implicit cast "
                              f"(matching 5 to both '5' and '005'); cast both {role} columns to the type "
                              f"of the model's ids (frame[{role!r}].cast({target!r})), or read train and "
                              f"test with the same schema as the data it was fitted on")
    counts = []
    for name, frame in frames.items():
        nulls = [functions.count(functions.when(functions.col(role).isNull(), 1))
                 for role in ("user", "item")]
        row = frame.agg(functions.count_distinct("user", "item"), *nulls).first()
        for role, n_missing in zip(("user", "item"), row[1:]):
            if n_missing:
                raise ReclabError(f"the {name} DataFrame's {role} column has {n_missing} missing (null) "
                                  f"id{'s' if n_missing > 1 else ''}; every row needs a user and an item "
                                  f"id (drop the others: frame.dropna(subset=['user', 'item']))")
        counts.append(row[0])
    pairs = [frame.select("user", "item").distinct() for frame in (train, test)]
    check_overlap(counts[0], counts[1], pairs[0].join(pairs[1], ["user", "item"]).count())


def evaluate(model, train, test, k=10, relevance_threshold=None, session=None, seed: int = 0) -> dict:
    """Ranking metrics of a fitted factor model, computed inside Spark.

    The same metrics, conventions and numbers as :func:`reclab.evaluate` (docs/architecture.md,
    "Conventions"), for data too large to score on one machine: top-K lists are made in Spark
    from the model's factors, seen items are removed, and only the means come back.

    Parameters
    ----------
    model : reclab.models.FactorModel
        Fitted; its ``user_factors_``, ``item_factors_`` (and item biases, for models with
        biases) are sent to Spark. Scores are ``b_i + p_u . q_i`` summed in float64 over the
        factors in order and rounded once to float32, exactly as :meth:`SparkALS.score_items`
        scores, and ties are broken as ``reclab.evaluate`` breaks them: by Spark SQL's
        ``hash(seed, user index, item index)`` (:func:`reclab.ranking.tie_keys`), then by the lower
        item index. Other factor models score in float32, whose last bit can reorder items tied
        to within 1e-7; on ML-100k, ExplicitALS and ImplicitALS still agree with
        ``reclab.evaluate`` to 1e-15.
    train, test : Interactions or pyspark.sql.DataFrame
        Both Interactions over the model's users and items (a split of its training data: the
        same ids, as ``reclab.evaluate`` requires), or
        both Spark DataFrames with columns ``user``, ``item`` (original ids) and, for ``test`` with a
        threshold, ``rating``; DataFrames need a model that records its ids (``SparkALS``), no
        missing (null) id, and ids of one kind (integers of any width, or strings) in train, test
        and the model (Spark would join others through an implicit cast). Test users unknown to
        the model are scored with zero factors; test items unknown to it are relevant but can
        never be recommended; items without training interactions rank last, as ``score_items``
        ranks them (:class:`reclab.models.Recommender`). Repeated pairs count once. As
        ``reclab.evaluate``, refused: a test split whose every pair is in train, or that holds
        every pair of train (:func:`reclab.data.check_held_out`; on DataFrames by counting pairs,
        so a model fitted on other pairs than train is not detected there).
    k : int or sequence of int
        Cutoffs, each >= 1.
    relevance_threshold : float, optional
        Only test interactions rated at or above it are relevant; default all are.
    session : SparkSession, optional
        Default :func:`get_session` (with the model's ``master``, for a SparkALS).
    seed : int
        Seed of the tie-breaking, as ``reclab.evaluate``'s ``seed``.

    Returns
    -------
    dict of str -> float
        ``"precision@K"``, ``"recall@K"``, ``"ndcg@K"``, ``"map@K"``, ``"mrr@K"``,
        ``"hit_rate@K"`` for every K (macro means over users with at least one relevant test
        item), then ``"coverage@K"``: the keys and values of ``reclab.evaluate(...).summary``
        without rmse / mae.

    Raises
    ------
    ReclabError
        If the model is not a fitted factor model, the data do not match it (DataFrames: a column
        missing, a null id, ids of other types), or no user has a relevant test item.

    Notes
    -----
    Per user ``u`` with relevant set ``R_u`` and list ranks ``r = 1..K``: precision@K =
    hits / K, recall@K = hits / |R_u|, nDCG@K = sum over hit ranks of 1 / log2(r + 1) divided by
    the same sum over ranks 1..min(|R_u|, K), AP@K = sum over hit ranks of precision@r divided
    by min(|R_u|, K), RR@K = 1 / (first hit rank), hit_rate@K = 1 if any hit; coverage@K =
    distinct items in the evaluated users' top-K lists / n_items. Work is one cross join of the
    evaluated users with every item: O(users * items * factors), spread over the cluster; only
    the top K per user are kept (Spark stops each user's sort at K).
    """
    functions = sql_functions()
    from pyspark.sql import Window

    # A factor model by what it has (reclab.models imports this module for SparkALS, so this
    # module cannot import reclab.models; see docs/architecture.md).
    if not (hasattr(model, "user_factors_") or hasattr(type(model), "_item_offset")):
        raise ReclabError(f"evaluate needs a reclab factor model (SparkALS, ExplicitALS, "
                          f"ImplicitALS, SVD), got {type(model).__name__}")
    model._check_fitted()
    ks = check_cutoffs(k)
    seed = check_seed(seed)
    threshold = check_threshold(relevance_threshold)
    if isinstance(train, Interactions) != isinstance(test, Interactions):
        raise ReclabError(f"train and test must both be Interactions or both Spark DataFrames, got "
                          f"{type(train).__name__} and {type(test).__name__}")
    if isinstance(test, Interactions):
        check_held_out(model, train, test)
    else:
        _check_id_frames(model, train, test, threshold)
    if session is None:
        session = get_session(getattr(model, "master", None))
    max_k = ks[-1]

    relevant = _pairs(session, test, "test", model, threshold).cache()
    seen = _pairs(session, train, "train", model, None).select("user", "item").where(
        functions.col("item").isNotNull())
    top = None
    try:
        evaluated = relevant.groupBy("user").agg(
            functions.first("user_index", ignorenulls=True).alias("user_index"),
            functions.count("*").alias("n_relevant"))
        n_factors = int(model.user_factors_.shape[1])
        user_columns = {"user_index": np.arange(model.n_users_, dtype=np.int32)}
        item_columns = {"item": np.arange(model.n_items_, dtype=np.int32)}
        for f in range(n_factors):
            user_columns[f"p{f}"] = model.user_factors_[:, f].astype(np.float32)
            item_columns[f"q{f}"] = model.item_factors_[:, f].astype(np.float32)
        offset = model._item_offset()
        if offset is not None:
            item_columns["b"] = np.asarray(offset, dtype=np.float32)
        # Items without training interactions rank last, tied, as score_items ranks them.
        last = model._ranked_last()
        if last is not None:
            item_columns["rated"] = (~last).astype(np.int32)
        item_factors = to_spark(session, item_columns)
        # Users unknown to the model (a DataFrame test) have no row: zero factors.
        zero = functions.lit(0.0).cast("float")
        users = (evaluated.join(to_spark(session, user_columns), "user_index", "left")
                 .select("user", "user_index", *[functions.coalesce(f"p{f}", zero).alias(f"p{f}")
                                   for f in range(n_factors)]))
        # One column per factor rather than arrays: Spark compiles this expression to Java code,
        # about 10x faster than its interpreted higher-order array functions. The sum runs
        # left to right in double over exact float32 products, then rounds once to float32:
        # bit for bit what SparkALS._score computes with numpy.
        score = functions.lit(0.0)
        for f in range(n_factors):
            score = score + functions.col(f"p{f}").cast("double") * functions.col(f"q{f}").cast("double")
        if offset is not None:
            score = score + functions.col("b").cast("double")
        # The users come grouped (hash partitioned) by user and the items are broadcast, so each
        # user's scores stay in one partition and the per-user ranking shuffles none of them.
        # reclab.ranking.tie_keys: Spark's hash of three int columns
        tie = functions.hash(functions.lit(seed % 2**31).cast("int"),
                             functions.col("user_index").cast("int"), functions.col("item").cast("int"))
        score = score.cast("float")
        if last is not None:   # null: after every scored item, and all equal
            score = functions.when(functions.col("rated") == 1, score)
        scored = (users.crossJoin(functions.broadcast(item_factors))
                  .select("user", "item", score.alias("score"), tie.alias("tie"))
                  .join(seen, ["user", "item"], "left_anti"))
        order = Window.partitionBy("user").orderBy(functions.col("score").desc_nulls_last(),
                                                   functions.col("tie").asc(), functions.col("item").asc())
        top = (scored.withColumn("rank", functions.row_number().over(order))
               .where(functions.col("rank") <= max_k).select("user", "item", "rank").cache())
        hit_order = Window.partitionBy("user").orderBy("rank")
        hits = (top.join(relevant.select("user", "item"), ["user", "item"])
                .withColumn("nth", functions.row_number().over(hit_order)))
        summary, n_evaluated = _summarize(hits, evaluated, ks)
        if n_evaluated == 0:
            rule = "a test interaction" if threshold is None else f"a test rating >= {threshold}"
            raise ReclabError(f"no user has {rule}, so there is nothing to evaluate; check the test "
                              f"split and relevance_threshold")
        shown = [functions.count_distinct(functions.when(functions.col("rank") <= cut, functions.col("item")))
                 .alias(f"coverage@{cut}") for cut in ks]
        coverage = top.agg(*shown).collect()[0].asDict()
    finally:
        relevant.unpersist()
        if top is not None:
            top.unpersist()
    for cut in ks:
        summary[f"coverage@{cut}"] = coverage[f"coverage@{cut}"] / float(model.n_items_)
    return summary


def _summarize(hits, evaluated, ks) -> tuple[dict, int]:
    """Macro means of every ranking metric at every cutoff from the hit ranks of each user, and
    the number of evaluated users."""
    functions = sql_functions()
    col, when, lit = functions.col, functions.when, functions.lit
    max_k = ks[-1]
    # Discounts and ideal DCGs from numpy, as reclab.metrics computes them, passed as literals.
    discounts = 1.0 / np.log2(np.arange(2, max_k + 2, dtype=np.float64))
    ideal = np.cumsum(discounts)
    discount = functions.array(*[lit(float(d)) for d in discounts])
    ideal_dcg = functions.array(*[lit(float(d)) for d in ideal])
    sums = []
    for cut in ks:
        inside = col("rank") <= cut
        sums += [functions.sum(when(inside, 1).otherwise(0)).alias(f"hits{cut}"),
                 functions.sum(when(inside, functions.element_at(discount, col("rank"))).otherwise(0.0))
                 .alias(f"dcg{cut}"),
                 functions.sum(when(inside, col("nth") / col("rank")).otherwise(0.0)).alias(f"ap{cut}")]
    per_user = hits.groupBy("user").agg(functions.min("rank").alias("first"), *sums)
    table = evaluated.join(per_user, "user", "left").na.fill(0)
    means = []
    for cut in ks:
        n_ideal = functions.least(col("n_relevant"), lit(cut))
        n_hits = col(f"hits{cut}").cast("double")
        values = {
            "precision": n_hits / cut,
            "recall": n_hits / col("n_relevant"),
            "ndcg": col(f"dcg{cut}") / functions.element_at(ideal_dcg, n_ideal.cast("int")),
            "map": col(f"ap{cut}") / n_ideal,
            "mrr": when((col("first") >= 1) & (col("first") <= cut), 1.0 / col("first")).otherwise(0.0),
            "hit_rate": when(col(f"hits{cut}") > 0, 1.0).otherwise(0.0),
        }
        means += [functions.avg(values[name]).alias(f"{name}@{cut}") for name in RANKING_METRICS]
    row = table.agg(functions.count("*").alias("n_users"), *means).collect()[0].asDict()
    if row["n_users"] == 0:
        return {}, 0
    summary = {f"{name}@{cut}": float(row[f"{name}@{cut}"]) for name in RANKING_METRICS for cut in ks}
    return summary, int(row["n_users"])
