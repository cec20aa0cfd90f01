"""reclab.ranking.top_n: hand-checked cases, ties, padding, exclusion, and a brute-force check."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from reclab.errors import ReclabError
from reclab.ranking import top_n


def _csr(rows, cols, shape):
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def test_sorted_by_score_with_exclusion():
    scores = np.array([[0.1, 0.9, 0.8, 0.5], [0.4, 0.3, 0.2, 0.1]])
    ids, best = top_n(scores, 2, exclude=_csr([0, 1], [1, 0], (2, 4)))
    np.testing.assert_array_equal(ids, [[2, 3], [1, 2]])
    np.testing.assert_array_equal(best, np.array([[0.8, 0.5], [0.3, 0.2]], dtype=np.float32))
    assert ids.dtype == np.int64 and best.dtype == np.float32


def test_ties_broken_by_lower_index_even_at_the_cut():
    # Five items tie at 0.5; the two slots left after item 4 go to the lowest tied indices.
    scores = np.array([[0.5, 0.5, 0.5, 0.2, 0.9, 0.5, 0.5]])
    ids, best = top_n(scores, 3)
    np.testing.assert_array_equal(ids, [[4, 0, 1]])
    # With item 0 excluded the next tied indices move up.
    ids, _ = top_n(scores, 3, exclude=_csr([0], [0], (1, 7)))
    np.testing.assert_array_equal(ids, [[4, 1, 2]])
    # All equal: plain index order.
    ids, _ = top_n(np.zeros((2, 6)), 4)
    np.testing.assert_array_equal(ids, [[0, 1, 2, 3]] * 2)


def test_n_larger_than_candidates_is_padded():
    ids, best = top_n(np.array([[3.0, 1.0, 2.0]]), 5, exclude=_csr([0], [2], (1, 3)))
    np.testing.assert_array_equal(ids, [[0, 1, -1, -1, -1]])
    np.testing.assert_array_equal(best, np.array([[3, 1, -np.inf, -np.inf, -np.inf]], np.float32))


def test_everything_excluded_gives_only_padding():
    exclude = sp.csr_matrix(np.ones((2, 4)))
    ids, best = top_n(np.random.default_rng(0).random((2, 4)), 3, exclude=exclude)
    assert (ids == -1).all() and np.isneginf(best).all()


def test_explicit_zero_in_exclude_still_excludes():
    exclude = sp.csr_matrix((np.array([0.0]), np.array([1]), np.array([0, 1])), shape=(1, 3))
    assert exclude.nnz == 1
    ids, _ = top_n(np.array([[0.0, 5.0, 1.0]]), 2, exclude=exclude)
    np.testing.assert_array_equal(ids, [[2, 0]])


def test_candidates_as_indices_and_as_mask_agree():
    scores = np.array([[0.1, 0.9, 0.8, 0.5, 0.7]])
    by_index = top_n(scores, 3, candidates=[0, 3, 4])
    by_mask = top_n(scores, 3, candidates=np.array([True, False, False, True, True]))
    np.testing.assert_array_equal(by_index[0], [[4, 3, 0]])
    np.testing.assert_array_equal(by_mask[0], by_index[0])
    ids, _ = top_n(scores, 3, candidates=[2], exclude=_csr([0], [2], (1, 5)))
    np.testing.assert_array_equal(ids, [[-1, -1, -1]])


def test_minus_infinity_scores_count_as_unavailable():
    ids, best = top_n(np.array([[-np.inf, 1.0, -np.inf]]), 3)
    np.testing.assert_array_equal(ids, [[1, -1, -1]])


def test_matches_a_full_stable_sort_on_random_tied_scores():
    rng = np.random.default_rng(1)
    scores = np.round(rng.random((300, 500)) * 10) / 10      # many ties
    exclude = sp.random(300, 500, density=0.05, format="csr", random_state=1)
    exclude.data[:] = 1.0
    masked = np.where(exclude.toarray() > 0, -np.inf, scores.astype(np.float32))
    for n in (1, 7, 50, 499, 500, 600):
        ids, best = top_n(scores, n, exclude=exclude)
        order = np.argsort(-masked, axis=1, kind="stable")[:, :n]
        expected = np.take_along_axis(masked, order, axis=1)
        order = np.where(np.isneginf(expected), -1, order)
        np.testing.assert_array_equal(ids[:, :min(n, 500)], order)
        np.testing.assert_array_equal(best[:, :min(n, 500)], expected)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(0, 6), n_items=st.integers(0, 40),
       n=st.integers(1, 45), levels=st.integers(1, 6), with_candidates=st.booleans())
def test_agrees_with_a_stable_sort_of_the_masked_scores(seed, m, n_items, n, levels, with_candidates):
    # Few score levels (ties everywhere), float64 scores that only tie once rounded to float32,
    # infinities, and an exclude matrix with unsorted and repeated column indices.
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(m, n_items)) + rng.choice([0.0, 1e-12], size=(m, n_items))
    scores[rng.random((m, n_items)) < 0.05] = np.inf
    scores[rng.random((m, n_items)) < 0.05] = -np.inf
    counts = rng.integers(0, n_items + 3, size=m) if n_items else np.zeros(m, dtype=np.int64)
    cols = rng.integers(0, max(n_items, 1), size=counts.sum())
    rows = np.repeat(np.arange(m), counts)
    exclude = sp.csr_matrix((np.zeros(cols.size), cols, np.r_[0, np.cumsum(counts)]),
                            shape=(m, n_items))
    allowed = rng.random(n_items) < 0.7 if with_candidates else np.ones(n_items, dtype=bool)

    ids, best = top_n(scores, n, exclude=exclude, candidates=allowed if with_candidates else None)

    masked = scores.astype(np.float32)
    masked[rows, cols] = -np.inf
    masked[:, ~allowed] = -np.inf
    order = np.argsort(-masked, axis=1, kind="stable")[:, :n]
    expected = np.take_along_axis(masked, order, axis=1)
    order = np.where(np.isneginf(expected), -1, order)
    width = min(n, n_items)
    np.testing.assert_array_equal(ids[:, :width], order)
    np.testing.assert_array_equal(best[:, :width], expected)
    assert (ids[:, width:] == -1).all() and np.isneginf(best[:, width:]).all()


def test_bad_arguments_raise_clear_errors():
    scores = np.zeros((2, 3))
    for n in (0, -1, 2.0, True, None):
        with pytest.raises(ReclabError, match="n must be an integer >= 1"):
            top_n(scores, n)
    with pytest.raises(ReclabError, match="NaN in rows \\[1\\]"):
        top_n(np.array([[0.0, 1.0], [np.nan, 1.0]]), 1)
    with pytest.raises(ReclabError, match="shape"):
        top_n(scores, 1, exclude=sp.csr_matrix((3, 3)))
    with pytest.raises(ReclabError, match="out of range: \\[3\\]"):
        top_n(scores, 1, candidates=[0, 3])
    with pytest.raises(ReclabError, match="2-D"):
        top_n(np.zeros(3), 1)


def test_empty_batch_keeps_the_shape():
    ids, best = top_n(np.zeros((0, 4)), 3)
    assert ids.shape == (0, 3) and best.shape == (0, 3)
