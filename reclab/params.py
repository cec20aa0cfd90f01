"""Pipeline parameter files (YAML): load, override, validate.

A parameter file sets any subset of the keys below; every key it leaves out takes its default.
``--set key=value`` overrides (dotted keys reach nested values; the value is read as YAML, so
``--set k=[5,10]`` is a list and ``--set data_dir=null`` is None) are applied on top, and the
result is validated: an unknown key, a wrong type or a value out of range raises
:class:`~reclab.errors.ReclabError` naming the key and the file (or the ``--set`` override).

Schema (defaults in brackets)::

    experiment: str                 MLflow experiment name ["reclab"]
    dataset: str                    "synthetic" or a MovieLens name ("ml-100k", ...) ["synthetic"]
    data_dir: str | null            folder searched first for MovieLens files [null: RECLAB_DATA_DIR]
    synthetic: {arg: value}         keyword arguments of reclab.datasets.synthetic [{}]
    seed: int                       seed of every random step (split, tuning, models, bootstrap) [0]
    kcore: {min_user, min_item}     k-core thresholds, ints >= 1 [5, 5]
    split:
      method: str                   "random_holdout" | "leave_k_out" | "temporal" | "cold_items" |
                                    "cold_users" ["random_holdout"]
      test_frac: float              share of each user's interactions held out for test [0.2]
      valid_frac: float             share of the rest held out for tuning [0.2]
      k: int                        interactions per user held out by leave_k_out [5]
    model: str                      the entry of `models` to tune, train and evaluate ["ImplicitALS";
                                    "SparkALS" where the same file or --set says backend: spark]
    models:                         per model name:
      <Name>:
        params: {arg: value}        fixed constructor arguments [{}]
        space: {arg: spec}          search space of stage 2, in reclab.space format [{}]
        starts: [{arg: value}]      extra start points of the search, tried right after the
                                    model's own parameters (missing args: the model's values) [[]]
    tune:
      method: str                   "grid" | "random" | "smbo" ["smbo"]
      n_trials: int                 trials of random / smbo search, >= 1 (grid runs its grid) [20]
      metric: str                   validation metric to maximize ["precision@10"]
      n_initial: int                smbo: random trials before the surrogate model is used [10]
      estimator: str                smbo surrogate: "GP" | "RF" | "ET" | "GBRT" ["GP"]
      folds: int                    validation folds each trial is scored on (their mean is the
                                    objective; reclab.split.validation_folds), >= 1 [3]
      models: [str]                 models to search, each in its own space, under one trial
                                    budget; the best on validation goes on to stage 3 [[]: `model`]
      time_budget: float | null     seconds after which no new trial starts [null: no limit]
    k: [int]                        cut-offs K of the metrics (one int is one cut-off) [[5, 10, 20]]
    evaluation:
      relevance_threshold: float | null   only test ratings >= this are relevant [null: all]
      n_bootstrap: int              bootstrap replicates of the intervals, >= 0 [1000]
    n_recommendations: int          length of the top-N lists of stage 4 [10]
    baselines: [str]                model names evaluated beside the model ["Popularity", "Bias"]
    backend: str                    "local" | "spark" ["local"; "spark" where the same file or
                                    --set says model: SparkALS]
    online:                         stage 6, the simulated online tests (reclab.online)
      enabled: bool                 run stage 6 when no --stages are given [false]
      n_users: int                  simulated users of the A/B test and of interleaving, >= 8 [5000]
      n_simulations: int            simulated tests per point of the power curves, >= 1 [100]
      world_model: str              real data only: the model whose scores stand in for the
                                    true utilities (World.from_model) ["ItemKNN"]

Backends
--------
``backend: local`` trains and scores in the kernel's own Python. ``backend: spark`` trains
:class:`reclab.models.SparkALS` (Spark MLlib's ALS) in a Spark session of each stage's kernel
(``local[*]`` unless ``models.SparkALS.params.master`` names a cluster), and stage 5 computes the
test metrics with :func:`reclab.spark.evaluate` as well. The two keys go together: ``backend:
spark`` means ``model: SparkALS`` and ``model: SparkALS`` means ``backend: spark``. Setting one
of them (in a file or with ``--set``) without the other implies the other, so
``reclab run -p params/ml-latest-small.yaml --set backend=spark`` runs the file's SparkALS entry;
a contradiction (``backend: spark`` with ``model: SVD``) is an error.

Grid search
-----------
``tune.method: grid`` enumerates value lists: every parameter of the tuned model's space must be
a list (``factors: [16, 32, 64]``) or a categorical; an ``int`` / ``real`` range is refused when
the parameters are checked, before anything runs.

Functions
---------
load(path, overrides=None) -> dict
    The validated parameters of a file, defaults filled in.
loads(text, source, overrides=None) -> dict
    The same from YAML text (a pipeline run's ``params.yaml``).
notebook_overrides(dataset=None, ...) -> dict
    The overrides a stage notebook's parameters cell makes (None = not given).
parse_assignments(["key=value", ...]) -> dict
    ``--set`` strings to ``{dotted key: value}``.
validate(params, source) -> dict
    Check a parameter mapping (defaults filled in); ``source`` names it in errors.
flatten(params) -> dict
    ``{"tune.n_trials": 20, ...}`` for the active model only: readable keys for MLflow.
dump(params) -> str
    YAML text that :func:`load` reads back to the same parameters.
load_data(params), make_split(params, data), make_model(params, name=None, searched=None),
make_world(params, data)
    The objects the parameters describe, for the stage notebooks.
tuned_models(params) -> list
    The names of the models stage 2 searches.
tune_search(params), tune_options(params), evaluation_options(params) -> dict
    Keyword arguments of ``tune`` and ``evaluate``.
"""

