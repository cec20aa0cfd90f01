"""Hyperparameter search: grid / random / SMBO, failures, determinism, resuming, parallel trials."""

import dataclasses
import inspect
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import matplotlib
import numpy as np
import pytest

import reclab.datasets
from reclab.errors import ReclabError
from reclab.evaluation import cold_candidates, evaluate
from reclab.models import SVD, Bias, ImplicitALS, ItemKNN, clone
from reclab.space import grid_points, parse_space, sample
from reclab.tuning import (Choice, Trial, TuningResult, choose, failure_warnings, plot_convergence,
                           plot_objective, tune)

matplotlib.use("Agg")

# Small enough that a trial takes milliseconds; the data recipe is repeated by the subprocess
# of the SIGKILL test, so it lives in one string.
DATA_CODE = """
import reclab.datasets
from reclab import split
data = reclab.datasets.synthetic(seed=0, n_users=150, n_items=120, n_ratings=4000)
train, valid = split.random_holdout(data, test_frac=0.2, seed=1)
"""
SVD_SPACE = {"factors": {"type": "int", "low": 2, "high": 30, "prior": "log-uniform"},
             "user_reg": {"type": "real", "low": 0.1, "high": 100.0, "prior": "log-uniform"},
             "item_reg": [1.0, 25.0]}


@pytest.fixture(scope="module")
def splits():
    scope = {}
    exec(DATA_CODE, scope)
    return scope["train"], scope["valid"]


def assert_same_search(a: TuningResult, b: TuningResult):
    """Same trials (numbers, params, outcomes, every metric) and the same best; times may differ."""
    assert len(a.trials) == len(b.trials)
    for x, y in zip(a.trials, b.trials):
        assert (x.number, x.params, x.status, x.error) == (y.number, y.params, y.status, y.error)
        assert x.score == y.score or (math.isnan(x.score) and math.isnan(y.score))
        assert x.metrics == y.metrics
    assert (a.best_params, a.best_score) == (b.best_params, b.best_score)


class Stop(Exception):
    pass


def stop_after(count: int, seen: list):
    def callback(trial):
        seen.append(trial.number)
        if len(seen) == count:
            raise Stop(f"stopped after trial {trial.number}")
    return callback


# -- grid -----------------------------------------------------------------------------------------
def test_grid_enumerates_exactly_the_declared_grid(splits):
    train, valid = splits
    space = {"neighbors": [5, 10, 40], "shrinkage": [0.0, 25.0]}
    # The model's own point comes first; a grid point equal to it is not run twice.
    result = tune(ItemKNN(neighbors=10, shrinkage=0.0), space, train, valid, method="grid")
    start = {"neighbors": 10, "shrinkage": 0.0}
    assert [trial.params for trial in result.trials] == \
        [start] + [point for point in grid_points(space) if point != start]
    assert [trial.number for trial in result.trials] == list(range(6))
    assert all(trial.ok for trial in result.trials)
    # Off the grid, the model's own point is one more trial.
    result = tune(ItemKNN(neighbors=50, shrinkage=0.0), space, train, valid, method="grid")
    assert [trial.params for trial in result.trials] == \
        [{"neighbors": 50, "shrinkage": 0.0}] + grid_points(space)
    # An n_trials above the grid size runs the grid once; below it is refused.
    assert len(tune(ItemKNN(), space, train, valid, method="grid", n_trials=50).trials) == 7
    with pytest.raises(ReclabError, match=r"grid has 7 points \(start points included\) but n_trials=4"):
        tune(ItemKNN(), space, train, valid, method="grid", n_trials=4)
    with pytest.raises(ReclabError, match=r"needs a list of values.*\['factors', 'user_reg'\] are ranges"):
        tune(SVD(), SVD_SPACE, train, valid, method="grid")


def test_trial_scores_are_validation_scores_and_test_is_never_an_argument(splits):
    train, valid = splits
    assert "test" not in inspect.signature(tune).parameters
    result = tune(ItemKNN(), {"neighbors": [5, 40]}, train, valid, method="grid", k=(5, 10))
    best = clone(ItemKNN()).set_params(**result.best_params).fit(train)
    report = evaluate(best, train, valid, k=(5, 10), n_bootstrap=0)
    assert result.best_score == report.summary["precision@10"]
    assert result.best_trial.metrics == report.summary          # every metric at every cut-off
    assert result.best_score == max(trial.score for trial in result.trials)


# -- random ---------------------------------------------------------------------------------------
def test_random_search_draws_the_seeded_sample_within_bounds(splits):
    train, valid = splits
    result = tune(SVD(), SVD_SPACE, train, valid, method="random", n_trials=8, seed=3)
    params = [trial.params for trial in result.trials]
    start = {name: SVD().get_params()[name] for name in SVD_SPACE}
    assert params == [start] + sample(SVD_SPACE, 7, seed=3)   # the model's own point first
    assert all(2 <= p["factors"] <= 30 and 0.1 <= p["user_reg"] <= 100.0 for p in params[1:])
    assert len({p["user_reg"] for p in params}) == 8
    again = tune(SVD(), SVD_SPACE, train, valid, method="random", n_trials=8, seed=3)
    assert_same_search(result, again)
    other = tune(SVD(), SVD_SPACE, train, valid, method="random", n_trials=8, seed=4)
    assert [t.params for t in other.trials] != params


# -- smbo -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["GP", "ET"])
def test_smbo_same_seed_gives_the_same_trials(splits, estimator):
    train, valid = splits
    options = dict(method="smbo", n_trials=5, n_initial=3, estimator=estimator, seed=7)
    first = tune(SVD(), SVD_SPACE, train, valid, **options)
    second = tune(SVD(), SVD_SPACE, train, valid, **options)
    assert_same_search(first, second)
    assert len(first.trials) == 5 and first.method == "smbo"
    assert len({json.dumps(t.params) for t in first.trials}) == 5   # the surrogate proposes new points
    for trial in first.trials[1:]:   # trial 0 is SVD's own point, which may lie outside the space
        assert 2 <= trial.params["factors"] <= 30 and trial.params["item_reg"] in (1.0, 25.0)


