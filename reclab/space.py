"""Hyperparameter search spaces declared as data (a YAML params file, a dict in a notebook).

A search space maps each model parameter to the values a search may give it. It is written as
plain data, so that it lives in parameter files next to the rest of an experiment, is checked in
that form (:func:`space_to_dict`), and is turned into scikit-optimize dimensions by
:func:`parse_space` only where a search runs: scikit-optimize imports scikit-learn and
scipy.stats, about half a second that every stage kernel validating its configuration would pay.

Schema
------
One entry per parameter, ``name: spec``, where ``spec`` is one of::

    {type: int,  low: 16,     high: 256, prior: log-uniform}   # integers low..high, both included
    {type: real, low: 1.0e-4, high: 1.0, prior: log-uniform}   # real numbers in [low, high]
    {type: categorical, values: [true, false]}                 # exactly these values
    [32, 64, 128]                                              # shorthand for the categorical above

- ``type`` is ``int``, ``real`` or ``categorical``; no other key than those shown is allowed.
- ``low < high`` (strictly; a single value is a one-element list). ``int`` bounds are 64-bit integers,
  ``real`` bounds finite numbers. Write an exponent with a dot and a sign, ``1.0e-4`` or
  ``1.0e+3``: YAML 1.1 (PyYAML) reads ``1e-4``, ``1e3`` and ``1.0e3`` as *strings*. Such a bound
  is refused with a message saying how to write it; in a list, such a string is refused by
  :func:`check_values` when the model refuses it.
- ``prior`` is ``uniform`` (the default) or ``log-uniform`` (uniform in log(value), for scales
  such as regularization or learning rates: every decade is equally likely). ``log-uniform``
  needs ``low > 0``.
- ``values`` is a non-empty list of distinct scalars: strings, numbers, booleans or null. Scalars
  only, so that every trial's parameters are plain JSON (checkpoints, MLflow).
- A list is what a grid search enumerates; random search and SMBO treat it as a categorical
  choice. A grid search needs every parameter given as a list (or categorical); ``int`` and
  ``real`` ranges have no grid.
- scikit-optimize ``Integer``, ``Real`` and ``Categorical`` objects are accepted too and go
  through the same checks; their ``name``, when set, must be the entry's key. Features the data
  schema cannot express (a log base other than 10, non-uniform categorical probabilities) are
  refused, so that :func:`space_to_dict` describes the space exactly.

Parameter order is kept as declared: it fixes the grid order and the order of the dimensions
that random search and SMBO sample, hence their sequence of trials.

Examples
--------
>>> space = parse_space({"factors": {"type": "int", "low": 16, "high": 256,
...                                  "prior": "log-uniform"},
...                      "use_cg": [True, False]})
>>> space["factors"]
Integer(low=16, high=256, prior='log-uniform', transform='identity')
>>> space_to_dict(space)["use_cg"]
{'type': 'categorical', 'values': [True, False]}
>>> grid_points(parse_space({"a": [1, 2], "b": ["x", "y"]}))
[{'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'}]
"""

from __future__ import annotations

import itertools
import math
import numbers
import sys
from typing import TYPE_CHECKING, Mapping

import numpy as np

from reclab._validate import check_int, check_seed
from reclab.errors import ReclabError

if TYPE_CHECKING:
    from skopt.space import Dimension

__all__ = ["TYPES", "PRIORS", "parse_space", "space_to_dict", "check_values", "grid_points", "grid_size",
           "sample", "to_python"]

TYPES = ("int", "real", "categorical")
PRIORS = ("uniform", "log-uniform")
_KEYS = {"int": ("type", "low", "high", "prior"),
         "real": ("type", "low", "high", "prior"),
         "categorical": ("type", "values")}


