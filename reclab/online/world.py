"""The simulated world: true user-item utilities and the position-based click model (see
:mod:`reclab.online`)."""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclab._validate import check_float, check_indices, check_int
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.online.common import check_arm, check_seen
from reclab.ranking import top_n

__all__ = ["World", "Oracle", "check_world", "click_lists"]


# -- the world --------------------------------------------------------------------------------
class World:
    """True user-item utilities and a position-based click model (see the module docstring).

    Parameters
    ----------
    utility : array-like of float, shape (n_users, n_items)
        True utility of every item for every user, in log-odds units: one unit more multiplies
        the odds of a click on an examined item by e. The world keeps a read-only float32 copy.
    seen : scipy.sparse matrix, shape (n_users, n_items), optional
        Items each user already rated (stored entries); the oracle never shows them.
    user_ids, item_ids : array-like, optional
        Original ids of the rows and columns, each unique (default ``0..n-1``), for :meth:`align`.
    threshold : float
        Utility at which an examined item is clicked half of the time [3.0].
    position_bias : float
        Exponent ``eta >= 0`` of the examination probability ``k ** -eta`` of rank ``k``; 0 means
        every rank is examined, 1 (default) that rank 2 is examined half as often as rank 1.
    source : str
        Where the utilities come from, for display ("truth", "model ImplicitALS", ...).

    Use :meth:`from_truth` (synthetic data) or :meth:`from_model` (real data). Memory: the
    utilities are a dense float32 matrix, 4 bytes per user-item pair (6.3 MB for 943 x 1682).
    """

    def __init__(self, utility, seen=None, user_ids=None, item_ids=None, threshold: float = 3.0,
                 position_bias: float = 1.0, source: str = "custom"):
        # A copy: the world's utilities are read-only, the caller's array stays as it was.
        utility = np.array(utility, dtype=np.float32)
        if utility.ndim != 2 or 0 in utility.shape:
            raise ReclabError(f"utility must be a non-empty 2-D array (users x items), got shape "
                              f"{utility.shape}")
        if not np.isfinite(utility).all():
            raise ReclabError("utility must be finite everywhere (found NaN or infinity)")
        shape = utility.shape
        if seen is None:
            seen = sp.csr_matrix(shape, dtype=np.float32)
        seen = sp.csr_matrix(seen)
        if seen.shape != shape:
            raise ReclabError(f"seen has shape {seen.shape}, but utility has shape {shape}")
        self.utility = utility
        self.utility.setflags(write=False)
        self.seen = seen
        self.user_ids = np.arange(shape[0]) if user_ids is None else np.asarray(user_ids)
        self.item_ids = np.arange(shape[1]) if item_ids is None else np.asarray(item_ids)
        if self.user_ids.shape != (shape[0],) or self.item_ids.shape != (shape[1],):
            raise ReclabError(f"user_ids and item_ids must have {shape[0]} and {shape[1]} entries, "
                              f"got {self.user_ids.shape} and {self.item_ids.shape}")
        for role, where, ids in (("user_ids", "rows", self.user_ids), ("item_ids", "columns", self.item_ids)):
            repeats = pd.Index(ids).duplicated()   # of an earlier id
            if repeats.any():   # align() matches data to rows and columns by id
                # pandas, not ==, finds the earlier one: a NaN id equals another NaN only there
                second = int(np.flatnonzero(repeats)[0])
                first = int(np.flatnonzero(pd.Index(ids[:second]).isin(ids[second:second + 1]))[0])
                raise ReclabError(f"{role} must be unique (align matches data by id), but id "
                                  f"{ids[first:first + 1].tolist()[0]!r} names {where} {first} and {second}")
        self.threshold = check_float("threshold", threshold)
        self.position_bias = check_float("position_bias", position_bias, low=0.0)
        self._warned_short = set()   # list lengths n whose left-out users click_lists has reported
        self.source = str(source)

    n_users = property(lambda self: self.utility.shape[0], doc="Number of users.")
    n_items = property(lambda self: self.utility.shape[1], doc="Number of items.")

    def __repr__(self) -> str:
        return (f"World({self.n_users} users x {self.n_items} items, utilities from {self.source}, "
                f"threshold={self.threshold:g}, position_bias={self.position_bias:g})")

    @classmethod
    def from_truth(cls, data: Interactions, rating_weight: float = 1.0, interest_weight: float = 2.0,
                   activity_weight: float = 1.0, threshold: float = 3.0,
                   position_bias: float = 1.0) -> "World":
        """The world of a synthetic data set, from its ground truth (``data.truth``).

        The utility of item ``i`` for user ``u`` is the log-odds with which the generator
        (:func:`reclab.datasets.synthetic`) lets a user pick an item, without its popularity
        term (a shown item needs no discovering), plus how much the user clicks at all: the
        user bias ``b_u`` (optimists click more) and the centred log of the user's number of
        ratings ``c_u`` in ``data`` (active users click more)::

            utility(u, i) = rating_weight * (b_u + b_i + p_u . q_i) + interest_weight * s_u . t_i
                            + activity_weight * (log c_u - mean_v log c_v)

        ``rating_weight`` and ``interest_weight`` are the generator's ``mnar`` and
        ``taste_exposure`` (defaults 1.0 and 2.0, those of ``synthetic``): pass the values
        the data was made with. ``seen`` is ``data.matrix``; build the world from the full data
        set (its activity) and :meth:`align` it to a split.

        Raises
        ------
        ReclabError
            If ``data`` has no ``truth`` (real data: use :meth:`from_model`).
        """
        if not isinstance(data, Interactions):
            raise ReclabError(f"data must be reclab.Interactions, got {type(data).__name__}")
        truth = data.truth
        if truth is None:
            raise ReclabError("data has no ground truth (data.truth is None: real data, or data "
                              "re-indexed by kcore / restrict); use World.from_model(model, data), "
                              "or build the world from the full synthetic data and align() it")
        rating_weight = check_float("rating_weight", rating_weight, low=0.0)
        interest_weight = check_float("interest_weight", interest_weight, low=0.0)
        activity_weight = check_float("activity_weight", activity_weight, low=0.0)
        log_count = np.log(np.maximum(data.user_counts(), 1))
        utility = (rating_weight * (truth["user_bias"][:, None] + truth["item_bias"][None, :]
                                    + truth["user_factors"] @ truth["item_factors"].T)
                   + interest_weight * (truth["user_interest"] @ truth["item_interest"].T)
                   + activity_weight * (log_count - log_count.mean())[:, None])
        return cls(utility, data.matrix, data.user_ids, data.item_ids, threshold, position_bias, "truth")

    @classmethod
    def from_model(cls, model, data: Interactions, spread: float = 2.0, threshold: float = 3.0,
                   position_bias: float = 1.0) -> "World":
        """A semi-synthetic world for real data: a fitted model's scores stand in for the truth.

        Each user's scores of every item are standardized (mean 0, standard deviation 1 over the
        items) and multiplied by ``spread``, so every user has the same spread of utilities as
        the synthetic world has (about 2 log-odds units)::

            utility(u, i) = spread * (score(u, i) - mean_i score(u, .)) / std_i score(u, .)

        Bias: the truth here *is* one model's opinion, so models that rank like that model
        (the same family, similar parameters) are favoured, and the world's model itself is the
        oracle. Use a different model family for the world than for the arms compared, and read
        the results as "how these models compare if users liked what ``model`` predicts", not as
        a substitute for a real online test.

        Parameters
        ----------
        model : fitted reclab model
            Fitted on ``data`` (same users and items); its ``score_items`` gives the scores.
        data : reclab.Interactions
            Its ``matrix`` is ``seen``; its ids are the world's.
        """
        if not isinstance(data, Interactions):
            raise ReclabError(f"data must be reclab.Interactions, got {type(data).__name__}")
        check_arm("world model", model, data.n_users, data.n_items)
        spread = check_float("spread", spread, low=0.0, low_open=True)
        scores = np.asarray(model.score_items(np.arange(data.n_users)), dtype=np.float64)
        spread_of_user = scores.std(axis=1, keepdims=True)
        utility = spread * (scores - scores.mean(axis=1, keepdims=True)) / np.where(
            spread_of_user > 0, spread_of_user, 1.0)
        return cls(utility, data.matrix, data.user_ids, data.item_ids, threshold, position_bias,
                   f"model {type(model).__name__}")

    def align(self, data: Interactions) -> "World":
        """This world restricted to the users and items of ``data`` (matched by id), in
        ``data``'s index order, with ``seen = data.matrix``.

        For data re-indexed after the world was made (a k-core filtered split of the synthetic
        data): ``World.from_truth(full).align(train)`` has the indices of ``train``, which the
        models fitted on ``train`` use.
        """
        if not isinstance(data, Interactions):
            raise ReclabError(f"data must be reclab.Interactions, got {type(data).__name__}")
        positions = []
        for role, mine, theirs in (("user", self.user_ids, data.user_ids),
                                   ("item", self.item_ids, data.item_ids)):
            found = pd.Index(mine).get_indexer(theirs)
            if (found < 0).any():
                missing = np.asarray(theirs)[found < 0]
                raise ReclabError(f"{(found < 0).sum()} {role} ids of data are not in the world, "
                                  f"e.g. {missing[:3].tolist()}")
            positions.append(found)
        users, items = positions
        return World(self.utility[np.ix_(users, items)], data.matrix, data.user_ids, data.item_ids,
                     self.threshold, self.position_bias, self.source)

    def examination(self, n: int) -> np.ndarray:
        """``k ** -position_bias`` for ranks ``k = 1..n``: shape (n,)."""
        n = check_int("n", n, low=1)
        return np.arange(1, n + 1, dtype=np.float64) ** -self.position_bias

    def attraction(self, users, items) -> np.ndarray:
        """Probability that user ``users[j]`` clicks item ``items[j]`` when examining it.

        ``users`` and ``items`` broadcast together (e.g. users (m, 1) and lists (m, n)); item
        ``-1`` (a padded list entry) has attraction 0.
        """
        users, items = np.broadcast_arrays(np.asarray(users), np.asarray(items))
        logit = self.utility[users, np.maximum(items, 0)].astype(np.float64) - self.threshold
        return np.where(items >= 0, 1.0 / (1.0 + np.exp(-logit)), 0.0)

    def oracle(self) -> "Oracle":
        """A recommender ranking each user's unseen items by true utility: the best any model can
        do in this world, for reference in a test."""
        return Oracle(self)

    def expected_ctr(self, model, n: int = 10) -> float:
        """Exact click-through rate of ``model``'s top-``n`` lists in this world: the mean over
        users (those with ``n`` unseen items, as in the tests) of
        ``sum_k examination(k) * attraction(u, list_k) / n``; ``model`` is checked as an arm
        of the tests is."""
        check_arm("model", model, self.n_users, self.n_items)
        check_seen("model", model, self)
        _, probabilities = click_lists(self, {"model": model}, n)
        return float(probabilities[0].sum(axis=1).mean() / n)