def test_smbo_surrogate_is_told_every_objective_capped_at_the_median_of_all_so_far():
    from reclab.tuning._results import Trial
    from reclab.tuning._search import SMBO_OPTIONS, _Surrogate

    assert SMBO_OPTIONS["objective_cap"] == 0.5
    space = parse_space({"x": {"type": "real", "low": 0.0, "high": 1.0}})
    surrogate = _Surrogate(space, "GP", n_initial=2, seed=0, sign=-1.0)   # maximized: told -score

    def run(x, score):
        status = "failed" if math.isnan(score) else "ok"
        surrogate.untold.append(([x], Trial(0, {"x": x}, score, {}, 0.0, status)))

    run(0.1, 0.20)
    run(0.9, 0.05)
    surrogate.ask(1, 1)
    assert surrogate.optimizer.yi == pytest.approx([-0.20, -0.125])   # median of -0.20 and -0.05
    run(0.5, 0.22)
    run(0.4, 0.21)
    run(0.3, float("nan"))   # a failed trial is told the worst objective so far (-0.05)
    proposed = surrogate.ask(1, 1)[0]
    # Told anew, capped at the median of all five (-0.20): the poor and the failed point alike.
    assert surrogate.optimizer.yi == pytest.approx([-0.20, -0.20, -0.22, -0.21, -0.20])
    assert surrogate.objectives == pytest.approx([-0.20, -0.05, -0.22, -0.21, -0.05])
    assert 0.0 <= proposed[0] <= 1.0


@pytest.mark.parametrize("estimator", ["RF", "GBRT"])
def test_smbo_runs_with_tree_surrogates(splits, estimator):
    train, valid = splits
    result = tune(SVD(), SVD_SPACE, train, valid, method="smbo", n_trials=4, n_initial=2,
                  estimator=estimator.lower(), seed=1)
    assert result.estimator == estimator and len(result.trials) == 4
    assert all(trial.ok for trial in result.trials)


# -- failures -------------------------------------------------------------------------------------
def test_failing_trials_are_recorded_and_never_best(splits):
    train, valid = splits
    result = tune(ItemKNN(neighbors=0), {"neighbors": [0, 10, -1, 30]}, train, valid, method="grid")
    statuses = [trial.status for trial in result.trials]
    assert statuses == ["failed", "ok", "failed", "ok"]
    failed = result.trials[0]
    assert math.isnan(failed.score) and failed.metrics == {}
    assert failed.error.startswith("ReclabError: ") and "neighbors" in failed.error
    assert result.best_params["neighbors"] in (10, 30)
    frame = result.trials_frame()
    assert frame.loc[2, "status"] == "failed" and "neighbors" in frame.loc[2, "error"]
    assert frame["score"].max() == result.best_score
    # The tune notebook warns of them (as of a best value at a bound), naming the first error.
    assert failure_warnings(result) == [
        f"2 of 4 trials failed (the trials table has each error); the first, trial 0 (ItemKNN "
        f"{{'neighbors': 0}}): {failed.error}"]
    assert failure_warnings(tune(ItemKNN(), {"neighbors": [10, 30]}, train, valid, method="grid")) == []


def test_smbo_moves_on_after_failures_and_resumes_through_them(splits, tmp_path):
    train, valid = splits
    # Early points include failures before any trial finished (told once one does).
    space = {"neighbors": [0, -5, 10, 40], "shrinkage": {"type": "real", "low": 0.0, "high": 50.0}}
    options = dict(method="smbo", n_trials=8, n_initial=3, estimator="ET", seed=2)
    result = tune(ItemKNN(neighbors=0), space, train, valid, **options)
    assert len(result.trials) == 8
    failed = [trial for trial in result.trials if not trial.ok]
    assert failed and all(trial.params["neighbors"] <= 0 for trial in failed)
    assert not result.trials[0].ok                  # the case of a failure before any finished trial
    assert result.best_trial.ok and result.best_params["neighbors"] > 0
    path = tmp_path / "search.jsonl"
    with pytest.raises(Stop):
        tune(ItemKNN(neighbors=0), space, train, valid, checkpoint=path, callbacks=[stop_after(2, [])],
             **options)
    assert_same_search(tune(ItemKNN(neighbors=0), space, train, valid, checkpoint=path, **options),
                       result)


def test_smbo_does_not_repeat_a_failed_point_before_any_trial_finished(splits):
    """Failed points wait untold until a trial finishes; meanwhile SMBO must go on through its
    initial design, not hand out the same (failing) initial point again and again."""
    train, valid = splits
    space = {"neighbors": {"type": "int", "low": -20, "high": 40}}
    # seed 4: the start point (0) and the design's first point (-19) both fail
    result = tune(ItemKNN(neighbors=0), space, train, valid, method="smbo", n_trials=6,
                  n_initial=4, estimator="ET", seed=4)
    before = []   # the start point included: the design's second point is 0 too
    for trial in result.trials:
        if trial.ok:
            break
        before.append(trial.params["neighbors"])
    assert len(before) >= 2 and len(before) == len(set(before)), f"failed point proposed again: {before}"
    assert any(trial.ok for trial in result.trials)


class _DivergingBias(Bias):
    """Bias whose ratings are NaN when ``diverge`` is set: a fit that 'succeeds' into garbage."""

    def __init__(self, user_reg: float = 10.0, item_reg: float = 25.0, iterations: int = 3,
                 diverge: bool = False):
        super().__init__(user_reg=user_reg, item_reg=item_reg, iterations=iterations)
        self.diverge = diverge

    def _predict_pairs(self, users, items):
        ratings = super()._predict_pairs(users, items)
        return np.full_like(ratings, np.nan) if self.diverge else ratings


def test_lower_is_better_metrics_are_minimized_and_diverged_trials_fail(splits):
    train, valid = splits
    space = {"user_reg": [0.0, 10.0, 1000.0], "diverge": [False, True]}
    result = tune(_DivergingBias(), space, train, valid, method="grid", metric="rmse")
    assert not result.greater_is_better
    ok = [trial for trial in result.trials if trial.ok]
    assert len(ok) == 3 and all(not trial.params["diverge"] for trial in ok)
    assert all("NaN" in trial.error for trial in result.trials if not trial.ok)
    assert result.best_score == min(trial.score for trial in ok)
    assert result.best_score < max(trial.score for trial in ok)


def test_all_trials_failing_raises_with_the_first_error(splits):
    train, valid = splits
    with pytest.raises(ReclabError, match=r"all 2 trials failed; the first error was: ReclabError: "
                                          r"ItemKNN parameter neighbors"):
        tune(ItemKNN(neighbors=0), {"neighbors": [0, -1]}, train, valid, method="grid")


