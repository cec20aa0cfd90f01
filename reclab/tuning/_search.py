"""Running a search: the trial loop (checkpoint, callbacks, time budget, worker processes), the
progress bar, and SMBO's optimizers (one per model) with their ask/tell bookkeeping."""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import os
import time
import warnings

import numpy as np

from reclab.errors import ReclabError
from reclab.space import to_python
from reclab.tuning._objective import TrialJob, init_worker, run_in_worker
from reclab.tuning._results import Trial


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


class OutOfTime(Exception):
    """Raised between trials when the search's ``time_budget`` is spent."""


class Search:
    """Runs batches of points (restored from the checkpoint or evaluated), in trial order.

    A point is ``(model index, params)``. With a ``time_budget`` (seconds, counted from the
    first trial this search runs: not the set-up, nor the replay of a checkpoint's trials), no
    trial starts that would end after it at the mean duration of the trials run so far:
    :meth:`run` keeps the trials finished so far and raises :class:`OutOfTime`.
    """

    def __init__(self, job: TrialJob, n_jobs: int, restored: dict, checkpoint, callbacks,
                 time_budget: float | None = None):
        self.job = job
        self.n_jobs = n_jobs
        self.restored = restored
        self.checkpoint = checkpoint
        self.callbacks = callbacks
        self.time_budget = time_budget
        self.deadline: float | None = None   # set when the first trial of this call starts
        self.out_of_time = False
        self.trials: list[Trial] = []
        self._pool = None
        self._seconds: list[float] = []   # durations of the trials this call ran

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if self._pool is not None:
            # After an error (a callback stopping the search, Ctrl-C) do not wait for running fits.
            self._pool.shutdown(wait=exc_type is None or exc_type is OutOfTime,
                                cancel_futures=True)
        if self.checkpoint is not None:
            self.checkpoint.close()

    def _executor(self):
        if self._pool is None:
            threads = max(1, (os.cpu_count() or 1) // self.n_jobs)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.n_jobs, mp_context=_process_context(),
                initializer=init_worker, initargs=(self.job, threads))
            # Started (each given the data) before the time budget's clock, which counts trials:
            # under load, starting them took the whole budget of the first trials' call.
            concurrent.futures.wait([self._pool.submit(int) for _ in range(self.n_jobs)])
        return self._pool

    def _finished(self, trial: Trial) -> None:
        self._seconds.append(trial.seconds)
        if self.checkpoint is not None:
            self.checkpoint.append(trial)
        for callback in self.callbacks:
            callback(trial)

    def _out_of_time(self) -> bool:
        """Whether the next trial would end after the deadline; once so, for good."""
        if self.time_budget is None or self.out_of_time:
            return self.out_of_time
        if self.deadline is None:
            self.deadline = time.perf_counter() + self.time_budget
        expected = float(np.mean(self._seconds)) if self._seconds else 0.0
        self.out_of_time = time.perf_counter() + expected >= self.deadline
        return self.out_of_time

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
        elif pending:
            # n_jobs trials at a time, the next one started as one ends, while the budget lasts
            pool, waiting, running = self._executor(), list(reversed(pending)), set()
            try:
                while waiting or running:
                    while waiting and len(running) < self.n_jobs and not self._out_of_time():
                        running.add(pool.submit(run_in_worker, *waiting.pop()))
                    if not running:
                        break
                    ended, running = concurrent.futures.wait(
                        running, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in ended:
                        trial = future.result()
                        done[trial.number] = trial
                        self._finished(trial)
            except BaseException:
                for future in running:
                    future.cancel()
                raise
        batch = []
        for number in range(first, first + len(points)):
            if number not in done:   # only when out of time: keep the finished prefix
                self.trials.extend(batch)
                raise OutOfTime()
            batch.append(done[number])
        self.trials.extend(batch)
        return batch


def round_robin(streams: list, n: int) -> list:
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


class ProgressBar:
    """tqdm bar of a search: trial i of n, the best score so far, the time left.

    "Time left" is tqdm's estimate from the mean trial time, capped by the time budget: "budget
    left" is the time to the deadline of ``search`` (a :class:`Search`, set once it exists).
    """

    def __init__(self, progress, n_trials: int, metric: str, sign: float, restored=()):
        self.bar, self.search = None, None
        self.metric, self.sign, self.best = metric, sign, None
        for trial in restored:   # a resumed search starts at its restored trials and their best
            self._note(trial)
        if progress is False or progress is None:
            return
        from tqdm import tqdm   # plain text: Jupyter shows it in place, reclab run in its log

        self.bar = tqdm(total=n_trials, initial=len(restored), desc="tuning", unit="trial",
                        dynamic_ncols=True, file=None if progress is True else progress, mininterval=0)

    def _note(self, trial: Trial) -> None:
        if trial.ok and (self.best is None or self.sign * trial.score < self.sign * self.best):
            self.best = trial.score

    def update(self, trial: Trial) -> None:
        if self.bar is None:
            return
        self._note(trial)
        shown = {f"best {self.metric}": "-" if self.best is None else f"{self.best:.4f}"}
        deadline = None if self.search is None else self.search.deadline
        if deadline is not None:   # a time budget, whose clock started with the first trial
            shown["budget left"] = f"{max(0.0, deadline - time.perf_counter()):.0f} s"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()


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


#: SMBO's settings. The acquisition: expected improvement over the best score so far, with no
#: required margin (``xi=0``). scikit-optimize's default, ``gp_hedge`` with ``xi=0.01``, asks EI
#: and PI for an improvement of 0.01 *in the metric's units*: for precision@10 (about 0.2, good
#: points within 0.005 of each other) no point promises that, so both pick by uncertainty alone
#: and SMBO explores like random search (benchmarks/tuning.py measures it). ``xi=0`` does not
#: depend on the metric's scale. The initial points are a Latin hypercube (spread over the space
#: rather than drawn independently).
#:
#: ``objective_cap`` (reclab's, not scikit-optimize's): the surrogate is told every objective
#: worse than this quantile of all the trials so far as that quantile (:func:`capped`). Bad
#: corners of a space score far below the good region (precision@10 0.09 against 0.22 for
#: ImplicitALS on MovieLens); fitted to them, a Gaussian process has a large amplitude, its
#: uncertainty at unexplored corners promises improvement, and EI spent 7 of its trials 7-30 at a
#: corner (two or more parameters at a bound). Capped, the surrogate models the better half in
#: detail and learns of the worse half only that it is worse: 2-3 of those trials at a corner.
#:
#: All of them are part of a checkpoint's identity. Compared on the tuning benchmark's
#: development seeds (benchmarks/tuning.py; ImplicitALS on both MovieLens files, one and three
#: validation folds; the README gives the figures): the cap at the median reached random search's
#: 100-trial best sooner than no cap in three of the four settings; lower-confidence bound (kappa
#: 1 or 1.96), ``gp_hedge`` with ``xi=0``, EI maximized over 10,000 sampled points instead of
#: L-BFGS, EI over the surrogate's best mean rather than the best score (noisy EI's plug-in) and a
#: rank (copula) transform of the objective did not (LCB with kappa 1 stays at one end of a ridge
#: of equally good points: 2 of 5 seeds on ML-100k with one split never reached it in 70); nor
#: did a minimum distance between trials, a GP that also sees each pair of parameters' sum and
#: difference (for a diagonal ridge such as ImplicitALS's regularization and alpha), Thompson
#: sampling, a margin in EI after 10 trials without improvement, a GP on the parameters rotated
#: to the principal axes of the better half of the trials, a cap at the 75th percentile, 4 or
#: 10 initial points instead of 6, or a GP whose prior mean is the cap rather than the mean of the
#: objectives told (its corner trials come early instead of late, and it stays at one end of
#: the ridge), alone or with a minimum distance between trials, or length scales bounded below at
#: 10% or 4% of each range instead of skopt's 1%, or every third trial drawn at random.
SMBO_OPTIONS = {"acq_func": "EI", "acq_func_kwargs": {"xi": 0.0},
                "initial_point_generator": "lhs", "objective_cap": 0.5}


def capped(objectives, quantile: float | None) -> list[float]:
    """Objectives (minimized) as SMBO's surrogate is told them: those above the ``quantile`` of
    all of them are that quantile (``None``: unchanged)."""
    if quantile is None or not objectives:
        return list(objectives)
    return np.minimum(objectives, np.quantile(objectives, quantile)).tolist()


def make_optimizer(space: dict, estimator: str, n_initial: int, seed: int, **options):
    """scikit-optimize's optimizer with :data:`SMBO_OPTIONS` (``objective_cap`` is applied by
    whoever tells it the objectives: :class:`_Surrogate`)."""
    from skopt import Optimizer

    options = {**SMBO_OPTIONS, **options}
    options.pop("objective_cap", None)
    base = _gbrt_surrogate(seed) if estimator == "GBRT" else estimator
    return Optimizer(list(space.values()), base_estimator=base, n_initial_points=n_initial,
                     random_state=seed, **options)


class _Surrogate:
    """One model's SMBO optimizer, and the trials it has not been told yet.

    Points are told just before the next ask (never after the last trial, which would only fit
    the surrogate for nothing). A failed point is told the worst objective among this model's
    finished trials so far, so that the surrogate moves away from it without its scale being
    distorted; failed points before any trial finished wait and are told that value once one
    does; meanwhile the next points are the initial design's that have not failed (untold,
    skopt would hand out the same initial point again).
    """

    def __init__(self, space: dict, estimator: str, n_initial: int, seed: int, sign: float):
        self.optimizer = make_optimizer(space, estimator, n_initial, seed)
        self.cap = SMBO_OPTIONS.get("objective_cap")
        self.names = list(space)
        self.sign = sign
        self.waiting = []     # failed points told before any trial finished
        self.untold = []      # (point, trial) pairs run since the last ask
        self.objectives = []  # every objective told, uncapped, in order

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
        finished = [self.sign * trial.score for trial in batch if trial.ok]
        if not finished and not self.objectives:
            self.waiting.extend(asked)
            return
        # The worst finished objective so far (a failed point was told no worse than it).
        worst = max(self.objectives + finished)
        values = [worst] * len(self.waiting) + [
            self.sign * trial.score if trial.ok else worst for trial in batch]
        self.objectives.extend(values)
        # The cap moves with every trial: the points told before are told anew, capped.
        told = capped(self.objectives, self.cap)
        self.optimizer.yi = told[:-len(values)]
        self.optimizer.tell(self.waiting + asked, told[-len(values):])
        self.waiting = []

    def ask(self, size: int, n_jobs: int) -> list[list]:
        self._tell()
        if self.waiting:
            # Nothing told yet (every point so far failed): the optimizer would hand out the
            # same initial point again, as its design advances only as points are told.
            return self._initial(size if n_jobs > 1 else 1)
        with warnings.catch_warnings():
            # In a small discrete space the acquisition's best point may be one already run;
            # scikit-optimize then draws a random point instead, as it should, and warns each time.
            warnings.filterwarnings("ignore", message="The objective has been evaluated at point",
                                    category=UserWarning)
            return [self.optimizer.ask()] if n_jobs == 1 else self.optimizer.ask(n_points=size)

    def _initial(self, size: int) -> list[list]:
        """``size`` points while nothing can be told: the initial design's first points that have
        not failed already (which depend on the failed points alone), then random draws."""
        optimizer = self.optimizer
        design = [] if optimizer._initial_samples is None else optimizer._initial_samples
        failed, points = [list(point) for point in self.waiting], []
        draws = (optimizer.space.rvs(random_state=optimizer.rng)[0] for _ in range(100 * size))
        for point in itertools.chain((list(point) for point in design), draws):   # draws: lazily
            if len(points) == size:
                break
            if point not in failed and point not in points:
                points.append(point)
        return points or [optimizer.space.rvs(random_state=optimizer.rng)[0]]


def run_smbo(search: Search, spaces: list, n_trials: int, seed: int, estimator: str,
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
