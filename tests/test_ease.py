"""EASE: the closed form against a dense numpy reference, its quality band on ML-100k (80/20
per-user random holdout, seed 42) and the memory guard."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from model_contract import contract_data
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.evaluation import evaluate
from reclab.models import EASE


def _reference_scores(matrix, regularization: float) -> np.ndarray:
    """Steck's closed form written densely in float64 with numpy's inverse: ``X B``."""
    x = matrix.toarray().astype(np.float64)
    inverse = np.linalg.inv(x.T @ x + regularization * np.eye(x.shape[1]))
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return x @ weights


@pytest.fixture(scope="module")
def ease_ml100k(ml100k_split):
    train, _ = ml100k_split
    return EASE(regularization=400.0).fit(train)


def test_scores_equal_a_dense_reference_on_ml100k(ease_ml100k, ml100k_split):
    train, _ = ml100k_split
    binary = train.matrix.copy()
    binary.data[:] = 1.0
    expected = _reference_scores(binary, 400.0)
    scores = ease_ml100k.score_items(np.arange(train.n_users))
    rated = np.bincount(train.matrix.indices, minlength=train.n_items) > 0   # the rest rank last
    np.testing.assert_allclose(scores[:, rated], expected[:, rated], rtol=0, atol=1e-5)
    assert np.all(np.diag(ease_ml100k.weights_) == 0)


def test_precision_on_ml100k(ease_ml100k, ml100k_split):
    train, test = ml100k_split
    precision = evaluate(ease_ml100k, train, test, k=10, n_bootstrap=0).summary["precision@10"]
    assert abs(precision - 0.380) <= 0.003           # measured 0.3799


def test_default_precision_on_ml100k(ml100k_split):
    train, test = ml100k_split
    precision = evaluate(EASE().fit(train), train, test, k=10, n_bootstrap=0).summary["precision@10"]
    assert 0.365 <= precision <= 0.385          # measured 0.3701 (regularization 200)


def test_rating_weights_and_float64_follow_the_same_closed_form():
    data = contract_data()
    model = EASE(regularization=3.0, binarize=False, dtype="float64").fit(data)
    assert model.weights_.dtype == np.float64
    scores = model.score_items(np.arange(data.n_users))
    # Items nobody rated rank last in every model (reclab.models.base); the formula holds for the rest.
    rated = np.bincount(data.matrix.indices, minlength=data.n_items) > 0
    np.testing.assert_allclose(scores[:, rated], _reference_scores(data.matrix, 3.0)[:, rated],
                               rtol=0, atol=1e-5)
    assert (scores[:, ~rated].max(axis=1, initial=-np.inf) < scores[:, rated].min(axis=1)).all()


def test_similarities_are_partial_correlations():
    data = contract_data()
    model = EASE(regularization=3.0, dtype="float64").fit(data)
    binary = (data.matrix.toarray() != 0).astype(np.float64)
    inverse = np.linalg.inv(binary.T @ binary + 3.0 * np.eye(data.n_items))
    scale = np.sqrt(np.diag(inverse))
    expected = -inverse / scale[:, None] / scale[None, :]
    others = np.delete(np.arange(data.n_items), 4)
    np.testing.assert_allclose(model.item_similarity(4, others), expected[4, others], rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.item_similarity(4, [9]), model.item_similarity(9, [4]), atol=1e-6)


def test_a_catalog_too_large_fails_before_allocating():
    # 200,000 items: 160 GB in float32. The guard must answer from the shape alone.
    n_items = 200_000
    data = Interactions.from_matrix(sp.csr_matrix(
        (np.ones(3, np.float32), ([0, 1, 2], [0, 5, n_items - 1])), shape=(3, n_items)))
    model = EASE()
    tracemalloc.start()
    try:
        with pytest.raises(ReclabError) as error:
            model.fit(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"the refused fit allocated {peak} bytes"
    message = str(error.value)
    assert "160.0 GB" in message and "160,000,000,000 bytes" in message
    assert "max_memory_gb=4.0" in message and "raise max_memory_gb" in message
    assert not [name for name in vars(model) if name.endswith("_")]
    # Raising the limit is the documented way through: the same guard then passes the check.
    small = Interactions.from_matrix(sp.csr_matrix(np.eye(3, dtype=np.float32)))
    with pytest.raises(ReclabError, match="needs 0.0 GB"):
        EASE(max_memory_gb=1e-9).fit(small)
    assert EASE(max_memory_gb=1e-6).fit(small).weights_.shape == (3, 3)


def test_too_small_a_regularization_is_a_clear_error():
    # Item 0 has no interactions, and 1e-50 is 0 in float32: X^T X + lambda I is singular.
    data = contract_data()
    model = EASE(regularization=1e-50)
    with pytest.raises(ReclabError, match="regularization=1e-50 is too small.*dtype='float64'"):
        model.fit(data)
    assert not [name for name in vars(model) if name.endswith("_")]
    assert np.isfinite(EASE(regularization=1e-50, dtype="float64").fit(data).weights_).all()


def test_too_large_a_regularization_is_refused_as_too_large():
    # 1e300 is inf in float32: the solve failed and the message said "too small".
    with pytest.raises(ReclabError, match=r"EASE parameter regularization must be a number in "
                                          r"\(0.0, 8.50705917\d*e\+37\], got 1e\+300"):
        EASE(regularization=1e300).fit(contract_data())
    assert np.isfinite(EASE(regularization=1e300, dtype="float64").fit(contract_data()).weights_).all()
