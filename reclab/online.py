"""Simulated online evaluation: A/B tests and interleaving on a world whose truth is known.

Offline metrics score a model on held-out interactions; an online test shows its lists to users
and counts their clicks. Here the users are simulated: a :class:`World` knows every user's true
utility for every item and a click model, so a test can show each model's top-``n`` lists and
draw clicks, and the answer it should reach is known.

Click model (position-based, Richardson et al. 2007; Chuklin et al. 2015, "Click Models for Web
Search", ch. 3)::

    P(click on the item at rank k) = examination(k) * attraction(u, i)
    examination(k)  = k ** -position_bias                  (rank k = 1, 2, ...; 1 at the top)
    attraction(u, i) = 1 / (1 + exp(-(utility(u, i) - threshold)))

Every shown item is clicked or not independently, so a visit may end with no click or with several.
Items a user already rated are never shown: the models filter their training items
(``recommend(..., filter_seen=True)``) and the world's oracle filters ``World.seen``.

Tests
-----
- :func:`ab_test`: visits are split at random between the arms; each arm's mean clicks per visit
  is compared with the first arm's by Welch's t-test. ``ctr = clicks / (visits * n)``.
- :func:`interleave`: every visit sees one team-draft interleaving (Radlinski et al. 2008) of the
  two arms' lists; a visit is won by the arm whose items got more clicks. The preference is
  Chapelle et al. (2012)'s ``Delta = (wins_B + ties / 2) / visits - 1/2``, tested against 0 by a
  t-test on the per-visit outcome ``sign(clicks_B - clicks_A)``.
- :func:`sensitivity`: the share of repeated simulations that detect the better arm (power) at
  each number of users, for both tests, and the users each needs for 80% power.
- :func:`offline_vs_online`: offline precision@K next to simulated click-through rate.

A simulated visit is a user drawn uniformly, with replacement, from the world's users; visits
are independent, so the tests' p-values are calibrated (an A/A test rejects at rate ``alpha``).
Every random draw comes from ``numpy.random.default_rng(seed)``: the same seed gives the same
result, to the last digit.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from reclab._validate import check_choice, check_float, check_int, check_seed
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.evaluation import evaluate
from reclab.ranking import top_n

__all__ = ["World", "Oracle", "ABTestResult", "InterleavingResult", "SensitivityResult", "OfflineOnline",
           "ab_test", "interleave", "sensitivity", "offline_vs_online", "plot_power",
           "plot_offline_online"]

METHODS = ("ab", "interleaving")
"""Tests :func:`sensitivity` simulates: the A/B test and team-draft interleaving."""
INTERLEAVING_METHODS = ("team_draft",)
_CONFIDENCE = 0.95
# Visits simulated at once by sensitivity (arrays of about 10 values per visit and list entry).
_BATCH_VISITS = 200_000


# -- the world --------------------------------------------------------------------------------
class World:
    """True user-item utilities and a position-based click model (see the module docstring).

    Parameters
    ----------
    utility : array-like of float, shape (n_users, n_items)
        True utility of every item for every user, in log-odds units: one unit more multiplies
        the odds of a click on an examined item by e.
    seen : scipy.sparse matrix, shape (n_users, n_items), optional
        Items each user already rated (stored entries); the oracle never shows them.
    user_ids, item_ids : array-like, optional
        Original ids of the rows and columns (default ``0..n-1``), for :meth:`align`.
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
        utility = np.asarray(utility, dtype=np.float32)
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
        self.threshold = check_float("threshold", threshold)
        self.position_bias = check_float("position_bias", position_bias, low=0.0)
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
        _check_arm("world model", model, data.n_users, data.n_items)
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
        users of ``sum_k examination(k) * attraction(u, list_k) / n``."""
        _, probabilities = _lists(self, {"model": model}, n)
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
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if users.size and (users.min() < 0 or users.max() >= self.n_users_):
            raise ReclabError(f"user indices must lie in [0, {self.n_users_ - 1}], got "
                              f"{users[(users < 0) | (users >= self.n_users_)][:3].tolist()}")
        ids, scores = top_n(self.world.utility[users], check_int("n", n, low=1),
                            exclude=self.seen_[users] if filter_seen else None)
        return (ids[0], scores[0]) if scalar else (ids, scores)


# -- arguments ---------------------------------------------------------------------------------
def _check_world(world) -> World:
    if not isinstance(world, World):
        raise ReclabError(f"world must be a reclab.online.World (World.from_truth(data) or "
                          f"World.from_model(model, data)), got {type(world).__name__}")
    return world


def _check_arm(name: str, model, n_users: int, n_items: int) -> None:
    label = f"arm {name!r}" if name != "world model" else name
    if not callable(getattr(model, "recommend", None)):
        raise ReclabError(f"{label} must be a fitted model with recommend(), got {type(model).__name__}")
    if getattr(model, "n_items_", None) is None:
        raise ReclabError(f"{label}: {type(model).__name__} is not fitted; call fit(train) first")
    if (model.n_users_, model.n_items_) != (n_users, n_items):
        raise ReclabError(f"{label}: {type(model).__name__} was fitted on {model.n_users_} users x "
                          f"{model.n_items_} items, but the world has {n_users} x {n_items}; fit it "
                          f"on the data the world was made from (or World.align(train))")


def _check_arms(world: World, arms, count: int | None = None) -> dict:
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
        _check_arm(name, model, world.n_users, world.n_items)
    return dict(arms)


def _check_n_users(n_users, minimum: int) -> int:
    """At least ``minimum`` visits: 2 per arm of an A/B test (for a variance), 2 for interleaving."""
    return check_int("n_users", n_users, low=minimum)


def _check_probability(name: str, value) -> float:
    """A level or a power: a number strictly between 0 and 1."""
    value = check_float(name, value)
    if not 0.0 < value < 1.0:
        raise ReclabError(f"{name} must be a number in (0, 1), got {value!r}")
    return value


def _lists(world: World, arms: Mapping, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every arm's top-``n`` list for every world user, and the click probability of each entry.

    Returns ``ids`` (arms, users, n) int64 and ``clicks`` (arms, users, n) float64 =
    ``examination(k) * attraction``; raises when a list is shorter than ``n``.
    """
    n = check_int("n", n, low=1)
    users = np.arange(world.n_users)
    ids = np.stack([np.asarray(model.recommend(users, n=n, filter_seen=True)[0]) for model in arms.values()])
    short = (ids < 0).any(axis=(1, 2))
    if short.any():
        name = list(arms)[int(np.flatnonzero(short)[0])]
        raise ReclabError(f"arm {name!r} recommends fewer than n={n} items to some users (they have "
                          f"fewer unseen items); use a smaller n")
    probabilities = world.examination(n)[None, None, :] * world.attraction(users[None, :, None], ids)
    return ids, probabilities


