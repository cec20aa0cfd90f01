"""``Interactions``, the users x items container every part of reclab reads, and what goes with it.

- :mod:`reclab.data.interactions`: :class:`Interactions` (its rules are in that module's docstring)
  and ``check_interactions``;
- :mod:`reclab.data.held_out`: ``check_held_out`` (a test split held out of train, and a model
  fitted on train alone), ``check_overlap`` (its rules on pairs counted elsewhere, as in Spark) and
  ``stored_pairs`` (every stored pair of a matrix as 1);
- :mod:`reclab.data.features`: content features of users and items (``genre_features``,
  ``indicator_features`` and the checks ``Interactions`` applies to them);
- :mod:`reclab.data.npz`: the ``.npz`` file of ``Interactions`` (``save_interactions``,
  ``load_interactions``), which the pipeline's split artifacts use;
- :mod:`reclab.data.ratings_file`: ``read_interactions``, a ratings file of the user's own (and its
  items file), which ``reclab.datasets`` re-exports.
"""

from reclab.data.features import genre_features, indicator_features
from reclab.data.held_out import check_held_out, check_overlap, stored_pairs
from reclab.data.interactions import Interactions, check_interactions
from reclab.data.npz import load_interactions, save_interactions

__all__ = ["Interactions", "check_held_out", "check_interactions", "check_overlap", "genre_features",
           "indicator_features", "load_interactions", "save_interactions", "stored_pairs"]
