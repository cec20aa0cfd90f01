"""Tuning benchmark: grid, random and SMBO (GP, RF, ET) at equal trial budgets, over seeds.

Protocol (the done-when figures of issue 15):

- Data and split exactly as the pipeline makes them from ``params/<dataset>.yaml``: k-core,
  test held out first, validation carved from the rest (:func:`reclab.config.make_split`).
- ``ImplicitALS`` over the parameter file's ImplicitALS space (factors, regularization, alpha),
  with cheap fixed settings (``--iterations``, default 5 sweeps instead of the file's 15), so
  that the whole benchmark stays within a shared 2-core machine's means. Every search starts
  from the model's own parameters (trial 0), as :func:`reclab.tune` does.
- Methods at equal budgets: ``random`` (``--random-trials``, default 100), ``grid`` (a
  factors x regularization x alpha grid of the same size, seed-independent: run once),
  ``smbo-GP``, ``smbo-RF``, ``smbo-ET`` (``--smbo-trials``, default 40, 6 initial points,
  :data:`reclab.tuning.SMBO_OPTIONS`; ``smbo-GP-skopt`` etc. with scikit-optimize's defaults),
  each over ``--seeds`` seeds (default 5), with ``folds=1`` (the single validation split) and
  ``--folds`` (default 3) validation folds.
- Figures: the mean best-so-far validation curve of each method with a band (the range across
  seeds) in ``benchmarks/results/tuning.png``; the test precision@10 of each method's chosen
  point (refitted on train + validation); the trial at which SMBO first reaches the best of
  random search's full budget with the same seed and folds (target: within 30, on average; the
  report gives the mean with its standard error over the seeds, and the median).
  Give SMBO more trials than the target (the committed run: 70) and run the searches that have
  not reached it by then on (``--continue-to``, the committed run: 150; :func:`continue_unreached`)
  so that this count is measured rather than cut off: a seed that never reaches it counts as
  its last trial + 1 and is counted in ``never``, and :func:`_passed` holds only when every
  seed reached it.
- Seeds: compare SMBO settings (:data:`reclab.tuning.SMBO_OPTIONS`) on the development seeds
  100-109 (``--first-seed 100``), never on the reported seeds 0-29 of the committed results
  (first seeds 0-9; at 10 seeds the standard error of each mean was about 7 trials and every
  mean within one of the target, so seeds 10-29 were added without changing anything else).

Run it alone, niced, with ALS limited to one thread per process if the machine is shared::

    RECLAB_DATA_DIR=../shared/data nice python -m benchmarks.tuning            # -> results/tuning.json, .png, .md
    python -m benchmarks.tuning --seeds 2 --random-trials 20 --smbo-trials 10 --out /tmp/t.json   # a quick look
    # the committed results/tuning.*: one process per data set and fold setting (1, then 3), each
    # with --partial F-<data set>-<folds>.jsonl, then --from-partial F-*.jsonl to summarize them all
    # (random search's runs do not depend on SMBO's settings: keep its partial file and rerun SMBO)
    python -m benchmarks.tuning --methods random,smbo-GP --fold-settings 1 --iterations 3 --smbo-trials 70 \
        --seeds 10 --datasets ml-latest-small --partial F-ml-latest-small-1.jsonl --out /tmp/part.json
    # grid search and the tree surrogates (the committed run: these 5 seeds, then smbo-RF,smbo-ET
    # alone with --first-seed 5 --seeds 5 for seeds 5-9), likewise
    python -m benchmarks.tuning --methods grid,smbo-RF,smbo-ET --fold-settings 1,3 --iterations 3 \
        --smbo-trials 70 --seeds 5 --datasets ml-latest-small --partial F-ml-latest-small-trees.jsonl \
        --out /tmp/part.json
    # then run the SMBO searches that have not reached random's best on to 150 trials, and summarize
    python -m benchmarks.tuning --from-partial F-*.jsonl --continue-to 150 --partial F-continued.jsonl
    # the same on the development seeds, to compare SMBO settings
    python -m benchmarks.tuning --first-seed 100 --methods random,smbo-GP ...

``python -m benchmarks --suite tuning`` runs :func:`run` with the defaults as one case of the
benchmark suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
METRIC = "precision@10"
TARGET_TRIALS = 30
DATASETS = ("ml-100k", "ml-latest-small")
SMBO = ("GP", "RF", "ET")
#: SMBO's initial points, the start point included (as in the parameter files' ``tune.n_initial``).
N_INITIAL = 6
#: ``smbo-<estimator>-skopt``: scikit-optimize's own defaults (``gp_hedge``, ``xi=0.01``, random
#: initial points) instead of :data:`reclab.tuning.SMBO_OPTIONS`, to measure what they change.
SKOPT_DEFAULTS = {"acq_func": "gp_hedge", "acq_func_kwargs": {"xi": 0.01, "kappa": 1.96},
                  "initial_point_generator": "random"}


def _grid(space: dict, size: int) -> dict:
    """A grid of about ``size`` points over a space's ranges: geometric for log-uniform ranges."""
    names = list(space)
    per = max(2, round(size ** (1 / len(names))))
    counts = [per] * len(names)
    while np.prod(counts) > size and max(counts) > 2:   # shrink to at most ``size`` points
        counts[int(np.argmax(counts))] -= 1
    grid = {}
    for name, count in zip(names, counts):
        spec = space[name]
        values = (np.geomspace if spec.get("prior") == "log-uniform" else np.linspace)(
            spec["low"], spec["high"], count)
        grid[name] = sorted({int(round(v)) for v in values}) if spec["type"] == "int" \
            else [float(f"{v:.4g}") for v in values]
    return grid


