"""reclab: a Jupyter-first, reproducible experiment lab for recommender systems.

>>> import reclab as rl
>>> data = rl.datasets.synthetic(seed=0)
>>> train, test = rl.split.random_holdout(data, test_frac=0.2, seed=42)
>>> model = rl.models.ImplicitALS(factors=32, seed=0).fit(train)
>>> report = rl.evaluate(model, train, test, k=10)
"""

from reclab._numba_cache import ensure_cache_folder

ensure_cache_folder()   # before any kernel is defined: a read-only home must not break the import

from reclab import (datasets, metrics, models, normalize, online, postprocess, preprocess, ranking,
                    space, spark, split, tuning)
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.evaluation import Comparison, EvaluationReport, compare, evaluate, ranking_metrics
from reclab.tuning import Trial, TuningResult, tune

__version__ = "0.1.0"

__all__ = ["Interactions", "ReclabError", "datasets", "metrics", "models", "normalize", "online", "postprocess",
           "preprocess", "ranking", "space", "spark", "split", "tuning", "evaluate", "compare", "ranking_metrics",
           "EvaluationReport", "Comparison", "tune", "TuningResult", "Trial", "__version__"]
