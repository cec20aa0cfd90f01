"""Content features, cold-start splits, candidate-restricted evaluation, ContentKNN and HybridALS."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import reclab as rl
from reclab import Interactions, ReclabError
from reclab.preprocess import kcore
from reclab.tracking import load_interactions, save_interactions


def same_features(a: Interactions, b: Interactions, items=None, users=None) -> None:
    items = np.arange(a.n_items) if items is None else items
    users = np.arange(a.n_users) if users is None else users
    np.testing.assert_array_equal(a.item_features[items].toarray(), b.item_features.toarray())
    np.testing.assert_array_equal(a.user_features[users].toarray(), b.user_features.toarray())
    assert a.item_feature_names.tolist() == b.item_feature_names.tolist()
    assert a.user_feature_names.tolist() == b.user_feature_names.tolist()


@pytest.fixture(scope="module")
def featured():
    """A small data set with item and user feature frames, built through from_frame."""
    rng = np.random.default_rng(3)
    users, items = rng.integers(1, 31, 400), rng.integers(100, 160, 400)
    frame = pd.DataFrame({"user": users, "item": items, "rating": rng.integers(1, 6, 400).astype(float)})
    frame = frame.drop_duplicates(["user", "item"], keep="last")   # what from_frame keeps, without its warning
    item_ids = np.unique(items)
    item_frame = pd.DataFrame({"genre=A": rng.random(len(item_ids)) < 0.5,
                               "year": rng.integers(1950, 2000, len(item_ids)).astype(float)}, index=item_ids)
    user_frame = pd.DataFrame({"age": rng.integers(18, 70, 30).astype(float)}, index=np.arange(1, 31))
    return Interactions.from_frame(frame, item_features=item_frame.iloc[1:], user_features=user_frame)


def test_feature_frames_are_aligned_by_id(featured):
    assert featured.item_features.dtype == np.float32 and featured.item_features.shape == (featured.n_items, 2)
    assert featured.item_feature_names.tolist() == ["genre=A", "year"]
    assert featured.user_feature_names.tolist() == ["age"]
    # the first item had no row in the frame: all-zero features; the others are their own rows
    assert featured.item_features[0].nnz == 0 and featured.item_features[1:, 1].toarray().min() >= 1950


def test_a_feature_table_is_aligned_by_id_wherever_it_is_given(featured):
    """from_matrix and with_features took a DataFrame row by row, its index and column names
    ignored: a table in another order than the ids gave each item another's features (named f0, ...)."""
    ids = featured.item_ids
    table = pd.DataFrame({"genre=A": np.arange(len(ids), dtype=float)}, index=ids)[::-1]
    users = pd.DataFrame({"age": np.arange(featured.n_users, dtype=float)}, index=featured.user_ids)[::-1]
    for data in (featured.with_features(item_features=table, user_features=users),
                 Interactions.from_matrix(featured.matrix, user_ids=featured.user_ids, item_ids=ids,
                                          item_features=table, user_features=users)):
        np.testing.assert_array_equal(data.item_features.toarray().ravel(), np.arange(len(ids)))
        np.testing.assert_array_equal(data.user_features.toarray().ravel(), np.arange(featured.n_users))
        assert data.item_feature_names.tolist() == ["genre=A"] and data.user_feature_names.tolist() == ["age"]
    with pytest.raises(ReclabError, match=r"item_features has 1 item id\(s\) not in the interactions, \[-1\]"):
        featured.with_features(item_features=pd.DataFrame({"x": [1.0]}, index=[-1]))
    with pytest.raises(ReclabError, match="item_feature_names given with a DataFrame"):
        featured.with_features(item_features=table, item_feature_names=["y"])


def test_features_follow_every_operation(featured, tmp_path):
    train, test = rl.split.random_holdout(featured, test_frac=0.3, seed=1)
    for part in (train, test, train.union(test), *rl.split.cold_items(featured, seed=0),
                 *rl.split.cold_users(featured, seed=0), featured.with_matrix(featured.matrix * 2)):
        same_features(featured, part)
    users, items = np.array([0, 3, 7]), np.array([2, 5, 11, 20])
    same_features(featured, featured.restrict(users=users, items=items), items=items, users=users)
    core = kcore(featured, min_user=8, min_item=5)
    kept_items = featured.item_index(core.item_ids)
    kept_users = featured.user_index(core.user_ids)
    same_features(featured, core, items=kept_items, users=kept_users)
    again = load_interactions(save_interactions(tmp_path / "train.npz", train))
    same_features(featured, again)
    assert again.fingerprint() == train.fingerprint()
    assert featured.with_features(item_features=sp.csr_matrix(np.ones((featured.n_items, 1)))).fingerprint() \
        != featured.fingerprint()


