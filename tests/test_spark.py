"""The Spark backend (reclab/spark/) on a local[2] SparkSession: SparkALS against the model
contract and ExplicitALS, reclab.spark.evaluate against reclab.evaluate, and the DataFrame paths.

One session serves the whole module (starting it costs ~10 s); ML-100k fits take a few seconds.
"""

import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="the Spark backend needs pyspark and Java 17 "
                                      "(pip install 'reclab[spark]')")

import reclab as rl  # noqa: E402
import reclab.models as models  # noqa: E402
from model_contract import CHECKS, assert_same_state, contract_data  # noqa: E402
from reclab import spark as rs  # noqa: E402
from reclab.models import SparkALS  # noqa: E402
from reclab.errors import ReclabError  # noqa: E402
from reclab.models.als import ExplicitALS  # noqa: E402

pytestmark = pytest.mark.spark

# Two blocks suit two local cores; results depend on num_blocks, so every fit here fixes it.
FACTORS, ITERATIONS, REGULARIZATION, BLOCKS = 10, 10, 0.1, 2


@pytest.fixture(scope="module")
def spark():
    session = rs.get_session("local[2]", {"spark.driver.memory": "1g"})
    yield session
    session.stop()


def frame_of(spark, data: rl.Interactions):
    """A Spark DataFrame of (user, item, rating, timestamp) with original ids, as read_interactions gives."""
    table = data.to_frame()
    return rs.frames.to_spark(spark, {name: table[name].to_numpy() for name in table.columns})


def pairs_rmse(model, test):
    users = np.repeat(np.arange(test.n_users), np.diff(test.matrix.indptr))
    return rl.metrics.rmse(test.matrix.data, model.predict(users, test.matrix.indices))


# -- session ------------------------------------------------------------------------------------
def test_get_session_reuses_the_active_session(spark):
    assert rs.get_session() is spark and rs.get_session("local[2]") is spark
    assert spark.conf.get("spark.ui.enabled") == "false"
    # two shuffle partitions per local core, not Spark's 200 of a cluster
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
    with pytest.raises(ReclabError, match="master 'local\\[2\\]' is already active"):
        rs.get_session("local[1]")
    with pytest.raises(ReclabError, match="master URL .* got 'nowhere'"):
        rs.get_session("nowhere")


@pytest.mark.parametrize("master, partitions", [("local", "2"), ("local[3]", "6"), ("local[2, 4]", "4"),
                                                ("local[*]", str(2 * (os.cpu_count() or 1))),
                                                ("spark://host:7077", None), ("yarn", None)])
def test_local_masters_get_two_shuffle_partitions_per_core(master, partitions):
    assert rs.session._local_defaults(master).get("spark.sql.shuffle.partitions") == partitions


# -- model contract on the tiny contract data -----------------------------------------------------
CONTRACT_MODELS = {
    "explicit": lambda: SparkALS(factors=4, iterations=3, num_blocks=BLOCKS),
    "implicit": lambda: SparkALS(factors=4, iterations=3, implicit=True, alpha=2.0, num_blocks=BLOCKS),
}
# Every check for explicit ratings; for implicit feedback, those where the two differ.
IMPLICIT_CHECKS = ("check_scores", "check_seen_items_never_recommended", "check_predict",
                   "check_save_load_roundtrip")
CONTRACT_CASES = ([("explicit", check) for check in CHECKS]
                  + [("implicit", check) for check in CHECKS if check.__name__ in IMPLICIT_CHECKS])


@pytest.mark.parametrize("kind,check", CONTRACT_CASES,
                         ids=[f"{kind}-{check.__name__}" for kind, check in CONTRACT_CASES])
def test_contract(spark, kind, check, tmp_path):
    check(CONTRACT_MODELS[kind], contract_data(), tmp_path)