def _curve(result) -> list:
    """Best validation score so far after each trial (failed trials count as nothing)."""
    scores = np.array([t.score if t.ok else np.nan for t in result.trials], dtype=float)
    return np.fmax.accumulate(np.nan_to_num(scores, nan=-np.inf)).tolist()


def _reached(curve: list, target: float) -> int | None:
    """The first trial (1-based) whose best-so-far score reaches ``target``; None if none does."""
    return next((i + 1 for i, best in enumerate(curve) if best >= target), None)


def _smbo(model, space, train, valid, method: str, n_trials: int, seed: int, n_folds: int):
    """One SMBO search of the benchmark (``method``: ``smbo-<estimator>[-skopt]``)."""
    from reclab.tuning import tune

    with _smbo_options(method):
        return tune(model, space, train, valid, method="smbo", n_trials=n_trials, seed=seed,
                    folds=n_folds, estimator=method.split("-")[1], n_initial=N_INITIAL)


def _continued(model, space, train, valid, record: dict, target: float, continue_to: int):
    """For an SMBO search that did not reach ``target`` within its budget: the trial at which it
    does when run on to ``continue_to`` trials (None: not even then). Its first trials are the
    same (SMBO proposes each point from the trials before it), which is checked."""
    result = _smbo(model, space, train, valid, record["method"], continue_to, record["seed"],
                   record["folds"])
    curve = _curve(result)
    if curve[:len(record["curve"])] != record["curve"]:
        raise RuntimeError(f"{record['method']} seed {record['seed']} folds {record['folds']}: "
                           f"the continued search does not repeat the recorded trials")
    return _reached(curve, target)


