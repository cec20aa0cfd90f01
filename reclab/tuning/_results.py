"""What a search returns: :class:`Trial` (one evaluated point) and :class:`TuningResult` (the
search, its best point and its trials table), and the vocabularies of :func:`reclab.tuning.tune`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from reclab._validate import check_choice
from reclab.errors import ReclabError

METHODS = ("grid", "random", "smbo")
ESTIMATORS = ("GP", "RF", "ET", "GBRT")
#: Rules of :func:`choose`: which trial of a search goes on to training.
SELECT_RULES = ("best", "one_se")
#: Metrics where a smaller value is better; every other metric is maximized.
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


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
    n_starts : int
        The first ``n_starts`` trials are the start points (each model's own parameters, then
        ``starts``), run before the search proper.
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
    n_starts: int = 0

    def __repr__(self) -> str:
        failed = sum(not trial.ok for trial in self.trials)
        return (f"TuningResult(method={self.method!r}, metric={self.metric!r}, "
                f"best_model={self.best_model!r}, "
                f"best_score={self.best_score:.6g}, best_params={self.best_params}, "
                f"trials={len(self.trials)}{f' ({failed} failed)' if failed else ''})")

    @property
    def best_trial(self) -> Trial:
        """The finished trial with the best score (the earliest of equal ones)."""
        return pick_best([trial for trial in self.trials if trial.ok], self.greater_is_better)

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


def pick_best(finished: list, greater_is_better: bool) -> Trial:
    sign = -1.0 if greater_is_better else 1.0
    return min(finished, key=lambda trial: (sign * trial.score, trial.number))


@dataclass(frozen=True)
class Choice:
    """The trial :func:`choose` picked, and why it is not the best one, or that no trial was
    better than another (empty otherwise)."""

    trial: Trial
    note: str = ""


def choose(result: TuningResult, rule: str = "best") -> Choice:
    """The trial whose parameters go on to training.

    ``"best"``: the best trial on validation (``result.best_trial``). ``"one_se"``: the best
    trial, unless its lead over the best start point (a model's own parameters or a ``starts``
    point), averaged over the validation folds, is at most one standard error of that mean
    (the paired per-fold differences' standard deviation over the square root of their
    number); then the start point. This is a paired form of the one-standard-error rule
    (Breiman et al. 1984; Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*,
    7.10) with the start point as the preferred model: a change of parameters that the
    validation folds cannot tell from noise is not made. The textbook rule takes the standard
    error of the best model's own per-fold scores, which is larger (the folds differ more than
    two models do on one fold), so ``one_se`` leaves the start point more readily than it would;
    both ignore that the folds share most of what they fit on (Nadeau & Bengio 2003). It needs
    per-fold scores (``folds >= 2``).

    When every trial scored the same, either rule keeps the first and says so: the search could
    not tell its points apart (a validation metric that is 0 everywhere, for example).
    """
    check_choice("rule", rule, SELECT_RULES)
    if rule == "one_se" and result.folds < 2:   # whichever trial is best
        raise ReclabError(f"rule 'one_se' compares per-fold scores, but the search was scored on "
                          f"{result.folds} validation fold; tune with folds >= 2")
    best = result.best_trial
    scores = {trial.score for trial in result.trials if trial.ok}
    if len(scores) == 1 and sum(trial.ok for trial in result.trials) > 1:
        return Choice(best, f"every trial scored {result.metric} {best.score:.4f} on validation, so the "
                            f"search could not tell its points apart and kept #{best.number}, the first; "
                            f"check the validation split and the metric")
    starts = [trial for trial in result.trials[:result.n_starts] if trial.ok]
    if rule == "best" or not starts or best.number < result.n_starts:
        return Choice(best)
    start = pick_best(starts, result.greater_is_better)
    lead = np.subtract(best.fold_scores, start.fold_scores) * (
        1.0 if result.greater_is_better else -1.0)
    mean, error = float(lead.mean()), float(lead.std(ddof=1) / math.sqrt(lead.size))
    if mean > error:
        return Choice(best)
    return Choice(start, f"kept the start point {start.model} {start.params} "
                         f"({result.metric} {start.score:.4f}): the best trial, #{best.number} "
                         f"({best.score:.4f}), leads it by {mean:.4f} on average over the "
                         f"{lead.size} folds, within one standard error ({error:.4f})")


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _none_to_nan(value) -> float:
    return float("nan") if value is None else float(value)