# -- the A/B test -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ABTestResult:
    """What :func:`ab_test` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per arm (index: arm name, first arm first): ``users`` (visits), ``clicks``,
        ``ctr`` (clicks / (users * n)) with ``ctr_ci_low`` / ``ctr_ci_high`` (95% normal
        interval over visits), ``clicks_per_user``, ``expected_ctr`` (the world's exact value,
        for reference), ``lift`` (relative to the first arm) with ``lift_ci_low`` /
        ``lift_ci_high`` (delta method), ``p_value`` (Welch's t-test against the first arm) and
        ``users_needed`` (see below); NaN in the first arm's comparison columns.
    lift : dict of str -> float
        ``ctr(arm) / ctr(first) - 1`` of every arm but the first.
    lift_ci : dict of str -> (float, float)
    p_values : dict of str -> float
        Two-sided Welch p-value of every arm but the first against the first.
    p_value : float
        The smallest of ``p_values`` times their number (Bonferroni, at most 1): "some arm differs
        from the first". With two arms, the p-value of the one comparison.
    users_needed : dict of str -> float
        Visits (both arms together) a two-arm test of this arm against the first would need to
        detect the observed difference with 80% power at ``alpha``:
        ``2 (z_{1-alpha/2} + z_{0.8})^2 (s_a^2 + s_b^2) / delta^2`` with ``delta`` the difference
        of clicks per visit and ``s^2`` their variances; inf when the difference is 0.
    n, n_users, alpha, seed
    """

    table: pd.DataFrame
    lift: dict
    lift_ci: dict
    p_values: dict
    p_value: float
    users_needed: dict
    n: int
    n_users: int
    alpha: float
    seed: int

    def __str__(self) -> str:
        first = self.table.index[0]
        parts = [f"{arm} {row.ctr:.4f}" for arm, row in self.table.iterrows()]
        comparisons = [f"{arm} vs {first}: lift {self.lift[arm]:+.1%} "
                       f"[{self.lift_ci[arm][0]:+.1%}, {self.lift_ci[arm][1]:+.1%}], "
                       f"p={self.p_values[arm]:.2g}" for arm in self.lift]
        return (f"A/B test, {self.n_users} users, top-{self.n}: CTR " + ", ".join(parts) + "; "
                + "; ".join(comparisons))


