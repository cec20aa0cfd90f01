"""reclab.evaluation: hand-computed cases, bootstrap, comparisons, and a plain-Python reference
implementation that must agree with ``evaluate`` on ML-100k."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from helpers import user_metrics
from reclab import split
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.evaluation import cold_candidates, compare, evaluate, ranking_metrics
from reclab.metrics import RANKING_METRICS, bootstrap_ratios
from reclab.models import ImplicitALS
from reclab.models.popularity import Popularity
from reclab.ranking import top_n
from reclab.tuning import tune

LOG3 = math.log2(3)


# -- test models: small but real computations over the score_items / predict contract ----------
class FixedScores:
    """Scores given up front, one row per user."""

    predicts_ratings = False

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float32)

    def score_items(self, users):
        return self.scores[np.asarray(users)]


class RandomFactors:
    """score(u, i) = p_u . q_i with seeded Gaussian factors (optionally rounded, to force ties)."""

    predicts_ratings = False

    def __init__(self, n_users, n_items, factors=8, seed=0, decimals=None):
        rng = np.random.default_rng(seed)
        self.user_factors = rng.standard_normal((n_users, factors)).astype(np.float32)
        self.item_factors = rng.standard_normal((n_items, factors)).astype(np.float32)
        self.decimals = decimals

    def score_items(self, users):
        scores = self.user_factors[np.asarray(users)] @ self.item_factors.T
        return scores if self.decimals is None else np.round(scores, self.decimals)


class ItemMean(RandomFactors):
    """Predicts each item's mean training rating (the global mean for unrated items)."""

    predicts_ratings = True

    def __init__(self, train):
        super().__init__(train.n_users, train.n_items, seed=1)
        matrix = train.matrix
        counts = np.bincount(matrix.indices, minlength=train.n_items)
        sums = np.bincount(matrix.indices, weights=matrix.data, minlength=train.n_items)
        global_mean = matrix.data.mean()
        self.item_mean = np.where(counts > 0, sums / np.maximum(counts, 1), global_mean).astype(np.float32)

    def predict(self, users, items):
        return self.item_mean[np.asarray(items)]


class Oracle:
    """Scores an item 1 when it is one of the user's test items: the best possible lists."""

    predicts_ratings = False

    def __init__(self, test):
        self.test = test

    def score_items(self, users):
        return (self.test.matrix[np.asarray(users)] != 0).toarray().astype(np.float32)


# -- a hand-made case ---------------------------------------------------------------------------
def _interactions(dense):
    return Interactions.from_matrix(sp.csr_matrix(np.array(dense, dtype=np.float32)),
                                    user_ids=[10, 20, 30], item_ids=[100, 101, 102, 103, 104])


@pytest.fixture
def small():
    # user 0 trained on items 0, 1; its test items are 2 (rated 5) and 3 (rated 2)
    # user 1 has no test item (skipped); user 2 trained on item 4, test item 2 (rated 4)
    train = _interactions([[5, 4, 0, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 4]])
    test = _interactions([[0, 0, 5, 2, 0], [0, 0, 0, 0, 0], [0, 0, 4, 0, 0]])
    # user 0: candidates 2, 3, 4 -> list [3, 4, 2, -1, -1] (shorter than K=5)
    # user 2: candidates 0..3 -> list [1, 2, 3, 0, -1]
    model = FixedScores([[9, 9, 1, 5, 4], [0, 1, 2, 3, 4], [0, 3, 2.5, 2, 9]])
    return train, test, model


EXPECTED_SMALL = {
    # user 0: hits [T, F, T, F, F], 2 relevant; user 2: hits [F, T, F, F, F], 1 relevant
    "precision@1": [1, 0], "precision@2": [1 / 2, 1 / 2], "precision@5": [2 / 5, 1 / 5],
    "recall@1": [1 / 2, 0], "recall@2": [1 / 2, 1], "recall@5": [1, 1],
    "ndcg@1": [1, 0], "ndcg@2": [1 / (1 + 1 / LOG3), 1 / LOG3],
    "ndcg@5": [(1 + 1 / 2) / (1 + 1 / LOG3), 1 / LOG3],
    "map@1": [1, 0], "map@2": [1 / 2, 1 / 2], "map@5": [(1 + 2 / 3) / 2, 1 / 2],
    "mrr@1": [1, 0], "mrr@2": [1, 1 / 2], "mrr@5": [1, 1 / 2],
    "hit_rate@1": [1, 0], "hit_rate@2": [1, 1], "hit_rate@5": [1, 1],
}