def test_malformed_features_are_named(featured):
    frame = featured.to_frame()
    item_ids = featured.item_ids
    with pytest.raises(ReclabError, match=r"item_features has 1 item id\(s\) not in the interactions, \[999\]"):
        Interactions.from_frame(frame, item_features=pd.DataFrame({"x": [1.0]}, index=[999]))
    with pytest.raises(ReclabError, match=rf"NaN or infinite value at item id {item_ids[0]}, column 'x'"):
        Interactions.from_frame(frame, item_features=pd.DataFrame({"x": [np.nan]}, index=item_ids[:1]))
    with pytest.raises(ReclabError, match="user_features column 'job' is not numeric"):
        Interactions.from_frame(frame, user_features=pd.DataFrame({"job": ["cook"]}, index=[1]))
    # float64 kept the real part only (with a NumPy ComplexWarning)
    with pytest.raises(ReclabError, match="item_features column 'z' holds complex numbers"):
        Interactions.from_frame(frame, item_features=pd.DataFrame({"z": [1 + 2j]}, index=item_ids[:1]))
    # two columns of one name: an AttributeError ('DataFrame' object has no attribute 'dtype')
    with pytest.raises(ReclabError, match=r"item_features has duplicate column names \['x'\]"):
        Interactions.from_frame(frame, item_features=pd.DataFrame([[1.0, 2.0, 3.0]], columns=["x", "y", "x"],
                                                                  index=item_ids[:1]))
    with pytest.raises(ReclabError, match=f"item_features has 3 rows, expected {featured.n_items}"):
        Interactions.from_matrix(featured.matrix, item_features=np.ones((3, 2)))
    with pytest.raises(ReclabError, match="user_feature_names has 1 names for 2 feature columns"):
        Interactions.from_matrix(featured.matrix, user_features=np.ones((featured.n_users, 2)),
                                 user_feature_names=["a"])
    missing = np.ones((featured.n_items, 1), dtype=object)
    missing[3, 0] = None   # was read as 0: no feature, where a NaN is refused
    with pytest.raises(ReclabError, match="NaN or infinite value.*item index 3, feature 0"):
        featured.with_features(item_features=missing)
    bad = np.ones((featured.n_items, 2))
    bad[4, 1] = np.inf
    with pytest.raises(ReclabError, match="NaN or infinite value.*item index 4, feature 1"):
        featured.with_features(item_features=bad)


def test_loaders_build_features(ml100k, synthetic_data):
    names = ml100k.item_feature_names.tolist()
    assert "genre=Film-Noir" in names and "decade=1940" in names
    assert {"age=25-34", "gender=F", "occupation=writer"} <= set(ml100k.user_feature_names.tolist())
    # every user has exactly one age group, one gender and one occupation
    np.testing.assert_array_equal(np.asarray(ml100k.user_features.sum(axis=1)).ravel(), 3.0)
    star_wars = ml100k.item_index(50)
    row = ml100k.item_features[star_wars].toarray().ravel()
    assert {names[j] for j in np.flatnonzero(row)} == {
        "genre=Action", "genre=Adventure", "genre=Romance", "genre=Sci-Fi", "genre=War", "decade=1970"}
    genres = synthetic_data.item_features.toarray()
    first = synthetic_data.items["genres"][0].split("|")
    assert sorted(synthetic_data.item_feature_names[genres[0] > 0]) == sorted(f"genre={g}" for g in first)


def test_cold_items_and_users_move_whole_columns_and_rows(synthetic_data):
    train, test = rl.split.cold_items(synthetic_data, test_frac=0.2, seed=0)
    cold = test.item_counts() > 0
    assert not (train.item_counts()[cold] > 0).any()
    assert abs(int((synthetic_data.item_counts() > 0).sum() * 0.2) - cold.sum()) < 40
    assert train.nnz + test.nnz == synthetic_data.nnz
    assert rl.split.fingerprint(train, test) == rl.split.fingerprint(*rl.split.cold_items(synthetic_data, seed=0))
    train, test = rl.split.cold_users(synthetic_data, test_frac=0.25, seed=1)
    cold = test.user_counts() > 0
    assert cold.sum() == round(0.25 * synthetic_data.n_users) and not (train.user_counts()[cold] > 0).any()
    with pytest.raises(ReclabError, match="moves 0 of 943 users to test"):
        rl.split.cold_users(synthetic_data, test_frac=0.0001)