def _welch(mean_a, var_a, n_a, mean_b, var_b, n_b):
    """Two-sided Welch t-test of ``mean_b - mean_a`` (arrays broadcast): ``(se, p)``."""
    se2 = var_a / n_a + var_b / n_b
    se = np.sqrt(se2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mean_b - mean_a) / se
        df = se2 ** 2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1))
        p = 2.0 * stats.t.sf(np.abs(t), df)
    # No variance at all: equal means are no evidence of a difference, unequal ones are certain.
    p = np.where(se2 > 0, p, np.where(mean_a == mean_b, 1.0, 0.0))
    return se, p


def _ab_draw(rng, probabilities: np.ndarray, n_users: int, repeats: int = 1):
    """Visits of ``repeats`` independent A/B tests: the arm of each visit (balanced within each
    test, shuffled) and its clicks, both of shape (repeats, n_users)."""
    n_arms, n_world_users, n = probabilities.shape
    users = rng.integers(0, n_world_users, (repeats, n_users))
    arm = rng.permuted(np.broadcast_to(np.arange(n_users) % n_arms, (repeats, n_users)), axis=1)
    clicks = (rng.random((repeats, n_users, n)) < probabilities[arm, users]).sum(axis=2)
    return arm, clicks


def _arm_moments(arm: np.ndarray, clicks: np.ndarray, n_arms: int):
    """Per test (rows) and arm (columns): visits, clicks, mean and variance of clicks per visit."""
    member = arm[:, :, None] == np.arange(n_arms)
    values = clicks.astype(np.float64)[:, :, None]
    count = member.sum(axis=1).astype(np.float64)
    total = (values * member).sum(axis=1)
    mean = total / count
    var = ((values - mean[:, None, :]) ** 2 * member).sum(axis=1) / (count - 1)
    return count, total, mean, var


