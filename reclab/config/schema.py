"""The pipeline configuration as typed classes: every key of a parameter file, its type, default and
meaning, written once.

A parameter file (YAML) sets any subset of the keys; every key it leaves out takes the default of its
field here. The vocabularies come from the modules that own them: dataset names from
:mod:`reclab.datasets`, model names from the model registry (:func:`reclab.models.base.registered_models`),
split methods from :mod:`reclab.split`, search methods and SMBO surrogates from :mod:`reclab.tuning`,
metric names from :mod:`reclab.metrics`; and the defaults of ``tune`` and ``evaluation`` are those of
:func:`reclab.tuning.tune` and :func:`reclab.evaluation.evaluate`, so a library default and a
pipeline default never drift apart, except where the pipeline chose its own: ``tune.folds`` (3;
``tune``'s is 1) and ``tune.select``, which ``tune`` does not take.

Sections are read by attribute (``config.tune.metric``) or, as in the YAML file, by key
(``config["tune"]["metric"]``). A configuration is immutable (frozen): a changed copy is
``config.model_copy(update=...)``, or load it again with overrides.

Backends
--------
``backend: local`` trains and scores in the kernel's own Python. ``backend: spark`` trains
:class:`reclab.models.SparkALS` (Spark MLlib's ALS) in a Spark session of each stage's kernel
(``local[*]`` unless ``models.SparkALS.params.master`` names a cluster), and stage 5 computes the
test metrics with :func:`reclab.spark.evaluate` as well. The two keys go together: ``backend:
spark`` means ``model: SparkALS`` and ``model: SparkALS`` means ``backend: spark``. Setting one of
them (in a file or with ``--set``) without the other implies the other (:func:`implied`); a
contradiction (``backend: spark`` with ``model: SVD``, or with ``tune.models`` naming another
model: the spark backend tunes SparkALS only) is an error.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any, Mapping

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from reclab import datasets, split, tuning
from reclab._validate import check_threshold
from reclab.config import checks
from reclab.config.files import apply_overrides, check_expansion, fail, overridden_source, read, read_text
from reclab.errors import ReclabError
from reclab.evaluation import evaluate
from reclab.metrics import check_metric_name
from reclab.models.base import registered_models

__all__ = ["BACKEND_MODEL", "BACKENDS", "DATASETS", "MODEL_NAMES", "Config", "Evaluation", "File", "Kcore",
           "ModelEntry", "Online", "Section", "Split", "Tune", "applied_overrides", "implied"]

#: Every model reclab.models.load can rebuild, so that a new model class is a valid `model:` at once.
MODEL_NAMES = tuple(registered_models())
#: ``"synthetic"`` (reclab.datasets.synthetic), the MovieLens names reclab.datasets.load knows, and
#: ``"file"``: a ratings file of the user's own (the ``file`` section, reclab.datasets.read_interactions).
DATASETS = ("synthetic", *datasets.NAMES, "file")
BACKENDS = ("local", "spark")
#: The model each non-local backend trains (see "Backends" in the module docstring).
BACKEND_MODEL = {"spark": "SparkALS"}

_TUNE = {name: parameter.default for name, parameter in inspect.signature(tuning.tune).parameters.items()}
_EVALUATE = {name: parameter.default for name, parameter in inspect.signature(evaluate).parameters.items()}


def _one_of(values):
    """A string that is one of ``values`` (listed as the field's ``choices``)."""
    values = tuple(values)

    def check(value):
        if value not in values:
            raise ValueError(f"must be one of {list(values)}, got {value!r}")
        return value

    return Annotated[str, AfterValidator(check), Field(json_schema_extra={"choices": list(values)})]


def _metric(value: str) -> str:
    try:
        check_metric_name(value)
    except ReclabError as error:
        raise ValueError(f"must name a metric: {error}") from None
    return value


def _threshold(value):
    """A relevance threshold as :func:`reclab.evaluate` takes it (NaN and infinity: a ReclabError in
    stage 2, after stage 1 ran)."""
    try:
        check_threshold(value)
    except ReclabError:
        raise ValueError(f"must be a finite number (a rating) or null, got {value!r}") from None
    return value


def _none_is_empty(value):
    return {} if value is None else value


def _cutoffs(value):
    """One int is one cut-off (a list of them is sorted and made unique once its items are checked)."""
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


Name = Annotated[str, Field(min_length=1)]
ModelName = _one_of(MODEL_NAMES)


class Section(BaseModel):
    """A part of the configuration: unknown keys and wrong types are refused, nothing is coerced
    (``2.5`` is no integer, ``true`` no number), and values are read by attribute or by key."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)

    def __getitem__(self, key: str):
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)


class File(Section):
    """``dataset: file``: a ratings file of the user's own, one row per (user, item) event
    (:func:`reclab.datasets.read_interactions`; the column keys are its arguments)."""

    path: Name | None = None
    """The file: delimited text (CSV, TSV, ...) or Parquet (suffix .parquet); a relative path in a
    parameter file is relative to that file's folder, one given with --set to the working folder."""
    user: Name = "user"
    """Column of the user ids (a text file without header names its columns _c0, _c1, ...)."""
    item: Name = "item"
    """Column of the item ids."""
    rating: Name | None = "rating"
    """Column of the ratings (null: implicit feedback, every row counts as 1)."""
    timestamp: Name | None = None
    """Column of the timestamps, seconds or ISO 8601 date-times (split.method temporal needs it)."""
    sep: Name = ","
    """Text files: the field separator ("\\t" for tabs)."""
    header: bool = True
    """Text files: the first line names the columns."""
    encoding: Name = "utf-8"
    """Text files: their encoding, such as latin-1."""
    items: Name | None = None
    """A file of the items in the same format, one row per item, its ids in the item column too
    (null: none); relative as path is."""
    title: Name | None = "title"
    """Column of the items file with the titles that stage 4's lists show."""
    genres: Name | None = None
    """Column of the items file with genre names joined by '|': the item features genre=<name> of
    ContentKNN and HybridALS (null: no features)."""


class Kcore(Section):
    """k-core thresholds (:func:`reclab.preprocess.kcore`)."""

    min_user: int = Field(5, ge=1)
    """Keep users with at least this many interactions."""
    min_item: int = Field(5, ge=1)
    """Keep items with at least this many interactions."""


class Split(Section):
    """How test, then validation, are held out (:func:`reclab.config.make_split`)."""

    method: _one_of(split.METHODS) = "random_holdout"
    """How test and validation are held out (a function of reclab.split)."""
    test_frac: float = Field(0.2, gt=0.0, lt=1.0)
    """Share held out for test: of each user's interactions (random_holdout), of all interactions,
    the latest (temporal), of the items or users (cold_items, cold_users); leave_k_out holds out
    held_out_per_user instead."""
    valid_frac: float = Field(0.2, gt=0.0, lt=1.0)
    """Share of the rest held out for validation (tuning)."""
    held_out_per_user: int = Field(5, ge=1)
    """leave_k_out: interactions of each user held out for test, and as many again for validation
    (was ``split.k``)."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_k(cls, values):
        """The old name ``split.k`` is still read (parameter files and the ``params.yaml`` of
        earlier pipeline runs), as ``held_out_per_user``."""
        if isinstance(values, dict) and "k" in values:
            if "held_out_per_user" in values:
                raise ValueError("sets both 'split.k' and 'split.held_out_per_user'; 'split.k' is the old "
                                 "name of 'split.held_out_per_user': keep only that one")
            values = {("held_out_per_user" if key == "k" else key): value for key, value in values.items()}
        return values


class ModelEntry(Section):
    """One model's entry under ``models``; null parts are empty."""

    params: dict[str, Any] = {}
    """Fixed constructor arguments."""
    space: dict[str, Any] = {}
    """Search space of stage 2, in :mod:`reclab.space` format."""
    starts: list[dict[str, Any]] = []
    """Extra start points of the search, tried right after the model's own parameters (missing
    arguments: the model's values)."""

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, values):
        if values is None:
            return {}
        if isinstance(values, dict):
            return {key: ([] if key == "starts" else {}) if value is None else value
                    for key, value in values.items()}
        return values