@pytest.fixture(scope="module")
def cold_synthetic(synthetic_data):
    train, test = rl.split.cold_items(synthetic_data, test_frac=0.2, seed=0)
    return train, test, train.item_ids[train.item_counts() == 0]


def test_collaborative_models_rank_unrated_items_last(cold_synthetic):
    train, _, cold = cold_synthetic
    unrated = train.item_index(cold)
    for model in (rl.models.ImplicitALS(factors=8, iterations=2), rl.models.Popularity()):
        model.fit(train)
        ids, _ = model.recommend(np.arange(5), n=train.n_items)
        for row in ids:
            row = row[row >= 0]
            assert set(row[-len(unrated):].tolist()) == set(unrated.tolist())
        scores = model.score_items([0])[0]
        assert np.all(scores[unrated] < scores[np.setdiff1d(np.arange(train.n_items), unrated)].min())


def test_cold_evaluation_ranks_the_candidates_only(cold_synthetic):
    train, test, cold = cold_synthetic
    als = rl.models.ImplicitALS(factors=8, iterations=3).fit(train)
    # the cosine (normalize_items): the synthetic items' extra genres are random, so the default's
    # raw item vectors, which favour items with more genres, are near chance here (0.078 vs 0.072);
    # on MovieLens they are better (the quality bands below)
    content = rl.models.ContentKNN(normalize_items=True).fit(train)
    hybrid = rl.models.HybridALS(factors=8, iterations=3).fit(train)
    reports = {name: rl.evaluate(model, train, test, k=10, candidates=cold, n_bootstrap=0)
               for name, model in (("als", als), ("content", content), ("hybrid", hybrid))}
    assert reports["als"].candidates.tolist() == sorted(cold.tolist())
    assert "n_candidates" in reports["als"].mlflow_metrics()
    # every cold item ties for ImplicitALS, so its lists are the random tie-break: the expected
    # precision@10 of a random ranking is the mean share of relevant items among the candidates
    relevant = np.diff(test.matrix.indptr)
    expected = np.mean(relevant[relevant > 0] / len(cold))
    assert 0.8 * expected < reports["als"].summary["precision@10"] < 1.2 * expected
    assert reports["content"].summary["precision@10"] > 1.15 * reports["als"].summary["precision@10"]
    # (HybridALS's quality is checked on ML-100K below: on the synthetic data, where exposure does
    # not depend on genres, its mapped factors are no better than random)
    assert reports["hybrid"].candidates.tolist() == sorted(cold.tolist())
    with pytest.raises(ReclabError, match=r"unknown item id\(s\) \[-5\]"):
        rl.evaluate(als, train, test, k=10, candidates=[-5])


def test_hybrid_keeps_implicit_als_on_warm_items(cold_synthetic):
    train, _, cold = cold_synthetic
    als = rl.models.ImplicitALS(factors=8, iterations=3).fit(train)
    hybrid = rl.models.HybridALS(factors=8, iterations=3).fit(train)
    warm = np.setdiff1d(np.arange(train.n_items), train.item_index(cold))
    np.testing.assert_array_equal(hybrid.item_factors_[warm], als.item_factors_[warm])
    assert np.abs(hybrid.item_factors_[train.item_index(cold)]).sum() > 0
    with pytest.raises(ReclabError, match="HybridALS needs item features"):
        rl.models.HybridALS(factors=2, iterations=1).fit(rl.Interactions.from_matrix(train.matrix))
    for groups in ("nothing", "genre, nothing"):   # a misspelt group was ignored beside a known one
        with pytest.raises(ReclabError, match=r"no feature is in group\(s\) \['nothing'\]; the "
                                              r"features' groups are \['genre'\]"):
            rl.models.ContentKNN(feature_groups=groups).fit(train)


