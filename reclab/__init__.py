"""reclab: a Jupyter-first, reproducible experiment lab for recommender systems.

>>> import reclab as rl
>>> data = rl.datasets.synthetic(seed=0)
>>> train, test = rl.split.random_holdout(data, test_frac=0.2, seed=42)
>>> model = rl.models.ImplicitALS(factors=32, seed=0).fit(train)
>>> report = rl.evaluate(model, train, test, k=10)

The names below are imported on first use (PEP 562 ``__getattr__``), not by ``import reclab``:
a stage notebook's ``from reclab import tracking`` then loads what that stage needs, not
scikit-optimize, scipy.stats and every model besides (each kernel start pays every import).
"""

import importlib

from reclab._numba_cache import ensure_cache_folder

ensure_cache_folder()   # before any kernel is defined: a read-only home must not break the import

__version__ = "0.1.0"

# Re-exported name -> the module that defines it.
_NAMES = {"Interactions": "reclab.data", "ReclabError": "reclab.errors",
          "Comparison": "reclab.evaluation", "EvaluationReport": "reclab.evaluation",
          "compare": "reclab.evaluation", "evaluate": "reclab.evaluation",
          "ranking_metrics": "reclab.evaluation",
          "Trial": "reclab.tuning", "TuningResult": "reclab.tuning", "tune": "reclab.tuning"}

__all__ = ["Interactions", "ReclabError", "datasets", "metrics", "models", "normalize", "online", "postprocess",
           "preprocess", "ranking", "space", "spark", "split", "tuning", "evaluate", "compare", "ranking_metrics",
           "EvaluationReport", "Comparison", "tune", "TuningResult", "Trial", "__version__"]


def __getattr__(name: str):
    """``reclab.<name>``: the re-exported name or any submodule (``rl.evaluation`` too, as when
    everything was imported up front), imported now and then kept."""
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        try:
            value = importlib.import_module(f"reclab.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"reclab.{name}":
                raise
            raise AttributeError(f"module 'reclab' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
