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
    ``mae``); its surrogate is told every value worse than the median of the trials so far as
    that median (``SMBO_OPTIONS["objective_cap"]``), so that it models the better half in detail.

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
smaller than its noise. With ``folds=k``, each trial is scored on ``k`` disjoint holdouts
(:func:`reclab.split.validation_folds`: ``(train, valid)`` and ``k - 1`` more of the same size
carved from ``train``, seeded by ``seed``: per-user interactions, or whole users or items when
``valid`` holds out cold ones), and its score is their mean;
``Trial.fold_scores`` keeps each. The Gaussian-process surrogate models the objective as
noisy (scikit-optimize's ``noise="gaussian"``, a fitted white-noise level); the tree surrogates
average over leaves.

Even so, the best trial may lead the start point by less than the folds can tell apart:
:func:`choose` with ``"one_se"`` then keeps the start point (the one-standard-error rule over the
paired per-fold differences), and says why (``Choice.note``). The search itself is the same.

Several models
--------------
``tune([m1, m2], [space1, space2], ...)`` searches each model in its own space under one budget
of ``n_trials``: after the start points of every model, the models take turns (one grid point,
random draw or SMBO proposal each; each model has its own SMBO optimizer and random stream,
seeded alike: models whose spaces have the same shape draw the same points of it). The
best trial over all models wins; ``result.best_model`` names it and every trial names its model.

Time budget
-----------
With ``time_budget`` (seconds), no trial starts that would end after the budget, at the mean
duration of the trials run so far in the call (so a search overruns it by less than one trial,
and only when a trial takes longer than the mean; with ``n_jobs`` > 1, by less than one trial
per worker): the search returns the trials finished so far (``result.stopped ==
"time_budget"``), a valid result, and with a checkpoint a later call continues it. The budget
counts from the first trial the call runs: the set-up (importing scikit-optimize, carving the
folds) and a resumed search's replay of its recorded trials come before it, so that every call
makes progress.

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
number of folds and, on a cold split, that they hold out whole users or items, train and
validation fingerprints), then one line per finished trial, appended and fsynced as the trial finishes.
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

from typing import Mapping

from reclab._validate import check_choice, check_int, check_seed, check_threshold
from reclab.data import check_held_out
from reclab.errors import ReclabError
from reclab.metrics import check_metric_name
from reclab.models.base import Recommender
from reclab.space import grid_points, parse_space, sample, to_python
from reclab.tuning._checkpoint import Checkpoint, search_header
from reclab.tuning._diagnostics import (BOUNDARY_TOLERANCE, boundary_warnings, failure_warnings,
                                        plot_convergence, plot_objective)
from reclab.tuning._objective import (TrialJob, check_callbacks, check_data,
                                      check_report_cutoffs, check_space_for_model)
from reclab.tuning._results import (ESTIMATORS, LOWER_IS_BETTER, METHODS, SELECT_RULES, Choice,
                                    Trial, TuningResult, choose, pick_best)
from reclab.tuning._search import SMBO_OPTIONS, OutOfTime, ProgressBar, Search, round_robin, run_smbo

# The package's modules: _results (Trial, TuningResult), _objective (argument checks, one trial
# over the validation folds), _search (the trial loop, time budget, progress bar, SMBO's
# optimizers), _checkpoint (checkpoint and resume), _diagnostics (boundary warnings, plots).
__all__ = ["METHODS", "ESTIMATORS", "LOWER_IS_BETTER", "SMBO_OPTIONS", "BOUNDARY_TOLERANCE",
           "SELECT_RULES", "Trial", "TuningResult", "Choice", "tune", "choose",
           "boundary_warnings", "failure_warnings", "plot_convergence", "plot_objective"]