def ab_test(world: World, arms: Mapping, n_users: int, n: int = 10, seed: int = 0,
            alpha: float = 0.05) -> ABTestResult:
    """Simulate an A/B test: visits split at random between the arms, clicks counted.

    Parameters
    ----------
    world : World
    arms : mapping of str -> fitted model
        Two or more arms; the first is the control the others are compared with. Models must
        be fitted on the world's users and items (``World.align``); ``world.oracle()`` is an arm
        too.
    n_users : int
        Simulated visits in all (at least 2 per arm), each by a user drawn uniformly with
        replacement from the world's users; the arms get equal shares (the first ones one more).
    n : int
        Length of the lists shown.
    seed : int
    alpha : float
        Level of the tests and of ``users_needed``, in (0, 1).

    Returns
    -------
    ABTestResult

    Examples
    --------
    >>> import reclab as rl
    >>> data = rl.datasets.synthetic(seed=0)
    >>> world = rl.online.World.from_truth(data)
    >>> popularity = rl.models.Popularity().fit(data)
    >>> ab = rl.online.ab_test(world, {"A": popularity, "oracle": world.oracle()}, n_users=2000)
    >>> ab.p_value < 0.01
    True
    """
    world = _check_world(world)
    arms = _check_arms(world, arms)
    n_users = _check_n_users(n_users, 2 * len(arms))
    seed, alpha = check_seed(seed), _check_probability("alpha", alpha)
    n = check_int("n", n, low=1)
    _, probabilities = _lists(world, arms, n)
    arm, clicks = _ab_draw(np.random.default_rng(seed), probabilities, n_users)
    count, total, mean, var = (moment[0] for moment in _arm_moments(arm, clicks, len(arms)))
    z = stats.norm.ppf(0.5 + _CONFIDENCE / 2)
    half = z * np.sqrt(var / count)
    table = pd.DataFrame({"users": count.astype(np.int64), "clicks": total.astype(np.int64),
                          "ctr": mean / n, "ctr_ci_low": (mean - half) / n,
                          "ctr_ci_high": (mean + half) / n, "clicks_per_user": mean,
                          "expected_ctr": probabilities.sum(axis=2).mean(axis=1) / n},
                         index=pd.Index(list(arms), name="arm"))
    se, p = _welch(mean[0], var[0], count[0], mean, var, count)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = mean / mean[0] - 1.0
        # Delta method for the ratio of two independent means.
        lift_se = np.sqrt(var / count / mean[0] ** 2 + mean ** 2 * var[0] / count[0] / mean[0] ** 4)
        power_z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)
        needed = np.ceil(2 * power_z ** 2 * (var[0] + var) / (mean - mean[0]) ** 2)
    needed = np.where(mean != mean[0], needed, np.inf)
    rest = slice(1, None)
    table["lift"] = np.r_[np.nan, lift[rest]]
    table["lift_ci_low"] = np.r_[np.nan, (lift - z * lift_se)[rest]]
    table["lift_ci_high"] = np.r_[np.nan, (lift + z * lift_se)[rest]]
    table["p_value"] = np.r_[np.nan, p[rest]]
    table["users_needed"] = np.r_[np.nan, needed[rest]]
    others = list(arms)[1:]
    p_values = {name: float(value) for name, value in zip(others, p[rest])}
    return ABTestResult(
        table=table, lift={name: float(value) for name, value in zip(others, lift[rest])},
        lift_ci={name: (float(table.at[name, "lift_ci_low"]), float(table.at[name, "lift_ci_high"]))
                 for name in others},
        p_values=p_values, p_value=float(min(1.0, min(p_values.values()) * len(p_values))),
        users_needed={name: float(value) for name, value in zip(others, needed[rest])},
        n=n, n_users=n_users, alpha=alpha, seed=seed)


# -- interleaving -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class InterleavingResult:
    """What :func:`interleave` measured.

    Attributes
    ----------
    arms : tuple of str
        ``(A, B)``.
    wins : dict of str -> int
        Visits whose clicks went more to that arm's items.
    ties : int
        Visits with as many clicks for both (no click included).
    preference : float
        ``(wins_B + ties / 2) / visits - 1/2`` in [-1/2, 1/2]: positive when B is preferred.
    preference_ci : (float, float)
        95% normal interval.
    p_value : float
        Two-sided t-test of the per-visit outcome ``sign(clicks_B - clicks_A)`` against 0.
    clicks : dict of str -> int
        Clicks credited to each arm.
    method, n, n_users, seed
    """

    arms: tuple
    wins: dict
    ties: int
    preference: float
    preference_ci: tuple
    p_value: float
    clicks: dict
    method: str
    n: int
    n_users: int
    seed: int

    @property
    def table(self) -> pd.DataFrame:
        """Wins, share of visits won and clicks credited, one row per arm and one for ties."""
        rows = {name: (self.wins[name], self.clicks[name]) for name in self.arms}
        rows["(tie)"] = (self.ties, 0)
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=["visits", "clicks"])
        frame.insert(1, "share", frame["visits"] / self.n_users)
        frame.index.name = "winner"
        return frame

    def __str__(self) -> str:
        a, b = self.arms
        low, high = self.preference_ci
        return (f"Interleaving ({self.method}), {self.n_users} users, top-{self.n}: {a} wins "
                f"{self.wins[a]}, {b} wins {self.wins[b]}, ties {self.ties}; preference for {b} "
                f"{self.preference:+.4f} [{low:+.4f}, {high:+.4f}], p={self.p_value:.2g}")