def test_hybrid_maps_items_and_users_whose_interactions_implicit_als_ignores(cold_synthetic):
    # Stored values <= 0 are no interactions to ImplicitALS (it warns); HybridALS counted them,
    # so an item or a user with only those kept ALS's zero factors instead of the mapped ones.
    train = cold_synthetic[0]
    matrix = train.matrix.copy()
    matrix.data[matrix.indices == 3] = 0.0                        # item 3: only stored zeros
    matrix.data[matrix.indptr[5]:matrix.indptr[6]] = 0.0          # user 5 too
    zeros = Interactions.from_matrix(matrix, item_features=train.item_features,
                                     item_feature_names=train.item_feature_names)
    with pytest.warns(UserWarning, match="ignores the"):
        hybrid = rl.models.HybridALS(factors=8, iterations=2).fit(zeros)
    mapped = np.append(zeros.item_features[3].toarray().ravel(), 1.0) @ hybrid.item_feature_map_
    np.testing.assert_allclose(hybrid.item_factors_[3], mapped, rtol=1e-5)
    assert np.abs(hybrid.item_factors_[3]).sum() > 0 and np.abs(hybrid.user_factors_[5]).sum() > 0


def test_hybrid_shows_a_new_user_without_features_what_the_average_user_likes(synthetic_data):
    """Without user features, a user with no training interactions gets the constant's map, the
    ridge-shrunk mean of the other users' factors, not ALS's zero factors (whose scores all tie)."""
    assert synthetic_data.user_features is None
    train, test = rl.split.cold_users(synthetic_data, test_frac=0.2, seed=0)
    als = rl.models.ImplicitALS(factors=8, iterations=3).fit(train)
    hybrid = rl.models.HybridALS(factors=8, iterations=3, feature_regularization=10.0).fit(train)
    warm = train.user_counts() > 0
    new = np.flatnonzero(~warm)
    np.testing.assert_array_equal(hybrid.user_factors_[warm], als.user_factors_[warm])
    assert not als.user_factors_[new].any()
    mean = als.user_factors_[warm].astype(np.float64).sum(axis=0) / (warm.sum() + 10.0)
    assert hybrid.user_feature_map_.shape == (1, 8)
    np.testing.assert_allclose(hybrid.user_factors_[new], np.tile(mean, (new.size, 1)), rtol=1e-5, atol=1e-7)
    precision = {name: rl.evaluate(model, train, test, k=10, n_bootstrap=0).summary["precision@10"]
                 for name, model in (("als", als), ("hybrid", hybrid),
                                     ("popularity", rl.models.Popularity().fit(train)))}
    # measured: ImplicitALS 0.05 (every item ties: chance), HybridALS 0.68, Popularity 0.68
    assert precision["hybrid"] > 0.9 * precision["popularity"] > 3 * precision["als"]


def test_ranks_new_users_says_which_models_beat_chance_for_a_user_without_interactions(synthetic_data):
    """``ranks_new_users`` against what each model does on the new users of a cold_users split
    (evaluate breaks ties at random): above chance exactly when the attribute says so."""
    from reclab.config.schema import MODEL_NAMES

    train, test = rl.split.cold_users(synthetic_data, test_frac=0.2, seed=0)
    relevant = np.diff(test.matrix.indptr)
    chance = np.mean(relevant[relevant > 0] / train.n_items)   # expected precision of a random list
    small = {"factors": 8, "iterations": 3}
    ranked = {}
    for name in (name for name in MODEL_NAMES if name != "SparkALS"):
        cls = getattr(rl.models, name)
        model = cls(**{key: value for key, value in small.items() if key in cls._param_names()})
        report = rl.evaluate(model.fit(train), train, test, k=10, n_bootstrap=0)
        ranked[name] = (bool(report.summary["precision@10"] > 2 * chance), model.ranks_new_users)
    # measured: Popularity and HybridALS 0.68, Bias, SVD and ExplicitALS 0.44, the others 0.06 (chance)
    assert all(beats == claimed for beats, claimed in ranked.values()), ranked
    assert {name for name, (beats, _) in ranked.items() if beats} == {
        "Popularity", "Bias", "SVD", "ExplicitALS", "HybridALS"}