class Oracle:
    """Ranks by the true utilities of a :class:`World` (see :meth:`World.oracle`).

    It has the part of the model interface that the online tests use: ``n_users_``,
    ``n_items_`` and ``recommend``.
    """

    def __init__(self, world: World):
        self.world = world
        self.n_users_, self.n_items_ = world.n_users, world.n_items
        self.seen_ = world.seen

    def __repr__(self) -> str:
        return f"Oracle({self.world!r})"

    def recommend(self, users, n: int = 10, filter_seen: bool = True):
        """Top-``n`` items by true utility; ``filter_seen`` leaves out ``world.seen``. Returns
        ``(ids, utilities)`` like a model's ``recommend``."""
        scalar = np.ndim(users) == 0
        users = check_indices(users, self.n_users_, "user", "the oracle", "the world")
        ids, scores = top_n(self.world.utility[users], check_int("n", n, low=1),
                            exclude=self.seen_[users] if filter_seen else None)
        return (ids[0], scores[0]) if scalar else (ids, scores)


# -- arguments ---------------------------------------------------------------------------------
def check_world(world) -> World:
    if not isinstance(world, World):
        raise ReclabError(f"world must be a reclab.online.World (World.from_truth(data) or "
                          f"World.from_model(model, data)), got {type(world).__name__}")
    return world


