"""The objects a configuration describes, for the stage notebooks: the data, the split, the models,
the simulated world, and the keyword arguments of ``tune`` and ``evaluate``."""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from reclab import datasets, models, split
from reclab.config.checks import check_searchable, model_parameters
from reclab.config.schema import MODEL_NAMES, Config
from reclab.errors import ReclabError
from reclab.metrics import RATING_METRICS

__all__ = ["evaluation_options", "load_data", "make_model", "make_split", "make_world", "tune_options",
           "tune_search"]


def load_data(config: Config):
    """The data set of ``config``: ``synthetic(seed=seed, **synthetic)``, the ratings file of the
    ``file`` section (:func:`reclab.datasets.read_interactions`), or a MovieLens set loaded with
    ``data_dir`` (:func:`reclab.datasets.load`)."""
    if config.dataset == "synthetic":
        return datasets.synthetic(seed=config.seed, **config.synthetic)
    if config.dataset == "file":
        return datasets.read_interactions(**config.file.model_dump())
    return datasets.load(config.dataset, data_dir=config.data_dir)


def make_split(config: Config, data):
    """``(train, valid, test)`` of ``data`` by ``split.method``.

    Test is held out of ``data`` first; valid is then held out of the rest the same way (with
    ``valid_frac`` for the fractional methods, and seed ``seed + 1``), so ``train``, ``valid``
    and ``test`` partition ``data`` and tuning never sees the test split.

    With ``online.enabled``, stage 6 shows each simulated user a full list of
    ``n_recommendations`` items the models were not fitted on (``train`` and ``valid``): when
    no user has that many, this raises here, in stage 1, rather than after five stages.
    """
    spec, seed = config.split, config.seed

    def hold_out(part, fraction: float, seed: int):
        if spec.method == "leave_k_out":
            return split.leave_k_out(part, k=spec.held_out_per_user, seed=seed)
        return getattr(split, spec.method)(part, test_frac=fraction, seed=seed)

    def given(fraction_key: str) -> str:
        if spec.method == "leave_k_out":
            return f"split.held_out_per_user={spec.held_out_per_user}"
        return f"split.{fraction_key}={getattr(spec, fraction_key):g}"

    def refuse_empty(part: str, held, source, fraction_key: str) -> None:
        """An empty part was logged by stage 1, then refused when stage 2 read it back."""
        if held.nnz:
            return
        most = int(source.user_counts().max())
        why = ("every user has one interaction, which stays in train" if most < 2 else
               f"it rounds to 0 of every user's interactions (at most {most} each); hold out more")
        raise ReclabError(f"split.method {spec.method} with {given(fraction_key)} holds out nothing for "
                          f"the {part} part: {why}")

    rest, test = hold_out(data, spec.test_frac, seed)
    refuse_empty("test", test, data, "test_frac")
    try:
        train, valid = hold_out(rest, spec.valid_frac, seed + 1)
    except ReclabError as error:   # its message names test_frac: here split.valid_frac
        raise ReclabError(f"the validation part ({given('valid_frac')}, held out of what test left): "
                          f"{error}") from None
    refuse_empty("validation", valid, rest, "valid_frac")
    if config.online.enabled:
        unseen = int(data.n_items - train.union(valid).user_counts().min())
        if config.n_recommendations > unseen:
            raise ReclabError(f"key 'n_recommendations' is {config.n_recommendations}, but stage 6 "
                              f"shows each simulated user a full list of items the models were not "
                              f"fitted on, and no user has that many (the most is {unseen} of "
                              f"{data.n_items} items); use n_recommendations <= {unseen}, or "
                              f"online.enabled: false")
    return train, valid, test


def make_model(config: Config, name: str | None = None, searched=None):
    """An unfitted model: ``name`` (default the tuned ``model``) with its fixed ``params`` from
    ``models.<name>.params``, the pipeline ``seed`` where the model takes a seed and the file
    sets none, then ``searched`` (for example the best parameters of stage 2) on top."""
    name = config.model if name is None else name
    cls = getattr(models, name, None)
    if cls is None:
        raise ReclabError(f"model {name!r} is not available in reclab.models; available: "
                          f"{[n for n in MODEL_NAMES if hasattr(models, n)]}")
    entry = config.models.get(name)
    fixed = dict(entry.params) if entry is not None else {}
    names = model_parameters(name)
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ReclabError(f"models.{name}.params has {unknown[0]!r}, which {name} does not take; "
                          f"its parameters are {names}")
    if "seed" in names:
        fixed.setdefault("seed", config.seed)
    fixed.update(searched or {})
    return cls(**fixed)


#: Share of the validation users without training interactions from which a model that cannot
#: rank for them (``ranks_new_users`` False) is warned about.
NEW_USERS_WARNED = 0.1