def test_content_knn_scores_follow_its_formula():
    """Scores against the docstring's formulas written densely: idf, rating-weighted profiles,
    per-group unit profiles against raw item vectors (defaults), and the whole-profile cosine."""
    ratings = np.array([[5, 3, 0, 0, 1], [0, 4, 4, 2, 0], [1, 0, 0, 0, 5]], dtype=np.float32)
    features = np.array([[1, 0, 0, 1, 0, 0.8], [1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 0.6],
                         [0, 1, 1, 0, 1, 0], [1, 0, 0, 0, 1, 1.0]], dtype=np.float32)
    names = ["genre=A", "genre=B", "genre=C", "decade=1990", "decade=2000", "tag=dark"]
    data = Interactions.from_matrix(sp.csr_matrix(ratings), item_features=features, item_feature_names=names)
    weighted = features * (np.log(6.0 / ((features > 0).sum(axis=0) + 1.0)) + 1.0)
    rated = ratings > 0
    means = ratings.sum(axis=1, keepdims=True) / rated.sum(axis=1, keepdims=True)
    profiles = np.where(rated, 1.0 + 0.25 * (ratings - means), 0.0) @ weighted
    expected = np.zeros((3, 5))
    for group in ([0, 1, 2], [3, 4], [5]):
        part = profiles[:, group]
        norms = np.linalg.norm(part, axis=1, keepdims=True)
        expected += np.divide(part, norms, out=np.zeros_like(part), where=norms > 0) @ weighted[:, group].T
    model = rl.models.ContentKNN(rating_weight=0.25).fit(data)
    np.testing.assert_allclose(model.score_items([0, 1, 2]), expected, rtol=1e-5, atol=1e-6)
    cosine = rl.models.ContentKNN(rating_weight=0.25, group_profiles=False, normalize_items=True).fit(data)
    unit = weighted / np.linalg.norm(weighted, axis=1, keepdims=True)
    np.testing.assert_allclose(cosine.score_items([0, 1, 2]),
                               profiles / np.linalg.norm(profiles, axis=1, keepdims=True) @ unit.T,
                               rtol=1e-5, atol=1e-6)
    # similar_items is the feature cosine whatever the scoring
    np.testing.assert_allclose(model.item_similarity(0, np.arange(1, 5)), unit[1:] @ unit[0], rtol=1e-5)
    # a stored 0 is not having the feature: its idf is the dense formula's (it counted as having it)
    entries = sp.coo_matrix(features)   # and item 0 lacks genre=B as a stored entry
    stored = sp.csr_matrix((np.append(entries.data, 0.0), (np.append(entries.row, 0), np.append(entries.col, 1))),
                           shape=features.shape)
    assert stored.nnz == np.count_nonzero(features) + 1
    again = Interactions.from_matrix(sp.csr_matrix(ratings), item_features=stored, item_feature_names=names)
    np.testing.assert_allclose(rl.models.ContentKNN(rating_weight=0.25).fit(again).score_items([0, 1, 2]),
                               expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ReclabError, match="group_profiles"):
        rl.models.ContentKNN(group_profiles="yes").fit(data)


def test_cold_start_quality_on_ml100k(ml100k):
    """Done-when band: cold items of ML-100K (20%, seed 0), ranking them only."""
    train, test = rl.split.cold_items(ml100k, test_frac=0.2, seed=0)
    cold = train.item_ids[train.item_counts() == 0]
    precision = {type(model).__name__: rl.evaluate(model.fit(train), train, test, k=10, candidates=cold,
                                                   n_bootstrap=0).summary["precision@10"]
                 for model in (rl.models.ContentKNN(), rl.models.HybridALS(), rl.models.ImplicitALS())}
    assert 1.1 * 0.117 <= precision["ContentKNN"] < 0.26   # measured 0.218
    assert 1.1 * 0.117 <= precision["HybridALS"] < 0.3
    assert precision["ImplicitALS"] < 0.075   # random ranking of these lists: 0.067


def test_cold_start_quality_on_ml_latest_small(shared_path):
    """Done-when band on ml-latest-small's cold items (20%, seed 0), from genres and decades: a
    cold movie has no tags."""
    data = rl.datasets.load("ml-latest-small", data_dir=shared_path("ml-latest-small/ratings.csv").parents[1],
                            download=False)
    train, test = rl.split.cold_items(data, test_frac=0.2, seed=0)
    cold = rl.evaluation.cold_candidates(train, test)
    report = rl.evaluate(rl.models.ContentKNN().fit(train), train, test, k=10, candidates=cold, n_bootstrap=0)
    assert 1.1 * 0.086 <= report.summary["precision@10"] < 0.2   # measured 0.117
    # The held-out movies' tags are gone from train, which models fit on (who tagged a movie
    # mostly rated it: 0.152 with them); genres and decades stay, and the warm movies keep their tags.
    tags = np.char.startswith(train.item_feature_names.astype(str), "tag=")
    held_out = np.isin(train.item_ids, cold)
    features = train.item_features
    assert features[held_out][:, tags].nnz == 0 and features[held_out][:, ~tags].nnz > 0
    assert features[~held_out][:, tags].nnz == data.item_features[~held_out][:, tags].nnz > 0
    assert data.item_features[held_out][:, tags].nnz > 0
    # test keeps them, so train + test is the data again
    assert (test.item_features != data.item_features).nnz == 0
    assert (train.union(test).item_features != data.item_features).nnz == 0


