"""The objective of a search: the checks of :func:`reclab.tuning.tune`'s arguments, and one
trial (fit on each validation fold, score, average), run in the main process or in a worker."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from reclab._validate import check_cutoffs
from reclab.data import Interactions, check_interactions
from reclab.errors import ReclabError
from reclab.evaluation import cold_candidates, evaluate
from reclab.models.base import Recommender, clone
from reclab.tuning._results import LOWER_IS_BETTER, Trial


def check_report_cutoffs(k, cut: int | None) -> tuple[int, ...]:
    if k is None:
        return (cut if cut is not None else 10,)
    values = check_cutoffs(k)
    if cut is not None and cut not in values:
        raise ReclabError(f"k={list(values)} does not include the cut-off {cut} of the tuned metric; "
                          f"add it (k={sorted({*values, cut})}) or leave k=None")
    return values


def check_data(data, name: str) -> Interactions:
    check_interactions(data, name)
    if data.nnz == 0:
        raise ReclabError(f"{name} has no interactions; tuning needs a non-empty {name} split")
    return data


def check_callbacks(callbacks) -> tuple:
    if callable(callbacks):
        return (callbacks,)
    if callbacks is None:
        return ()
    callbacks = tuple(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise ReclabError(f"callbacks must be callables callback(trial), got {callback!r}")
    return callbacks


def check_space_for_model(parsed: dict, model: Recommender) -> None:
    params = model.get_params()
    unknown = [name for name in parsed if name not in params]
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(params), n=1)
            if close:
                hints.append(f"{name!r} -> {close[0]!r}?")
        many = len(unknown) > 1
        raise ReclabError(
            f"search space parameter{'s' if many else ''} {unknown} "
            f"{'are not parameters' if many else 'is not a parameter'} of {type(model).__name__}; "
            f"its parameters are {sorted(params)}" + (f" ({', '.join(hints)})" if hints else ""))


def score_problem(metric: str, score) -> str | None:
    """Why ``score`` cannot be a value of ``metric`` (None when it can): every metric is a finite
    number, rmse and mae >= 0, the ranking metrics and coverage in [0, 1]. Computed scores and
    scores read back from a checkpoint both pass here."""
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return f"{metric} is {score!r}"
    low, high = (0.0, math.inf) if metric in LOWER_IS_BETTER else (0.0, 1.0)
    if not low <= score <= high:
        return f"{metric} is {score!r}, outside [{low}, {high}]"
    return None


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial needs; shipped once to each worker process when ``n_jobs > 1``.

    ``models`` are the searched models (a trial names one by its index); ``folds`` the
    ``(fit, holdout)`` pairs every trial is scored on; with ``cold_items`` (a
    :func:`reclab.split.cold_items` split) each holdout ranks only its items, which its fit has
    no interaction of, as stage 5's cold-item protocol does.
    """

    models: tuple
    folds: tuple
    metric: str
    k: tuple
    relevance_threshold: float | None
    cold_items: bool = False

    def run(self, number: int, index: int, params: dict) -> Trial:
        model = self.models[index]
        name = type(model).__name__
        start = time.perf_counter()
        reports = []
        try:
            for fit, holdout in self.folds:
                candidate = clone(model).set_params(**params)
                candidate.fit(fit)
                cold = (cold_candidates(fit, holdout, relevance_threshold=self.relevance_threshold)
                        if self.cold_items else None)
                report = evaluate(candidate, fit, holdout, k=self.k, candidates=cold,
                                  relevance_threshold=self.relevance_threshold, n_bootstrap=0)
                reports.append({name_: float(value) for name_, value in report.summary.items()})
        except Exception as error:  # a bad point or a numerical failure; the search goes on
            return Trial(number, params, float("nan"), {}, time.perf_counter() - start, "failed",
                         f"{type(error).__name__}: {error}", name)
        seconds = time.perf_counter() - start
        if self.metric not in reports[0]:
            # Not a property of the point: every trial would miss it, so stop the search.
            raise ReclabError(f"metric {self.metric!r} is not in the evaluation report of "
                              f"{name}; the report has {sorted(reports[0])}")
        metrics = {key: float(np.mean([report[key] for report in reports])) for key in reports[0]}
        fold_scores = tuple(report[self.metric] for report in reports)
        score = metrics[self.metric]
        problem = score_problem(self.metric, score)
        if problem is not None:
            return Trial(number, params, float("nan"), metrics, seconds, "failed", problem, name, fold_scores)
        return Trial(number, params, score, metrics, seconds, "ok", None, name, fold_scores)


_WORKER_JOB: list = []


def init_worker(job: TrialJob, threads: int) -> None:
    """Give one worker process its share of the cores, then keep the job for its trials.

    Without limits, ``n_jobs`` workers would each run numba and BLAS on every core. The
    environment variables reach libraries that read them later; numba reads its own again
    (``reload_config``), so that models asking for "all threads" get this worker's share.
    """
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    try:
        import numba

        numba.core.config.reload_config()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
    except ImportError:
        pass
    _WORKER_JOB[:] = [job]


def run_in_worker(number: int, index: int, params: dict) -> Trial:
    return _WORKER_JOB[0].run(number, index, params)
