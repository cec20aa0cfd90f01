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
from reclab.datasets import synthetic
from reclab.errors import ReclabError
from reclab.models import SVD, Bias, ExplicitALS, ImplicitALS, ItemKNN, Popularity
from reclab.postprocess import (because_you_watched, explain_recommendations, has_item_similarities,
                                recommendations_table, similar_items_table)
from reclab.models import SparkALS

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


def test_because_you_watched_explains_with_what_the_user_liked_only():
    # User 9 loved Alien (5) and hated Solaris (1); Blade Runner is closer to Solaris.
    pairs = [(u, i, 5.0) for u in (1, 2, 3) for i in (101, 102, 103)] + [(9, 101, 5.0), (9, 103, 1.0)]
    frame = pd.DataFrame(pairs, columns=["user", "item", "rating"])
    data = Interactions.from_frame(frame, items=pd.DataFrame({"title": list(TITLES.values())[:3]},
                                                             index=[101, 102, 103]))
    knn = ItemKNN(neighbors=50).fit(data)
    alien, blade_runner, solaris = data.item_index([101, 102, 103])
    to_solaris, to_alien = knn.item_similarity(blade_runner, np.array([solaris, alien]))
    assert to_solaris > to_alien > 0
    table = because_you_watched(knn, data, user=9, item=102, n=3)
    assert table.title.tolist() == ["Alien"] and table.rating.tolist() == [5.0]
    np.testing.assert_allclose(table.similarity, [to_alien], rtol=1e-6)


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


# -- which models explain, and how ---------------------------------------------------------------
COMPARES_ITEMS = {Popularity: False, Bias: False, ItemKNN: True, SVD: True, ExplicitALS: True,
                  ImplicitALS: True}


@pytest.mark.parametrize("make", [Popularity, Bias, ItemKNN, lambda: SVD(factors=2, seed=0),
                                  lambda: ExplicitALS(factors=2, seed=0),
                                  lambda: ImplicitALS(factors=2, seed=0)],
                         ids=["Popularity", "Bias", "ItemKNN", "SVD", "ExplicitALS", "ImplicitALS"])
def test_has_item_similarities_tells_whether_explanations_work(make, data):
    model = make()
    expected = COMPARES_ITEMS[type(model)]
    assert has_item_similarities(model) is expected   # unfitted: stage 4 decides before loading
    model.fit(data)
    assert has_item_similarities(model) is expected
    if expected:
        assert because_you_watched(model, data, user=7, item=103).item.tolist() in ([101, 104], [104, 101])
    else:
        with pytest.raises(TypeError, match=f"{type(model).__name__} has no item similarities"):
            because_you_watched(model, data, user=7, item=103)


def test_has_item_similarities_of_spark_als_and_of_a_non_model():
    assert has_item_similarities(SparkALS()) is True   # a factor model; needs no Spark session
    with pytest.raises(ReclabError, match="model must be a reclab model"):
        has_item_similarities("ImplicitALS")


def test_explain_recommendations_by_hand(knn, data):
    recommendations = recommendations_table(knn, data, [8, 7], n=2)
    assert recommendations.item.tolist() == [103, 101, 103, 105]
    table = explain_recommendations(knn, data, recommendations, n=3)
    assert list(table.columns) == ["user", "recommended", "rank", "item", "title", "rating", "similarity"]
    # User 8 watched only Blade Runner: it explains both Solaris (0.866) and Alien (0.75).
    # User 7 watched Alien and Amelie: both explain each recommendation, the more similar first;
    # Solaris is as close to Alien as Casablanca is to Amelie (0.866), and orthogonal to the other.
    assert table.user.tolist() == [8, 8, 7, 7, 7, 7]
    assert table.recommended.tolist() == ["Solaris", "Alien"] + ["Solaris"] * 2 + ["Casablanca"] * 2
    assert table["rank"].tolist() == [1, 1, 1, 2, 1, 2]
    assert table.item.tolist() == [102, 102, 101, 104, 104, 101]
    assert table.title.tolist() == ["Blade Runner", "Blade Runner", "Alien", "Amelie", "Amelie", "Alien"]
    assert table.rating.tolist() == [5.0] * 6
    np.testing.assert_allclose(table.similarity, [S_13, S_12, S_13, 0.0, S_13, 0.0], atol=1e-6)
    # n caps the explanations per recommendation.
    assert explain_recommendations(knn, data, recommendations, n=1)["rank"].tolist() == [1, 1, 1, 1]


def test_explain_recommendations_edge_cases(knn, data):
    recommendations = recommendations_table(knn, data, [7], n=2)
    empty = explain_recommendations(knn, data, recommendations.iloc[:0])
    assert empty.empty
    assert list(empty.columns) == ["user", "recommended", "rank", "item", "title", "rating", "similarity"]
    with pytest.raises(ReclabError, match="recommendations has no column 'title'"):
        explain_recommendations(knn, data, recommendations.drop(columns="title"))
    with pytest.raises(TypeError, match="Popularity has no item similarities"):
        explain_recommendations(Popularity().fit(data), data, recommendations)


def test_factor_model_explanations_are_the_most_similar_watched_items():
    # Without item metadata a title is the item id, so each recommendation's title names one item.
    data = Interactions.from_frame(synthetic(seed=0, n_users=30, n_items=40, n_ratings=400).to_frame())
    model = ImplicitALS(factors=8, regularization=1.0, seed=0).fit(data)
    recommendations = recommendations_table(model, data, data.user_ids[:5], n=4)
    table = explain_recommendations(model, data, recommendations, n=3)
    # Every user liked at least 3 items, none of them recommended: three explanations each.
    assert len(table) == 3 * len(recommendations) == 60
    for row in recommendations.itertuples(index=False):
        explained = table[(table.user == row.user) & (table.recommended == row.title)]
        assert explained["rank"].tolist() == [1, 2, 3]
        user_row = data.matrix[data.user_index([row.user])[0]]
        liked = user_row.data >= user_row.data.mean()   # what the user rated at or above their mean
        watched, ratings = data.item_ids[user_row.indices[liked]], user_row.data[liked]
        assert set(explained.item) <= set(watched) and row.item not in set(explained.item)
        similarity = model.item_similarity(int(data.item_index([row.item])[0]), user_row.indices[liked])
        best = np.argsort(-similarity, kind="stable")[:3]
        assert explained.item.tolist() == watched[best].tolist()
        np.testing.assert_array_equal(explained.similarity, similarity[best])
        np.testing.assert_array_equal(explained.rating, ratings[best])
