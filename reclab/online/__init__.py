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

A simulated visit is a user drawn uniformly, with replacement, from the world's users who have
at least ``n`` unseen items (the others cannot be shown a full list and are left out, with a
warning: a heavy user of a small catalogue, say); visits are independent, so the tests' p-values
are calibrated (an A/A test rejects at rate ``alpha``).
Every random draw comes from ``numpy.random.default_rng(seed)``: the same seed gives the same
result, to the last digit.

The package holds one module per concern: :mod:`~reclab.online.world` (the world and its click
model), :mod:`~reclab.online.abtest`, :mod:`~reclab.online.interleaving`,
:mod:`~reclab.online.sensitivity` (power by simulation), :mod:`~reclab.online.offline` (offline vs
online) and :mod:`~reclab.online.common` (argument checks shared by the tests).
"""

from reclab.online.abtest import ABTestResult, ab_test
from reclab.online.interleaving import INTERLEAVING_METHODS, InterleavingResult, interleave
from reclab.online.offline import OfflineOnline, offline_vs_online, plot_offline_online
from reclab.online.sensitivity import METHODS, SensitivityResult, plot_power, sensitivity
from reclab.online.world import Oracle, World

__all__ = ["World", "Oracle", "ABTestResult", "InterleavingResult", "SensitivityResult", "OfflineOnline",
           "ab_test", "interleave", "sensitivity", "offline_vs_online", "plot_power",
           "plot_offline_online"]
