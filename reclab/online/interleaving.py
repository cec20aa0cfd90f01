"""The simulated interleaving experiment, by team draft (see :mod:`reclab.online`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from reclab._text import p_text
from reclab._validate import check_choice, check_int, check_seed
from reclab.online.common import CONFIDENCE, check_arms, check_n_users
from reclab.online.world import World, check_world, click_lists

__all__ = ["INTERLEAVING_METHODS", "InterleavingResult", "interleave", "interleaving_test", "matches",
           "team_draft"]

INTERLEAVING_METHODS = ("team_draft",)


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
        Two-sided t-test of the per-visit outcome ``sign(clicks_B - clicks_A)`` against 0 (when
        every visit is won by one arm, the exact sign test: ``2 ** (1 - visits)``).
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
                f"{self.preference:+.4f} [{low:+.4f}, {high:+.4f}], {p_text(self.p_value, 2)}")


def matches(ids: np.ndarray) -> np.ndarray:
    """``match[t, u, j]``: position in the other arm's list of user ``u`` of the item at position
    ``j`` of arm ``t``'s list, or -1; ``ids`` has shape (2, users, n)."""
    same = ids[0][:, :, None] == ids[1][:, None, :]
    a_in_b = np.where(same.any(axis=2), same.argmax(axis=2), -1)
    b_in_a = np.where(same.any(axis=1), same.argmax(axis=1), -1)
    return np.stack([a_in_b, b_in_a])


def team_draft(rng, ids: np.ndarray, probabilities: np.ndarray, match: np.ndarray,
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


def interleaving_test(credit_a: np.ndarray, credit_b: np.ndarray):
    """``(outcome mean, standard error, p)`` of the per-visit outcome sign(B - A), along the
    last axis (one test per row)."""
    outcome = np.sign(credit_b - credit_a).astype(np.float64)
    size = outcome.shape[-1]
    mean = outcome.mean(axis=-1)
    se = outcome.std(axis=-1, ddof=1) / np.sqrt(size)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2.0 * stats.t.sf(np.abs(mean / se), size - 1)
    # No variance: all visits tied (no evidence), or all won by one arm: the exact sign-flip
    # test, 2 of its 2^visits outcomes as extreme (a p of 0 claimed certainty from 2 visits).
    return mean, se, np.where(se > 0, p, np.where(mean == 0, 1.0, np.minimum(1.0, 2.0 ** (1 - size))))


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
    world = check_world(world)
    arms = check_arms(world, arms, count=2)
    n_users = check_n_users(n_users, 2)
    method = check_choice("method", method, INTERLEAVING_METHODS)
    seed = check_seed(seed)
    n = check_int("n", n, low=1)
    ids, probabilities = click_lists(world, arms, n)
    credit_a, credit_b = team_draft(np.random.default_rng(seed), ids, probabilities, matches(ids),
                                     world.examination(n), n_users)
    mean, se, p = interleaving_test(credit_a, credit_b)
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    a, b = arms
    return InterleavingResult(
        arms=(a, b), wins={a: int((credit_a > credit_b).sum()), b: int((credit_b > credit_a).sum())},
        ties=int((credit_a == credit_b).sum()), preference=float(mean / 2),
        preference_ci=(float((mean - z * se) / 2), float((mean + z * se) / 2)), p_value=float(p),
        clicks={a: int(credit_a.sum()), b: int(credit_b.sum())}, method=method, n=n,
        n_users=n_users, seed=seed)