def continue_unreached(paths, continue_to: int, out_path, data_dir=None) -> int:
    """Continue every SMBO search in the JSON-lines files ``paths`` that never reached random
    search's best (same data set, folds and seed) to ``continue_to`` trials, and append its
    record with ``trials_to_random_best`` (and ``continued_to``) to ``out_path``. Its best and
    test figures stay those of its budget; only the count is no longer cut off. Returns the
    number of searches continued."""
    records = _records(paths)
    best = {(r["dataset"], r["folds"], r["seed"]): r["best_valid"] for r in records
            if r["method"] == "random"}
    todo = [r for r in records if r["method"].startswith("smbo-") and "continued_to" not in r
            and (r["dataset"], r["folds"], r["seed"]) in best
            and _reached(r["curve"], best[r["dataset"], r["folds"], r["seed"]]) is None]
    setups = {}
    for record in todo:
        key = record["dataset"], record["protocol"]["iterations"]
        if key not in setups:
            setups[key] = _setup(*key, data_dir or os.environ.get("RECLAB_DATA_DIR"))
        _, model, space, train, valid, _ = setups[key]
        target = best[record["dataset"], record["folds"], record["seed"]]
        started = time.perf_counter()
        reached = _continued(model, space, train, valid, record, target, continue_to)
        with open(out_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**record, "trials_to_random_best": reached,
                                     "continued_to": continue_to}) + "\n")
        print(f"{record['dataset']} folds={record['folds']} {record['method']} seed="
              f"{record['seed']}: reaches random's best at trial {reached} of {continue_to} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return len(todo)


def _setup(dataset: str, iterations: int, data_dir):
    from reclab import preprocess
    from reclab.config import Config, load_data, make_model, make_split

    config = Config.load(ROOT / "params" / f"{dataset}.yaml",
                         {"models.ImplicitALS.params.iterations": iterations,
                          **({"data_dir": str(data_dir)} if data_dir else {})})
    data = preprocess.kcore(load_data(config), **config.kcore.model_dump())
    train, valid, test = make_split(config, data)
    model = make_model(config, "ImplicitALS")
    return config, model, config.models["ImplicitALS"].space, train, valid, test


def run(seeds: int = 5, random_trials: int = 100, smbo_trials: int = 40, folds: int = 3,
        iterations: int = 5, datasets=DATASETS, data_dir=None, fold_settings=None,
        partial=None, methods=None, first_seed: int = 0) -> dict:
    """Run every search and the test evaluations; return the figures as a dict.

    ``fold_settings`` (default ``(1, folds)``) are the numbers of folds compared. ``partial``,
    a JSON-lines path, gets one line per finished search, so that an interrupted benchmark
    keeps what it measured (and :func:`from_partial` summarizes it). ``methods`` limits the
    methods run (default: grid, random and SMBO with each surrogate). The seeds are
    ``first_seed, ..., first_seed + seeds - 1`` (development seeds: see the module docstring).
    """
    methods = list(methods or ("grid", "random", *(f"smbo-{e}" for e in SMBO)))
    from reclab.evaluation import evaluate
    from reclab.models import clone
    from reclab.tuning import tune

    data_dir = data_dir or os.environ.get("RECLAB_DATA_DIR")
    if not data_dir:
        from benchmarks.cases import Skip

        raise Skip("RECLAB_DATA_DIR is not set; point it at the MovieLens folder (../shared/data)")
    fold_settings = list(fold_settings or (1, folds))
    out = {"protocol": {"seeds": list(range(first_seed, first_seed + seeds)),
                        "random_trials": random_trials, "smbo_trials": smbo_trials,
                        "folds": fold_settings, "iterations": iterations, "n_initial": N_INITIAL,
                        "metric": METRIC, "target_trials": TARGET_TRIALS},
           "datasets": {}}
    for dataset in datasets:
        _, model, space, train, valid, test = _setup(dataset, iterations, data_dir)
        fit = train.union(valid)
        grid = _grid(space, random_trials)
        test_cache: dict = {}

        def test_precision(best_params: dict) -> float:
            key = json.dumps(best_params, sort_keys=True)
            if key not in test_cache:
                tuned = clone(model).set_params(**best_params).fit(fit)
                test_cache[key] = evaluate(tuned, fit, test, k=10, n_bootstrap=0).summary[METRIC]
            return test_cache[key]

        per_dataset = {"space": space, "grid": grid, "settings": {}}
        for n_folds in fold_settings:
            runs = {}
            for method in methods:
                runs[method] = []
                for seed in range(first_seed, first_seed + (1 if method == "grid" else seeds)):
                    started = time.perf_counter()
                    if method == "grid":
                        result = tune(model, grid, train, valid, method="grid", seed=seed,
                                      folds=n_folds)
                    elif method == "random":
                        result = tune(model, space, train, valid, method="random",
                                      n_trials=random_trials, seed=seed, folds=n_folds)
                    else:
                        result = _smbo(model, space, train, valid, method, smbo_trials, seed,
                                       n_folds)
                    seconds = time.perf_counter() - started
                    runs[method].append({
                        "seed": seed, "curve": _curve(result), "best_valid": result.best_score,
                        "best_params": result.best_params,
                        "test_precision@10": test_precision(result.best_params),
                        "seconds": round(seconds, 1)})
                    if partial is not None:
                        with open(partial, "a", encoding="utf-8") as handle:
                            handle.write(json.dumps({"dataset": dataset, "folds": n_folds,
                                                     "method": method, "space": space,
                                                     "protocol": out["protocol"],
                                                     **runs[method][-1]}) + "\n")
                    print(f"{dataset} folds={n_folds} {method} seed={seed}: best valid "
                          f"{result.best_score:.4f}, test {runs[method][-1]['test_precision@10']:.4f}"
                          f" ({seconds:.0f} s)", flush=True)
            per_dataset["settings"][f"folds={n_folds}"] = _summarize(runs)
        out["datasets"][dataset] = per_dataset
    out["passed"] = _passed(out)
    return out


@contextlib.contextmanager
def _smbo_options(method: str):
    """``reclab.tuning.SMBO_OPTIONS`` (read by ``reclab.tuning._search``) for one SMBO method:
    scikit-optimize's defaults for ``smbo-<estimator>-skopt``, reclab's own otherwise."""
    from reclab.tuning import _search

    saved = _search.SMBO_OPTIONS
    _search.SMBO_OPTIONS = SKOPT_DEFAULTS if method.endswith("-skopt") else saved
    try:
        yield
    finally:
        _search.SMBO_OPTIONS = saved


def _records(paths) -> list[dict]:
    """The searches recorded in JSON-lines files, once each (a search run by two processes
    counts once; a record of its continuation, from :func:`continue_unreached`, replaces it)."""
    records: dict = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                key = (record["dataset"], record["folds"], record["method"], record["seed"])
                if key not in records or "continued_to" in record:
                    records[key] = record
    return list(records.values())


def from_partial(paths) -> dict:
    """The result dict of :func:`run` from the JSON-lines files it wrote as it went (searches
    of one data set and fold setting are summarized when random search has at least one seed)."""
    records = _records(paths)
    budget = {method: max(len(record["curve"]) for record in records
                          if record["method"].startswith(method)) for method in ("random", "smbo")
              if any(record["method"].startswith(method) for record in records)}
    out = {"protocol": {**records[0]["protocol"],
                        "folds": sorted({record["folds"] for record in records}),
                        "seeds": sorted({record["seed"] for record in records}),
                        **{f"{method}_trials": n for method, n in budget.items()},
                        "continued_to": max((record.get("continued_to", 0) for record in records),
                                            default=0) or None},
           "datasets": {}}
    for dataset in dict.fromkeys(record["dataset"] for record in records):
        mine = [record for record in records if record["dataset"] == dataset]
        per_dataset = {"space": mine[0]["space"], "settings": {}}
        for n_folds in sorted({record["folds"] for record in mine}):
            runs: dict = {}
            for record in mine:
                if record["folds"] == n_folds:
                    runs.setdefault(record["method"], []).append(
                        {key: record[key] for key in ("seed", "curve", "best_valid", "best_params",
                                                      "test_precision@10", "seconds",
                                                      "trials_to_random_best", "continued_to")
                         if key in record})
            if "random" in runs:
                per_dataset["settings"][f"folds={n_folds}"] = _summarize(runs)
        out["datasets"][dataset] = per_dataset
    out["passed"] = _passed(out)
    return out


def _passed(out: dict) -> bool:
    """The done-when: SMBO-GP's mean trials to random search's best is within the target on
    every data set and fold setting, and every seed reached it (a seed that never did has an
    unknown count above the budget, so the mean is then only a lower bound)."""
    return all(
        setting["smbo_mean_trials_to_random_best"][estimator] is not None
        and setting["smbo_mean_trials_to_random_best"][estimator] <= TARGET_TRIALS
        and setting["smbo_never_reached"][estimator] == 0
        for per_dataset in out["datasets"].values() for setting in per_dataset["settings"].values()
        for estimator in ("GP",) if estimator in setting["smbo_mean_trials_to_random_best"])


def _summarize(runs: dict) -> dict:
    """Per method: the runs, mean best validation and test precision; per SMBO surrogate: the
    mean number of trials to reach random search's full-budget best of the same seed (a search
    continued past its budget by :func:`continue_unreached` counts at the trial it reached it; one
    that never reaches it counts as its last trial + 1, and is counted in ``..._never``), with its
    median and the standard error of the mean over the seeds (how far the mean is from deciding
    the target); and the trial at which SMBO's mean best-so-far curve (the figure's)
    reaches the mean over the seeds of random search's best."""
    random_best = {run["seed"]: run["best_valid"] for run in runs.get("random", [])}
    summary = {"runs": runs, "mean_best_valid": {}, "mean_test_precision@10": {},
               "smbo_mean_trials_to_random_best": {}, "smbo_median_trials_to_random_best": {},
               "smbo_trials_standard_error": {}, "smbo_never_reached": {}, "smbo_continued": {},
               "smbo_mean_curve_reaches_random_mean_best": {},
               "smbo_seeds_within_target": {}}
    for method, method_runs in runs.items():
        summary["mean_best_valid"][method] = float(np.mean([r["best_valid"] for r in method_runs]))
        summary["mean_test_precision@10"][method] = float(
            np.mean([r["test_precision@10"] for r in method_runs]))
    for estimator in [method[len("smbo-"):] for method in runs if method.startswith("smbo-")]:
        needed, never, continued = [], 0, 0
        for run in runs[f"smbo-{estimator}"]:
            if run["seed"] not in random_best:
                continue
            if "continued_to" in run:   # run on past its budget by continue_unreached
                reached, budget = run["trials_to_random_best"], run["continued_to"]
                continued += 1
            else:
                reached = _reached(run["curve"], random_best[run["seed"]])
                budget = len(run["curve"])
            needed.append(budget + 1 if reached is None else reached)
            never += reached is None
        if needed:
            summary["smbo_mean_trials_to_random_best"][estimator] = float(np.mean(needed))
            summary["smbo_median_trials_to_random_best"][estimator] = float(np.median(needed))
            summary["smbo_trials_standard_error"][estimator] = (
                float(np.std(needed, ddof=1) / np.sqrt(len(needed))) if len(needed) > 1 else None)
            summary["smbo_never_reached"][estimator] = never
            summary["smbo_continued"][estimator] = continued
            mean_curve = np.mean([run["curve"] for run in runs[f"smbo-{estimator}"]], axis=0)
            random_mean = float(np.mean(list(random_best.values())))
            summary["smbo_mean_curve_reaches_random_mean_best"][estimator] = _reached(
                mean_curve.tolist(), random_mean)
            summary["smbo_seeds_within_target"][estimator] = \
                f"{sum(n <= TARGET_TRIALS for n in needed)}/{len(needed)}"
    return summary


def _setting_label(setting: str) -> str:
    """``folds=1`` / ``folds=k`` spelled out: which validation objective the searches optimized."""
    folds = int(setting.split("=")[1])
    return (f"{setting}: one validation split" if folds == 1 else
            f"{setting}: mean of {folds} validation holdouts")


def plot(result: dict):
    """Mean best-so-far validation precision@10 against the trial, a band over the seeds, one
    panel per data set and fold setting."""
    from matplotlib.figure import Figure

    datasets = list(result["datasets"])
    settings = list(next(iter(result["datasets"].values()))["settings"])
    fig = Figure(figsize=(max(8, 6 * len(settings)), 4 * len(datasets)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(datasets), len(settings), squeeze=False))
    for row, dataset in enumerate(datasets):
        for column, setting in enumerate(settings):
            ax = axes[row, column]
            summary = result["datasets"][dataset]["settings"][setting]
            for position, (method, runs) in enumerate(summary["runs"].items()):
                curves = np.array([run["curve"] for run in runs])
                trials = np.arange(1, curves.shape[1] + 1)
                mean = curves.mean(axis=0)
                ax.plot(trials, mean, color=f"C{position}", lw=1.8,
                        label=f"{method}, {len(runs)} seed{'s' if len(runs) > 1 else ''} "
                              f"(test {summary['mean_test_precision@10'][method]:.3f})")
                if len(runs) > 1:
                    ax.fill_between(trials, curves.min(axis=0), curves.max(axis=0),
                                    color=f"C{position}", alpha=0.15)
            ax.axvline(TARGET_TRIALS, color="0.5", ls=":", lw=1)
            ax.set(title=f"{dataset}, {_setting_label(setting)}", xlabel="trial",
                   ylabel=f"best validation {METRIC} so far")
            low = min(min(run["curve"][min(len(run["curve"]) - 1, 4)] for run in runs)
                      for runs in summary["runs"].values())
            ax.set_ylim(bottom=low)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Tuning ImplicitALS: mean best-so-far validation {METRIC}\n(band: range over "
                 f"seeds; legend: mean test {METRIC} of the chosen points)")
    return fig


def markdown(result: dict) -> str:
    protocol = result["protocol"]
    lines = [f"Tuning ImplicitALS ({protocol['iterations']} sweeps) over the parameter files' "
             f"space for validation {METRIC}; every search starts from the model's own point; "
             f"SMBO with {protocol['n_initial']} initial points. Test {METRIC}: the chosen point "
             f"refitted on train + validation. Searches of one seed and fold setting share the "
             f"seed; grid search is seed-independent (one run). Seeds {protocol['seeds']}. "
             f"Trials to random's best: the first trial whose best-so-far validation score "
             f"reaches random search's best after all its trials with the same seed and folds; "
             + (f"a search that has not reached it by the end of its budget is continued "
                f"(\"continued\": the same search run on, up to {protocol['continued_to']} "
                f"trials; its best and test figures stay those of its budget); "
                if protocol.get("continued_to") else "")
             + "a search that never does counts as its last trial + 1 (the mean is then a "
               "lower bound).", ""]
    for dataset, per_dataset in result["datasets"].items():
        for setting, summary in per_dataset["settings"].items():
            lines += [f"### {dataset}, {_setting_label(setting)}", "",
                      "| method | trials | mean best validation | mean test precision@10 | "
                      "mean trials to random's best ± standard error (never = last trial + 1) | "
                      f"median | seeds within {TARGET_TRIALS} trials | mean curve reaches "
                      "random's mean best at trial |",
                      "|---|---|---|---|---|---|---|---|"]
            for method, runs in summary["runs"].items():
                estimator = method[len("smbo-"):] if method.startswith("smbo") else None
                reach = median = curve = ""
                if summary["smbo_mean_trials_to_random_best"].get(estimator) is not None:
                    error = summary["smbo_trials_standard_error"][estimator]
                    notes = [f"{summary[key].get(estimator)} {word}" for key, word in (
                        ("smbo_continued", "continued"), ("smbo_never_reached", "never"))
                        if summary[key].get(estimator)]
                    reach = (f"{summary['smbo_mean_trials_to_random_best'][estimator]:.1f}"
                             + ("" if error is None else f" ± {error:.1f}")
                             + (f" ({', '.join(notes)})" if notes else ""))
                    median = f"{summary['smbo_median_trials_to_random_best'][estimator]:.1f}"
                    curve = (summary["smbo_mean_curve_reaches_random_mean_best"][estimator]
                             or "never")
                lines.append(f"| {method} | {len(runs[0]['curve'])} x {len(runs)} seeds | "
                             f"{summary['mean_best_valid'][method]:.4f} | "
                             f"{summary['mean_test_precision@10'][method]:.4f} | {reach} | "
                             f"{median} | "
                             f"{summary['smbo_seeds_within_target'].get(estimator, '')} | {curve} |")
            lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1 (100: the development seeds)")
    parser.add_argument("--random-trials", type=int, default=100)
    parser.add_argument("--smbo-trials", type=int, default=40)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--data-dir", default=None, help="MovieLens folder (default $RECLAB_DATA_DIR)")
    parser.add_argument("--out", default=str(RESULTS / "tuning.json"), help="JSON result file")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="instead of running: combine the result files of runs on separate "
                             "data sets (run in parallel) into --out")
    parser.add_argument("--fold-settings", default=None,
                        help="comma-separated numbers of folds to compare (default: 1,--folds)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of grid, random, smbo-GP, smbo-RF, smbo-ET")
    parser.add_argument("--partial", default=None,
                        help="JSON-lines file that gets each finished search at once")
    parser.add_argument("--from-partial", nargs="+", default=None, metavar="JSONL",
                        help="instead of running: summarize --partial files into --out")
    parser.add_argument("--continue-to", type=int, default=None, metavar="N",
                        help="run each SMBO search that has not reached random search's best "
                             "on to N trials, to count its trials rather than cut them off "
                             "(recorded in --partial)")
    args = parser.parse_args(argv)

    from benchmarks.runner import environment
    from reclab._io import atomic_write

    if args.continue_to is not None and not args.partial:
        parser.error("--continue-to needs --partial, the file that records the continued searches")
    if args.from_partial:
        if args.continue_to is not None:
            continue_unreached(args.from_partial, args.continue_to, args.partial, args.data_dir)
        result = from_partial([*args.from_partial,
                               *([args.partial] if args.continue_to is not None else [])])
        result["wall_seconds"] = None
    elif args.merge:
        parts = [json.loads(Path(path).read_text())["result"] for path in args.merge]
        result = {**parts[0], "datasets": {name: value for part in parts
                                           for name, value in part["datasets"].items()},
                  "passed": all(part["passed"] for part in parts),
                  "wall_seconds": [part["wall_seconds"] for part in parts]}
    else:
        started = time.perf_counter()
        settings = [int(n) for n in args.fold_settings.split(",")] if args.fold_settings else None
        result = run(args.seeds, args.random_trials, args.smbo_trials, args.folds, args.iterations,
                     args.datasets.split(","), args.data_dir, settings, args.partial,
                     args.methods.split(",") if args.methods else None, args.first_seed)
        if args.continue_to is not None:
            continue_unreached([args.partial], args.continue_to, args.partial, args.data_dir)
            result = from_partial([args.partial])
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as handle:
        handle.write(json.dumps({"environment": environment(), "result": result}, indent=1) + "\n")
    plot(result).savefig(out.with_suffix(".png"), dpi=110)
    with atomic_write(out.with_suffix(".md"), "w") as handle:
        handle.write(markdown(result) + "\n")
    print(markdown(result))
    print(f"wrote {out}, {out.with_suffix('.png')} and {out.with_suffix('.md')}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
