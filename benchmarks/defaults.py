"""How the ranking models' defaults were chosen: a grid on validation folds, never on test.

Protocol:

- MovieLens 100k and ml-latest-small; ``train, test = random_holdout(data, 0.2, seed=42)`` (the
  README's split). Validation is carved from the training part only; ``test`` is never loaded
  into a model or a metric here.
- RP3beta is scored on ``FOLDS["RP3beta"]`` = 3 disjoint per-user validation folds: the first
  three pairs of ``kfold(train, n_splits=5, seed=43)``, so each fit holds 80% of every user's
  training interactions and each validation fold another, disjoint 20%. One split is too noisy
  to rank RP3beta's grid: a point's validation precision@10 varies by about 0.006 between folds
  (median; up to 0.011), several times the gaps between the best points (about 0.001).
- EASE and PureSVD (``FOLDS`` 1) are scored on the single split
  ``fit, valid = random_holdout(train, 0.2, seed=43)``; their grids have one clear optimum.
- ContentKNN (``COLD``) is chosen for cold items, on the cold-item protocol instead:
  ``train, test = cold_items(data, 0.2, seed=0)`` (the cold split of ``benchmarks/content.py``);
  ``train`` is restricted to its warm items (the test's cold items leave the id space), and
  ``FOLDS["ContentKNN"]`` = 3 validation splits ``cold_items(warm train, 0.2, seed=43, 44, 45)``
  are carved from it; each ranks only its own cold items (``candidates``).
- Every point of ``GRIDS`` is fitted on each fold's ``fit`` part and scored by validation
  precision@10 (``reclab.evaluate``, seen items filtered); a point's score on a data set is the
  mean over its folds.
- Rule: the default of a model is the point with the best mean, over the two data sets, of
  those per-data-set scores (ties: the lexically smaller JSON of the parameters).

Run it alone (a few minutes on 2 cores; EASE on ml-latest-small inverts a 9,700 x 9,700 matrix
per point; run it with ``nice`` on a shared machine). ``--models`` re-runs some models and keeps
the other models' recorded rows in ``--out``::

    RECLAB_DATA_DIR=../shared/data nice python -m benchmarks.defaults   # -> results/defaults.{json,md}
    nice python -m benchmarks.defaults --models RP3beta                 # one model, others kept
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ("ml-100k", "ml-latest-small")
SPLIT_SEED = 42
VALID_SEED = 43
VALID_SPLITS = 5
FOLDS = {"EASE": 1, "RP3beta": 3, "PureSVD": 1, "ContentKNN": 3}
COLD = ("ContentKNN",)
COLD_SEED = 0
METRIC = "precision@10"
GRIDS = {
    "EASE": {"regularization": [100.0, 200.0, 400.0, 800.0, 1600.0]},
    "RP3beta": {"alpha": [0.5, 0.75, 1.0], "beta": [0.5, 0.6, 0.7, 0.8], "neighbors": [400],
                "smoothing": [0.0, 5.0, 20.0]},
    "PureSVD": {"factors": [10, 15, 20, 30, 50, 100]},
    "ContentKNN": {"rating_weight": [0.0, 0.25, 0.5, 1.0], "idf": [True, False],
                   "group_profiles": [True, False], "normalize_items": [True, False]},
}


def validation_folds(dataset: str, data_dir, folds: int) -> list:
    """``[(fit, valid), ...]``: ``folds`` validation folds carved from the README split's training part.

    One fold is the single split ``random_holdout(train, 0.2, seed=43)``; more are the first
    ``folds`` of ``kfold(train, 5, seed=43)`` (disjoint validation parts, 20% of each user's
    training interactions each).
    """
    import reclab as rl

    data = rl.datasets.load(dataset, data_dir=data_dir, download=False)
    train, _ = rl.split.random_holdout(data, test_frac=0.2, seed=SPLIT_SEED)
    if folds == 1:
        return [rl.split.random_holdout(train, test_frac=0.2, seed=VALID_SEED)]
    return rl.split.kfold(train, n_splits=VALID_SPLITS, seed=VALID_SEED)[:folds]


def cold_validation_folds(dataset: str, data_dir, folds: int) -> list:
    """``[(fit, valid, candidates), ...]``: cold-item validation splits carved from the cold split's train.

    ``train, _ = cold_items(data, 0.2, seed=0)``, restricted to the items it has interactions
    for; fold ``k`` is ``cold_items(that, 0.2, seed=43 + k)``, whose cold items (the
    ``candidates``, original ids) are all that is ranked.
    """
    import numpy as np

    import reclab as rl

    data = rl.datasets.load(dataset, data_dir=data_dir, download=False)
    train, _ = rl.split.cold_items(data, test_frac=0.2, seed=COLD_SEED)
    warm = train.restrict(items=np.flatnonzero(train.item_counts() > 0))
    splits = [rl.split.cold_items(warm, test_frac=0.2, seed=VALID_SEED + fold) for fold in range(folds)]
    return [(fit, valid, rl.evaluation.cold_candidates(fit, valid)) for fit, valid in splits]


def points(grid: dict) -> list[dict]:
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]


def run(models=tuple(GRIDS), data_dir=None) -> dict:
    """Score every grid point on both validation splits; return rows and the chosen defaults."""
    import reclab as rl

    data_dir = data_dir or os.environ.get("RECLAB_DATA_DIR")
    if not data_dir:
        from benchmarks.cases import Skip

        raise Skip("RECLAB_DATA_DIR is not set; point it at the MovieLens folder (../shared/data)")
    rows = []
    for dataset in DATASETS:
        for name in models:
            if name in COLD:
                splits = cold_validation_folds(dataset, data_dir, FOLDS[name])
            else:
                splits = [split + (None,) for split in validation_folds(dataset, data_dir, FOLDS[name])]
            for params in points(GRIDS[name]):
                seconds, precision, ndcg = [], [], []
                for fit, valid, candidates in splits:
                    model = getattr(rl.models, name)(**params)
                    started = time.perf_counter()
                    model.fit(fit)
                    seconds.append(time.perf_counter() - started)
                    report = rl.evaluate(model, fit, valid, k=10, candidates=candidates, n_bootstrap=0)
                    precision.append(round(report.summary[METRIC], 6))
                    ndcg.append(report.summary["ndcg@10"])
                row = {"dataset": dataset, "model": name, "params": params,
                       "fit_seconds": round(sum(seconds) / len(seconds), 3),
                       METRIC: round(sum(precision) / len(precision), 6),
                       "ndcg@10": round(sum(ndcg) / len(ndcg), 6), "folds": precision}
                rows.append(row)
                print(json.dumps(row), flush=True)
    chosen = {name: choose(rows, name) for name in models}
    return {"metric": METRIC, "protocol": {"split_seed": SPLIT_SEED, "valid_seed": VALID_SEED,
                                           "test_frac": 0.2, "valid_frac_of_train": 0.2,
                                           "valid_splits": VALID_SPLITS, "cold_seed": COLD_SEED,
                                           "cold": [name for name in models if name in COLD],
                                           "folds": {name: FOLDS[name] for name in models}},
            "grids": {name: GRIDS[name] for name in models}, "chosen": chosen, "rows": rows}


def choose(rows: list[dict], name: str, top: int = 5) -> dict:
    """The default of ``name`` by the module's rule, with its scores and the ``top`` best points."""
    scores = {}
    for row in rows:
        if row["model"] == name:
            scores.setdefault(json.dumps(row["params"], sort_keys=True), {})[row["dataset"]] = row[METRIC]

    def mean(key):
        return round(sum(scores[key].get(dataset, 0.0) for dataset in DATASETS) / len(DATASETS), 6)

    ranked = sorted(scores, key=lambda key: (-mean(key), key))
    best = ranked[0]
    return {"params": json.loads(best), "valid": scores[best], "mean_valid": mean(best),
            "best_per_dataset": {dataset: max(s.get(dataset, 0.0) for s in scores.values())
                                 for dataset in DATASETS},
            "top": [{"params": json.loads(key), "valid": scores[key], "mean_valid": mean(key)}
                    for key in ranked[:top]]}


