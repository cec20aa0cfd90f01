"""Hyperparameter tuning: grid, random and sequential model-based search on a validation split.

:func:`tune` searches a model's parameters (a search space as in :mod:`reclab.space`): each trial
clones the model, sets the trial's parameters, fits on ``train`` and scores the fitted model with
:func:`reclab.evaluation.evaluate` on ``valid``. The test split is never an argument: the held-out
test data stays untouched until the final evaluation.

Methods
-------
``grid``
    Every point of the declared grid (every parameter a list), in the order of
    :func:`reclab.space.grid_points`. ``n_trials=None`` runs the whole grid; an explicit
    ``n_trials`` below the grid size is an error (a partial grid silently favours the first
    values of the first parameter), one above it runs the grid once.
``random``
    ``n_trials`` independent draws from the space, respecting each parameter's bounds and prior:
    :func:`reclab.space.sample` with ``seed``. The first ``n`` trials of a longer search are the
    trials of a shorter one with the same seed. Discrete spaces may repeat a point.
``smbo``
    Sequential model-based optimization with ``skopt.Optimizer``: ``n_initial`` points of a
    Latin hypercube, then each point maximizes the expected improvement (``SMBO_OPTIONS``) of a
    surrogate model of the objective, ``estimator`` one of ``"GP"`` (Gaussian process), ``"RF"``
    (random forest), ``"ET"`` (extra trees), ``"GBRT"`` (gradient boosted quantile trees). The
    optimizer minimizes ``-score`` (``score`` for the lower-is-better metrics ``rmse`` and
    ``mae``).

Start points
------------
Every search begins with the model's own parameters (its values of the searched parameters):
trial 0 is the point the user started from, so the best on validation is never below it. Extra
start points (``starts``) follow, then the method's own points (a grid point equal to a start
point is not run twice). SMBO is told the start points that lie inside the space, as
scikit-optimize's ``x0``; they count among its ``n_initial`` points. ``n_trials`` counts them.

Validation folds
----------------
One validation split is a noisy objective: the differences between good points are often
smaller than its noise. With ``folds=k``, each trial is scored on ``k`` disjoint per-user
holdouts (:func:`reclab.split.validation_folds`: ``(train, valid)`` and ``k - 1`` more of the
same size carved from ``train``, seeded by ``seed``), and its score is their mean;
``Trial.fold_scores`` keeps each. The Gaussian-process surrogate models the objective as
noisy (scikit-optimize's ``noise="gaussian"``, a fitted white-noise level); the tree surrogates
average over leaves.

Several models
--------------
``tune([m1, m2], [space1, space2], ...)`` searches each model in its own space under one budget
of ``n_trials``: after the start points of every model, the models take turns (one grid point,
random draw or SMBO proposal each; each model has its own SMBO optimizer and random stream). The
best trial over all models wins; ``result.best_model`` names it and every trial names its model.

Time budget
-----------
With ``time_budget`` (seconds), no trial starts that would end after the budget, at the mean
duration of the trials run so far in the call (so a search overruns it by less than one trial,
and only when a trial takes longer than the mean): the search returns the trials finished so
far (``result.stopped == "time_budget"``), a valid result, and with a checkpoint a later call
continues it.

Failed trials
-------------
A trial whose fit or evaluation raises an ``Exception``, or whose metric is NaN or infinite, is
recorded with ``status="failed"`` and its error text; the search goes on and a failed trial is
never the best. SMBO is told, for a failed point, the worst objective among the trials that
finished so far, so that its surrogate moves away from the point without its scale being
distorted; failed points before any trial finished wait and are told that value once one does.
If every trial fails, :func:`tune` raises ``ReclabError`` quoting the first error.

Reproducibility, resuming and parallel trials
---------------------------------------------
The same model, space, data, method, seed (and ``n_jobs`` for SMBO) give the same trials in the
same order, with the same scores when the model's fit is deterministic (reclab models are, given
their ``seed``; ``tune`` never changes a model's seed).

``checkpoint`` names a JSON-lines file: a header line identifying the search (method, space,
metric, cut-offs, seed and SMBO settings, model class and fixed parameters, start points,
number of folds, train and validation fingerprints), then one line per finished trial, appended and fsynced as the trial finishes.
Calling :func:`tune` again with the same file resumes: the header must match (otherwise a
``ReclabError`` names every difference), finished trials are read back instead of being run
again, and the search continues exactly as an uninterrupted one would (SMBO replays its
ask/tell sequence, told the recorded scores, so its random state and surrogate match). A last
line cut short by a killed process is ignored (and cut off before appending). ``n_trials`` is
not part of the identity: resuming with a larger ``n_trials`` extends a search. The file is
locked (POSIX advisory lock) while a search uses it.

``n_jobs > 1`` runs trials in that many worker processes, started by a fork server (``spawn``
where there is none), so they hold no copy of numba's or BLAS's threads. The model, ``train``
and ``valid`` are sent to each worker once, so the model class must be importable from a module
(not defined in a notebook), and a script needs the usual ``if __name__ == "__main__":`` guard
(the fork server imports the main module). Each worker limits numba and BLAS to
``cpu_count // n_jobs`` threads. For grid and random search the trials are the same as with
``n_jobs=1``. SMBO then asks for ``n_jobs`` points at once (``opt.ask(n_points=n_jobs)``,
constant-liar strategy) and is told their scores together, so its sequence of trials differs
from ``n_jobs=1`` (and is fixed for a given ``n_jobs``). Parallel trials help when one fit
cannot use every core: small data, models that fit on one thread, or fits dominated by Python
overhead. ALS models already use every core in their numba kernels, so on a small machine
``n_jobs=1`` is usually as fast and keeps SMBO fully sequential.

Callbacks
---------
``callback(trial)`` is called in the main process with each :class:`Trial` finished by this
call, after it is written to the checkpoint (in completion order when trials run in parallel).
Trials read back from a checkpoint are not announced again. An exception raised by a callback
stops the search (and propagates); with a checkpoint the search can be resumed.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from skopt.space import Integer, Real

from reclab._validate import check_choice, check_cutoffs, check_int, check_seed, check_threshold
from reclab.data import Interactions, check_interactions
from reclab.errors import ReclabError
from reclab.evaluation import evaluate
from reclab.metrics import RANKING_METRICS
from reclab.models.base import Recommender, clone
from reclab.space import grid_points, parse_space, sample, space_to_dict, to_python

__all__ = ["METHODS", "ESTIMATORS", "LOWER_IS_BETTER", "Trial", "TuningResult", "tune",
           "boundary_warnings", "plot_convergence", "plot_objective"]

METHODS = ("grid", "random", "smbo")
ESTIMATORS = ("GP", "RF", "ET", "GBRT")
#: Metrics where a smaller value is better; every other metric is maximized.
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
_DEFAULT_N_TRIALS = 30
_CHECKPOINT_FORMAT = "reclab-tuning-checkpoint"
_CHECKPOINT_VERSION = 1


# -- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One evaluated point of a search.

    Attributes
    ----------
    number : int
        Position in the search, from 0.
    params : dict of str -> scalar
        The searched parameters of this trial (plain Python scalars); the model's other
        parameters are those of the model given to :func:`tune`.
    score : float
        The tuned metric on the validation split (with ``folds > 1``: its mean over the folds);
        NaN for a failed trial.
    metrics : dict of str -> float
        Every metric of the validation report (``report.summary``; means over the folds); empty
        for a failed trial.
    seconds : float
        Wall time of fit plus evaluation (of every fold).
    status : {"ok", "failed"}
    error : str or None
        ``"ExceptionType: message"`` of a failed trial (or why its metric was not finite).
    model : str
        Name of the model class of this trial (the searches of ``tune([...], [...])`` differ).
    fold_scores : tuple of float
        The tuned metric on each validation fold, in fold order.
    """

    number: int
    params: dict
    score: float
    metrics: dict
    seconds: float
    status: str
    error: str | None = None
    model: str | None = None
    fold_scores: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def score_std(self) -> float:
        """Standard deviation (ddof 1) of the per-fold scores; NaN with fewer than two folds."""
        if len(self.fold_scores) < 2:
            return float("nan")
        return float(np.std(self.fold_scores, ddof=1))

    def to_record(self) -> dict:
        """JSON-ready form (NaN as null), as written to checkpoints."""
        return {"kind": "trial", "number": self.number, "model": self.model,
                "params": dict(self.params), "score": _finite_or_none(self.score),
                "fold_scores": [_finite_or_none(value) for value in self.fold_scores],
                "metrics": {name: _finite_or_none(value) for name, value in self.metrics.items()},
                "seconds": self.seconds, "status": self.status, "error": self.error}

    @classmethod
    def from_record(cls, record: Mapping) -> "Trial":
        return cls(number=int(record["number"]), params=dict(record["params"]),
                   score=_none_to_nan(record["score"]),
                   metrics={name: _none_to_nan(value) for name, value in record["metrics"].items()},
                   seconds=float(record["seconds"]), status=str(record["status"]),
                   error=record["error"], model=record.get("model"),
                   fold_scores=tuple(_none_to_nan(value) for value in record.get("fold_scores", ())))


