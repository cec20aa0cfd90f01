"""Post-processing tables on a small two-genre catalog whose cosine similarities are hand-computed.

Items 101-103 are science fiction, 104-106 romance. Users 1-3 rate all science fiction 5, users
4-6 all romance 5, user 7 rates 101 and 104, user 8 rates 102. Column cosines (ItemKNN):
s(101, 103) = 75 / (10 * sqrt(75)) = 0.866, s(101, 102) = 75 / (10 * 10) = 0.75,
s(101, 104) = 25 / (10 * 10) = 0.25, s(102, 103) = 0.866, s(103, 104) = 0.
"""

import numpy as np
import pandas as pd
import pytest

from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.models import SVD, ItemKNN, Popularity
from reclab.postprocess import because_you_watched, recommendations_table, similar_items_table

TITLES = {101: "Alien", 102: "Blade Runner", 103: "Solaris", 104: "Amelie", 105: "Casablanca",
          106: "Notting Hill"}
S_13, S_12, S_14 = 75 / (10 * np.sqrt(75)), 0.75, 0.25


@pytest.fixture(scope="module")
def data():
    pairs = [(u, i) for u in (1, 2, 3) for i in (101, 102, 103)]
    pairs += [(u, i) for u in (4, 5, 6) for i in (104, 105, 106)]
    pairs += [(7, 101), (7, 104), (8, 102)]
    frame = pd.DataFrame(pairs, columns=["user", "item"]).assign(rating=5.0)
    items = pd.DataFrame({"title": list(TITLES.values())}, index=list(TITLES))
    return Interactions.from_frame(frame, items=items)


@pytest.fixture(scope="module")
def knn(data):
    return ItemKNN(neighbors=50).fit(data)


def test_recommendations_table_ranks_with_titles_and_original_ids(knn, data):
    table = recommendations_table(knn, data, [8, 1], n=4)
    assert list(table.columns) == ["user", "rank", "item", "title", "score"]
    user8 = table[table.user == 8]
    # 103 and 101 are neighbours of the watched 102; the rest score 0 and follow in index order.
    assert user8.item.tolist() == [103, 101, 104, 105]
    assert user8["rank"].tolist() == [1, 2, 3, 4]
    assert user8.title.tolist() == ["Solaris", "Alien", "Amelie", "Casablanca"]
    np.testing.assert_allclose(user8.score, [5 * S_13, 5 * S_12, 0, 0], rtol=1e-6)
    # User 1 has seen all science fiction: only the three romances are left, no padding rows.
    assert table[table.user == 1].item.tolist() == [104, 105, 106]


def test_similar_items_table(knn, data):
    table = similar_items_table(knn, data, 101, n=3)
    assert table.item.tolist() == [103, 102, 104]
    assert table.title.tolist() == ["Solaris", "Blade Runner", "Amelie"]
    np.testing.assert_allclose(table.similarity, [S_13, S_12, S_14], rtol=1e-6)
    assert table.attrs["caption"] == "Because you watched Alien"
    assert len(similar_items_table(knn, data, 101, n=50)) == 5   # the catalog minus the item


def test_because_you_watched(knn, data):
    table = because_you_watched(knn, data, user=7, item=103, n=3)
    assert table.item.tolist() == [101, 104] and table.title.tolist() == ["Alien", "Amelie"]
    np.testing.assert_allclose(table.similarity, [S_13, 0.0], atol=1e-6)
    assert table.rating.tolist() == [5.0, 5.0]
    # The item itself is never its own explanation.
    alone = because_you_watched(knn, data, user=7, item=101, n=3)
    assert alone.item.tolist() == [104]
    np.testing.assert_allclose(alone.similarity, [S_14], rtol=1e-6)
    assert because_you_watched(knn, data, user=8, item=102).empty


def test_factor_model_tables_match_its_similar_items(data):
    model = SVD(factors=2, seed=0).fit(data)
    table = similar_items_table(model, data, 104, n=5)
    ids, scores = model.similar_items(int(data.item_index([104])[0]), n=5)
    assert table.item.tolist() == data.item_ids[ids].tolist()
    np.testing.assert_array_equal(table.similarity, scores)


def test_errors(knn, data):
    popularity = Popularity().fit(data)
    with pytest.raises(TypeError, match="Popularity has no item similarities"):
        similar_items_table(popularity, data, 101)
    with pytest.raises(TypeError, match="Popularity has no item similarities"):
        because_you_watched(popularity, data, 7, 103)
    with pytest.raises(ReclabError, match="999"):
        recommendations_table(knn, data, [999])
    other = data.restrict(users=np.arange(4))
    with pytest.raises(ReclabError, match="fitted on"):
        recommendations_table(knn, other, [1])
