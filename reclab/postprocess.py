"""Readable tables from a fitted model: top-N lists and "because you watched" explanations.

These functions speak original ids (as in the data files) and titles; models speak indices. The
``data`` argument is the :class:`~reclab.data.Interactions` the model was fitted on (or any split of
the same data: the same users and items), which maps between the two and holds the titles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reclab._validate import check_int
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.models.base import Recommender
from reclab.ranking import top_n

__all__ = ["recommendations_table", "has_item_similarities", "because_you_watched",
           "explain_recommendations", "similar_items_table", "because_you_like", "explain_by_features"]


def _check(model, data) -> None:
    if not isinstance(data, Interactions):
        raise ReclabError(f"data must be the Interactions the model was fitted on, got {type(data).__name__}")
    model._check_fitted()
    if data.shape != (model.n_users_, model.n_items_):
        raise ReclabError(f"data has shape {data.shape} but {type(model).__name__} was fitted on "
                          f"{(model.n_users_, model.n_items_)} users x items; pass the training data "
                          "(or a split of the same data)")


def _check_recommendations(recommendations: pd.DataFrame) -> None:
    missing = [name for name in ("user", "item", "title") if name not in recommendations.columns]
    if missing:
        raise ReclabError(f"recommendations has no column {missing[0]!r}; columns are "
                          f"{list(recommendations.columns)} (use recommendations_table)")


def recommendations_table(model, data: Interactions, users, n: int = 10) -> pd.DataFrame:
    """Top-``n`` recommendations of some users, seen items filtered, as a table.

    Parameters
    ----------
    model : fitted reclab model
    data : Interactions
        The training data (ids and titles).
    users : original user id or list of them
    n : int
        Recommendations per user.

    Returns
    -------
    pandas.DataFrame
        Columns ``user`` (original id), ``rank`` (1..n), ``item`` (original id), ``title``,
        ``score`` (the model's score, float32); one row per recommendation, users in the given
        order. A user with fewer than ``n`` unseen items gets fewer rows.
    """
    _check(model, data)
    user_ids = np.atleast_1d(np.asarray(users))
    # Beyond the catalog a list holds only padding, which is dropped below.
    ids, scores = model.recommend(data.user_index(user_ids), n=min(check_int("n", n, low=1), data.n_items))
    rows, ranks = np.nonzero(ids >= 0)
    items = ids[rows, ranks]
    return pd.DataFrame({
        "user": user_ids[rows],
        "rank": (ranks + 1).astype(np.int64),
        "item": data.item_ids[items],
        "title": data.titles(items),
        "score": scores[rows, ranks],
    })


def _liked(row) -> np.ndarray:
    """Which entries of a user's row (a CSR row) the user liked: rated at or above the user's
    own mean rating, so all of them for implicit data (every value equal)."""
    return row.data >= row.data.mean() if row.nnz else np.zeros(0, dtype=bool)


def has_item_similarities(model) -> bool:
    """Whether ``model`` compares items, so that :func:`because_you_watched`,
    :func:`explain_recommendations` and :func:`similar_items_table` work for it.

    True for factor models (cosine of item factors), ItemKNN, EASE and ContentKNN; False for
    Popularity and Bias, which score every item on its own, and for RP3beta, whose random-walk
    weights are not a similarity. Fitted or not.
    """
    if not isinstance(model, Recommender):
        raise ReclabError(f"model must be a reclab model (reclab.models), got {type(model).__name__}")
    # A model has similarities exactly when it implements the base class's extension point.
    return type(model)._item_similarities is not Recommender._item_similarities


def because_you_watched(model, data: Interactions, user, item, n: int = 3) -> pd.DataFrame:
    """The items a user liked (in ``data``) that are most similar to ``item``.

    Explains a recommendation: "recommended because you watched X and Y". Only what the user
    *liked* explains: the items rated at or above the user's own mean rating (every item, for
    implicit data), as in :func:`because_you_like`; a film the user rated 1 star of 5 is no
    reason to recommend anything. Similarity is the model's own
    (:meth:`~reclab.models.base.Recommender.item_similarity`: cosine of item factors, or of
    rating columns for ItemKNN); ``item`` itself is left out if the user watched it.

    Parameters
    ----------
    model : fitted reclab model with item similarities
    data : Interactions
        The training data: its row of ``user`` is what the user watched.
    user, item : original ids
    n : int
        Watched items to return, >= 1.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (original id), ``title``, ``rating`` (the user's value in ``data``) and
        ``similarity`` (float32), most similar first (ties by lower item index); at most ``n``
        rows, none if the user liked nothing else.

    Raises
    ------
    TypeError
        If the model has no item similarities (Popularity, Bias).
    """
    _check(model, data)
    user_index = int(data.user_index([user])[0])
    item_index = int(data.item_index([item])[0])
    row = data.matrix[user_index]
    keep = (row.indices != item_index) & _liked(row)
    watched, ratings = row.indices[keep].astype(np.int64), row.data[keep]
    similarity = model.item_similarity(item_index, watched)
    order, best = top_n(similarity[None, :], n)
    order, best = order[0][order[0] >= 0], best[0][order[0] >= 0]
    chosen = watched[order]
    return pd.DataFrame({
        "item": data.item_ids[chosen],
        "title": data.titles(chosen),
        "rating": ratings[order],
        "similarity": best,
    })


def explain_recommendations(model, data: Interactions, recommendations: pd.DataFrame,
                            n: int = 3) -> pd.DataFrame:
    """:func:`because_you_watched` for every row of a recommendations table, in one table.

    Parameters
    ----------
    model : fitted reclab model with item similarities (see :func:`has_item_similarities`)
    data : Interactions
        The training data.
    recommendations : pandas.DataFrame
        Rows with columns ``user``, ``item`` (original ids) and ``title``, such as rows of
        :func:`recommendations_table`.
    n : int
        Watched items per recommendation, >= 1.

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``recommended`` (the recommendation's title), ``rank`` (1..n, most
        similar first), ``item``, ``title``, ``rating`` and ``similarity`` of the watched items;
        recommendations in the given order.

    Raises
    ------
    TypeError
        If the model has no item similarities.
    """
    _check_recommendations(recommendations)
    parts = []
    for row in recommendations.itertuples(index=False):
        watched = because_you_watched(model, data, row.user, row.item, n=n)
        parts.append(watched.assign(user=row.user, recommended=row.title,
                                    rank=np.arange(1, len(watched) + 1, dtype=np.int64)))
    columns = ["user", "recommended", "rank", "item", "title", "rating", "similarity"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def similar_items_table(model, data: Interactions, item, n: int = 10) -> pd.DataFrame:
    """"Because you watched X": the ``n`` items most similar to one item, with titles.

    Parameters
    ----------
    model : fitted reclab model with item similarities
    data : Interactions
    item : original item id
    n : int

    Returns
    -------
    pandas.DataFrame
        Columns ``rank`` (1..n), ``item`` (original id), ``title``, ``similarity`` (float32).
        ``attrs["caption"]`` holds "Because you watched <title>".
    """
    _check(model, data)
    item_index = int(data.item_index([item])[0])
    ids, scores = model.similar_items(item_index, n=min(check_int("n", n, low=1), data.n_items))
    real = ids >= 0
    ids, scores = ids[real], scores[real]
    table = pd.DataFrame({
        "rank": np.arange(1, ids.size + 1, dtype=np.int64),
        "item": data.item_ids[ids],
        "title": data.titles(ids),
        "similarity": scores,
    })
    table.attrs["caption"] = f"Because you watched {data.titles([item_index])[0]}"
    return table


def _feature_label(name: str) -> str:
    """``genre=Film-Noir`` -> ``Film-Noir``, ``decade=1940`` -> ``1940s films``, ``tag=dark`` ->
    ``'dark'``; other names as they are."""
    kind, _, value = name.partition("=")
    return {"genre": value, "decade": f"{value}s films", "tag": f"'{value}'"}.get(kind, name) if value else name


def because_you_like(data: Interactions, user, item, n: int = 3) -> pd.DataFrame:
    """The features ``item`` shares with what ``user`` liked: "because you like Film-Noir and 1940s films".

    Explains a content-based or hybrid recommendation from ``data.item_features`` (any model:
    the explanation depends on the data only). The user *liked* the items they rated at or above
    their own mean rating (every item, for implicit data). A feature's weight is the item's value
    of it times the number of liked items that have it times its inverse document frequency
    ``log((n_items + 1) / (n_f + 1)) + 1`` (``n_f``: items with the feature), so that, liked item
    for liked item, a rare shared feature (Film-Noir) counts more than a common one (Drama); a
    feature that many liked items share (often Drama) still leads. The ``n`` heaviest shared
    features are returned. It explains from the data, the same for every model: it is not the
    decomposition of a model's score (ContentKNN's also weights every rated item by its rating
    and each feature group to unit length; on ML-100K its largest term was another feature than
    the one named first in 211 of 300 recommendations).

    Parameters
    ----------
    data : Interactions
        The training data, with ``item_features``.
    user, item : original ids
    n : int
        Features to return, >= 1.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature`` (name, e.g. ``genre=Drama``), ``label`` (``Drama``), ``liked`` (liked
        items with the feature) and ``weight``, heaviest first (ties by feature order); no rows
        when the item shares no feature with a liked item. ``attrs["caption"]`` holds the sentence.
    """
    if not isinstance(data, Interactions):
        raise ReclabError(f"data must be reclab Interactions, got {type(data).__name__}")
    if data.item_features is None:
        raise ReclabError("because_you_like needs item features; this data has none (see Interactions.item_features)")
    n = check_int("n", n, low=1)
    user_index = int(data.user_index([user])[0])
    item_index = int(data.item_index([item])[0])
    row = data.matrix[user_index]
    liked = row.indices[_liked(row)]
    features = data.item_features
    counts = np.asarray((features[liked] != 0).sum(axis=0)).ravel() if liked.size else np.zeros(features.shape[1])
    values = features[item_index].toarray().ravel()
    frequency = np.bincount(features.indices, minlength=features.shape[1])
    weight = values * counts * (np.log((features.shape[0] + 1.0) / (frequency + 1.0)) + 1.0)
    order, best = top_n(weight[None, :].astype(np.float32), n)
    chosen = order[0][(order[0] >= 0) & (best[0] > 0)]
    names = data.item_feature_names[chosen]
    table = pd.DataFrame({"feature": names, "label": [_feature_label(name) for name in names],
                          "liked": counts[chosen].astype(np.int64), "weight": weight[chosen]})
    labels = table["label"].tolist()
    shared = " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)
    table.attrs["caption"] = f"Because you like {shared}" if labels else "No feature shared with what you liked"
    return table


def explain_by_features(data: Interactions, recommendations: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """:func:`because_you_like` for every row of a recommendations table, one sentence per row.

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item``, ``recommended`` (title), ``because`` (the sentence) and
        ``features`` (the shared feature names joined with ``', '``), recommendations in order.
    """
    _check_recommendations(recommendations)
    rows = []
    for row in recommendations.itertuples(index=False):
        shared = because_you_like(data, row.user, row.item, n=n)
        rows.append((row.user, row.item, row.title, shared.attrs["caption"], ", ".join(shared["feature"])))
    return pd.DataFrame(rows, columns=["user", "item", "recommended", "because", "features"])