def test_hand_computed_metrics_with_padding_and_a_skipped_user(small):
    train, test, model = small
    report = evaluate(model, train, test, k=(5, 1, 2, 2), n_bootstrap=0)
    assert report.k == (1, 2, 5)
    assert (report.n_evaluated, report.n_skipped) == (2, 1)
    table = report.per_user
    assert table["user"].tolist() == [0, 2]
    assert table["user_id"].tolist() == [10, 30]
    assert table["n_relevant"].tolist() == [2, 1]
    for name, values in EXPECTED_SMALL.items():
        assert table[name].to_numpy() == pytest.approx(values, abs=1e-12), name
        assert report.summary[name] == pytest.approx(np.mean(values), abs=1e-12), name
    # first items {3, 1}; top-2 {3, 4, 1, 2}; top-5 every item
    assert [report.summary[f"coverage@{k}"] for k in (1, 2, 5)] == pytest.approx([2 / 5, 4 / 5, 1])
    assert "rmse" not in report.summary and report.intervals == {}


def test_relevance_threshold_keeps_only_high_ratings(small):
    train, test, model = small
    report = evaluate(model, train, test, k=5, relevance_threshold=4, n_bootstrap=0)
    # user 0's item 3 (rated 2) is no longer relevant: hits [F, F, T, F, F], 1 relevant
    row = report.per_user.iloc[0]
    assert row["n_relevant"] == 1
    assert row["precision@5"] == pytest.approx(1 / 5)
    assert row["ndcg@5"] == pytest.approx(1 / 2)
    assert row["map@5"] == pytest.approx(1 / 3)
    assert row["mrr@5"] == pytest.approx(1 / 3)
    with pytest.raises(ReclabError, match="none of the 3 users considered has a test rating >= 6"):
        evaluate(model, train, test, k=5, relevance_threshold=6)


