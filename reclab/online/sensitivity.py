"""Power of the A/B test and of interleaving by repeated simulation (see :mod:`reclab.online`)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from reclab._validate import check_choice, check_int, check_seed
from reclab.errors import ReclabError
from reclab.online.abtest import ab_draw, arm_moments, welch
from reclab.online.common import check_arms, check_n_users, check_probability, result_axes
from reclab.online.interleaving import interleaving_test, matches, team_draft
from reclab.online.world import World, check_world, click_lists

__all__ = ["METHODS", "SensitivityResult", "sensitivity", "plot_power"]

METHODS = ("ab", "interleaving")
"""Tests :func:`sensitivity` simulates: the A/B test and team-draft interleaving."""
# Visits simulated at once by sensitivity (arrays of about 10 values per visit and list entry).
_BATCH_VISITS = 200_000


@dataclass(frozen=True, eq=False)
class SensitivityResult:
    """What :func:`sensitivity` estimated.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method and number of users: ``method``, ``n_users``, ``power`` (share of
        simulations with p < alpha and the better arm ahead), ``rejection_rate`` (share with
        p < alpha either way; for equal arms, the false positive rate), ``power_se`` (its
        binomial standard error) and ``reversed`` (share with p < alpha and the other arm ahead:
        interleaving counts per-visit wins, not clicks, and with arms of nearly equal CTR it can
        reliably prefer the one with the lower CTR, whose power then stays at 0).
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
        missing = [method for method in ("ab", "interleaving") if method not in self.users_needed]
        if missing:   # was a KeyError naming the method alone
            raise ReclabError(f"ratio compares the A/B test with interleaving, but this result simulated "
                              f"{sorted(self.users_needed)} only: run sensitivity with methods=('ab', "
                              f"'interleaving')")
        return self.users_needed["ab"] / self.users_needed["interleaving"]

    def needed_text(self, method: str) -> str:
        """``users_needed[method]`` in words: ``"1,234"``, ``"at most 100"`` when the smallest
        size simulated already reaches the target, ``"more than 5,000 (the most simulated)"``
        when none does. ``method`` is one this result simulated."""
        users = self.users_needed[check_choice("method", method, list(self.users_needed))]   # was a KeyError
        rows = self.table[self.table["method"] == method]
        sizes = rows["n_users"]
        if not np.isfinite(users):
            text = f"more than {int(sizes.max()):,} (the most simulated)"
            other = [arm for arm in self.arms if arm != self.better]
            favoured = float(rows["reversed"].iloc[-1])
            if self.better is not None and favoured > self.alpha:
                text += (f"; it prefers {other[0]} instead in {favoured:.0%} of the tests at "
                         f"{int(sizes.max()):,} users")
            return text
        return f"at most {users:,.0f}" if users == sizes.min() else f"{users:,.0f}"


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
        Among :data:`METHODS`, each once.
    seed : int
        Method ``m`` (its position in :data:`METHODS`) with ``u`` users draws from
        ``default_rng([seed, m, u])``, so a point does not depend on the others in the grid.

    Returns
    -------
    SensitivityResult
    """
    world = check_world(world)
    arms = check_arms(world, arms, count=2)
    if isinstance(n_users, numbers.Integral):
        grid = [n_users]
    elif isinstance(n_users, (str, bytes, Mapping)) or not isinstance(n_users, Iterable):
        grid = []   # a float, a string (its digits), a mapping (its keys): refused below
    else:
        grid = list(n_users)
    if not grid:
        raise ReclabError(f"n_users must be an integer >= 4 or a non-empty sequence of them, got {n_users!r}")
    grid = np.array(sorted({check_n_users(value, 4) for value in grid}), dtype=np.int64)
    n = check_int("n", n, low=1)
    n_simulations = check_int("n_simulations", n_simulations, low=1)
    alpha = check_probability("alpha", alpha)
    target = check_probability("target", target)
    if isinstance(methods, str) or not methods:
        raise ReclabError(f"methods must be a non-empty sequence of {list(METHODS)}, got {methods!r}")
    methods = [check_choice("methods", method, METHODS) for method in methods]
    if len(set(methods)) < len(methods):
        raise ReclabError(f"methods must not repeat a method, got {methods}")
    seed = check_seed(seed)
    ids, probabilities = click_lists(world, arms, n)
    expected = probabilities.sum(axis=2).mean(axis=1)
    better = None if expected[0] == expected[1] else list(arms)[int(expected[1] > expected[0])]
    direction = 0 if better is None else (1 if better == list(arms)[1] else -1)
    match, examination = matches(ids), world.examination(n)
    rows = []
    for method in methods:
        for size in grid:
            rng = np.random.default_rng([seed, METHODS.index(method), int(size)])
            signs, p_values = [], []
            # Many tests at once, in batches of about _BATCH_VISITS visits to bound memory.
            per_batch = max(1, _BATCH_VISITS // int(size))
            for start in range(0, n_simulations, per_batch):
                repeats = min(per_batch, n_simulations - start)
                if method == "ab":
                    arm, clicks = ab_draw(rng, probabilities, int(size), repeats)
                    count, _, mean, var = arm_moments(arm, clicks, 2)
                    _, p = welch(mean[:, 0], var[:, 0], count[:, 0], mean[:, 1], var[:, 1], count[:, 1])
                    difference = mean[:, 1] - mean[:, 0]
                else:
                    # Visits are independent: one batch of repeats * size visits is repeats tests.
                    credit_a, credit_b = team_draft(rng, ids, probabilities, match, examination,
                                                     int(size) * repeats)
                    difference, _, p = interleaving_test(credit_a.reshape(repeats, -1),
                                                          credit_b.reshape(repeats, -1))
                signs.append(np.sign(difference))
                p_values.append(p)
            signs, p_values = np.concatenate(signs), np.concatenate(p_values)
            rejected = p_values < alpha
            power = (rejected & (signs == direction)).mean() if direction else rejected.mean()
            opposite = (rejected & (signs == -direction)).mean() if direction else 0.0
            rows.append((method, int(size), float(power), float(rejected.mean()),
                         float(np.sqrt(power * (1 - power) / n_simulations)), float(opposite)))
    table = pd.DataFrame(rows, columns=["method", "n_users", "power", "rejection_rate", "power_se",
                                        "reversed"])
    needed = {method: _users_for_power(grid, table.loc[table["method"] == method, "power"].to_numpy(),
                                       target) for method in methods}
    return SensitivityResult(table=table, users_needed=needed, better=better, arms=tuple(arms), n=n,
                             alpha=alpha, target=target, n_simulations=n_simulations, seed=seed)


def plot_power(result: SensitivityResult):
    """Power against users (log axis) for each method, with the target line and the users each
    method needs.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown.
    """
    fig, ax = result_axes(result, SensitivityResult, "plot_power", (7, 4))
    labels = {"ab": "A/B test", "interleaving": "interleaving (team draft)"}
    for method, rows in result.table.groupby("method", sort=False):
        ax.errorbar(rows["n_users"], rows["power"], yerr=1.96 * rows["power_se"], marker="o",
                    capsize=3, label=f"{labels[method]}: {result.needed_text(method)} users for "
                                     f"{result.target:.0%}")
    ax.axhline(result.target, color="0.5", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set(xlabel="users (visits) in the test", ylabel="power", ylim=(-0.02, 1.02),
           title=f"Detecting {result.better or 'a difference'}: {' vs '.join(result.arms)} "
                 f"(alpha {result.alpha:g}, {result.n_simulations} simulations per point)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig
