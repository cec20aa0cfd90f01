"""The synthetic Netflix-like data set: determinism, sizes, realism, ground truth."""

import re
import time

import numpy as np
import pytest

import reclab as rl
from reclab import Interactions, ReclabError
from reclab.synthetic import GENRES, synthetic


@pytest.fixture(scope="module")
def data():
    return synthetic(seed=0)


def user_means(data):
    return np.asarray(data.matrix.sum(axis=1)).ravel() / np.maximum(data.user_counts(), 1)


def test_default_size_is_ml100k(data):
    assert isinstance(data, Interactions)
    assert (data.n_users, data.n_items, data.nnz) == (943, 1682, 100_000)
    assert data.user_ids.tolist() == list(range(1, 944))


def test_custom_size_and_no_duplicate_pairs():
    small = synthetic(seed=3, n_users=50, n_items=40, n_ratings=700, factors=4)
    assert (small.n_users, small.n_items, small.nnz) == (50, 40, 700)
    frame = small.to_frame()
    assert not frame.duplicated(["user", "item"]).any()
    assert small.user_counts().min() >= 1


def test_same_seed_same_data_other_seed_other_data(data):
    again = synthetic(seed=0)
    assert again.fingerprint() == data.fingerprint()
    assert all(np.array_equal(again.truth[k], data.truth[k]) for k in data.truth)
    assert again.items.equals(data.items)
    other = synthetic(seed=1)
    assert other.fingerprint() != data.fingerprint()
    assert not np.array_equal(other.truth["user_bias"], data.truth["user_bias"])


def test_ratings_are_integers_1_to_5_with_a_realistic_spread(data):
    values = data.matrix.data
    assert set(np.unique(values)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    share = np.bincount(values.astype(int), minlength=6)[1:] / len(values)
    assert share.argmax() == 3  # 4 stars is the most common rating, as in MovieLens and Netflix
    assert 3.3 < values.mean() < 3.8


def test_optimists_and_pessimists_are_visible(data):
    means = user_means(data)
    optimists = means >= 4.3
    pessimists = means <= 2.0
    assert optimists.sum() >= 20 and pessimists.sum() >= 10
    assert data.truth["user_bias"][optimists].min() > data.truth["user_bias"][pessimists].max()


def test_long_tail_of_items_and_very_different_users(data):
    counts = np.sort(data.item_counts())[::-1]
    assert counts[: len(counts) // 10].sum() / counts.sum() > 0.40
    users = data.user_counts()
    assert users.min() >= 20 and users.max() > 20 * users.min()  # log-normal activity
    # Realized popularity follows the true exposure.
    assert np.corrcoef(np.log(data.truth["popularity"]), np.log1p(data.item_counts()))[0, 1] > 0.8


def test_missing_not_at_random(data):
    truth = data.truth
    rows = np.repeat(np.arange(data.n_users), data.user_counts())
    cols = data.matrix.indices
    liking = truth["item_bias"][None, :] + truth["user_factors"] @ truth["item_factors"].T
    observed = truth["item_bias"][cols] + np.einsum("nk,nk->n", truth["user_factors"][rows],
                                                    truth["item_factors"][cols])
    # Users rate what they like: observed pairs are liked more than pairs at random.
    assert observed.mean() > liking.mean() + 0.2


def test_truth_shapes_and_read_only(data):
    truth = data.truth
    assert set(truth) == {"global_mean", "user_bias", "item_bias", "user_factors", "item_factors", "popularity",
                          "user_interest", "item_interest"}
    assert truth["global_mean"].shape == ()
    assert truth["user_bias"].shape == (943,) and truth["item_bias"].shape == (1682,)
    assert truth["user_factors"].shape == (943, 8) and truth["item_factors"].shape == (1682, 8)
    assert truth["user_interest"].shape == (943, 8) and truth["item_interest"].shape == (1682, 8)
    assert np.isclose(truth["popularity"].sum(), 1.0)
    with pytest.raises(ValueError):
        truth["user_bias"][0] = 1.0


def test_titles_genres_and_timestamps(data):
    titles = data.items["title"]
    assert titles.str.match(r"^.+ \((19[3-9]\d)\)$").all()
    assert titles.nunique() > 0.8 * len(titles)
    genres = data.items["genres"].str.split("|")
    assert all(1 <= len(g) <= 3 and set(g) <= set(GENRES) for g in genres)
    assert re.fullmatch(r".+ \(\d{4}\)", data.titles([0])[0])
    assert data.timestamps is not None and len(data.timestamps) == data.nnz
    assert 874_724_710 <= data.timestamps.min() and data.timestamps.max() <= 893_286_638


def test_fast():
    start = time.perf_counter()
    synthetic(seed=5)
    # About 0.5 s measured; the bound leaves room for a machine shared with other jobs.
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_ratings=10, n_users=20), r"n_ratings must lie in \[n_users, n_users \* n_items\]"),
    (dict(n_ratings=1000, n_users=10, n_items=50), r"\[10, 500\], got 1000"),
    (dict(factors=0), "factors must be an integer >= 1, got 0"),
    (dict(seed=None), "seed must be an integer"),
    (dict(optimists=0.7, pessimists=0.5), r"pessimists must be a number in \[0.0, 0.3"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ReclabError, match=message):
        synthetic(**kwargs)


def test_personal_interests_make_personalized_ranking_beat_popularity(data):
    train, test = rl.split.random_holdout(data, test_frac=0.2, seed=42)
    popularity = rl.evaluate(rl.models.Popularity().fit(train), train, test, k=10, n_bootstrap=0)
    als = rl.evaluate(rl.models.ImplicitALS().fit(train), train, test, k=10, n_bootstrap=0)
    # Measured 0.276 and 0.436 (seed 0); without the interest term both were about 0.40.
    assert 0.22 < popularity.summary["precision@10"] < 0.33
    assert als.summary["precision@10"] > popularity.summary["precision@10"] + 0.10


@pytest.mark.parametrize("optimists, pessimists", [(0.8, 0.2), (0.9, 0.1), (0.0, 1.0)])
def test_optimists_and_pessimists_may_make_up_every_user(optimists, pessimists):
    """Shares summing to 1 are taken: they were refused when 1 - optimists rounded below
    pessimists ('pessimists must be a number in [0.0, 0.19999999999999996], got 0.2')."""
    data = synthetic(seed=0, n_users=40, n_items=30, n_ratings=400, optimists=optimists,
                     pessimists=pessimists)
    bias = data.truth["user_bias"]
    assert np.all((bias > 0.3) | (bias < -1.0))   # every user an optimist or a pessimist