def test_load_knows_sparkals_and_needs_no_spark(spark, tmp_path):
    model = CONTRACT_MODELS["explicit"]().fit(contract_data())
    loaded = models.load(model.save(tmp_path / "spark_als.npz"))
    assert type(loaded) is SparkALS
    np.testing.assert_array_equal(loaded.user_ids_, contract_data().user_ids)


def test_explicit_model_needs_ratings(spark):
    ones = rl.Interactions.from_matrix(contract_data().matrix.astype(bool).astype(np.float32))
    with pytest.raises(ReclabError, match="implicit=True"):
        SparkALS(num_blocks=BLOCKS).fit(ones)


@pytest.mark.parametrize("name, value", [("seed", 2**63), ("num_blocks", 2**31), ("factors", 2**31),
                                         ("iterations", 2**31)])
def test_parameters_beyond_sparks_java_types_are_refused(spark, name, value):
    # Spark takes them as a Java long (seed) and ints: they failed inside Spark with a Py4J error
    # (NumberFormatException, ClassCastException), after the baseline was fitted
    model = SparkALS(num_blocks=BLOCKS).set_params(**{name: value})
    with pytest.raises(ReclabError, match=f"^SparkALS parameter {name} must be an integer in \\[\\d+, {value - 1}\\]"):
        model.fit(contract_data())
    SparkALS(factors=2, iterations=1, num_blocks=BLOCKS, seed=2**63 - 1).fit(contract_data())


# -- ML-100k: accuracy, evaluation, DataFrames ----------------------------------------------------
@pytest.fixture(scope="module")
def spark_model(spark, ml100k_split):
    train, _ = ml100k_split
    return SparkALS(factors=FACTORS, iterations=ITERATIONS, regularization=REGULARIZATION,
                       num_blocks=BLOCKS, seed=0).fit(train)


def test_rmse_within_003_of_explicit_als(spark_model, ml100k_split):
    train, test = ml100k_split
    reference = ExplicitALS(factors=FACTORS, iterations=ITERATIONS, regularization=REGULARIZATION,
                            seed=0).fit(train)
    spark_rmse, reference_rmse = pairs_rmse(spark_model, test), pairs_rmse(reference, test)
    assert 0.88 < spark_rmse < 0.96, spark_rmse          # measured 0.925 (ExplicitALS 0.924)
    assert abs(spark_rmse - reference_rmse) <= 0.03, (spark_rmse, reference_rmse)


def test_biases_are_bias_normalizer(spark_model, ml100k_split):
    baseline = rl.normalize.BiasNormalizer(10.0, 25.0, 3).fit(ml100k_split[0])
    assert spark_model.global_mean_ == baseline.global_mean_
    np.testing.assert_array_equal(spark_model.item_bias_, baseline.item_bias_.astype(np.float32))


@pytest.fixture(scope="module")
def spark_summary(spark_model, ml100k_split):
    return rs.evaluate(spark_model, *ml100k_split, k=(5, 10))


@pytest.mark.parametrize("threshold", [None, 4.0])
def test_spark_evaluate_equals_reclab_evaluate(spark_model, ml100k_split, spark_summary, threshold):
    train, test = ml100k_split
    expected = rl.evaluate(spark_model, train, test, k=(5, 10), relevance_threshold=threshold,
                           n_bootstrap=0).summary
    got = (spark_summary if threshold is None else
           rs.evaluate(spark_model, train, test, k=(5, 10), relevance_threshold=threshold))
    assert list(got) == [name for name in expected if name not in ("rmse", "mae")]
    for name, value in got.items():
        assert value == pytest.approx(expected[name], abs=1e-9), name
    assert got["precision@10"] > 0.05   # measured 0.070: the lists are real, not all misses