def test_seen_items_are_never_hits():
    train = _interactions([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1]])
    # user 0's test holds item 0, which is also a training item, and item 2
    test = _interactions([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    model = FixedScores([[10, 9, 5, 0, 0], [0] * 5, [0] * 5])
    report = evaluate(model, train, test, k=3, n_bootstrap=0)
    row = report.per_user.iloc[0]
    assert report.n_evaluated == 1 and report.n_skipped == 2
    # list [2, 3, 4]: only item 2 is a hit; item 0 stays relevant (docs/architecture.md, Metrics) but is never a candidate
    assert row["precision@3"] * 3 == pytest.approx(1)
    assert row["recall@3"] == pytest.approx(1 / 2)
    assert row["mrr@3"] == pytest.approx(1)


def test_padding_is_never_a_hit():
    # user 1 has only items 3 and 4 left, so its top-3 list ends with -1. The flattened key of
    # that padding, 1 * n_items - 1, is the key of user 0's relevant item 4: it must not match.
    train = _interactions([[1, 0, 0, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    test = _interactions([[0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]])
    model = FixedScores([[0, 0, 0, 0, 0], [0, 0, 0, 2, 1], [0, 0, 0, 0, 0]])
    report = evaluate(model, train, test, k=3, n_bootstrap=0)
    row = report.per_user.set_index("user").loc[1]
    assert row["precision@3"] == pytest.approx(1 / 3)   # list [3, 4, -1]: one hit, divided by K=3
    assert row["map@3"] == pytest.approx(1.0)


def test_users_argument_limits_the_evaluation(small):
    train, test, model = small
    report = evaluate(model, train, test, k=2, users=[1, 0], n_bootstrap=0)
    assert (report.n_evaluated, report.n_skipped) == (1, 1)
    assert report.per_user["user"].tolist() == [0]
    with pytest.raises(ReclabError, match="repeated indices"):
        evaluate(model, train, test, users=[0, 0])
    with pytest.raises(ReclabError, match="out of range"):
        evaluate(model, train, test, users=[3])


def test_rating_metrics_for_rating_models(small):
    train, test, _ = small
    model = ItemMean(train)
    report = evaluate(model, train, test, k=2, n_bootstrap=200)
    # item means: item 2 unrated -> global mean 4.0; item 3 unrated -> 4.0. Test ratings 5, 2, 4.
    assert report.summary["rmse"] == pytest.approx(math.sqrt((1 + 4 + 0) / 3))
    assert report.summary["mae"] == pytest.approx((1 + 2 + 0) / 3)
    for name in ("rmse", "mae"):
        low, high = report.intervals[name]
        assert low <= report.summary[name] + 1e-12 and high >= report.summary[name] - 1e-12


def test_rating_metrics_with_candidates_are_over_the_candidates_test_ratings(small):
    """The cold-item report of a rating model (stage 5's cold column) gives the error on those
    items' ratings, not on every test rating again."""
    train, test, _ = small
    model = ItemMean(train)
    # item 103 (index 3): one test rating, 2 by user 0; unrated in train, so predicted 4.0
    report = evaluate(model, train, test, k=2, n_bootstrap=0, candidates=[103])
    assert report.summary["rmse"] == pytest.approx(2.0)
    assert report.summary["mae"] == pytest.approx(2.0)
    # item 102 (index 2): test ratings 5 (user 0) and 4 (user 2), predicted 4.0: errors 1 and 0
    report = evaluate(model, train, test, k=2, n_bootstrap=0, candidates=[102, 104])
    assert report.summary["rmse"] == pytest.approx(math.sqrt(1 / 2))
    # no candidate has a test rating: no user has a relevant candidate, nothing to evaluate
    with pytest.raises(ReclabError, match="none of the 3 users considered has a test interaction of "
                                          "one of the 2 candidate items"):
        evaluate(model, train, test, k=2, n_bootstrap=50, candidates=[100, 104])


def test_with_candidates_only_their_test_items_are_relevant(small):
    """Restricted to some items (stage 5's long tail), the metrics measure the ranking of those:
    a test item outside them counts for nothing, and a user with none among them is skipped."""
    train, test, model = small
    # user 0: candidates 103, 104 (unseen) -> list [103, 104]; relevant among them: 103 only.
    # user 2: its test item 102 is no candidate -> skipped, as user 1 (no test item at all).
    report = evaluate(model, train, test, k=(1, 2), n_bootstrap=0, candidates=[103, 104])
    assert (report.n_evaluated, report.n_skipped) == (1, 2)
    assert report.per_user["n_relevant"].tolist() == [1]
    assert report.summary["recall@1"] == 1.0          # 1/2 if 102, no candidate, counted
    assert report.summary["precision@2"] == 0.5
    assert report.summary["ndcg@2"] == 1.0
    # the same as giving only the test items among the candidates
    among = test.select(np.isin(test.item_ids[test.matrix.indices], [103, 104]))
    assert evaluate(model, train, among, k=(1, 2), n_bootstrap=0,
                    candidates=[103, 104]).summary == report.summary
    with pytest.raises(ReclabError, match="has a test rating >= 3.0 of one of the 1 candidate items"):
        evaluate(model, train, test, k=2, n_bootstrap=0, candidates=[103], relevance_threshold=3)


def test_coverage_over_candidates_is_a_share_of_them_never_above_one():
    """Every candidate recommended is a coverage of exactly 1: rescaling the share of the catalog
    by n_items / n_candidates gave 1.0000000000000002 for 9 candidates among 11 items, outside
    [0, 1], which failed every trial of a search for coverage on a cold-items split."""
    n_users, n_items = 6, 11
    seen = np.zeros((n_users, n_items), np.float32)
    seen[:, 9:] = 1                                       # items 9 and 10: no candidates anyway
    held = np.zeros((n_users, n_items), np.float32)
    held[np.arange(n_users), np.arange(n_users)] = 1
    train, test = (Interactions.from_matrix(sp.csr_matrix(dense)) for dense in (seen, held))
    model = RandomFactors(n_users, n_items, seed=0)
    report = evaluate(model, train, test, k=(1, 9), candidates=np.arange(9), n_bootstrap=0)
    assert report.summary["coverage@9"] == 1.0            # 9 candidates, each in every list
    firsts = np.argmax(model.score_items(np.arange(n_users))[:, :9], axis=1)  # each user's first
    assert report.summary["coverage@1"] == np.unique(firsts).size / 9
    assert report.curve("coverage", ks=[9])["coverage"].tolist() == [1.0]


def test_new_user_reports_take_no_users_of_their_own(small):
    """They are the new users: users= reached evaluate twice, a TypeError ('got multiple values
    for keyword argument')."""
    from reclab.evaluation import new_user_reports

    train, test, model = small
    with pytest.raises(ReclabError, match=r"new_user_reports evaluates the test users without training "
                                          r"interactions; it takes no users="):
        new_user_reports({"fixed": model}, train, test, users=[0], k=2)


def test_cold_candidates_need_one_relevant_test_item(small):
    """Stage 5's long-tail candidates: the rarely trained test items, relevant or not (a
    candidate nobody liked is still ranked), unless none is relevant: nothing to evaluate."""
    train, test, _ = small
    assert cold_candidates(train, test).tolist() == [102, 103]
    assert cold_candidates(train, test, relevance_threshold=3).tolist() == [102, 103]
    assert cold_candidates(train, test, relevance_threshold=6, allow_empty=True).size == 0
    with pytest.raises(ReclabError, match="no test item has at most 0 training interactions and a "
                                          "test rating >= 6.0"):
        cold_candidates(train, test, relevance_threshold=6)


def test_bad_arguments_are_clear_errors(small):
    train, test, model = small
    with pytest.raises(ReclabError, match="k must be an int >= 1"):
        evaluate(model, train, test, k=0)
    with pytest.raises(ReclabError, match="k is empty"):
        evaluate(model, train, test, k=())
    with pytest.raises(ReclabError, match="k must be an int >= 1 or a sequence of them, got '10'"):
        evaluate(model, train, test, k="10")   # not the cutoffs 1 and 0
    with pytest.raises(ReclabError, match="relevance_threshold must be a finite number"):
        evaluate(model, train, test, relevance_threshold=float("nan"))
    with pytest.raises(ReclabError, match="relevance_threshold must be a finite number"):
        evaluate(model, train, test, relevance_threshold=10**400)   # was numpy's TypeError
    with pytest.raises(ReclabError, match="batch_size must be an integer >= 1"):
        evaluate(model, train, test, batch_size=0)
    with pytest.raises(ReclabError, match="must share users and items"):
        other = Interactions.from_matrix(sp.csr_matrix(np.eye(3, 5, dtype=np.float32)))
        evaluate(model, train, other)
    with pytest.raises(ReclabError, match=r"score_items returned shape \(2, 4\) for 2 users; expected \(2, 5\)"):
        evaluate(FixedScores(np.zeros((3, 4))), train, test)


# -- medium random data: bootstrap, curves, comparisons ------------------------------------------
@pytest.fixture(scope="module")
def medium():
    rng = np.random.default_rng(7)
    n_users, n_items = 300, 120
    # long-tailed item popularity so that popular items matter, as in real data
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    dense = rng.random((n_users, n_items)) < 0.25 * popularity / popularity.mean()
    ratings = np.where(dense, rng.integers(1, 6, size=dense.shape), 0).astype(np.float32)
    data = Interactions.from_matrix(sp.csr_matrix(ratings))
    train, test = split.random_holdout(data, 0.3, seed=3)
    return train, test


def test_a_test_pair_the_model_was_fitted_on_is_refused_unless_train_holds_it(medium):
    """A model fitted on all the data, or train and test passed the other way round, would score
    test pairs it has learned: refused, with how many. A test pair that is also in train (an item
    consumed again) stays allowed: it is no candidate (module notes); a test split all of whose
    pairs are in train (the same split passed twice) is refused."""
    train, test = medium
    everything = train.union(test)
    with pytest.raises(ReclabError, match=f"^{test.nnz} of the test split's {test.nnz} interactions are "
                                          f"in the data Popularity was fitted on, and not in train"):
        evaluate(Popularity().fit(everything), train, test)
    with pytest.raises(ReclabError, match=f"^{train.nnz} of the test split's {train.nnz} interactions"):
        evaluate(Popularity().fit(train), test, train)   # swapped
    half = test.select(np.arange(test.nnz) % 2 == 0)
    with pytest.raises(ReclabError, match=f"^{half.nnz} of the test split's {test.nnz} interactions"):
        evaluate(Popularity().fit(train.union(half)), train, test)
    with pytest.raises(ReclabError, match=f"^each of the test split's {train.nnz} interactions is also "
                                          f"in train, so none can be recommended"):
        evaluate(Popularity().fit(train), train, train)   # the same split twice
    # some test pairs in train (consumed again): allowed; never candidates, so never hits
    again = train.union(half)
    model = Popularity().fit(again)
    hits = evaluate(model, again, test, n_bootstrap=0).per_user["precision@20"].sum()
    rest = test.select(np.arange(test.nnz) % 2 == 1)
    rest_hits = evaluate(model, again, rest, n_bootstrap=0).per_user["precision@20"].sum()
    assert hits > 0 and hits == pytest.approx(rest_hits)
    assert evaluate(Popularity().fit(train), train, test, n_bootstrap=0).summary["hit_rate@20"] > 0


def test_a_model_fitted_on_more_than_train_or_the_whole_data_as_test_is_refused(medium):
    """Two mistakes that gave plausible numbers without a word: a model fitted on train and
    validation evaluated with train alone (the validation pairs were ranked as candidates, misses
    in every list: precision@10 0.370 -> 0.146 for EASE on ML-100k), and the whole data passed
    as test (train's pairs counted as relevant items that can never be recommended)."""
    train, test = medium
    fit, valid = split.random_holdout(train, 0.25, seed=4)
    with pytest.raises(ReclabError, match=f"^Popularity was fitted on {valid.nnz} interactions that train "
                                          f"does not hold: they would be ranked as candidates"):
        evaluate(Popularity().fit(train), fit, test)
    evaluate(Popularity().fit(fit), fit, test, n_bootstrap=0)   # fitted on what train holds: scored
    with pytest.raises(ReclabError, match=f"^the test split holds every one of train's {train.nnz} "
                                          f"interactions: it is the whole data"):
        evaluate(Popularity().fit(train), train, train.union(test))
    with pytest.raises(ReclabError, match="the valid split holds every one of train's"):
        tune(ImplicitALS(), {"factors": {"type": "int", "low": 2, "high": 4}}, fit, fit.union(valid),
             method="random", n_trials=2)


def test_candidates_as_a_boolean_mask_are_the_items_it_marks(medium):
    """A mask over the items (as model.recommend and top_n take it) was read as the item ids 0
    and 1; a paired comparison of reports with other candidates is refused."""
    train, test = medium
    model = RandomFactors(train.n_users, train.n_items)
    mask = np.arange(train.n_items) % 3 == 0
    by_mask = evaluate(model, train, test, k=10, n_bootstrap=0, candidates=mask)
    by_ids = evaluate(model, train, test, k=10, n_bootstrap=0, candidates=train.item_ids[mask])
    assert np.array_equal(by_mask.candidates, train.item_ids[mask])
    assert by_mask.summary == by_ids.summary
    with pytest.raises(ReclabError, match=r"a boolean candidates mask must have shape \(120,\)"):
        evaluate(model, train, test, candidates=mask[:-1])
    with pytest.raises(ReclabError, match="non-empty 1-D array"):
        evaluate(model, train, test, candidates=np.zeros(train.n_items, dtype=bool))
    everything = evaluate(model, train, test, k=10, n_bootstrap=0)
    with pytest.raises(ReclabError, match="the reports ranked different candidate items"):
        compare(everything, by_mask)
    other = evaluate(model, train, test, k=10, n_bootstrap=0, candidates=train.item_ids[~mask])
    with pytest.raises(ReclabError, match="the reports ranked different candidate items"):
        compare(by_ids, other)
    assert compare(by_ids, by_mask).difference == 0


def test_per_user_table_matches_summary_and_intervals_contain_it(medium):
    train, test = medium
    report = evaluate(RandomFactors(train.n_users, train.n_items), train, test, k=(5, 10))
    assert len(report.per_user) == report.n_evaluated
    assert report.n_evaluated + report.n_skipped == train.n_users
    for name in RANKING_METRICS:
        for k in (5, 10):
            key = f"{name}@{k}"
            mean = report.summary[key]
            assert report.per_user[key].mean() == pytest.approx(mean, abs=1e-12)
            low, high = report.intervals[key]
            assert low <= mean <= high and high > low
    assert "coverage@10" not in report.intervals


def test_bootstrap_is_deterministic_by_seed(medium):
    train, test = medium
    model = RandomFactors(train.n_users, train.n_items)
    first = evaluate(model, train, test, k=10, seed=5)
    again = evaluate(model, train, test, k=10, seed=5)
    other = evaluate(model, train, test, k=10, seed=6)
    assert first.intervals == again.intervals
    assert first.summary == other.summary
    assert first.intervals != other.intervals


def test_bootstrap_counts_trick_equals_resampling_indices():
    # 5000 users x 1000 replicates spans several chunks of the count matrix
    rng = np.random.default_rng(0)
    values = rng.random((5000, 2))
    replicates = bootstrap_ratios(values, np.ones(5000), 1000, np.random.default_rng(11))
    draws = np.random.default_rng(11).integers(0, 5000, size=(1000, 5000))
    np.testing.assert_allclose(replicates, values[draws].mean(axis=1), rtol=1e-12)


def test_curve_agrees_with_summary(medium):
    train, test = medium
    report = evaluate(RandomFactors(train.n_users, train.n_items), train, test, k=(3, 8), n_bootstrap=0)
    curve = report.curve(metrics=RANKING_METRICS + ("coverage",))
    assert curve.index.tolist() == list(range(1, 9))
    for name in RANKING_METRICS + ("coverage",):
        for k in (3, 8):
            assert curve.loc[k, name] == pytest.approx(report.summary[f"{name}@{k}"], abs=1e-12)
    assert np.all(np.diff(curve["recall"]) >= 0) and np.all(np.diff(curve["coverage"]) >= 0)
    assert report.curve("ndcg", ks=[2, 5]).index.tolist() == [2, 5]
    # one cut-off as an int, as evaluate's k takes it (was a TypeError: int is not iterable)
    assert report.curve("ndcg", ks=5).equals(report.curve("ndcg", ks=[5]))
    with pytest.raises(ReclabError, match="k=9 exceeds the 8 ranks"):
        report.curve(ks=[9])
    with pytest.raises(ReclabError, match="unknown metric 'auc'"):
        report.curve("auc")


def test_exports_for_tracking(medium):
    train, test = medium
    report = evaluate(RandomFactors(train.n_users, train.n_items), train, test, k=10, n_bootstrap=50)
    flat = report.mlflow_metrics()
    assert not any("@" in key for key in flat)
    assert flat["precision_at_10"] == report.summary["precision@10"]
    assert flat["precision_at_10_ci_low"] == report.intervals["precision@10"][0]
    assert "coverage_at_10_ci_low" not in flat and flat["n_evaluated"] == report.n_evaluated
    frame = report.to_frame()
    assert frame["name"].tolist() == list(report.summary)
    assert frame.set_index("name").loc["ndcg@10", "k"] == 10
    assert "precision@10=" in repr(report)


def test_ranking_metrics_reuses_lists_made_elsewhere(medium):
    train, test = medium
    model = RandomFactors(train.n_users, train.n_items)   # no ties: evaluate ranks as top_n does
    report = evaluate(model, train, test, k=(5, 10), n_bootstrap=100)
    users = np.random.default_rng(0).permutation(train.n_users)  # any order
    ids, _ = top_n(model.score_items(users), 12, exclude=train.matrix[users])
    again = ranking_metrics(users, ids, test, k=(5, 10), n_bootstrap=100)
    assert again.summary == report.summary
    assert again.intervals == report.intervals
    assert again.per_user.equals(report.per_user)
    with pytest.raises(ReclabError, match="needs at least 10"):
        ranking_metrics(users, ids[:, :9], test, k=10)
    repeated = ids.copy()
    repeated[0, 1] = repeated[0, 0]
    with pytest.raises(ReclabError, match="repeats an item"):
        ranking_metrics(users, repeated, test, k=10)


def test_compare_identical_reports_gives_zero_and_p_one(medium):
    train, test = medium
    report = evaluate(RandomFactors(train.n_users, train.n_items), train, test, k=10, n_bootstrap=0)
    result = compare(report, report, metric="ndcg@10")
    assert result.difference == 0 and result.p_value == 1.0
    assert (result.ci_low, result.ci_high) == (0, 0)
    assert result.n_users == report.n_evaluated
    assert "ndcg@10: B - A = +0.0000" in str(result)


def test_compare_finds_a_real_difference(medium):
    train, test = medium
    weak = evaluate(RandomFactors(train.n_users, train.n_items), train, test, k=10, n_bootstrap=0)
    strong = evaluate(Oracle(test), train, test, k=10, n_bootstrap=0)
    result = compare(weak, strong, metric="recall@10", seed=1)
    assert result.difference == pytest.approx(result.mean_b - result.mean_a)
    assert result.difference > 0 and result.ci_low > 0 and result.p_value == 1 / 10_001   # no flip as far
    assert compare(weak, strong, metric="recall@10", seed=1) == result
    reverse = compare(strong, weak, metric="recall@10", seed=1)
    assert reverse.difference == pytest.approx(-result.difference) and reverse.p_value == pytest.approx(result.p_value)


def test_the_paired_test_is_of_the_mean_difference_and_exact_for_few_differences():
    """compare's p-value tests the mean difference it reports (a paired sign-flip test, as
    Smucker et al. 2007 advise for IR metrics). The Wilcoxon signed-rank test it replaced tested
    where the differences are centred, and took the normal approximation for a few non-zero
    differences among many zeros (zeros counted for 'large n'): 4 values cannot give less than
    0.125."""
    from itertools import product

    from reclab.metrics import holm, sign_flip_p_value

    rng = np.random.default_rng(0)
    few = np.array([0.1, 0.25, 0.05, 0.4])   # all gains: only they and all losses are as far
    flips = [abs(np.dot(signs, few)) >= abs(few.sum()) - 1e-12 for signs in product([-1, 1], repeat=4)]
    assert sign_flip_p_value(np.r_[few, np.zeros(939)], rng) == np.mean(flips) == 0.125
    # many small gains, a few large losses: the mean is 0, so no evidence of a difference in it
    # (the signed-rank test: p = 3e-9, as if B were better)
    balanced = np.r_[np.full(90, 0.01), np.full(10, -0.09)]
    assert sign_flip_p_value(balanced, rng) > 0.9
    shifted = balanced + 0.02   # every difference up: the mean is 0.02
    assert sign_flip_p_value(shifted, rng) < 0.01
    assert sign_flip_p_value(np.zeros(5), rng) == 1.0
    again = [sign_flip_p_value(shifted, np.random.default_rng(3)) for _ in range(2)]
    assert again[0] == again[1]   # seeded
    # Holm's step-down adjustment for stage 5's several comparisons
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_compare_refuses_what_cannot_be_paired(medium, small):
    train, test = medium
    model = RandomFactors(train.n_users, train.n_items)
    report = evaluate(model, train, test, k=10, n_bootstrap=0)
    with pytest.raises(ReclabError, match="'coverage@10' is not a per-user metric"):
        compare(report, report, metric="coverage@10")
    other = evaluate(small[2], *small[:2], k=10, n_bootstrap=0)
    with pytest.raises(ReclabError, match="different test splits"):
        compare(report, other, metric="precision@10")
    users = np.arange(train.n_users)
    first = evaluate(model, train, test, k=10, users=users[:100], n_bootstrap=0)
    second = evaluate(model, train, test, k=10, users=users[100:], n_bootstrap=0)
    with pytest.raises(ReclabError, match="no evaluated user in common"):
        compare(first, second, metric="precision@10")


# -- ML-100k against a plain-Python reference ------------------------------------------------------
def _reference(model, train, test, ks, threshold):
    """evaluate() written out per user with Python lists and sorted(); slow but plainly right.

    Ties are ordered by the lower index here and at random by evaluate, so for a user whose
    ``max(ks) + 1`` best scores tie the reference gives, instead of the metrics, the fewest and
    the most hits at each K that any order of the tied items allows."""
    n_items = train.n_items
    scores = model.score_items(np.arange(train.n_users)).astype(np.float32)
    rows, hit_bounds, covered = {}, {}, {k: set() for k in ks}
    for user in range(train.n_users):
        start, stop = test.matrix.indptr[user], test.matrix.indptr[user + 1]
        relevant = {int(item) for item, rating in zip(test.matrix.indices[start:stop], test.matrix.data[start:stop])
                    if threshold is None or rating >= threshold}
        if not relevant:
            continue
        seen = set(train.matrix.indices[train.matrix.indptr[user]:train.matrix.indptr[user + 1]].tolist())
        row_scores = scores[user].tolist()
        ranked = sorted((i for i in range(n_items) if i not in seen), key=lambda i: (-row_scores[i], i))
        deepest = ranked[:max(ks) + 1]
        if len({row_scores[i] for i in deepest}) < len(deepest):
            hit_bounds[user] = {}
            for k in ks:
                cut = row_scores[ranked[k - 1]]
                above = [i for i in ranked if row_scores[i] > cut]
                level = [i for i in ranked if row_scores[i] == cut]
                certain = sum(i in relevant for i in above)
                maybe = sum(i in relevant for i in level)
                wanted = k - len(above)
                hit_bounds[user][k] = (certain + max(0, wanted - (len(level) - maybe)),
                                       certain + min(wanted, maybe))
            continue
        values = {"n_relevant": len(relevant)}
        for k in ks:
            top = ranked[:k]
            covered[k].update(top)
            metrics = user_metrics([item in relevant for item in top], len(relevant), k)
            values.update({f"{name}@{k}": value for name, value in metrics.items()})
        rows[user] = values
    coverage = {f"coverage@{k}": len(covered[k]) / n_items for k in ks}
    return rows, hit_bounds, coverage


@pytest.mark.parametrize("model_name, threshold", [("popularity", None), ("random", 4.0), ("rounded", None)])
def test_evaluate_agrees_with_plain_python_on_ml100k(model_name, threshold, ml100k_split):
    train, test = ml100k_split
    ks = (1, 5, 10, 20)
    model = {"popularity": lambda: Popularity().fit(train),   # exact ties in scores
             "random": lambda: RandomFactors(train.n_users, train.n_items, seed=3),
             "rounded": lambda: RandomFactors(train.n_users, train.n_items, seed=4, decimals=2)}[model_name]()
    report = evaluate(model, train, test, k=ks, relevance_threshold=threshold, batch_size=300, n_bootstrap=0)
    rows, hit_bounds, coverage = _reference(model, train, test, ks, threshold)
    assert report.n_evaluated == len(rows) + len(hit_bounds)
    assert report.n_skipped == train.n_users - report.n_evaluated
    assert report.per_user["user"].tolist() == sorted([*rows, *hit_bounds])
    table = report.per_user.set_index("user")
    for column in table.columns.drop("user_id"):
        expected = np.array([rows[user][column] for user in sorted(rows)])
        np.testing.assert_allclose(table.loc[sorted(rows), column].to_numpy(), expected, rtol=0, atol=1e-9,
                                   err_msg=column)
        if column != "n_relevant" and not hit_bounds:
            assert report.summary[column] == pytest.approx(expected.mean(), abs=1e-9)
    for user, bounds in hit_bounds.items():
        for k, (fewest, most) in bounds.items():
            assert fewest <= round(table.loc[user, f"precision@{k}"] * k) <= most, (user, k)
    if model_name == "random":
        assert not hit_bounds
        for name, value in coverage.items():
            assert report.summary[name] == pytest.approx(value, abs=1e-12)
    else:
        assert 0 < len(hit_bounds) < report.n_evaluated, "the case should test both kinds of user"


def test_ties_are_broken_at_random_not_by_item_index():
    # Every item scores the same; the relevant items are the five with the lowest indices, which
    # an order by index would put first (precision@5 = 1). At random, about 5 / 39.
    n_users, n_items = 200, 40
    seen = np.zeros((n_users, n_items), dtype=np.float32)
    seen[:, -1] = 1   # every user has seen the last item, which is never relevant
    train = Interactions.from_matrix(sp.csr_matrix(seen))
    test = Interactions.from_matrix(sp.csr_matrix(np.tile(np.arange(n_items) < 5, (n_users, 1)).astype(np.float32)))
    flat = FixedScores(np.zeros((n_users, n_items)))
    report = evaluate(flat, train, test, k=5, n_bootstrap=0, seed=3)
    assert 0.05 < report.summary["precision@5"] < 0.25
    assert evaluate(flat, train, test, k=5, n_bootstrap=0, seed=3, batch_size=7).per_user.equals(report.per_user)
    assert not evaluate(flat, train, test, k=5, n_bootstrap=0, seed=4).per_user.equals(report.per_user)
    # Ties only below the list (scores 9 > 5 > 1 = 1 = ...): the list is exactly top_n's.
    steps = np.zeros((n_users, n_items))
    steps[:, 7], steps[:, 3] = 9, 5
    report = evaluate(FixedScores(steps), train, test, k=1, n_bootstrap=0)
    assert report.summary["precision@1"] == 0 and report.summary["coverage@1"] == 1 / n_items
    # A tie at the cut: item 3 first, then one of 1 and 2 (relevant) or 30 and 31 (not), each as likely.
    steps[:, :] = 0
    steps[:, 3], steps[:, [1, 2, 30, 31]] = 9, 5
    report = evaluate(FixedScores(steps), train, test, k=2, n_bootstrap=0)
    second = report.per_user["precision@2"].to_numpy() * 2 - 1      # hits beyond item 3
    assert set(np.unique(second)) == {0, 1} and 0.35 < second.mean() < 0.65


def test_rating_metrics_agree_with_plain_python_on_ml100k(ml100k_split):
    train, test = ml100k_split
    model = ItemMean(train)
    report = evaluate(model, train, test, k=10, n_bootstrap=200)
    coo = test.matrix.tocoo()
    errors = [float(model.item_mean[item]) - float(rating) for item, rating in zip(coo.col, coo.data)]
    assert report.summary["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / len(errors)), abs=1e-9)
    assert report.summary["mae"] == pytest.approx(sum(abs(e) for e in errors) / len(errors), abs=1e-9)
    low, high = report.intervals["rmse"]
    assert low < report.summary["rmse"] < high and high - low < 0.1