class Tune(Section):
    """Stage 2, the search (:func:`reclab.tuning.tune`; its defaults are tune's own but folds and
    select)."""

    method: _one_of(tuning.METHODS) = _TUNE["method"]
    """Search method of stage 2."""
    n_trials: int | None = Field(_TUNE["n_trials"], ge=1)
    """Trials of random / smbo search, start points included (null: reclab.tuning.tune's default, 30; grid
    runs its whole grid)."""
    metric: Annotated[str, AfterValidator(_metric)] = _TUNE["metric"]
    """Validation metric to optimize: 'precision@10', 'coverage@10', ..., or 'rmse' / 'mae'."""
    n_initial: int = Field(_TUNE["n_initial"], ge=1)
    """smbo: trials of the initial design (a Latin hypercube) before the surrogate model is used."""
    estimator: _one_of(tuning.ESTIMATORS) = _TUNE["estimator"]
    """smbo: the surrogate model."""
    folds: int = Field(3, ge=1)
    """Validation folds each trial is scored on, their mean the objective (reclab.split.validation_folds)."""
    models: list[ModelName] = []
    """Models to search, each in its own space, under one trial budget; the best on validation goes
    on to stage 3 (empty: ``model``; a ``model`` given by ``--set`` or a notebook parameter empties
    it unless it is given too: :func:`applied_overrides`); a backend other than local tunes its own
    model only (``backend: spark``: SparkALS, so this list may name no other)."""
    time_budget: float | None = Field(_TUNE["time_budget"], ge=1.0)
    """Seconds after which no new trial starts (null: no limit)."""
    select: _one_of(tuning.SELECT_RULES) = "best"
    """Which trial goes on to stage 3 (reclab.tuning.choose): 'best' on validation, or 'one_se': the
    best unless it leads the start point by at most one standard error over the folds (needs folds >= 2)."""

    @model_validator(mode="after")
    def _select_needs_folds(self):
        if self.select == "one_se" and self.folds < 2:
            raise ValueError(f"select 'one_se' compares per-fold scores and needs folds >= 2, got "
                             f"folds {self.folds}")
        return self


