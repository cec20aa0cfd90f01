"""One function per benchmark case; each runs in its own process and returns a flat dict.

Timings are wall-clock seconds on whatever cores the machine has (both libraries use them all);
``seconds_per_iteration`` is the median over the fit's iterations.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

CACHE = Path(os.environ.get("RECLAB_BENCH_CACHE", Path(__file__).resolve().parent / ".cache"))
SPLIT_SEED = 42


class Skip(Exception):
    """The case cannot run here (a peer library or the data is missing)."""


def _long_tail(n_ratings: int) -> sp.csr_matrix:
    """The synthetic matrix, generated once and cached on disk, so a case's memory is its own."""
    path = CACHE / f"long_tail_{n_ratings}.npz"
    if not path.exists():
        from benchmarks.data import long_tail

        CACHE.mkdir(parents=True, exist_ok=True)
        matrix = long_tail(n_ratings)
        temporary = path.with_suffix(".tmp.npz")
        sp.save_npz(temporary, matrix, compressed=False)
        os.replace(temporary, path)
    return sp.load_npz(path).tocsr()


def _movielens_split(dataset: str):
    import reclab as rl

    if not os.environ.get("RECLAB_DATA_DIR"):
        raise Skip("RECLAB_DATA_DIR is not set; point it at the MovieLens folder (../shared/data)")
    data = rl.datasets.load(dataset, download=False)
    return rl.split.random_holdout(data, test_frac=0.2, seed=SPLIT_SEED)


def _peer(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise Skip(f"{module} is not installed ({error}); `make bench` installs the peers") from error


def _with_factors(user_factors, item_factors, train):
    """A reclab factor model holding a peer's factors, so both are scored by the same code."""
    import reclab as rl

    model = rl.models.ImplicitALS(factors=user_factors.shape[1])
    model.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)
    model.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
    model.n_users_, model.n_items_ = train.shape
    model.seen_ = train.matrix
    return model


def _warm_up(model, data) -> None:
    """Fit a copy on a few users first, so that one-off JIT compilation is not timed.

    (numba caches compiled kernels on disk, so a user pays compilation once per install, not per fit.)
    """
    import reclab as rl

    rl.models.clone(model).fit(data.restrict(users=np.arange(min(200, data.n_users))))


def _fit_timed(fit) -> dict:
    """Run ``fit(callback)`` and time it, with the seconds of each iteration."""
    seconds = []

    def callback(iteration, elapsed, loss=None):
        seconds.append(elapsed)

    started = time.perf_counter()
    fit(callback)
    total = time.perf_counter() - started
    return {"fit_seconds": round(total, 4),
            "seconds_per_iteration": round(statistics.median(seconds), 4) if seconds else None,
            "iteration_seconds": [round(s, 4) for s in seconds]}


def _implicit_fit(implicit, matrix, factors, iterations, regularization, alpha):
    model = implicit.cpu.als.AlternatingLeastSquares(
        factors=factors, regularization=regularization, alpha=alpha, iterations=iterations,
        use_cg=True, calculate_training_loss=False, num_threads=0, random_state=0)
    previous = [time.perf_counter()]
    seconds = []

    def callback(iteration, elapsed, loss):
        now = time.perf_counter()
        seconds.append(now - previous[0])
        previous[0] = now

    from threadpoolctl import threadpool_limits

    # implicit's own advice: its solver threads must not compete with OpenBLAS threads.
    with threadpool_limits(1, "blas"):
        started = time.perf_counter()
        model.fit(matrix, show_progress=False, callback=callback)
        total = time.perf_counter() - started
    return model, {"fit_seconds": round(total, 4),
                   "seconds_per_iteration": round(statistics.median(seconds), 4),
                   "iteration_seconds": [round(s, 4) for s in seconds]}


def implicit_als_speed(library: str, n_ratings: int, factors: int, iterations: int) -> dict:
    """Implicit ALS (conjugate gradient) time per iteration on a synthetic long-tail matrix."""
    matrix = _long_tail(n_ratings)
    result = {"library": library, "n_ratings": matrix.nnz, "shape": list(matrix.shape), "factors": factors,
              "iterations": iterations}
    import reclab as rl

    defaults = rl.models.ImplicitALS()  # both libraries run with reclab's default hyperparameters
    if library == "implicit":
        _peer("implicit.cpu.als")
        import implicit

        _implicit_fit(implicit, matrix[:1000], factors, 1, defaults.regularization, defaults.alpha)  # warm-up
        _, timing = _implicit_fit(implicit, matrix, factors, iterations, defaults.regularization, defaults.alpha)
    else:
        data = rl.Interactions.from_matrix(matrix)
        model = rl.models.ImplicitALS(factors=factors, iterations=iterations)
        _warm_up(model, data)
        timing = _fit_timed(lambda callback: model.fit(data, callback=callback))
    result.update(timing)
    return result