# -- bad arguments --------------------------------------------------------------------------------
def test_bad_arguments_raise_naming_them(splits):
    train, valid = splits
    with pytest.raises(ReclabError, match=r"\['factor'\] is not a parameter of SVD; its parameters "
                                          r"are \['factors', 'item_reg', 'seed', 'user_reg'\] "
                                          r"\('factor' -> 'factors'\?\)"):
        tune(SVD(), {"factor": [2, 4]}, train, valid)
    cases = [
        (dict(method="bayes"), r"method must be one of \['grid', 'random', 'smbo'\], got 'bayes'"),
        (dict(metric="auc"), r"unknown metric 'auc'"),
        (dict(metric="precision@0"), r"unknown metric 'precision@0'"),
        (dict(metric="ndcg@20", k=(5, 10)), r"k=\[5, 10\] does not include the cut-off 20"),
        (dict(estimator="XGB"), r"estimator must be one of \['GP', 'RF', 'ET', 'GBRT'\]"),
        (dict(n_initial=0), r"n_initial must be an integer >= 1, got 0"),
        (dict(n_trials=0), r"n_trials must be an integer >= 1, got 0"),
        (dict(n_jobs=0), r"n_jobs must be an integer >= 1"),
        (dict(callbacks=[print, 3]), r"callbacks must be callables callback\(trial\), got 3"),
    ]
    for options, message in cases:
        with pytest.raises(ReclabError, match=message):
            tune(SVD(), SVD_SPACE, train, valid, **options)
    other = reclab.datasets.synthetic(seed=0, n_users=20, n_items=30, n_ratings=200)
    with pytest.raises(ReclabError, match="must share users and items"):
        tune(SVD(), SVD_SPACE, train, other)
    with pytest.raises(ReclabError, match=r"metric 'rmse' is not in the evaluation report of ItemKNN"):
        tune(ItemKNN(), {"neighbors": [5]}, train, valid, method="grid", metric="rmse")


# -- callbacks and checkpoints --------------------------------------------------------------------
def test_callbacks_get_each_finished_trial_in_order(splits):
    train, valid = splits
    seen = []
    result = tune(ItemKNN(), {"neighbors": [5, 0, 20]}, train, valid, method="grid",
                  callbacks=seen.append)   # a single callable is accepted
    assert seen == list(result.trials)


@pytest.mark.parametrize("method, estimator", [
    ("random", "GP"), ("smbo", "ET"), pytest.param("smbo", "GP", marks=pytest.mark.slow)])
def test_resume_after_a_callback_stops_the_search(splits, tmp_path, method, estimator):
    train, valid = splits
    options = dict(method=method, n_trials=6, n_initial=3, estimator=estimator, seed=11)
    full = tune(SVD(), SVD_SPACE, train, valid, **options)
    path = tmp_path / "search.jsonl"
    seen = []
    with pytest.raises(Stop):
        tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, callbacks=[stop_after(4, seen)], **options)
    assert len(path.read_text().splitlines()) == 1 + 4     # header + the 4 finished trials
    resumed_seen = []
    resumed = tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, callbacks=[resumed_seen.append],
                   **options)
    assert_same_search(resumed, full)
    assert [trial.number for trial in resumed_seen] == [4, 5]   # restored trials are not re-run
    # Resuming a finished search runs nothing; a larger n_trials extends it.
    rerun = []
    assert_same_search(tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, callbacks=[rerun.append],
                            **options), full)
    assert rerun == []


def test_extending_a_search_equals_a_longer_search(splits, tmp_path):
    train, valid = splits
    options = dict(method="smbo", n_initial=2, estimator="ET", seed=5)
    path = tmp_path / "search.jsonl"
    tune(SVD(), SVD_SPACE, train, valid, n_trials=3, checkpoint=path, **options)
    extended = tune(SVD(), SVD_SPACE, train, valid, n_trials=6, checkpoint=path, **options)
    assert_same_search(extended, tune(SVD(), SVD_SPACE, train, valid, n_trials=6, **options))


CHILD = DATA_CODE + """
import sys, time
from reclab.models import SVD
from reclab.tuning import tune

def slow_after_two(trial):
    if trial.number == 2:
        open(sys.argv[2], "w").close()     # tell the parent to kill us now
    if trial.number >= 2:
        time.sleep(0.3)

tune(SVD(), {space!r}, train, valid, checkpoint=sys.argv[1], callbacks=[slow_after_two], **{options!r})
"""


def test_resume_after_sigkill_gives_the_uninterrupted_result(splits, tmp_path):
    train, valid = splits
    options = dict(method="smbo", n_trials=6, n_initial=3, estimator="ET", seed=13)
    path, marker, script = tmp_path / "search.jsonl", tmp_path / "kill-now", tmp_path / "child.py"
    script.write_text(CHILD.format(space=SVD_SPACE, options=options))
    child = subprocess.Popen([sys.executable, str(script), str(path), str(marker)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child search never reached trial 2"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    finished = len(path.read_text().splitlines()) - 1
    assert 3 <= finished < 6, f"{finished} trials were written: the kill was not mid-search"
    # A process killed in the middle of a write leaves a cut-off last line: it must be ignored.
    with open(path, "a") as handle:
        handle.write('{"kind": "trial", "number": %d, "params": {"fact' % finished)
    resumed = tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **options)
    assert_same_search(resumed, tune(SVD(), SVD_SPACE, train, valid, **options))
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 6 and all(json.loads(line) for line in lines)   # cut-off line is gone


def test_a_checkpoint_of_another_search_is_refused(splits, tmp_path):
    train, valid = splits
    path = tmp_path / "search.jsonl"
    options = dict(method="random", n_trials=2, seed=1)
    tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **options)
    with pytest.raises(ReclabError, match=r"belongs to a different search: metric is 'precision@10' in "
                                          r"the checkpoint but 'ndcg@10' now; seed is 1 in the "
                                          r"checkpoint but 2 now"):
        tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **{**options, "seed": 2},
             metric="ndcg@10")
    with pytest.raises(ReclabError, match=r"valid data differ"):
        tune(SVD(), SVD_SPACE, train, valid.select(np.arange(valid.nnz) % 2 == 0), checkpoint=path,
             **options)
    with pytest.raises(ReclabError, match=r"^each of the valid split's \d+ interactions is also in "
                                          r"train, so none can be recommended"):
        tune(SVD(), SVD_SPACE, train, train, **options)   # the same split twice: every score 0
    with pytest.raises(ReclabError, match=r"model_params is .*'seed': 0.* but .*'seed': 9"):
        tune(SVD(seed=9), SVD_SPACE, train, valid, checkpoint=path, **options)
    with pytest.raises(ReclabError, match=r"space is"):
        tune(SVD(), {**SVD_SPACE, "item_reg": [1.0, 5.0]}, train, valid, checkpoint=path, **options)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.raises(ReclabError, match=r"line 2 is not valid JSON"):
        tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **options)
    other = tmp_path / "other.jsonl"
    other.write_text('{"some": "file"}\n')
    with pytest.raises(ReclabError, match="is not a reclab tuning checkpoint"):
        tune(SVD(), SVD_SPACE, train, valid, checkpoint=other, **options)
    with pytest.raises(ReclabError, match="checkpoint folder .*missing.* does not exist"):
        tune(SVD(), SVD_SPACE, train, valid, checkpoint=tmp_path / "missing" / "s.jsonl", **options)


