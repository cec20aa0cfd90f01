"""BiasNormalizer: recovers the true biases, round-trips exactly, follows the estimator contract."""

import numpy as np
import pandas as pd
import pytest

from reclab import Interactions, ReclabError, datasets, models
from reclab.normalize import BiasNormalizer


@pytest.fixture(scope="module")
def synthetic():
    return datasets.synthetic(seed=0)


def entries(data):
    """(users, items, values) of every stored entry, in CSR order."""
    return np.repeat(np.arange(data.n_users), data.user_counts()), data.matrix.indices, data.matrix.data


def test_recovers_true_biases(synthetic):
    fitted = BiasNormalizer().fit(synthetic)
    user_r = np.corrcoef(fitted.user_bias_, synthetic.truth["user_bias"])[0, 1]
    item_r = np.corrcoef(fitted.item_bias_, synthetic.truth["item_bias"])[0, 1]
    # Measured 0.944 and 0.827 (seed 0; 0.94-0.95 and 0.81-0.85 over seeds 0-4). Item biases are
    # harder: observation favours liked items, and rarely rated items are shrunk towards 0.
    assert 0.90 < user_r <= 1.0
    assert 0.75 < item_r <= 1.0


def test_round_trip(synthetic):
    fitted = BiasNormalizer().fit(synthetic)
    residuals = fitted.transform(synthetic)
    assert np.array_equal(residuals.matrix.indptr, synthetic.matrix.indptr)
    assert np.array_equal(residuals.matrix.indices, synthetic.matrix.indices)
    assert residuals.timestamps is synthetic.timestamps or np.array_equal(residuals.timestamps, synthetic.timestamps)
    users, items, values = entries(residuals)
    assert abs(values.mean()) < 0.05
    back = fitted.inverse_transform(users, items, values)
    np.testing.assert_allclose(back, synthetic.matrix.data, rtol=0, atol=2e-6)
    np.testing.assert_allclose(values + fitted.predict(users, items), synthetic.matrix.data, atol=2e-6)


def test_zero_residuals_stay_stored():
    # Every rating equal: mean 4, all biases 0, every residual exactly 0.
    data = Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 2], "rating": [4.0] * 3}))
    residuals = BiasNormalizer().fit(data).transform(data)
    assert residuals.nnz == 3 and np.all(residuals.matrix.data == 0)


def test_matches_hand_computation():
    # mu = 3; with no regularization one pass gives b_i = mean over the item's users of r - mu,
    # then b_u = mean over the user's items of r - mu - b_i.
    data = Interactions.from_frame(pd.DataFrame({"user": [0, 0, 1], "item": [0, 1, 0], "rating": [4.0, 1.0, 4.0]}))
    fitted = BiasNormalizer(user_reg=0, item_reg=0, iterations=1).fit(data)
    assert fitted.global_mean_ == 3.0
    np.testing.assert_allclose(fitted.item_bias_, [1.0, -2.0])
    np.testing.assert_allclose(fitted.user_bias_, [0.0, 0.0])
    # Regularization shrinks: b_i(item 1) = (1 - 3) / (2 + 1).
    shrunk = BiasNormalizer(user_reg=0, item_reg=2, iterations=1).fit(data)
    np.testing.assert_allclose(shrunk.item_bias_, [2 / 4, -2 / 3])
    np.testing.assert_allclose(shrunk.predict([0, 1], [1, 0]), 3 + shrunk.user_bias_ + shrunk.item_bias_[[1, 0]],
                               rtol=1e-6)


def test_ml100k_quality_band(ml100k_split):
    train, test = ml100k_split
    users, items, ratings = entries(test)
    rmse = float(np.sqrt(np.mean((BiasNormalizer().fit(train).predict(users, items) - ratings) ** 2)))
    # Measured 0.946 (Surprise's BaselineOnly reports about 0.944 on ML-100k 5-fold).
    assert 0.93 < rmse < 0.96


def test_estimator_contract(synthetic):
    normalizer = BiasNormalizer(user_reg=5.0)
    assert not hasattr(normalizer, "user_bias_")
    assert normalizer.get_params() == {"user_reg": 5.0, "item_reg": 25.0, "iterations": 3}
    assert normalizer.fit(synthetic) is normalizer
    first = normalizer.user_bias_.copy()
    normalizer.fit(synthetic)
    assert np.array_equal(first, normalizer.user_bias_)
    assert normalizer.get_params()["user_reg"] == 5.0
    assert normalizer.set_params(iterations=1) is normalizer and normalizer.iterations == 1
    with pytest.raises(ReclabError, match=r"unknown parameter \['reg'\] for BiasNormalizer; valid parameters are"):
        normalizer.set_params(reg=1.0)


@pytest.mark.parametrize("params, message", [
    (dict(user_reg=-1.0), "user_reg must be >= 0.0, got -1.0"),
    (dict(item_reg=float("nan")), "item_reg must be a finite number, got nan"),
    (dict(user_reg=True), "user_reg must be a finite number, got True"),
    (dict(iterations=0), "iterations must be an integer >= 1, got 0"),
])
def test_bad_parameters_fail_in_fit(synthetic, params, message):
    normalizer = BiasNormalizer(**params)  # constructing never validates, as in scikit-learn
    with pytest.raises(ReclabError, match=message):
        normalizer.fit(synthetic)


def test_a_regularization_beyond_int64_is_a_number_like_any_other(synthetic):
    # np.isfinite refused the Python int 10**20 with a TypeError (Bias, SVD and ExplicitALS
    # check it as a number, then fit this normalizer with it).
    reference = BiasNormalizer(user_reg=1e20, item_reg=1e30).fit(synthetic)
    normalizer = BiasNormalizer(user_reg=10**20, item_reg=10**30).fit(synthetic)
    assert np.array_equal(normalizer.item_bias_, reference.item_bias_)
    assert np.array_equal(models.Bias(user_reg=10**20).fit(synthetic).user_bias_,
                          models.Bias(user_reg=1e20).fit(synthetic).user_bias_)


def test_usage_errors(synthetic):
    with pytest.raises(ReclabError, match="not fitted yet"):
        BiasNormalizer().predict([0], [0])
    implicit = Interactions.from_frame(pd.DataFrame({"user": [1, 2], "item": [1, 1]}), rating=None)
    with pytest.raises(ReclabError, match="needs explicit ratings"):
        BiasNormalizer().fit(implicit)
    fitted = BiasNormalizer().fit(synthetic)
    other = datasets.synthetic(seed=0, n_users=20, n_items=10, n_ratings=100)
    with pytest.raises(ReclabError, match=r"fitted on \(943, 1682\)"):
        fitted.transform(other)
    # the same shape, other users: their biases were those of the users at the same indices
    renamed = Interactions.from_matrix(synthetic.matrix, user_ids=synthetic.user_ids + 10_000,
                                       item_ids=synthetic.item_ids)
    with pytest.raises(ReclabError, match="other user ids than the data this normalizer was fitted on"):
        fitted.transform(renamed)
    with pytest.raises(ReclabError, match=r"item indices must be integers in \[0, 1682\)"):
        fitted.predict([0], [1682])
