"""The Interactions container: construction, validation, duplicates, immutability, derived containers."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from reclab import Interactions, ReclabError


def frame(**columns):
    base = {"user": [1, 1, 2, 3], "item": [10, 20, 10, 30], "rating": [4.0, 5.0, 1.0, 3.0]}
    base.update(columns)
    return pd.DataFrame(base)


def test_from_frame_builds_sorted_id_space():
    data = Interactions.from_frame(frame(user=[3, 1, 2, 1]))
    assert data.shape == (3, 3)
    assert data.nnz == 4
    assert data.user_ids.tolist() == [1, 2, 3]
    assert data.item_ids.tolist() == [10, 20, 30]
    assert data.matrix.dtype == np.float32
    assert data.matrix.has_sorted_indices
    assert not data.implicit


def test_row_order_does_not_change_the_fingerprint():
    df = frame()
    a = Interactions.from_frame(df)
    b = Interactions.from_frame(df.iloc[::-1].reset_index(drop=True))
    assert a.fingerprint() == b.fingerprint()
    assert Interactions.from_frame(frame(rating=[4.0, 5.0, 1.0, 2.0])).fingerprint() != a.fingerprint()


def test_implicit_when_no_rating_column():
    data = Interactions.from_frame(frame(), rating=None)
    assert data.implicit
    assert set(data.matrix.data.tolist()) == {1.0}


def test_duplicates_keep_latest_by_timestamp_never_summed():
    df = pd.DataFrame({"user": [1, 1, 1], "item": [5, 5, 5], "rating": [5.0, 4.0, 2.0], "ts": [10, 30, 20]})
    with pytest.warns(UserWarning, match=r"^2 of the 3 rows repeat an earlier \(user, item\) pair; each pair keeps its latest row"):
        data = Interactions.from_frame(df, timestamp="ts")
    assert data.nnz == 1
    assert data.matrix.data.tolist() == [4.0]
    assert data.timestamps.tolist() == [30.0]


def test_duplicates_without_timestamps_keep_last_row():
    df = pd.DataFrame({"user": [1, 1], "item": [5, 5], "rating": [5.0, 3.0]})
    with pytest.warns(UserWarning, match="^1 of the 2 rows repeat"):
        data = Interactions.from_frame(df)
    assert data.matrix.data.tolist() == [3.0]
    assert data.matrix.max() <= df.rating.max()


def test_string_ids_and_lookup_both_ways():
    df = pd.DataFrame({"user": ["bob", "amy", "bob"], "item": ["x", "y", "y"], "rating": [1, 2, 3]})
    data = Interactions.from_frame(df)
    assert data.user_ids.tolist() == ["amy", "bob"]
    assert data.user_index(["bob", "amy"]).tolist() == [1, 0]
    assert data.item_index("y") == 1
    assert data.to_frame().sort_values(["user", "item"])["rating"].tolist() == [2.0, 1.0, 3.0]


@pytest.mark.parametrize(
    "df, kwargs, message",
    [
        (frame(), {"rating": "stars"}, "rating column 'stars' not found; columns are ['user', 'item', 'rating']"),
        (frame(), {"user": "customer"}, "user column 'customer' not found"),
        (frame().iloc[:0], {}, "no interactions: the table is empty"),
        (frame(rating=[1.0, np.nan, 2.0, 3.0]), {}, "rating column 'rating' has a missing value (NaN) at row 1"),
        (frame(rating=[1.0, np.inf, 2.0, 3.0]), {}, "rating column 'rating' has the value inf at row 1"),
        (frame(rating=["4", "five", "1", "3"]), {}, "non-numeric value 'five' at row 1"),
        (frame(user=[1, "a", 2, 3]), {}, "user ids mix types"),
        (frame(item=[10, None, 10, 30]), {}, "item column has a missing id at row 1"),
        (frame(ts=[1, 2, None, 4]), {"timestamp": "ts"}, "timestamp column 'ts' has a missing value at row 2"),
        (frame(ts=[1, 2, np.inf, 4]), {"timestamp": "ts"}, "has the value inf at row 2"),
    ],
)
def test_bad_frames_raise_clear_errors(df, kwargs, message):
    with pytest.raises(ValueError) as error:
        Interactions.from_frame(df, **kwargs)
    assert isinstance(error.value, ReclabError)
    assert message in str(error.value)


def test_not_a_frame():
    with pytest.raises(ReclabError, match="needs a pandas DataFrame, got list"):
        Interactions.from_frame([[1, 2, 3]])


def test_from_matrix_validates():
    with pytest.raises(ReclabError, match="needs a scipy.sparse matrix"):
        Interactions.from_matrix(np.ones((2, 2)))
    with pytest.raises(ReclabError, match="no stored entries"):
        Interactions.from_matrix(sp.csr_matrix((3, 4)))
    with pytest.raises(ReclabError, match="NaN or infinite"):
        Interactions.from_matrix(sp.csr_matrix(np.array([[np.nan, 1.0]])))
    with pytest.raises(ReclabError, match=r"user_ids has shape \(3,\), expected \(2,\)"):
        Interactions.from_matrix(sp.csr_matrix(np.eye(2)), user_ids=[1, 2, 3])
    with pytest.raises(ReclabError, match="unique and sorted"):
        Interactions.from_matrix(sp.csr_matrix(np.eye(2)), item_ids=[5, 5])
    # a pair stored twice was summed: two 5-star entries became one 10
    twice = sp.coo_matrix((np.array([5.0, 5.0, 3.0]), (np.array([0, 0, 1]), np.array([1, 1, 0]))), shape=(2, 2))
    with pytest.raises(ReclabError, match=r"from_matrix got 1 repeated \(user, item\) entries"):
        Interactions.from_matrix(twice)
    with pytest.raises(ReclabError, match="1 repeated"):
        Interactions.from_matrix(sp.csr_matrix((np.array([5.0, 5.0]), np.array([1, 1]), np.array([0, 2, 2])),
                                               shape=(2, 2)))
    assert Interactions.from_matrix(sp.coo_matrix(np.eye(3))).nnz == 3


def test_items_indexed_by_other_ids_are_refused():
    """Titles indexed by '10' for item 10 matched nothing, and the data had no titles, silently."""
    table = pd.DataFrame({"u": [1, 2], "i": [10, 20], "r": [3.0, 4.0]})
    titles = pd.DataFrame({"title": ["Ten", "Twenty"]}, index=["10", "20"])
    with pytest.raises(ReclabError, match="none of the 2 ids that index items is an item id of the "
                                          "interactions: items has '10', the interactions 10;"):
        Interactions.from_frame(table, user="u", item="i", rating="r", items=titles)
    some = pd.DataFrame({"title": ["Ten", "Thirty"]}, index=[10, 30])   # an unrated item: fine
    data = Interactions.from_frame(table, user="u", item="i", rating="r", items=some)
    assert data.items["title"].tolist()[0] == "Ten" and pd.isna(data.items["title"][1])


def test_one_column_cannot_play_two_roles():
    table = pd.DataFrame({"u": [1, 2], "i": [5, 6], "r": [3.0, 4.0]})
    with pytest.raises(ReclabError, match="user and item name the same column 'u'"):
        Interactions.from_frame(table, user="u", item="u", rating="r")
    with pytest.raises(ReclabError, match="user and rating name the same column 'u'"):
        Interactions.from_frame(table, user="u", item="i", rating="u")


def test_unknown_ids_are_named():
    data = Interactions.from_frame(frame())
    with pytest.raises(ReclabError, match=r"unknown user id\(s\) \[99\]"):
        data.user_index([1, 99])
    with pytest.raises(ReclabError, match="unknown item id"):
        data.item_index(11)


def test_container_is_immutable_and_does_not_freeze_caller_arrays():
    source = sp.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0]], dtype=np.float32))
    data = Interactions.from_matrix(source)
    with pytest.raises(ValueError):
        data.matrix.data[0] = 9.0
    with pytest.raises(ValueError):
        data.user_ids[0] = 7
    source.data[0] = 5.0  # the caller's matrix stays writeable and separate
    assert data.matrix[0, 0] == 1.0


def test_select_keeps_id_space_and_partitions():
    data = Interactions.from_frame(frame(ts=[1, 2, 3, 4]), timestamp="ts")
    mask = np.array([True, False, True, False])
    left, right = data.select(mask), data.select(~mask)
    assert left.shape == right.shape == data.shape
    assert left.nnz + right.nnz == data.nnz
    assert left.matrix.multiply(right.matrix).nnz == 0
    assert left.union(right).fingerprint() == data.fingerprint()
    with pytest.raises(ReclabError, match="disjoint"):
        left.union(left)
    with pytest.raises(ReclabError, match="boolean mask of shape"):
        data.select(np.ones(3, dtype=bool))


def test_restrict_reindexes_and_carries_metadata():
    items = pd.DataFrame({"title": ["Ten", "Twenty", "Thirty"]}, index=[10, 20, 30])
    data = Interactions.from_frame(frame(ts=[1, 2, 3, 4]), timestamp="ts", items=items)
    sub = data.restrict(users=[0, 2], items=[0, 2])
    assert sub.user_ids.tolist() == [1, 3]
    assert sub.item_ids.tolist() == [10, 30]
    assert sub.titles([0, 1]).tolist() == ["Ten", "Thirty"]
    frame_ = sub.to_frame()
    assert frame_[["user", "item", "rating", "timestamp"]].values.tolist() == [[1, 10, 4.0, 1.0], [3, 30, 3.0, 4.0]]


def test_titles_fall_back_to_ids():
    data = Interactions.from_frame(frame())
    assert data.titles([0, 2]).tolist() == ["10", "30"]


def test_with_matrix_keeps_explicit_zeros():
    data = Interactions.from_frame(frame())
    residual = data.matrix.copy()
    residual.data = residual.data - residual.data  # all zeros, but still stored entries
    zeroed = data.with_matrix(residual)
    assert zeroed.nnz == data.nnz
    with pytest.raises(ReclabError, match="needs shape"):
        data.with_matrix(sp.csr_matrix((1, 1)))


def test_each_timestamp_stays_with_its_entry_when_the_matrix_is_sorted():
    """from_matrix and with_matrix sort a matrix's entries: the timestamps given in its order move
    with them (they stayed in place, each on another rating), and the caller's matrix is unchanged."""
    # user 0 rated item 1 (1 star) at t=100, then item 0 (2 stars) at t=200: indices unsorted
    unsorted = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([1, 0, 1]), np.array([0, 2, 3])),
                             shape=(2, 2))
    expected = [[0, 0, 2.0, 200.0], [0, 1, 1.0, 100.0], [1, 1, 3.0, 300.0]]
    triplets = sp.coo_matrix((np.array([3.0, 1.0, 2.0]), (np.array([1, 0, 0]), np.array([1, 1, 0]))),
                             shape=(2, 2))
    base = Interactions.from_matrix(sp.csr_matrix(np.ones((2, 2))))
    for built in (Interactions.from_matrix(unsorted, timestamps=[100.0, 200.0, 300.0]),
                  Interactions.from_matrix(triplets, timestamps=[300.0, 100.0, 200.0]),
                  Interactions.from_matrix(unsorted.tocsc(), timestamps=[200.0, 100.0, 300.0]),
                  base.with_matrix(unsorted, timestamps=[100.0, 200.0, 300.0])):
        assert built.to_frame().to_numpy().tolist() == expected
        assert built.matrix.has_sorted_indices
    assert unsorted.indices.tolist() == [1, 0, 1] and not unsorted.has_sorted_indices