from __future__ import annotations

import copy
import inspect
import json
import numbers
import warnings
from pathlib import Path
from typing import Mapping

import yaml

from reclab.errors import ReclabError
from reclab.models.base import registered_models

__all__ = ["MODEL_NAMES", "DEFAULTS", "load", "loads", "notebook_overrides", "parse_assignments", "validate",
           "flatten", "dump", "load_data", "make_split", "make_model", "make_world", "tuned_models",
           "tune_search", "tune_options", "evaluation_options"]

# Every model reclab.models.load can rebuild, so that a new model class is a valid `model:` at once.
MODEL_NAMES = tuple(registered_models())
_SPLIT_METHODS = ("random_holdout", "leave_k_out", "temporal", "cold_items", "cold_users")
_TUNE_METHODS = ("grid", "random", "smbo")
_BACKENDS = ("local", "spark")
# The model each non-local backend trains (see "Backends" in the module docstring).
_BACKEND_MODEL = {"spark": "SparkALS"}
_RANKING_METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")

DEFAULTS = {
    "experiment": "reclab",
    "dataset": "synthetic",
    "data_dir": None,
    "synthetic": {},
    "seed": 0,
    "kcore": {"min_user": 5, "min_item": 5},
    "split": {"method": "random_holdout", "test_frac": 0.2, "valid_frac": 0.2, "k": 5},
    "model": "ImplicitALS",
    "models": {},
    "tune": {"method": "smbo", "n_trials": 20, "metric": "precision@10", "n_initial": 10,
             "estimator": "GP", "folds": 3, "models": [], "time_budget": None},
    "k": [5, 10, 20],
    "evaluation": {"relevance_threshold": None, "n_bootstrap": 1000},
    "n_recommendations": 10,
    "baselines": ["Popularity", "Bias"],
    "backend": "local",
    "online": {"enabled": False, "n_users": 5000, "n_simulations": 100, "world_model": "ItemKNN"},
}
# Mappings whose keys are free (checked by the code that uses them, not by the schema).
_FREE = {"synthetic", "models"}


# -- checks of one value ----------------------------------------------------------------------
def _fail(source: str, key: str, message: str) -> ReclabError:
    return ReclabError(_shortened(f"{source}: key {key!r} {message}"))


# A parameter file has tens of values; YAML aliases can make a 1 KB file stand for billions
# ("billion laughs"): values are counted with each alias expanded, and refused beyond this.
_MAX_VALUES = 100_000
_MAX_MESSAGE = 2000


def _shortened(message: str) -> str:
    """A message of at most about ``_MAX_MESSAGE`` characters (a long value is cut in the middle)."""
    if len(message) <= _MAX_MESSAGE:
        return message
    half = _MAX_MESSAGE // 2
    return f"{message[:half]} [... {len(message) - 2 * half} characters ...] {message[-half:]}"