class Evaluation(Section):
    """Stage 5 (:func:`reclab.evaluation.evaluate`; its defaults are evaluate's own)."""

    relevance_threshold: Annotated[float | None, AfterValidator(_threshold)] = _EVALUATE["relevance_threshold"]
    """Only test ratings at or above it are relevant (null: all)."""
    n_bootstrap: int = Field(_EVALUATE["n_bootstrap"], ge=0)
    """Bootstrap replicates of the confidence intervals."""


class Online(Section):
    """Stage 6, the simulated online tests (reclab.online)."""

    enabled: bool = False
    """Run stage 6 when no --stages are given."""
    n_users: int = Field(5000, ge=8)
    """Simulated users of the A/B test and of interleaving: at least 2 per arm of the offline-vs-online
    A/B test (the baselines, the untuned and the tuned model, up to 4 tuning trials)."""
    n_simulations: int = Field(100, ge=1)
    """Simulated tests per point of the power curves."""
    world_model: ModelName = "ItemKNN"
    """Real data only: the model whose scores stand in for the true utilities (World.from_model)."""


class Config(Section):
    """The configuration of one pipeline: the validated parameter file."""

    experiment: Name = "reclab"
    """MLflow experiment name."""
    dataset: _one_of(DATASETS) = "synthetic"
    """The data set: the embedded synthetic one, a MovieLens set, or 'file' (your own ratings file,
    the file section)."""
    data_dir: Name | None = None
    """Folder searched first for MovieLens files (null: RECLAB_DATA_DIR, then the cache); relative
    as file.path is."""
    synthetic: dict[str, Any] = {}
    """Keyword arguments of reclab.datasets.synthetic (its seed is ``seed``)."""
    file: File = File()
    seed: int = Field(0, ge=0, lt=2**32)
    """Seed of every random step (split, tuning, models, bootstrap), below 2**32."""
    kcore: Kcore = Kcore()
    split: Split = Split()
    model: ModelName = "ImplicitALS"
    """Model to tune, train and evaluate, with its entry in models (SparkALS: backend spark); given
    as an override, it is tuned alone (tune.models emptied)."""
    models: dict[ModelName, ModelEntry] = {}
    """Per model name: its fixed parameters, search space and start points."""
    tune: Tune = Tune()
    k: Annotated[list[Annotated[int, Field(ge=1)]], BeforeValidator(_cutoffs),
                 AfterValidator(lambda cuts: sorted(set(cuts))), Field(min_length=1)] = \
        sorted(_EVALUATE["k"])
    """Cut-offs K of the metrics, such as [5, 10, 20] (one int is one cut-off)."""
    evaluation: Evaluation = Evaluation()
    n_recommendations: int = Field(10, ge=1)
    """Length of the top-N lists of stage 4 and of the simulated lists of stage 6 (checked against
    the split in stage 1 when online.enabled: some user must have that many unseen items)."""
    baselines: list[ModelName] = ["Popularity", "Bias"]
    """Models evaluated beside the tuned one, each with its models.<name>.params (else its
    defaults); the first is stage 6's control arm (the untuned model when the list is empty)."""
    backend: _one_of(BACKENDS) = "local"
    """Where models train: in the kernel's Python, or in Spark (see "Backends")."""
    online: Online = Online()

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, values):
        if isinstance(values, dict):
            return {key: _none_is_empty(value) if key in ("synthetic", "models") else value
                    for key, value in values.items()}
        return values

    @classmethod
    def load(cls, path, overrides: Mapping | None = None, given: str = "--set") -> "Config":
        """Read a parameter file, apply overrides, validate, fill in defaults.

        Parameters
        ----------
        path : str or os.PathLike
            A YAML file (read with PyYAML's safe loader: no code in it is ever run; a key written
            twice in one mapping is refused).
        overrides : mapping of str to value, optional
            ``{dotted key: value}`` applied on top of the file (see
            :func:`reclab.config.parse_assignments`); None sets a value to null.
        given : str
            Where the overrides came from, as error messages name them: ``"--set"`` (the
            command line) or ``"notebook parameters"``.

        Raises
        ------
        ReclabError
            Missing or unreadable file, invalid YAML, unknown key, wrong type or bad value, naming
            the key and the file (and the overrides, as ``given``, when one is at fault).
        """
        text, source = read(path)
        config = cls.loads(text, source, overrides, given)
        # The file's own relative paths are relative to its folder (one given with --set stays
        # relative to the working folder).
        located = {key: str(Path(path).parent / Path(given).expanduser())
                   for key in ("path", "items") if (given := config.file[key])
                   and not {"file", f"file.{key}"} & set(overrides or ())}
        if located:
            config = config.model_copy(update={"file": config.file.model_copy(update=located)})
        if config.data_dir and "data_dir" not in (overrides or ()):   # as file.path
            config = config.model_copy(update={
                "data_dir": str(Path(path).parent / Path(config.data_dir).expanduser())})
        return config

    @classmethod
    def from_values(cls, values: Mapping, source: str = "parameters") -> "Config":
        """The configuration of a mapping shaped like a parameter file (any subset of the keys);
        ``source`` names it in error messages."""
        return _validate(dict(values), source)

    @classmethod
    def loads(cls, text: str, source: str, overrides: Mapping | None = None,
              given: str = "--set") -> "Config":
        """As :meth:`load`, from YAML text; ``source`` names it in error messages."""
        config = _validate(read_text(text, source), source)
        if overrides:
            # Values from the command line or a notebook: checked as the file's are.
            check_expansion(dict(overrides), "the overrides (--set or notebook parameters)")
            where = overridden_source(source, overrides, given)
            config = _validate(apply_overrides(config.model_dump(), applied_overrides(overrides),
                                               where), where)
            if "model" in overrides and config.tune.models and config.model not in config.tune.models:
                raise fail(where, "model", f"is {config.model!r}, but tune.models is given too, "
                                           f"{list(config.tune.models)}: stage 2 picks among those, "
                                           f"so {config.model!r} would go unused; list it in "
                                           f"tune.models, or give model alone to tune it alone")
        return config

    def dump(self) -> str:
        """YAML text (keys in schema order) that :meth:`loads` reads back to this configuration."""
        return yaml.safe_dump(self.model_dump(), sort_keys=False, default_flow_style=None)

    def flatten(self) -> dict:
        """Readable flat keys for MLflow params: only the active model's entry of ``models``.

        Returns
        -------
        dict of str -> str | int | float | bool | None
            e.g. ``{"dataset": "synthetic", "kcore.min_user": 5, "model": "ImplicitALS",
            "model.params.iterations": 10, "model.space.factors": '{"low": 8, ...}', ...}``; lists
            and space specs are JSON text.
        """
        out = {}
        for key, value in self.model_dump().items():
            if key == "models":
                entry = value[self.model]
                out.update({f"model.params.{name}": _scalar(param) for name, param in entry["params"].items()})
                out.update({f"model.space.{name}": _scalar(spec) for name, spec in entry["space"].items()})
            elif key == "file" and self.dataset != "file":
                continue
            elif isinstance(value, dict):
                out.update({f"{key}.{name}": _scalar(inner) for name, inner in value.items()})
            else:
                out[key] = _scalar(value)
        return out

    def model_entries(self) -> dict:
        """Every model's entry of ``models`` as flat keys, for comparing configurations (the
        MLflow params of :meth:`flatten` hold the active model's only).

        Returns
        -------
        dict of str -> str | int | float | bool | None
            e.g. ``{"models.EASE.params.binarize": True, "models.EASE.space.regularization":
            '{"high": ...}', "models.EASE.starts": '[...]'}``; lists and space specs are JSON text.
        """
        out = {}
        for name, entry in self.model_dump()["models"].items():
            for part in ("params", "space"):
                out.update({f"models.{name}.{part}.{key}": _scalar(value)
                            for key, value in entry[part].items()})
            if entry["starts"]:
                out[f"models.{name}.starts"] = _scalar(entry["starts"])
        return out

    @property
    def dataset_name(self) -> str:
        """The data set's name in run names and MLflow datasets: ``dataset``, or for ``dataset:
        file`` the file's name (``ratings.csv``)."""
        if self.dataset == "file" and self.file.path:
            return Path(self.file.path).name
        return self.dataset

    def tuned_models(self) -> list[str]:
        """Names of the models stage 2 searches: ``tune.models``, or else ``[model]``; a backend
        other than local searches its own model only (``backend: spark`` tunes SparkALS)."""
        if self.backend != "local":
            return [self.model]
        return list(self.tune.models) or [self.model]


