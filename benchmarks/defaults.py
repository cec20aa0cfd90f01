"""How the ranking models' defaults were chosen: a grid on validation splits, never on test.

Protocol:

- MovieLens 100k and ml-latest-small; ``train, test = random_holdout(data, 0.2, seed=42)`` (the
  README's split); the validation split is carved from the training part,
  ``fit, valid = random_holdout(train, 0.2, seed=43)``. Only ``fit`` and ``valid`` are used here.
- Every point of ``GRIDS`` is fitted on ``fit`` and scored by validation precision@10
  (``reclab.evaluate``, seen items filtered). The chosen default of a model is the point with the
  best mean validation precision@10 over the two data sets.

Run it alone (a few minutes on 2 cores; EASE on ml-latest-small inverts a 9,700 x 9,700 matrix
per point)::

    RECLAB_DATA_DIR=../shared/data python -m benchmarks.defaults        # -> results/defaults.{json,md}
    python -m benchmarks.defaults --models PureSVD --out /tmp/defaults.json   # one model
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
METRIC = "precision@10"
GRIDS = {
    "EASE": {"regularization": [100.0, 200.0, 400.0, 800.0, 1600.0]},
    "RP3beta": {"alpha": [0.5, 0.75, 1.0], "beta": [0.35, 0.5, 0.65, 0.8], "neighbors": [100, 200, 400]},
    "PureSVD": {"factors": [10, 15, 20, 30, 50, 100]},
}


def validation_split(dataset: str, data_dir):
    """``(fit, valid)``: the validation split carved from the README split's training part."""
    import reclab as rl

    data = rl.datasets.load(dataset, data_dir=data_dir, download=False)
    train, _ = rl.split.random_holdout(data, test_frac=0.2, seed=SPLIT_SEED)
    return rl.split.random_holdout(train, test_frac=0.2, seed=VALID_SEED)


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
        fit, valid = validation_split(dataset, data_dir)
        for name in models:
            for params in points(GRIDS[name]):
                model = getattr(rl.models, name)(**params)
                started = time.perf_counter()
                model.fit(fit)
                seconds = time.perf_counter() - started
                report = rl.evaluate(model, fit, valid, k=10, n_bootstrap=0)
                row = {"dataset": dataset, "model": name, "params": params, "fit_seconds": round(seconds, 3),
                       METRIC: round(report.summary[METRIC], 6), "ndcg@10": round(report.summary["ndcg@10"], 6)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    chosen = {}
    for name in models:
        scores = {}
        for row in rows:
            if row["model"] == name:
                scores.setdefault(json.dumps(row["params"], sort_keys=True), {})[row["dataset"]] = row[METRIC]
        best = max(scores, key=lambda key: (sum(scores[key].values()) / len(DATASETS), key))
        chosen[name] = {"params": json.loads(best), "valid": scores[best],
                        "mean_valid": round(sum(scores[best].values()) / len(DATASETS), 6),
                        "best_per_dataset": {dataset: max(s.get(dataset, 0.0) for s in scores.values())
                                             for dataset in DATASETS}}
    return {"metric": METRIC, "protocol": {"split_seed": SPLIT_SEED, "valid_seed": VALID_SEED,
                                           "test_frac": 0.2, "valid_frac_of_train": 0.2},
            "grids": {name: GRIDS[name] for name in models}, "chosen": chosen, "rows": rows}


def markdown(result: dict, environment: dict) -> str:
    lines = [f"Measured {environment['date']} on {environment['cores']} cores (shared with other jobs: "
             "fit seconds are noisy). Validation precision@10 on `fit, valid = random_holdout(train, 0.2, "
             "seed=43)` of the README's 80/20 seed-42 training part; the test split is never used.", "",
             "### Chosen defaults (best mean validation precision@10 over both data sets)", "",
             "| model | default | " + " | ".join(f"{d} valid p@10 (grid best)" for d in DATASETS) + " |",
             "|---|---|" + "---|" * len(DATASETS)]
    for name, entry in result["chosen"].items():
        shown = ", ".join(f"{key}={value}" for key, value in entry["params"].items())
        cells = [f"{entry['valid'][d]:.4f} ({entry['best_per_dataset'][d]:.4f})" for d in DATASETS]
        lines.append(f"| {name} | {shown} | " + " | ".join(cells) + " |")
    lines += ["", "### Every grid point", "", "| dataset | model | parameters | fit s | precision@10 | ndcg@10 |",
              "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        shown = ", ".join(f"{key}={value}" for key, value in row["params"].items())
        lines.append(f"| {row['dataset']} | {row['model']} | {shown} | {row['fit_seconds']:.3f} | "
                     f"{row[METRIC]:.4f} | {row['ndcg@10']:.4f} |")
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
    out = Path(args.out)
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
