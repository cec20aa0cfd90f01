"""Robustness (issue 8): random data keeps every invariant, bad input gets a clear error, files are safe.

- Property-based tests (hypothesis) over the data constructors, the splits and evaluation on random
  small data: duplicates, gaps in ids, string ids, single-user and single-item data.
- Bad input at every public entry point raises ``ValueError`` (in practice ``ReclabError``) whose
  message names the bad value.
- Malformed MovieLens files, damaged or crafted model files and unsafe archives are refused.
- No code in ``reclab/`` can execute what a file contains (no pickle, no unsafe YAML, no eval).

Neighbouring files hold the rest: tests/test_data.py, test_split.py and test_metrics.py the
reference checks, tests/model_contract.py truncation and a flipped byte of every model's file,
tests/test_download.py cut downloads and the basic zip escapes, tests/test_tuning.py the SIGKILL
resume.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import reclab as rl
from helpers import crafted_zip
from reclab import Interactions, ReclabError, datasets, metrics, models, split
from reclab.datasets import _extract_zip
from reclab.models.persistence import digest as _digest
from reclab.normalize import BiasNormalizer
from reclab.preprocess import kcore
from reclab.ranking import top_n

# Frames with repeated (user, item) rows are part of what these tests draw: from_frame's warning
# about them is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:.*rows repeat an earlier")

PACKAGE = Path(rl.__file__).resolve().parent
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- random interaction tables ----------------------------------------------------------------
def _ids(codes, kind: str):
    """Gapped ids from small codes: ints 3, 10, 17, ... or strings 'u0', 'u3', 'u6', ..."""
    codes = np.asarray(codes)
    return codes * 7 + 3 if kind == "int" else np.array([f"u{3 * c}" for c in codes], dtype=object)


@st.composite
def frames(draw, max_users: int = 7, max_items: int = 9, max_rows: int = 45):
    """A frame of (user, item, rating, time) rows with duplicates, gaps and sometimes one user/item."""
    shape = draw(st.sampled_from(["general", "general", "single-user", "single-item"]))
    n = draw(st.integers(1, max_rows))
    users = [0] * n if shape == "single-user" else draw(
        st.lists(st.integers(0, max_users - 1), min_size=n, max_size=n))
    items = [0] * n if shape == "single-item" else draw(
        st.lists(st.integers(0, max_items - 1), min_size=n, max_size=n))
    ratings = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0, 3.5, 4.0, 5.0]), min_size=n, max_size=n))
    times = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    kind = draw(st.sampled_from(["int", "str"]))
    return pd.DataFrame({"user": _ids(users, kind), "item": _ids(items, "int" if kind == "str" else "str"),
                         "rating": ratings, "time": times})


@st.composite
def dense_frames(draw):
    """Random ratings at a random density, from a seed: varied data that hypothesis does not shrink
    to a handful of rows (which would leave nothing to evaluate)."""
    n_users = draw(st.sampled_from([5, 9, 12, 1, 2]))      # one user: a single-user data set
    n_items = draw(st.sampled_from([6, 11, 15, 1, 2]))     # one item: nothing to hold out
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    present = rng.random((n_users, n_items)) < draw(st.floats(0.2, 0.9))
    present[rng.integers(n_users), rng.integers(n_items)] = True
    users, items = np.nonzero(present)
    kind = draw(st.sampled_from(["int", "str"]))
    return pd.DataFrame({"user": _ids(users, kind), "item": _ids(items, "int"),
                         "rating": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=users.size),
                         "time": rng.integers(0, 10, size=users.size)})


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """The documented duplicate rule: per (user, item) the row with the latest time, then the last row."""
    ordered = frame.assign(_row=np.arange(len(frame))).sort_values(["time", "_row"], kind="stable")
    return ordered.drop_duplicates(["user", "item"], keep="last").sort_values(["user", "item"])


# -- constructors -----------------------------------------------------------------------------
@SETTINGS
@given(frame=frames(), data=st.data())
def test_from_frame_keeps_its_rules_on_random_tables(frame, data):
    built = Interactions.from_frame(frame, timestamp="time")
    expected = _latest(frame)
    assert built.shape == (frame["user"].nunique(), frame["item"].nunique())
    assert built.nnz == len(expected)
    assert built.user_ids.tolist() == sorted(set(frame["user"]))
    assert built.item_ids.tolist() == sorted(set(frame["item"]))
    back = built.to_frame()
    assert back[["user", "item"]].values.tolist() == expected[["user", "item"]].values.tolist()
    assert back["rating"].tolist() == expected["rating"].tolist()
    assert back["timestamp"].tolist() == expected["time"].astype(float).tolist()
    matrix = built.matrix
    assert matrix.dtype == np.float32 and matrix.has_sorted_indices
    assert not matrix.data.flags.writeable and not built.user_ids.flags.writeable
    assert np.array_equal(built.user_index(built.user_ids), np.arange(built.n_users))
    assert np.array_equal(built.item_index(built.item_ids), np.arange(built.n_items))
    assert built.user_counts().sum() == built.item_counts().sum() == built.nnz

    # The same table without duplicates in another row order is the same container.
    unique = expected.sample(frac=1.0, random_state=data.draw(st.integers(0, 2**31 - 1), label="perm"))
    assert Interactions.from_frame(unique, timestamp="time").fingerprint() == built.fingerprint()
    again = Interactions.from_matrix(built.matrix, built.user_ids, built.item_ids, built.timestamps)
    assert again.fingerprint() == built.fingerprint()

    mask = np.array(data.draw(st.lists(st.booleans(), min_size=built.nnz, max_size=built.nnz), label="mask"))
    assert built.select(mask).union(built.select(~mask)).fingerprint() == built.fingerprint()
    users = data.draw(st.lists(st.integers(0, built.n_users - 1), unique=True), label="users")
    items = data.draw(st.lists(st.integers(0, built.n_items - 1), unique=True), label="items")
    if users and items:
        kept = built.restrict(users=users, items=items)
        inside = np.zeros(built.shape, dtype=bool)
        inside[np.ix_(sorted(users), sorted(items))] = True
        structure = sp.csr_matrix((np.ones(built.nnz), built.matrix.indices, built.matrix.indptr),
                                  shape=built.shape).toarray() > 0
        assert kept.nnz == int((structure & inside).sum())
        assert kept.user_ids.tolist() == built.user_ids[sorted(users)].tolist()


@SETTINGS
@given(frame=frames(), seed=st.integers(0, 2**32 - 1), test_frac=st.floats(0.05, 0.95))
def test_splits_partition_single_user_single_item_and_string_id_data(frame, seed, test_frac):
    data = Interactions.from_frame(frame, timestamp="time")
    pairs = [split.random_holdout(data, test_frac, seed), split.leave_k_out(data, 2, seed),
             split.temporal(data, test_frac, per_user=True), *split.kfold(data, 3, seed)]
    for train, test in pairs:
        assert train.shape == test.shape == data.shape
        # union refuses overlapping sides, so this says: disjoint, and together the whole input
        assert train.union(test).fingerprint() == data.fingerprint()
        # every user with an interaction keeps one in train
        assert np.all(train.user_counts() >= np.minimum(data.user_counts(), 1))
    again = split.random_holdout(data, test_frac, seed)
    assert split.fingerprint(*again) == split.fingerprint(*pairs[0])


@SETTINGS
@given(frame=frames(max_users=6, max_items=6), min_user=st.integers(1, 4), min_item=st.integers(1, 4))
def test_kcore_on_random_data_is_a_core_or_a_clear_error(frame, min_user, min_item):
    data = Interactions.from_frame(frame, timestamp="time")
    try:
        core = kcore(data, min_user, min_item)
    except ReclabError as error:
        assert f"min_user={min_user}" in str(error) and f"min_item={min_item}" in str(error)
        return
    assert core.user_counts().min() >= min_user and core.item_counts().min() >= min_item
    assert set(core.user_ids.tolist()) <= set(data.user_ids.tolist())


# -- evaluation on random data: metrics in [0, 1], never NaN ----------------------------------
MODELS = {
    "Popularity": lambda: models.Popularity(),
    "ItemKNN": lambda: models.ItemKNN(neighbors=3),
    "Bias": lambda: models.Bias(user_reg=1.0, item_reg=1.0),
    "SVD": lambda: models.SVD(factors=1, seed=0),
    "ImplicitALS": lambda: models.ImplicitALS(factors=2, iterations=2, seed=0),
    "ExplicitALS": lambda: models.ExplicitALS(factors=2, iterations=2, seed=0),
}


def _assert_report_is_sane(report, considered: int) -> None:
    unit = [name for name in report.summary if "@" in name]
    for name, value in report.summary.items():
        assert math.isfinite(value), name
        if name in unit:
            assert 0.0 <= value <= 1.0, (name, value)
        else:
            assert name in ("rmse", "mae") and value >= 0.0
    if "rmse" in report.summary:
        assert report.summary["mae"] <= report.summary["rmse"] + 1e-9
    table = report.per_user.drop(columns=["user", "user_id", "n_relevant"])
    assert not table.isna().any().any()
    assert ((table >= 0) & (table <= 1)).all().all()
    assert report.n_evaluated == len(report.per_user) >= 1
    assert report.n_evaluated + report.n_skipped == considered
    for name, (low, high) in report.intervals.items():
        assert math.isfinite(low) and math.isfinite(high) and low <= high + 1e-12, name
        if name in unit:
            assert -1e-12 <= low and high <= 1 + 1e-12, name
    curve = report.curve(["precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage"])
    assert not curve.isna().any().any() and ((curve >= 0) & (curve <= 1)).all().all()
    assert all(math.isfinite(value) for value in report.mlflow_metrics().values())


@pytest.mark.parametrize("name", list(MODELS))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=dense_frames(), seed=st.integers(0, 1000), threshold=st.sampled_from([None, 3.0]))
def test_evaluate_on_random_small_data_gives_metrics_in_0_1_and_no_nan(name, frame, seed, threshold):
    data = Interactions.from_frame(frame, timestamp="time")
    train, test = split.random_holdout(data, 0.3, seed)
    model = MODELS[name]()
    try:
        model.fit(train)
    except ReclabError as error:
        # the only refusals allowed: more factors than the data has rank, or biases of implicit data
        assert "factors" in str(error) or "implicit" in str(error), error
        event("model refused the data")
        return
    try:
        report = rl.evaluate(model, train, test, k=(1, 3, 12), relevance_threshold=threshold,
                             n_bootstrap=30, seed=seed)
    except ReclabError as error:   # a test split without any (relevant) interaction
        assert "nothing to evaluate" in str(error), error
        event("nothing to evaluate")
        return
    event("evaluated")
    _assert_report_is_sane(report, data.n_users)


@SETTINGS
@given(frame=frames(), data=st.data())
def test_ranking_metrics_of_random_lists_stay_in_0_1(frame, data):
    test = Interactions.from_frame(frame, timestamp="time")
    n_users, n_items = test.shape
    users = np.array(data.draw(st.lists(st.integers(0, n_users - 1), min_size=1, unique=True), label="users"))
    length = data.draw(st.integers(1, 6), label="length")
    rows = []
    for _ in users:
        shown = data.draw(st.lists(st.integers(0, n_items - 1), max_size=length, unique=True), label="list")
        rows.append(shown + [-1] * (length - len(shown)))
    ids = np.array(rows, dtype=np.int64)
    cuts = tuple(sorted(set(data.draw(st.lists(st.integers(1, length), min_size=1, max_size=3), label="k"))))
    report = rl.ranking_metrics(users, ids, test, k=cuts, n_bootstrap=20)
    _assert_report_is_sane(report, len(users))


@SETTINGS
@given(st.integers(1, 8).flatmap(lambda n_items: st.tuples(
    st.just(n_items),
    st.lists(st.lists(st.integers(-1, n_items - 1), min_size=4, max_size=4), min_size=1, max_size=6))))
def test_coverage_at_every_k_is_the_distinct_share_of_shown_items(case):
    n_items, rows = case
    ids = np.array(rows)
    curve = metrics.coverage_at_every_k(ids, n_items)
    for k in range(1, 5):
        shown = {item for row in rows for item in row[:k] if item >= 0}
        assert curve[k - 1] == pytest.approx(len(shown) / n_items)
    assert np.all(np.diff(curve) >= 0) and 0 <= curve[0] and curve[-1] <= 1


@SETTINGS
@given(st.lists(st.lists(st.booleans(), min_size=5, max_size=5), min_size=1, max_size=6),
       st.lists(st.integers(0, 4), min_size=6, max_size=6))
def test_every_metric_at_every_k_lies_in_0_1_and_cumulative_ones_never_drop(rows, extra):
    hits = np.array(rows, dtype=bool)
    n_relevant = np.maximum(hits.sum(axis=1), 1) + np.array(extra[:len(rows)])
    for name in metrics.RANKING_METRICS:
        values = metrics.metric_at_every_k(name, hits, n_relevant)
        assert values.shape == hits.shape and np.isfinite(values).all()
        assert np.all((values >= 0) & (values <= 1 + 1e-12)), name
        if name in ("recall", "hit_rate", "mrr"):
            assert np.all(np.diff(values, axis=1) >= -1e-12), name


# -- bad input at every public entry point ----------------------------------------------------
def _small() -> Interactions:
    frame = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3, 3, 4, 4],
                          "item": [10, 20, 30, 10, 40, 20, 30, 40, 10, 30],
                          "rating": [5.0, 3.0, 4.0, 2.0, 1.0, 4.0, 5.0, 3.0, 4.0, 2.0],
                          "t": np.arange(10)})
    items = pd.DataFrame({"title": ["Ten", "Twenty", "Thirty", "Forty"]}, index=[10, 20, 30, 40])
    return Interactions.from_frame(frame, timestamp="t", items=items)


DATA = _small()
TRAIN, TEST = split.leave_k_out(DATA, k=1, seed=0)
SVD_MODEL = models.SVD(factors=1, seed=0).fit(TRAIN)
POPULARITY = models.Popularity().fit(TRAIN)
REPORT = rl.evaluate(POPULARITY, TRAIN, TEST, k=(1, 2), n_bootstrap=0)
NORMALIZER = BiasNormalizer().fit(TRAIN)
EMPTY = DATA.select(np.zeros(DATA.nnz, dtype=bool))     # same users and items, no interaction
HITS = np.array([[True, False]])
LISTS = np.array([[0, 1]])
SPACE = {"factors": [1, 2]}

BAD_INPUT = {
    # K < 1 and list lengths
    "evaluate k=0": (lambda: rl.evaluate(POPULARITY, TRAIN, TEST, k=0), "got 0"),
    "evaluate k=(5, -1)": (lambda: rl.evaluate(POPULARITY, TRAIN, TEST, k=(5, -1)), "got -1"),
    "evaluate k=2.5": (lambda: rl.evaluate(POPULARITY, TRAIN, TEST, k=2.5), "got 2.5"),
    "evaluate k=()": (lambda: rl.evaluate(POPULARITY, TRAIN, TEST, k=()), "k is empty"),
    "ranking_metrics k=0": (lambda: rl.ranking_metrics([0], [[1]], TEST, k=0), "got 0"),
    "precision_at_k k=0": (lambda: metrics.precision_at_k(HITS, k=0), "got 0"),
    "ndcg_at_k k=-2": (lambda: metrics.ndcg_at_k(HITS, np.array([1]), k=-2), "got -2"),
    "coverage_at_k k=0": (lambda: metrics.coverage_at_k(LISTS, 4, k=0), "got 0"),
    "report.curve ks=[0]": (lambda: REPORT.curve("precision", ks=[0]), "got 0"),
    "recommend n=0": (lambda: POPULARITY.recommend(0, n=0), "got 0"),
    "recommend n=-3": (lambda: POPULARITY.recommend([0, 1], n=-3), "got -3"),
    "similar_items n=0": (lambda: SVD_MODEL.similar_items(0, n=0), "got 0"),
    "top_n n=0": (lambda: top_n(np.ones((1, 3)), 0), "got 0"),
    "recommendations_table n=0": (lambda: rl.postprocess.recommendations_table(POPULARITY, TRAIN, [1], n=0),
                                  "got 0"),
    "tune metric precision@0": (lambda: rl.tune(models.SVD(), SPACE, TRAIN, TEST, method="grid",
                                                metric="precision@0"), "'precision@0'"),
    # negative or zero sizes
    "synthetic n_users=0": (lambda: datasets.synthetic(n_users=0), "n_users must be an integer >= 1, got 0"),
    "synthetic n_items=-3": (lambda: datasets.synthetic(n_items=-3), "got -3"),
    "synthetic n_ratings=0": (lambda: datasets.synthetic(n_users=5, n_items=5, n_ratings=0), "n_ratings"),
    "synthetic factors=0": (lambda: datasets.synthetic(factors=0), "factors must be an integer >= 1, got 0"),
    "random_holdout test_frac=0": (lambda: split.random_holdout(DATA, test_frac=0), "got 0"),
    "random_holdout test_frac=-0.5": (lambda: split.random_holdout(DATA, test_frac=-0.5), "got -0.5"),
    "temporal test_frac=1.5": (lambda: split.temporal(DATA, test_frac=1.5), "got 1.5"),
    "leave_k_out k=0": (lambda: split.leave_k_out(DATA, k=0), "k must be an integer >= 1, got 0"),
    "kfold n_splits=0": (lambda: split.kfold(DATA, n_splits=0), "n_splits must be an integer >= 2, got 0"),
    "kcore min_user=0": (lambda: kcore(DATA, min_user=0), "min_user must be an integer >= 1, got 0"),
    "kcore min_item=-1": (lambda: kcore(DATA, min_item=-1), "min_item must be an integer >= 1, got -1"),
    "evaluate batch_size=0": (lambda: rl.evaluate(POPULARITY, TRAIN, TEST, batch_size=0), "got 0"),
    "evaluate n_bootstrap=-1": (lambda: rl.evaluate(POPULARITY, TRAIN, TEST, n_bootstrap=-1), "got -1"),
    "space.sample n=-1": (lambda: rl.space.sample(SPACE, -1), "got -1"),
    "tune n_trials=0": (lambda: rl.tune(models.SVD(), {"factors": {"type": "int", "low": 1, "high": 2}},
                                        TRAIN, TEST, method="random", n_trials=0),
                        "n_trials must be an integer >= 1, got 0"),
    "tune n_jobs=0": (lambda: rl.tune(models.SVD(), SPACE, TRAIN, TEST, method="grid", n_jobs=0), "got 0"),
    "SVD factors=0": (lambda: models.SVD(factors=0).fit(TRAIN), "factors must be an integer >= 1, got 0"),
    "ItemKNN neighbors=-1": (lambda: models.ItemKNN(neighbors=-1).fit(TRAIN), "got -1"),
    "ImplicitALS iterations=0": (lambda: models.ImplicitALS(iterations=0).fit(TRAIN), "got 0"),
    "Bias user_reg=-1": (lambda: models.Bias(user_reg=-1.0).fit(TRAIN), "got -1.0"),
    "BiasNormalizer iterations=0": (lambda: BiasNormalizer(iterations=0).fit(TRAIN), "got 0"),
    "coverage n_items=0": (lambda: metrics.coverage_at_k(LISTS, 0), "got 0"),
    # out-of-range users and items
    "recommend user n_users": (lambda: POPULARITY.recommend(DATA.n_users), f"[{DATA.n_users}]"),
    "recommend user -1": (lambda: POPULARITY.recommend([0, -1]), "[-1]"),
    "score_items float user": (lambda: POPULARITY.score_items([1.5]), "[1.5]"),
    "recommend candidate out of range": (lambda: POPULARITY.recommend(0, candidates=[7]), "[7]"),
    "predict item out of range": (lambda: SVD_MODEL.predict(0, DATA.n_items), f"[{DATA.n_items}]"),
    "similar_items item out of range": (lambda: SVD_MODEL.similar_items([0, 9]), "[9]"),
    "item_similarity out of range": (lambda: SVD_MODEL.item_similarity(0, [0, 11]), "[11]"),
    "evaluate users out of range": (lambda: rl.evaluate(POPULARITY, TRAIN, TEST, users=[0, 9]), "[9]"),
    "ranking_metrics ids out of range": (lambda: rl.ranking_metrics([0], [[12]], TEST, k=1), "12"),
    "coverage ids out of range": (lambda: metrics.coverage_at_k(np.array([[0, 4]]), 4), "4"),
    "user_index unknown id": (lambda: DATA.user_index([1, 99]), "[99]"),
    "item_index unknown id": (lambda: DATA.item_index("ten"), "['ten']"),
    "titles index out of range": (lambda: DATA.titles([0, 4]), "[4]"),
    "titles negative index": (lambda: DATA.titles([-1]), "[-1]"),
    "restrict user out of range": (lambda: DATA.restrict(users=[0, 4]), "[4]"),
    "restrict float index": (lambda: DATA.restrict(items=[0.5]), "[0.5]"),
    "normalizer predict out of range": (lambda: NORMALIZER.predict([7], [0]), "[7]"),
    "because_you_watched unknown id": (lambda: rl.postprocess.because_you_watched(SVD_MODEL, TRAIN, 1, 99),
                                       "[99]"),
    # unknown data set names
    "load ml-100": (lambda: datasets.load("ml-100", download=False), "'ml-100'"),
    "load ML-100K": (lambda: datasets.load("ML-100K", download=False), "'ML-100K'"),
    "fetch movielens": (lambda: datasets.fetch("movielens", download=False), "'movielens'"),
    "load None": (lambda: datasets.load(None), "None"),
    "load a list": (lambda: datasets.load(["ml-100k"]), "['ml-100k']"),
    # search spaces with empty bounds
    "space int low == high": (lambda: rl.space.parse_space({"factors": {"type": "int", "low": 8, "high": 8}}),
                              "low=8, high=8"),
    "space real low > high": (lambda: rl.space.parse_space({"reg": {"type": "real", "low": 1.0, "high": 0.1}}),
                              "low=1.0, high=0.1"),
    "space empty values": (lambda: rl.space.parse_space({"factors": []}), "'factors'"),
    "space empty": (lambda: rl.space.parse_space({}), "the search space is empty"),
    "tune with empty bounds": (lambda: rl.tune(models.SVD(), {"user_reg": {"type": "real", "low": 2.0, "high": 2.0}},
                                               TRAIN, TEST, method="random", n_trials=1), "low=2.0, high=2.0"),
    "tune relevance_threshold=nan": (lambda: rl.tune(models.SVD(), SPACE, TRAIN, TEST, method="grid",
                                                     relevance_threshold=float("nan")), "nan"),
    # ids of mixed types
    "from_frame user ids int and str": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, "a"], "item": [1, 2], "rating": [1.0, 2.0]})), "user ids mix types ['int', 'str']"),
    "from_frame item ids str and int": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": ["x", 7], "rating": [1.0, 2.0]})), "item ids mix types ['int', 'str']"),
    "from_frame bool ids": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [True, False], "item": [1, 2], "rating": [1.0, 2.0]})), "'boolean'"),
    "from_matrix user_ids mixed": (lambda: Interactions.from_matrix(
        sp.csr_matrix(np.eye(2)), user_ids=np.array([1, "b"], dtype=object)), "user_ids mix types ['int', 'str']"),
    "user_index of another type": (lambda: DATA.user_index(["1"]), "['1']"),
    # NaN, inf and text ratings (and their cousins)
    "rating NaN": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "rating": [1.0, np.nan]})), "a missing value (NaN) at row 1"),
    "rating inf": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "rating": [np.inf, 1.0]})), "has the value inf at row 0"),
    "rating -inf": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "rating": [1.0, -np.inf]})), "has the value -inf at row 1"),
    "rating text": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "rating": ["4", "five"]})), "non-numeric value 'five' at row 1"),
    "rating complex": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "rating": [1 + 2j, 3 + 0j]})), "(1+2j)"),
    "rating beyond float32": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "rating": [1.0, 1e300]})), "1e+300"),
    "from_matrix inf value": (lambda: Interactions.from_matrix(sp.csr_matrix(np.array([[np.inf, 1.0]]))),
                              "1 NaN or infinite"),
    "from_matrix NaN timestamp": (lambda: Interactions.from_matrix(sp.csr_matrix(np.eye(2)),
                                                                   timestamps=[1.0, np.nan]), "nan"),
    "with_matrix NaN value": (lambda: DATA.with_matrix(DATA.matrix.multiply(np.nan)), "NaN or infinite"),
    "with_matrix timestamps of another length": (lambda: DATA.with_matrix(DATA.matrix, timestamps=[1.0]),
                                                 "timestamps has shape (1,)"),
    "timestamp durations": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "t": pd.to_timedelta([1, 2], unit="s")}), rating=None,
        timestamp="t"), "holds durations"),
    "timestamp text": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0], "t": [5, "noon"]}), timestamp="t"), "'noon'"),
    "rmse NaN prediction": (lambda: metrics.rmse([1.0, 2.0], [1.0, np.nan]), "NaN"),
    "top_n NaN score": (lambda: top_n(np.array([[0.5, np.nan]]), 1), "rows [0]"),
    # empty data and other shapes
    "from_frame empty": (lambda: Interactions.from_frame(pd.DataFrame(
        {"user": [], "item": [], "rating": []})), "the table is empty"),
    "from_frame duplicate column": (lambda: Interactions.from_frame(pd.DataFrame(
        [[1, 2, 3, 4.0]], columns=["user", "item", "item", "rating"])), "'item' appears 2 times"),
    "from_matrix no entries": (lambda: Interactions.from_matrix(sp.csr_matrix((3, 2))), "3 x 2"),
    "from_matrix index beyond the shape": (lambda: Interactions.from_matrix(sp.csr_matrix(
        (np.ones(2, np.float32), np.array([0, 9]), np.array([0, 1, 2])), shape=(2, 2))), "indices must be < 2"),
    "from_matrix decreasing indptr": (lambda: Interactions.from_matrix(sp.csr_matrix(
        (np.ones(2, np.float32), np.array([0, 1]), np.array([0, 2, 1, 2])), shape=(3, 2))), "non-decreasing"),
    "fit on a DataFrame": (lambda: models.SVD().fit(DATA.to_frame()), "got DataFrame"),
    "fit on empty data": (lambda: models.Popularity().fit(EMPTY), "(4 users x 4 items, 0 interactions)"),
    "normalizer on empty data": (lambda: BiasNormalizer().fit(EMPTY), "the data is empty"),
    "evaluate an empty test split": (lambda: rl.evaluate(POPULARITY, TRAIN, EMPTY), "nothing to evaluate"),
    "tune on an empty validation split": (lambda: rl.tune(models.SVD(), SPACE, TRAIN, EMPTY, method="grid"),
                                          "valid has no interactions"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_value_error_naming_the_value(case):
    call, fragment = BAD_INPUT[case]
    with pytest.raises(ValueError) as raised:
        call()
    assert isinstance(raised.value, ReclabError), f"{case}: {type(raised.value).__name__}: {raised.value}"
    assert fragment in str(raised.value), f"{case}: {raised.value}"


# -- malformed MovieLens files ------------------------------------------------------------------
MOVIES_CSV = b"movieId,title,genres\n296,Pulp Fiction (1994),Drama\n307,Blue (1993),Drama\n"
MOVIES_DAT = b"10::Star Wars (1977)::Action\n20::Heat (1995)::Crime\n"
GENRE = b"unknown|0\nAction|1\n"
ITEMS_100K = b"1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n2|Heat (1995)|01-Jan-1995||http://y|0|1\n"
CSV_HEADER = b"userId,movieId,rating,timestamp\n"

MALFORMED = {
    "csv text rating": ("ml-25m", {"ratings.csv": CSV_HEADER + b"1,296,5.0,1\n1,307,five,2\n",
                                   "movies.csv": MOVIES_CSV}, ["ratings.csv", "line 3", "'five'"]),
    "csv short row": ("ml-latest-small", {"ratings.csv": CSV_HEADER + b"1,296,5.0,1\n2,307\n",
                                          "movies.csv": MOVIES_CSV}, ["ratings.csv", "line 3", "rating is ''"]),
    "csv long row": ("ml-20m", {"ratings.csv": CSV_HEADER + b"1,296,5.0,1\n2,307,3.0,4,9\n", "movies.csv": MOVIES_CSV},
                     ["ratings.csv", "line 3", "saw 5"]),
    "csv user id out of range": ("ml-25m", {"ratings.csv": CSV_HEADER + b"99999999999,296,5.0,1\n",
                                            "movies.csv": MOVIES_CSV},
                                 ["ratings.csv", "line 2", "'99999999999'"]),
    "csv fractional user id": ("ml-25m", {"ratings.csv": CSV_HEADER + b"1.5,296,5.0,1\n", "movies.csv": MOVIES_CSV},
                               ["ratings.csv", "line 2", "user is '1.5'"]),
    "csv NaN rating": ("ml-25m", {"ratings.csv": CSV_HEADER + b"1,296,nan,1\n", "movies.csv": MOVIES_CSV},
                       ["ratings.csv", "missing value (NaN) at row 0"]),
    "csv text timestamp": ("ml-25m", {"ratings.csv": CSV_HEADER + b"1,296,4.0,yesterday\n", "movies.csv": MOVIES_CSV},
                           ["ratings.csv", "line 2", "'yesterday'"]),
    "csv not text": ("ml-25m", {"ratings.csv": b"\x00\x01\xff\xfe\xfa", "movies.csv": MOVIES_CSV},
                     ["ratings.csv", "UnicodeDecodeError"]),
    "csv empty": ("ml-25m", {"ratings.csv": CSV_HEADER, "movies.csv": MOVIES_CSV}, ["ratings.csv", "empty"]),
    "csv bad movie id": ("ml-25m", {"ratings.csv": CSV_HEADER + b"1,296,5.0,1\n",
                                    "movies.csv": MOVIES_CSV + b"abc,Oops,Drama\n"},
                         ["movies.csv", "line 4", "'abc'"]),
    "csv movies missing": ("ml-25m", {"ratings.csv": CSV_HEADER + b"1,296,5.0,1\n"}, ["movies.csv is missing"]),
    "dat text rating": ("ml-1m", {"ratings.dat": b"1::10::5::978300760\n1::20::good::978302109\n",
                                  "movies.dat": MOVIES_DAT}, ["ratings.dat", "line 2", "'good'"]),
    "dat missing fields": ("ml-1m", {"ratings.dat": b"1::10::5::978300760\n2::20\n", "movies.dat": MOVIES_DAT},
                           ["ratings.dat", "line 2"]),
    "dat wrong separator": ("ml-1m", {"ratings.dat": b"1,10,5,978300760\n", "movies.dat": MOVIES_DAT},
                            ["ratings.dat", "1::1193::5::978300760"]),
    "dat movie line without fields": ("ml-1m", {"ratings.dat": b"1::10::5::978300760\n",
                                                "movies.dat": MOVIES_DAT + b"just a title\n"},
                                      ["movies.dat", "line 3", "'just a title'"]),
    "dat movie id not a number": ("ml-10m", {"ratings.dat": b"1::10::5::978300760\n",
                                             "movies.dat": b"x10::Star Wars (1977)::Action\n"},
                                  ["movies.dat", "line 1", "'x10::Star Wars (1977)::Action'"]),
    "u.data text rating": ("ml-100k", {"u.data": b"1\t1\t5\t881250949\n2\t2\tgreat\t881250950\n",
                                       "u.genre": GENRE, "u.item": ITEMS_100K}, ["u.data", "line 2", "'great'"]),
    "u.data spaces for tabs": ("ml-100k", {"u.data": b"1 1 5 881250949\n", "u.genre": GENRE, "u.item": ITEMS_100K},
                               ["u.data", "line 1", "'1 1 5 881250949'"]),
    "u.item bad id": ("ml-100k", {"u.data": b"1\t1\t5\t881250949\n", "u.genre": GENRE,
                                  "u.item": ITEMS_100K + b"three|Oops|||x|0|1\n"}, ["u.item", "line 3", "'three'"]),
    # a genre flag cut off, or not a number, made the film of that genre (NaN and 'x' are True)
    "u.item line cut short": ("ml-100k", {"u.data": b"1\t1\t5\t881250949\n", "u.genre": GENRE,
                                          "u.item": ITEMS_100K + b"3|Cut (1995)|01-Jan-1995||http://z|0\n"},
                              ["u.item", "line 3", "Action is"]),
    "u.item text genre flag": ("ml-100k", {"u.data": b"1\t1\t5\t881250949\n", "u.genre": GENRE,
                                           "u.item": ITEMS_100K + b"3|Cut (1995)|01-Jan-1995||http://z|0|no\n"},
                               ["u.item", "line 3", "Action is 'no'"]),
    # a missing gender or occupation was the feature 'occupation=nan', shared by every such user
    "u.user without occupation": ("ml-100k", {"u.data": b"1\t1\t5\t881250949\n", "u.genre": GENRE,
                                              "u.item": ITEMS_100K, "u.user": b"1|24|M|technician|85711\n2|53|F\n"},
                                  ["u.user", "user 2 has no occupation"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_movielens_files_name_the_file_line_and_value(case, tmp_path, monkeypatch):
    name, files, fragments = MALFORMED[case]
    monkeypatch.delenv("RECLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("RECLAB_DOWNLOAD_URL", "http://127.0.0.1:9/never-used")
    folder = tmp_path / "data" / {"ml-10m": "ml-10M100K"}.get(name, name)
    folder.mkdir(parents=True)
    for file_name, content in files.items():
        (folder / file_name).write_bytes(content)
    with pytest.raises(ReclabError) as raised:
        datasets.load(name, data_dir=tmp_path / "data", download=False, cache_dir=tmp_path / "cache")
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message


def test_a_well_formed_small_file_still_loads_after_the_checks(tmp_path, monkeypatch):
    monkeypatch.delenv("RECLAB_DATA_DIR", raising=False)
    folder = tmp_path / "data" / "ml-25m"
    folder.mkdir(parents=True)
    # blank lines and a trailing newline-less row are fine
    (folder / "ratings.csv").write_bytes(CSV_HEADER + b"1,296,5.0,1\n\n2,307,0.5,2")
    (folder / "movies.csv").write_bytes(MOVIES_CSV)
    data = datasets.load("ml-25m", data_dir=tmp_path / "data", download=False, cache_dir=tmp_path / "cache")
    assert data.to_frame().values.tolist() == [[1, 296, 5.0, 1.0], [2, 307, 0.5, 2.0]]


# -- model files --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    path = models.SVD(factors=1, seed=0).fit(TRAIN).save(folder / "svd.npz")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    return path, meta, arrays


def _rewrite(path: Path, meta: dict, arrays: dict, rehash: bool = True) -> Path:
    """A model file with edited contents; ``rehash`` makes its sha256 match, as a forger would."""
    meta = dict(meta)
    if rehash:
        meta["sha256"] = _digest(meta, arrays)
    np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)
    return path


def test_every_truncation_of_a_model_file_is_refused(saved, tmp_path):
    path, _, _ = saved
    raw = path.read_bytes()
    cuts = sorted({0, 1, 4, 30, 100, len(raw) - 22, len(raw) - 1, *range(0, len(raw), max(1, len(raw) // 25))})
    for cut in cuts:
        damaged = tmp_path / f"cut{cut}.npz"
        damaged.write_bytes(raw[:cut])
        with pytest.raises(ReclabError, match=rf"cut{cut}\.npz"):
            models.load(damaged)


def _set(arrays: dict, **values) -> None:
    arrays.update({name: np.asarray(value) for name, value in values.items()})


@pytest.mark.parametrize("change, message", [
    (lambda meta, arrays: meta["attributes"].update({"__class__": "int"}) or arrays.update(__class__=np.int64(1)),
     "'__class__', which is not a learned attribute"),
    (lambda meta, arrays: meta["attributes"].update({"fit": "int"}) or arrays.update(fit=np.int64(1)),
     "'fit', which is not a learned attribute"),
    (lambda meta, arrays: meta["attributes"].update({"_cache_x_": "int"}) or arrays.update(_cache_x_=np.int64(1)),
     "'_cache_x_', which is not a learned attribute"),
    (lambda meta, arrays: arrays.pop("user_factors_"), "missing ['user_factors_']"),
    (lambda meta, arrays: arrays.update(extra_=np.zeros(2)), "unexpected ['extra_']"),
    (lambda meta, arrays: meta["attributes"].update({"global_mean_": "pickle"}), "unknown kind 'pickle'"),
    (lambda meta, arrays: arrays.update(global_mean_=np.zeros(3)), "expected a scalar"),
    (lambda meta, arrays: arrays.update({"seen_.indptr": np.array([0, 99, 1, 2, 3])}),
     "seen_ with inconsistent arrays"),
    (lambda meta, arrays: meta.update(params=[1, 2]), "must be JSON objects"),
    # Issue 17: files fit could not have made (invalid parameters, shapes or arrays that disagree).
    (lambda meta, arrays: meta["params"].update(factors=-1), "invalid parameters for SVD: SVD parameter factors"),
    (lambda meta, arrays: meta["params"].update(user_reg="a lot"), "invalid parameters for SVD"),
    (lambda meta, arrays: _set(arrays, user_factors_=np.zeros((TRAIN.n_users, 2), np.float32)),
     "user_factors_ has shape"),
    (lambda meta, arrays: _set(arrays, item_factors_=np.zeros((TRAIN.n_items + 3, 1), np.float32)),
     "item_factors_ has shape"),
    (lambda meta, arrays: _set(arrays, item_bias_=np.zeros(2, np.float32)), "item_bias_ has shape"),
    (lambda meta, arrays: _set(arrays, n_items_=np.int64(TRAIN.n_items + 1)), "seen_ has shape"),
    (lambda meta, arrays: _set(arrays, n_users_=np.int64(0)), "n_users_, n_items_ (integers >= 1)"),
    (lambda meta, arrays: _set(arrays, rating_range_=np.zeros(5, np.float32)), "rating_range_ has shape"),
    # The arrays of an SVD under the name of another class.
    (lambda meta, arrays: meta.update({"class": "Popularity", "params": {}}),
     "does not hold a usable Popularity (AttributeError"),
    (lambda meta, arrays: meta.update({"class": "ItemKNN", "params": models.ItemKNN().get_params()}),
     "does not hold a usable ItemKNN (AttributeError"),
])
def test_a_crafted_model_file_with_a_matching_digest_is_refused(saved, tmp_path, change, message):
    path, meta, arrays = saved
    meta, arrays = json.loads(json.dumps(meta)), dict(arrays)
    change(meta, arrays)
    with pytest.raises(ReclabError, match=re.escape(message)):
        models.load(_rewrite(tmp_path / "crafted.npz", meta, arrays))


class _Payload:
    """Unpickling this object would create the file named by ``marker``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickled_object_inside_a_model_file_is_never_unpickled(saved, tmp_path):
    path, meta, arrays = saved
    marker = tmp_path / "code-ran"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(str(marker))
    target = tmp_path / "pickled.npz"
    np.savez(target, __meta__=np.array(json.dumps(meta)), **dict(arrays, user_factors_=evil))  # pickles it
    with pytest.raises(ReclabError, match="pickled.npz is not a readable reclab model file"):
        models.load(target)
    assert not marker.exists(), "loading a model file ran code from it"
    # Read with pickle allowed, the same file does run the payload: the check above can fail.
    with np.load(target, allow_pickle=True) as archive:
        archive["user_factors_"]
    assert marker.exists()


