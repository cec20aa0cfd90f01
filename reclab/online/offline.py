"""Offline precision next to simulated online click-through rate (see :mod:`reclab.online`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from reclab._text import p_text
from reclab._validate import check_int
from reclab.data import Interactions
from reclab.evaluation import evaluate
from reclab.online.abtest import ab_test
from reclab.online.common import result_axes
from reclab.online.world import World

__all__ = ["OfflineOnline", "offline_vs_online", "plot_offline_online"]


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
        Spearman rank correlation of offline precision@K and simulated CTR; NaN when every
        model has the same value of either (:meth:`spearman_text` says which).
    spearman_p_value : float
        Its two-sided p-value: exact over every ordering for up to 8 models, else scipy's.
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

    def spearman_text(self) -> str:
        """:attr:`spearman` as a summary shows it, with its p-value (a few models rarely make
        a correlation significant): ``"+0.63 (p=0.13)"``, or why there is none."""
        for column, what in ((self.metric, f"offline {self.metric}"), ("ctr", "simulated CTR")):
            if self.table[column].nunique() < 2:
                return f"undefined (every model has the same {what})"
        return f"{self.spearman:+.2f} ({p_text(self.spearman_p_value, 2)})"


#: Up to this many models the Spearman p-value is exact: over every ordering of one side.
_EXACT_MODELS = 8


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Spearman's correlation and its two-sided p-value; NaN (without scipy's warning) when
    either side is constant. The p-value is exact, over all orderings of ``y``, for up to 8
    models: scipy's t approximation said p = 0 for 3 models in perfect agreement (1/3 of all
    orderings agree as well or better, counting reversed ones)."""
    if x.nunique() < 2 or y.nunique() < 2:
        return float("nan"), float("nan")
    rho, p = stats.spearmanr(x, y)
    if len(x) <= _EXACT_MODELS:
        from itertools import permutations

        rank_x, rank_y = stats.rankdata(x), stats.rankdata(y)
        orderings = np.array(list(permutations(rank_y)))
        centred = orderings - orderings.mean(axis=1, keepdims=True)
        rx = rank_x - rank_x.mean()
        every = centred @ rx / np.sqrt((centred ** 2).sum(axis=1) * (rx ** 2).sum())
        p = float(np.mean(np.abs(every) >= abs(rho) - 1e-12))
    return float(rho), float(p)


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
    rho, p = _spearman(table[metric], table["ctr"])
    rho_expected, _ = _spearman(table[metric], table["expected_ctr"])
    return OfflineOnline(table=table, spearman=rho, spearman_p_value=p,
                         spearman_expected=rho_expected, metric=metric)


def plot_offline_online(result: OfflineOnline):
    """Simulated CTR (with its 95% interval) against offline precision@K, one point per model.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown.
    """
    fig, ax = result_axes(result, OfflineOnline, "plot_offline_online", (7, 4.5))
    table = result.table
    ax.errorbar(table[result.metric], table["ctr"], fmt="o", capsize=3,
                yerr=[table["ctr"] - table["ctr_ci_low"], table["ctr_ci_high"] - table["ctr"]])
    for name, row in table.iterrows():
        ax.annotate(str(name), (row[result.metric], row["ctr"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set(xlabel=f"offline {result.metric} (test split)", ylabel="simulated online CTR",
           title=f"Offline vs online: Spearman {result.spearman_text()}")
    ax.grid(alpha=0.3)
    return fig