def _scalar(value):
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, sort_keys=True)
    return value


def implied(values: Mapping) -> dict:
    """``values`` (a file's top level, or ``--set`` overrides) with the partner of ``backend`` /
    ``model`` filled in where only one of them is given (see "Backends")."""
    values = dict(values)
    backend, model = values.get("backend"), values.get("model")
    if "model" not in values and backend in BACKEND_MODEL:
        values["model"] = BACKEND_MODEL[backend]
    elif "backend" not in values and model in BACKEND_MODEL.values():
        values["backend"] = next(name for name, trained in BACKEND_MODEL.items() if trained == model)
    return values


def applied_overrides(overrides: Mapping) -> dict:
    """The ``{dotted key: value}`` that ``overrides`` (``--set``, notebook parameters) set on a
    file: themselves, the partner of ``backend`` / ``model`` (:func:`implied`), and an empty
    ``tune.models`` where they give a ``model`` but neither ``tune.models`` nor the ``tune``
    section: the model given is the one tuned (``--set model=EASE`` on a MovieLens file, whose
    ``tune.models`` is ``[ImplicitALS, EASE]``, tunes EASE alone). ``split.k``, the old name of
    ``split.held_out_per_user``, sets the new one."""
    values = implied(overrides)
    if "model" in values and not {"tune", "tune.models"} & set(values):
        values["tune.models"] = []
    if "split.k" in values:   # the old name (Split), set on a file whose split has the new one
        if "split.held_out_per_user" in values:
            raise ReclabError("--set split.k and split.held_out_per_user both set one key; 'split.k' is "
                              "the old name of 'split.held_out_per_user': keep only that one")
        values["split.held_out_per_user"] = values.pop("split.k")
    return values