def to_python(value):
    """A numpy scalar as the equal plain Python scalar (``np.int64(3)`` -> ``3``); others as-is.

    scikit-optimize hands out numpy scalars; models, JSON and MLflow want plain ones.
    """
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fail(name, message: str) -> ReclabError:
    return ReclabError(f"search space parameter {name!r}: {message}")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _number_text_hint(text: str) -> str:
    """Why YAML gave a number as the string ``text``, and how to write it ('' for other text).

    YAML 1.1 (PyYAML) reads an exponent number as a float only with a dot in the mantissa and a
    sign in the exponent: ``1.0e-4`` and ``1.0e+3`` are numbers, ``1e-4``, ``1e3`` and ``1.0e3``
    strings.
    """
    try:
        float(text)
    except ValueError:
        return ""
    mantissa, e, exponent = text.strip().lower().partition("e")
    if not e or not exponent:
        return ""
    if "." not in mantissa:
        mantissa += ".0"
    if exponent[0] not in "+-":
        exponent = "+" + exponent
    return (f"; YAML reads a number with an exponent as a string unless it has a dot and a "
            f"signed exponent: write {mantissa}e{exponent}")


def _bound(name, key: str, value, kind: str):
    if isinstance(value, str):
        raise _fail(name, f"{key} must be a number, got the string {value!r}{_number_text_hint(value)}")
    if not _is_number(value) or not math.isfinite(value):
        raise _fail(name, f"{key} must be a finite number, got {value!r}")
    value = to_python(value)
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise _fail(name, f"{key} must be an integer for type 'int', got {value!r}; use type "
                              f"'real' for a real-valued parameter")
        if not -2**63 <= value < 2**63:   # scikit-optimize's integers are int64 (a TypeError)
            raise _fail(name, f"{key} must be a 64-bit integer (within +-9.2e18) for type 'int', "
                              f"got {value!r}")
        return int(value)
    return float(value)


