"""ExplicitALS and ImplicitALS: quality bands on ML-100k, exact solves checked against dense
linear algebra, determinism across seeds and threads, degenerate data, the training curve."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from reclab import _numba_cache
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.evaluation import evaluate
from reclab.models.als import ExplicitALS, ImplicitALS
from reclab.normalize import BiasNormalizer


def _random_ratings(n_users=30, n_items=20, density=0.3, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n_users, n_items)) < density,
                     rng.integers(1, 6, (n_users, n_items)), 0).astype(np.float32)
    return Interactions.from_matrix(sp.csr_matrix(dense))


def _degenerate_ratings() -> Interactions:
    """User 0 has one rating, user 1 none, item 0 is never rated, user 2 rated every item."""
    dense = _random_ratings(n_users=12, n_items=9, density=0.3, seed=5).matrix.toarray()
    dense[0] = 0
    dense[0, 4] = 5
    dense[1] = 0
    dense[:, 0] = 0
    dense[2, 1:] = [1, 2, 3, 4, 5, 4, 3, 2]
    return Interactions.from_matrix(sp.csr_matrix(dense))


def _test_rmse(model, test) -> float:
    users = np.repeat(np.arange(test.n_users), test.user_counts())
    errors = model.predict(users, test.matrix.indices) - test.matrix.data.astype(np.float64)
    return float(np.sqrt(np.mean(errors ** 2)))


# -- quality bands (ML-100k, 80/20 per-user random holdout, seed 42; measured values noted) -------
def test_implicit_als_precision_on_ml100k(ml100k_split):
    train, test = ml100k_split
    report = evaluate(ImplicitALS().fit(train), train, test, k=10, n_bootstrap=0)
    assert 0.32 <= report.summary["precision@10"] <= 0.40      # measured 0.3762


def test_explicit_als_rmse_on_ml100k(ml100k_split):
    train, test = ml100k_split
    rmse = _test_rmse(ExplicitALS().fit(train), test)
    assert 0.89 <= rmse <= 0.93                                  # measured 0.9132


# -- the solves are right: compare with dense linear algebra ---------------------------------------
def test_implicit_exact_solve_matches_the_dense_normal_equations():
    data = _random_ratings(seed=1)
    reg, alpha = 0.7, 3.0
    model = ImplicitALS(factors=4, regularization=reg, alpha=alpha, iterations=3,
                        use_cg=False).fit(data)
    x, y = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
    preference = (data.matrix.toarray() > 0).astype(np.float64)
    confidence = 1.0 + alpha * preference
    # The last half-sweep solved the items with the users fixed: every y_i is the exact minimizer.
    for item in range(data.n_items):
        c = confidence[:, item]
        lhs = x.T @ (c[:, None] * x) + reg * np.eye(4)
        expected = np.linalg.solve(lhs, x.T @ (c * preference[:, item]))
        np.testing.assert_allclose(y[item], expected, rtol=1e-5, atol=1e-6)


def test_conjugate_gradient_with_k_steps_reaches_the_exact_solution():
    data = _random_ratings(seed=2)
    params = dict(factors=5, regularization=0.5, alpha=2.0, iterations=4)
    exact = ImplicitALS(use_cg=False, **params).fit(data)
    cg = ImplicitALS(use_cg=True, cg_steps=5, **params).fit(data)   # CG is exact in k steps
    np.testing.assert_allclose(cg.item_factors_, exact.item_factors_, rtol=1e-3, atol=1e-4)
    # Three steps are an approximation: close, not equal.
    approx = ImplicitALS(use_cg=True, cg_steps=3, **params).fit(data)
    difference = np.abs(approx.item_factors_ - exact.item_factors_).max()
    assert 0 < difference < 0.05 * np.abs(exact.item_factors_).max()


@pytest.mark.parametrize("factors", [3, 16], ids=["primal", "dual"])
def test_explicit_solve_matches_weighted_lambda_normal_equations(factors):
    # With 16 factors every user and item has fewer ratings than factors, so the kernel solves
    # the small dual system instead; the answer must be the same.
    data = _random_ratings(seed=3)
    assert factors == 3 or max(data.item_counts().max(), data.user_counts().max()) < factors
    reg = 0.3
    model = ExplicitALS(factors=factors, regularization=reg, iterations=4).fit(data)
    residuals = BiasNormalizer(10.0, 25.0, 3).fit(data).transform(data).matrix.tocsc()
    p = model.user_factors_.astype(np.float64)
    for item in range(data.n_items):
        rows = residuals.indices[residuals.indptr[item]:residuals.indptr[item + 1]]
        values = residuals.data[residuals.indptr[item]:residuals.indptr[item + 1]]
        lhs = p[rows].T @ p[rows] + reg * rows.size * np.eye(factors)
        expected = np.linalg.solve(lhs, p[rows].T @ values)
        np.testing.assert_allclose(model.item_factors_[item], expected, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(model.global_mean_, data.matrix.data.astype(np.float64).mean(), rtol=1e-12)


def test_explicit_als_recovers_a_biased_rank_one_matrix():
    rng = np.random.default_rng(4)
    p, q = rng.standard_normal(25), rng.standard_normal(15)
    p -= p.mean()
    q -= q.mean()
    # Zero-mean rows and columns: unregularized biases are exact and the residual is p q^T.
    ratings = 3.0 + rng.normal(0, 0.3, (25, 1)) + rng.normal(0, 0.3, (1, 15)) + 0.4 * np.outer(p, q)
    data = Interactions.from_matrix(sp.csr_matrix(ratings.astype(np.float32)))
    model = ExplicitALS(factors=1, regularization=0.0, iterations=30, user_reg=0.0,
                        item_reg=0.0).fit(data)
    users, items = np.indices(ratings.shape).reshape(2, -1)
    np.testing.assert_allclose(model.predict(users, items), ratings.ravel(), atol=1e-4)


def test_implicit_als_completes_two_communities():
    # Users 0-4 use items 0-5, users 5-9 items 6-11; each user misses one item of its community.
    dense = np.zeros((10, 12), dtype=np.float32)
    dense[:5, :6] = 1
    dense[5:, 6:] = 1
    missing = {user: (user % 5) + (0 if user < 5 else 6) for user in range(10)}
    for user, item in missing.items():
        dense[user, item] = 0
    data = Interactions.from_matrix(sp.csr_matrix(dense))
    model = ImplicitALS(factors=2, regularization=0.1, alpha=5.0, iterations=10).fit(data)
    ids, _ = model.recommend(np.arange(10), n=1)
    assert ids[:, 0].tolist() == [missing[user] for user in range(10)]


# -- training curve ------------------------------------------------------------------------------------
def test_exact_implicit_loss_never_increases():
    data = _random_ratings(n_users=40, n_items=30, seed=6)
    losses = []
    ImplicitALS(factors=6, regularization=0.5, alpha=4.0, iterations=8, use_cg=False).fit(
        data, callback=lambda i, s, loss: losses.append(loss))
    # Exact block minimization cannot increase the loss; float32 factors allow roundoff.
    assert all(later <= earlier * (1 + 1e-6) for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < 0.9 * losses[0]


def test_the_loss_is_the_documented_objective():
    data = _random_ratings(seed=7)
    reg, alpha = 0.4, 2.0
    losses = []
    model = ImplicitALS(factors=3, regularization=reg, alpha=alpha, iterations=2)
    model.fit(data, callback=lambda i, s, loss: losses.append(loss))
    x, y = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
    preference = (data.matrix.toarray() > 0).astype(np.float64)
    confidence = 1.0 + alpha * preference
    objective = (confidence * (preference - x @ y.T) ** 2).sum() + reg * ((x ** 2).sum() + (y ** 2).sum())
    np.testing.assert_allclose(losses[-1], objective / confidence.sum(), rtol=1e-6)


def test_explicit_loss_never_increases_and_cg_loss_decreases():
    data = _random_ratings(n_users=40, n_items=30, seed=8)
    explicit, implicit = [], []
    ExplicitALS(factors=4, regularization=0.1, iterations=8).fit(
        data, callback=lambda i, s, loss: explicit.append(loss))
    assert all(later <= earlier * (1 + 1e-5) for earlier, later in zip(explicit, explicit[1:]))
    ImplicitALS(factors=4, iterations=8).fit(data, callback=lambda i, s, loss: implicit.append(loss))
    assert implicit[-1] < implicit[0]


def test_callback_is_called_once_per_iteration():
    data = _random_ratings(seed=9)
    for model in (ImplicitALS(factors=3, iterations=4), ExplicitALS(factors=3, iterations=4)):
        calls = []
        model.fit(data, callback=lambda *args: calls.append(args))
        assert [call[0] for call in calls] == [1, 2, 3, 4]
        assert all(seconds >= 0 and np.isfinite(loss) for _, seconds, loss in calls)


# -- determinism ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda **p: ImplicitALS(factors=8, iterations=3, **p),
    lambda **p: ImplicitALS(factors=8, iterations=3, use_cg=False, **p),
    lambda **p: ExplicitALS(factors=8, iterations=3, **p),
], ids=["implicit-cg", "implicit-exact", "explicit"])
def test_same_seed_same_factors_for_any_thread_count(make):
    data = _random_ratings(n_users=300, n_items=120, density=0.1, seed=10)
    first = make(seed=3).fit(data)
    threads = numba.get_num_threads()
    for num_threads in (1, 0):
        again = make(seed=3, num_threads=num_threads).fit(data)
        np.testing.assert_array_equal(again.user_factors_, first.user_factors_)
        np.testing.assert_array_equal(again.item_factors_, first.item_factors_)
        assert numba.get_num_threads() == threads, "fit did not restore numba's thread count"
    other = make(seed=4).fit(data)
    assert not np.array_equal(other.item_factors_, first.item_factors_)


_FIT_IN_A_NEW_PROCESS = """
import hashlib, reclab as rl
from reclab.models import _als_kernels as kernels
data = rl.synthetic.synthetic(seed=0, n_users=300, n_items=200, n_ratings=6000)
model = rl.models.ImplicitALS(factors=32, iterations=2).fit(data)
print(hashlib.sha256(model.user_factors_.tobytes() + model.item_factors_.tobytes()).hexdigest())
print(sum(kernels.implicit_cg_sweep.kernel.stats.cache_misses.values()))
"""


def test_the_first_process_after_an_install_gets_the_factors_of_every_later_one(tmp_path):
    # numba runs other machine code for a parallel fastmath kernel in the process that compiles it
    # than in the processes that load it from its cache; reclab's kernels are compiled by a child
    # process, so that the first fit (empty cache) and the next (loaded) give the same bits.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop(_numba_cache._COMPILING_HERE, None)
    runs = [subprocess.run([sys.executable, "-c", _FIT_IN_A_NEW_PROCESS], env=env, capture_output=True,
                           text=True, timeout=600) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    (first, compiled_first), (again, compiled_again) = (run.stdout.split() for run in runs)
    assert (compiled_first, compiled_again) == ("0", "0"), "a process compiled a kernel it then ran"
    assert first == again


# -- degenerate input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [
    ImplicitALS(factors=16, iterations=3),
    ImplicitALS(factors=16, iterations=3, regularization=0.0),
    ImplicitALS(factors=16, iterations=3, regularization=0.0, use_cg=False),
    ExplicitALS(factors=16, iterations=3),
    ExplicitALS(factors=16, iterations=3, regularization=0.0),
], ids=["implicit", "implicit-reg0", "implicit-exact-reg0", "explicit", "explicit-reg0"])
def test_degenerate_data_gives_finite_factors(model):
    data = _degenerate_ratings()         # 16 factors > 9 items: every solve is underdetermined
    model.fit(data)
    assert np.isfinite(model.user_factors_).all() and np.isfinite(model.item_factors_).all()
    assert np.abs(model.user_factors_).max() < 1e3 and np.abs(model.item_factors_).max() < 1e3
    # A user or item without interactions gets zero factors: the minimizer for implicit ALS, and
    # "no information beyond the biases" for explicit ALS.
    assert not model.user_factors_[1].any() and not model.item_factors_[0].any()
    assert np.isfinite(model.score_items(np.arange(data.n_users))).all()
    if model.predicts_ratings:
        predictions = model.predict(np.repeat(np.arange(12), 9), np.tile(np.arange(9), 12))
        assert predictions.min() >= 1 and predictions.max() <= 5


def test_implicit_ignores_non_positive_values():
    dense = _random_ratings(seed=11).matrix.toarray()
    with_negative = dense.copy()
    zeros = np.argwhere(dense == 0)[:5]
    with_negative[zeros[:, 0], zeros[:, 1]] = -1.0
    plain = ImplicitALS(factors=4, iterations=3).fit(Interactions.from_matrix(sp.csr_matrix(dense)))
    # a negative value is a residual of normalized ratings, not an interaction: said, not hidden
    with pytest.warns(UserWarning, match=r"^ImplicitALS ignores the 5 of the \d+ training interactions whose "
                                         r"value is <= 0: negative values look like residuals"):
        negative = ImplicitALS(factors=4, iterations=3).fit(
            Interactions.from_matrix(sp.csr_matrix(with_negative)))
    np.testing.assert_array_equal(plain.item_factors_, negative.item_factors_)
    # stored zeros (a 0/1 "liked" column read as ratings) are interactions to everything else
    frame = _random_ratings(seed=11).to_frame()
    frame["rating"] = (frame["rating"] >= 4).astype(np.float32)
    with pytest.warns(UserWarning, match=r"value is <= 0: a stored 0 \(a 0/1 'liked' column\) is no "
                                         r"interaction to it, but still one to the splits"):
        zeros = ImplicitALS(factors=4, iterations=3).fit(stored := Interactions.from_frame(frame))
    assert (stored.matrix.data == 0).sum() > 0
    liked = ImplicitALS(factors=4, iterations=3).fit(stored.select(stored.matrix.data > 0))
    np.testing.assert_array_equal(zeros.item_factors_, liked.item_factors_)


def test_rating_values_do_not_change_implicit_factors():
    data = _random_ratings(seed=12)
    binary = Interactions.from_matrix(sp.csr_matrix((data.matrix.toarray() > 0).astype(np.float32)))
    first = ImplicitALS(factors=4, iterations=3).fit(data)
    second = ImplicitALS(factors=4, iterations=3).fit(binary)
    np.testing.assert_array_equal(first.item_factors_, second.item_factors_)


@pytest.mark.parametrize("name, value, message", [
    ("alpha", -1.0, "alpha must be >= 0"),
    ("dtype", "float16", "dtype must be one of"),
    ("cg_steps", 0, "cg_steps must be an integer >= 1"),
    ("num_threads", -1, "num_threads must be an integer >= 0"),
    ("regularization", -0.1, "regularization must be >= 0"),
])
def test_bad_implicit_parameters_are_named(name, value, message):
    with pytest.raises(ReclabError, match=message):
        ImplicitALS(**{name: value}).fit(_random_ratings())


def test_float64_factors_agree_with_float32():
    data = _random_ratings(seed=13)
    single = ImplicitALS(factors=3, iterations=2).fit(data)
    double = ImplicitALS(factors=3, iterations=2, dtype="float64").fit(data)
    assert single.item_factors_.dtype == np.float32 and double.item_factors_.dtype == np.float64
    np.testing.assert_allclose(single.item_factors_, double.item_factors_, rtol=1e-4, atol=1e-5)
    assert ExplicitALS(factors=3, iterations=2).fit(data).user_factors_.dtype == np.float32
