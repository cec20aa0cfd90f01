"""Argument checks and figure set-up shared by the online tests of :mod:`reclab.online`."""

from __future__ import annotations

from typing import Mapping

import scipy.sparse as sp

from reclab._validate import check_float, check_int
from reclab.data import stored_pairs
from reclab.errors import ReclabError

__all__ = ["CONFIDENCE", "check_arm", "check_arms", "check_n_users", "check_probability", "check_seen",
           "result_axes"]

#: Level of the confidence intervals the tests report.
CONFIDENCE = 0.95


def check_arm(name: str, model, n_users: int, n_items: int) -> None:
    """A model fitted on ``n_users`` x ``n_items``: an arm of a test, or (``name`` "world model")
    the model whose scores :meth:`World.from_model` makes the utilities of, on its data (there
    is no world yet)."""
    world_model = name == "world model"
    label = name if world_model else f"arm {name!r}"
    methods = ("recommend", "score_items") if world_model else ("recommend",)
    if not all(callable(getattr(model, method, None)) for method in methods):
        raise ReclabError(f"{label} must be a fitted model with {'() and '.join(methods)}(), got "
                          f"{type(model).__name__}")
    if getattr(model, "n_items_", None) is None:
        raise ReclabError(f"{label}: {type(model).__name__} is not fitted; call fit(train) first")
    if (model.n_users_, model.n_items_) != (n_users, n_items):
        other, advice = (("data has", "fit it on data") if world_model else
                         ("the world has", "fit it on the data the world was made from (or "
                                           "World.align(train))"))
        raise ReclabError(f"{label}: {type(model).__name__} was fitted on {model.n_users_} users x "
                          f"{model.n_items_} items, but {other} {n_users} x {n_items}; {advice}")


def check_arms(world: World, arms, count: int | None = None) -> dict:
    if not isinstance(arms, Mapping):
        raise ReclabError(f"arms must map arm names to fitted models, e.g. {{'A': model_a, 'B': "
                          f"model_b}}, got {type(arms).__name__}")
    if count is not None and len(arms) != count:
        raise ReclabError(f"this test compares exactly {count} arms, got {len(arms)}: {list(arms)}")
    if len(arms) < 2:
        raise ReclabError(f"an online test needs at least 2 arms, got {len(arms)}: {list(arms)}")
    for name, model in arms.items():
        if not isinstance(name, str) or not name:
            raise ReclabError(f"arm names must be non-empty strings, got {name!r}")
        check_arm(name, model, world.n_users, world.n_items)
        check_seen(name, model, world)
    return dict(arms)


def check_seen(name: str, model, world: World) -> None:
    """An arm fitted on other interactions than the world's ``seen`` would show items the world
    counts as already rated (a world built on all the data, arms fitted on train), or never show
    some it does not."""
    fitted = getattr(model, "seen_", None)
    if not sp.issparse(fitted) or fitted.shape != world.seen.shape:
        return
    fitted, seen = stored_pairs(fitted), stored_pairs(world.seen)
    differ = fitted.nnz + seen.nnz - 2 * fitted.multiply(seen).count_nonzero()
    if differ:
        raise ReclabError(f"arm {name!r}: {type(model).__name__} was fitted on {fitted.nnz} interactions and "
                          f"the world's seen holds {seen.nnz}; {differ} pairs are in one only, so the arm "
                          f"would show items the world counts as rated, or hide some it does not. Make "
                          f"the world on the data the arms were fitted on: World.from_truth(data)"
                          f".align(train), or World.from_model(model, train)")


def check_n_users(n_users, minimum: int) -> int:
    """At least ``minimum`` visits: 2 per arm of an A/B test (for a variance), 2 for interleaving."""
    return check_int("n_users", n_users, low=minimum)


def check_probability(name: str, value) -> float:
    """A level or a power: a number strictly between 0 and 1."""
    value = check_float(name, value)
    if not 0.0 < value < 1.0:
        raise ReclabError(f"{name} must be a number in (0, 1), got {value!r}")
    return value


def result_axes(result, kind: type, function: str, figsize: tuple):
    """A new figure with one axes for plotting ``result``, which must be a ``kind``.

    Returns ``(figure, axes)``; the figure is not shown (the caller logs or displays it).
    """
    from matplotlib.figure import Figure

    if not isinstance(result, kind):
        article = "an" if kind.__name__[0] in "AEIOU" else "a"
        raise ReclabError(f"{function} needs {article} {kind.__name__}, got {type(result).__name__}")
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()