def test_saving_to_a_missing_folder_or_failing_leaves_nothing_half_written(saved, tmp_path):
    path, _, _ = saved
    model = models.SVD(factors=1, seed=0).fit(TRAIN)
    with pytest.raises(ReclabError, match="folder .*missing.* does not exist"):
        model.save(tmp_path / "missing" / "svd.npz")
    assert not (tmp_path / "missing").exists()
    target = tmp_path / "keep.npz"
    target.write_bytes(path.read_bytes())
    model.unsupported_ = object()        # a learned attribute that has no file form
    with pytest.raises(TypeError, match="unsupported_"):
        model.save(target)
    assert target.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"], "temporary file left behind"
    assert models.load(target).get_params() == models.SVD(factors=1, seed=0).get_params()


def test_a_checkpoint_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "search.jsonl"
    path.write_bytes(b'{"format": 1}\n\xff\xfe\n')
    with pytest.raises(ReclabError, match="line 2 is not UTF-8 text"):
        rl.tune(models.SVD(), SPACE, TRAIN, TEST, method="grid", checkpoint=path)


# -- archives: escapes not already covered by tests/test_download.py ---------------------------
@pytest.mark.parametrize("member, reason", [
    ("..\\evil", "climbs out"),                        # a Windows separator
    ("ml-x\\..\\..\\evil", "climbs out"),
    ("C:/evil", "absolute path"),                      # a drive letter
    ("\\evil", "absolute path"),
    ("ml-x/a/b/../../../../evil", "climbs out"),
])
def test_more_zip_escapes_are_refused_before_anything_is_written(tmp_path, member, reason):
    archive = crafted_zip(tmp_path / "crafted.zip", [("ml-x/ratings.csv", b"ok", 0o100644), (member, b"owned", 0o100644)])
    with pytest.raises(ReclabError, match=rf"member .* {reason}"):
        _extract_zip(archive, tmp_path / "cache" / "ml-x", ("ml-x",))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "cache" / "ml-x").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