def _check_expansion(value, source: str) -> None:
    """Refuse a value that contains itself (a YAML anchor used inside its own value) or that
    stands for more than ``_MAX_VALUES`` values once its aliases are expanded.

    Shared nodes are counted once per use but visited once, so this takes time proportional to
    the file, not to the expansion.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ReclabError(f"{source}: a value contains itself (a YAML anchor used inside its own "
                              f"value, such as '&a [*a]'); write the value out")
        open_nodes.add(key)
        total = 1
        for child in (node.values() if isinstance(node, dict) else node):
            total += size(child)
            if total > _MAX_VALUES:
                raise ReclabError(f"{source}: the values stand for more than {_MAX_VALUES:,} values once "
                                  f"YAML aliases (*name) are expanded; a parameter file needs far fewer "
                                  f"(nested aliases?)")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    try:
        size(value)
    except RecursionError:
        raise ReclabError(f"{source}: values are nested too deeply") from None


def _shown(value) -> str:
    """``value`` as JSON for a message (any value, not only JSON ones), shortened."""
    return _shortened(json.dumps(value, default=str))


def _int(value, key, source, low=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(source, key, f"must be an integer, got {value!r} ({type(value).__name__})")
    if low is not None and value < low:
        raise _fail(source, key, f"must be >= {low}, got {value!r}")
    return int(value)


def _float(value, key, source, low=None, high=None, open_interval=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(source, key, f"must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if open_interval and not low < value < high:
        raise _fail(source, key, f"must be strictly between {low} and {high}, got {value!r}")
    if not open_interval and low is not None and value < low:
        raise _fail(source, key, f"must be >= {low}, got {value!r}")
    return value


def _bool(value, key, source):
    if not isinstance(value, bool):
        raise _fail(source, key, f"must be true or false, got {value!r} ({type(value).__name__})")
    return value


def _dataset_names() -> tuple[str, ...]:
    """``"synthetic"`` and the MovieLens names that :func:`reclab.datasets.load` knows: a typo
    fails when the parameters are read, before any stage runs."""
    from reclab.datasets import NAMES

    return ("synthetic", *NAMES)


def _str(value, key, source, choices=None):
    if not isinstance(value, str) or not value:
        raise _fail(source, key, f"must be a non-empty string, got {value!r} ({type(value).__name__})")
    if choices is not None and value not in choices:
        raise _fail(source, key, f"must be one of {list(choices)}, got {value!r}")
    return value


def _mapping(value, key, source):
    if not isinstance(value, Mapping):
        raise _fail(source, key, f"must be a mapping (key: value lines), got {value!r} "
                                 f"({type(value).__name__})")
    for name in value:
        if not isinstance(name, str):
            raise _fail(source, key, f"has a non-string key {name!r}; keys are names")
    return dict(value)


def _known_keys(value: dict, key: str, source: str, known) -> None:
    unknown = sorted(set(value) - set(known))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        raise ReclabError(f"{source}: unknown key {where!r}; known keys"
                          f"{' in ' + repr(key) if key else ''} are {sorted(known)}")


def _metric_name(value, key, source):
    value = _str(value, key, source)
    name, at, cut = value.partition("@")
    if value in ("rmse", "mae"):
        return value
    if not at or name not in _RANKING_METRICS or not cut.isdigit() or int(cut) < 1:
        raise _fail(source, key, f"must be a metric such as 'ndcg@10' ({', '.join(_RANKING_METRICS)} "
                                 f"at a cut-off >= 1) or 'rmse' / 'mae', got {value!r}")
    return value


def _synthetic_args(value, source):
    value = _mapping(value, "synthetic", source)
    # The accepted names are those of the generator itself, so the two never drift apart.
    from reclab.datasets import synthetic

    names = [name for name in inspect.signature(synthetic).parameters if name != "seed"]
    _known_keys(value, "synthetic", source, names)
    return value


def _model_entries(value, source):
    value = _mapping(value, "models", source)
    _known_keys(value, "models", source, MODEL_NAMES)
    entries = {}
    for name, entry in value.items():
        key = f"models.{name}"
        entry = _mapping({} if entry is None else entry, key, source)
        _known_keys(entry, key, source, ("params", "space", "starts"))
        params = _mapping(entry.get("params") or {}, f"{key}.params", source)
        space = _mapping(entry.get("space") or {}, f"{key}.space", source)
        overlap = sorted(set(params) & set(space))
        if overlap:
            raise _fail(source, f"{key}.params.{overlap[0]}",
                        "is both a fixed parameter and in the search space; keep it in one of them")
        starts = entry.get("starts") or []
        if not isinstance(starts, list):
            raise _fail(source, f"{key}.starts", f"must be a list of parameter mappings, got {starts!r}")
        starts = [_mapping(point, f"{key}.starts", source) for point in starts]
        for point in starts:
            outside = sorted(set(point) - set(space))
            if outside:
                raise _fail(source, f"{key}.starts", f"sets {outside[0]!r}, which is not in "
                                                     f"{key}.space {sorted(space)}")
        entries[name] = {"params": params, "space": space, "starts": starts}
    return entries


# -- the whole file ---------------------------------------------------------------------------
def validate(params: Mapping, source: str = "parameters") -> dict:
    """Check a parameter mapping and return it complete (defaults filled in, types normalized).

    Parameters
    ----------
    params : mapping
        Any subset of the schema (see the module docstring).
    source : str
        Names where the mapping came from (a file, ``--set ...``) in error messages.

    Returns
    -------
    dict
        A new nested dict with every key of the schema.

    Raises
    ------
    ReclabError
        Unknown key, wrong type or value out of range, naming the dotted key and ``source``.
    """
    raw = _implied(_mapping(params, "(top level)", source))
    _known_keys(raw, "", source, DEFAULTS)
    merged = _merge(copy.deepcopy(DEFAULTS), raw, source)
    out = {
        "experiment": _str(merged["experiment"], "experiment", source),
        "dataset": _str(merged["dataset"], "dataset", source, _dataset_names()),
        "data_dir": None if merged["data_dir"] is None else _str(merged["data_dir"], "data_dir", source),
        "synthetic": _synthetic_args(merged["synthetic"], source),
        "seed": _int(merged["seed"], "seed", source, low=0),
        "kcore": {name: _int(merged["kcore"][name], f"kcore.{name}", source, low=1)
                  for name in ("min_user", "min_item")},
        "split": {
            "method": _str(merged["split"]["method"], "split.method", source, _SPLIT_METHODS),
            "test_frac": _float(merged["split"]["test_frac"], "split.test_frac", source, 0.0, 1.0, True),
            "valid_frac": _float(merged["split"]["valid_frac"], "split.valid_frac", source, 0.0, 1.0,
                                 True),
            "k": _int(merged["split"]["k"], "split.k", source, low=1),
        },
        "model": _str(merged["model"], "model", source, MODEL_NAMES),
        "models": _model_entries(merged["models"], source),
        "tune": {
            "method": _str(merged["tune"]["method"], "tune.method", source, _TUNE_METHODS),
            "n_trials": _int(merged["tune"]["n_trials"], "tune.n_trials", source, low=1),
            "metric": _metric_name(merged["tune"]["metric"], "tune.metric", source),
            "n_initial": _int(merged["tune"]["n_initial"], "tune.n_initial", source, low=1),
            "estimator": _str(merged["tune"]["estimator"], "tune.estimator", source,
                              ("GP", "RF", "ET", "GBRT")),
            "folds": _int(merged["tune"]["folds"], "tune.folds", source, low=1),
            "models": _names(merged["tune"]["models"], "tune.models", source),
            "time_budget": (None if merged["tune"]["time_budget"] is None else
                            _float(merged["tune"]["time_budget"], "tune.time_budget", source,
                                   low=1.0)),
        },
        "k": _cutoffs(merged["k"], source),
        "evaluation": {
            "relevance_threshold": (None if merged["evaluation"]["relevance_threshold"] is None else
                                    _float(merged["evaluation"]["relevance_threshold"],
                                           "evaluation.relevance_threshold", source)),
            "n_bootstrap": _int(merged["evaluation"]["n_bootstrap"], "evaluation.n_bootstrap", source,
                                low=0),
        },
        "n_recommendations": _int(merged["n_recommendations"], "n_recommendations", source, low=1),
        "baselines": _names(merged["baselines"], "baselines", source),
        "backend": _str(merged["backend"], "backend", source, _BACKENDS),
        "online": {
            "enabled": _bool(merged["online"]["enabled"], "online.enabled", source),
            "n_users": _int(merged["online"]["n_users"], "online.n_users", source, low=8),
            "n_simulations": _int(merged["online"]["n_simulations"], "online.n_simulations", source,
                                  low=1),
            "world_model": _str(merged["online"]["world_model"], "online.world_model", source,
                                MODEL_NAMES),
        },
    }
    _check_backend(out, source)
    if len(set(out["tune"]["models"])) < len(out["tune"]["models"]):
        raise _fail(source, "tune.models", f"lists a model twice: {out['tune']['models']}")
    for name in [out["model"], *out["baselines"], *out["tune"]["models"]]:
        out["models"].setdefault(name, {"params": {}, "space": {}, "starts": []})
    _check_space(out, source)
    return out


def _implied(values: dict) -> dict:
    """``values`` (a file's top level, or ``--set`` overrides) with the partner of ``backend`` /
    ``model`` filled in where only one of them is given (see "Backends" in the module docstring)."""
    values = dict(values)
    backend, model = values.get("backend"), values.get("model")
    if "model" not in values and backend in _BACKEND_MODEL:
        values["model"] = _BACKEND_MODEL[backend]
    elif "backend" not in values and model in _BACKEND_MODEL.values():
        values["backend"] = next(name for name, trained in _BACKEND_MODEL.items() if trained == model)
    return values


def _check_backend(params: dict, source: str) -> None:
    backend, model = params["backend"], params["model"]
    needed = _BACKEND_MODEL.get(backend)
    if needed is not None and model != needed:
        raise _fail(source, "backend", f"is {backend!r}, which trains model {needed}, but key 'model' "
                                       f"is {model!r}; set model: {needed} (or backend: local to "
                                       f"train {model})")
    if needed is None and model in _BACKEND_MODEL.values():
        wanted = next(name for name, trained in _BACKEND_MODEL.items() if trained == model)
        raise _fail(source, "model", f"is {model!r}, which trains in {wanted.capitalize()}, but key "
                                     f"'backend' is {backend!r}; set backend: {wanted} (or another "
                                     f"model for backend {backend!r})")


def _merge(base: dict, update: Mapping, source: str) -> dict:
    """``base`` updated by ``update``: sections of the schema merge key by key, the rest replaces."""
    for name, value in update.items():
        if isinstance(base.get(name), dict) and name not in _FREE:
            section = _mapping(value, name, source)
            _known_keys(section, name, source, base[name])
            base[name].update(section)
        else:
            base[name] = value
    return base


def _cutoffs(value, source):
    values = [value] if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    if not isinstance(values, list) or not values:
        raise _fail(source, "k", f"must be an integer or a non-empty list of integers, got {value!r}")
    cutoffs = [_int(cut, "k", source, low=1) for cut in values]
    return sorted(set(cutoffs))


def _names(value, key, source):
    if not isinstance(value, list):
        raise _fail(source, key, f"must be a list of model names, got {value!r}")
    return [_str(name, key, source, MODEL_NAMES) for name in value]


def _check_space(params: dict, source: str) -> None:
    """Every model's fixed parameters and search space name parameters the model takes, and the
    active model's space parses (reclab.space), so that a typo fails before anything runs."""
    from reclab import models

    for name, entry in params["models"].items():
        cls = getattr(models, name, None)
        if cls is None:
            continue
        names = sorted(inspect.signature(cls).parameters)
        for part in ("params", "space"):
            unknown = sorted(set(entry[part]) - set(names))
            if unknown:
                raise _fail(source, f"models.{name}.{part}.{unknown[0]}",
                            f"is not a parameter of {name}; its parameters are {names}")
    for name in tuned_models(params):
        _check_tuned_space(params, name, source)


def _check_tuned_space(params: dict, name: str, source: str) -> None:
    space = params["models"][name]["space"]
    if not space:
        return
    from reclab import space as space_module

    try:
        parsed = space_module.parse_space(space)
    except ValueError as error:
        raise ReclabError(f"{source}: key 'models.{name}.space' is not a valid search space: "
                          f"{error}") from None
    if params["tune"]["method"] == "grid":
        # tune() would refuse it too, but only inside the stage 2 kernel, after stage 1 ran.
        for param, spec in space_module.space_to_dict(parsed).items():
            if spec["type"] != "categorical":
                raise _fail(source, f"models.{name}.space.{param}",
                            f"is {'an integer' if spec['type'] == 'int' else 'a real'} range from "
                            f"{spec['low']} to {spec['high']}, but "
                            f"tune.method 'grid' needs a list of values for every parameter (for "
                            f"example {param}: {_example_grid(spec)}); write the values to try as a "
                            f"list, or use tune.method 'random' or 'smbo', which sample ranges")


def _example_grid(spec: dict) -> list:
    """Three values spanning a range, as a hint in the grid error message."""
    import numpy as np

    low, high = spec["low"], spec["high"]
    log = spec.get("prior") == "log-uniform"
    values = np.geomspace(low, high, 3) if log else np.linspace(low, high, 3)
    if spec["type"] == "int":
        return sorted({int(round(value)) for value in values})
    return [float(f"{value:.3g}") for value in values]


# -- files and overrides ----------------------------------------------------------------------
def parse_assignments(assignments) -> dict:
    """``["tune.n_trials=5", "k=[5,10]"]`` -> ``{"tune.n_trials": 5, "k": [5, 10]}``.

    The value after the first ``=`` is read as YAML (``yaml.safe_load``), so numbers, lists,
    ``null`` and ``true`` have their YAML types; quote a value to keep it a string.
    """
    out = {}
    for assignment in assignments:
        key, equals, text = str(assignment).partition("=")
        key = key.strip()
        if not equals or not key:
            raise ReclabError(f"--set {assignment!r} must look like key=value, for example "
                              f"tune.n_trials=5")
        try:
            out[key] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            raise ReclabError(f"--set {assignment!r}: the value is not valid YAML ({error})") from None
        except RecursionError:
            raise ReclabError(f"--set {assignment!r}: the value is nested too deeply") from None
        _check_expansion(out[key], f"--set {assignment!r}")
    return out


def _apply_overrides(params: dict, overrides: Mapping, source: str) -> dict:
    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if not all(parts):
            raise ReclabError(f"{source}: key {dotted!r} has an empty part; write dotted keys "
                              f"like tune.n_trials")
        node = params
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ReclabError(f"{source}: key {'.'.join(parts[:depth + 1])!r} is not a section "
                                  f"(its value is {child!r}), so {dotted!r} cannot be set")
            node = child
        node[parts[-1]] = value
    return params


def load(path, overrides: Mapping | None = None) -> dict:
    """Read a parameter file, apply overrides, validate, fill in defaults.

    Parameters
    ----------
    path : str or os.PathLike
        A YAML file (read with ``yaml.safe_load``: no code in it is ever run).
    overrides : mapping of str to value, optional
        ``{dotted key: value}`` applied on top of the file (see :func:`parse_assignments`); None
        sets a value to null.

    Returns
    -------
    dict
        The validated parameters (see :func:`validate`).

    Raises
    ------
    ReclabError
        Missing or unreadable file, invalid YAML, unknown key, wrong type or bad value, naming
        the key and the file (and the ``--set`` override when one is at fault).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReclabError(f"parameter file {str(path)!r} not found") from None
    except OSError as error:
        raise ReclabError(f"parameter file {str(path)!r} cannot be read: {error}") from None
    return loads(text, str(path), overrides)


def loads(text: str, source: str, overrides: Mapping | None = None) -> dict:
    """As :func:`load`, from YAML text; ``source`` names it in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ReclabError(f"{source}: not valid YAML: {error}") from None
    except RecursionError:
        raise ReclabError(f"{source}: values are nested too deeply") from None
    _check_expansion(raw, source)
    params = validate({} if raw is None else raw, source)
    if overrides:
        # Values from the command line or a notebook: checked as the file's are.
        _check_expansion(dict(overrides), "the overrides (--set or notebook parameters)")
        shown = " ".join(f"{key}={_shown(value)}" for key, value in overrides.items())
        where = f"{source} with --set {shown}"
        params = validate(_apply_overrides(params, _implied(overrides), where), where)
    return params


def notebook_overrides(dataset=None, data_dir=None, model=None, method=None, n_trials=None, k=None,
                       seed=None, experiment=None) -> dict:
    """The overrides a stage notebook's own parameters make: ``{dotted key: value}`` for each
    one that is not None (None, their default, means "as in the parameters").

    ``method`` and ``n_trials`` set ``tune.method`` and ``tune.n_trials``; the others set the
    key of their name.
    """
    given = {"dataset": dataset, "data_dir": data_dir, "model": model, "tune.method": method,
             "tune.n_trials": n_trials, "k": k, "seed": seed, "experiment": experiment}
    return {key: value for key, value in given.items() if value is not None}


def flatten(params: Mapping) -> dict:
    """Readable flat keys for MLflow params: only the active model's entry of ``models``.

    Returns
    -------
    dict of str -> str | int | float | bool | None
        e.g. ``{"dataset": "synthetic", "kcore.min_user": 5, "model": "ImplicitALS",
        "model.params.iterations": 10, "model.space.factors": '{"low": 8, ...}', ...}``; lists
        and space specs are JSON text.
    """
    out = {}
    for key, value in params.items():
        if key == "models":
            entry = value.get(params["model"], {"params": {}, "space": {}})
            for name, param in entry["params"].items():
                out[f"model.params.{name}"] = _scalar(param)
            for name, spec in entry["space"].items():
                out[f"model.space.{name}"] = _scalar(spec)
        elif isinstance(value, Mapping):
            for name, inner in value.items():
                out[f"{key}.{name}"] = _scalar(inner)
        else:
            out[key] = _scalar(value)
    return out


def _scalar(value):
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, sort_keys=True)
    return value


