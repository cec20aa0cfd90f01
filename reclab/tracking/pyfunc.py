"""The MLflow pyfunc model of a fitted reclab model: how the train stage saves it and how MLflow
serves it (``mlflow.pyfunc.load_model("runs:/<train run>/model")``)."""

from __future__ import annotations

import math
import shutil
import tempfile
import warnings
from collections.abc import Hashable
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, Schema

from reclab._io import atomic_write
from reclab._validate import check_int
from reclab.data import Interactions
from reclab.data.npz import id_array, text_array
from reclab.errors import ReclabError
from reclab.tracking.environment import package_version
from reclab.tracking.store import no_progress_bars, quiet_mlflow_log

__all__ = ["RecommenderPyfunc", "save_pyfunc_model"]

# The reclab package, saved with every model as its artifact "reclab": reclab is not on PyPI, so
# an environment made from the model's pip requirements alone has it only this way.
_PACKAGE = Path(__file__).resolve().parents[1]

# The model's code (MLflow runs it, as the model's file, to load the model). It imports the
# saved copy of reclab only where reclab is not installed: MLflow's own ``code_paths`` would put
# the copy first on ``sys.path``, so a new process would import it, and compile its numba
# kernels anew, instead of the installed reclab (8 s more per load).
_LOADER = """\
import importlib.util
import sys
from pathlib import Path

import mlflow.models

if importlib.util.find_spec("reclab") is None:   # the copy saved with the model (artifacts/reclab)
    sys.path.append(str(Path(__file__).resolve().parent / "artifacts"))
from reclab.tracking import RecommenderPyfunc

mlflow.models.set_model(RecommenderPyfunc())
"""


def save_pyfunc_model(path, model, model_file, data: Interactions, n_example_users: int = 3) -> Path:
    """Save ``model`` as an MLflow pyfunc model in the new folder ``path``; return it.

    The model is saved from code (a three-line module that builds :class:`RecommenderPyfunc`), not
    as a pickle of a live object; its artifacts are the reclab model file ``model_file`` and the
    id / title catalog of ``data`` (what the model was fitted on;
    data of another shape is refused). The signature and an input
    example of the first ``n_example_users`` users go with it, pip requirements pinned to the
    installed versions, and the source of the reclab package itself (artifact ``reclab``, without
    compiled caches), which loading the model imports where reclab is not installed.
    """
    path = Path(path)
    # The catalog names the model's indices: other data would serve other ids, without a word.
    if (data.n_users, data.n_items) != (model.n_users_, model.n_items_):
        raise ReclabError(f"the data given for the ids and titles has {data.n_users} users x {data.n_items} "
                          f"items, but the {type(model).__name__} was fitted on {model.n_users_} x "
                          f"{model.n_items_}; pass the Interactions it was fitted on")
    with tempfile.TemporaryDirectory() as folder:
        catalog = Path(folder) / "catalog.npz"
        _save_catalog(catalog, data)
        code = Path(folder) / "reclab_pyfunc.py"
        # Models from code: MLflow stores this file, not a pickle of a live object.
        code.write_text(_LOADER, encoding="utf-8")
        package = shutil.copytree(_PACKAGE, Path(folder) / "reclab",
                                  ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
        users = data.user_ids[:max(1, n_example_users)]
        example = pd.DataFrame({"user": users, "n": np.full(len(users), 5, dtype=np.int64)})
        # Saving checks the input example against the model, which MLflow loads back with
        # a download progress bar (red stderr in a notebook).
        with warnings.catch_warnings(), quiet_mlflow_log(), no_progress_bars():
            # Hints about integer columns and type hints, about a signature given explicitly.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")
            mlflow.pyfunc.save_model(
                str(path), python_model=str(code),
                artifacts={"model": str(model_file), "catalog": str(catalog), "reclab": str(package)},
                signature=_signature(data), input_example=example,
                pip_requirements=[f"{name}=={package_version(name)}"
                                  for name in ("numpy", "scipy", "pandas", "numba", "mlflow")],
                metadata={"reclab_version": package_version("reclab"),
                          "model_class": type(model).__name__})
    return path


def _save_catalog(path: Path, data: Interactions) -> None:
    """Ids and titles the pyfunc model maps indices with (the model file holds the rest)."""
    arrays = {"user_ids": id_array(data.user_ids), "item_ids": id_array(data.item_ids),
              "titles": text_array(data.titles(np.arange(data.n_items)))}
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)