def implicit_als_accuracy(library: str, dataset: str, factors: int = 64, iterations: int = 15) -> dict:
    """precision@10 on a MovieLens 80/20 split, both libraries scored by reclab.evaluate."""
    import reclab as rl

    train, test = _movielens_split(dataset)
    defaults = rl.models.ImplicitALS()
    if library == "implicit":
        _peer("implicit.cpu.als")
        import implicit

        # implicit solves with confidence 1 + alpha * r; reclab's ImplicitALS counts every stored
        # rating as r = 1, so implicit gets the same binary matrix and the two fit the same model.
        binary = train.matrix.tocsr(copy=True)
        binary.data = np.ones_like(binary.data)
        model, timing = _implicit_fit(implicit, binary, factors, iterations,
                                      defaults.regularization, defaults.alpha)
        scored = _with_factors(model.user_factors, model.item_factors, train)
    else:
        model = rl.models.ImplicitALS(factors=factors, iterations=iterations)
        _warm_up(model, train)
        timing = _fit_timed(lambda callback: model.fit(train, callback=callback))
        scored = model
    report = rl.evaluate(scored, train, test, k=10, n_bootstrap=0)
    return {"library": library, "dataset": dataset, "factors": factors, "iterations": iterations,
            **timing, "precision@10": report.summary["precision@10"], "ndcg@10": report.summary["ndcg@10"]}


