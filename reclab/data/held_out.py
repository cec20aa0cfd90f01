"""``check_held_out``: refuse a train / test pair that is not a model's training data and the
interactions held out of it, before any metric is computed on it.

Every rule here is about the pattern of stored pairs (a stored 0, such as a residual, is a pair):

- the test split must hold something that can be recommended: not every one of its pairs in train;
- it must be the part held out of train, not the whole data: not every pair of train in it;
- the model (its ``seen_``, which every reclab model records at ``fit``) must have been fitted on
  train and nothing more: a test pair it was fitted on would be scored on what it learned, and any
  other pair it was fitted on but train does not hold would be ranked as a candidate (a miss in
  every list it enters).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclab.data.interactions import Interactions
from reclab.errors import ReclabError

__all__ = ["check_held_out", "check_overlap", "stored_pairs"]


def stored_pairs(pairs) -> sp.csr_matrix:
    """Every stored pair as 1 (a stored value may be 0, such as a residual)."""
    pairs = sp.csr_matrix(pairs)
    return sp.csr_matrix((np.ones(pairs.nnz, np.int8), pairs.indices, pairs.indptr), shape=pairs.shape)


def _common(a: sp.csr_matrix, b: sp.csr_matrix) -> int:
    return a.multiply(b).count_nonzero()


def check_overlap(n_train: int, n_test: int, n_both: int, name: str = "test") -> None:
    """The first two rules of :func:`check_held_out`, from the numbers of distinct pairs in train,
    in the test split and in both (what ``reclab.spark.evaluate`` counts on DataFrames)."""
    if n_test and n_both == n_test:
        raise ReclabError(f"each of the {name} split's {n_test} interactions is also in train, so none "
                          f"can be recommended (train's items are no candidates); pass the split held "
                          f"out of train as {name}")
    if n_train and n_both == n_train:
        raise ReclabError(f"the {name} split holds every one of train's {n_train} interactions: it is "
                          f"the whole data, not the part held out of train, and train's pairs would "
                          f"count as relevant items that can never be recommended; pass the split held "
                          f"out of train as {name}")


def check_held_out(model, train: Interactions, test: Interactions, name: str = "test") -> None:
    """Refuse a ``test`` split (``name`` in the messages) that is not over ``train``'s users and
    items (the same ids), or not held out of ``train``, or a ``model`` not fitted on ``train``
    alone:

    - every test pair is also in ``train`` (the same split passed twice, for example): a pair in
      ``train`` is no candidate, so nothing could be recommended. Some such pairs (an item
      consumed again) are allowed;
    - every pair of ``train`` is also in the test split (the whole data passed as test): its
      training pairs would count as relevant items that can never be recommended;
    - test pairs that ``model`` was fitted on (its ``seen_`` matrix, when it has one of
      ``test``'s shape) and that ``train`` does not hold: the model's scores for them are learned,
      not predicted (a model fitted on all the data, or ``train`` and ``test`` swapped);
    - other pairs that ``model`` was fitted on and ``train`` does not hold (a model fitted on
      train and validation, evaluated with train alone): they would be ranked as candidates,
      misses that fill the lists. ``model`` None skips these two.
    """
    if train.shape != test.shape or not np.array_equal(train.user_ids, test.user_ids) \
            or not np.array_equal(train.item_ids, test.item_ids):   # indices would name others
        raise ReclabError(f"train {train.shape} and {name} {test.shape} must share users and items (the "
                          f"same ids, as reclab.split produces); build both from one Interactions")
    held, given = stored_pairs(test.matrix), stored_pairs(train.matrix)
    check_overlap(train.nnz, test.nnz, _common(held, given), name)
    seen = getattr(model, "seen_", None)
    if not sp.issparse(seen) or seen.shape != test.shape:
        return
    fitted = stored_pairs(seen)
    shared = fitted.multiply(held)   # the test pairs the model was fitted on
    leaked = shared.count_nonzero() - _common(shared, given)
    if leaked:
        raise ReclabError(f"{leaked} of the {name} split's {test.nnz} interactions are in the data "
                          f"{type(model).__name__} was fitted on, and not in train: its scores for them "
                          f"are learned, not predicted. Fit the model on the training split, and pass "
                          f"that split as train: evaluate(model, train, test)")
    extra = fitted.count_nonzero() - _common(fitted, given)
    if extra:
        raise ReclabError(f"{type(model).__name__} was fitted on {extra} interactions that train does not "
                          f"hold: they would be ranked as candidates, and count as misses. Pass what "
                          f"the model was fitted on as train (for example train.union(valid)), or fit "
                          f"it on train")
