"""Plain helpers shared by several test files: reference definitions, crafted files, and the
settings of the session's three pipelines (conftest.py)."""

import atexit
import math
import os
import shutil
import sqlite3
import tempfile
import zipfile
from pathlib import Path


def user_metrics(hits_row, n_relevant: int, k: int) -> dict:
    """The ranking metrics of one user at cut-off ``k``, written out in plain Python from the
    definitions in reclab/metrics.py: ``hits_row`` says, rank by rank, whether the item there is
    relevant; ``n_relevant`` >= 1 counts the user's relevant items."""
    top = [bool(hit) for hit in hits_row[:k]]
    n_hits = sum(top)
    dcg = sum(1 / math.log2(rank + 1) for rank, hit in enumerate(top, 1) if hit)
    idcg = sum(1 / math.log2(rank + 1) for rank in range(1, min(n_relevant, k) + 1))
    seen, precision_sum = 0, 0.0
    for rank, hit in enumerate(top, 1):
        if hit:
            seen += 1
            precision_sum += seen / rank
    first = next((rank for rank, hit in enumerate(top, 1) if hit), None)
    return {"precision": n_hits / k, "recall": n_hits / n_relevant, "ndcg": dcg / idcg,
            "map": precision_sum / min(n_relevant, k), "mrr": 0.0 if first is None else 1 / first,
            "hit_rate": float(n_hits > 0)}


def crafted_zip(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    """A zip archive at ``path`` holding ``(name, content, unix mode)`` members exactly as given,
    however unsafe their names or modes."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content, unix_mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = unix_mode << 16
            archive.writestr(info, content)
    return path


_EMPTY_STORE: list = []   # this process's empty store, built on first use


def new_store(folder: Path) -> str:
    """URI of a new, empty SQLite MLflow store ``folder/mlflow.db``.

    MLflow builds a new database's schema (about 50 migrations) in 1-2.5 s, and some 30 tests
    each need a store of their own; so the store is a copy of an empty one this process built
    once. The copy leaves out MLflow's "Default" experiment, whose artifact folder MLflow fixes
    when it creates it: MLflow recreates it, as in a new store, the first time the copy is
    opened. Tests of a new store's creation itself (the schema lock, several processes opening
    it at once, a corrupt or unwritable file) give MLflow a path where no file exists instead.
    """
    if not _EMPTY_STORE:
        from mlflow import MlflowClient

        built = Path(tempfile.mkdtemp(prefix="reclab-empty-store-"))
        atexit.register(shutil.rmtree, built, ignore_errors=True)
        MlflowClient(tracking_uri=f"sqlite:///{built / 'mlflow.db'}").search_experiments()
        with sqlite3.connect(built / "mlflow.db") as database:
            database.execute("DELETE FROM experiments")
        database.close()
        _EMPTY_STORE.append(built / "mlflow.db")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_EMPTY_STORE[0], folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


# As small as the schema allows while every stage still has something to do: 2 ALS iterations,
# a handful of random-search trials, 20 bootstrap replicates, one baseline; stage 6 off.
TINY = """\
experiment: %(experiment)s
dataset: synthetic
synthetic: {n_users: 100, n_items: 120, n_ratings: 3000}
model: ImplicitALS
models:
  ImplicitALS:
    params: {iterations: 2}
    space:
      factors: {type: int, low: 4, high: 8}
      regularization: {type: real, low: 0.1, high: 10.0, prior: log-uniform}
tune: {method: random, n_trials: %(n_trials)d, metric: ndcg@10}
k: [5, 10]
evaluation: {n_bootstrap: 20}
n_recommendations: 5
baselines: [Popularity]
"""


def tiny_params(folder: Path, experiment: str, n_trials: int = 2) -> Path:
    """``folder/tiny.yaml``: :data:`TINY` in ``experiment`` with ``n_trials`` search trials."""
    path = folder / "tiny.yaml"
    path.write_text(TINY % {"experiment": experiment, "n_trials": n_trials}, encoding="utf-8")
    return path


# params/default.yaml made small: 2 random-search trials on 150 users, 20 bootstrap replicates.
SMALL_PIPELINE = ["synthetic.n_users=150", "synthetic.n_items=200", "synthetic.n_ratings=6000",
                  "tune.method=random", "tune.n_trials=2", "tune.metric=ndcg@10", "k=[5, 10]",
                  "evaluation.n_bootstrap=20", "n_recommendations=5", "baselines=[Popularity]",
                  "models.ImplicitALS.params.iterations=4", "online.enabled=false"]
PIPELINES_AT_ONCE = (("ImplicitALS", 11), ("SVD", 11), ("SVD", 12))
AT_ONCE_EXPERIMENT = "reclab"   # the default experiment, as the README example reads it
# Nothing here needs the network; MLflow would otherwise report usage.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


# ``python -S`` with PYTHONPATH set to the site-packages folders runs this as in an environment
# made from a pyfunc model's requirements.txt alone (what ``mlflow models serve`` builds): a module
# of any installed distribution outside those requirements and their dependencies cannot be
# imported, nor can the installed reclab (an editable install's .pth file needs ``site``). It loads
# the model sys.argv[1] and prints JSON: where reclab came from and the recommendations.
FRESH_ENVIRONMENT = '''
import importlib.abc, importlib.metadata as metadata, json, sys, tempfile
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
import mlflow.artifacts

folder = Path(mlflow.artifacts.download_artifacts(sys.argv[1], dst_path=tempfile.mkdtemp()))
installed, todo = set(), [Requirement(line).name
                          for line in (folder / "requirements.txt").read_text().split()]
while todo:
    name = canonicalize_name(todo.pop())
    if name not in installed:
        installed.add(name)
        todo += [Requirement(text).name for text in metadata.requires(name) or []
                 if Requirement(text).marker is None
                 or Requirement(text).marker.evaluate({"extra": ""})]
owners = metadata.packages_distributions()


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        top = fullname.partition(".")[0]
        if top != "reclab" and owners.get(top) and not any(
                canonicalize_name(owner) in installed for owner in owners[top]):
            raise ModuleNotFoundError(f"No module named {top!r} (not installed here)", name=top)
        return None


sys.meta_path.insert(0, NotInstalled())
try:
    import reclab
    raise SystemExit("reclab can be imported before the model is loaded")
except ModuleNotFoundError:
    pass
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(str(folder))
out = model.predict(pd.DataFrame({"user": [1, 2], "n": [4, 4]}))
import reclab
print(json.dumps({"reclab": reclab.__file__, "model": str(folder), "columns": list(out.columns),
                  "rows": len(out), "users": sorted(set(out["user"].tolist())),
                  "ranks": out["rank"].tolist(), "titles": out["title"].tolist()}))
'''


def site_packages_path() -> str:
    """PYTHONPATH for :data:`FRESH_ENVIRONMENT`: this interpreter's site-packages folders."""
    import site

    return os.pathsep.join(site.getsitepackages())


def stop_when(process, ready, signum: int, timeout: float = 120) -> tuple[str, str]:
    """Once ``ready()`` is true or ``process`` (a running ``reclab``, its pipes text) has ended,
    send it ``signum`` and return its output when it has ended; killed if it has not within
    ``timeout`` seconds, or if waiting failed."""
    import time

    try:
        while process.poll() is None and not ready():
            time.sleep(0.2)
        process.send_signal(signum)
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