def test_a_checkpoint_in_use_is_refused(splits, tmp_path):
    fcntl = pytest.importorskip("fcntl", reason="advisory file locks are POSIX-only")
    train, valid = splits
    path = tmp_path / "search.jsonl"
    with open(path, "a") as holder:          # as a search running in another process holds it
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ReclabError, match="in use by another running search"):
            tune(SVD(), SVD_SPACE, train, valid, method="random", n_trials=2, checkpoint=path)
    assert len(tune(SVD(), SVD_SPACE, train, valid, method="random", n_trials=2,
                    checkpoint=path).trials) == 2


# -- parallel trials ------------------------------------------------------------------------------
def test_parallel_random_search_gives_the_sequential_trials(splits):
    train, valid = splits
    options = dict(method="random", n_trials=6, seed=21)
    parallel = tune(SVD(), SVD_SPACE, train, valid, n_jobs=2, **options)
    assert_same_search(parallel, tune(SVD(), SVD_SPACE, train, valid, **options))


@pytest.mark.slow
def test_parallel_smbo_is_deterministic_for_a_given_n_jobs(splits, tmp_path):
    train, valid = splits
    options = dict(method="smbo", n_trials=6, n_initial=2, estimator="ET", seed=3, n_jobs=2)
    first = tune(SVD(), SVD_SPACE, train, valid, **options)
    assert_same_search(first, tune(SVD(), SVD_SPACE, train, valid, **options))
    sequential = tune(SVD(), SVD_SPACE, train, valid, **{**options, "n_jobs": 1})
    assert [t.params for t in first.trials] != [t.params for t in sequential.trials]


# -- plots and tables -----------------------------------------------------------------------------
def test_plots_return_figures_without_showing_them(splits):
    import matplotlib.pyplot as plt

    train, valid = splits
    open_before = plt.get_fignums()
    grid = tune(ItemKNN(), {"neighbors": [0, 5, 20], "shrinkage": [0.0, 10.0]}, train, valid,
                method="grid")
    figure = plot_convergence(grid)
    line = figure.axes[0].lines[0].get_ydata()
    scores = np.array([trial.score for trial in grid.trials])
    np.testing.assert_array_equal(line, np.fmax.accumulate(scores))   # best so far; NaN until one finishes
    assert len(plot_objective(grid).axes) == 2                     # one scatter per parameter
    smbo = tune(SVD(), SVD_SPACE, train, valid, method="smbo", n_trials=5, n_initial=3, estimator="ET")
    partial = plot_objective(smbo, n_points=5, n_samples=20)
    assert len(partial.axes) == 1 + 3 * 3                          # frame + 3 x 3 grid
    assert plt.get_fignums() == open_before


def test_trials_frame_has_one_row_per_trial(splits):
    train, valid = splits
    result = tune(ItemKNN(neighbors=5), {"neighbors": [5, 0]}, train, valid, method="grid", k=(5, 10))
    frame = result.trials_frame()
    assert list(frame.index) == [0, 1] and frame.index.name == "number"
    assert list(frame.columns[:4]) == ["model", "status", "score", "neighbors"]
    assert list(frame["model"]) == ["ItemKNN", "ItemKNN"]
    assert {"precision@5", "ndcg@10", "seconds", "error"} <= set(frame.columns)
    assert frame.loc[0, "precision@10"] == result.trials[0].score


# -- start points, folds, several models, boundaries, time budget (issue 15) ---------------------
def test_the_model_s_own_point_is_trial_zero_then_the_extra_start_points(splits):
    train, valid = splits
    model = SVD(factors=5, user_reg=3.0, item_reg=25.0)
    starts = [{"factors": 20}, {"factors": 5}]   # completed with the model's values; a repeat is dropped
    for method in ("random", "smbo"):
        result = tune(model, SVD_SPACE, train, valid, method=method, n_trials=6, n_initial=3,
                      estimator="ET", seed=4, starts=starts)
        assert [trial.params for trial in result.trials[:2]] == [
            {"factors": 5, "user_reg": 3.0, "item_reg": 25.0},
            {"factors": 20, "user_reg": 3.0, "item_reg": 25.0}]
        assert result.trials[2].params not in [t.params for t in result.trials[:2]]
        assert result.best_score >= result.trials[0].score   # never below the starting point
    with pytest.raises(ReclabError, match=r"start point \{'factor': 20\} of SVD sets \['factor'\]"):
        tune(model, SVD_SPACE, train, valid, method="random", n_trials=3, starts=[{"factor": 20}])
    # A value the model refuses: scikit-optimize's TypeError (a text in an integer range), after
    # the start trials before it had run. A seed scikit-optimize refuses: its ValueError, likewise.
    with pytest.raises(ReclabError, match=r"start point \{'factors': 'abc'\} of SVD is refused: SVD "
                                          r"parameter factors must be an integer"):
        tune(model, SVD_SPACE, train, valid, method="smbo", n_trials=3, starts=[{"factors": "abc"}])
    with pytest.raises(ReclabError, match=r"seed must be below 2\*\*32"):
        tune(model, SVD_SPACE, train, valid, method="smbo", n_trials=3, seed=2**32)


def test_a_search_whose_trials_all_tie_says_so(splits):
    """Every trial scored the same (here the thread count, which leaves the factors bit for bit
    alike): the first is kept, with a note rather than silently as the 'best'."""
    from reclab.tuning import choose

    train, valid = splits
    result = tune(ImplicitALS(factors=4, iterations=2), {"num_threads": [1, 2]}, train, valid,
                  method="grid", seed=0, folds=2)   # one_se needs per-fold scores
    assert len(result.trials) == 3 and len({trial.score for trial in result.trials}) == 1
    for rule in ("best", "one_se"):
        chosen = choose(result, rule)
        assert chosen.trial.number == 0
        assert chosen.note.startswith(f"every trial scored {result.metric} ")


def test_validation_folds_are_disjoint_equal_sized_and_deterministic(splits):
    from reclab.split import validation_folds

    train, valid = splits
    folds = validation_folds(train, valid, n_folds=3, seed=0)
    assert folds[0] == (train, valid) and len(folds) == 3
    everything = train.union(valid)
    pairs = []
    for fit, holdout in folds:
        assert fit.union(holdout).fingerprint() == everything.fingerprint()   # a partition
        assert fit.nnz == train.nnz                # every fold fits on as much as train
        assert np.all(holdout.user_counts() <= valid.user_counts())
        coo = holdout.matrix.tocoo()
        pairs.append(set(zip(coo.row.tolist(), coo.col.tolist())))
    assert all(not (pairs[a] & pairs[b]) for a in range(3) for b in range(a + 1, 3))
    again = validation_folds(train, valid, n_folds=3, seed=0)
    assert [h.fingerprint() for _, h in again] == [h.fingerprint() for _, h in folds]
    other = validation_folds(train, valid, n_folds=3, seed=1)
    assert other[1][1].fingerprint() != folds[1][1].fingerprint()
    # valid is a fifth of the data, train four fifths: a sixth fold would find the users' train
    # run out, and hold out a sliver (it dragged the mean over the folds down without a word)
    assert len(validation_folds(train, valid, n_folds=5, seed=0)) == 5
    with pytest.raises(ReclabError, match=rf"^6 validation folds: fold 5 would hold out \d+ interactions "
                                          rf"against valid's {valid.nnz}, .*; use at most 5 folds"):
        validation_folds(train, valid, n_folds=6, seed=0)


@pytest.mark.parametrize("times", ["one for all", "one per user"])
def test_a_random_holdout_whose_timestamps_all_tie_gets_random_folds(times):
    """Times that tie everywhere pass "valid is not older than train" whatever the split: a random
    holdout was taken for a temporal split, and its folds fitted on ever less data (1203, 906 and
    609 interactions here) instead of as much as train."""
    from reclab import split
    from reclab.split import fold_role, validation_folds

    data = reclab.datasets.synthetic(n_users=60, n_items=80, n_ratings=1500, seed=0)
    rows = np.repeat(np.arange(data.n_users), data.user_counts())
    tied = data.with_matrix(data.matrix, timestamps=np.zeros(data.nnz) if times == "one for all"
                            else rows * 86_400.0)
    train, valid = split.random_holdout(tied, test_frac=0.2, seed=0)
    assert fold_role(train, valid) is None
    assert [fit.nnz for fit, _ in validation_folds(train, valid, n_folds=3, seed=0)] == [train.nnz] * 3
    # a temporal split of the same times is no temporal split either: nothing comes later
    assert fold_role(*split.temporal(tied, 0.2, per_user=True)) is None


@pytest.mark.parametrize("per_user", [False, True])
def test_validation_folds_of_a_temporal_split_fit_on_the_past_only(per_user, tmp_path):
    """On a temporal split every fold predicts a period from what came before it: fold j holds
    out the period before fold j - 1's (as many interactions as valid, in all or per user) and
    fits on the interactions before it. Shuffled per-user folds fitted on the future (valid) to
    predict the past: EASE's precision@10 on ML-100K was 0.33 there, 0.14 on valid."""
    from reclab import split
    from reclab.split import validation_folds

    data = reclab.datasets.synthetic(n_users=200, n_items=150, n_ratings=6000, seed=0)
    train, valid = split.temporal(split.temporal(data, 0.2, per_user=per_user)[0], 0.2, per_user=per_user)
    folds = validation_folds(train, valid, n_folds=3, seed=0)
    assert folds[0] == (train, valid) and len(folds) == 3
    held, later = [], valid
    for fit, holdout in folds[1:]:
        if per_user:
            assert np.all(holdout.user_counts() <= valid.user_counts())
            assert holdout.nnz >= valid.nnz // 2
        else:
            assert holdout.nnz == valid.nnz
        for before, after in ((fit, holdout), (holdout, later)):   # the past, then its future
            if per_user:
                for user in np.flatnonzero(before.user_counts() * after.user_counts()):
                    rows = slice(*before.matrix.indptr[user:user + 2])
                    assert before.timestamps[rows].max() <= after.timestamps[
                        slice(*after.matrix.indptr[user:user + 2])].min()
            else:
                assert before.timestamps.max() <= after.timestamps.min()
        assert fit.union(holdout).nnz == fit.nnz + holdout.nnz   # disjoint
        coo = holdout.matrix.tocoo()
        held.append(set(zip(coo.row.tolist(), coo.col.tolist())))
        later = holdout
    assert not held[0] & held[1]
    assert folds[2][0].nnz < folds[1][0].nnz < train.nnz   # each fits on less: the past only
    with pytest.raises(ReclabError, match=r"validation folds of a temporal split: fold \d+ would hold out"):
        validation_folds(train, valid, n_folds=8, seed=0)
    checkpoint = tmp_path / "search.jsonl"
    result = tune(ItemKNN(neighbors=10), {"neighbors": [10, 30]}, train, valid, method="grid", folds=3,
                  seed=0, checkpoint=checkpoint)
    assert all(trial.ok and len(trial.fold_scores) == 3 for trial in result.trials)
    header = json.loads(checkpoint.read_text().splitlines()[0])
    assert header["folds_hold_out"] == ("each user's earlier interactions" if per_user else "earlier periods")


def test_validation_folds_of_cold_items_fit_on_the_tags_of_their_warm_items_only():
    """What a fold fits on has no tags of its held-out items, as cold_items' train: with them,
    ContentKNN scored 0.142 and 0.153 on ml-latest-small's folds 1 and 2, 0.081 on valid. It has
    those of every item it fits on, valid's included, which are warm in folds 1 and 2."""
    from reclab import split
    from reclab.split import validation_folds

    data = reclab.datasets.synthetic(n_users=200, n_items=150, n_ratings=5000, seed=0)
    features = (np.random.default_rng(0).random((data.n_items, 4)) < 0.6).astype(np.float32)
    data = data.with_features(features, ["genre=a", "genre=b", "tag=x", "tag=y"])
    train, valid = split.cold_items(split.cold_items(data, test_frac=0.2, seed=0)[0], test_frac=0.2, seed=1)
    folds = validation_folds(train, valid, n_folds=3, seed=0)
    for fit, holdout in folds:
        cold = holdout.item_counts() > 0
        assert fit.item_features[cold][:, 2:].nnz == 0                     # no tags
        assert fit.item_features[cold][:, :2].nnz == features[cold, :2].sum()   # genres kept
        warm = fit.item_counts() > 0
        assert fit.item_features[warm].nnz == features[warm].sum()         # every feature
    valid_items = valid.item_counts() > 0
    assert all(fit.item_counts()[valid_items].all() for fit, _ in folds[1:])
    # the final fit on train + valid has valid's tags too
    assert train.union(valid).item_features[valid_items][:, 2:].nnz == features[valid_items, 2:].sum() > 0


@pytest.mark.parametrize("method", ["cold_users", "cold_items"])
def test_validation_folds_of_a_cold_split_hold_out_whole_users_or_items(method, tmp_path):
    """On a cold split, every fold holds out what valid holds out: all interactions of as many
    other users (items) as valid has, none of them in that fold's fit, disjoint across folds. A
    per-user holdout would be empty for cold users (every trial failed) and warm for cold items."""
    from reclab import split
    from reclab.split import validation_folds

    data = reclab.datasets.synthetic(n_users=200, n_items=150, n_ratings=5000, seed=0)
    cold = getattr(split, method)
    train, valid = cold(cold(data, test_frac=0.2, seed=0)[0], test_frac=0.2, seed=1)
    counts = (lambda d: d.user_counts()) if method == "cold_users" else (lambda d: d.item_counts())
    folds = validation_folds(train, valid, n_folds=3, seed=0)
    assert folds[0] == (train, valid) and len(folds) == 3
    held = []
    for fit, holdout in folds:
        assert fit.union(holdout).fingerprint() == train.union(valid).fingerprint()
        entities = set(np.flatnonzero(counts(holdout)).tolist())
        assert len(entities) == np.count_nonzero(counts(valid))
        assert not np.any(counts(fit)[sorted(entities)])   # cold in this fold's fit
        held.append(entities)
    assert all(not (held[a] & held[b]) for a in range(3) for b in range(a + 1, 3))
    again = validation_folds(train, valid, n_folds=3, seed=0)
    assert [h.fingerprint() for _, h in again] == [h.fingerprint() for _, h in folds]
    checkpoint = tmp_path / "search.jsonl"
    search = dict(model=ItemKNN(neighbors=10), space={"neighbors": [10, 30]}, train=train, valid=valid,
                  method="grid", folds=3, seed=0, checkpoint=checkpoint)
    result = tune(**search)
    assert all(trial.ok and len(trial.fold_scores) == 3 for trial in result.trials)
    # On cold items a fold ranks only its held-out items, as stage 5's cold protocol does: ranked
    # among all items they were scored against warm items the users liked but had not rated.
    fit, holdout = folds[1]
    cold = cold_candidates(fit, holdout) if method == "cold_items" else None
    expected = evaluate(ItemKNN(neighbors=10).fit(fit), fit, holdout, k=10, candidates=cold, n_bootstrap=0)
    assert result.trials[0].fold_scores[1] == pytest.approx(expected.summary["precision@10"])
    # The folds' kind is part of the search's identity: a checkpoint written when a cold split's
    # folds were per-user ones (no such key in its header) is refused, not resumed on other folds.
    role = "users" if method == "cold_users" else "items"
    lines = checkpoint.read_text().splitlines()
    header = json.loads(lines[0])
    assert header.get("ranks") == ("held-out items" if method == "cold_items" else None)
    assert header.pop("folds_hold_out") == f"whole {role}"
    checkpoint.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(ReclabError, match=rf"folds_hold_out is None in the checkpoint but 'whole {role}' now"):
        tune(**search)
    with pytest.raises(ReclabError, match=r"20 validation folds of \d+ cold .* use fewer folds"):
        validation_folds(train, valid, n_folds=20, seed=0)


def test_folds_score_each_trial_on_every_fold_and_average(splits):
    from reclab.split import validation_folds

    train, valid = splits
    result = tune(ItemKNN(neighbors=10), {"neighbors": [10, 30]}, train, valid, method="grid",
                  folds=3, seed=2)
    folds = validation_folds(train, valid, n_folds=3, seed=2)
    for trial in result.trials:
        expected = [evaluate(ItemKNN(neighbors=trial.params["neighbors"]).fit(fit), fit, holdout,
                             k=10, n_bootstrap=0).summary["precision@10"] for fit, holdout in folds]
        assert trial.fold_scores == tuple(expected)
        assert trial.score == pytest.approx(np.mean(expected), abs=1e-12)
    frame = result.trials_frame()
    assert {"score_std", "fold_0", "fold_1", "fold_2"} <= set(frame.columns)
    assert frame.loc[0, "score_std"] == pytest.approx(np.std(result.trials[0].fold_scores, ddof=1))


def test_a_model_list_yields_trials_of_every_listed_model(splits):
    train, valid = splits
    models = [ItemKNN(neighbors=10), SVD(factors=5)]
    spaces = [{"neighbors": {"type": "int", "low": 5, "high": 60}}, SVD_SPACE]
    for method in ("random", "smbo"):
        result = tune(models, spaces, train, valid, method=method, n_trials=7, n_initial=2,
                      estimator="ET", seed=1)
        assert [trial.model for trial in result.trials] == ["ItemKNN", "SVD"] * 3 + ["ItemKNN"]
        assert result.trials[0].params == {"neighbors": 10}
        assert set(result.trials[1].params) == set(SVD_SPACE)
        best = result.best_trial
        assert (result.best_model, result.best_params) == (best.model, best.params)
        assert result.space == result.spaces[best.model]
        assert set(result.trials_frame()["model"]) == {"ItemKNN", "SVD"}
        assert len(plot_convergence(result).axes[0].collections) >= 2   # one colour per model
    # A grid too: after the start points the models take turns, so that a time budget stops every
    # model's grid part-way (one model's grid after another's left the last with its start only).
    grid = tune(models, [{"neighbors": [20, 30, 40]}, {"factors": [2, 8]}], train, valid, method="grid")
    assert [trial.model for trial in grid.trials] == ["ItemKNN", "SVD", "ItemKNN", "SVD", "ItemKNN", "SVD",
                                                      "ItemKNN"]
    with pytest.raises(ReclabError, match=r"2 models need 2 search spaces"):
        tune(models, spaces[:1], train, valid)
    with pytest.raises(ReclabError, match=r"models lists SVD twice"):
        tune([SVD(), SVD()], [SVD_SPACE, SVD_SPACE], train, valid)


def test_the_boundary_warning_fires_on_a_crafted_space(splits):
    from reclab.tuning import boundary_warnings

    train, valid = splits
    # More neighbors help on this data, so a space capped at 3 has its best at the cap.
    result = tune(ItemKNN(neighbors=3), {"neighbors": {"type": "int", "low": 1, "high": 3}}, train,
                  valid, method="random", n_trials=4, seed=0)
    assert result.best_params == {"neighbors": 3}
    [warning] = boundary_warnings(result)
    assert "ItemKNN: best neighbors = 3 is at the upper bound 3" in warning and "(high: 5)" in warning
    # The trial that goes on to training (tune.select: one_se may keep a start point, which can
    # lie outside the space) is checked too, as "chosen"; the best's warning stays.
    start = next(trial for trial in result.trials if trial.params != result.best_params)
    kept = dataclasses.replace(start, params={"neighbors": 8})
    assert boundary_warnings(result, chosen=kept) == [
        warning, "ItemKNN: chosen neighbors = 8 is beyond the upper bound 3 of its space [1, 3]; the "
                 "optimum may lie beyond it: widen the space (high: 15)"]
    assert boundary_warnings(result, chosen=result.best_trial) == [warning]
    # integers from 1 end at 1 (no wider bound to suggest); a bound rounded off in the log scale
    # (119.99999999999996 for 120) is "at" it
    for space in ({"factors": {"type": "int", "low": 1, "high": 10}},
                  {"neighbors": {"type": "int", "low": 1, "high": 100}}):
        for value in (1, 2, 3):   # near 1 too: the suggestion was "widen the space (low: 1)"
            [name] = space
            assert boundary_warnings(TuningResult(
                best_params={name: value}, best_score=0.2, trials=(), method="random",
                metric="precision@10", space=parse_space(space), best_model="PureSVD")) == []
    space = {"regularization": {"type": "real", "low": 10.0, "high": 120.0, "prior": "log-uniform"}}
    [rounded] = boundary_warnings(TuningResult(
        best_params={"regularization": 119.99999999999996}, best_score=0.2, trials=(),
        method="random", metric="precision@10", space=parse_space(space), best_model="EASE"))
    assert "is at the upper bound 120" in rounded
    space = {"neighbors": {"type": "int", "low": 5, "high": 400, "prior": "log-uniform"}}
    inside = TuningResult(best_params={"neighbors": 40}, best_score=0.2, trials=(), method="random",
                          metric="precision@10", space=parse_space(space), best_model="ItemKNN")
    assert boundary_warnings(inside) == []
    beyond = TuningResult(best_params={"neighbors": 1000}, best_score=0.2, trials=(), method="random",
                          metric="precision@10", space=parse_space(space), best_model="ItemKNN")
    assert boundary_warnings(beyond) == [
        "ItemKNN: best neighbors = 1000 is beyond the upper bound 400 of its space [5, 400]; the "
        "optimum may lie beyond it: widen the space (high: 4000)"]
    space = {"user_reg": {"type": "real", "low": 1.0, "high": 1000.0, "prior": "log-uniform"}}
    near = TuningResult(best_params={"user_reg": 1.1}, best_score=0.9, trials=(), method="random",
                        metric="rmse", space=parse_space(space), best_model="SVD")
    assert boundary_warnings(near) == [
        "SVD: best user_reg = 1.1 is near the lower bound 1 of its space [1, 1000]; the optimum may "
        "lie beyond it: widen the space (low: 0.25)"]
    # A linear range: one width further, but a positive lower bound is never widened past 0;
    # a value beyond a bound (a start point outside the space) is widened from, not the bound.
    for low, high, value, wider in ((4, 16, 4, "low: 2"), (10, 14, 10, "low: 6"),
                                    (4, 16, 16, "high: 28"), (-8, 8, -8, "low: -24"),
                                    (4, 8, 64, "high: 124"), (10, 20, 2, "low: 1")):
        space = {"factors": {"type": "int", "low": low, "high": high}}
        linear = TuningResult(best_params={"factors": value}, best_score=0.2, trials=(),
                              method="random", metric="precision@10", space=parse_space(space),
                              best_model="ImplicitALS")
        [warning] = boundary_warnings(linear)
        assert warning.endswith(f"widen the space ({wider})"), warning
    # A range from 0 ends where a non-negative parameter does: no warning at 0, one at the top.
    space = {"shrinkage": {"type": "real", "low": 0.0, "high": 100.0}}
    near_top = ("ItemKNN: best shrinkage = 99 is near the upper bound 100 of its space [0, 100]; "
                "the optimum may lie beyond it: widen the space (high: 200)")
    for value, warned in ((0.0, []), (1.0, []), (99.0, [near_top])):
        at_zero = TuningResult(best_params={"shrinkage": value}, best_score=0.2, trials=(),
                               method="random", metric="precision@10", space=parse_space(space),
                               best_model="ItemKNN")
        assert boundary_warnings(at_zero) == warned


def test_the_time_budget_stops_between_trials_with_a_valid_result(splits, tmp_path):
    train, valid = splits
    options = dict(method="random", n_trials=5, seed=3)
    path = tmp_path / "search.jsonl"

    def slow(trial):
        time.sleep(1.2)   # every trial "ends" after the 1 s budget, so no second trial starts

    result = tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, callbacks=[slow],
                  time_budget=1.0, **options)
    assert result.stopped == "time_budget" and len(result.trials) == 1
    assert result.best_params == result.trials[0].params and result.best_trial.ok
    # The stopped search is a prefix: resuming it without a budget finishes the same search.
    full = tune(SVD(), SVD_SPACE, train, valid, **options)
    assert full.stopped is None
    assert_same_search(tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **options), full)
    with pytest.raises(ReclabError, match=r"time_budget must be a number of seconds > 0"):
        tune(SVD(), SVD_SPACE, train, valid, time_budget=0, **options)


def test_the_time_budget_counts_from_the_first_trial_and_holds_with_workers(splits, tmp_path):
    """A resumed SMBO search replays its checkpoint first (a surrogate fit per recorded trial):
    that replay spent the budget, and no call added a trial. Workers (n_jobs=2) got every trial at
    once, past the budget, with stopped None."""
    train, valid = splits
    options = dict(method="smbo", n_trials=8, n_initial=2, estimator="GP", seed=5)
    path = tmp_path / "search.jsonl"
    tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **{**options, "n_trials": 4})
    for expected in (5, 6):   # the first trial of a call always starts; the next would be late
        result = tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, time_budget=0.001, **options)
        assert result.stopped == "time_budget" and len(result.trials) == expected

    def slow(trial):
        time.sleep(1.2)   # the first trial to end takes the budget with it

    result = tune(SVD(), SVD_SPACE, train, valid, method="random", n_trials=6, seed=3, n_jobs=2,
                  callbacks=[slow], time_budget=1.0)
    assert result.stopped == "time_budget" and len(result.trials) == 2   # the two started at once
    sequential = tune(SVD(), SVD_SPACE, train, valid, method="random", n_trials=2, seed=3)
    assert [trial.params for trial in result.trials] == [trial.params for trial in sequential.trials]


@pytest.mark.parametrize("method", ["random", "smbo"])
def test_resume_with_folds_equals_an_uninterrupted_search(splits, tmp_path, method):
    train, valid = splits
    options = dict(method=method, n_trials=5, n_initial=2, estimator="ET", seed=6, folds=2)
    full = tune(SVD(), SVD_SPACE, train, valid, **options)
    assert all(len(trial.fold_scores) == 2 for trial in full.trials)
    path = tmp_path / "search.jsonl"
    with pytest.raises(Stop):
        tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, callbacks=[stop_after(3, [])], **options)
    resumed = tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **options)
    assert_same_search(resumed, full)
    assert [t.fold_scores for t in resumed.trials] == [t.fold_scores for t in full.trials]
    with pytest.raises(ReclabError, match=r"folds is 2 in the checkpoint but 3 now"):
        tune(SVD(), SVD_SPACE, train, valid, checkpoint=path, **{**options, "folds": 3})


def test_the_progress_bar_counts_trials_and_shows_the_best(splits):
    import io

    train, valid = splits
    out = io.StringIO()
    result = tune(ItemKNN(neighbors=10), {"neighbors": [10, 30]}, train, valid, method="grid",
                  progress=out)
    text = out.getvalue()
    assert "2/2" in text and f"best precision@10={result.best_score:.4f}" in text


def test_a_resumed_search_s_progress_bar_counts_its_restored_trials_and_their_best(splits, tmp_path):
    import io

    train, valid = splits
    options = dict(method="random", n_trials=4, seed=3, checkpoint=tmp_path / "search.jsonl")
    with pytest.raises(Stop):
        tune(ItemKNN(neighbors=10), {"neighbors": (5, 100)}, train, valid, callbacks=[stop_after(3, [])],
             **options)
    out = io.StringIO()
    result = tune(ItemKNN(neighbors=10), {"neighbors": (5, 100)}, train, valid, progress=out, **options)
    last = out.getvalue().rstrip().split("\r")[-1]
    assert "4/4" in last and f"best precision@10={result.best_score:.4f}" in last, last


def _trial(number, fold_scores, model="ItemKNN"):
    return Trial(number=number, params={"neighbors": 10 + number}, score=float(np.mean(fold_scores)),
                 metrics={}, seconds=0.0, status="ok", model=model, fold_scores=tuple(fold_scores))


def test_one_se_keeps_the_start_point_unless_the_best_leads_it_by_more_than_one_standard_error():
    start = _trial(0, [0.20, 0.21, 0.22])
    noisy = _trial(1, [0.21, 0.20, 0.235])   # leads by 0.005 on average, standard error 0.0076
    clear = _trial(2, [0.215, 0.226, 0.233])   # leads by 0.0147, standard error 0.0009
    common = dict(method="random", metric="precision@10", folds=3, n_starts=1)
    result = TuningResult(best_params=noisy.params, best_score=noisy.score,
                          trials=(start, noisy, _trial(3, [0.1, 0.1, 0.1])), **common)
    assert choose(result).trial == noisy and choose(result, "best").note == ""
    kept = choose(result, "one_se")
    assert kept.trial == start
    assert "leads it by 0.0050 on average over the 3 folds, within one standard error (0.0076)" \
        in kept.note
    result = TuningResult(best_params=clear.params, best_score=clear.score,
                          trials=(start, noisy, clear), **common)
    assert choose(result, "one_se") == choose(result, "best") == Choice(clear)
    # Lower is better (rmse): the lead is the start point's error minus the best trial's.
    worse, better = _trial(0, [0.95, 0.93, 0.94]), _trial(1, [0.90, 0.91, 0.89])
    result = TuningResult(best_params=better.params, best_score=better.score, trials=(worse, better),
                          greater_is_better=False, **{**common, "metric": "rmse"})
    assert choose(result, "one_se").trial == better
    # The best trial is itself a start point (here the second of two): it is chosen.
    result = TuningResult(best_params=start.params, best_score=start.score,
                          trials=(start, noisy), **{**common, "n_starts": 2})
    assert choose(result, "one_se").trial == noisy


def test_one_se_on_a_search_compares_the_per_fold_scores_and_refuses_a_single_fold(splits):
    train, valid = splits
    space = {"neighbors": {"type": "int", "low": 2, "high": 200, "prior": "log-uniform"}}
    result = tune(ItemKNN(neighbors=5), space, train, valid, method="random", n_trials=8, seed=0,
                  folds=3)
    assert result.n_starts == 1 and result.trials[0].params == {"neighbors": 5}
    chosen = choose(result, "one_se")
    start, best = result.trials[0], result.best_trial
    lead = np.subtract(best.fold_scores, start.fold_scores)
    beyond_noise = lead.mean() > lead.std(ddof=1) / math.sqrt(3)
    assert chosen.trial == (best if beyond_noise else start)
    assert (chosen.note == "") == beyond_noise
    start, best = _trial(0, [0.2]), _trial(1, [0.3])
    single = TuningResult(best_params=best.params, best_score=best.score, trials=(start, best),
                          method="random", metric="precision@10", folds=1, n_starts=1)
    with pytest.raises(ReclabError, match=r"'one_se' compares per-fold scores.*folds >= 2"):
        choose(single, "one_se")
    # Refused whichever trial is best: it was returned when the start point was.
    start_best = TuningResult(best_params=start.params, best_score=0.4, trials=(_trial(0, [0.4]), best),
                              method="random", metric="precision@10", folds=1, n_starts=1)
    with pytest.raises(ReclabError, match=r"'one_se' compares per-fold scores.*folds >= 2"):
        choose(start_best, "one_se")
    with pytest.raises(ReclabError, match=r"rule must be one of \['best', 'one_se'\]"):
        choose(result, "first")


def test_smbo_in_a_small_discrete_space_redraws_repeated_points_without_warning(splits):
    train, valid = splits
    space = {"neighbors": {"type": "int", "low": 2, "high": 7}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tune(ItemKNN(neighbors=3), space, train, valid, method="smbo", n_trials=10,
                      n_initial=3, seed=0)
    assert len(result.trials) == 10 and all(trial.ok for trial in result.trials)
    assert {trial.params["neighbors"] for trial in result.trials[1:]} <= set(range(2, 8))
    assert not [w for w in caught if "has been evaluated at point" in str(w.message)]
