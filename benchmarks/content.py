"""Content-based and hybrid models, warm and cold (issue 19's done-when figures).

Protocol, on ML-100K and ml-latest-small:

- warm: ``random_holdout(data, 0.2, seed=42)`` (the README's quality protocol), every unseen item
  a candidate;
- cold: ``cold_items(data, 0.2, seed=0)``, ranking the cold items only
  (``evaluate(..., candidates=cold item ids)``);
- cold users: ``cold_users(data, 0.2, seed=0)``, all interactions of 20% of the users in test,
  every item a candidate (a collaborative model gives a new user zero factors: every item ties).

``evaluate`` breaks ties at random (seed 0).
  ML-100K has user features (age, gender, occupation); ml-latest-small has none, so HybridALS
  gives its new users the mean of the other users' factors.

Models at their defaults: ``ContentKNN`` (every feature, and ``feature_groups="genre,decade"``),
``HybridALS``, ``ImplicitALS``, ``Popularity``, and a random ranking; ``ContentKNN`` also as the
whole-profile cosine it was before per-group profiles (``rating_weight=0.5, group_profiles=False,
normalize_items=True``). The plain content profile of the issue (sum of the genre and decade
vectors of the rated items, unweighted, cosine) is ``ContentKNN(rating_weight=0, idf=False,
feature_groups="genre,decade", group_profiles=False, normalize_items=True)``. Fit seconds are one
wall-clock run each on a shared machine: indicative only.

    RECLAB_DATA_DIR=../shared/data python -m benchmarks.content     # -> benchmarks/results/content.{json,md}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ("ml-100k", "ml-latest-small")
# The plain content profile on its cold split (the better of unweighted and weighted).
REFERENCE = {"ml-100k": 0.117, "ml-latest-small": 0.086}


def _models():
    import reclab as rl
    from reclab.models.base import Recommender

    class RandomRanking(Recommender):
        """Uniform random scores (seeded per user batch): the chance level."""

        uses_item_features = True

        def __init__(self, seed: int = 0):
            self.seed = seed

        def _fit(self, train, report):
            self.fitted_ = True

        def _score(self, users):
            return np.random.default_rng([self.seed, int(users[0])]).random((users.size, self.n_items_))

    return {
        "ContentKNN": lambda: rl.models.ContentKNN(),
        "ContentKNN(feature_groups='genre,decade')": lambda: rl.models.ContentKNN(feature_groups="genre,decade"),
        "ContentKNN(whole-profile cosine)": lambda: rl.models.ContentKNN(rating_weight=0.5, group_profiles=False,
                                                                         normalize_items=True),
        "plain content profile": lambda: rl.models.ContentKNN(rating_weight=0.0, idf=False,
                                                              feature_groups="genre,decade",
                                                              group_profiles=False, normalize_items=True),
        "HybridALS": lambda: rl.models.HybridALS(),
        "ImplicitALS": lambda: rl.models.ImplicitALS(),
        "Popularity": lambda: rl.models.Popularity(),
        "random": lambda: RandomRanking(),
    }


def run(data_dir=None) -> list[dict]:
    import reclab as rl

    rows = []
    for dataset in DATASETS:
        data = rl.datasets.load(dataset, data_dir=data_dir, download=False)
        splits = {"warm": rl.split.random_holdout(data, test_frac=0.2, seed=42) + (None,),
                  "cold": rl.split.cold_items(data, test_frac=0.2, seed=0)}
        train, _ = splits["cold"]
        splits["cold"] += (train.item_ids[train.item_counts() == 0],)
        splits["cold users"] = rl.split.cold_users(data, test_frac=0.2, seed=0) + (None,)
        for protocol, (train, test, candidates) in splits.items():
            for name, make in _models().items():
                start = time.perf_counter()
                model = make().fit(train)
                seconds = time.perf_counter() - start
                report = rl.evaluate(model, train, test, k=10, candidates=candidates, n_bootstrap=0)
                rows.append({"dataset": dataset, "protocol": protocol, "model": name, "fit_seconds": seconds,
                             "precision@10": report.summary["precision@10"],
                             "ndcg@10": report.summary["ndcg@10"], "recall@10": report.summary["recall@10"]})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict], environment: dict) -> str:
    lines = [f"Measured {environment.get('date', '')} on {environment.get('cores', '?')} cores (shared, loaded "
             f"machine: fit seconds are indicative).", "",
             "warm: 80/20 per-user random holdout, seed 42, all unseen items ranked; cold: all interactions "
             "of 20% of the items (seed 0) in test, only those cold items ranked; cold users: all "
             "interactions of 20% of the users (seed 0) in test, every item ranked. Ties in score are "
             "broken at random (seed 0).", "",
             "| dataset | protocol | model | precision@10 | ndcg@10 | recall@10 | fit s |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['dataset']} | {row['protocol']} | {row['model']} | {row['precision@10']:.3f} | "
                     f"{row['ndcg@10']:.3f} | {row['recall@10']:.3f} | {row['fit_seconds']:.2f} |")
    lines += ["", "Issue 19's references (plain content profile on its cold split): "
              + ", ".join(f"{name} {value}" for name, value in REFERENCE.items())
              + "; target 1.1 times those for ContentKNN and HybridALS on the cold split."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.content", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="MovieLens folder (default $RECLAB_DATA_DIR)")
    parser.add_argument("--out", default=str(RESULTS / "content.json"), help="JSON result file")
    args = parser.parse_args(argv)

    from benchmarks.runner import environment
    from reclab._io import atomic_write

    rows = run(args.data_dir)
    document = {"environment": environment(), "results": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as handle:
        handle.write(json.dumps(document, indent=2) + "\n")
    with atomic_write(out.with_suffix(".md"), "w") as handle:
        handle.write(markdown(rows, document["environment"]))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