# -- no code from files: a scan of reclab's own sources -----------------------------------------
_FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
_FORBIDDEN_CALLS = {"eval", "exec", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all",
                    "yaml.unsafe_load_all", "yaml.full_load_all", "pd.read_pickle", "pandas.read_pickle",
                    "torch.load", "os.system", "os.popen"}
_FORBIDDEN_NAMES = {"yaml.Loader", "yaml.UnsafeLoader", "yaml.FullLoader", "yaml.CLoader", "yaml.CUnsafeLoader",
                    "yaml.CFullLoader"}


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def unsafe_calls(source: str, filename: str = "<source>") -> list[str]:
    """Every place in ``source`` that could run code from a file, as ``file:line: what``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] in _FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            if module in _FORBIDDEN_MODULES:
                found.append(f"{where}: from {node.module} import ...")
            if module == "yaml":
                found += [f"{where}: from yaml import {alias.name}" for alias in node.names
                          if f"yaml.{alias.name}" in _FORBIDDEN_CALLS | _FORBIDDEN_NAMES]
        elif isinstance(node, ast.Attribute) and _dotted(node) in _FORBIDDEN_NAMES:
            found.append(f"{where}: {_dotted(node)}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            if name in _FORBIDDEN_CALLS:
                found.append(f"{where}: {name}(...)")
            elif name.split(".")[-1] == "load" and name.split(".")[0] in ("np", "numpy"):
                flag = keywords.get("allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    found.append(f"{where}: {name}(...) without allow_pickle=False")
            elif any(isinstance(value, ast.Constant) and value.value is True
                     for key, value in keywords.items() if key in ("allow_pickle", "shell")):
                found.append(f"{where}: {name}(..., {[k for k in keywords if k in ('allow_pickle', 'shell')][0]}=True)")
    return found


def test_the_scanner_finds_each_kind_of_unsafe_call():
    source = """