def _id_type(ids: np.ndarray):
    """The MLflow column type of ids: unsigned ids (reclab keeps ids from 2**63 to 2**64 - 1 as
    uint64) fit no MLflow type, whose integers are int64, so they are any (MLflow refused the
    input example, and so the whole model, with 'Can not safely convert uint64 to int64')."""
    if ids.dtype.kind == "u":
        return AnyType()
    return "string" if ids.dtype == object or ids.dtype.kind == "U" else (
        "long" if ids.dtype.kind == "i" else "double")


def _signature(data: Interactions) -> ModelSignature:
    inputs = Schema([ColSpec(_id_type(data.user_ids), "user"), ColSpec("long", "n", required=False)])
    outputs = Schema([ColSpec(_id_type(data.user_ids), "user"), ColSpec(_id_type(data.item_ids), "item"),
                      ColSpec("long", "rank"), ColSpec("float", "score"), ColSpec("string", "title")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _lengths(values: list, n_items: int) -> np.ndarray:
    """Each row's list length from the ``n`` column's ``values``: 10 where missing (None, NaN:
    a column with a missing length is float, so a whole float such as 5.0 counts as 5), capped at
    ``n_items`` (the rest would only be padding). Anything else but an integer >= 1 (2.7, True,
    inf, "5") is refused, as MLflow's schema refuses it."""
    lengths = np.full(len(values), 10, dtype=np.int64)
    for row, value in enumerate(values):
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        lengths[row] = min(check_int("n", value, low=1), n_items)
    return lengths


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """A reclab model served through MLflow's pyfunc interface.

    ``load_context`` reads the reclab model file (``artifacts["model"]``) and the id / title
    catalog (``artifacts["catalog"]``); nothing is unpickled.

    ``predict`` takes a DataFrame with a ``user`` column (original user ids) and an optional
    ``n`` column (list length per row: an integer >= 1, 10 where missing) and returns a DataFrame
    with one row per recommendation: ``user``, ``item`` (original ids), ``rank`` (1 = best),
    ``score`` (float32 model score) and ``title``; each user's training items are left out. An
    unknown user, or a length that is no integer >= 1, raises ``ValueError`` naming it.
    """

    def load_context(self, context) -> None:
        from reclab.models import load

        self.model_ = load(context.artifacts["model"])
        with np.load(context.artifacts["catalog"], allow_pickle=False) as archive:
            self.user_ids_ = archive["user_ids"]
            self.item_ids_ = archive["item_ids"]
            self.titles_ = archive["titles"]
        self.user_lookup_ = {value: index for index, value in enumerate(self.user_ids_.tolist())}

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "user" not in frame.columns:
            raise ReclabError(f"input needs a 'user' column of user ids; columns are "
                              f"{list(frame.columns)}")
        users = frame["user"].tolist()
        # A bool is no user id (True would find user 1), a list is no id at all.
        unknown = [user for user in users if isinstance(user, (bool, np.bool_))
                   or not isinstance(user, Hashable) or user not in self.user_lookup_]
        if unknown:
            raise ReclabError(f"unknown user id(s) {unknown[:10]}; the model knows "
                              f"{len(self.user_lookup_)} users, e.g. {self.user_ids_[:3].tolist()}")
        indices = np.asarray([self.user_lookup_[user] for user in users], dtype=np.int64)
        lengths = _lengths(frame["n"].tolist() if "n" in frame.columns else [None] * len(users),
                           self.model_.n_items_)
        if not len(users):
            return pd.DataFrame({"user": [], "item": [], "rank": [], "score": [], "title": []})
        # Lengths are capped at the catalog: the rest would only be padding, dropped below.
        ids, scores = self.model_.recommend(indices, n=int(lengths.max()), filter_seen=True)
        rows_user, rows_item, rows_rank, rows_score = [], [], [], []
        for row, (user, length) in enumerate(zip(users, lengths)):
            keep = ids[row, :length] >= 0
            items = ids[row, :length][keep]
            rows_user.extend([user] * items.size)
            rows_item.append(items)
            rows_rank.append(np.arange(1, items.size + 1))
            rows_score.append(scores[row, :length][keep])
        items = np.concatenate(rows_item)
        return pd.DataFrame({"user": rows_user, "item": self.item_ids_[items],
                             "rank": np.concatenate(rows_rank).astype(np.int64),
                             "score": np.concatenate(rows_score).astype(np.float32),
                             "title": self.titles_[items].astype(str)})
