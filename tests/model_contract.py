"""Checks every reclab model must pass, as small named functions.

Each ``check_*`` takes ``make`` (a callable returning a new, unfitted model), ``data`` (the tiny
data set from :func:`contract_data`) and ``tmp_path`` (a directory for files) and asserts one part
of the model contract (``reclab/models/base.py``). ``tests/test_models_contract.py`` runs every
check against every model; a new model only needs a line in its list of factories.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import reclab.models as models
from reclab.data import Interactions
from reclab.errors import ReclabError

# Built with a seed and covering the awkward cases: user 0 has one rating, user 1 none at all,
# item 0 is never rated, the rest is a random 25% of the matrix with ratings 1..5. Items and users
# carry 0/1 content features (item 0 has some, so feature models score it).
N_USERS, N_ITEMS = 40, 25


def contract_data() -> Interactions:
    rng = np.random.default_rng(7)
    dense = np.where(rng.random((N_USERS, N_ITEMS)) < 0.25, rng.integers(1, 6, (N_USERS, N_ITEMS)), 0)
    dense[0] = 0
    dense[0, 3] = 4
    dense[1] = 0
    dense[:, 0] = 0
    dense[2, 1:6] = [5, 1, 3, 2, 4]    # every rating value occurs
    features = np.random.default_rng(8)
    item_features = (features.random((N_ITEMS, 6)) < 0.4).astype(np.float32)
    item_features[0, :2] = 1.0
    user_features = (features.random((N_USERS, 3)) < 0.5).astype(np.float32)
    return Interactions.from_matrix(sp.csr_matrix(dense.astype(np.float32)),
                                    item_features=item_features, user_features=user_features)


# -- helpers --------------------------------------------------------------------------------------
def learned(model) -> dict:
    return {name: value for name, value in vars(model).items()
            if name.endswith("_") and not name.startswith("_")}


def assert_same_state(first, second) -> None:
    """Learned attributes of two models are equal exactly (arrays bit for bit)."""
    a, b = learned(first), learned(second)
    assert sorted(a) == sorted(b)
    for name in a:
        x, y = a[name], b[name]
        if sp.issparse(x):
            assert sp.issparse(y) and x.shape == y.shape, name
            for part in ("data", "indices", "indptr"):
                np.testing.assert_array_equal(getattr(x, part), getattr(y, part), err_msg=name)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert type(x) is type(y) and x == y, name


def has_similarities(model) -> bool:
    try:
        model.similar_items(2, n=1)
    except TypeError:
        return False
    return True


def all_users(data):
    return np.arange(data.n_users)


# -- checks -----------------------------------------------------------------------------------------
def check_fit_returns_self(make, data, tmp_path):
    model = make()
    assert model.fit(data) is model


def check_no_learned_attributes_before_fit(make, data, tmp_path):
    model = make()
    assert learned(model) == {}
    with pytest.raises(ReclabError, match=f"{type(model).__name__} is not fitted; call fit"):
        model.recommend(0)
    assert learned(model.fit(data)), "fit set no attribute ending in _"


def check_init_stores_params_only(make, data, tmp_path):
    model = make()
    params = model.get_params()
    assert set(vars(model)) == set(params), "__init__ must store exactly its arguments"
    assert repr(model) == f"{type(model).__name__}(" + ", ".join(
        f"{k}={v!r}" for k, v in params.items()) + ")"


def check_params_roundtrip_and_clone(make, data, tmp_path):
    model = make()
    params = model.get_params()
    assert model.set_params(**params) is model
    model.fit(data)
    assert model.get_params() == params, "fit changed a parameter"
    copy = models.clone(model)
    assert type(copy) is type(model) and copy.get_params() == params and learned(copy) == {}
    with pytest.raises(ReclabError, match="valid parameters are"):
        model.set_params(not_a_parameter=1)


def check_invalid_params_rejected(make, data, tmp_path):
    for name in make().get_params():
        model = make().set_params(**{name: "bad"})
        with pytest.raises(ReclabError, match=name):
            model.fit(data)
        assert learned(model) == {}, "a failed fit left learned state behind"


def check_fit_rejects_bad_data(make, data, tmp_path):
    with pytest.raises(ReclabError, match="Interactions"):
        make().fit(data.matrix)


def check_same_seed_same_model(make, data, tmp_path):
    first, second = make().fit(data), make().fit(data)
    assert_same_state(first, second)
    refit = make().fit(data).fit(data)
    assert_same_state(first, refit)
    for a, b in zip(first.recommend(all_users(data), n=5), second.recommend(all_users(data), n=5)):
        np.testing.assert_array_equal(a, b)


def check_scores(make, data, tmp_path):
    model = make().fit(data)
    scores = model.score_items(all_users(data))
    assert scores.shape == (data.n_users, data.n_items) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    ids, best = model.recommend(all_users(data), n=5, filter_seen=False)
    np.testing.assert_array_equal(best, np.take_along_axis(scores, ids, axis=1))


def check_seen_items_never_recommended(make, data, tmp_path):
    model = make().fit(data)
    ids, scores = model.recommend(all_users(data), n=data.n_items)
    seen = data.matrix
    for user in range(data.n_users):
        row = set(seen.indices[seen.indptr[user]:seen.indptr[user + 1]])
        got = ids[user][ids[user] >= 0]
        assert not row & set(got.tolist()), f"user {user} got seen items"
        # every unseen item is recommended exactly once, then the padding
        assert sorted(got.tolist()) == sorted(set(range(data.n_items)) - row)
        assert np.all(np.diff(scores[user][ids[user] >= 0]) <= 0)
    ids, _ = model.recommend(1, n=3, filter_seen=False)
    assert (ids >= 0).all()


def check_n_larger_than_catalog_is_padded(make, data, tmp_path):
    model = make().fit(data)
    ids, scores = model.recommend(3, n=data.n_items + 5, filter_seen=False)
    assert ids.shape == scores.shape == (data.n_items + 5,)
    assert sorted(ids[:data.n_items].tolist()) == list(range(data.n_items))
    assert (ids[data.n_items:] == -1).all() and np.isneginf(scores[data.n_items:]).all()
    for bad in (0, -3, 2.5, "10"):
        with pytest.raises(ReclabError, match="n must be an integer >= 1"):
            model.recommend(3, n=bad)
    # Beyond the catalog and 1024: refused before the (users, n) output is allocated.
    for method, first in (("recommend", 3), ("similar_items", 0)):
        if method == "similar_items" and not has_similarities(model):
            continue
        with pytest.raises(ReclabError, match=rf"n=1000000000000 is more than the {data.n_items} items"):
            getattr(model, method)(first, n=10**12)


def check_batch_equals_one_by_one(make, data, tmp_path):
    model = make().fit(data)
    users = np.array([5, 0, 1, 17, 5, 39])
    ids, scores = model.recommend(users, n=7)
    assert ids.shape == scores.shape == (users.size, 7) and ids.dtype == np.int64
    for row, user in enumerate(users):
        one_ids, one_scores = model.recommend(int(user), n=7)
        assert one_ids.shape == (7,)
        np.testing.assert_array_equal(one_ids, ids[row])
        np.testing.assert_array_equal(one_scores, scores[row])
    empty_ids, _ = model.recommend(np.array([], dtype=np.int64), n=7)
    assert empty_ids.shape == (0, 7)


def check_candidates_restrict_the_lists(make, data, tmp_path):
    model = make().fit(data)
    allowed = np.array([2, 5, 7, 11])
    ids, _ = model.recommend(all_users(data), n=6, filter_seen=False, candidates=allowed)
    assert set(ids[:, :4].ravel().tolist()) <= set(allowed.tolist()) and (ids[:, 4:] == -1).all()


def check_unknown_users_and_items_rejected(make, data, tmp_path):
    model = make().fit(data)
    for bad, message in ((data.n_users, f"unknown user indices \\[{data.n_users}\\]"),
                         (-1, "unknown user indices \\[-1\\]"), ([3, 1000], "\\[1000\\]"),
                         (1.5, "integer user indices"), ("7", "integer user indices"),
                         ([[1, 2]], "1-D")):
        with pytest.raises(ReclabError, match=message):
            model.recommend(bad)
        with pytest.raises(ReclabError, match=message):
            model.score_items(bad)
    with pytest.raises(ReclabError, match=f"0..{data.n_users - 1}"):
        model.recommend(data.n_users)
    with pytest.raises(ReclabError, match="unknown item indices \\[25\\]"):
        model.recommend(3, candidates=[1, data.n_items])


def check_similar_items(make, data, tmp_path):
    model = make().fit(data)
    if not has_similarities(model):
        with pytest.raises(TypeError, match="has no item similarities"):
            model.similar_items(2)
        return
    ids, scores = model.similar_items([2, 3, 4], n=data.n_items + 1)
    assert ids.shape == (3, data.n_items + 1)
    for row, item in enumerate([2, 3, 4]):
        real = ids[row] >= 0
        assert item not in ids[row] and real.sum() == data.n_items - 1
        assert np.all(np.diff(scores[row][real]) <= 0)
        assert np.all(np.abs(scores[row][real]) <= 1 + 1e-5)
        np.testing.assert_allclose(model.item_similarity(item, ids[row][real]), scores[row][real],
                                   rtol=0, atol=1e-6)
    with pytest.raises(ReclabError, match="unknown item indices"):
        model.similar_items(data.n_items)


def check_predict(make, data, tmp_path):
    model = make().fit(data)
    if not model.predicts_ratings:
        with pytest.raises(TypeError, match=f"{type(model).__name__} does not predict ratings"):
            model.predict(0, 1)
        return
    users = np.repeat(all_users(data), data.n_items)
    items = np.tile(np.arange(data.n_items), data.n_users)
    ratings = model.predict(users, items)
    assert ratings.shape == users.shape and ratings.dtype == np.float32
    assert ratings.min() >= 1.0 and ratings.max() <= 5.0, "predictions not clipped to 1..5"
    single = model.predict(5, 7)
    assert np.ndim(single) == 0 and single == ratings[5 * data.n_items + 7]
    np.testing.assert_array_equal(model.predict(5, np.arange(data.n_items)),
                                  ratings[5 * data.n_items:6 * data.n_items])
    with pytest.raises(ReclabError, match="unknown item indices"):
        model.predict([0, 1], [0, data.n_items])
    with pytest.raises(ReclabError, match="same length"):
        model.predict([0, 1, 2], [0, 1])


def check_save_load_roundtrip(make, data, tmp_path):
    model = make().fit(data)
    path = model.save(tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"], "temporary file left behind"
    loaded = models.load(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert_same_state(model, loaded)
    for a, b in zip(model.recommend(all_users(data), n=8), loaded.recommend(all_users(data), n=8)):
        np.testing.assert_array_equal(a, b)
    if model.predicts_ratings:
        pairs = ([0, 4, 9], [1, 2, 3])
        np.testing.assert_array_equal(model.predict(*pairs), loaded.predict(*pairs))
    if has_similarities(model):
        for a, b in zip(model.similar_items([2, 9], n=5), loaded.similar_items([2, 9], n=5)):
            np.testing.assert_array_equal(a, b)


def check_load_rejects_damaged_files(make, data, tmp_path):
    model = make().fit(data)
    path = model.save(tmp_path / "model.npz")
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ReclabError, match="truncated.npz"):
        models.load(truncated)
    # Change one byte of one stored array (not the zip's CRC-checked framing alone): the
    # member's CRC or the sha256 must catch it.
    tampered = tmp_path / "tampered.npz"
    damaged = bytearray(raw)
    damaged[len(raw) // 3] ^= 0xFF
    tampered.write_bytes(bytes(damaged))
    with pytest.raises(ReclabError, match="tampered.npz"):
        models.load(tampered)


def check_degenerate_input_stays_finite(make, data, tmp_path):
    """One-rating and empty users, an unrated item, too many factors, zero regularization."""
    variants = [{}]
    params = make().get_params()
    if "factors" in params:
        variants.append({"factors": data.nnz + 1})
    zero_reg = {name: 0.0 for name in params if "reg" in name}
    if zero_reg:
        variants.append(zero_reg)
    for change in variants:
        model = make().set_params(**change)
        try:
            model.fit(data)
        except ReclabError as error:
            assert any(name in str(error) for name in change), f"unclear error for {change}: {error}"
            continue
        assert np.isfinite(model.score_items(all_users(data))).all(), change
        if model.predicts_ratings:
            assert np.isfinite(model.predict(np.arange(data.n_users), np.zeros(data.n_users, int))).all()


def check_callback(make, data, tmp_path):
    calls = []
    model = make()
    model.fit(data, callback=lambda iteration, seconds, loss: calls.append((iteration, seconds, loss)))
    iterations = [call[0] for call in calls]
    for _, seconds, loss in calls:
        assert isinstance(seconds, float) and seconds >= 0
        assert loss is None or (isinstance(loss, float) and np.isfinite(loss))
    if not model.reports_each_iteration:
        # Iterations it cannot observe (SparkALS): one report, the final point, never made-up ones.
        assert iterations == [model.iterations], "a model that cannot observe its iterations reports once, at the end"
    else:
        assert iterations == list(range(1, len(calls) + 1))
        if isinstance(model, models.FactorModel) and "iterations" in model.get_params():
            assert len(calls) == model.iterations, "an iterative model must report every iteration"
    with pytest.raises(ReclabError, match="callback must be callable"):
        make().fit(data, callback=3)


CHECKS = [
    check_fit_returns_self,
    check_no_learned_attributes_before_fit,
    check_init_stores_params_only,
    check_params_roundtrip_and_clone,
    check_invalid_params_rejected,
    check_fit_rejects_bad_data,
    check_same_seed_same_model,
    check_scores,
    check_seen_items_never_recommended,
    check_n_larger_than_catalog_is_padded,
    check_batch_equals_one_by_one,
    check_candidates_restrict_the_lists,
    check_unknown_users_and_items_rejected,
    check_similar_items,
    check_predict,
    check_save_load_roundtrip,
    check_load_rejects_damaged_files,
    check_degenerate_input_stays_finite,
    check_callback,
]