import pickle
from yaml import load
import numpy as np, yaml, subprocess
np.load(path)
np.load(path, allow_pickle=True)
numpy.load(path, allow_pickle=False)
yaml.load(text, Loader=yaml.Loader)
yaml.safe_load(text)
eval("1")
subprocess.run(cmd, shell=True)
"""
    found = [line.split(": ", 1)[1] for line in unsafe_calls(source)]
    assert found.count("np.load(...) without allow_pickle=False") == 2
    assert {"import pickle", "from yaml import load", "yaml.load(...)", "yaml.Loader", "eval(...)",
            "subprocess.run(..., shell=True)"} <= set(found)
    assert not any("numpy.load" in line or "safe_load" in line for line in found)


def test_reclab_never_runs_code_from_a_file():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    found = [hit for path in sources
             for hit in unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))]
    assert found == [], "unsafe calls:\n" + "\n".join(found)


# -- issue 17: what a hostile-but-realistic user breaks ---------------------------------------------
from fractions import Fraction

from reclab.tracking import load_interactions, save_interactions

_ID_DTYPES = ("int64", "int32", "uint8", "uint64", "Int64", "UInt64", "object-int", "str", "string")
_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _id_column(values: list[int], dtype: str):
    if dtype in ("str", "string"):
        return pd.Series([f"id{value}" for value in values], dtype=object if dtype == "str" else "string")
    if dtype == "object-int":
        return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=dtype)


@st.composite
def id_lists(draw, dtype: str, n: int):
    bounds = {"int64": (-2**63, 2**63 - 1), "int32": (-2**31, 2**31 - 1), "uint8": (0, 255),
              "uint64": (0, 2**64 - 1), "Int64": (-2**63, 2**63 - 1), "UInt64": (0, 2**64 - 1),
              "object-int": (0, 2**64 - 1), "str": (0, 10**30), "string": (-10**30, 10**30)}[dtype]
    edge = st.sampled_from([bounds[0], bounds[1], max(bounds[0], min(bounds[1], 2**63))])
    return draw(st.lists(st.one_of(st.integers(*bounds), edge), min_size=n, max_size=n))


@SETTINGS
@given(data=st.data(), user_dtype=st.sampled_from(_ID_DTYPES), item_dtype=st.sampled_from(_ID_DTYPES),
       unit=st.sampled_from(sorted(_UNITS)), zone=st.sampled_from([None, "UTC", "Asia/Kolkata"]))
def test_ids_of_every_dtype_and_timestamps_of_every_unit_round_trip_exactly(
        data, user_dtype, item_dtype, unit, zone, tmp_path_factory):
    n = data.draw(st.integers(1, 12))
    users = data.draw(id_lists(user_dtype, n))
    items = data.draw(id_lists(item_dtype, n))
    # Ticks of the unit from 1900 to 2200 (ns is int64: 1677-2262), at least 1 ms apart: float64
    # seconds (the container's unit) resolve about 1 us there, so closer ticks would be one instant
    # and the kept duplicate would be the last row rather than the latest tick.
    ticks = data.draw(st.lists(st.integers(-70 * 365 * 86400 * _UNITS[unit], 230 * 365 * 86400 * _UNITS[unit]),
                               min_size=n, max_size=n, unique_by=lambda tick: tick // max(1, _UNITS[unit] // 1000)))
    times = pd.Series(np.array(ticks, dtype=f"datetime64[{unit}]"))
    if zone is not None:
        times = times.dt.tz_localize("UTC").dt.tz_convert(zone)
    frame = pd.DataFrame({"user": _id_column(users, user_dtype), "item": _id_column(items, item_dtype),
                          "rating": np.arange(n, dtype=float), "time": times})
    got = Interactions.from_frame(frame, timestamp="time")
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    save_interactions(path, got)
    for data_ in (got, load_interactions(path)):
        out = data_.to_frame()
        expected = {}
        for row in range(n):   # the latest row of each (user, item) pair is kept
            key = (frame["user"][row], frame["item"][row])
            if key not in expected or ticks[row] >= expected[key][1]:
                expected[key] = (row, ticks[row])
        assert len(out) == len(expected)
        for user, item, rating, seconds in out[["user", "item", "rating", "timestamp"]].itertuples(index=False):
            key = (user if user_dtype not in ("str", "string") else str(user),
                   item if item_dtype not in ("str", "string") else str(item))
            # Exact values, not wrapped, rounded or retyped: the same Python int or str.
            assert type(key[0]) is (str if user_dtype in ("str", "string") else int) or np.issubdtype(
                type(key[0]), np.integer)
            row, tick = expected[(int(key[0]) if user_dtype not in ("str", "string") else key[0],
                                  int(key[1]) if item_dtype not in ("str", "string") else key[1])]
            assert rating == row
            exact = Fraction(tick, _UNITS[unit])
            if abs(tick) <= 2**53:
                assert seconds == float(exact)          # correctly rounded float64 seconds
            else:                                       # ns beyond 2**53 ticks: within one ulp
                assert abs(Fraction(seconds) - exact) <= Fraction(math.ulp(seconds))
        if user_dtype not in ("str", "string"):
            assert sorted(int(value) for value in data_.user_ids) == sorted({int(v) for v in users})
            assert data_.user_index(data_.user_ids).tolist() == list(range(data_.n_users))


def test_a_datetime_column_is_read_in_its_own_unit():
    for unit in _UNITS:
        times = pd.Series(pd.to_datetime(["2020-01-01 00:00:00", "2020-01-01 00:00:01"]).astype(f"datetime64[{unit}]"))
        frame = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [1.0, 2.0], "time": times})
        assert Interactions.from_frame(frame, timestamp="time").timestamps.tolist() == [1577836800.0,
                                                                                        1577836801.0]


def test_unsigned_ids_above_2_63_keep_their_values_and_are_found():
    ids = np.array([2**64 - 1, 2**63, 3], dtype=np.uint64)
    data = Interactions.from_frame(pd.DataFrame({"user": ids, "item": [1, 2, 3], "rating": [1.0, 2.0, 3.0]}))
    assert data.to_frame()["user"].tolist() == [3, 2**63, 2**64 - 1]
    assert data.user_index(2**64 - 1) == 2
    with pytest.raises(ReclabError, match=r"unknown user id\(s\) \[-1\]"):
        data.user_index(-1)
    # int64 ids against a uint64 query near 2**63 would compare as equal float64 values.
    small = Interactions.from_frame(pd.DataFrame({"user": [2**63 - 1], "item": [1], "rating": [1.0]}))
    with pytest.raises(ReclabError, match="unknown user id"):
        small.user_index(np.array([2**63], dtype=np.uint64))
    with pytest.raises(ReclabError, match="do not fit in 64 bits"):
        Interactions.from_frame(pd.DataFrame({"user": pd.Series([-1, 2**64 - 1], dtype=object),
                                              "item": [1, 2], "rating": [1.0, 2.0]}))


def test_a_uint64_index_above_2_63_is_named_as_given():
    data = _small()
    model = models.Popularity().fit(data)
    with pytest.raises(ReclabError, match=r"\[18446744073709551615\]"):
        model.recommend(np.array([2**64 - 1], dtype=np.uint64))
    with pytest.raises(ReclabError, match=r"\[18446744073709551615\]"):
        data.restrict(users=np.array([2**64 - 1], dtype=np.uint64))


@pytest.mark.parametrize("content", [
    b"my notes\nsecond line\nthird line, without a newline",          # the last line was cut off
    b"one line of notes, without a newline",                           # was emptied and overwritten
    b'{"format": "reclab-tuning-checkpoint", "kind": "header", "metric": "other"}',
])
def test_a_file_that_is_not_a_checkpoint_is_left_byte_identical(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(ReclabError, match="not"):
        rl.tune(models.SVD(), SPACE, TRAIN, TEST, method="grid", metric="ndcg@2", k=(2,), checkpoint=path)
    assert path.read_bytes() == content


def test_a_checkpoint_cut_inside_its_header_is_still_resumed(tmp_path):
    path = tmp_path / "search.jsonl"
    options = dict(method="grid", metric="ndcg@2", k=(2,), checkpoint=path)
    first = rl.tune(models.SVD(), SPACE, TRAIN, TEST, **options)
    header = path.read_bytes().split(b"\n")[0]
    path.write_bytes(header[:len(header) // 2])                        # killed while writing it
    assert rl.tune(models.SVD(), SPACE, TRAIN, TEST, **options).best_score == first.best_score
    assert path.read_bytes().split(b"\n")[0] == header


@pytest.mark.parametrize("score", ["99", "Infinity", "-0.5", '"0.5"'])
def test_an_edited_checkpoint_score_is_refused_like_a_computed_one(tmp_path, score):
    path = tmp_path / "search.jsonl"
    options = dict(method="grid", metric="ndcg@2", k=(2,), checkpoint=path)
    rl.tune(models.SVD(), SPACE, TRAIN, TEST, **options)
    lines = path.read_text().splitlines()
    edited = next(n for n, line in enumerate(lines) if '"status": "ok"' in line)   # trial 0 (SVD's own
    lines[edited] = re.sub(r'("score"|"ndcg@2"): [-0-9.e]+', rf"\1: {score}", lines[edited])  # 50 factors) fails
    path.write_text("\n".join(lines) + "\n")
    before = path.read_bytes()
    with pytest.raises(ReclabError, match=rf"line {edited + 1} .*(outside \[0.0, 1.0\]|ndcg@2 is|not a trial record)"):
        rl.tune(models.SVD(), SPACE, TRAIN, TEST, **options)
    assert path.read_bytes() == before


def test_a_checkpoint_path_that_is_a_folder_is_named(tmp_path):
    with pytest.raises(ReclabError, match=rf"checkpoint '{re.escape(str(tmp_path))}' is a folder"):
        rl.tune(models.SVD(), SPACE, TRAIN, TEST, method="grid", checkpoint=tmp_path)


def test_import_reclab_with_an_unwritable_home_falls_back_to_a_temporary_cache(tmp_path):
    """numba caches kernels next to the source or under the home folder; with neither writable
    (a shared read-only install, a locked-down home) ``import reclab`` used to fail."""
    import os
    import shutil
    import subprocess
    import sys

    # root writes everywhere: run the import as user nobody (setpriv, from util-linux), to whom
    # neither the reclab folder nor the home folder is writable. nobody keeps the capability to
    # read any file (CAP_DAC_READ_SEARCH, never to write one): a clone in a folder only root may
    # enter (mktemp -d, /root) is still importable.
    prefix = []
    if os.getuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot run the import as a user who cannot write")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    elif os.access(PACKAGE, os.W_OK):
        pytest.skip("the reclab folder is writable by this user, so numba can always cache next to it")
    home = tmp_path / "home"
    home.mkdir(mode=0o555)
    env = {key: value for key, value in os.environ.items()
           if key not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    code = ("import warnings, numpy as np\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    import reclab\n"
            "print([str(w.message) for w in caught])\n"
            "print(reclab.ranking.top_n(np.array([[1.0, 3.0, 2.0]], np.float32), 2)[0].tolist())\n")
    done = subprocess.run([*prefix, sys.executable, "-c", code], env=env, cwd="/", capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    warning, ranked = done.stdout.splitlines()[-2:]
    assert "numba cannot cache reclab's compiled kernels" in warning and "reclab-numba-cache-" in warning
    assert ranked == "[[1, 2]]"



def test_a_failed_fit_leaves_the_model_unfitted(tmp_path):
    model = models.SVD(factors=1, seed=0).fit(TRAIN)
    model.set_params(factors=-1)
    with pytest.raises(ReclabError, match="factors must be an integer >= 1, got -1"):
        model.fit(TRAIN)
    for call in (lambda: model.recommend(0, n=1), lambda: model.save(tmp_path / "m.npz")):
        with pytest.raises(ReclabError, match="SVD is not fitted"):
            call()
    assert not (tmp_path / "m.npz").exists()
    with pytest.raises(ReclabError, match="fit expects a reclab Interactions"):
        models.SVD(factors=1, seed=0).fit(TRAIN).fit("not data")


def test_svd_on_one_user_data_names_what_would_work():
    one_user = Interactions.from_frame(pd.DataFrame({"user": [1, 1], "item": [1, 2], "rating": [1.0, 2.0]}))
    with pytest.raises(ReclabError, match="SVD needs at least 2 users and 2 items.*1 user.*use Bias or Popularity"):
        models.SVD(factors=1).fit(one_user)


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: use /sys)."""
    import os

    if os.getuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder


def test_saving_into_an_unwritable_folder_or_onto_a_folder_names_the_target(tmp_path):
    model = models.SVD(factors=1, seed=0).fit(TRAIN)
    target = _unwritable_folder(tmp_path) / "svd.npz"
    with pytest.raises(OSError, match=rf"cannot write '{re.escape(str(target))}': Permission denied"):
        model.save(target)
    with pytest.raises(IsADirectoryError, match=rf"cannot write '{re.escape(str(tmp_path))}': it is a folder"):
        model.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_files_are_written_with_the_umask_mode_not_0600(tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        model_file = POPULARITY.save(tmp_path / "model.npz")
        split_file = save_interactions(tmp_path / "train.npz", TRAIN)
        os.umask(0o077)
        private = save_interactions(tmp_path / "private.npz", TRAIN)
    finally:
        os.umask(previous)
    assert [oct(path.stat().st_mode & 0o777) for path in (model_file, split_file, private)] == \
        ["0o644", "0o644", "0o600"]


def test_list_lengths_and_cut_offs_beyond_the_catalog_allocate_nothing_large():
    with pytest.raises(ReclabError, match=rf"n=1000000000000 is more than the {TRAIN.n_items} items"):
        SVD_MODEL.recommend(0, n=10**12)
    # Stage 4's tables (n_recommendations: 1000000000 in a parameter file) list every candidate.
    from reclab.postprocess import recommendations_table, similar_items_table

    table = recommendations_table(SVD_MODEL, TRAIN, TRAIN.user_ids[:1], n=10**9)
    assert len(table) == TRAIN.n_items - TRAIN.user_counts()[0]
    assert len(similar_items_table(SVD_MODEL, TRAIN, TRAIN.item_ids[0], n=10**9)) == TRAIN.n_items - 1
    # A cut-off beyond the catalog is computed on the whole catalog: precision keeps dividing by k.
    report = rl.evaluate(POPULARITY, TRAIN, TEST, k=(TRAIN.n_items, 10**9), n_bootstrap=0)
    whole = report.summary
    for name in ("recall", "ndcg", "map", "mrr", "hit_rate", "coverage"):
        assert whole[f"{name}@{10**9}"] == whole[f"{name}@{TRAIN.n_items}"]
    assert whole[f"precision@{10**9}"] == pytest.approx(whole[f"precision@{TRAIN.n_items}"] * TRAIN.n_items / 10**9)
    assert report.curve("precision").index.max() == TRAIN.n_items


def _laughs(levels: int, key: str = "experiment") -> str:
    """A YAML 'billion laughs': ``levels`` nested aliases of 9, the last under ``key``."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        name = key if level == levels else f"l{level}"
        lines.append(f"{name}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bombs_in_a_known_key_are_refused_with_a_short_message():
    from reclab.config import Config, parse_assignments

    for levels in (3, 7, 9):     # 9**7 values made a 34 MB message, 9**9 a 3 GB MemoryError
        with pytest.raises(ReclabError) as caught:
            Config.loads(_laughs(levels), "bomb.yaml")
        assert len(str(caught.value)) < 2500
        if levels > 3:
            assert "more than 100,000 values once YAML aliases" in str(caught.value)
    # The same bomb as one --set value (a YAML flow mapping).
    with pytest.raises(ReclabError, match=r"--set .*: the values stand for more than 100,000") as caught:
        parse_assignments(["k={" + _laughs(7, "x").replace("\n", ", ") + "}"])
    assert len(str(caught.value)) < 2500


@pytest.mark.parametrize("assignment, message", [
    ("seed=2020-01-01", "key 'seed' must be an integer, got datetime.date(2020, 1, 1)"),
    ("experiment=2020-01-01", "key 'experiment' must be a non-empty string, got datetime.date"),
    ("k=&x [*x]", "a value contains itself"),
])
def test_command_line_values_get_the_errors_file_values_get(assignment, message):
    from reclab.config import Config, parse_assignments

    with pytest.raises(ReclabError, match=re.escape(message)):
        Config.loads("seed: 1\n", "p.yaml", parse_assignments([assignment]))
    key, _, value = assignment.partition("=")
    with pytest.raises(ReclabError, match=re.escape(message)):
        Config.loads(f"{key}: {value}\n", "p.yaml")
