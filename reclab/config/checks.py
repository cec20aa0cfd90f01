"""Rules of the configuration that span several keys, checked after the types (a typo in a model's
parameter, a space that does not parse or holds a value its model refuses, a backend that
contradicts the model), and the checks a pipeline makes before it starts any kernel:
:func:`check_searchable` when it runs stage 2 (every tuned model has a space to search),
:func:`check_runnable` when it runs stage 1 (the data files).

Every error is a :class:`~reclab.errors.ReclabError` naming the dotted key and the source.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import yaml

from reclab import datasets, models
from reclab import space as space_module
from reclab import synthetic as synthetic_module
from reclab.config.files import fail, read, read_text
from reclab.errors import ReclabError
from reclab.metrics import RATING_METRICS
from reclab.stages import default_params_file

__all__ = ["check", "check_runnable", "check_searchable", "model_parameters"]


def model_parameters(name: str) -> list[str]:
    """The constructor arguments of model ``name``, sorted."""
    return sorted(inspect.signature(getattr(models, name)).parameters)


def _fixed_model(config, name: str):
    """Model ``name`` with its fixed ``models.<name>.params``, to ask what it needs (the full
    construction, seed included, is :func:`reclab.config.build.make_model`, which imports this
    module)."""
    entry = config.models.get(name)
    return getattr(models, name)(**(entry.params if entry else {}))


def check(config, source: str, backend_model: dict) -> None:
    """Check the rules that span keys of a typed configuration (see the module docstring)."""
    parameters = inspect.signature(datasets.synthetic).parameters
    names = [name for name in parameters if name != "seed"]
    unknown = sorted(set(config.synthetic) - set(names))
    if unknown:
        raise ReclabError(f"{source}: unknown key {'synthetic.' + unknown[0]!r}; known keys in 'synthetic' "
                          f"are {sorted(names)}")
    if config.dataset == "synthetic":   # its values too (synthetic.n_users: -5 failed in stage 1)
        try:
            synthetic_module.check_arguments(**{**{name: value.default for name, value in parameters.items()},
                                                **config.synthetic, "seed": config.seed})
        except ReclabError as error:
            raise fail(source, "synthetic", f"is refused by reclab.datasets.synthetic: {error}") from None
    if config.tune.metric in RATING_METRICS:
        for name in config.tuned_models():
            if not _fixed_model(config, name).predicts_ratings:
                raise fail(source, "tune.metric", f"is {config.tune.metric!r}, an error of predicted ratings, "
                                                  f"but {name} ranks items without predicting ratings; tune "
                                                  f"it for a ranking metric such as 'ndcg@10'")
    _check_backend(config, source, backend_model)
    _check_file(config, source)
    for key, names in (("tune.models", config.tune.models), ("baselines", config.baselines)):
        if len(set(names)) < len(names):
            raise fail(source, key, f"lists a model twice: {names}")
    _check_online_users(config, source)
    for name, entry in config.models.items():
        key = f"models.{name}"
        overlap = sorted(set(entry.params) & set(entry.space))
        if overlap:
            raise fail(source, f"{key}.params.{overlap[0]}",
                       "is both a fixed parameter and in the search space; keep it in one of them")
        for point in entry.starts:
            outside = sorted(set(point) - set(entry.space))
            if outside:
                raise fail(source, f"{key}.starts", f"sets {outside[0]!r}, which is not in "
                                                    f"{key}.space {sorted(entry.space)}")
        if not hasattr(models, name):
            continue
        known = model_parameters(name)
        for part in ("params", "space"):
            unknown = sorted(set(getattr(entry, part)) - set(known))
            if unknown:
                raise fail(source, f"{key}.{part}.{unknown[0]}",
                           f"is not a parameter of {name}; its parameters are {known}")
        _check_values(name, entry, source)
    for name in config.tuned_models():
        _check_tuned_space(config, name, source)


def _check_online_users(config, source: str) -> None:
    """Stage 6's largest A/B test, offline vs online, has an arm per baseline, the untuned and the
    tuned model and up to 4 tuning trials, and needs 2 visits per arm (``reclab.online.ab_test``):
    fewer users failed in stage 6, after five stages."""
    trials = 4 if config.tune.n_trials is None else min(4, config.tune.n_trials)
    arms = len(config.baselines) + 2 + trials
    if config.online.n_users < 2 * arms:
        raise fail(source, "online.n_users", f"is {config.online.n_users}, but stage 6 compares offline and "
                                             f"online results in one A/B test of up to {arms} arms (the "
                                             f"{len(config.baselines)} baselines, the untuned and the tuned "
                                             f"model, up to {trials} tuning trials), 2 users per arm at "
                                             f"least: use online.n_users >= {2 * arms}")


def _check_values(name: str, entry, source: str) -> None:
    """The model's own checks of its fixed parameters, and of each start point with them (else a
    bad value failed in the stage that first fits the model, minutes into the pipeline)."""
    points = [("params", {})] + [(f"starts[{n}]", point) for n, point in enumerate(entry.starts)]
    for part, point in points:
        values = {**entry.params, **point}
        try:
            getattr(models, name)(**values).check_params()
        except ReclabError as error:
            text = next((value for value in values.values() if isinstance(value, str)
                         and _is_float_text(value)), None)
            hint = ""
            if text:   # YAML 1.1 reads 1e3 (no dot) as text
                number = float(text)
                written = int(number) if number.is_integer() else number
                hint = f" (YAML reads {text} as text: write {written!r})"
            raise fail(source, f"models.{name}.{part}", f"is refused by {name}: {error}{hint}") from None


def _is_float_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_file(config, source: str) -> None:
    if config.dataset != "file":
        return
    if config.file.path is None:
        raise fail(source, "file.path", "is not set, but dataset is 'file': name your ratings file and "
                                        "its columns, as in file: {path: ratings.csv, user: userId, "
                                        "item: movieId, rating: rating}")
    if config.file.genres is not None and config.file.items is None:
        raise fail(source, "file.genres", f"is {config.file.genres!r}, a column of the items file, "
                                          f"but file.items is null: name the items file")
    for key, names in (("model", [config.model]), ("tune.models", config.tune.models),
                       ("baselines", config.baselines), ("online.world_model", [config.online.world_model])):
        for name in names:
            model = _fixed_model(config, name)
            if model.uses_item_features and not (config.file.items and config.file.genres):
                raise fail(source, key, f"names {name}, which scores items from their content features, "
                                        f"but the ratings file has none: name an items file and its "
                                        f"genres column (file.items, file.genres), or choose a model "
                                        f"that learns from the ratings alone")
            if model.predicts_ratings and config.file.rating is None:
                raise fail(source, key, f"names {name}, which learns rating biases, but file.rating is "
                                        f"null (implicit feedback: every interaction is 1); leave it out "
                                        f"(baselines: [Popularity] for one), or name the file's rating column")
    threshold = config.evaluation.relevance_threshold
    if config.file.rating is None and threshold is not None and threshold > 1:
        raise fail(source, "evaluation.relevance_threshold",
                   f"is {threshold}, but file.rating is null (implicit feedback: every interaction is "
                   f"1), so no test interaction would be relevant; leave it null")
    if config.split.method == "temporal" and config.file.timestamp is None:
        raise fail(source, "split.method", "is 'temporal', which holds out each user's latest "
                                           "interactions, but file.timestamp is null: name the file's "
                                           "timestamp column, or choose another split method")


def _check_backend(config, source: str, backend_model: dict) -> None:
    backend, model = config.backend, config.model
    needed = backend_model.get(backend)
    if needed is not None and model != needed:
        raise fail(source, "backend", f"is {backend!r}, which trains model {needed}, but key 'model' "
                                      f"is {model!r}; set model: {needed} (or backend: local to "
                                      f"train {model})")
    if needed is None and model in backend_model.values():
        wanted = next(name for name, trained in backend_model.items() if trained == model)
        raise fail(source, "model", f"is {model!r}, which trains in {wanted.capitalize()}, but key "
                                    f"'backend' is {backend!r}; set backend: {wanted} (or another "
                                    f"model for backend {backend!r})")
    others = [name for name in config.tune.models if name != needed]
    if needed is not None and others:   # Config.tuned_models: a backend tunes its own model only
        raise fail(source, "tune.models", f"is {list(config.tune.models)}, but backend {backend!r} "
                                          f"tunes only {needed}, not {', '.join(others)}; leave "
                                          f"tune.models out (or [{needed}]), or set backend: local "
                                          f"to search {', '.join(others)}")


def _check_tuned_space(config, name: str, source: str) -> None:
    space = config.models[name].space
    if not space:
        return
    try:
        checked = space_module.space_to_dict(space)
        # A value the model refuses (a YAML list [1e2, 1e3] of strings) failed every trial at it.
        space_module.check_values(checked, _fixed_model(config, name))
    except ValueError as error:
        raise ReclabError(f"{source}: key 'models.{name}.space' is not a valid search space: "
                          f"{error}") from None
    if config.tune.method == "grid":
        # tune() would refuse it too, but only inside the stage 2 kernel, after stage 1 ran.
        for param, spec in checked.items():
            if spec["type"] != "categorical":
                raise fail(source, f"models.{name}.space.{param}",
                           f"is {'an integer' if spec['type'] == 'int' else 'a real'} range from "
                           f"{spec['low']} to {spec['high']}, but "
                           f"tune.method 'grid' needs a list of values for every parameter (for "
                           f"example {param}: {_example_grid(spec)}); write the values to try as a "
                           f"list, or use tune.method 'random' or 'smbo', which sample ranges")


def _example_grid(spec: dict) -> list:
    """Three values spanning a range, as a hint in the grid error message."""
    low, high = spec["low"], spec["high"]
    log = spec.get("prior") == "log-uniform"
    values = np.geomspace(low, high, 3) if log else np.linspace(low, high, 3)
    if spec["type"] == "int":
        return sorted({int(round(value)) for value in values})
    return [float(f"{value:.3g}") for value in values]


def check_searchable(config, source: str) -> None:
    """Every model stage 2 searches has a search space: tune() would refuse an empty one too, but
    inside the stage 2 kernel, after stage 1 ran. A pipeline calls this before any kernel starts
    when it runs stage 2; :func:`reclab.config.tune_search` too, for a notebook run alone.

    Raises
    ------
    ReclabError
        Naming the model and what to do: for a model without hyperparameters (Popularity), to
        tune another; for one whose space the parameters leave empty (a file that declares none
        for it), the key ``models.<name>.space`` and an example space, taken from
        ``params/default.yaml`` when that file declares one.
    """
    for name in config.tuned_models():
        if config.models[name].space:
            continue
        if model_parameters(name):
            raise fail(source, f"models.{name}.space", f"is empty, but stage 2 tunes {name} and has "
                                                      f"nothing to search; {_space_advice(config, name)}")
        scored = "stage 5 already scores it as a baseline" if name in config.baselines \
            else "add it to 'baselines' to score it beside the tuned model"
        raise ReclabError(f"{source}: {name} has no hyperparameters, so stage 2 (tuning) has nothing to "
                          f"search for it; {scored}. Tune a model that has a search space (key 'model', "
                          f"or 'tune.models' without {name}; for example ImplicitALS)")


def _space_advice(config, name: str) -> str:
    """How to give model ``name`` a search space: the one ``params/default.yaml`` declares for it
    (without the parameters ``config`` fixes), as a ``--set`` value; else its parameters."""
    fixed = config.models[name].params
    try:   # read as every parameter file is (reclab.config.files)
        declared = read_text(*read(default_params_file())).get("models", {}).get(name, {}).get("space")
    except (ReclabError, AttributeError):   # no default file beside the notebooks, or another layout
        declared = None
    example = {param: spec for param, spec in declared.items() if param not in fixed} \
        if isinstance(declared, dict) else {}
    if not example:
        free = [param for param in model_parameters(name) if param not in fixed]
        return (f"declare at least one of its parameters {free} in models.{name}.space (for "
                f"example {{type: int, low: 8, high: 64}} for an integer)")
    text = yaml.safe_dump(example, default_flow_style=True, sort_keys=False, width=1 << 20).strip()
    return (f"declare at least one of its parameters there, for example params/default.yaml's "
            f"space: --set 'models.{name}.space={text}' (or the same under models: {{{name}: "
            f"{{space: ...}}}} in the file)")


def check_runnable(config, source: str) -> None:
    """What stage 1 needs before any kernel starts, beyond the configuration's own rules: the first
    rows of a ratings file (``dataset: file``), or the data files of a MovieLens ``dataset``, found
    (``data_dir``, then ``RECLAB_DATA_DIR``, then the cache) or downloaded now, so that a missing
    data set fails before any MLflow run exists.

    Raises
    ------
    ReclabError
        Naming the key ``dataset`` (or ``data_dir``), its value and where the files were looked for;
        or the key ``file`` and what is wrong with the file.
    """
    if config.dataset == "synthetic":
        return
    if config.dataset == "file":   # its first rows: the file is there, readable and has the columns
        try:
            datasets.read_interactions(**config.file.model_dump(), nrows=100)
        except ReclabError as error:
            raise fail(source, "file", f"does not give ratings: {error}") from None
        return
    if config.data_dir is not None and not Path(config.data_dir).expanduser().is_dir():
        raise fail(source, "data_dir", f"is {config.data_dir!r}, which is not a folder; name a folder that "
                                       f"holds {config.dataset}/ or {config.dataset}.zip, or set data_dir: null")
    try:
        datasets.fetch(config.dataset, data_dir=config.data_dir, download=False)
        return
    except ReclabError as error:
        missing = str(error).partition(". ")[0]   # "<name> not found; looked in [...]"
    try:
        datasets.fetch(config.dataset, data_dir=config.data_dir)   # downloads it now, before any run
    except ReclabError as error:
        raise fail(source, "dataset", f"is {config.dataset!r}, whose files are neither found nor "
                                      f"downloaded: {missing}; {error}") from None
