"""Tuning benchmark: does SMBO with 30 trials find what a 100-point random search finds?

Protocol (the done-when figure of issue 5):

- MovieLens 100k; ``train, test = random_holdout(data, 0.2, seed=42)``; the validation split is
  carved from the training part, ``fit, valid = random_holdout(train, 0.2, seed=43)``.
- ``ImplicitALS(seed=0)`` tuned over ``SPACE`` (factors, regularization, alpha, iterations) for
  validation precision@10: SMBO (Gaussian process, 10 initial points, 30 trials, seed 0) and a
  random search (100 trials, seed 0). Neither search sees the test split.
- Pass when SMBO's best validation precision@10 is >= 99% of the random search's, and the
  SMBO-tuned model, refitted on the whole training part (fit + valid), reaches test
  precision@10 >= 0.35.

Run it alone (a few minutes on 2 cores; ALS uses every core, so trials run one at a time)::

    RECLAB_DATA_DIR=../shared/data python -m benchmarks.tuning            # -> benchmarks/results/tuning.json
    python -m benchmarks.tuning --smbo-trials 10 --random-trials 20 --out /tmp/tuning.json   # a quick look

``--checkpoint-dir`` keeps each search's JSON-lines checkpoint there, so an interrupted run
resumes where it stopped. ``python -m benchmarks --suite tuning`` runs :func:`run` as one case of
the benchmark suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SPLIT_SEED = 42
VALID_SEED = 43
SEARCH_SEED = 0
MODEL_SEED = 0
METRIC = "precision@10"
SPACE = {
    # ImplicitALS's regularization acts on a loss summed over every user-item pair, so useful
    # values are large (the default is 20); alpha beyond 10 only overweights the observed pairs.
    "factors": {"type": "int", "low": 16, "high": 256, "prior": "log-uniform"},
    "regularization": {"type": "real", "low": 1.0, "high": 200.0, "prior": "log-uniform"},
    "alpha": {"type": "real", "low": 0.1, "high": 10.0, "prior": "log-uniform"},
    "iterations": {"type": "int", "low": 5, "high": 30},
}
RATIO_TARGET = 0.99
TEST_TARGET = 0.35


def _search(model, train, valid, method: str, n_trials: int, checkpoint_dir) -> tuple:
    from reclab.tuning import tune

    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = Path(checkpoint_dir) / f"tuning-{method}-{n_trials}.jsonl"
    started = time.perf_counter()
    result = tune(model, SPACE, train, valid, method=method, n_trials=n_trials, metric=METRIC,
                  seed=SEARCH_SEED, estimator="GP", n_initial=10, checkpoint=checkpoint)
    return result, time.perf_counter() - started


def _trials(result) -> list[dict]:
    return [{"number": t.number, "params": t.params, "score": t.score if t.ok else None,
             "status": t.status, "seconds": round(t.seconds, 3)} for t in result.trials]


def run(smbo_trials: int = 30, random_trials: int = 100, data_dir=None, checkpoint_dir=None) -> dict:
    """Run both searches and the test evaluation; return the figures as a dict.

    Scalars are the headline figures (the benchmark report tabulates them); ``*_trials`` lists
    and ``*_best_params`` dicts give the detail.
    """
    import reclab.datasets
    from reclab import split
    from reclab.evaluation import evaluate
    from reclab.models import ImplicitALS, clone

    data_dir = data_dir or os.environ.get("RECLAB_DATA_DIR")
    if not data_dir:
        from benchmarks.cases import Skip

        raise Skip("RECLAB_DATA_DIR is not set; point it at the MovieLens folder (../shared/data)")
    data = reclab.datasets.load("ml-100k", data_dir=data_dir, download=False)
    train, test = split.random_holdout(data, test_frac=0.2, seed=SPLIT_SEED)
    fit, valid = split.random_holdout(train, test_frac=0.2, seed=VALID_SEED)
    model = ImplicitALS(seed=MODEL_SEED)

    smbo_result, smbo_seconds = _search(model, fit, valid, "smbo", smbo_trials, checkpoint_dir)
    random_result, random_seconds = _search(model, fit, valid, "random", random_trials, checkpoint_dir)
    ratio = smbo_result.best_score / random_result.best_score
    within = [t.number for t in smbo_result.trials
              if t.ok and t.score >= RATIO_TARGET * random_result.best_score]

    started = time.perf_counter()
    tuned = clone(model).set_params(**smbo_result.best_params).fit(train)
    test_precision = evaluate(tuned, train, test, k=10, n_bootstrap=0).summary[METRIC]
    refit_seconds = time.perf_counter() - started
    random_tuned = clone(model).set_params(**random_result.best_params).fit(train)
    random_test_precision = evaluate(random_tuned, train, test, k=10, n_bootstrap=0).summary[METRIC]

    return {
        "dataset": "ml-100k",
        "metric": METRIC,
        "smbo_trials": smbo_trials,
        "random_trials": random_trials,
        "smbo_best_valid": round(smbo_result.best_score, 6),
        "random_best_valid": round(random_result.best_score, 6),
        "smbo_over_random": round(ratio, 4),
        "smbo_reaches_99pct": bool(ratio >= RATIO_TARGET),
        "smbo_trial_of_best": smbo_result.best_trial.number,
        "smbo_first_trial_within_99pct_of_random": within[0] if within else None,
        "test_precision@10": round(test_precision, 6),
        "test_precision_ok": bool(test_precision >= TEST_TARGET),
        "random_tuned_test_precision@10": round(random_test_precision, 6),
        "smbo_failed_trials": sum(not t.ok for t in smbo_result.trials),
        "random_failed_trials": sum(not t.ok for t in random_result.trials),
        "smbo_seconds": round(smbo_seconds, 1),
        "random_seconds": round(random_seconds, 1),
        "refit_and_test_seconds": round(refit_seconds, 1),
        "passed": bool(ratio >= RATIO_TARGET and test_precision >= TEST_TARGET),
        "smbo_best_params": smbo_result.best_params,
        "random_best_params": random_result.best_params,
        "space": SPACE,
        "protocol": {"split_seed": SPLIT_SEED, "valid_seed": VALID_SEED, "search_seed": SEARCH_SEED,
                     "model_seed": MODEL_SEED, "estimator": "GP", "n_initial": 10,
                     "valid_frac_of_train": 0.2, "test_frac": 0.2},
        "smbo_trials_detail": _trials(smbo_result),
        "random_trials_detail": _trials(random_result),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smbo-trials", type=int, default=30)
    parser.add_argument("--random-trials", type=int, default=100)
    parser.add_argument("--data-dir", default=None, help="MovieLens folder (default $RECLAB_DATA_DIR)")
    parser.add_argument("--checkpoint-dir", default=None, help="keep resumable search checkpoints here")
    parser.add_argument("--out", default=str(RESULTS / "tuning.json"), help="JSON result file")
    args = parser.parse_args(argv)

    from benchmarks.__main__ import environment
    from reclab._io import atomic_write

    result = run(args.smbo_trials, args.random_trials, args.data_dir, args.checkpoint_dir)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as handle:
        handle.write(json.dumps({"environment": environment(), "result": result}, indent=2) + "\n")
    shown = {key: value for key, value in result.items() if not isinstance(value, (list, dict))}
    print(json.dumps(shown, indent=2))
    print(f"wrote {out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