def click_lists(world: World, arms: Mapping, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every arm's top-``n`` list for every world user who has ``n`` unseen items, and the click
    probability of each entry.

    Returns ``ids`` (arms, users, n) int64 and ``clicks`` (arms, users, n) float64 =
    ``examination(k) * attraction``. A user with fewer than ``n`` items outside ``world.seen``
    cannot be shown a full list by any arm: such users are left out (with a warning saying how
    many, once per world and ``n``: stage 6 runs four tests on one world), so the tests simulate
    visits of the others. Raises when no user has ``n`` unseen items, or when an arm's list is
    shorter than ``n`` for a user who has them.
    """
    n = check_int("n", n, low=1)
    unseen = world.n_items - np.diff(world.seen.indptr)
    users = np.flatnonzero(unseen >= n)
    if users.size == 0:
        raise ReclabError(f"no user has n={n} unseen items to be shown (the most any user has is "
                          f"{int(unseen.max())} of {world.n_items}); use n <= {int(unseen.max())}")
    if users.size < world.n_users and n not in world._warned_short:
        world._warned_short.add(n)
        warnings.warn(f"{world.n_users - users.size} of the {world.n_users} users have fewer than n={n} "
                      f"unseen items and are left out of the simulation", RuntimeWarning, stacklevel=3)
    ids = np.stack([np.asarray(model.recommend(users, n=n, filter_seen=True)[0]) for model in arms.values()])
    short = (ids < 0).any(axis=(1, 2))
    if short.any():
        name = list(arms)[int(np.flatnonzero(short)[0])]
        raise ReclabError(f"arm {name!r} recommends fewer than n={n} items to some users who have n "
                          f"unseen items in the world (was it fitted on other data than the world's "
                          f"seen items?)")
    probabilities = world.examination(n)[None, None, :] * world.attraction(users[None, :, None], ids)
    return ids, probabilities