def test_spark_evaluate_on_dataframes_of_ids(spark, spark_model, ml100k_split, spark_summary):
    train, test = ml100k_split
    got = rs.evaluate(spark_model, frame_of(spark, train), frame_of(spark, test), k=(5, 10))
    assert got == pytest.approx(spark_summary, abs=1e-12)
    # what reclab.evaluate refuses, refused on DataFrames too (they gave metrics of 0)
    train_frame = frame_of(spark, train)
    with pytest.raises(ReclabError, match=f"^each of the test split's {train.nnz} interactions is also in train"):
        rs.evaluate(spark_model, train_frame, train_frame, k=10)
    with pytest.raises(ReclabError, match=f"^the test split holds every one of train's {train.nnz} interactions"):
        rs.evaluate(spark_model, train_frame, frame_of(spark, train.union(test)), k=10)


def test_spark_evaluate_of_an_implicit_model(spark):
    data = contract_data()
    train, test = rl.split.random_holdout(data, test_frac=0.3, seed=1)
    model = CONTRACT_MODELS["implicit"]().fit(train)
    expected = rl.evaluate(model, train, test, k=(3, 5), n_bootstrap=0).summary
    assert rs.evaluate(model, train, test, k=(3, 5)) == pytest.approx(expected, abs=1e-9)


def test_ties_are_broken_in_spark_as_in_reclab_evaluate(spark):
    # reclab.ranking.tie_keys is Spark SQL's hash of three int columns, bit for bit ...
    from reclab.ranking import tie_keys

    users, items = [0, 1, 7, 942, 2**31 - 1], [0, 1, 2, 1681, 65537]
    frame = spark.createDataFrame([(u, i) for u in users for i in items], "user int, item int")
    for seed in (0, 3, 2**31 + 5):
        functions = rs.session.sql_functions()
        hashed = frame.select(functions.hash(functions.lit(seed % 2**31).cast("int"),
                                             "user", "item").alias("key")).collect()
        assert [row.key for row in hashed] == tie_keys(seed, users, items).ravel().tolist()
    # ... so a model whose scores tie (here: users without factors rank every item equal) gets
    # the same metrics from both, for any seed.
    data = contract_data()
    train, test = rl.split.random_holdout(data, test_frac=0.3, seed=1)
    model = CONTRACT_MODELS["implicit"]().fit(train)
    model.user_factors_[::2] = 0.0
    for seed in (0, 5):
        expected = rl.evaluate(model, train, test, k=(3, 5), n_bootstrap=0, seed=seed).summary
        assert rs.evaluate(model, train, test, k=(3, 5), seed=seed) == pytest.approx(expected, abs=1e-9)
    assert rl.evaluate(model, train, test, k=(3, 5), n_bootstrap=0, seed=0).summary != expected


def test_spark_evaluate_rejects_bad_input(spark, spark_model, ml100k_split):
    train, test = ml100k_split
    with pytest.raises(ReclabError, match="factor model"):
        rs.evaluate(models.Popularity().fit(train), train, test)
    other = rl.split.random_holdout(contract_data(), seed=0)
    with pytest.raises(ReclabError, match="model was fitted on"):
        rs.evaluate(spark_model, other[0], other[1])
    with pytest.raises(ReclabError, match="does not record the ids"):
        rs.evaluate(models.SVD(factors=2).fit(train), frame_of(spark, train), frame_of(spark, test))
    with pytest.raises(ReclabError, match="must both be Interactions or both Spark DataFrames"):
        rs.evaluate(spark_model, train, frame_of(spark, test))
    with pytest.raises(ReclabError, match="no user has a test rating >= 9"):
        rs.evaluate(spark_model, train, test, relevance_threshold=9)
    with pytest.raises(ReclabError, match="in the data SparkALS was fitted on, and not in train"):
        rs.evaluate(spark_model, test, train)   # swapped