def dump(params: Mapping) -> str:
    """YAML text of ``params`` (keys in schema order) that :func:`load` reads back unchanged."""
    return yaml.safe_dump(dict(params), sort_keys=False, default_flow_style=None)


# -- the objects the parameters describe ------------------------------------------------------
def load_data(params: Mapping):
    """The data set of ``params``: ``synthetic(seed=seed, **synthetic)`` or a MovieLens set
    loaded with ``data_dir`` (:func:`reclab.datasets.load`)."""
    from reclab import datasets

    if params["dataset"] == "synthetic":
        return datasets.synthetic(seed=params["seed"], **params["synthetic"])
    return datasets.load(params["dataset"], data_dir=params["data_dir"])


def make_split(params: Mapping, data):
    """``(train, valid, test)`` of ``data`` by ``split.method``.

    Test is held out of ``data`` first; valid is then held out of the rest the same way (with
    ``valid_frac`` for the fractional methods, and seed ``seed + 1``), so ``train``, ``valid``
    and ``test`` partition ``data`` and tuning never sees the test split.
    """
    from reclab import split

    spec, seed = params["split"], params["seed"]
    if spec["method"] == "random_holdout":
        rest, test = split.random_holdout(data, test_frac=spec["test_frac"], seed=seed)
        train, valid = split.random_holdout(rest, test_frac=spec["valid_frac"], seed=seed + 1)
    elif spec["method"] == "leave_k_out":
        rest, test = split.leave_k_out(data, k=spec["k"], seed=seed)
        train, valid = split.leave_k_out(rest, k=spec["k"], seed=seed + 1)
    elif spec["method"] in ("cold_items", "cold_users"):
        cold = getattr(split, spec["method"])
        rest, test = cold(data, test_frac=spec["test_frac"], seed=seed)
        train, valid = cold(rest, test_frac=spec["valid_frac"], seed=seed + 1)
    else:
        rest, test = split.temporal(data, test_frac=spec["test_frac"])
        train, valid = split.temporal(rest, test_frac=spec["valid_frac"])
    return train, valid, test