@dataclass(frozen=True, repr=False)
class TuningResult:
    """What :func:`tune` found.

    Attributes
    ----------
    best_params : dict of str -> scalar
        Searched parameters of the best finished trial (ties: the earliest). Apply them with
        ``reclab.models.clone(model).set_params(**result.best_params)``.
    best_score : float
        Its validation metric.
    trials : tuple of Trial
        Every trial, ordered by number.
    method, metric : str
    greater_is_better : bool
        False for ``rmse`` / ``mae``.
    space : dict of str -> skopt.space.Dimension
        The parsed search space of the best model.
    seed : int
    estimator : str
        SMBO surrogate (recorded for every method; used by :func:`plot_objective`).
    best_model : str
        Class name of the best trial's model.
    spaces : dict of str -> dict
        Each searched model's name -> its parsed space.
    folds : int
        Validation folds each trial was scored on.
    stopped : str or None
        Why the search ended before ``n_trials`` (``"time_budget"``), else None.
    """

    best_params: dict
    best_score: float
    trials: tuple
    method: str
    metric: str
    greater_is_better: bool = True
    space: dict = field(default_factory=dict, repr=False)
    seed: int = 0
    estimator: str = "GP"
    best_model: str = ""
    spaces: dict = field(default_factory=dict, repr=False)
    folds: int = 1
    stopped: str | None = None

    def __repr__(self) -> str:
        failed = sum(not trial.ok for trial in self.trials)
        return (f"TuningResult(method={self.method!r}, metric={self.metric!r}, "
                f"best_model={self.best_model!r}, "
                f"best_score={self.best_score:.6g}, best_params={self.best_params}, "
                f"trials={len(self.trials)}{f' ({failed} failed)' if failed else ''})")

    @property
    def best_trial(self) -> Trial:
        """The finished trial with the best score (the earliest of equal ones)."""
        return _best([trial for trial in self.trials if trial.ok], self.greater_is_better)

    def trials_frame(self) -> pd.DataFrame:
        """One row per trial, indexed by ``number``.

        Columns: ``model``, ``status``, ``score``; with ``folds > 1`` ``score_std`` (the spread
        over the folds) and ``fold_0``, ``fold_1``, ... (the score on each fold); one per searched
        parameter (of every model), one per validation metric, ``seconds``, ``error``.
        """
        spaces = self.spaces or {self.best_model: self.space}
        params = list(dict.fromkeys(name for space in spaces.values() for name in space)) \
            or sorted({name for trial in self.trials for name in trial.params})
        metrics = list(dict.fromkeys(name for trial in self.trials for name in trial.metrics))
        folds = [f"fold_{fold}" for fold in range(self.folds)] if self.folds > 1 else []
        rows = []
        for trial in self.trials:
            row = {"number": trial.number, "model": trial.model, "status": trial.status,
                   "score": trial.score}
            if folds:
                scores = list(trial.fold_scores) + [np.nan] * (len(folds) - len(trial.fold_scores))
                row.update({"score_std": trial.score_std, **dict(zip(folds, scores))})
            row.update({name: trial.params.get(name) for name in params})
            row.update({name: trial.metrics.get(name, np.nan) for name in metrics})
            row.update({"seconds": trial.seconds, "error": trial.error})
            rows.append(row)
        columns = ["number", "model", "status", "score", *(["score_std", *folds] if folds else []),
                   *params, *metrics, "seconds", "error"]
        return pd.DataFrame(rows, columns=columns).set_index("number")


def _best(finished: list, greater_is_better: bool) -> Trial:
    sign = -1.0 if greater_is_better else 1.0
    return min(finished, key=lambda trial: (sign * trial.score, trial.number))


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _none_to_nan(value) -> float:
    return float("nan") if value is None else float(value)


# -- argument checks ------------------------------------------------------------------------------
def _check_metric(metric) -> tuple[str, int | None]:
    """``(metric, cut-off)``; the cut-off is None for rmse / mae."""
    known = f"{', '.join(RANKING_METRICS)} or coverage at a cut-off (e.g. 'precision@10'), or 'rmse' / 'mae'"
    if not isinstance(metric, str):
        raise ReclabError(f"metric must be a string such as 'precision@10' ({known}), got {metric!r}")
    if metric in LOWER_IS_BETTER:
        return metric, None
    name, at, cut = metric.partition("@")
    if not at or name not in (*RANKING_METRICS, "coverage") or not cut.isdigit() or int(cut) < 1:
        raise ReclabError(f"unknown metric {metric!r}; use {known}")
    return metric, int(cut)