def test_fit_from_dataframe_equals_fit_from_interactions(spark, ml100k, tmp_path):
    """read_interactions -> SparkALS.fit(df) learns, bit for bit, what fit(to_interactions(df)) does."""
    subset = ml100k.restrict(users=np.arange(300))
    frame_of(spark, subset).write.parquet(str(tmp_path / "ratings.parquet"))
    frame = rs.read_interactions(tmp_path / "ratings.parquet", timestamp="timestamp")
    data = rs.to_interactions(frame)
    np.testing.assert_array_equal(data.user_ids, subset.user_ids)
    from_frame = SparkALS(factors=FACTORS, iterations=5, num_blocks=BLOCKS).fit(frame)
    from_data = SparkALS(factors=FACTORS, iterations=5, num_blocks=BLOCKS).fit(data)
    assert_same_state(from_frame, from_data)
    assert np.abs(from_frame.user_factors_).max() > 0


def test_read_interactions_csv_matches_the_loader(spark, data_dir, ml100k):
    frame = rs.read_interactions(data_dir / "ml-100k" / "u.data", user="_c0", item="_c1", rating="_c2",
                                 timestamp="_c3", format="csv", sep="\t", header=False)
    assert frame.columns == ["user", "item", "rating", "timestamp"]
    data = rs.to_interactions(frame)
    np.testing.assert_array_equal(data.user_ids, ml100k.user_ids)
    np.testing.assert_array_equal(data.item_ids, ml100k.item_ids)
    assert (data.matrix != ml100k.matrix).nnz == 0
    np.testing.assert_array_equal(data.timestamps, ml100k.timestamps)
    with pytest.raises(ReclabError, match="column \\['stars'\\] not found; columns are \\['_c0'"):
        rs.read_interactions(data_dir / "ml-100k" / "u.data", user="_c0", item="_c1", rating="stars",
                             format="csv", sep="\t", header=False)


def test_read_interactions_csv_keeps_ids_as_written(spark, tmp_path):
    """As reclab.datasets.read_interactions reads them: "007" and "7" are two users; ids all
    written as integers are long integers."""
    (tmp_path / "r.csv").write_text("user,item,rating\n007,1,5\n7,1,1\n008,42,3\n")
    frame = rs.read_interactions(tmp_path / "r.csv", format="csv")
    assert [field.dataType.simpleString() for field in frame.schema] == ["string", "bigint", "float"]
    data = rs.to_interactions(frame)
    local = rl.datasets.read_interactions(tmp_path / "r.csv")
    assert data.user_ids.tolist() == local.user_ids.tolist() == ["007", "008", "7"]
    assert data.item_ids.tolist() == local.item_ids.tolist() == [1, 42]
    assert (data.matrix != local.matrix).nnz == 0
    (tmp_path / "s.csv").write_text("user, item, rating\n1, 10, 4.0\n 2 ,A1 , 3\n")   # spaces: layout
    data = rs.to_interactions(rs.read_interactions(tmp_path / "s.csv", format="csv"))
    local = rl.datasets.read_interactions(tmp_path / "s.csv")
    assert data.user_ids.tolist() == local.user_ids.tolist() == [1, 2]
    assert data.item_ids.tolist() == local.item_ids.tolist() == ["10", "A1"]
    assert (data.matrix != local.matrix).nnz == 0
    # 19 digits within a long are integers (they were read as text: string ids where the local
    # reader has int64 ones); beyond a long's range, text
    (tmp_path / "l.csv").write_text("user,item,rating\n1234567890123456789,-9223372036854775808,4\n"
                                    "7,9223372036854775808,3\n")
    frame = rs.read_interactions(tmp_path / "l.csv", format="csv")
    assert [field.dataType.simpleString() for field in frame.schema] == ["bigint", "string", "float"]
    data = rs.to_interactions(frame)
    local = rl.datasets.read_interactions(tmp_path / "l.csv")
    assert data.user_ids.tolist() == local.user_ids.tolist() == [7, 1234567890123456789]
    assert data.item_ids.tolist() == ["-9223372036854775808", "9223372036854775808"]
    (tmp_path / "n.csv").write_text("user,item,rating\nNA,None,4\nnull,nan,3\n")   # names, not missing
    data = rs.to_interactions(rs.read_interactions(tmp_path / "n.csv", format="csv"))
    local = rl.datasets.read_interactions(tmp_path / "n.csv")
    assert data.user_ids.tolist() == local.user_ids.tolist() == ["NA", "null"]
    assert data.item_ids.tolist() == local.item_ids.tolist() == ["None", "nan"]
    (tmp_path / "z.csv").write_text("user,item,rating\n-0,1,5\n0,1,2\n")   # "-0" was read as 0
    data = rs.to_interactions(rs.read_interactions(tmp_path / "z.csv", format="csv"))
    local = rl.datasets.read_interactions(tmp_path / "z.csv")
    assert data.user_ids.tolist() == local.user_ids.tolist() == ["-0", "0"] and data.nnz == 2