def make_model(params: Mapping, name: str | None = None, searched: Mapping | None = None):
    """An unfitted model: ``name`` (default the tuned ``model``) with its fixed ``params`` from
    ``models.<name>.params``, the pipeline ``seed`` where the model takes a seed and the file
    sets none, then ``searched`` (for example the best parameters of stage 2) on top.

    Warns (``UserWarning``, shown in the stage notebook's output) when the tuned model is a rating
    predictor (SVD, ExplicitALS, Bias) and ``tune.metric`` is a ranking metric: such a model's
    top-N lists are poor, and the message points to PureSVD, EASE and ImplicitALS."""
    from reclab import models

    name = params["model"] if name is None else name
    cls = getattr(models, name, None)
    if cls is None:
        raise ReclabError(f"model {name!r} is not available in reclab.models; available: "
                          f"{[n for n in MODEL_NAMES if hasattr(models, n)]}")
    fixed = dict(params["models"].get(name, {}).get("params", {}))
    names = inspect.signature(cls).parameters
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ReclabError(f"models.{name}.params has {unknown[0]!r}, which {name} does not take; "
                          f"its parameters are {sorted(names)}")
    if "seed" in names:
        fixed.setdefault("seed", params["seed"])
    fixed.update(searched or {})
    model = cls(**fixed)
    metric = params["tune"]["metric"]
    if name == params["model"] and model.predicts_ratings and metric not in ("rmse", "mae"):
        warnings.warn(f"model {name} is a rating predictor: its top-N lists rank poorly (SVD: precision@10 "
                      f"0.115 on MovieLens 100k, below Popularity's 0.192), yet this run tunes it for "
                      f"{metric}; for ranking use model: PureSVD (the SVD of the interactions), EASE or "
                      f"ImplicitALS", UserWarning, stacklevel=2)
    return model