def test_with_matrix_refuses_what_from_matrix_refuses():
    """A pair stored twice (it was kept twice, one pair counted as two interactions), a complex
    value (its imaginary part was dropped) and a dense array."""
    data = Interactions.from_matrix(sp.csr_matrix(np.eye(2)))
    twice = sp.csr_matrix((np.array([1.0, 2.0]), np.array([0, 0]), np.array([0, 2, 2])), shape=(2, 2))
    with pytest.raises(ReclabError, match=r"with_matrix got 1 repeated \(user, item\) entries"):
        data.with_matrix(twice)
    for build in (data.with_matrix, Interactions.from_matrix):
        with pytest.raises(ReclabError, match="complex numbers"):
            build(sp.csr_matrix(np.eye(2) * (1 + 1j)))
    with pytest.raises(ReclabError, match="needs a scipy.sparse matrix, got ndarray"):
        data.with_matrix(np.eye(2))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 5)), min_size=1, max_size=40))
def test_random_frames_round_trip(rows):
    df = pd.DataFrame(rows, columns=["user", "item", "rating"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = Interactions.from_frame(df)
    last = df.drop_duplicates(["user", "item"], keep="last").sort_values(["user", "item"])
    assert len(caught) == (len(last) < len(df))   # a warning exactly when rows were dropped
    back = data.to_frame()
    assert back[["user", "item"]].values.tolist() == last[["user", "item"]].values.tolist()
    assert back["rating"].tolist() == last["rating"].astype(float).tolist()
    assert data.matrix.max() <= df["rating"].max()


def test_load_interactions_refuses_a_damaged_or_foreign_file_naming_it(tmp_path):
    """A file that is no interactions file is refused with a ReclabError naming it: it raised
    numpy's and zipfile's own errors (BadZipFile for a truncated file, 'pickled data' for a text
    file, KeyError 'shape is not a file in the archive' for another .npz, a CRC error)."""
    from reclab.data import load_interactions, save_interactions
    data = Interactions.from_frame(frame(user=[1, 1, 2], item=[1, 2, 2], rating=[4.0, 3.0, 5.0],
                                         time=[1.0, 2.0, 3.0]), timestamp="time")
    good = save_interactions(tmp_path / "good.npz", data)
    raw = good.read_bytes()
    flipped = bytearray(raw)
    flipped[raw.index(b"\x93NUMPY") + 130] ^= 0xFF   # in the values of the first array (a CRC error)
    files = {"truncated.npz": raw[:len(raw) // 2], "text.npz": b"user,item\n1,2\n", "empty.npz": b"",
             "flipped.npz": bytes(flipped)}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "foreign.npz", weights=np.arange(3))
    np.savez(tmp_path / "altered.npz", indptr=np.array([0, 5]), indices=np.array([0]), data=np.array([1.0]),
             shape=np.array([1, 1]), user_ids=np.array([1]), item_ids=np.array([1]))
    for name, message in [("truncated.npz", "is not a readable interactions file"),
                          ("text.npz", r"is not a readable interactions file: not an .npz archive"),
                          ("empty.npz", r"is not a readable interactions file: not an .npz archive \(it is empty\)"),
                          ("flipped.npz", r"is not a readable interactions file \(truncated or corrupt\?\)"),
                          ("foreign.npz", r"is not an interactions file: it has no indptr, .* \(it holds weights\)"),
                          ("altered.npz", "holds arrays that make no interactions")]:
        with pytest.raises(ReclabError, match=f"{name} {message}"):
            load_interactions(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="no interactions file at"):
        load_interactions(tmp_path / "missing.npz")
    assert load_interactions(good).fingerprint() == data.fingerprint()


def test_from_matrix_keeps_ids_as_from_frame_does_so_they_survive_a_file(tmp_path):
    """Python ints in an object array (pandas' object column, ``.unique()``) are integer ids: they
    were kept as objects, which save_interactions wrote as text, so the file read back held the
    users '1', '2' (no longer user 1), or was refused for ids 2, 10 ('10' sorts before '2')."""
    from reclab.data import load_interactions, save_interactions
    matrix = sp.csr_matrix(np.eye(2, dtype=np.float32))
    for ids in (np.array([1, 2], dtype=object), np.array([2, 10], dtype=object)):
        data = Interactions.from_matrix(matrix, user_ids=ids, item_ids=np.array(["a", "b"], dtype=object))
        assert data.user_ids.dtype == np.int64
        back = load_interactions(save_interactions(tmp_path / "ids.npz", data))
        assert back.user_ids.tolist() == ids.tolist() and back.user_ids.dtype == np.int64
        assert back.user_index(ids[1]) == 1 and back.fingerprint() == data.fingerprint()
    with pytest.raises(ReclabError, match=r"user_ids mix types \['int', 'str'\]"):
        Interactions.from_matrix(matrix, user_ids=np.array([1, "a"], dtype=object))
    with pytest.raises(ReclabError, match="item ids must be integers or strings, got values of kind 'bytes'"):
        Interactions.from_matrix(matrix, item_ids=np.array([b"a", b"b"], dtype=object))
