"""Quality bands of the baseline models on ML-100k (80/20 per-user random holdout, seed 42).

Each band brackets the value measured when the model was written (noted beside it): a regression
in accuracy, or a leak of test data that makes a model suspiciously good, fails the test.
"""

import numpy as np
import pytest

from reclab.evaluation import evaluate
from reclab.models import SVD, Bias, ItemKNN, Popularity


def _test_rmse(model, test) -> float:
    users = np.repeat(np.arange(test.n_users), test.user_counts())
    truth = test.matrix.data.astype(np.float64)
    return float(np.sqrt(np.mean((model.predict(users, test.matrix.indices) - truth) ** 2)))


@pytest.fixture(scope="module")
def bias_rmse(ml100k_split):
    train, test = ml100k_split
    return _test_rmse(Bias().fit(train), test)


def test_bias_rmse(bias_rmse):
    assert 0.93 <= bias_rmse <= 0.96          # measured 0.9461


def test_svd_rmse_beats_bias(ml100k_split, bias_rmse):
    train, test = ml100k_split
    rmse = _test_rmse(SVD(factors=50, seed=0).fit(train), test)
    assert 0.925 <= rmse <= 0.942             # measured 0.9338
    assert rmse < bias_rmse - 0.008


def test_popularity_precision(ml100k_split):
    train, test = ml100k_split
    report = evaluate(Popularity().fit(train), train, test, k=10, n_bootstrap=0)
    assert 0.18 <= report.summary["precision@10"] <= 0.20      # measured 0.1918


def test_item_knn_precision_beats_popularity(ml100k_split):
    train, test = ml100k_split
    report = evaluate(ItemKNN(neighbors=50).fit(train), train, test, k=10, n_bootstrap=0)
    assert 0.28 <= report.summary["precision@10"] <= 0.31      # measured 0.2943