# -- reading and writing ----------------------------------------------------------------------
def _validate(values: dict, source: str) -> Config:
    """The typed configuration of a top-level mapping, its cross-key rules checked, and an (empty)
    entry under ``models`` for the tuned model, the baselines and ``tune.models``."""
    try:
        config = Config.model_validate(implied(values))
    except ValidationError as error:
        raise _translated(error.errors(include_url=False)[0], source) from None
    entries = dict(config.models)
    for name in [config.model, *config.baselines, *config.tune.models]:
        entries.setdefault(name, ModelEntry())
    config = config.model_copy(update={"models": entries})
    checks.check(config, source, BACKEND_MODEL)
    return config


_MESSAGES = {"int_type": "must be an integer", "float_type": "must be a number",
             "bool_type": "must be true or false", "string_type": "must be a non-empty string",
             "string_too_short": "must be a non-empty string",
             "list_type": "must be a list", "dict_type": "must be a mapping (key: value lines)",
             "model_type": "must be a mapping (key: value lines)"}


def _translated(error: dict, source: str) -> ReclabError:
    """A pydantic error as reclab says it: ``<source>: key 'tune.n_trials' must be an integer,
    got 'ten' (str)``."""
    loc = [part for part in error["loc"] if isinstance(part, str) and part != "[key]"]
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    key = ".".join(loc) or "(top level)"
    if kind == "extra_forbidden":
        section: type[BaseModel] = Config
        for part in loc[:-1]:
            field = section.model_fields.get(part)
            section = getattr(field, "annotation", None) if field else None
            if not (isinstance(section, type) and issubclass(section, BaseModel)):
                section = ModelEntry   # the entries of `models`
        where = ".".join(loc[:-1])
        return ReclabError(f"{source}: unknown key {key!r}; known keys{' in ' + repr(where) if where else ''} "
                           f"are {sorted(section.model_fields)}")
    if kind in _MESSAGES:
        return fail(source, key, f"{_MESSAGES[kind]}, got {value!r} ({type(value).__name__})")
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return fail(source, key, f"must be {bounds[kind]} {limit}, got {value!r}")
    if kind == "too_short":
        return fail(source, key, f"must not be empty, got {value!r}")
    return fail(source, key, error["msg"].removeprefix("Value error, "))
