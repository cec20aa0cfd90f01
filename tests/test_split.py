"""Splits partition the input, keep every user in train, and are reproducible by seed."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from reclab import Interactions, ReclabError, datasets, split

# Frames with repeated (user, item) rows are part of what these tests draw: from_frame's warning
# about them is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:.*rows repeat an earlier")


@pytest.fixture(scope="module", params=["ml-100k", "synthetic"])
def data(request):
    if request.param == "synthetic":
        return datasets.synthetic(seed=0)
    return request.getfixturevalue("ml100k")


def pattern(data):
    """1 at every stored entry (explicit zeros included)."""
    m = data.matrix
    return sp.csr_matrix((np.ones(m.nnz, dtype=int), m.indices, m.indptr), shape=m.shape)


def assert_partition(data, train, test):
    """Same id space, disjoint, and together exactly the input (values and timestamps too)."""
    assert train.shape == test.shape == data.shape
    assert np.array_equal(train.user_ids, data.user_ids) and np.array_equal(train.item_ids, data.item_ids)
    assert train.nnz + test.nnz == data.nnz
    assert pattern(train).multiply(pattern(test)).sum() == 0
    if test.nnz:
        assert train.union(test).fingerprint() == data.fingerprint()


def expected_holdout(counts, test_frac):
    return np.clip(np.floor(test_frac * counts + 0.5), 0, np.maximum(counts - 1, 0)).astype(int)


def test_random_holdout(data):
    train, test = split.random_holdout(data, test_frac=0.2, seed=42)
    assert_partition(data, train, test)
    counts = data.user_counts()
    assert np.array_equal(test.user_counts(), expected_holdout(counts, 0.2))
    assert np.all(train.user_counts()[counts >= 1] >= 1)
    assert abs(test.nnz / data.nnz - 0.2) < 0.01


def test_leave_k_out(data):
    train, test = split.leave_k_out(data, k=5, seed=7)
    assert_partition(data, train, test)
    counts = data.user_counts()
    assert np.array_equal(test.user_counts(), np.minimum(5, counts - 1))
    assert train.user_counts().min() >= 1


def test_temporal_global_cut(data):
    train, test = split.temporal(data, test_frac=0.2)
    assert_partition(data, train, test)
    assert train.timestamps.max() <= test.timestamps.min()
    assert 0.15 < test.nnz / data.nnz <= 0.2


def test_temporal_per_user(data):
    train, test = split.temporal(data, test_frac=0.25, per_user=True)
    assert_partition(data, train, test)
    counts = data.user_counts()
    assert np.array_equal(test.user_counts(), expected_holdout(counts, 0.25))
    # Each user's test interactions are not older than any of their training interactions.
    for user in range(0, data.n_users, 37):
        tr = train.timestamps[train.matrix.indptr[user]:train.matrix.indptr[user + 1]]
        te = test.timestamps[test.matrix.indptr[user]:test.matrix.indptr[user + 1]]
        if len(te):
            assert te.min() >= tr.max()


def test_temporal_per_user_orders_equal_timestamps_at_random_by_seed():
    """Equal timestamps at a user's cut (500 of ML-100K's 943 users have some) are ordered at
    random, by seed: ordered by item index, the higher ids always went to test."""
    frame = pd.DataFrame({"user": [1] * 10 + [2] * 10, "item": list(range(10)) * 2,
                          "rating": 4.0, "timestamp": [5.0] * 10 + list(range(10))})
    data = Interactions.from_frame(frame, timestamp="timestamp")
    held = []
    for seed in range(20):
        train, test = split.temporal(data, test_frac=0.3, per_user=True, seed=seed)
        assert test.user_counts().tolist() == [3, 3]
        assert test.matrix[1].indices.tolist() == [7, 8, 9]   # user 2: its latest, whatever the seed
        held.append(tuple(test.matrix[0].indices.tolist()))
    assert len(set(held)) > 10 and 3 < np.mean(held) < 6   # by index: always (7, 8, 9)
    again = split.temporal(data, test_frac=0.3, per_user=True, seed=19)[1]
    assert tuple(again.matrix[0].indices.tolist()) == held[19]


def test_kfold(data):
    folds = split.kfold(data, n_splits=5, seed=3)
    assert len(folds) == 5
    times_in_test = 0
    for train, test in folds:
        assert_partition(data, train, test)
        assert train.user_counts().min() >= 1
        times_in_test = times_in_test + pattern(test)
    # Every interaction of a user with two or more is in exactly one test fold; the others in none.
    several = np.repeat(data.user_counts() >= 2, data.user_counts())
    rows = np.repeat(np.arange(data.n_users), data.user_counts())
    assert np.array_equal(np.asarray(times_in_test[rows, data.matrix.indices]).ravel(), several.astype(int))
    sizes = [test.nnz for _, test in folds]
    assert max(sizes) - min(sizes) <= 0.01 * data.nnz


@pytest.mark.parametrize("make", [
    lambda d, s: split.random_holdout(d, seed=s),
    lambda d, s: split.leave_k_out(d, k=3, seed=s),
    lambda d, s: split.kfold(d, n_splits=3, seed=s)[1],
])
def test_seed_reproducibility_and_fingerprint(data, make):
    a_train, a_test = make(data, 1)
    b_train, b_test = make(data, 1)
    c_train, c_test = make(data, 2)
    assert split.fingerprint(a_train, a_test) == split.fingerprint(b_train, b_test)
    assert a_test.fingerprint() == b_test.fingerprint()
    assert split.fingerprint(a_train, a_test) != split.fingerprint(c_train, c_test)
    assert a_test.fingerprint() != c_test.fingerprint()


def test_fingerprint_needs_one_id_space(data):
    train, test = split.random_holdout(data)
    other = datasets.synthetic(seed=1, n_users=30, n_items=20, n_ratings=200)
    with pytest.raises(ReclabError, match="share one id space"):
        split.fingerprint(train, other)
    assert split.fingerprint(train, test) != split.fingerprint(test, train)


# -- small data, edge cases and errors --------------------------------------------------------
def small(**columns):
    frame = {"user": [1, 1, 1, 2, 3, 3], "item": [1, 2, 3, 1, 2, 3], "rating": [5.0, 3, 4, 2, 1, 4]}
    frame.update(columns)
    return Interactions.from_frame(pd.DataFrame(frame))


def test_single_interaction_users_stay_in_train():
    data = small()  # user 2 has one interaction
    for train, test in [split.random_holdout(data, 0.5), split.leave_k_out(data, 2)] + split.kfold(data, 3):
        assert train.user_counts()[1] == 1 and test.user_counts()[1] == 0


def test_temporal_needs_timestamps():
    with pytest.raises(ReclabError, match="temporal split needs timestamps"):
        split.temporal(small())


def test_temporal_with_all_equal_timestamps_is_an_error():
    with pytest.raises(ReclabError, match="nothing in test"):
        split.temporal(Interactions.from_frame(pd.DataFrame(
            {"user": [1, 2], "item": [1, 1], "rating": [1.0, 2.0], "t": [5, 5]}), timestamp="t"))


@pytest.mark.parametrize("call, message", [
    (lambda d: split.random_holdout(d, test_frac=0), r"test_frac must be a number strictly between 0 and 1, got 0"),
    (lambda d: split.random_holdout(d, test_frac=1.0), "got 1.0"),
    (lambda d: split.temporal(d, test_frac="0.2"), "got '0.2'"),
    (lambda d: split.leave_k_out(d, k=0), "k must be an integer >= 1, got 0"),
    (lambda d: split.kfold(d, n_splits=1), "n_splits must be an integer >= 2, got 1"),
    (lambda d: split.random_holdout(d, seed=None),
     r"seed must be an integer >= 0 \(None would make the run irreproducible\), got None"),
    (lambda d: split.random_holdout(d.to_frame()), "needs an Interactions object, got DataFrame"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ReclabError, match=message):
        call(small())


frames = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 8), st.integers(1, 5), st.integers(0, 3)),
    min_size=1, max_size=60,
).map(lambda rows: pd.DataFrame(rows, columns=["user", "item", "rating", "time"]).assign(
    user=lambda f: f["user"] * 10 + 3))  # gaps in the ids; duplicates are kept by from_frame's rule


@settings(max_examples=50, deadline=None)
@given(frame=frames, seed=st.integers(0, 2**32 - 1), test_frac=st.floats(0.05, 0.95))
def test_every_split_partitions_small_random_data(frame, seed, test_frac):
    data = Interactions.from_frame(frame, timestamp="time")
    counts = data.user_counts()
    pairs = [split.random_holdout(data, test_frac, seed), split.leave_k_out(data, 2, seed),
             split.temporal(data, test_frac, per_user=True)] + split.kfold(data, 3, seed)
    for train, test in pairs:
        assert_partition(data, train, test)
        assert np.all(train.user_counts() >= np.minimum(counts, 1))
    assert np.array_equal(pairs[0][1].user_counts(), expected_holdout(counts, test_frac))
    if not np.any(data.timestamps > np.quantile(data.timestamps, 1 - test_frac)):
        with pytest.raises(ReclabError, match="nothing in test"):
            split.temporal(data, test_frac)
        return
    train, test = split.temporal(data, test_frac)
    assert_partition(data, train, test)
    assert test.nnz > 0 and train.timestamps.max() < test.timestamps.min()


def test_cold_split_of_a_cold_split_holds_valid_frac_of_the_rest():
    """make_split holds valid out of what test left: the users (items) test emptied must not be
    drawn again, or valid gets a random number of them instead of round(valid_frac * rest)."""
    import pandas as pd
    from reclab.data import Interactions
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 100, 3000), "item": rng.integers(0, 200, 3000),
                          "rating": rng.integers(1, 6, 3000).astype(float)})
    frame = frame.drop_duplicates(["user", "item"])
    data = Interactions.from_frame(frame)
    assert (data.user_counts() > 0).all() and (data.item_counts() > 0).all()
    for name, counts in (("cold_users", Interactions.user_counts), ("cold_items", Interactions.item_counts)):
        method = getattr(split, name)
        for seed in range(5):
            rest, test = method(data, test_frac=0.3, seed=seed)
            train, valid = method(rest, test_frac=0.5, seed=seed + 1)
            warm = int(np.count_nonzero(counts(rest)))
            assert np.count_nonzero(counts(valid)) == int(np.floor(0.5 * warm + 0.5)), (name, seed)
            assert not np.any(counts(train)[counts(valid) > 0])
    # with every user active the draw is unchanged (same fingerprints as before the fix)
    first = split.cold_users(data, test_frac=0.2, seed=3)
    cold = np.zeros(data.n_users, dtype=bool)
    cold[np.random.default_rng(3).permutation(data.n_users)[:int(np.floor(0.2 * data.n_users + 0.5))]] = True
    assert np.array_equal(first[1].user_counts() > 0, cold)
