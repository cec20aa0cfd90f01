"""Content-based filtering: user profiles over item features, scored by cosine."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclab.data.features import feature_groups_of
from reclab.errors import ReclabError
from reclab.models.base import Recommender, check_bool, check_float

__all__ = ["ContentKNN"]


def require_features(train, role: str, owner: str) -> sp.csr_matrix:
    """``train.item_features`` / ``user_features`` (float64 CSR), or ``ReclabError`` saying how to get them."""
    features = getattr(train, f"{role}_features")
    if features is None or features.shape[1] == 0:
        raise ReclabError(f"{owner} needs {role} features, and the training data has none; load a data set "
                          f"that has them (rl.datasets.load, rl.datasets.synthetic) or pass "
                          f"{role}_features= to Interactions.from_frame / from_matrix")
    return sp.csr_matrix(features, dtype=np.float64)


def unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit Euclidean length (all-zero rows stay zero)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ matrix)


def unit_group_rows(matrix: sp.csr_matrix, groups: np.ndarray) -> sp.csr_matrix:
    """Each row's part in each feature group (columns of one ``groups`` label) scaled to unit
    Euclidean length; parts that are all zero stay zero."""
    labels, column_group = np.unique(groups.astype(str), return_inverse=True)
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    matrix.sum_duplicates()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    cells = rows * labels.size + column_group[matrix.indices]
    norms = np.sqrt(np.bincount(cells, weights=matrix.data ** 2, minlength=matrix.shape[0] * labels.size))
    data = np.divide(matrix.data, norms[cells], out=np.zeros_like(matrix.data), where=norms[cells] > 0)
    return sp.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)


class ContentKNN(Recommender):
    """Content-based filtering: recommend items whose features resemble what the user liked.

    Item ``j`` is its feature vector ``f_j`` (``train.item_features``: genres, decade, tags, ...),
    each feature weighted by its inverse document frequency when ``idf`` is set,
    ``w_f = log((n_items + 1) / (n_f + 1)) + 1`` (``n_f``: items that have feature ``f``, over every
    item of ``train``'s catalogue, those without interactions included), so that
    a rare feature (Film-Noir, a tag) says more than a common one (Drama). A user's profile is the
    weighted sum of the vectors of the items they rated,

    ``p_u = sum_{i rated by u} w_ui f_i``,   ``w_ui = 1 + rating_weight * (r_ui - mean_u)``,

    (``mean_u``: the user's mean rating; for implicit data every ``w_ui = 1``). Features form
    groups by their name up to ``=`` (``genre``, ``decade``, ``tag``). With ``group_profiles`` each
    group's part ``p_u^g`` of the profile is scaled to unit length, so that every group the user
    has counts once whatever its size (a user's taste in genres, in decades and in tags), and

    ``score(u, j) = sum_g p_u^g . f_j^g / |p_u^g|``   (``group_profiles=True``),
    ``score(u, j) = p_u . f_j / |p_u|``              (``group_profiles=False``),

    with ``f_j`` scaled to unit length first when ``normalize_items`` is set (then the second form
    is the cosine). Without ``normalize_items`` an item with more, or rarer, features can score
    higher. Items with no training interactions are scored like any other: this is what ranks
    brand-new titles. ``similar_items`` uses the feature cosine ``f_i . f_j / (|f_i| |f_j|)``. A
    user without training interactions (a cold user) has an empty profile and scores every item 0.

    Parameters
    ----------
    rating_weight : float, >= 0
        How much a rating above or below the user's mean raises or lowers the item's weight in
        the profile (per rating point); 0 counts every rated item alike.
    idf : bool
        Weight features by inverse document frequency.
    feature_groups : str or None
        Comma-separated name prefixes of the features to use (``"genre,decade"`` keeps the
        ``genre=...`` and ``decade=...`` columns); None uses every feature. A group no feature
        has is refused (a misspelt one would be left out without a word).
    group_profiles : bool
        Scale each feature group's part of the profile to unit length (else the whole profile).
    normalize_items : bool
        Score unit-length item vectors ``f_j / |f_j|`` (the cosine) rather than ``f_j``.

    Attributes
    ----------
    item_vectors_ : scipy.sparse.csr_matrix of float32, shape (n_items_, n_features)
        ``f_j`` as scored (after idf weighting; unit length with ``normalize_items``).
    user_profiles_ : scipy.sparse.csr_matrix of float32, shape (n_users_, n_features)
        ``p_u`` scaled per group (``group_profiles``) or as a whole to unit length.

    Notes
    -----
    The defaults (``rating_weight=0.25, idf=True, group_profiles=True, normalize_items=False``,
    every feature) have the best mean validation precision@10 over MovieLens 100k and
    ml-latest-small of a grid in ``benchmarks/defaults.py`` (rating_weight 0-1, both settings of
    each switch), on cold-item validation splits carved from the training part of the cold-item
    split (cold items drawn from train's warm items; mean of 3 seeds: 0.210 and 0.092). On the
    cold-item test split (``reclab.split.cold_items``, 20% of the items, seed 0, ranking the cold
    items only) they reach precision@10 0.218 on ML-100K and 0.117 on
    ml-latest-small (the cosine of the whole profile, ``group_profiles=False,
    normalize_items=True``: 0.151 and 0.093; the cold items have no tags, as a new title has
    none). In a whole profile the tag block outweighs the genres (tags are rare, so their idf is
    large, and they sit mostly on popular titles every user rated); per-group profiles let the
    genres, the decade and the tags each count once. Unit item vectors (``normalize_items``) lose
    on MovieLens, where titles with more and rarer features are more often watched, but win on
    ``reclab.datasets.synthetic``, whose extra genres are random (cold precision@10 0.089 against
    0.078 for the defaults; chance 0.072). On the warm 80/20 split (seed 42) the defaults reach
    0.091 and 0.063. Summing raw (not unit) item vectors into the
    profile was better on both than the item-item form ``sum_i w_ui cos(f_i, f_j)``: an item
    with many features says more about the user.

    Examples
    --------
    >>> model = ContentKNN().fit(train)                       # doctest: +SKIP
    >>> ids, scores = model.recommend([0, 1], n=10)            # doctest: +SKIP
    """

    uses_item_features = True

    def __init__(self, rating_weight: float = 0.25, idf: bool = True, feature_groups: str | None = None,
                 group_profiles: bool = True, normalize_items: bool = False):
        self.rating_weight = rating_weight
        self.idf = idf
        self.feature_groups = feature_groups
        self.group_profiles = group_profiles
        self.normalize_items = normalize_items

    def _validate_params(self) -> None:
        check_float("rating_weight", self.rating_weight, low=0.0, model=self)
        check_bool("idf", self.idf, model=self)
        check_bool("group_profiles", self.group_profiles, model=self)
        check_bool("normalize_items", self.normalize_items, model=self)
        if self.feature_groups is not None and (not isinstance(self.feature_groups, str)
                                                or not self.feature_groups.strip()):
            raise ReclabError(f"{type(self).__name__} feature_groups must be None or comma-separated "
                              f"feature name prefixes such as 'genre,decade', got {self.feature_groups!r}")

    def _fit(self, train, report) -> None:
        features = require_features(train, "item", type(self).__name__)
        groups = feature_groups_of(train.item_feature_names)
        if self.feature_groups is not None:
            wanted = [group.strip() for group in self.feature_groups.split(",")]
            unknown = [group for group in wanted if group not in set(groups)]
            if unknown:   # a misspelt group was left out without a word
                known = sorted(set(groups) - {""})
                raise ReclabError(f"{type(self).__name__} feature_groups={self.feature_groups!r}: no "
                                  f"feature is in group(s) {unknown}; the features' groups are {known} "
                                  f"(named like {train.item_feature_names[:3].tolist()})")
            keep = np.flatnonzero(np.isin(groups, wanted))
            features, groups = sp.csr_matrix(features[:, keep]), groups[keep]
        if self.idf:
            # Items that have each feature (Interactions stores no 0 feature).
            counts = np.bincount(features.indices, minlength=features.shape[1])
            weights = np.log((features.shape[0] + 1.0) / (counts + 1.0)) + 1.0
            features = sp.csr_matrix(features @ sp.diags(weights))
        matrix = train.matrix
        per_user = np.diff(matrix.indptr)
        means = np.divide(np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel(), per_user,
                          out=np.zeros(train.n_users), where=per_user > 0)
        weights = 1.0 + float(self.rating_weight) * (matrix.data - np.repeat(means, per_user))
        rated = sp.csr_matrix((weights, matrix.indices, matrix.indptr), shape=matrix.shape)
        profiles = sp.csr_matrix(rated @ features)
        profiles = unit_group_rows(profiles, groups) if self.group_profiles else unit_rows(profiles)
        self.item_vectors_ = (unit_rows(features) if self.normalize_items else features).astype(np.float32)
        self.user_profiles_ = profiles.astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.user_profiles_[users] @ self.item_vectors_.T).toarray()

    def _item_similarities(self, items: np.ndarray) -> np.ndarray:
        unit = unit_rows(self.item_vectors_)
        return (unit[items] @ unit.T).toarray()