def _check_values(name, values) -> list:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (list, tuple)):
        raise _fail(name, f"values must be a list of scalars, got {values!r}")
    if len(values) == 0:
        raise _fail(name, "values is an empty list; give at least one value")
    out, seen = [], set()
    for value in values:
        value = to_python(value)
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise _fail(name, f"values must be strings, numbers, booleans or null (plain JSON "
                              f"scalars), got {value!r} of type {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(name, f"values must be finite, got {value!r}")
        # (type, value) so that True and 1, or 1 and 1.0, count as different values.
        key = (type(value).__name__, value)
        if key in seen:
            raise _fail(name, f"values lists {value!r} twice; each value may appear once")
        seen.add(key)
        out.append(value)
    return out


def _check_spec(name, spec) -> dict:
    """The checked data form of one entry (a mapping or a list): a mapping with every key."""
    if isinstance(spec, (list, tuple)):
        return {"type": "categorical", "values": _check_values(name, spec)}
    if not isinstance(spec, Mapping):
        raise _fail(name, f"must be a mapping such as {{type: int, low: 1, high: 10}}, a list of "
                          f"values, or a scikit-optimize dimension; got {spec!r}. A fixed value is "
                          f"a model parameter, not part of the space (or a one-element list)")
    kind = spec.get("type")
    if kind not in TYPES:
        raise _fail(name, f"type must be one of {list(TYPES)}, got {kind!r}"
                          + (" (use 'real' for real numbers)" if kind in ("float", "double") else "")
                          + (" (use 'int' for integers)" if kind == "integer" else ""))
    unknown = [key for key in spec if key not in _KEYS[kind]]
    if unknown:
        raise _fail(name, f"unknown key{'s' if len(unknown) > 1 else ''} {unknown} for type {kind!r}; "
                          f"its keys are {list(_KEYS[kind])}")
    if kind == "categorical":
        if "values" not in spec:
            raise _fail(name, "type 'categorical' needs values: [...]")
        return {"type": "categorical", "values": _check_values(name, spec["values"])}
    missing = [key for key in ("low", "high") if key not in spec]
    if missing:
        raise _fail(name, f"type {kind!r} needs {' and '.join(missing)}")
    low = _bound(name, "low", spec["low"], kind)
    high = _bound(name, "high", spec["high"], kind)
    prior = spec.get("prior", "uniform")
    if prior not in PRIORS:
        raise _fail(name, f"prior must be one of {list(PRIORS)}, got {prior!r}")
    if low >= high:
        raise _fail(name, f"low must be below high, got low={low!r}, high={high!r} (empty bounds); "
                          f"for a single value use a one-element list")
    if prior == "log-uniform" and low <= 0:
        raise _fail(name, f"prior 'log-uniform' needs low > 0, got low={low!r}; raise low or use "
                          f"prior 'uniform'")
    return {"type": kind, "low": low, "high": high, "prior": prior}


def _dimension(name, spec: dict) -> Dimension:
    """The scikit-optimize dimension of a checked entry (:func:`_check_spec`)."""
    from skopt.space import Categorical, Integer, Real

    if spec["type"] == "categorical":
        return Categorical(spec["values"], name=name)
    kind = Integer if spec["type"] == "int" else Real
    return kind(spec["low"], spec["high"], prior=spec["prior"], name=name)


def _is_dimension(spec) -> bool:
    """Whether ``spec`` is a scikit-optimize dimension; one can exist only once scikit-optimize is
    imported, so data never imports it."""
    skopt_space = sys.modules.get("skopt.space")
    return skopt_space is not None and isinstance(spec, skopt_space.Dimension)


def _to_spec(name, dimension: Dimension) -> dict:
    """The data form of a scikit-optimize dimension, refusing what the schema cannot hold."""
    from skopt.space import Categorical, Integer, Real

    if isinstance(dimension, Categorical):
        prior = getattr(dimension, "prior", None)
        if prior is not None and not np.allclose(prior, 1.0 / len(dimension.categories)):
            raise _fail(name, f"categorical probabilities {list(prior)} cannot be declared in a "
                              f"reclab space; values are drawn with equal probability")
        return {"type": "categorical", "values": [to_python(value) for value in dimension.categories]}
    if isinstance(dimension, (Integer, Real)):
        kind = "int" if isinstance(dimension, Integer) else "real"
        if dimension.prior == "log-uniform" and getattr(dimension, "base", 10) != 10:
            raise _fail(name, f"log base {dimension.base} cannot be declared in a reclab space; "
                              f"use the default base 10 (a log-uniform distribution is the same in "
                              f"every base)")
        low, high = to_python(dimension.low), to_python(dimension.high)
        if kind == "real":
            low, high = float(low), float(high)
        return {"type": kind, "low": low, "high": high, "prior": dimension.prior}
    raise _fail(name, f"unsupported dimension type {type(dimension).__name__}; use Integer, Real "
                      f"or Categorical")


def parse_space(space) -> dict[str, Dimension]:
    """Turn a search space given as data into named scikit-optimize dimensions.

    Parameters
    ----------
    space : mapping of str -> spec
        See the module docstring for the schema. ``space_to_dict`` output and an already parsed
        space are accepted too.

    Returns
    -------
    dict of str -> skopt.space.Dimension
        In declared order; each dimension's ``name`` is its key.

    Raises
    ------
    ReclabError
        Naming the parameter and what is wrong: unknown type or key, empty bounds, log-uniform
        with ``low <= 0``, a string where a number belongs, bad categorical values.
    """
    return {name: _dimension(name, spec) for name, spec in space_to_dict(space).items()}


def space_to_dict(space) -> dict[str, dict]:
    """The checked data form of a search space, for logging (MLflow, JSON, YAML) and checkpoints.

    Every entry comes out as a mapping (``{type: categorical, values: [...]}`` for a list, a
    ``prior`` for every range), with plain Python scalars; ``parse_space(space_to_dict(s))`` gives
    back the same space. Checks everything :func:`parse_space` checks (it raises the same
    errors), without importing scikit-optimize for a space given as data.
    """
    if not isinstance(space, Mapping):
        raise ReclabError(f"a search space must be a mapping of parameter name -> spec, got "
                          f"{type(space).__name__} {space!r}")
    if not space:
        raise ReclabError("the search space is empty; declare at least one parameter, for example "
                          "{'factors': {'type': 'int', 'low': 16, 'high': 256}}")
    checked = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ReclabError(f"search space keys must be parameter names (identifiers), got {name!r}")
        if _is_dimension(spec):
            if spec.name is not None and spec.name != name:
                raise _fail(name, f"the dimension is named {spec.name!r}; name it {name!r} or "
                                  f"leave its name unset")
            spec = _to_spec(name, spec)
        checked[name] = _check_spec(name, spec)
    return checked


def check_values(space, model) -> None:
    """Refuse a space holding a value that ``model`` refuses for its parameter.

    Every value of a list and both bounds of a range are checked by the model's own
    ``check_params``, with its other parameters as given. The models check each parameter on
    its own, against an interval or a set of choices, so the bounds stand for the range: a
    ``real`` range of an integer parameter is refused at its bounds (``2.0`` is not an integer).
    The pipeline's configuration checks each tuned model's space with it before any stage runs:
    :func:`reclab.tuning.tune` records a trial at such a value as failed and goes on, so a grid
    written ``[1e2, 1e3]`` in YAML (two strings) ran, failed every trial, and kept the start
    point without a word. Parameters the model does not have are left to the caller's check.

    Raises
    ------
    ReclabError
        Naming the parameter, the value and the model's reason, with how to write a number that
        YAML read as a string (``1e3``).
    """
    params = model.get_params()
    for name, spec in space_to_dict(space).items():
        if name not in params:
            continue
        if spec["type"] == "categorical":
            values = [("value", value) for value in spec["values"]]
        else:
            values = [("low", spec["low"]), ("high", spec["high"])]
        for key, value in values:
            try:
                type(model)(**{**params, name: value}).check_params()
            except ReclabError as error:
                hint = _number_text_hint(value) if isinstance(value, str) else ""
                raise _fail(name, f"{key} {value!r} is refused by {type(model).__name__}: {error}"
                                  f"{hint}") from None


def _grid_values(space: dict[str, dict]) -> list[list]:
    """The value lists of a checked space (:func:`space_to_dict`) whose every entry is a list."""
    ranges = [name for name, spec in space.items() if spec["type"] != "categorical"]
    if ranges:
        raise ReclabError(f"a grid search needs a list of values for every parameter; "
                          f"{ranges} {'is a range' if len(ranges) == 1 else 'are ranges'} "
                          f"({', '.join(f'{n}: {space[n]}' for n in ranges)}); "
                          f"write them as lists such as factors: [32, 64, 128], or use method "
                          f"'random' or 'smbo'")
    return [spec["values"] for spec in space.values()]


def grid_size(space) -> int:
    """Number of points of the grid of a space whose every parameter is a list."""
    return math.prod(len(values) for values in _grid_values(space_to_dict(space)))


def grid_points(space) -> list[dict]:
    """Every point of the grid, as parameter dicts, in a fixed order.

    The cartesian product of the lists in declared parameter order, the last parameter varying
    fastest (``itertools.product`` order).

    Raises
    ------
    ReclabError
        If a parameter is an ``int`` or ``real`` range (it has no grid).
    """
    checked = space_to_dict(space)
    return [dict(zip(checked, combination))
            for combination in itertools.product(*_grid_values(checked))]


def sample(space, n: int, seed: int = 0) -> list[dict]:
    """``n`` random points of a space, each parameter drawn from its bounds and prior.

    ``int`` and ``real`` ranges are drawn uniformly, or uniformly in log(value) for
    ``log-uniform``; categorical values with equal probability. scikit-optimize does the
    sampling with ``numpy.random.RandomState(seed)`` (it takes only the legacy generator).
    Points are drawn one at a time, so the first ``m`` points of ``sample(space, n, seed)`` are
    ``sample(space, m, seed)``.

    Returns
    -------
    list of dict
        Parameter dicts with plain Python scalars, in declared parameter order.
    """
    from skopt.space import Space

    n = check_int("number of points", n, low=0)
    seed = check_seed(seed)
    parsed = parse_space(space)
    names = list(parsed)
    sampler = Space(list(parsed.values()))
    rng = np.random.RandomState(int(seed))
    return [dict(zip(names, map(to_python, sampler.rvs(n_samples=1, random_state=rng)[0])))
            for _ in range(int(n))]