def test_fit_rejects_repeated_pairs(spark):
    frame = rs.frames.to_spark(spark, {"user": np.array([1, 1, 2]), "item": np.array([5, 5, 5]),
                                        "rating": np.array([3.0, 4.0, 5.0], dtype=np.float32)})
    model = SparkALS(num_blocks=BLOCKS)
    with pytest.raises(ReclabError, match="1 repeated \\(user, item\\) pair"), warnings.catch_warnings():
        warnings.simplefilter("error")   # refused, not also "kept the latest row" by from_frame's warning
        model.fit(frame)
    assert not [name for name in vars(model) if name.endswith("_")]


# -- evaluate on DataFrames: what it refuses before scoring ---------------------------------------
@pytest.fixture(scope="module")
def small_frames(spark):
    """A SparkALS fitted on a split of the contract data, and the split as DataFrames of ids."""
    train, test = rl.split.random_holdout(contract_data(), test_frac=0.3, seed=1)
    return CONTRACT_MODELS["explicit"]().fit(train), frame_of(spark, train), frame_of(spark, test)


def with_null(frame, column):
    """``frame`` with ``column`` null in its first row (the others unchanged)."""
    functions = rs.session.sql_functions()
    first = frame.first()
    row = (functions.col("user") == first.user) & (functions.col("item") == first.item)
    return frame.withColumn(column, functions.when(~row, functions.col(column)))


@pytest.mark.parametrize("side, column", [("test", "user"), ("test", "item"), ("train", "item")])
def test_spark_evaluate_refuses_missing_ids(small_frames, side, column):
    # they were pooled into one made-up user, counted relevant but unrecommendable, or switched
    # off the filtering of a user's seen items
    model, train, test = small_frames
    frames = {"train": train, "test": test}
    frames[side] = with_null(frames[side], column)
    with pytest.raises(ReclabError, match=f"^the {side} DataFrame's {column} column has 1 missing "
                                          f"\\(null\\) id"):
        rs.evaluate(model, frames["train"], frames["test"], k=3)


def test_spark_evaluate_refuses_ids_of_different_types(small_frames):
    # a string user column against a bigint one: Spark's implicit cast joins test user 5 to
    # both '5' and '005'
    model, train, test = small_frames
    text = train.withColumn("user", train["user"].cast("string"))
    with pytest.raises(ReclabError, match="^the user ids of train are string but those of test are "
                                          "bigint.*cast.*same schema"):
        rs.evaluate(model, text, test, k=3)
    both = test.withColumn("user", test["user"].cast("string"))   # the model's ids are integers
    with pytest.raises(ReclabError, match="^the user ids of train and test are string but those "
                                          "SparkALS was fitted on are integers"):
        rs.evaluate(model, text, both, k=3)
    narrow = test.withColumn("item", test["item"].cast("int"))    # int and bigint: one kind
    assert rs.evaluate(model, train, narrow, k=3) == rs.evaluate(model, train, test, k=3)