def test_cold_items_drop_only_the_held_out_items_features_made_from_interactions():
    """A new title has no user tags: cold_items drops the tag= features of the cold items in
    train, and nothing else; test keeps them, and the union of the two is the data again;
    cold_users keeps every feature."""
    ratings = sp.csr_matrix(np.array([[5, 4, 1, 3], [1, 2, 4, 5]], dtype=np.float32))
    features = np.array([[1, 1, 0.5], [1, 0, 0.7], [0, 1, 0.2], [1, 1, 0.9]], dtype=np.float32)
    data = Interactions.from_matrix(ratings, item_features=features,
                                    item_feature_names=["genre=Drama", "decade=1940", "tag=dark"])
    train, test = rl.split.cold_items(data, test_frac=0.5, seed=0)
    cold = train.item_counts() == 0
    expected = features.copy()
    expected[cold, 2] = 0
    assert np.array_equal(train.item_features.toarray(), expected)
    assert train.item_features.nnz == np.count_nonzero(expected)   # dropped, not stored as 0
    for part in (test, train.union(test), test.union(train)):
        assert np.array_equal(part.item_features.toarray(), features)
    train, test = rl.split.cold_users(data, test_frac=0.5, seed=0)
    assert np.array_equal(train.item_features.toarray(), features)


def test_a_stored_zero_feature_is_no_feature():
    """A feature matrix with a stored 0 is the matrix without it: because_you_like counted the
    stored 0 as having the feature, which lowered its idf (decade=1940: weight 2.45 -> 2.0)."""
    from reclab.postprocess import because_you_like

    ratings = sp.csr_matrix(np.array([[5, 4, 1, 0], [1, 0, 0, 5]], dtype=np.float32))
    features = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
    names = ["genre=Film-Noir", "decade=1940", "tag=dark"]
    entries = sp.coo_matrix(features)
    stored = sp.csr_matrix((np.append(entries.data, 0.0), (np.append(entries.row, 2), np.append(entries.col, 1))),
                           shape=features.shape)
    plain, zero = (Interactions.from_matrix(ratings, item_features=matrix, item_feature_names=names)
                   for matrix in (features, stored))
    assert zero.item_features.nnz == np.count_nonzero(features) and zero.fingerprint() == plain.fingerprint()
    pd.testing.assert_frame_equal(because_you_like(zero, 0, 3), because_you_like(plain, 0, 3))


def test_feature_explanations_name_shared_features():
    from reclab.postprocess import because_you_like, explain_by_features

    ratings = sp.csr_matrix(np.array([[5, 4, 1, 0], [1, 0, 0, 5]], dtype=np.float32))
    features = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
    data = Interactions.from_matrix(ratings, item_features=features,
                                    item_feature_names=["genre=Film-Noir", "decade=1940", "tag=dark"])
    table = because_you_like(data, 0, 3, n=3)
    # user 0 liked items 0 and 1 (>= their mean 3.33): Film-Noir twice, 1940s once; 'dark' only disliked
    assert table["feature"].tolist() == ["genre=Film-Noir", "decade=1940"]
    assert table.attrs["caption"] == "Because you like Film-Noir and 1940s films"
    recommendations = pd.DataFrame({"user": [0, 1], "item": [3, 1], "title": ["D", "B"]})
    explained = explain_by_features(data, recommendations)
    assert explained["because"].tolist() == ["Because you like Film-Noir and 1940s films",
                                             "Because you like Film-Noir"]
    with pytest.raises(ReclabError, match="needs item features"):
        because_you_like(Interactions.from_matrix(ratings), 0, 3)


def test_params_accept_cold_splits_and_feature_models(tmp_path):
    from reclab.config import Config, make_model, make_split

    config = Config.load(Path(__file__).resolve().parents[1] / "params" / "ml-latest-small-cold.yaml",
                  overrides={"dataset": "synthetic", "split.method": "cold_users"})
    assert config["split"]["method"] == "cold_users" and config["model"] == "HybridALS"
    assert make_model(config, "HybridALS").iterations == 15   # the file's model parameters reach it
    data = rl.datasets.synthetic(seed=0, n_users=200, n_items=300, n_ratings=6000)
    train, valid, test = make_split(config, data)
    cold = test.user_counts() > 0
    assert not (train.user_counts()[cold] > 0).any() and not (valid.user_counts()[cold] > 0).any()
