"""reclab.metrics against hand-computed values and a plain-Python reference."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import user_metrics
from reclab.errors import ReclabError
from reclab.metrics import (
    RANKING_METRICS,
    coverage_at_every_k,
    coverage_at_k,
    hit_rate_at_k,
    mae,
    map_at_k,
    metric_at_every_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)

T, F = True, False
# Three users, K = 4:
#   0: hits at ranks 1 and 3, 3 relevant items (more relevant than hits, fewer than K)
#   1: one hit at rank 2, 1 relevant item (fewer relevant items than K)
#   2: no hit, 2 relevant items
#   3: every rank a hit, 10 relevant items (more relevant items than K)
HITS = np.array([[T, F, T, F],
                 [F, T, F, F],
                 [F, F, F, F],
                 [T, T, T, T]])
N_RELEVANT = np.array([3, 1, 2, 10])
LOG3 = math.log2(3)


def test_precision_divides_by_k():
    assert precision_at_k(HITS, k=4) == pytest.approx([2 / 4, 1 / 4, 0, 1])
    assert precision_at_k(HITS, k=1) == pytest.approx([1, 0, 0, 1])
    assert precision_at_k(HITS) == pytest.approx(precision_at_k(HITS, k=4))


def test_recall_divides_by_number_relevant():
    assert recall_at_k(HITS, N_RELEVANT, k=4) == pytest.approx([2 / 3, 1, 0, 4 / 10])
    assert recall_at_k(HITS, N_RELEVANT, k=1) == pytest.approx([1 / 3, 0, 0, 1 / 10])


def test_ndcg_binary_gain_log2_discount_ideal_over_min_relevant_k():
    expected = [
        (1 + 1 / 2) / (1 + 1 / LOG3 + 1 / 2),   # hits at 1, 3; ideal: 3 hits at the top
        (1 / LOG3) / 1,                         # hit at 2; ideal: 1 hit at rank 1
        0,
        1,                                      # ideal over min(10, 4) = 4 ranks
    ]
    assert ndcg_at_k(HITS, N_RELEVANT, k=4) == pytest.approx(expected)
    assert ndcg_at_k(HITS, N_RELEVANT, k=2) == pytest.approx([1 / (1 + 1 / LOG3), (1 / LOG3), 0, 1])


def test_map_sums_precision_at_hits_over_min_relevant_k():
    assert map_at_k(HITS, N_RELEVANT, k=4) == pytest.approx([(1 + 2 / 3) / 3, (1 / 2) / 1, 0, 1])
    # at k = 2 user 0 has one hit and min(3, 2) = 2 achievable hits
    assert map_at_k(HITS, N_RELEVANT, k=2) == pytest.approx([1 / 2, 1 / 2, 0, 1])


def test_mrr_and_hit_rate():
    assert mrr_at_k(HITS, k=4) == pytest.approx([1, 1 / 2, 0, 1])
    assert mrr_at_k(HITS, k=1) == pytest.approx([1, 0, 0, 1])
    assert hit_rate_at_k(HITS, k=4) == pytest.approx([1, 1, 0, 1])
    assert hit_rate_at_k(HITS, k=1) == pytest.approx([1, 0, 0, 1])


def test_every_k_matches_each_k():
    for name in RANKING_METRICS:
        curve = metric_at_every_k(name, HITS, N_RELEVANT)
        assert curve.shape == (4, 4)
        for k in range(1, 5):
            one = metric_at_every_k(name, HITS[:, :k], N_RELEVANT)[:, -1]
            np.testing.assert_array_equal(curve[:, k - 1], one)


def test_coverage_counts_distinct_items_ignoring_padding():
    ids = np.array([[0, 1, -1],
                    [1, 2, -1]])
    assert coverage_at_k(ids, n_items=5, k=1) == pytest.approx(2 / 5)
    assert coverage_at_k(ids, n_items=5, k=2) == pytest.approx(3 / 5)
    assert coverage_at_k(ids, n_items=5) == pytest.approx(3 / 5)
    assert coverage_at_every_k(ids, 5) == pytest.approx([2 / 5, 3 / 5, 3 / 5])
    # an item first shown at a deeper rank for one user and earlier for another counts once
    assert coverage_at_every_k(np.array([[3, 4], [4, 3]]), 10) == pytest.approx([0.2, 0.2])


def test_rmse_and_mae():
    y_true = np.array([1.0, 2.0, 3.0])
    y_pred = np.array([1.0, 3.0, 5.0])
    assert rmse(y_true, y_pred) == pytest.approx(math.sqrt(5 / 3))
    assert mae(y_true, y_pred) == pytest.approx(1.0)
    assert rmse(y_true, y_true) == 0.0


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3", None])
def test_bad_k_is_a_clear_error(k):
    if k is None:  # None means "every rank", which is valid; K itself must then be >= 1
        with pytest.raises(ReclabError, match="K must be at least 1"):
            precision_at_k(np.zeros((2, 0), dtype=bool), k)
        return
    with pytest.raises(ReclabError, match="k must be an int >= 1"):
        precision_at_k(HITS, k=k)


def test_k_beyond_list_length_is_an_error():
    with pytest.raises(ReclabError, match="k=5 exceeds the 4 ranks"):
        ndcg_at_k(HITS, N_RELEVANT, k=5)
    with pytest.raises(ReclabError, match="k=3 exceeds the 2 ranks"):
        coverage_at_k(np.array([[0, 1]]), n_items=3, k=3)


def test_users_without_relevant_items_are_refused_not_nan():
    with pytest.raises(ReclabError, match="no relevant item"):
        recall_at_k(HITS, np.array([3, 1, 0, 10]))
    with pytest.raises(ReclabError, match="cannot hit more items than are relevant"):
        recall_at_k(HITS, np.array([1, 1, 2, 10]))
    with pytest.raises(ReclabError, match="n_relevant must be integers"):
        ndcg_at_k(HITS, np.array([3.0, 1.0, 2.0, 10.0]))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ReclabError, match="hits must be a boolean array"):
        precision_at_k(HITS.astype(int))
    with pytest.raises(ReclabError, match="unknown ranking metric 'auc'"):
        metric_at_every_k("auc", HITS, N_RELEVANT)
    with pytest.raises(ReclabError, match=r"item indices in \[0, 3\)"):
        coverage_at_k(np.array([[0, 3]]), n_items=3)
    with pytest.raises(ReclabError, match="non-empty 1-D arrays of the same length"):
        rmse([], [])
    with pytest.raises(ReclabError, match="finite"):
        mae([1.0, 2.0], [1.0, np.nan])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12).flatmap(lambda width: st.lists(
    st.tuples(st.lists(st.booleans(), min_size=width, max_size=width), st.integers(0, 15)),
    min_size=1, max_size=8)))
def test_vectorized_metrics_match_plain_python(rows):
    hits = np.array([row for row, _ in rows], dtype=bool)
    # n_relevant at least the number of hits (and at least 1), as for a real user
    n_relevant = np.array([max(int(sum(row)), 1) + extra for row, extra in rows])
    functions = {"precision": lambda k: precision_at_k(hits, k), "recall": lambda k: recall_at_k(hits, n_relevant, k),
                 "ndcg": lambda k: ndcg_at_k(hits, n_relevant, k), "map": lambda k: map_at_k(hits, n_relevant, k),
                 "mrr": lambda k: mrr_at_k(hits, k), "hit_rate": lambda k: hit_rate_at_k(hits, k)}
    for k in range(1, hits.shape[1] + 1):
        expected = [user_metrics(row, n, k) for row, n in zip(hits, n_relevant)]
        for name, function in functions.items():
            values = function(k)
            assert not np.isnan(values).any()
            np.testing.assert_allclose(values, [e[name] for e in expected], rtol=0, atol=1e-12)


def test_sign_flip_p_value_is_one_when_the_differences_cancel():
    """A mean difference of exactly 0: every sign assignment is at least as far from 0, so p = 1.
    The float sum of such differences is rounding noise (-0.4 - 0.2 + 0.2 + 0.4 = -5.6e-17), and
    assignments whose sum rounds to exactly 0.0 must still count (p was 0.75 here, and 0.97 for
    90 gains of 0.01 against 10 losses of 0.09)."""
    from reclab.metrics import sign_flip_p_value

    cancel = np.array([-0.4, -0.2, 0.2, 0.4])
    assert cancel.sum() != 0
    assert sign_flip_p_value(cancel, np.random.default_rng(0)) == 1.0
    balanced = np.r_[np.full(90, 0.01), np.full(10, -0.09)]
    assert sign_flip_p_value(balanced, np.random.default_rng(0)) == 1.0
    # a real, small difference is still tested exactly: only the all-gains and all-losses count
    assert sign_flip_p_value(np.array([0.1, 0.25, 0.05, 0.4]), np.random.default_rng(0)) == 0.125


def test_metric_names_are_refused_unless_spelled_as_reports_key_them():
    """'precision@010' was accepted (as cut-off 10), but reports key the metric 'precision@10':
    a configuration naming it passed its checks, then tune failed every trial ("not in the
    evaluation report") after fitting each."""
    from reclab.metrics import check_metric_name

    assert check_metric_name("precision@10") == ("precision@10", 10)
    assert check_metric_name("coverage@1") == ("coverage@1", 1)
    for name in ("precision@010", "ndcg@05", "recall@\u0661\u0660", "map@0", "mrr@-1", "hit_rate@"):
        with pytest.raises(ReclabError, match="unknown metric"):
            check_metric_name(name)


def test_the_paired_test_and_holm_refuse_what_is_no_p_value_or_difference():
    """A NaN difference gave p = 0.0 (NaN compares False, so no assignment counted: a certain
    "difference"); n_flips=0 gave p = 1.0 and n_flips=-1 a ZeroDivisionError; holm turned a NaN
    or a negative p-value into an adjusted one (-0.1 became -0.2) instead of refusing it."""
    from reclab.metrics import holm, sign_flip_p_value

    rng = np.random.default_rng(0)
    for bad in ([np.nan, 1.0, 2.0], [np.inf, 0.1], np.ones((2, 30))):
        with pytest.raises(ReclabError, match="differences must be a 1-D array of finite numbers"):
            sign_flip_p_value(np.array(bad), rng)
    for n_flips in (0, -1, 2.5, True):
        with pytest.raises(ReclabError, match="n_flips must be an integer >= 1"):
            sign_flip_p_value(rng.standard_normal(30), rng, n_flips=n_flips)
    assert 0 < sign_flip_p_value(rng.standard_normal(30), rng, n_flips=1) <= 1
    for bad in ([np.nan, 0.01], [-0.1, 0.5], [1.5, 0.2]):
        with pytest.raises(ReclabError, match=r"p_values must lie in \[0, 1\]"):
            holm(bad)
    with pytest.raises(ReclabError, match="p_values must be a 1-D array"):
        holm([[0.1, 0.2], [0.3, 0.01]])
    np.testing.assert_allclose(holm([0.0, 1.0, 0.02]), [0.0, 1.0, 0.04])
    assert holm([]).shape == (0,)