def test_spark_evaluate_refuses_interactions_with_other_ids(small_frames):
    # a test split of the same shape whose ids differ names other items at the same indices:
    # reclab.evaluate refuses it, Spark scored it (precision@3 0.099 on these lists)
    model = small_frames[0]
    train, test = rl.split.random_holdout(contract_data(), test_frac=0.3, seed=1)
    other = rl.Interactions.from_matrix(test.matrix, item_ids=test.item_ids + 1000)
    for rule in (rl.evaluate, rs.evaluate):
        with pytest.raises(ReclabError, match="^train \\(40, 25\\) and test \\(40, 25\\) must share users and items"):
            rule(model, train, other, k=3)
    assert rs.evaluate(model, train, test, k=3)["precision@3"] > 0


@pytest.mark.parametrize("side, column", [("train", "user"), ("test", "user"), ("test", "item")])
def test_spark_evaluate_checks_columns_first(small_frames, side, column):
    model, train, test = small_frames
    frames = {"train": train, "test": test}
    frames[side] = frames[side].withColumnRenamed(column, "other")
    with pytest.raises(ReclabError, match=f"^{side} DataFrame: column \\['{column}'\\] not found"):
        rs.evaluate(model, frames["train"], frames["test"], k=3)


def test_read_interactions_names_the_file_column_and_value_that_spark_could_not_read(spark, tmp_path):
    """A bad value is refused as the file is read, naming it, rather than failing deep inside the
    frame's first Spark job (CAST_INVALID_INPUT under ANSI mode) or becoming a null rating."""
    header = "user,item,stars,ts\n1,10,4.0,100\n"
    cases = {
        "2,10,abc,101\n3,10,zz,102": "rating column 'stars' has 2 values that are not a number, such as 'abc'",
        "2,10,,101": r"rating column 'stars' has 1 missing value \(an empty field\); every row needs a rating",
        "2,10,inf,101": "rating column 'stars' has 1 value that is not a finite number within float32's "
                        r"range \(\+-3.4e38\), such as 'inf'",
        "2,10,NaN,101": "rating column 'stars' has 1 value that is not a finite number.* such as 'NaN'",
        "2,10,1e39,101": "rating column 'stars' has 1 value that is not a finite number.* such as '1e39'",
        "2,10,3,soon": r"timestamp column 'ts' has 1 value that is not a number \(seconds\) or an ISO 8601 "
                       "date-time, such as 'soon'",
        "2,10,3,2020-01-01": r"timestamp column 'ts' mixes numbers \(seconds\) and date-times, such as "
                             "'2020-01-01'; write every timestamp one way",
        "2,10,3,": "timestamp column 'ts' has 1 missing value",
        ",10,3,101": "user column 'user' has 1 missing id",
        "2,,3,101": "item column 'item' has 1 missing id",
        # Spark drops the fields beyond the header's and fills a short row with nulls
        "2,10,3,101,7\n3,10,3,102,8": r"2 rows have more or fewer fields than the 4 columns its header "
                                     r"names \(user, item, stars, ts\), such as '2,10,3,101,7'",
        "2,10,3": "1 row has more or fewer fields than the 4 columns",
    }
    for number, (row, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{number}.csv"
        path.write_text(header + row + "\n")
        with pytest.raises(ReclabError, match=f"^{re.escape(str(path))}: {message}"):
            rs.read_interactions(path, rating="stars", timestamp="ts", format="csv")
    # what a column not read is not checked: implicit feedback ignores a bad rating column
    data = rs.to_interactions(rs.read_interactions(tmp_path / "bad0.csv", rating=None, format="csv"))
    assert data.nnz == 3 and set(data.matrix.data) == {1.0}
    # Parquet's nulls too, named as nulls
    pd.DataFrame({"user": [1, 2], "item": [10, 10], "rating": [4.0, None]}).to_parquet(tmp_path / "r.parquet")
    with pytest.raises(ReclabError, match=r"rating column 'rating' has 1 missing value \(null\)"):
        rs.read_interactions(tmp_path / "r.parquet")


def test_read_interactions_reads_date_times_as_seconds_like_the_local_reader(spark, tmp_path):
    """A CSV's ISO 8601 timestamps and Parquet's date-times (which Spark would not cast to a number)
    are seconds since 1970 UTC, as reclab's own reader reads a CSV's; one without a time zone is
    read as UTC, whatever the session's time zone (Spark's cast would read it in that one)."""
    written = ["2020-01-01", "2020-01-01T12:30:00", "2020-01-01 12:30:00.5", "2020-01-01T12:30Z",
               "2020-01-01T12:30:00+02:00", "2020-01-01T12:30:00-0530"]
    (tmp_path / "iso.csv").write_text("user,item,rating,ts\n" + "".join(
        f"{user},10,4.0,{when}\n" for user, when in enumerate(written)))
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        iso = rs.to_interactions(rs.read_interactions(tmp_path / "iso.csv", timestamp="ts", format="csv"))
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    np.testing.assert_array_equal(
        iso.timestamps, rl.datasets.read_interactions(tmp_path / "iso.csv", timestamp="ts").timestamps)
    assert iso.timestamps[1] - iso.timestamps[0] == 12.5 * 3600
    # Parquet's date-times
    (tmp_path / "dates.csv").write_text("user,item,rating,ts\n1,10,4.0,2020-01-01T00:00:00\n"
                                        "2,10,3.0,2021-06-01T12:30:00\n")
    local = rl.datasets.read_interactions(tmp_path / "dates.csv", timestamp="ts")
    when = pd.to_datetime(["2020-01-01 00:00:00", "2021-06-01 12:30:00"])
    for name, written in (("naive", when), ("paris", when.tz_localize("Europe/Paris"))):
        pd.DataFrame({"user": [1, 2], "item": [10, 10], "rating": [4.0, 3.0],
                      "ts": written}).to_parquet(tmp_path / f"{name}.parquet")
    naive = rs.to_interactions(rs.read_interactions(tmp_path / "naive.parquet", timestamp="ts"))
    np.testing.assert_array_equal(naive.timestamps, local.timestamps)
    paris = rs.to_interactions(rs.read_interactions(tmp_path / "paris.parquet", timestamp="ts"))
    np.testing.assert_array_equal(paris.timestamps, local.timestamps - [3600, 7200])   # UTC+1, +2 (summer)
    # a date is its midnight UTC; a column of another type is named with its type
    pd.DataFrame({"user": [1, 2], "item": [10, 10], "rating": [4.0, 3.0], "ts": when.date,
                  "tags": [["a"], ["b"]]}).to_parquet(tmp_path / "days.parquet")
    days = rs.to_interactions(rs.read_interactions(tmp_path / "days.parquet", timestamp="ts"))
    np.testing.assert_array_equal(days.timestamps, local.timestamps - [0, 45000])   # 12:30 -> 00:00
    with pytest.raises(ReclabError, match="timestamp column 'tags' holds values of type array<string>, "
                                          "not numbers or date-times"):
        rs.read_interactions(tmp_path / "days.parquet", timestamp="tags")


def test_read_interactions_takes_column_names_as_written(spark, tmp_path):
    # a dot is part of the name, not a nested field; a backtick too
    (tmp_path / "dots.csv").write_text("user.id,item.id,my`rating\n1,10,4\n2,10,3\n2,11,5\n")
    frame = rs.read_interactions(tmp_path / "dots.csv", user="user.id", item="item.id",
                                 rating="my`rating", format="csv")
    data = rs.to_interactions(frame)
    assert data.user_ids.tolist() == [1, 2] and data.item_ids.tolist() == [10, 11]
    named = frame.toDF("user.id", "item.id", "my`rating")
    again = rs.to_interactions(named, user="user.id", item="item.id", rating="my`rating")
    assert (again.matrix != data.matrix).nnz == 0