_DEFAULT_N_TRIALS = 30


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
        check_space_for_model(space, model)
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
            try:   # a value of another type failed in scikit-optimize, after the trials before it
                if point:   # the model's own point may fail as a trial (it is the search's first)
                    type(model)(**{**model.get_params(), **params}).check_params()
            except ReclabError as error:
                raise ReclabError(f"start point {dict(point)} of {type(model).__name__} is refused: "
                                  f"{error}") from None
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
        ``reclab.split`` produces; a ``valid`` all in ``train`` is refused,
        :func:`reclab.data.check_held_out`). Keep the test split out of tuning. When no item of
        ``valid`` has a ``train`` interaction (:func:`reclab.split.cold_items`), each fold ranks
        only its held-out items (:func:`reclab.evaluation.cold_candidates`), the cold-start
        protocol: ranked among every item, they were scored against the warm items the users
        liked but had no test rating of.
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
        Seconds, from the first trial this call runs; no trial starts that would end after them
        (at the mean trial duration so far), and the search returns what it found
        (``result.stopped == "time_budget"``).
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
    metric, cut = check_metric_name(metric)
    ks = check_report_cutoffs(k, cut)
    seed = check_seed(seed)
    if seed >= 2**32:   # else scikit-optimize's own ValueError, after the start trials ran
        raise ReclabError(f"seed must be below 2**32 (scikit-optimize seeds numpy's RandomState "
                          f"with it), got {seed}")
    if not isinstance(estimator, str) or estimator.upper() not in ESTIMATORS:
        raise ReclabError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    estimator = estimator.upper()
    n_initial = check_int("n_initial", n_initial, low=1)
    n_jobs = check_int("n_jobs", n_jobs, low=1)
    folds = check_int("folds", folds, low=1)
    if time_budget is not None and (isinstance(time_budget, bool) or not isinstance(
            time_budget, (int, float)) or not time_budget > 0):
        raise ReclabError(f"time_budget must be a number of seconds > 0 or None, got {time_budget!r}")
    callbacks = check_callbacks(callbacks)
    train, valid = check_data(train, "train"), check_data(valid, "valid")
    check_held_out(None, train, valid, "valid")
    check_threshold(relevance_threshold)  # not converted: the checkpoint header records it as given
    started = _start_points(models, spaces, starts)

    points = None
    if method == "grid":
        # The models take turns, as in random search: a time budget then stops every model's
        # grid part-way, not the later models' before their first point.
        grids = [[(index, params) for params in grid_points(space) if (index, params) not in started]
                 for index, space in enumerate(spaces)]
        points = round_robin(grids, sum(map(len, grids)))
        size = len(started) + len(points)
        if n_trials is not None and check_int("n_trials", n_trials, low=1) < size:
            raise ReclabError(f"the grid has {size} points (start points included) but n_trials="
                              f"{n_trials}; a grid search evaluates every point: pass n_trials=None "
                              f"(or >= {size}), shrink the grid, or use method 'random' or 'smbo'")
        n_trials = size
    else:
        n_trials = _DEFAULT_N_TRIALS if n_trials is None else check_int("n_trials", n_trials, low=1)

    from reclab.split import fold_role, validation_folds

    job = TrialJob(tuple(models), tuple(validation_folds(train, valid, folds, seed)), metric, ks,
                   relevance_threshold, cold_items=fold_role(train, valid) == "item")
    store = None
    restored: dict[int, Trial] = {}
    if checkpoint is not None:
        header = search_header(models, spaces, method, metric, ks, relevance_threshold, seed,
                               estimator, n_initial, n_jobs, train, valid, folds, started)
        store = Checkpoint(checkpoint, header)
        restored = store.open()
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0   # objective = sign * score, minimized
    bar = ProgressBar(progress, n_trials, metric, sign, tuple(restored.values()))
    stopped = None
    with Search(job, n_jobs, restored, store, (*callbacks, bar.update), time_budget) as search, bar:
        bar.search = search   # "budget left" counts down to the search's own deadline
        try:
            if method == "grid":
                search.run(started + points)
            elif method == "random":
                remaining = max(0, n_trials - len(started))
                shares = [len(range(index, remaining, len(spaces))) for index in range(len(spaces))]
                streams = [[(index, params) for params in sample(space, share, seed)]
                           for index, (space, share) in enumerate(zip(spaces, shares))]
                search.run((started + round_robin(streams, remaining))[:n_trials])
            else:
                run_smbo(search, spaces, n_trials, seed, estimator, n_initial, n_jobs, sign,
                         started)
        except OutOfTime:
            stopped = "time_budget"
    trials = tuple(search.trials)

    finished = [trial for trial in trials if trial.ok]
    if not finished:
        if not trials:
            raise ReclabError(f"no trial finished within time_budget={time_budget} s; give the "
                              f"search more time")
        raise ReclabError(f"all {len(trials)} trials failed; the first error was: {trials[0].error}")
    best = pick_best(finished, greater_is_better=sign < 0)
    names = [type(model).__name__ for model in models]
    return TuningResult(best_params=dict(best.params), best_score=best.score, trials=trials,
                        method=method, metric=metric, greater_is_better=sign < 0,
                        space=spaces[names.index(best.model)], seed=seed, estimator=estimator,
                        best_model=best.model, spaces=dict(zip(names, spaces)), folds=folds,
                        stopped=stopped, n_starts=len(started))