def make_world(params: Mapping, data):
    """The simulated world of stage 6 (:class:`reclab.online.World`) on the users and items of
    ``data``, the interactions the models were fitted on (so its ``seen`` is theirs).

    Synthetic data: the ground truth of the full data set (:meth:`World.from_truth`, with the
    generator's ``mnar`` and ``taste_exposure``), aligned to ``data``'s ids. Real data: the
    scores of ``online.world_model`` fitted on ``data`` (:meth:`World.from_model`), which
    favours models like it.
    """
    from reclab import datasets, online

    if params["dataset"] == "synthetic":
        defaults = inspect.signature(datasets.synthetic).parameters
        weight = {name: params["synthetic"].get(name, defaults[name].default)
                  for name in ("mnar", "taste_exposure")}
        world = online.World.from_truth(load_data(params), rating_weight=weight["mnar"],
                                        interest_weight=weight["taste_exposure"])
        return world.align(data)
    return online.World.from_model(make_model(params, params["online"]["world_model"]).fit(data), data)


def tuned_models(params: Mapping) -> list[str]:
    """Names of the models stage 2 searches: ``tune.models``, or else ``[model]``; a backend other
    than local searches its own model only (``backend: spark`` tunes SparkALS, see "Backends")."""
    if params["backend"] != "local":
        return [params["model"]]
    return list(params["tune"]["models"]) or [params["model"]]