def _median_seconds(fit, repeats: int = 5) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``fit`` (fits of a second or less are
    too short for one measurement on shared cores)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fit()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def rating_model(model: str, dataset: str, params: dict | None = None) -> dict:
    """Median fit time of five fits, and test RMSE/MAE, of a rating-prediction model on a
    MovieLens 80/20 split. Every fit starts from the same seed, so the last one is scored.

    ``params`` overrides the model's defaults (reclab models only).
    """
    train, test = _movielens_split(dataset)
    library, name = model.split(".")
    test_frame = test.to_frame()
    truth = test_frame["rating"].to_numpy(dtype=np.float64)
    if library == "surprise":
        surprise = _peer("surprise")
        frame = train.to_frame()[["user", "item", "rating"]]
        low, high = float(frame.rating.min()), float(frame.rating.max())
        trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(low, high))).build_full_trainset()
        algorithm = getattr(surprise, name)(random_state=0) if name == "SVD" else getattr(surprise, name)(verbose=False)
        fit_seconds = _median_seconds(lambda: algorithm.fit(trainset))
        predictions = np.array([algorithm.predict(u, i).est for u, i in zip(test_frame.user, test_frame.item)])
    else:
        import reclab as rl

        estimator = getattr(rl.models, name)(**(params or {}))
        _warm_up(estimator, train)
        fit_seconds = _median_seconds(lambda: estimator.fit(train))
        users = train.user_index(test_frame.user.to_numpy())
        items = train.item_index(test_frame.item.to_numpy())
        predictions = estimator.predict(users, items).astype(np.float64)
    error = predictions - truth
    if params:
        name += "(" + ", ".join(f"{key}={value}" for key, value in params.items()) + ")"
    return {"library": library, "model": name, "dataset": dataset, "fit_seconds": round(fit_seconds, 4),
            "rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error)))}


def ranking_model(model: str, dataset: str) -> dict:
    """Fit time and ranking metrics of a reclab model (defaults) on a MovieLens 80/20 split."""
    import reclab as rl

    train, test = _movielens_split(dataset)
    estimator = getattr(rl.models, model)()
    _warm_up(estimator, train)
    started = time.perf_counter()
    estimator.fit(train)
    fit_seconds = time.perf_counter() - started
    # The first call of a process loads the compiled ranking kernel: not part of the timing.
    rl.evaluate(estimator, train, test, k=10, n_bootstrap=0, users=np.arange(10))
    started = time.perf_counter()
    report = rl.evaluate(estimator, train, test, k=10, n_bootstrap=0)
    return {"library": "reclab", "model": model, "dataset": dataset, "fit_seconds": round(fit_seconds, 4),
            "evaluate_seconds": round(time.perf_counter() - started, 4),
            **{key: report.summary[key] for key in ("precision@10", "recall@10", "ndcg@10", "coverage@10")}}


def ease_large(n_items: int, n_ratings: int) -> dict:
    """EASE's fit time and the process's peak memory on a synthetic long-tail catalog of
    ``n_items`` items (one fit: the n_items^3 inversion dominates; float32 matrix n_items^2 x 4 bytes)."""
    import reclab as rl

    from benchmarks.data import long_tail

    data = rl.Interactions.from_matrix(long_tail(n_ratings, n_items=n_items))
    model = rl.models.EASE()
    started = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - started
    return {"n_items": data.n_items, "n_users": data.n_users, "n_ratings": data.nnz,
            "fit_seconds": round(seconds, 2), "matrix_mb": round(model.weights_.nbytes / 1e6, 1)}


def ease_dtype(dataset: str, repeats: int = 3) -> dict:
    """EASE in float32 against float64: median fit seconds, and the largest score difference from a
    float64 reference (``numpy.linalg.inv`` on ml-100k; EASE's own float64 path on larger data,
    whose dense inverse would not be much more exact), on the README's 80/20 seed-42 split."""
    import reclab as rl

    train, test = _movielens_split(dataset)
    users = np.arange(train.n_users)
    binary = rl.models.base.interaction_matrix(train.matrix)
    if dataset == "ml-100k":
        x = binary.toarray()
        inverse = np.linalg.inv(x.T @ x + rl.models.EASE().regularization * np.eye(x.shape[1]))
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        reference, reference_name = x @ weights, "numpy.linalg.inv float64"
    else:
        reference = rl.models.EASE(dtype="float64").fit(train).score_items(users).astype(np.float64)
        reference_name = "EASE float64"
    from threadpoolctl import threadpool_limits

    result = {"dataset": dataset, "n_items": train.n_items, "reference": reference_name,
              "regularization": rl.models.EASE().regularization}
    for dtype in ("float32", "float64"):
        model = rl.models.EASE(dtype=dtype)
        result[f"{dtype}_fit_seconds"] = round(_median_seconds(lambda: model.fit(train), repeats), 3)
        # One BLAS thread: the dtypes' own cost, less disturbed by other jobs on a shared machine.
        with threadpool_limits(1, "blas"):
            result[f"{dtype}_fit_seconds_1_thread"] = round(
                _median_seconds(lambda: model.fit(train), repeats), 3)
        result[f"{dtype}_max_score_error"] = float(np.abs(model.score_items(users) - reference).max())
        result[f"{dtype}_precision@10"] = rl.evaluate(model, train, test, k=10, n_bootstrap=0).summary["precision@10"]
    return result


def evaluate_large(n_ratings: int, factors: int) -> dict:
    """reclab.evaluate of precision@10 for every user of the 20M-rating matrix (random factors)."""
    import reclab as rl

    data = rl.Interactions.from_matrix(_long_tail(n_ratings))
    train, test = rl.split.random_holdout(data, test_frac=0.2, seed=SPLIT_SEED)
    rng = np.random.default_rng(0)
    model = _with_factors(rng.normal(size=(data.n_users, factors)), rng.normal(size=(data.n_items, factors)), train)
    started = time.perf_counter()
    report = rl.evaluate(model, train, test, k=10, n_bootstrap=0)
    seconds = time.perf_counter() - started
    return {"n_ratings": data.nnz, "shape": list(data.shape), "factors": factors,
            "evaluated_users": report.n_evaluated, "evaluate_seconds": round(seconds, 3),
            "precision@10": report.summary["precision@10"]}


def spark_vs_local(model: str, dataset: str, factors: int = 32, iterations: int = 10) -> dict:
    """SparkALS (local mode, all cores) against reclab's ExplicitALS: fit time and RMSE."""
    import reclab as rl

    train, test = _movielens_split(dataset)
    if model == "SparkALS":
        _peer("pyspark")
        from reclab.models import SparkALS

        estimator = SparkALS(factors=factors, iterations=iterations)
        estimator.fit(train)  # the first fit starts the Spark session; time the second
    else:
        estimator = getattr(rl.models, model)(factors=factors, iterations=iterations)
        _warm_up(estimator, train)
    started = time.perf_counter()
    estimator.fit(train)
    fit_seconds = time.perf_counter() - started
    report = rl.evaluate(estimator, train, test, k=10, n_bootstrap=0)
    return {"model": model, "dataset": dataset, "factors": factors, "iterations": iterations,
            "fit_seconds": round(fit_seconds, 4), "rmse": report.summary.get("rmse"),
            "precision@10": report.summary["precision@10"]}


def tuning() -> dict:
    """SMBO with 30 trials against a 100-point random search (see benchmarks/tuning.py)."""
    from benchmarks import tuning as tuning_benchmark

    return tuning_benchmark.run()


def online_simulation(n_visits: int = 100_000, repeats: int = 5) -> dict:
    """Median seconds of a simulated A/B test and of a team-draft interleaving experiment with
    ``n_visits`` user visits on the default synthetic world (943 users x 1,682 items, top-10),
    Popularity against ImplicitALS; each call computes both arms' lists for every user, then
    draws the visits and clicks."""
    import reclab as rl

    data = rl.datasets.synthetic(seed=0)
    train, _ = rl.split.random_holdout(data, test_frac=0.2, seed=SPLIT_SEED)
    world = rl.online.World.from_truth(train)
    arms = {"Popularity": rl.models.Popularity().fit(train),
            "ImplicitALS": rl.models.ImplicitALS(factors=64, seed=0).fit(train)}
    rl.online.interleave(world, arms, n_users=1000)   # compile the kernels top-N uses, untimed
    ab_seconds = _median_seconds(lambda: rl.online.ab_test(world, arms, n_users=n_visits), repeats)
    il_seconds = _median_seconds(lambda: rl.online.interleave(world, arms, n_users=n_visits), repeats)
    ab = rl.online.ab_test(world, arms, n_users=n_visits)
    return {"n_visits": n_visits, "n_items": world.n_items, "ab_test_seconds": round(ab_seconds, 3),
            "interleave_seconds": round(il_seconds, 3), "ab_p_value": ab.p_value,
            "ctr_Popularity": float(ab.table.loc["Popularity", "ctr"]),
            "ctr_ImplicitALS": float(ab.table.loc["ImplicitALS", "ctr"])}
