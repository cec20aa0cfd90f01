"""SVD: exact recovery of a biased low-rank matrix, determinism of the factors, clear errors."""

import numpy as np
import pytest
import scipy.sparse as sp

from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.models import SVD, Bias, ExplicitALS


def _biased_rank2(n_users=30, n_items=20, seed=3):
    """Fully observed ``mu + b_u + b_i + P Q^T`` with zero-mean rows/columns in ``P Q^T``, so the
    unregularized bias estimate is exact and the residual is exactly rank 2."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((n_users, 2))
    q = rng.standard_normal((n_items, 2))
    p -= p.mean(axis=0)
    q -= q.mean(axis=0)
    ratings = 3.0 + rng.normal(0, 0.3, (n_users, 1)) + rng.normal(0, 0.3, (1, n_items)) + 0.3 * p @ q.T
    return ratings, Interactions.from_matrix(sp.csr_matrix(ratings.astype(np.float32)))


def test_recovers_a_biased_rank_two_matrix():
    ratings, data = _biased_rank2()
    model = SVD(factors=2, user_reg=0.0, item_reg=0.0, seed=0).fit(data)
    users, items = np.indices(ratings.shape).reshape(2, -1)
    np.testing.assert_allclose(model.predict(users, items), ratings.ravel(), atol=1e-4)
    # One factor cannot: the second singular value carries real signal.
    worse = SVD(factors=1, user_reg=0.0, item_reg=0.0, seed=0).fit(data)
    assert np.abs(worse.predict(users, items) - ratings.ravel()).max() > 0.05


def test_factors_are_sorted_sign_fixed_and_independent_of_the_seed():
    _, data = _biased_rank2()
    first = SVD(factors=3, user_reg=0.0, item_reg=0.0, seed=0).fit(data)
    other = SVD(factors=3, user_reg=0.0, item_reg=0.0, seed=12345).fit(data)
    assert np.all(np.diff(first.singular_values_) <= 0)
    top = first.item_factors_[:, :2]
    assert np.all(top[np.argmax(np.abs(top), axis=0), [0, 1]] > 0)
    # The leading two singular pairs are well separated, so only the sign could differ; it does not.
    np.testing.assert_allclose(other.item_factors_[:, :2], top, atol=1e-4)
    np.testing.assert_allclose(other.user_factors_[:, :2], first.user_factors_[:, :2], atol=1e-4)


def test_ranking_score_is_the_prediction_minus_a_per_user_constant():
    ratings, data = _biased_rank2()
    model = SVD(factors=2, seed=0).fit(data)
    user = 4
    predicted = model.predict(user, np.arange(data.n_items)).astype(np.float64)
    inside = (predicted > ratings.min() + 1e-3) & (predicted < ratings.max() - 1e-3)
    offset = predicted[inside] - model.score_items(user)[0][inside]
    np.testing.assert_allclose(offset, model.global_mean_ + model.user_bias_[user], atol=1e-5)


def test_too_many_factors_is_a_clear_error():
    _, data = _biased_rank2(n_users=30, n_items=20)
    with pytest.raises(ReclabError, match="factors=20 must be smaller than min\\(n_users, n_items\\) = 20"):
        SVD(factors=20).fit(data)
    SVD(factors=19).fit(data)


@pytest.mark.parametrize("model", [SVD(factors=2), ExplicitALS(factors=2), Bias()], ids=lambda m: type(m).__name__)
def test_implicit_data_is_rejected_naming_the_model(model):
    """It named the BiasNormalizer the model uses inside, not the model."""
    data = Interactions.from_matrix(sp.csr_matrix(np.eye(6, dtype=np.float32)))
    with pytest.raises(ReclabError, match=rf"^{type(model).__name__} learns rating biases, but this data is "
                                          r"implicit"):
        model.fit(data)


def test_items_and_users_without_interactions_get_exactly_zero_factors():
    # ARPACK leaves round-off (~1e-15) in the factors of an all-zero column; the cosine of
    # similar_items would scale it to unit length and call a never-rated item similar to others.
    import numpy as np
    from reclab.datasets import synthetic
    from reclab.models import PureSVD, SVD
    from reclab.split import cold_items

    data = synthetic(seed=0)
    train, _ = cold_items(data, test_frac=0.2, seed=0)
    cold = np.flatnonzero(train.item_counts() == 0)
    assert cold.size
    rated = int(np.flatnonzero(train.item_counts())[0])
    for model in (SVD(factors=20), PureSVD(factors=20)):
        model.fit(train)
        assert not model.item_factors_[cold].any()
        assert not model.item_similarity(rated, cold).any()
        _, similarities = model.similar_items(cold[:5], n=5)
        assert not similarities.any()