def tune_search(params: Mapping) -> dict:
    """Keyword arguments ``model``, ``space`` and ``starts`` of :func:`reclab.tuning.tune`.

    One tuned model gives a model and its space; several (``tune.models``) give lists, one
    entry per model, searched under one trial budget.
    """
    names = tuned_models(params)
    models = [make_model(params, name) for name in names]
    spaces = [params["models"][name]["space"] for name in names]
    starts = [params["models"][name].get("starts", []) for name in names]
    if len(names) == 1:
        return {"model": models[0], "space": spaces[0], "starts": starts[0]}
    return {"model": models, "space": spaces, "starts": starts}


def tune_options(params: Mapping) -> dict:
    """Keyword arguments of :func:`reclab.tuning.tune` from ``tune``, ``seed`` and
    ``evaluation.relevance_threshold`` (a grid search runs its whole grid: ``n_trials`` None).

    Trials run one at a time (``n_jobs=1``) on every backend: the ALS models already use every
    core in one fit, SMBO stays fully sequential, and SparkALS trials share the kernel's one
    Spark session (worker processes would each start a JVM of their own).
    """
    tune = params["tune"]
    return {"method": tune["method"],
            "n_trials": None if tune["method"] == "grid" else tune["n_trials"],
            "metric": tune["metric"], "seed": params["seed"], "n_initial": tune["n_initial"],
            "estimator": tune["estimator"], "n_jobs": 1, "folds": tune["folds"],
            "time_budget": tune["time_budget"],
            "relevance_threshold": params["evaluation"]["relevance_threshold"]}


def evaluation_options(params: Mapping) -> dict:
    """Keyword arguments of :func:`reclab.evaluation.evaluate` from ``k``, ``evaluation`` and
    ``seed``."""
    return {"k": tuple(params["k"]),
            "relevance_threshold": params["evaluation"]["relevance_threshold"],
            "n_bootstrap": params["evaluation"]["n_bootstrap"], "seed": params["seed"]}
