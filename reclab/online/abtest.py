"""The simulated A/B test (see :mod:`reclab.online`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import special, stats

from reclab._text import p_text
from reclab._validate import check_int, check_seed
from reclab.online.common import CONFIDENCE, check_arms, check_n_users, check_probability
from reclab.online.world import World, check_world, click_lists

__all__ = ["ABTestResult", "ab_test", "ab_draw", "arm_moments", "welch"]


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
        ``lift_ci_high`` (delta method), ``p_value`` (Welch's t-test against the first arm; the
        exact permutation test when neither arm's clicks vary) and
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
        of clicks per visit and ``s^2`` their variances; inf when the difference is 0, NaN when
        neither arm's clicks vary (too few visits to plan with).
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
                       f"{p_text(self.p_values[arm], 2)}" for arm in self.lift]
        return (f"A/B test, {self.n_users} users, top-{self.n}: CTR " + ", ".join(parts) + "; "
                + "; ".join(comparisons))


def welch(mean_a, var_a, n_a, mean_b, var_b, n_b):
    """Two-sided Welch t-test of ``mean_b - mean_a`` (arrays broadcast): ``(se, p)``."""
    se2 = var_a / n_a + var_b / n_b
    se = np.sqrt(se2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mean_b - mean_a) / se
        df = se2 ** 2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1))
        p = 2.0 * stats.t.sf(np.abs(t), df)
    # No variance at all (every visit of an arm clicked alike: a few visits): the exact
    # permutation test, whose most extreme split of the visits is the one observed (and its
    # mirror, with as many visits per arm). A p of 0 claimed certainty from 4 visits.
    exact = (1.0 + (n_a == n_b)) / special.comb(n_a + n_b, n_a)
    p = np.where(se2 > 0, p, np.where(mean_a == mean_b, 1.0, np.minimum(1.0, exact)))
    return se, p


def ab_draw(rng, probabilities: np.ndarray, n_users: int, repeats: int = 1):
    """Visits of ``repeats`` independent A/B tests: the arm of each visit (balanced within each
    test, shuffled) and its clicks, both of shape (repeats, n_users)."""
    n_arms, n_world_users, n = probabilities.shape
    users = rng.integers(0, n_world_users, (repeats, n_users))
    arm = rng.permuted(np.broadcast_to(np.arange(n_users) % n_arms, (repeats, n_users)), axis=1)
    clicks = (rng.random((repeats, n_users, n)) < probabilities[arm, users]).sum(axis=2)
    return arm, clicks


def arm_moments(arm: np.ndarray, clicks: np.ndarray, n_arms: int):
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
    world = check_world(world)
    arms = check_arms(world, arms)
    n_users = check_n_users(n_users, 2 * len(arms))
    seed, alpha = check_seed(seed), check_probability("alpha", alpha)
    n = check_int("n", n, low=1)
    _, probabilities = click_lists(world, arms, n)
    arm, clicks = ab_draw(np.random.default_rng(seed), probabilities, n_users)
    count, total, mean, var = (moment[0] for moment in arm_moments(arm, clicks, len(arms)))
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    half = z * np.sqrt(var / count)
    table = pd.DataFrame({"users": count.astype(np.int64), "clicks": total.astype(np.int64),
                          "ctr": mean / n, "ctr_ci_low": (mean - half) / n,
                          "ctr_ci_high": (mean + half) / n, "clicks_per_user": mean,
                          "expected_ctr": probabilities.sum(axis=2).mean(axis=1) / n},
                         index=pd.Index(list(arms), name="arm"))
    se, p = welch(mean[0], var[0], count[0], mean, var, count)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = mean / mean[0] - 1.0
        # Delta method for the ratio of two independent means.
        lift_se = np.sqrt(var / count / mean[0] ** 2 + mean ** 2 * var[0] / count[0] / mean[0] ** 4)
        power_z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)
        needed = np.ceil(2 * power_z ** 2 * (var[0] + var) / (mean - mean[0]) ** 2)
    # inf: no difference to detect; NaN: no variance observed to plan with (a few visits)
    needed = np.where(mean != mean[0], np.where(var[0] + var > 0, needed, np.nan), np.inf)
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
