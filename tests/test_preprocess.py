"""k-core filtering: thresholds hold, cascades are followed, errors are clear."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclab import Interactions, ReclabError
from reclab.preprocess import kcore


def reference_kcore(frame: pd.DataFrame, min_user: int, min_item: int) -> set:
    """The k-core by plain repeated pandas filtering, as an independent answer."""
    while True:
        users = frame.groupby("user")["item"].transform("size")
        items = frame.groupby("item")["user"].transform("size")
        keep = (users >= min_user) & (items >= min_item)
        if keep.all():
            return set(zip(frame["user"], frame["item"]))
        frame = frame[keep]


def test_cascade_is_followed():
    # Item 30 has one rating; dropping it leaves user 3 with one, and dropping user 3 leaves item
    # 20 with one: only the dense block of users 1, 2 and items 10, 40 remains.
    frame = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3],
                          "item": [10, 20, 40, 10, 40, 20, 30],
                          "rating": [5.0, 4, 3, 2, 1, 3, 4]})
    core = kcore(Interactions.from_frame(frame), min_user=2, min_item=2)
    assert core.user_ids.tolist() == [1, 2] and core.item_ids.tolist() == [10, 40]
    assert sorted(core.to_frame()["rating"].tolist()) == [1.0, 2.0, 3.0, 5.0]


def test_item_metadata_follows():
    frame = pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [10, 20, 10, 20, 30], "rating": [1.0] * 4 + [2.0]})
    items = pd.DataFrame({"title": ["A", "B", "C"]}, index=[10, 20, 30])
    core = kcore(Interactions.from_frame(frame, items=items), min_user=2, min_item=2)
    assert core.titles([0, 1]).tolist() == ["A", "B"]


def test_ml100k_core(ml100k):
    data = ml100k
    core = kcore(data, min_user=5, min_item=5)
    assert core.user_counts().min() >= 5 and core.item_counts().min() >= 5
    assert (core.n_users, core.n_items) == (943, 1349)
    assert kcore(core, 5, 5) is core  # already a 5-core: nothing to do
    expected = reference_kcore(data.to_frame(), 5, 5)
    assert set(zip(core.to_frame()["user"], core.to_frame()["item"])) == expected


def test_nothing_left_names_the_thresholds():
    data = Interactions.from_frame(pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [3.0, 4.0]}))
    with pytest.raises(ReclabError, match=r"no interactions left .* min_user=2, min_item=1 .*2 users, 2 items"):
        kcore(data, min_user=2, min_item=1)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "5", None])
def test_bad_thresholds(bad):
    data = Interactions.from_frame(pd.DataFrame({"user": [1], "item": [1], "rating": [3.0]}))
    with pytest.raises(ReclabError, match=r"min_item must be an integer >= 1, got"):
        kcore(data, min_user=1, min_item=bad)


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 9)), min_size=1, max_size=80),
       min_user=st.integers(1, 4), min_item=st.integers(1, 4))
def test_matches_reference(pairs, min_user, min_item):
    frame = pd.DataFrame(pairs, columns=["user", "item"]).drop_duplicates()
    frame["user"] *= 7  # gaps in the ids
    data = Interactions.from_frame(frame, rating=None)
    expected = reference_kcore(frame, min_user, min_item)
    if not expected:
        with pytest.raises(ReclabError, match="no interactions left"):
            kcore(data, min_user, min_item)
        return
    core = kcore(data, min_user, min_item)
    got = core.to_frame()
    assert set(zip(got["user"], got["item"])) == expected
    assert core.user_counts().min() >= min_user and core.item_counts().min() >= min_item
    assert np.all(np.isin(core.user_ids, data.user_ids))
