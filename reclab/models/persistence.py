"""The model file: one ``.npz`` per fitted model, no pickle, verified by a sha256 on load.

``Recommender.save`` writes every learned attribute (a name ending in ``_``) as arrays (sparse
ones as ``name.data``, ``name.indices``, ``name.indptr``, ``name.shape``) and a ``__meta__`` JSON
entry with the format, class, parameters, reclab version and a sha256 of everything else.
:func:`load` checks the digest, the layout and that the result is a model ``fit`` could have made,
and rebuilds only the model classes registered here (every concrete subclass of
:class:`reclab.models.base.Recommender` registers itself), never an arbitrary import path.

This module knows models only through their contract (``get_params``, ``_learned_names``,
``_learned_shapes``, ``_validate_params``, ``score_items``, ...), so that ``reclab.models.base``
can use it without a cycle.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from importlib import metadata
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from reclab._io import atomic_write, read_npz
from reclab.errors import ReclabError

__all__ = ["save_model", "load", "register", "registered_models", "digest"]

_FORMAT = "reclab-model"
_FORMAT_VERSION = 1

# Every concrete model class, by name: load() rebuilds only these, never an arbitrary import path.
_REGISTRY: dict[str, type] = {}


def save_model(model, path) -> Path:
    """Write the fitted ``model`` to one ``.npz`` file at ``path`` (see ``Recommender.save``)."""
    arrays, kinds = {}, {}
    for name in model._learned_names():
        value = getattr(model, name)
        if sp.issparse(value):
            value = value.tocsr()
            kinds[name] = "csr"
            arrays[f"{name}.data"] = np.asarray(value.data)
            arrays[f"{name}.indices"] = np.asarray(value.indices)
            arrays[f"{name}.indptr"] = np.asarray(value.indptr)
            arrays[f"{name}.shape"] = np.asarray(value.shape, dtype=np.int64)
        elif isinstance(value, np.ndarray):
            kinds[name] = "array"
            arrays[name] = value
        elif isinstance(value, (bool, np.bool_)):
            kinds[name], arrays[name] = "bool", np.asarray(value, dtype=bool)
        elif isinstance(value, numbers.Integral):
            kinds[name], arrays[name] = "int", np.asarray(value, dtype=np.int64)
        elif isinstance(value, numbers.Real):
            kinds[name], arrays[name] = "float", np.asarray(value, dtype=np.float64)
        else:
            raise TypeError(f"cannot save learned attribute {name} of type {type(value).__name__}")
    # Tuners hand out numpy scalars (np.int64 is not JSON); store the plain Python value.
    params = {name: value.item() if isinstance(value, np.generic) else value
              for name, value in model.get_params().items()}
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ReclabError(f"cannot save {type(model).__name__}: parameters {params} are not "
                          f"JSON-serializable ({error})") from None
    meta = {"format": _FORMAT, "version": _FORMAT_VERSION, "class": type(model).__name__,
            "params": params, "attributes": kinds, "reclab_version": _reclab_version()}
    meta["sha256"] = digest(meta, arrays)
    path = Path(path)
    if not path.parent.is_dir():
        raise ReclabError(f"cannot save {type(model).__name__} to {path}: folder {str(path.parent)!r} "
                          f"does not exist; create it first")
    with atomic_write(path, "wb") as handle:
        np.savez(handle, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return path


def _reclab_version() -> str:
    try:
        return metadata.version("reclab")
    except metadata.PackageNotFoundError:
        return "unknown"


def digest(meta: dict, arrays: dict) -> str:
    """sha256 of the metadata (without the digest itself) and every array's name, dtype, shape, bytes."""
    hasher = hashlib.sha256()
    hasher.update(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        hasher.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


_KIND_ARRAYS = {"csr": (".data", ".indices", ".indptr", ".shape"), "array": ("",), "bool": ("",),
                "int": ("",), "float": ("",)}


def _check_layout(path: Path, params, kinds, arrays: dict) -> None:
    """The metadata describes exactly the stored arrays, and only learned attributes.

    The sha256 proves a file is intact, not that its writer was reclab: a file crafted with a
    matching digest must still fail here with a clear error, never set arbitrary attributes
    (``__class__``, a method, a parameter) on the model.
    """
    if not isinstance(params, dict) or not isinstance(kinds, dict):
        raise ReclabError(f"{path} is not a reclab model file (params and attributes must be JSON objects)")
    expected = set()
    for name, kind in kinds.items():
        if not (isinstance(name, str) and name.isidentifier() and name.endswith("_")
                and not name.startswith("_")):
            raise ReclabError(f"{path} stores {name!r}, which is not a learned attribute (a name "
                              f"ending in '_'); the file was not written by reclab")
        if kind not in _KIND_ARRAYS:
            raise ReclabError(f"{path} stores attribute {name} with unknown kind {kind!r}")
        expected.update(name + suffix for suffix in _KIND_ARRAYS[kind])
    if expected != set(arrays):
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise ReclabError(f"{path} does not hold the arrays its metadata lists (missing {missing}, "
                          f"unexpected {extra}); the file was not written by reclab")
    for name, kind in kinds.items():
        if kind in ("bool", "int", "float") and arrays[name].shape != ():
            raise ReclabError(f"{path} stores {kind} attribute {name} with shape {arrays[name].shape}, "
                              f"expected a scalar")


def load(path):
    """Load a model written by ``Recommender.save`` (no pickle: ``allow_pickle=False``).

    Returns
    -------
    reclab.models.base.Recommender
        The fitted model, of the class named in the file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ReclabError
        If the file is not a reclab model, was truncated or altered (sha256 mismatch), names a
        model class that reclab does not know, or holds arrays that do not match its metadata
        (a crafted file: only learned attributes, ending in ``_``, are ever set).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    arrays = read_npz(path, "reclab model file", "a model file is what model.save(path) writes")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
        kind, version, class_name = meta["format"], meta["version"], meta["class"]
        params, kinds, expected = meta["params"], meta["attributes"], meta["sha256"]
    except (KeyError, TypeError, ValueError):
        raise ReclabError(f"{path} is not a reclab model file (no valid __meta__ entry)") from None
    if kind != _FORMAT or not isinstance(version, int) or version > _FORMAT_VERSION:
        raise ReclabError(f"{path} has format {kind!r} version {version!r}; this reclab reads "
                          f"{_FORMAT!r} up to version {_FORMAT_VERSION}")
    if digest(meta, arrays) != expected:
        raise ReclabError(f"{path} failed its sha256 check: the file was altered or damaged")
    _check_layout(path, params, kinds, arrays)
    cls = _REGISTRY.get(class_name)
    if cls is None:
        raise ReclabError(f"{path} holds a {class_name!r} model, which is not a known reclab model "
                          f"class; known: {sorted(_REGISTRY)}")
    valid = cls._param_names()
    if sorted(params) != sorted(valid):
        raise ReclabError(f"{path} has parameters {sorted(params)} but {class_name} takes {valid}")
    model = cls(**params)
    for name, kind in kinds.items():
        if kind == "csr":
            try:
                shape = tuple(int(size) for size in arrays[f"{name}.shape"])
                value = sp.csr_matrix((arrays[f"{name}.data"], arrays[f"{name}.indices"],
                                       arrays[f"{name}.indptr"]), shape=shape)
                # The constructor checks only lengths; scipy's C++ routines trust the rest, so an
                # index pointer or index out of range would read past the arrays later.
                value.check_format(full_check=True)
            except (TypeError, ValueError) as error:
                raise ReclabError(f"{path} stores sparse attribute {name} with inconsistent arrays: "
                                  f"{error}") from None
            for part in ("data", "indices", "indptr"):
                _readonly(getattr(value, part))
        elif kind == "array":
            value = arrays[name]
        elif kind == "bool":
            value = bool(arrays[name])
        elif kind == "int":
            value = int(arrays[name])
        elif kind == "float":
            value = float(arrays[name])
        else:
            raise ReclabError(f"{path} stores attribute {name} with unknown kind {kind!r}")
        setattr(model, name, value)
    _check_loaded(path, model)
    return model


def registered_models() -> dict[str, type]:
    """Every concrete reclab model class by name, in definition order: the classes :func:`load`
    rebuilds (a subclass of :class:`Recommender` that implements ``_fit`` and whose name does not
    start with ``_`` registers itself when it is defined)."""
    return dict(_REGISTRY)


def register(cls: type) -> type:
    """Make ``cls`` loadable by :func:`load` under its class name (called by
    ``Recommender.__init_subclass__`` for every concrete model class)."""
    _REGISTRY[cls.__name__] = cls
    return cls


def _check_loaded(path: Path, model) -> None:
    """The loaded model is one ``fit`` could have made: valid parameters, and learned arrays whose
    names and shapes agree with each other and with the class.

    Like :func:`_check_layout`, for a file whose digest was recomputed after an edit: without
    this, it would load and fail later with an ``AttributeError`` or a broadcast error.
    """
    name = type(model).__name__
    try:
        model.check_params()
    except ReclabError as error:
        raise ReclabError(f"{path} holds invalid parameters for {name}: {error}") from None
    learned = {key: getattr(model, key) for key in model._learned_names()}
    sizes = [learned.get("n_users_"), learned.get("n_items_")]
    if not all(isinstance(size, int) and size >= 1 for size in sizes) or not sp.issparse(learned.get("seen_")):
        raise ReclabError(f"{path} does not record n_users_, n_items_ (integers >= 1) and seen_ (sparse), "
                          f"which every fitted {name} has; the file was not written by reclab")
    n_users, n_items = sizes
    expected = model._learned_shapes(learned, n_users, n_items)
    for key, shape in expected.items():
        got = getattr(learned.get(key), "shape", None)
        if got != shape:
            raise ReclabError(f"{path}: {name} attribute {key} has shape {got}, expected {shape} for "
                              f"{n_users} users and {n_items} items; the file was altered")
    # Whatever else the class needs (a missing array of another model class, a factor width
    # that disagrees with the biases): score one user, and predict and compare for one pair.
    try:
        scores = model.score_items([0])
        if scores.shape != (1, n_items):
            raise ValueError(f"scores of shape {scores.shape}, expected (1, {n_items})")
        if model.predicts_ratings:
            model.predict(0, 0)
        model.similar_items(0, n=1)
    except TypeError as error:
        if "has no item similarities" not in str(error):
            raise ReclabError(f"{path} does not hold a usable {name} ({type(error).__name__}: "
                              f"{error}); the file was altered") from None
    except (AttributeError, IndexError, ValueError, KeyError) as error:
        raise ReclabError(f"{path} does not hold a usable {name} ({type(error).__name__}: {error}); "
                          f"the file was altered or written for another model class") from None