def merge(previous: dict, result: dict) -> dict:
    """``result`` plus the models of ``previous`` (an earlier result) that ``result`` did not re-run."""
    kept = [name for name in previous["chosen"] if name not in result["chosen"]]
    order = [name for name in GRIDS if name in kept or name in result["chosen"]]
    merged = dict(result)
    merged["protocol"] = dict(result["protocol"], folds={
        **{name: previous["protocol"].get("folds", {}).get(name, 1) for name in kept},
        **result["protocol"]["folds"]}, cold=[name for name in order if name in COLD])
    merged["grids"] = {**{name: previous["grids"][name] for name in kept}, **result["grids"]}
    merged["chosen"] = {name: previous["chosen"][name] if name in kept else result["chosen"][name]
                        for name in order}
    merged["measured"] = {**{name: previous["measured"][name] for name in kept}, **result["measured"]}
    merged["rows"] = sorted([row for row in previous["rows"] if row["model"] in kept] + result["rows"],
                            key=lambda row: (DATASETS.index(row["dataset"]), order.index(row["model"])))
    return merged

def markdown(result: dict, environment: dict) -> str:
    folds = result["protocol"].get("folds", {})
    lines = [f"Written {environment['date']} on {environment['cores']} cores (shared with other jobs: "
             "fit seconds are noisy). Validation precision@10 on folds carved from the README's 80/20 "
             "seed-42 training part; the test split is never used. One fold: `fit, valid = "
             "random_holdout(train, 0.2, seed=43)`; n folds: the first n of `kfold(train, 5, seed=43)` "
             "(disjoint validation parts); a point's score is its mean over the folds. Models marked cold "
             "are chosen on the cold-item protocol instead: n validation splits `cold_items(warm part of "
             "train, 0.2, seed=43..)` carved from `train, _ = cold_items(data, 0.2, seed=0)`, ranking "
             "only each split's cold items.", "",
             "| model | validation folds | measured |", "|---|---|---|"]
    cold = result["protocol"].get("cold", [])
    lines += [f"| {name}{' (cold)' if name in cold else ''} | {folds.get(name, 1)} | "
              f"{result.get('measured', {}).get(name, environment['date'])} |" for name in result["chosen"]]
    lines += ["", "### Chosen defaults (best mean validation precision@10 over both data sets)", "",
              "| model | default | " + " | ".join(f"{d} valid p@10 (grid best)" for d in DATASETS) + " |",
              "|---|---|" + "---|" * len(DATASETS)]
    for name, entry in result["chosen"].items():
        shown = ", ".join(f"{key}={value}" for key, value in entry["params"].items())
        cells = [f"{entry['valid'][d]:.4f} ({entry['best_per_dataset'][d]:.4f})" for d in DATASETS]
        lines.append(f"| {name} | {shown} | " + " | ".join(cells) + " |")
    for name, entry in result["chosen"].items():
        if "top" not in entry:
            continue
        lines += ["", f"### {name}: the best points", "",
                  "| parameters | " + " | ".join(f"{d} valid p@10" for d in DATASETS) + " | mean |",
                  "|---|" + "---|" * len(DATASETS) + "---|"]
        for point in entry["top"]:
            shown = ", ".join(f"{key}={value}" for key, value in point["params"].items())
            lines.append(f"| {shown} | " + " | ".join(f"{point['valid'][d]:.4f}" for d in DATASETS)
                         + f" | {point['mean_valid']:.4f} |")
    lines += ["", "### Every grid point", "",
              "| dataset | model | parameters | fit s | precision@10 | ndcg@10 | precision@10 per fold |",
              "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        shown = ", ".join(f"{key}={value}" for key, value in row["params"].items())
        per_fold = ", ".join(f"{value:.4f}" for value in row.get("folds", [row[METRIC]]))
        lines.append(f"| {row['dataset']} | {row['model']} | {shown} | {row['fit_seconds']:.3f} | "
                     f"{row[METRIC]:.4f} | {row['ndcg@10']:.4f} | {per_fold} |")
    return "\n".join(lines) + "\n"

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.defaults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(GRIDS), help=f"comma-separated, of {list(GRIDS)}")
    parser.add_argument("--data-dir", default=None, help="MovieLens folder (default $RECLAB_DATA_DIR)")
    parser.add_argument("--out", default=str(RESULTS / "defaults.json"), help="JSON result file")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    unknown = sorted(set(models) - set(GRIDS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {list(GRIDS)}")

    from benchmarks.runner import environment
    from reclab._io import atomic_write

    result = run(models, args.data_dir)
    env = environment()
    result["measured"] = {name: env["date"] for name in models}
    out = Path(args.out)
    if out.exists():
        previous = json.loads(out.read_text())
        previous["result"].setdefault("measured", dict.fromkeys(previous["result"]["chosen"],
                                                                previous["environment"]["date"]))
        result = merge(previous["result"], result)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as handle:
        handle.write(json.dumps({"environment": env, "result": result}, indent=2) + "\n")
    with atomic_write(out.with_suffix(".md"), "w") as handle:
        handle.write(markdown(result, env))
    print(json.dumps(result["chosen"], indent=2))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