def _check_k(k, cut: int | None) -> tuple[int, ...]:
    if k is None:
        return (cut if cut is not None else 10,)
    values = check_cutoffs(k)
    if cut is not None and cut not in values:
        raise ReclabError(f"k={list(values)} does not include the cut-off {cut} of the tuned metric; "
                          f"add it (k={sorted({*values, cut})}) or leave k=None")
    return values


def _check_data(data, name: str) -> Interactions:
    check_interactions(data, name)
    if data.nnz == 0:
        raise ReclabError(f"{name} has no interactions; tuning needs a non-empty {name} split")
    return data


def _check_callbacks(callbacks) -> tuple:
    if callable(callbacks):
        return (callbacks,)
    if callbacks is None:
        return ()
    callbacks = tuple(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise ReclabError(f"callbacks must be callables callback(trial), got {callback!r}")
    return callbacks


def _check_space_for_model(parsed: dict, model: Recommender) -> None:
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


def _score_problem(metric: str, score) -> str | None:
    """Why ``score`` cannot be a value of ``metric`` (None when it can): every metric is a finite
    number, rmse and mae >= 0, the ranking metrics and coverage in [0, 1]. Computed scores and
    scores read back from a checkpoint both pass here."""
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return f"{metric} is {score!r}"
    low, high = (0.0, math.inf) if metric in LOWER_IS_BETTER else (0.0, 1.0)
    if not low <= score <= high:
        return f"{metric} is {score!r}, outside [{low}, {high}]"
    return None


# -- one trial --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TrialJob:
    """Everything a trial needs; shipped once to each worker process when ``n_jobs > 1``.

    ``models`` are the searched models (a trial names one by its index); ``folds`` the
    ``(fit, holdout)`` pairs every trial is scored on.
    """

    models: tuple
    folds: tuple
    metric: str
    k: tuple
    relevance_threshold: float | None

    def run(self, number: int, index: int, params: dict) -> Trial:
        model = self.models[index]
        name = type(model).__name__
        start = time.perf_counter()
        reports = []
        try:
            for fit, holdout in self.folds:
                candidate = clone(model).set_params(**params)
                candidate.fit(fit)
                report = evaluate(candidate, fit, holdout, k=self.k,
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
        problem = _score_problem(self.metric, score)
        if problem is not None:
            return Trial(number, params, float("nan"), metrics, seconds, "failed", problem, name, fold_scores)
        return Trial(number, params, score, metrics, seconds, "ok", None, name, fold_scores)


_WORKER_JOB: list = []


def _init_worker(job: _TrialJob, threads: int) -> None:
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


def _run_in_worker(number: int, index: int, params: dict) -> Trial:
    return _WORKER_JOB[0].run(number, index, params)


# -- checkpoint ---------------------------------------------------------------------------------------
def _normalized(value):
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars plain)."""
    def plain(item):
        return to_python(item) if isinstance(item, np.generic) else repr(item)

    return json.loads(json.dumps(value, default=plain))


def _lock(handle, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ReclabError(f"checkpoint {str(path)!r} is in use by another running search; wait for "
                          f"it or use another checkpoint path") from None


class _Checkpoint:
    """The JSON-lines record of one search: a header, then one line per finished trial.

    An append-only log rather than an atomically replaced file: each record is one ``write`` of
    a whole line followed by flush and fsync, and a line cut short by a crash is dropped on the
    next open, so what was recorded is always a prefix of the search.
    """

    def __init__(self, path, header: dict):
        self.path = Path(path)
        self.header = _normalized(header)
        self._file = None

    def open(self) -> dict[int, Trial]:
        """Lock the file, read back its finished trials (validating the header), keep it open.

        The file is locked before it is read, so that two searches never share it. A file killed
        while its header or a trial was being written ends in a line without its newline: that
        line is cut off, and the next record is appended where it began. Nothing is cut or
        written before the file is known to be this search's checkpoint (its complete lines are
        this search's header and trial records, or it holds only the start of that header).
        """
        if self.path.is_dir():
            raise ReclabError(f"checkpoint {str(self.path)!r} is a folder; pass a file path")
        if not self.path.parent.is_dir():
            raise ReclabError(f"checkpoint folder {str(self.path.parent)!r} does not exist; create it "
                              f"or pass another checkpoint path")
        try:
            handle = open(self.path, "a+b")   # created if missing, never truncated by opening
        except OSError as error:
            raise ReclabError(f"cannot open checkpoint {str(self.path)!r}: {error.strerror}") from None
        try:
            _lock(handle, self.path)
            handle.seek(0)
            content = handle.read()
            complete = content[:content.rfind(b"\n") + 1]
            header = (json.dumps(self.header, allow_nan=False) + "\n").encode("utf-8")
            if not complete and content and not header.startswith(content):
                raise ReclabError(f"{str(self.path)!r} is not a reclab tuning checkpoint (it holds "
                                  f"{len(content)} bytes that are not the start of this search's header, "
                                  f"and no complete line); pass another checkpoint path")
            try:
                lines = complete.decode("utf-8").splitlines()
            except UnicodeDecodeError as error:
                line = complete[:error.start].count(b"\n") + 1
                raise ReclabError(f"checkpoint {str(self.path)!r} line {line} is not UTF-8 text; it was "
                                  f"not written by reclab.tune (pass another checkpoint path)") from None
            restored: dict[int, Trial] = {}
            if lines:
                self._check_header(self._parse(lines[0], 1))
                for number, line in enumerate(lines[1:], start=2):
                    record = self._parse(line, number)
                    try:
                        trial = Trial.from_record(record)
                    except (KeyError, TypeError, ValueError) as error:
                        raise ReclabError(f"checkpoint {str(self.path)!r} line {number} is not a trial "
                                          f"record ({error}); it was not written by reclab.tune") from None
                    self._check_score(trial, record["score"], number)
                    restored[trial.number] = trial
            if len(complete) < len(content):
                handle.truncate(len(complete))
                handle.seek(0, os.SEEK_END)
            if not lines:
                self._write(handle, self.header)
        except BaseException:
            handle.close()
            raise
        self._file = handle
        return restored

    @staticmethod
    def _write(handle, record: dict) -> None:
        handle.write((json.dumps(record, allow_nan=False) + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())

    def _check_score(self, trial: Trial, recorded, number: int) -> None:
        """A recorded score passes the checks a computed one does (an edited file could claim any)."""
        metric = self.header["metric"]
        problem = (_score_problem(metric, recorded) if trial.status == "ok" else
                   None if trial.status == "failed" else f"status {trial.status!r} is not 'ok' or 'failed'")
        if problem is None and trial.ok and trial.metrics.get(metric) != trial.score:
            problem = f"its score {trial.score!r} is not its {metric} {trial.metrics.get(metric)!r}"
        if problem is not None:
            raise ReclabError(f"checkpoint {str(self.path)!r} line {number} (trial {trial.number}): "
                              f"{problem}; it was not written by reclab.tune (pass another checkpoint path)")

    def _parse(self, line: str, number: int) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReclabError(f"checkpoint {str(self.path)!r} line {number} is not valid JSON "
                              f"({error}); only the last line may be incomplete") from None
        if not isinstance(record, dict):
            raise ReclabError(f"checkpoint {str(self.path)!r} line {number} is not a JSON object")
        return record

    def _check_header(self, stored: dict) -> None:
        if stored.get("format") != _CHECKPOINT_FORMAT:
            raise ReclabError(f"{str(self.path)!r} is not a reclab tuning checkpoint (its first line "
                              f"has no format {_CHECKPOINT_FORMAT!r}); pass another checkpoint path")
        differences = []
        for key in self.header:
            if key in ("format", "kind"):
                continue
            here, there = self.header[key], stored.get(key)
            if here != there:
                if key in ("train", "valid"):
                    differences.append(f"{key} data differ (fingerprint {str(there)[:12]}... in the "
                                       f"checkpoint, {str(here)[:12]}... now)")
                else:
                    differences.append(f"{key} is {there!r} in the checkpoint but {here!r} now")
        if differences:
            raise ReclabError(f"checkpoint {str(self.path)!r} belongs to a different search: "
                              + "; ".join(differences)
                              + ". Use the same settings to resume it, or another checkpoint path "
                                "(or delete the file) to start a new search")

    def append(self, trial: Trial) -> None:
        self._write(self._file, trial.to_record())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# -- the search ----------------------------------------------------------------------------------------
def _process_context():
    """Start worker processes clean (no inherited numba or BLAS threads) and quickly.

    ``forkserver`` (POSIX) forks workers from a server process that imported reclab once, so a
    worker starts in milliseconds instead of re-importing numpy, numba and scikit-optimize;
    ``spawn`` elsewhere. A plain ``fork`` of this process could copy the thread pools of numba and
    BLAS in a locked state.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Effective when this process first starts its fork server (it then serves every pool).
        context.set_forkserver_preload(["__main__", "reclab.tuning"])
        return context
    return multiprocessing.get_context("spawn")


class _OutOfTime(Exception):
    """Raised between trials when the search's ``time_budget`` is spent."""


class _Search:
    """Runs batches of points (restored from the checkpoint or evaluated), in trial order.

    A point is ``(model index, params)``. With a ``deadline`` (``time.perf_counter()`` value),
    no trial starts that would end after it at the mean duration of the trials run so far:
    :meth:`run` keeps the trials finished so far and raises :class:`_OutOfTime`.
    """

    def __init__(self, job: _TrialJob, n_jobs: int, restored: dict, checkpoint, callbacks,
                 deadline: float | None = None):
        self.job = job
        self.n_jobs = n_jobs
        self.restored = restored
        self.checkpoint = checkpoint
        self.callbacks = callbacks
        self.deadline = deadline
        self.trials: list[Trial] = []
        self._pool = None
        self._seconds: list[float] = []   # durations of the trials this call ran

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if self._pool is not None:
            # After an error (a callback stopping the search, Ctrl-C) do not wait for running fits.
            self._pool.shutdown(wait=exc_type is None or exc_type is _OutOfTime,
                                cancel_futures=True)
        if self.checkpoint is not None:
            self.checkpoint.close()

    def _executor(self):
        if self._pool is None:
            threads = max(1, (os.cpu_count() or 1) // self.n_jobs)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.n_jobs, mp_context=_process_context(),
                initializer=_init_worker, initargs=(self.job, threads))
        return self._pool

    def _finished(self, trial: Trial) -> None:
        self._seconds.append(trial.seconds)
        if self.checkpoint is not None:
            self.checkpoint.append(trial)
        for callback in self.callbacks:
            callback(trial)

    def _out_of_time(self) -> bool:
        if self.deadline is None:
            return False
        expected = float(np.mean(self._seconds)) if self._seconds else 0.0
        return time.perf_counter() + expected >= self.deadline

    def run(self, points: list[tuple[int, dict]]) -> list[Trial]:
        """Trials of ``points`` (numbered after the trials so far), ordered by number."""
        first = len(self.trials)
        done: dict[int, Trial] = {}
        pending = []
        for number, (index, params) in enumerate(points, start=first):
            previous = self.restored.get(number)
            name = type(self.job.models[index]).__name__
            if previous is None:
                pending.append((number, index, params))
            elif previous.params != params or previous.model not in (None, name):
                raise ReclabError(f"checkpoint trial {number} has {previous.model or 'model'} "
                                  f"parameters {previous.params} but the search now proposes "
                                  f"{name} {params}: the search is not reproducing its "
                                  f"recorded sequence (another scikit-optimize or reclab version?); "
                                  f"start a new checkpoint")
            else:
                done[number] = previous
        if self.n_jobs == 1:
            for number, index, params in pending:
                if self._out_of_time():
                    break
                done[number] = self.job.run(number, index, params)
                self._finished(done[number])
        elif pending and not self._out_of_time():
            pool = self._executor()
            futures = [pool.submit(_run_in_worker, *point) for point in pending]
            try:
                for future in concurrent.futures.as_completed(futures):
                    trial = future.result()
                    done[trial.number] = trial
                    self._finished(trial)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        batch = []
        for number in range(first, first + len(points)):
            if number not in done:   # only when out of time: keep the finished prefix
                self.trials.extend(batch)
                raise _OutOfTime()
            batch.append(done[number])
        self.trials.extend(batch)
        return batch


def _gbrt_surrogate(random_state):
    """skopt's GBRT surrogate, repaired for current scikit-learn and numpy.

    skopt 0.10.2 lists ``BaseEstimator`` before ``RegressorMixin`` (scikit-learn >= 1.6 then
    does not see a regressor) and calls ``np.in1d`` (removed in numpy 2.4).
    """
    from sklearn.ensemble import GradientBoostingRegressor
    from skopt.learning import GradientBoostingQuantileRegressor

    class _QuantileGBRT(GradientBoostingQuantileRegressor):
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.estimator_type = "regressor"
            return tags

        def predict(self, X, return_std=False, return_quantiles=False):
            if return_std and not return_quantiles and {0.16, 0.5, 0.84} <= set(self.quantiles):
                low, mean, high = (self.regressors_[self.quantiles.index(q)].predict(X)
                                   for q in (0.16, 0.5, 0.84))
                return mean, (high - low) / 2.0
            return super().predict(X, return_std=return_std, return_quantiles=return_quantiles)

    return _QuantileGBRT(base_estimator=GradientBoostingRegressor(n_estimators=30, loss="quantile"),
                         random_state=random_state)


#: SMBO's acquisition: expected improvement over the best score so far, with no required margin
#: (``xi=0``). scikit-optimize's default, ``gp_hedge`` with ``xi=0.01``, asks EI and PI for an
#: improvement of 0.01 *in the metric's units*: for precision@10 (about 0.2, good points within
#: 0.005 of each other) no point promises that, so both pick by uncertainty alone and SMBO
#: explores like random search (benchmarks/tuning.py measures it). ``xi=0`` does not depend on
#: the metric's scale. The initial points are a Latin hypercube (spread over the space rather
#: than drawn independently). Both are part of a checkpoint's identity.
SMBO_OPTIONS = {"acq_func": "EI", "acq_func_kwargs": {"xi": 0.0},
                "initial_point_generator": "lhs"}


def _optimizer(space: dict, estimator: str, n_initial: int, seed: int, **options):
    from skopt import Optimizer

    base = _gbrt_surrogate(seed) if estimator == "GBRT" else estimator
    return Optimizer(list(space.values()), base_estimator=base, n_initial_points=n_initial,
                     random_state=seed, **{**SMBO_OPTIONS, **options})


class _Surrogate:
    """One model's SMBO optimizer, and the trials it has not been told yet.

    Points are told just before the next ask (never after the last trial, which would only fit
    the surrogate for nothing). A failed point is told the worst objective among this model's
    finished trials so far, so that the surrogate moves away from it without its scale being
    distorted; failed points before any trial finished wait and are told that value once one
    does (untold, the optimizer stays in its random initial phase and simply draws again).
    """

    def __init__(self, space: dict, estimator: str, n_initial: int, seed: int, sign: float):
        self.optimizer = _optimizer(space, estimator, n_initial, seed)
        self.names = list(space)
        self.sign = sign
        self.worst = None     # worst objective of the finished trials so far
        self.waiting = []     # failed points told before any trial finished
        self.untold = []      # (point, trial) pairs run since the last ask

    def contains(self, params: dict) -> bool:
        return [params[name] for name in self.names] in self.optimizer.space

    def point(self, params: dict) -> list:
        return [params[name] for name in self.names]

    def _tell(self) -> None:
        if not self.untold:
            return
        asked = [list(x) for x, _ in self.untold]
        batch = [trial for _, trial in self.untold]
        self.untold = []
        objectives = [self.sign * trial.score for trial in batch if trial.ok]
        if objectives:
            self.worst = max(objectives if self.worst is None else [self.worst, *objectives])
        if self.worst is None:
            self.waiting.extend(asked)
            return
        values = [self.sign * trial.score if trial.ok else self.worst for trial in batch]
        self.optimizer.tell(self.waiting + asked, [self.worst] * len(self.waiting) + values)
        self.waiting = []

    def ask(self, size: int, n_jobs: int) -> list[list]:
        self._tell()
        return [self.optimizer.ask()] if n_jobs == 1 else self.optimizer.ask(n_points=size)


def _run_smbo(search: _Search, spaces: list, n_trials: int, seed: int, estimator: str,
              n_initial: int, n_jobs: int, sign: float, starts: list) -> None:
    """SMBO of each model in its own space, in rounds: each model (in order) proposes
    ``n_jobs`` points and the round's trials run as one batch, until ``n_trials`` trials."""
    surrogates = [_Surrogate(space, estimator, n_initial, seed, sign) for space in spaces]
    for (index, params), trial in zip(starts, search.run(starts[:n_trials])):
        surrogate = surrogates[index]
        if surrogate.contains(params):   # a start point outside the space is not told
            surrogate.untold.append((surrogate.point(params), trial))
    while len(search.trials) < n_trials:
        points, asked = [], []
        for index, surrogate in enumerate(surrogates):
            size = min(n_jobs, n_trials - len(search.trials) - len(points))
            if size <= 0:
                break
            for x in surrogate.ask(size, n_jobs):
                asked.append((index, x))
                points.append((index, dict(zip(surrogate.names, map(to_python, x)))))
        for (index, x), trial in zip(asked, search.run(points)):
            surrogates[index].untold.append((x, trial))


def _round_robin(streams: list, n: int) -> list:
    """``n`` points taken from the streams in turn (one from each stream per round), skipping
    exhausted streams."""
    streams = [list(stream) for stream in streams]
    taken, position = [], [0] * len(streams)
    while len(taken) < n and any(p < len(stream) for p, stream in zip(position, streams)):
        for index, stream in enumerate(streams):
            if len(taken) < n and position[index] < len(stream):
                taken.append(stream[position[index]])
                position[index] += 1
    return taken


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_models(models: list, spaces: list) -> list:
    for model in models:
        if not isinstance(model, Recommender):
            raise ReclabError(f"model must be a reclab model (reclab.models) or a list of them, "
                              f"got {type(model).__name__}")
    if len(spaces) != len(models):
        raise ReclabError(f"{len(models)} models need {len(models)} search spaces (one per model, "
                          f"in the same order), got {len(spaces)}")
    names = [type(model).__name__ for model in models]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ReclabError(f"models lists {twice[0]} twice; search each model class once (its "
                          f"space can hold every value worth trying)")
    parsed = [parse_space(space) for space in spaces]
    for model, space in zip(models, parsed):
        _check_space_for_model(space, model)
    return parsed


def _start_points(models: list, spaces: list, starts) -> list[tuple[int, dict]]:
    """``(model index, params)`` of every start point: each model's own parameters first, then
    the extra ones (each completed with the model's own values), without repeats."""
    if starts is None or (isinstance(starts, (list, tuple)) and len(starts) == 0):
        starts = [[] for _ in models]
    elif len(models) == 1 and isinstance(starts, (list, tuple)) and all(
            isinstance(point, Mapping) for point in starts):
        starts = [starts]
    if not isinstance(starts, (list, tuple)) or len(starts) != len(models) or not all(
            isinstance(points, (list, tuple)) and all(isinstance(p, Mapping) for p in points)
            for points in starts):
        raise ReclabError(f"starts must be a list of parameter dicts (one model) or one such list "
                          f"per model, got {starts!r}")
    out = []
    for index, (model, space, extra) in enumerate(zip(models, spaces, starts)):
        given = {name: to_python(model.get_params()[name]) for name in space}
        seen = []
        for point in [{}, *extra]:
            unknown = sorted(set(point) - set(space))
            if unknown:
                raise ReclabError(f"start point {dict(point)} of {type(model).__name__} sets "
                                  f"{unknown}, which {'are' if len(unknown) > 1 else 'is'} not in "
                                  f"its search space {list(space)}")
            params = {name: to_python(point.get(name, given[name])) for name in space}
            if params not in seen:
                seen.append(params)
                out.append((index, params))
    return out


def tune(model, space, train, valid, method: str = "smbo", n_trials: int | None = None,
         metric: str = "precision@10", seed: int = 0, k=None, estimator: str = "GP",
         n_initial: int = 10, n_jobs: int = 1, callbacks=(), checkpoint=None,
         relevance_threshold: float | None = None, starts=None, folds: int = 1,
         time_budget: float | None = None, progress=False) -> TuningResult:
    """Search a model's hyperparameters (or several models' and pick one) on validation data.

    Parameters
    ----------
    model : reclab model or list of reclab models
        Supplies the class, the fixed parameters and the start point; it is cloned for every
        trial, never fitted or changed. A list searches each model in its own space (``space``
        then a list of the same length), under one trial budget: see "Several models".
    space : mapping, or list of mappings
        Search space in :mod:`reclab.space` format (data or scikit-optimize dimensions); every
        key must be a parameter of ``model``.
    train, valid : Interactions
        Trials fit on ``train`` and are scored on ``valid`` (same users and items, as
        ``reclab.split`` produces). Keep the test split out of tuning.
    method : {"grid", "random", "smbo"}
        See the module docstring.
    n_trials : int, optional
        Number of trials, >= 1, start points included. Default: 30 for random and SMBO; for
        grid the start points and the whole grid (an explicit value below that is an error).
    metric : str
        Validation metric, a key of ``evaluate(...).summary``: ``"precision@10"``, ``"ndcg@10"``,
        ..., maximized; ``"rmse"`` and ``"mae"`` (rating models) are minimized.
    seed : int
        Seed of random sampling, of the SMBO optimizer and of the validation folds (not of the
        model: set the model's own ``seed`` parameter).
    k : int or sequence of int, optional
        Cut-offs of the validation report; default the metric's cut-off (10 for rmse / mae). Must
        include the metric's cut-off. Every metric at every cut-off is kept in ``Trial.metrics``.
    estimator : {"GP", "RF", "ET", "GBRT"}
        SMBO surrogate model.
    n_initial : int
        SMBO points before the surrogate is used (start points count), >= 1.
    n_jobs : int
        Trials evaluated at once, in worker processes (see the module docstring).
    callbacks : callable or sequence of callables
        Each called as ``callback(trial)`` after each trial this call finishes.
    checkpoint : str or os.PathLike, optional
        JSON-lines file recording the search as it goes; an existing file of the same search is
        resumed.
    relevance_threshold : float, optional
        Passed to ``evaluate``: only validation ratings at or above it are relevant.
    starts : list of dict, optional
        Extra start points (parameter dicts; a missing parameter takes the model's value),
        evaluated after the model's own parameters and before the search proper; with a list of
        models, one such list per model.
    folds : int
        Validation folds, >= 1: each trial is scored on the ``(fit, holdout)`` pairs of
        :func:`reclab.split.validation_folds` (``train, valid`` first, then disjoint holdouts of
        the same size carved from ``train``), and its score is their mean.
    time_budget : float, optional
        Seconds; no trial starts that would end after them (at the mean trial duration so far),
        and the search returns what it found (``result.stopped == "time_budget"``).
    progress : bool or file-like
        Show a progress bar (tqdm: trial i of n, the best score so far, the time left); True
        writes it to standard error, a file object to that file.

    Returns
    -------
    TuningResult

    Raises
    ------
    ReclabError
        For a bad argument or space (naming it), a checkpoint of another search, a metric the
        model's report does not have, or when every trial failed.

    Examples
    --------
    >>> train, test = rl.split.random_holdout(data, test_frac=0.2, seed=42)   # doctest: +SKIP
    >>> fit, valid = rl.split.random_holdout(train, test_frac=0.2, seed=43)   # doctest: +SKIP
    >>> space = {"factors": {"type": "int", "low": 16, "high": 256, "prior": "log-uniform"},
    ...          "regularization": {"type": "real", "low": 1.0e-2, "high": 1.0e3,
    ...                             "prior": "log-uniform"}}
    >>> model = rl.models.ImplicitALS(seed=0)                                  # doctest: +SKIP
    >>> result = rl.tune(model, space, fit, valid, method="smbo", n_trials=30, folds=3)  # doctest: +SKIP
    >>> tuned = rl.models.clone(model).set_params(**result.best_params).fit(train)  # doctest: +SKIP
    """
    several = isinstance(model, (list, tuple))
    models = _as_list(model)
    if not models:
        raise ReclabError("model is an empty list; give a reclab model or a list of them")
    spaces = _check_models(models, _as_list(space) if several else [space])
    method = check_choice("method", method, METHODS)
    metric, cut = _check_metric(metric)
    ks = _check_k(k, cut)
    seed = check_seed(seed)
    if not isinstance(estimator, str) or estimator.upper() not in ESTIMATORS:
        raise ReclabError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    estimator = estimator.upper()
    n_initial = check_int("n_initial", n_initial, low=1)
    n_jobs = check_int("n_jobs", n_jobs, low=1)
    folds = check_int("folds", folds, low=1)
    if time_budget is not None and (isinstance(time_budget, bool) or not isinstance(
            time_budget, (int, float)) or not time_budget > 0):
        raise ReclabError(f"time_budget must be a number of seconds > 0 or None, got {time_budget!r}")
    callbacks = _check_callbacks(callbacks)
    train, valid = _check_data(train, "train"), _check_data(valid, "valid")
    if train.shape != valid.shape or not np.array_equal(train.user_ids, valid.user_ids) \
            or not np.array_equal(train.item_ids, valid.item_ids):
        raise ReclabError(f"train {train.shape} and valid {valid.shape} must share users and items "
                          f"(the same ids, as reclab.split produces)")
    check_threshold(relevance_threshold)  # not converted: the checkpoint header records it as given
    started = _start_points(models, spaces, starts)

    points = None
    if method == "grid":
        points = [(index, params) for index, space in enumerate(spaces)
                  for params in grid_points(space) if (index, params) not in started]
        size = len(started) + len(points)
        if n_trials is not None and check_int("n_trials", n_trials, low=1) < size:
            raise ReclabError(f"the grid has {size} points (start points included) but n_trials="
                              f"{n_trials}; a grid search evaluates every point: pass n_trials=None "
                              f"(or >= {size}), shrink the grid, or use method 'random' or 'smbo'")
        n_trials = size
    else:
        n_trials = _DEFAULT_N_TRIALS if n_trials is None else check_int("n_trials", n_trials, low=1)

    from reclab.split import validation_folds

    job = _TrialJob(tuple(models), tuple(validation_folds(train, valid, folds, seed)), metric, ks,
                    relevance_threshold)
    store = None
    restored: dict[int, Trial] = {}
    if checkpoint is not None:
        store = _Checkpoint(checkpoint, _header(models, spaces, method, metric, ks,
                                                relevance_threshold, seed, estimator, n_initial,
                                                n_jobs, train, valid, folds, started))
        restored = store.open()
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0   # objective = sign * score, minimized
    bar = _ProgressBar(progress, n_trials, metric, sign, time_budget)
    deadline = None if time_budget is None else time.perf_counter() + float(time_budget)
    stopped = None
    with _Search(job, n_jobs, restored, store, (*callbacks, bar.update), deadline) as search, bar:
        try:
            if method == "grid":
                search.run(started + points)
            elif method == "random":
                remaining = max(0, n_trials - len(started))
                shares = [len(range(index, remaining, len(spaces))) for index in range(len(spaces))]
                streams = [[(index, params) for params in sample(space, share, seed)]
                           for index, (space, share) in enumerate(zip(spaces, shares))]
                search.run((started + _round_robin(streams, remaining))[:n_trials])
            else:
                _run_smbo(search, spaces, n_trials, seed, estimator, n_initial, n_jobs, sign,
                          started)
        except _OutOfTime:
            stopped = "time_budget"
    trials = tuple(search.trials)

    finished = [trial for trial in trials if trial.ok]
    if not finished:
        if not trials:
            raise ReclabError(f"no trial finished within time_budget={time_budget} s; give the "
                              f"search more time")
        raise ReclabError(f"all {len(trials)} trials failed; the first error was: {trials[0].error}")
    best = _best(finished, greater_is_better=sign < 0)
    names = [type(model).__name__ for model in models]
    return TuningResult(best_params=dict(best.params), best_score=best.score, trials=trials,
                        method=method, metric=metric, greater_is_better=sign < 0,
                        space=spaces[names.index(best.model)], seed=seed, estimator=estimator,
                        best_model=best.model, spaces=dict(zip(names, spaces)), folds=folds,
                        stopped=stopped)


class _ProgressBar:
    """tqdm bar of a search: trial i of n, the best score so far, the time left.

    "Time left" is tqdm's estimate from the mean trial time, capped by the time budget.
    """

    def __init__(self, progress, n_trials: int, metric: str, sign: float, time_budget):
        self.bar = None
        self.metric, self.sign, self.best = metric, sign, None
        self.end = None if time_budget is None else time.perf_counter() + float(time_budget)
        if progress is False or progress is None:
            return
        from tqdm import tqdm   # plain text: Jupyter shows it in place, reclab run in its log

        self.bar = tqdm(total=n_trials, desc="tuning", unit="trial", dynamic_ncols=True,
                        file=None if progress is True else progress, mininterval=0)

    def update(self, trial: Trial) -> None:
        if self.bar is None:
            return
        if trial.ok and (self.best is None or self.sign * trial.score < self.sign * self.best):
            self.best = trial.score
        shown = {f"best {self.metric}": "-" if self.best is None else f"{self.best:.4f}"}
        if self.end is not None:
            shown["budget left"] = f"{max(0.0, self.end - time.perf_counter()):.0f} s"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()


def _header(models, spaces, method, metric, ks, relevance_threshold, seed, estimator, n_initial,
            n_jobs, train, valid, folds, starts) -> dict:
    """What identifies a search: a checkpoint resumes only a search with the same header.

    One model's header holds its class, fixed parameters and space as such; a list of models
    holds lists of them.
    """
    described = [(f"{type(model).__module__}.{type(model).__qualname__}",
                  {name: value for name, value in model.get_params().items() if name not in space},
                  space_to_dict(space)) for model, space in zip(models, spaces)]
    classes, fixed, data = (list(part) for part in zip(*described))
    if len(models) == 1:
        classes, fixed, data = classes[0], fixed[0], data[0]
    header = {"kind": "header", "format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION,
              "method": method, "space": data, "metric": metric, "k": list(ks),
              "relevance_threshold": relevance_threshold,
              "model": classes, "model_params": fixed,
              "train": train.fingerprint(), "valid": valid.fingerprint(),
              "folds": folds, "starts": [[index, params] for index, params in starts]}
    if method in ("random", "smbo") or folds > 1:
        header["seed"] = seed
    if method == "smbo":
        # n_jobs changes SMBO's sequence (batches of asked points); not that of grid or random.
        header.update(estimator=estimator, n_initial=n_initial, n_jobs=n_jobs,
                      smbo_options=_normalized(SMBO_OPTIONS))
    return header


# -- is the space right? -----------------------------------------------------------------------------
BOUNDARY_TOLERANCE = 0.03


def boundary_warnings(result: TuningResult, tolerance: float = BOUNDARY_TOLERANCE) -> list[str]:
    """Warnings for each best parameter value at (or near, or beyond) a bound of its range.

    A value whose position in its range, ``(v - low) / (high - low)`` (in ``log v`` for a
    log-uniform range), is within ``tolerance`` of 0 or 1 suggests that the optimum lies at or
    beyond that bound: the space should be widened there. Categorical parameters have no bounds.

    Returns
    -------
    list of str
        One sentence per such parameter of the best model, naming the value, the bound and a
        wider bound to try; empty when every best value lies inside its range.
    """
    result = _check_result(result)
    warnings = []
    for name, dimension in result.space.items():
        if not isinstance(dimension, (Integer, Real)) or name not in result.best_params:
            continue
        value, low, high = result.best_params[name], dimension.low, dimension.high
        log = dimension.prior == "log-uniform"
        if log and value <= 0:
            position = -1.0
        else:
            scale = (lambda x: math.log(x)) if log else (lambda x: x)
            position = (scale(value) - scale(low)) / (scale(high) - scale(low))
        if tolerance < position < 1.0 - tolerance:
            continue
        upper = position >= 1.0 - tolerance
        bound = high if upper else low
        if log:
            wider = high * 4 if upper else low / 4
        else:
            wider = high + (high - low) if upper else low - (high - low)
        if isinstance(dimension, Integer):
            wider = max(1, int(round(wider))) if log else int(round(wider))
        else:
            wider = float(f"{wider:.3g}")
        where = ("beyond" if position > 1 or position < 0 else "at" if value == bound else "near")
        warnings.append(f"{result.best_model}: best {name} = {_short(value)} is {where} the "
                        f"{'upper' if upper else 'lower'} bound {_short(bound)} of its space "
                        f"[{_short(low)}, {_short(high)}]; the optimum may lie beyond it: widen the "
                        f"space ({'high' if upper else 'low'}: {_short(wider)})")
    return warnings


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- plots ---------------------------------------------------------------------------------------------
def _check_result(result) -> TuningResult:
    if not isinstance(result, TuningResult):
        raise ReclabError(f"expected a TuningResult from reclab.tune, got {type(result).__name__}")
    return result


def _new_figure(**options):
    """A figure that is returned, never shown.

    Made with pyplot so that Jupyter's inline backend (which registers the display of figures)
    is loaded, then closed at once, so that the notebook shows it only where the caller displays it.
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(**options)
    plt.close(fig)
    return fig


def plot_convergence(result: TuningResult):
    """Best validation score so far against the trial number, over every trial's score.

    Failed trials are marked with a red ``x`` on the bottom edge.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; display it in a notebook or save / log it.
    """
    result = _check_result(result)
    fig = _new_figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    numbers_ = np.array([trial.number for trial in result.trials])
    scores = np.array([trial.score for trial in result.trials], dtype=float)
    ok = np.isfinite(scores)
    better = np.fmax if result.greater_is_better else np.fmin
    best = better.accumulate(np.where(ok, scores, np.nan))
    names = list(dict.fromkeys(trial.model for trial in result.trials))
    if len(names) > 1:   # one colour per model, so that the plot says which model each trial was
        models = np.array([trial.model for trial in result.trials])
        for position, name in enumerate(names):
            mine = ok & (models == name)
            ax.scatter(numbers_[mine], scores[mine], s=18, color=f"C{position + 1}",
                       label=f"{name} trial", zorder=2)
    else:
        ax.scatter(numbers_[ok], scores[ok], s=18, color="0.55", label="trial", zorder=2)
    ax.step(numbers_, best, where="post", color="C0", lw=2, label="best so far", zorder=3)
    if (~ok).any():
        ax.scatter(numbers_[~ok], np.zeros((~ok).sum()), marker="x", color="C3", label="failed",
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=4)
    ax.set_xlabel("trial")
    ax.set_ylabel(result.metric + ("" if result.greater_is_better else " (lower is better)"))
    ax.set_title(f"{result.method} search: best {result.metric} = {result.best_score:.4g}"
                 + (f" ({result.best_model})" if len(names) > 1 else ""))
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_objective(result: TuningResult, n_points: int = 20, n_samples: int = 150):
    """How the validation score depends on each searched parameter.

    For SMBO results: scikit-optimize's partial dependence plot (``skopt.plots.plot_objective``)
    of a surrogate of the same kind as the search's, fitted to the finished trials' scores (not
    to the negated objective the optimizer minimized): the diagonal shows the score against one
    parameter averaged over the others, the lower triangle pairs of parameters, with the trials
    as black dots and the best trial as a red star. ``n_points`` (grid points per axis) and
    ``n_samples`` (points averaged over) are passed on, smaller than skopt's defaults (40, 250)
    because tree surrogates make the plot slow; the samples are drawn with ``result.seed`` so
    the figure is reproducible.

    For grid and random results: one scatter plot of score against each parameter (log axis for
    log-uniform ranges), the best trial as a red star.

    With several models searched, the plot is of the best model's space and trials.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown.
    """
    result = _check_result(result)
    mine = [trial for trial in result.trials
            if trial.model in (None, result.best_model or trial.model)]
    finished = [trial for trial in mine if trial.ok]
    names = list(result.space)
    inside = []
    if result.method == "smbo":
        from skopt.space import Space

        space = Space(list(result.space.values()))   # start points may lie outside the space
        inside = [trial for trial in finished if [trial.params[name] for name in names] in space]
    # A surrogate needs two finished trials in the space; a search stopped earlier (a time
    # budget, failed trials) gets the scatter plot of grid and random results instead.
    if len(inside) >= 2:
        from skopt.plots import plot_objective as skopt_plot_objective

        finished = inside
        sign = -1.0 if result.greater_is_better else 1.0
        optimizer = _optimizer(result.space, result.estimator, 1, result.seed,
                               acq_optimizer="sampling", acq_optimizer_kwargs={"n_points": 100})
        xs = [[trial.params[name] for name in names] for trial in finished]
        optimizer.tell(xs, [trial.score for trial in finished])
        surrogate = optimizer.get_result()
        # skopt's "result" minimum is the smallest told value; the best trial is what we mark.
        best = [result.best_params[name] for name in names]
        from matplotlib.ticker import NullFormatter

        size = 2.4 if len(names) > 1 else 4.0
        fig = _new_figure(figsize=(size * len(names) + 1.5, size * len(names) + 1.5))
        ax = fig.add_subplot()
        fig.subplots_adjust(left=0.14, right=0.86, bottom=0.14, top=0.86)
        state = np.random.get_state()
        np.random.seed(result.seed)   # skopt draws its partial-dependence samples globally
        try:
            skopt_plot_objective(surrogate, n_points=n_points, n_samples=n_samples, minimum=best,
                                 cmap="viridis" if sign < 0 else "viridis_r", ax=ax)
        finally:
            np.random.set_state(state)
        for axis in fig.axes:   # skopt labels every minor log tick of integer ranges: unreadable
            for scale, ticks in ((axis.get_xscale(), axis.xaxis), (axis.get_yscale(), axis.yaxis)):
                if scale == "log":
                    ticks.set_minor_formatter(NullFormatter())
        fig.suptitle(f"partial dependence of {result.metric} ({result.estimator} surrogate, "
                     f"{len(finished)} trials)")
        return fig

    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = _new_figure(figsize=(4 * columns, 3.2 * rows), layout="constrained")
    scores = np.array([trial.score for trial in finished])
    for position, name in enumerate(names):
        ax = fig.add_subplot(rows, columns, position + 1)
        dimension = result.space[name]
        values = [trial.params[name] for trial in finished]
        best_value = result.best_params[name]
        if hasattr(dimension, "categories"):
            labels = [str(value) for value in dimension.categories]
            where = {str(value): index for index, value in enumerate(dimension.categories)}
            # A start point's value outside the list is drawn one step past its end.
            values = [where.get(str(value), len(labels)) for value in values]
            best_value = where.get(str(best_value), len(labels))
            ax.set_xticks(range(len(labels)), labels)
        elif dimension.prior == "log-uniform":
            ax.set_xscale("log")
        ax.scatter(values, scores, s=18, color="C0", alpha=0.8)
        ax.scatter([best_value], [result.best_score], s=150, marker="*", color="C3", zorder=3)
        ax.set_xlabel(name)
        ax.set_ylabel(result.metric)
        ax.grid(alpha=0.3)
    failed = len(mine) - len(finished)
    fig.suptitle(f"{result.method} search: {result.metric} of {len(finished)} finished trials"
                 + (f" ({failed} failed, not shown)" if failed else ""))
    return fig
