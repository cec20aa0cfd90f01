"""Argument checks shared by every reclab module: one wording for one kind of mistake.

Each check returns the value as a plain Python scalar or raises :class:`~reclab.errors.ReclabError`
naming the argument, what was expected and what was given, e.g. ``k must be an integer >= 1, got 0``.
Given ``model``, the message names its class: ``SVD parameter factors must be an integer >= 1, got 0``
(models check their hyperparameters with these in ``_validate_params``).

Booleans are refused where numbers are expected (``True`` is an ``int`` to Python, but a flag passed
as a count is a mistake worth hearing about), and so are floats where integers are expected, even
``3.0``: a float there is usually a search space mistake.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from reclab.errors import ReclabError

__all__ = ["check_bool", "check_choice", "check_cutoffs", "check_float", "check_indices", "check_int", "check_k",
           "check_seed", "check_threshold"]


def _subject(name: str, model) -> str:
    return name if model is None else f"{type(model).__name__} parameter {name}"


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_int(name: str, value, low: int | None = None, high: int | None = None, model=None) -> int:
    """Check that ``value`` is an integer in ``[low, high]`` (either bound optional); return it as ``int``."""
    if _is_bool(value) or not isinstance(value, numbers.Integral) \
            or (low is not None and value < low) or (high is not None and value > high):
        bounds = ("" if low is None and high is None else f" >= {low}" if high is None
                  else f" <= {high}" if low is None else f" in [{low}, {high}]")
        raise ReclabError(f"{_subject(name, model)} must be an integer{bounds}, got {value!r}")
    return int(value)


def _finite(value: numbers.Real) -> bool:
    """Whether a real number is finite as a float (an int beyond float's range, 10**400, is not:
    math.isfinite raised OverflowError for it)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_float(name: str, value, low: float | None = None, high: float | None = None,
                low_open: bool = False, model=None) -> float:
    """Check that ``value`` is a finite real number in ``[low, high]``; return it as ``float``.

    ``low_open=True`` makes the lower bound strict (``value > low``), e.g. for a learning rate.
    """
    subject = _subject(name, model)
    if _is_bool(value) or not isinstance(value, numbers.Real) or not _finite(value):
        raise ReclabError(f"{subject} must be a finite number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if low is not None and high is not None and (too_low or too_high):
        raise ReclabError(f"{subject} must be a number in {'(' if low_open else '['}{low}, {high}], "
                          f"got {value!r}")
    if too_low:
        raise ReclabError(f"{subject} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if too_high:
        raise ReclabError(f"{subject} must be <= {high}, got {value!r}")
    return float(value)


def check_indices(values, size: int, role: str, owner: str, where: str = "the training data") -> np.ndarray:
    """Validate user or item indices; return them as a 1-D int64 array (a scalar gives length 1).

    ``role`` is ``"user"`` or ``"item"``; ``owner`` (a model's class name) and ``where`` (what
    holds the ``size`` users or items) name them in the message."""
    array = np.asarray(values)
    plural = "users" if role == "user" else "items"
    if array.ndim > 1:
        raise ReclabError(f"{plural} must be one index or a 1-D array of indices, got shape {array.shape}")
    if array.size and (array.dtype == bool or array.dtype.kind not in "iu"):
        shown = array.reshape(-1)[:10].tolist()
        raise ReclabError(f"{plural} must be integer {role} indices 0..{size - 1}, got {array.dtype} "
                          f"values {shown}; map original ids with data.{role}_index(ids)")
    array = array.reshape(-1)
    # Compared before the cast to int64, which would wrap a uint64 index above 2**63 to a negative one.
    bad = array[(array < 0) | (array >= size)]
    array = array.astype(np.int64, copy=False)
    if bad.size:
        raise ReclabError(f"unknown {role} indices {np.unique(bad)[:10].tolist()} for {owner}: valid "
                          f"{role} indices are 0..{size - 1} ({size} {plural} in {where}); "
                          f"map original ids with data.{role}_index(ids)")
    return array


def check_bool(name: str, value, model=None) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (a NumPy bool included); return it as ``bool``."""
    if not _is_bool(value):
        raise ReclabError(f"{_subject(name, model)} must be True or False, got {value!r}")
    return bool(value)


def check_seed(value, name: str = "seed", model=None) -> int:
    """Check a random seed: an integer >= 0. None is refused: runs must be reproducible."""
    if value is None:
        raise ReclabError(f"{_subject(name, model)} must be an integer >= 0 (None would make the run "
                          "irreproducible), got None")
    return check_int(name, value, low=0, model=model)


def check_choice(name: str, value, choices, model=None):
    """Check that ``value`` is one of ``choices``; return it unchanged."""
    if value not in choices:
        raise ReclabError(f"{_subject(name, model)} must be one of {list(choices)}, got {value!r}")
    return value


def check_k(k, n_ranks: int | None = None) -> int:
    """Return the cutoff ``k`` as an int after checking ``1 <= k`` (and ``k <= n_ranks`` when given)."""
    if _is_bool(k) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ReclabError(f"k must be an int >= 1 (a list length), got {k!r}")
    if n_ranks is not None and k > n_ranks:
        raise ReclabError(f"k={k} exceeds the {n_ranks} ranks given; compute top-{k} lists "
                          f"(padded with id -1 where candidates run out) first")
    return int(k)


def check_cutoffs(k) -> tuple[int, ...]:
    """Metric cutoffs: one int >= 1 or a non-empty sequence of them; return them sorted, unique."""
    cuts = [k] if isinstance(k, (numbers.Integral, np.integer)) else k
    try:
        if isinstance(cuts, (str, bytes)):   # k="10" is no sequence of cutoffs "1" and "0"
            raise TypeError
        cuts = list(cuts)
    except TypeError:
        raise ReclabError(f"k must be an int >= 1 or a sequence of them, got {k!r}") from None
    if not cuts:
        raise ReclabError("k is empty; give at least one cutoff, for example k=(5, 10, 20)")
    return tuple(sorted({check_k(cut) for cut in cuts}))


def check_threshold(threshold) -> float | None:
    """A relevance threshold: None (every test interaction is relevant) or a finite rating."""
    if threshold is None:
        return None
    if _is_bool(threshold) or not isinstance(threshold, (numbers.Real, np.number)) \
            or not _finite(threshold):
        raise ReclabError(f"relevance_threshold must be a finite number (a rating) or None, got {threshold!r}")
    return float(threshold)