def _matches(ids: np.ndarray) -> np.ndarray:
    """``match[t, u, j]``: position in the other arm's list of user ``u`` of the item at position
    ``j`` of arm ``t``'s list, or -1; ``ids`` has shape (2, users, n)."""
    same = ids[0][:, :, None] == ids[1][:, None, :]
    a_in_b = np.where(same.any(axis=2), same.argmax(axis=2), -1)
    b_in_a = np.where(same.any(axis=1), same.argmax(axis=1), -1)
    return np.stack([a_in_b, b_in_a])


def _team_draft(rng, ids: np.ndarray, probabilities: np.ndarray, match: np.ndarray,
                examination: np.ndarray, n_users: int):
    """Clicks credited to arm A and to arm B in ``n_users`` team-draft interleaved visits.

    In each round of two picks a coin decides which arm picks first; an arm picks the best item
    of its list not yet shown (Radlinski et al. 2008). All visits advance together: ``used``
    marks, per arm, the positions of its list already shown (by either arm).
    """
    n_world_users, n = ids.shape[1], ids.shape[2]
    users = rng.integers(0, n_world_users, n_users)
    a_first = rng.random((n_users, (n + 1) // 2)) < 0.5
    attraction = probabilities / examination   # per arm and list position, without the rank
    rows = np.arange(n_users)
    used = np.zeros((n_users, 2, n), dtype=bool)
    pointer = np.zeros((n_users, 2), dtype=np.int64)
    team = np.empty((n_users, n), dtype=np.int64)
    shown = np.empty((n_users, n))
    for slot in range(n):
        picker = np.where(a_first[:, slot // 2] == (slot % 2 == 0), 0, 1)
        position = pointer[rows, picker]
        while True:   # skip the picker's items the other arm has shown already
            taken = used[rows, picker, position]
            if not taken.any():
                break
            position = position + taken
        pointer[rows, picker] = position + 1
        used[rows, picker, position] = True
        other = match[picker, users, position]
        has = other >= 0
        used[rows[has], 1 - picker[has], other[has]] = True
        team[:, slot] = picker
        shown[:, slot] = attraction[picker, users, position]
    clicks = rng.random((n_users, n)) < examination[None, :] * shown
    credit_b = (clicks & (team == 1)).sum(axis=1)
    return clicks.sum(axis=1) - credit_b, credit_b


def _interleaving_test(credit_a: np.ndarray, credit_b: np.ndarray):
    """``(outcome mean, standard error, p)`` of the per-visit outcome sign(B - A), along the
    last axis (one test per row)."""
    outcome = np.sign(credit_b - credit_a).astype(np.float64)
    size = outcome.shape[-1]
    mean = outcome.mean(axis=-1)
    se = outcome.std(axis=-1, ddof=1) / np.sqrt(size)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2.0 * stats.t.sf(np.abs(mean / se), size - 1)
    # No variance: all visits tied (no evidence), or all won by one arm (certain).
    return mean, se, np.where(se > 0, p, np.where(mean == 0, 1.0, 0.0))


def interleave(world: World, arms: Mapping, n_users: int, n: int = 10, method: str = "team_draft",
               seed: int = 0) -> InterleavingResult:
    """Simulate an interleaving experiment of two arms.

    Every visit sees one list of length ``n`` merging both arms' top-``n`` lists by team draft;
    each click is credited to the arm that contributed the clicked item.

    Parameters
    ----------
    world : World
    arms : mapping of str -> fitted model
        Exactly two arms, ``{A: model_a, B: model_b}``.
    n_users : int
        Simulated visits (>= 2), users drawn uniformly with replacement.
    n : int
        Length of the lists and of the interleaved list.
    method : str
        ``"team_draft"`` (the one implemented).
    seed : int

    Returns
    -------
    InterleavingResult
    """
    world = _check_world(world)
    arms = _check_arms(world, arms, count=2)
    n_users = _check_n_users(n_users, 2)
    method = check_choice("method", method, INTERLEAVING_METHODS)
    seed = check_seed(seed)
    n = check_int("n", n, low=1)
    ids, probabilities = _lists(world, arms, n)
    credit_a, credit_b = _team_draft(np.random.default_rng(seed), ids, probabilities, _matches(ids),
                                     world.examination(n), n_users)
    mean, se, p = _interleaving_test(credit_a, credit_b)
    z = stats.norm.ppf(0.5 + _CONFIDENCE / 2)
    a, b = arms
    return InterleavingResult(
        arms=(a, b), wins={a: int((credit_a > credit_b).sum()), b: int((credit_b > credit_a).sum())},
        ties=int((credit_a == credit_b).sum()), preference=float(mean / 2),
        preference_ci=(float((mean - z * se) / 2), float((mean + z * se) / 2)), p_value=float(p),
        clicks={a: int(credit_a.sum()), b: int(credit_b.sum())}, method=method, n=n,
        n_users=n_users, seed=seed)


# -- sensitivity ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SensitivityResult:
    """What :func:`sensitivity` estimated.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method and number of users: ``method``, ``n_users``, ``power`` (share of
        simulations with p < alpha and the better arm ahead), ``rejection_rate`` (share with
        p < alpha either way; for equal arms, the false positive rate) and ``power_se`` (its
        binomial standard error).
    users_needed : dict of str -> float
        Per method, the users at which ``power`` first reaches ``target``, interpolated linearly
        in log(users) between the grid points around it; the smallest grid value when the first
        already reaches it (an upper bound), inf when none does.
    better : str or None
        The arm with the higher expected click-through rate in the world (None when equal).
    arms, n, alpha, target, n_simulations, seed
    """

    table: pd.DataFrame
    users_needed: dict
    better: str | None
    arms: tuple
    n: int
    alpha: float
    target: float
    n_simulations: int
    seed: int

    def ratio(self) -> float:
        """``users_needed["ab"] / users_needed["interleaving"]``: how many times more users the
        A/B test needs for the same power."""
        return self.users_needed["ab"] / self.users_needed["interleaving"]


def _users_for_power(n_users: np.ndarray, power: np.ndarray, target: float) -> float:
    reached = np.flatnonzero(power >= target)
    if reached.size == 0:
        return float("inf")
    j = int(reached[0])
    if j == 0:
        return float(n_users[0])
    x0, x1 = np.log(n_users[j - 1]), np.log(n_users[j])
    share = (target - power[j - 1]) / (power[j] - power[j - 1])
    return float(np.exp(x0 + share * (x1 - x0)))


def sensitivity(world: World, arms: Mapping, n_users=(100, 200, 500, 1000, 2000, 5000), n: int = 10,
                n_simulations: int = 200, alpha: float = 0.05, target: float = 0.8,
                methods=METHODS, seed: int = 0) -> SensitivityResult:
    """Power curves of the A/B test and of interleaving, by repeated simulation.

    For each method and each number of users, ``n_simulations`` independent tests are simulated
    (the arms' lists are computed once; users, assignments, interleavings and clicks are drawn
    anew each time) and the share that detects the better arm is counted. The same function
    with the same model in both arms (an A/A test) measures the false positive rate.

    Parameters
    ----------
    world : World
    arms : mapping of str -> fitted model
        Exactly two arms.
    n_users : int or sequence of int
        Numbers of users (visits per test) to simulate, each >= 4; sorted.
    n : int
        List length.
    n_simulations : int
        Tests per point, >= 1 (the standard error of a power estimate is at most
        ``0.5 / sqrt(n_simulations)``).
    alpha : float
        Level of every test, in (0, 1).
    target : float
        Power for ``users_needed``, in (0, 1).
    methods : sequence of str
        Among :data:`METHODS`.
    seed : int
        Method ``m`` (its position in :data:`METHODS`) at grid point ``g`` draws from
        ``default_rng([seed, m, g])``, so a point does not depend on the others.

    Returns
    -------
    SensitivityResult
    """
    world = _check_world(world)
    arms = _check_arms(world, arms, count=2)
    grid = [n_users] if isinstance(n_users, numbers.Integral) else list(n_users)
    if not grid:
        raise ReclabError("n_users must be an integer or a non-empty sequence of integers, got []")
    grid = np.array(sorted({_check_n_users(value, 4) for value in grid}), dtype=np.int64)
    n = check_int("n", n, low=1)
    n_simulations = check_int("n_simulations", n_simulations, low=1)
    alpha = _check_probability("alpha", alpha)
    target = _check_probability("target", target)
    if isinstance(methods, str) or not methods:
        raise ReclabError(f"methods must be a non-empty sequence of {list(METHODS)}, got {methods!r}")
    methods = [check_choice("methods", method, METHODS) for method in methods]
    seed = check_seed(seed)
    ids, probabilities = _lists(world, arms, n)
    expected = probabilities.sum(axis=2).mean(axis=1)
    better = None if expected[0] == expected[1] else list(arms)[int(expected[1] > expected[0])]
    direction = 0 if better is None else (1 if better == list(arms)[1] else -1)
    match, examination = _matches(ids), world.examination(n)
    rows = []
    for method in methods:
        for g, size in enumerate(grid):
            rng = np.random.default_rng([seed, METHODS.index(method), g])
            signs, p_values = [], []
            # Many tests at once, in batches of about _BATCH_VISITS visits to bound memory.
            per_batch = max(1, _BATCH_VISITS // int(size))
            for start in range(0, n_simulations, per_batch):
                repeats = min(per_batch, n_simulations - start)
                if method == "ab":
                    arm, clicks = _ab_draw(rng, probabilities, int(size), repeats)
                    count, _, mean, var = _arm_moments(arm, clicks, 2)
                    _, p = _welch(mean[:, 0], var[:, 0], count[:, 0], mean[:, 1], var[:, 1], count[:, 1])
                    difference = mean[:, 1] - mean[:, 0]
                else:
                    # Visits are independent: one batch of repeats * size visits is repeats tests.
                    credit_a, credit_b = _team_draft(rng, ids, probabilities, match, examination,
                                                     int(size) * repeats)
                    difference, _, p = _interleaving_test(credit_a.reshape(repeats, -1),
                                                          credit_b.reshape(repeats, -1))
                signs.append(np.sign(difference))
                p_values.append(p)
            signs, p_values = np.concatenate(signs), np.concatenate(p_values)
            rejected = p_values < alpha
            power = (rejected & (signs == direction)).mean() if direction else rejected.mean()
            rows.append((method, int(size), float(power), float(rejected.mean()),
                         float(np.sqrt(power * (1 - power) / n_simulations))))
    table = pd.DataFrame(rows, columns=["method", "n_users", "power", "rejection_rate", "power_se"])
    needed = {method: _users_for_power(grid, table.loc[table["method"] == method, "power"].to_numpy(),
                                       target) for method in methods}
    return SensitivityResult(table=table, users_needed=needed, better=better, arms=tuple(arms), n=n,
                             alpha=alpha, target=target, n_simulations=n_simulations, seed=seed)


# -- offline vs online -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class OfflineOnline:
    """What :func:`offline_vs_online` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (index: name): ``precision@K`` (offline, on the test split), ``ctr``
        with ``ctr_ci_low`` / ``ctr_ci_high`` (simulated), ``expected_ctr`` (the world's exact
        value), ``offline_rank`` and ``online_rank`` (1 = best).
    spearman : float
        Spearman rank correlation of offline precision@K and simulated CTR.
    spearman_p_value : float
        Its two-sided p-value (scipy; few models make it rough).
    spearman_expected : float
        The same with the exact expected CTR (no simulation noise).
    metric : str
        ``"precision@K"``.
    """

    table: pd.DataFrame
    spearman: float
    spearman_p_value: float
    spearman_expected: float
    metric: str


def offline_vs_online(world: World, models: Mapping, train: Interactions, test: Interactions,
                      k: int = 10, n_users: int = 5000, n: int = 10, seed: int = 0,
                      relevance_threshold=None) -> OfflineOnline:
    """Offline precision@``k`` next to simulated online click-through rate, for many models.

    Offline: :func:`reclab.evaluation.evaluate` of each model on ``test`` (seen = ``train``).
    Online: one :func:`ab_test` with every model as an arm (``n_users`` visits in all).

    Parameters
    ----------
    world : World
        On the users and items of ``train`` and ``test``.
    models : mapping of str -> fitted model
        At least two (three or more make a rank correlation worth reading).
    train, test : reclab.Interactions
    k : int
        Cut-off of the offline precision.
    n_users, n, seed
        As in :func:`ab_test`.
    relevance_threshold : float, optional
        As in :func:`reclab.evaluation.evaluate`.

    Returns
    -------
    OfflineOnline
    """
    online = ab_test(world, models, n_users=n_users, n=n, seed=seed)
    k = check_int("k", k, low=1)
    metric = f"precision@{k}"
    offline = {name: evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold,
                              n_bootstrap=0).summary[metric] for name, model in models.items()}
    table = pd.DataFrame({metric: pd.Series(offline)}).join(
        online.table[["ctr", "ctr_ci_low", "ctr_ci_high", "expected_ctr"]])
    table.index.name = "model"
    table["offline_rank"] = table[metric].rank(ascending=False, method="min").astype(int)
    table["online_rank"] = table["ctr"].rank(ascending=False, method="min").astype(int)
    rho, p = stats.spearmanr(table[metric], table["ctr"])
    rho_expected, _ = stats.spearmanr(table[metric], table["expected_ctr"])
    return OfflineOnline(table=table, spearman=float(rho), spearman_p_value=float(p),
                         spearman_expected=float(rho_expected), metric=metric)


# -- figures ----------------------------------------------------------------------------------
def plot_power(result: SensitivityResult):
    """Power against users (log axis) for each method, with the target line and the users each
    method needs.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown.
    """
    from matplotlib.figure import Figure

    if not isinstance(result, SensitivityResult):
        raise ReclabError(f"plot_power needs a SensitivityResult, got {type(result).__name__}")
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    labels = {"ab": "A/B test", "interleaving": "interleaving (team draft)"}
    for method, rows in result.table.groupby("method", sort=False):
        needed = result.users_needed[method]
        shown = f"{needed:,.0f}" if np.isfinite(needed) else "not reached"
        ax.errorbar(rows["n_users"], rows["power"], yerr=1.96 * rows["power_se"], marker="o",
                    capsize=3, label=f"{labels[method]}: {shown} users for {result.target:.0%}")
    ax.axhline(result.target, color="0.5", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set(xlabel="users (visits) in the test", ylabel="power", ylim=(-0.02, 1.02),
           title=f"Detecting {result.better or 'a difference'}: {' vs '.join(result.arms)} "
                 f"(alpha {result.alpha:g}, {result.n_simulations} simulations per point)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def plot_offline_online(result: OfflineOnline):
    """Simulated CTR (with its 95% interval) against offline precision@K, one point per model.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown.
    """
    from matplotlib.figure import Figure

    if not isinstance(result, OfflineOnline):
        raise ReclabError(f"plot_offline_online needs an OfflineOnline, got {type(result).__name__}")
    table = result.table
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.errorbar(table[result.metric], table["ctr"], fmt="o", capsize=3,
                yerr=[table["ctr"] - table["ctr_ci_low"], table["ctr_ci_high"] - table["ctr"]])
    for name, row in table.iterrows():
        ax.annotate(str(name), (row[result.metric], row["ctr"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set(xlabel=f"offline {result.metric} (test split)", ylabel="simulated online CTR",
           title=f"Offline vs online: Spearman {result.spearman:+.2f}")
    ax.grid(alpha=0.3)
    return fig
