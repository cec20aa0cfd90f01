"""Is the space right, and how did the search go: boundary warnings and the convergence and
objective plots of a :class:`reclab.tuning.TuningResult`."""

from __future__ import annotations

import math

import numpy as np

from reclab.errors import ReclabError
from reclab.tuning._results import Trial, TuningResult
from reclab.tuning._search import make_optimizer


BOUNDARY_TOLERANCE = 0.03


def boundary_warnings(result: TuningResult, tolerance: float = BOUNDARY_TOLERANCE,
                      chosen: Trial | None = None) -> list[str]:
    """Warnings for each best parameter value at (or near, or beyond) a bound of its range.

    A value whose position in its range, ``(v - low) / (high - low)`` (in ``log v`` for a
    log-uniform range), is within ``tolerance`` of 0 or 1 suggests that the optimum lies at or
    beyond that bound: the space should be widened there. Categorical parameters have no bounds,
    and a lower bound of 0 is where every non-negative parameter ends (a shrinkage, RP3beta's
    beta, a weight): a best value there is no sign of a space too narrow (it cannot be widened),
    nor is one at or near 1 in a range of integers from 1 (factors, neighbors).

    ``chosen``: the trial that goes on to training when it is not the best
    (:func:`reclab.tuning.choose` with ``"one_se"`` may keep a start point); its values are
    checked too (a start point can lie outside the space), as ``chosen`` rather than ``best``.

    Returns
    -------
    list of str
        One sentence per such parameter, naming the value, the bound and a wider bound to try;
        empty when every value lies inside its range.
    """
    result = _check_result(result)
    warnings = _bound_warnings("best", result.best_model, result.best_params, result.space, tolerance)
    if chosen is not None and (chosen.model, chosen.params) != (result.best_trial.model,
                                                               result.best_trial.params):
        model = chosen.model or result.best_model
        warnings += _bound_warnings("chosen", model, chosen.params,
                                    result.spaces.get(model, result.space), tolerance)
    return warnings


def failure_warnings(result: TuningResult) -> list[str]:
    """One warning when trials of ``result`` failed: how many, and the first failure's model,
    parameters and error (the trials table has every one). A failed trial is recorded and the
    search goes on, so without it a search whose trials mostly failed looks like any other.

    Returns
    -------
    list of str
        One sentence, or empty when no trial failed.
    """
    result = _check_result(result)
    failed = [trial for trial in result.trials if not trial.ok]
    if not failed:
        return []
    first = failed[0]
    return [f"{len(failed)} of {len(result.trials)} trials failed (the trials table has each error); "
            f"the first, trial {first.number} ({first.model} {first.params}): {first.error}"]


def _bound_warnings(label: str, model: str, params: dict, space: dict, tolerance: float) -> list[str]:
    from skopt.space import Integer, Real   # a TuningResult's space holds its dimensions

    warnings = []
    for name, dimension in space.items():
        if not isinstance(dimension, (Integer, Real)) or name not in params:
            continue
        value, low, high = params[name], dimension.low, dimension.high
        log = dimension.prior == "log-uniform"
        if log and value <= 0:
            position = -1.0
        else:
            scale = (lambda x: math.log(x)) if log else (lambda x: x)
            position = (scale(value) - scale(low)) / (scale(high) - scale(low))
        if tolerance < position < 1.0 - tolerance:
            continue
        upper = position >= 1.0 - tolerance
        if not upper and low == 0 and value >= 0:
            continue
        bound = high if upper else low
        # Widen from the bound, or from the value when it lies beyond it (a start point outside
        # the space), so that the suggested range holds the value well inside.
        edge = max(value, high) if upper else min(value, low)
        if log:
            wider = edge * 4 if upper else (edge if edge > 0 else low) / 4
        elif upper:
            wider = edge + (edge - low)
        else:   # a positive range stays positive (factors, regularization): halve its low bound
            wider = edge - (high - edge) if edge < 0 or edge > high - edge else edge / 2
        if isinstance(dimension, Integer):
            wider = max(1, int(round(wider))) if log or low >= 1 else int(round(wider))
            if wider == bound:   # integers from 1 end there: nothing to widen (at 1 or near it)
                continue
        else:
            wider = float(f"{wider:.3g}")
        where = ("beyond" if position > 1 or position < 0
                 else "at" if math.isclose(value, bound, rel_tol=1e-9) else "near")
        warnings.append(f"{model}: {label} {name} = {_short(value)} is {where} the "
                        f"{'upper' if upper else 'lower'} bound {_short(bound)} of its space "
                        f"[{_short(low)}, {_short(high)}]; the optimum may lie beyond it: widen the "
                        f"space ({'high' if upper else 'low'}: {_short(wider)})")
    return warnings


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
        optimizer = make_optimizer(result.space, result.estimator, 1, result.seed,
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