def _unsuited(config: Config, name: str, model, new: tuple[int, int] | None) -> str | None:
    """Why the tuned ``model`` (named ``name``) does not suit this run, or None; ``new``: the
    validation users without training interactions, and all validation users (None: unknown)."""
    metric = config.tune.metric
    if model.predicts_ratings and metric not in RATING_METRICS:
        return (f"model {name} is a rating predictor: its top-N lists rank poorly (SVD: precision@10 "
                f"0.115 on MovieLens 100k, below Popularity's 0.192), yet this run tunes it for "
                f"{metric}; for ranking use model: PureSVD (the SVD of the interactions), EASE or "
                f"ImplicitALS")
    if new is not None and new[0] >= NEW_USERS_WARNED * new[1] > 0 and not model.ranks_new_users:
        return (f"{new[0]} of the {new[1]} validation users ({new[0] / new[1]:.0%}, split.method "
                f"{config.split.method}) have no training interactions, and {name} gives such a user "
                f"the same score for every item: it ranks at chance for them (precision@10 on "
                f"ml-latest-small's new users: ImplicitALS 0.018, Popularity 0.425, "
                f"benchmarks/results/content.md); use model: HybridALS (user features, else the "
                f"average user's factors), or a model with item biases (Bias, SVD, ExplicitALS)")
    return None


def make_world(config: Config, data):
    """The simulated world of stage 6 (:class:`reclab.online.World`) on the users and items of
    ``data``, the interactions the models were fitted on (so its ``seen`` is theirs).

    Synthetic data: the ground truth of the full data set (:meth:`World.from_truth`, with the
    generator's ``mnar`` and ``taste_exposure``), aligned to ``data``'s ids. Real data: the
    scores of ``online.world_model`` fitted on ``data`` (:meth:`World.from_model`), which
    favours models like it.
    """
    from reclab import online   # scipy.stats: imported by stage 6 only, not by every stage kernel

    if config.dataset == "synthetic":
        defaults = inspect.signature(datasets.synthetic).parameters
        weight = {name: config.synthetic.get(name, defaults[name].default)
                  for name in ("mnar", "taste_exposure")}
        world = online.World.from_truth(load_data(config), rating_weight=weight["mnar"],
                                        interest_weight=weight["taste_exposure"])
        return world.align(data)
    return online.World.from_model(make_model(config, config.online.world_model).fit(data), data)


def tune_search(config: Config, train=None, valid=None) -> dict:
    """Keyword arguments ``model``, ``space`` and ``starts`` of :func:`reclab.tuning.tune`.

    One tuned model gives a model and its space; several (``tune.models``) give lists, one
    entry per model, searched under one trial budget.

    Warns (``UserWarning``, shown in the tuning notebook's output and by ``reclab run``) for each
    tuned model that does not suit the run: a rating predictor (SVD, ExplicitALS, Bias) tuned
    for a ranking metric (its top-N lists are poor: the message points to PureSVD, EASE and
    ImplicitALS); and, given the split's ``train`` and ``valid``, a model that cannot rank for a
    user without interactions (``ranks_new_users`` False) when at least
    :data:`NEW_USERS_WARNED` of the validation users have none (:func:`reclab.split.new_users`:
    all of them on ``cold_users``, 43-76% on ``temporal`` splits).
    """
    check_searchable(config, "parameters")
    names = config.tuned_models()
    tuned = [make_model(config, name) for name in names]
    new = None
    if train is not None and valid is not None:
        new = (len(split.new_users(train, valid)), int(np.count_nonzero(valid.user_counts())))
    for name, model in zip(names, tuned):
        problem = _unsuited(config, name, model, new)
        if problem is not None:
            warnings.warn(problem, UserWarning, stacklevel=2)
    spaces = [config.models[name].space for name in names]
    starts = [config.models[name].starts for name in names]
    if len(names) == 1:
        return {"model": tuned[0], "space": spaces[0], "starts": starts[0]}
    return {"model": tuned, "space": spaces, "starts": starts}


def tune_options(config: Config) -> dict:
    """Keyword arguments of :func:`reclab.tuning.tune` from ``tune``, ``seed`` and
    ``evaluation.relevance_threshold`` (a grid search runs its whole grid: ``n_trials`` None).

    Trials run one at a time (``n_jobs=1``) on every backend: the ALS models already use every
    core in one fit, SMBO stays fully sequential, and SparkALS trials share the kernel's one
    Spark session (worker processes would each start a JVM of their own).
    """
    tune = config.tune
    return {"method": tune.method, "n_trials": None if tune.method == "grid" else tune.n_trials,
            "metric": tune.metric, "seed": config.seed, "n_initial": tune.n_initial,
            "estimator": tune.estimator, "n_jobs": 1, "folds": tune.folds,
            "time_budget": tune.time_budget,
            "relevance_threshold": config.evaluation.relevance_threshold}


def evaluation_options(config: Config) -> dict:
    """Keyword arguments of :func:`reclab.evaluation.evaluate` from ``k``, ``evaluation`` and
    ``seed``."""
    return {"k": tuple(config.k), "relevance_threshold": config.evaluation.relevance_threshold,
            "n_bootstrap": config.evaluation.n_bootstrap, "seed": config.seed}
