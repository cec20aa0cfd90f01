"""Loading MovieLens: the real files in RECLAB_DATA_DIR, the lookup order, and each file format."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reclab import ReclabError, datasets


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty data folder and cache, with the environment unable to point anywhere else."""
    monkeypatch.delenv("RECLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("RECLAB_CACHE_DIR", raising=False)
    # An unreachable URL: a test that falls through to downloading fails instead of fetching.
    monkeypatch.setenv("RECLAB_DOWNLOAD_URL", "http://127.0.0.1:9/nothing-here")
    (tmp_path / "data").mkdir()
    return tmp_path / "data", tmp_path / "cache"


# -- real data --------------------------------------------------------------------------------
@pytest.mark.usefixtures("data_dir")  # loads through RECLAB_DATA_DIR: the lookup is under test
def test_ml100k_facts(tmp_path):
    data = datasets.load("ml-100k", download=False, cache_dir=tmp_path)
    assert (data.n_users, data.n_items, data.nnz) == (943, 1682, 100_000)
    assert round(float(np.mean(data.matrix.data, dtype=np.float64)), 5) == 3.52986
    assert set(np.unique(data.matrix.data)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert data.timestamps is not None and data.timestamps.min() >= 874_724_710
    toy_story = data.item_index(1)
    assert data.items.loc[toy_story, "title"] == "Toy Story (1995)"
    assert data.items.loc[toy_story, "genres"] == "Animation|Children's|Comedy"
    # u.item is ISO-8859-1: a title with an accented letter decodes to the right character.
    assert any("é" in title for title in data.items["title"])
    assert data.items["title"].notna().all()


def test_ml_latest_small_facts(tmp_path, shared_path):
    shared_path("ml-latest-small/ratings.csv")
    data = datasets.load("ml-latest-small", download=False, cache_dir=tmp_path)
    assert (data.n_users, data.n_items, data.nnz) == (610, 9724, 100_836)
    assert round(float(np.mean(data.matrix.data, dtype=np.float64)), 5) == 3.50156
    assert 0.5 in data.matrix.data and 4.5 in data.matrix.data
    assert data.titles([data.item_index(1)])[0] == "Toy Story (1995)"
    assert data.items.loc[data.item_index(1), "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    # CRLF line endings must not leak into the last column.
    assert not data.items["genres"].str.contains("\r").any()
    assert data.items["title"].notna().all()


def test_shared_zip_in_data_dir_is_verified_and_extracted_into_the_cache(isolated, shared_path):
    source = shared_path("zips/ml-latest-small.zip")
    data_dir, cache = isolated
    (data_dir / "zips").mkdir()
    shutil.copy(source, data_dir / "zips" / "ml-latest-small.zip")
    from_zip = datasets.load("ml-latest-small", data_dir=data_dir, download=False, cache_dir=cache)
    assert (cache / "ml-latest-small" / "ratings.csv").is_file()
    assert sorted(data_dir.rglob("*")) == [data_dir / "zips", data_dir / "zips" / "ml-latest-small.zip"]
    shared = shared_path("ml-latest-small/ratings.csv").parents[1]
    from_folder = datasets.load("ml-latest-small", data_dir=shared, download=False, cache_dir=cache)
    assert from_zip.fingerprint() == from_folder.fingerprint()


def test_data_dir_comes_before_the_environment(isolated, monkeypatch):
    data_dir, cache = isolated
    write_ml1m(data_dir / "ml-1m", n_ratings=3)
    other = data_dir.parent / "other"
    write_ml1m(other / "ml-1m", n_ratings=5)
    monkeypatch.setenv("RECLAB_DATA_DIR", str(other))
    assert datasets.load("ml-1m", data_dir=data_dir, download=False, cache_dir=cache).nnz == 3
    assert datasets.load("ml-1m", download=False, cache_dir=cache).nnz == 5


# -- errors -----------------------------------------------------------------------------------
def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown data set 'ml-3m'.*'ml-100k'.*'ml-25m'"):
        datasets.load("ml-3m")


def test_not_found_without_download_says_where_it_looked_and_what_to_do(isolated):
    data_dir, cache = isolated
    with pytest.raises(ReclabError) as error:
        datasets.load("ml-100k", data_dir=data_dir, download=False, cache_dir=cache)
    message = str(error.value)
    assert str(data_dir / "ml-100k.zip") in message and str(cache / "ml-100k") in message
    assert "data_dir" in message and "download=True" in message
    assert not cache.exists() or not any(cache.iterdir())


def test_missing_data_dir_is_an_error(isolated):
    data_dir, cache = isolated
    with pytest.raises(ReclabError, match="is not a folder"):
        datasets.load("ml-100k", data_dir=data_dir / "typo", cache_dir=cache)


# -- formats (small files written here in each MovieLens layout) ------------------------------
def write_ml1m(folder: Path, n_ratings: int = 3) -> None:
    folder.mkdir(parents=True)
    lines = ["1::10::5::978300760", "1::20::3::978302109", "2::10::4::978301968",
             "2::30::1::978300275", "3::20::2::978824291"][:n_ratings]
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n")
    movies = ("10::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Sci-Fi\n"
              "20::Misérables, Les (1995)::Drama|Musical\n"
              "30::City of Lost Children, The (1995)::Adventure|Sci-Fi\n")
    (folder / "movies.dat").write_bytes(movies.encode("iso-8859-1"))


def test_ml1m_format(isolated):
    data_dir, cache = isolated
    write_ml1m(data_dir / "ml-1m", n_ratings=5)
    data = datasets.load("ml-1m", data_dir=data_dir, download=False, cache_dir=cache)
    assert (data.n_users, data.n_items, data.nnz) == (3, 3, 5)
    assert data.to_frame().iloc[0].tolist() == [1, 10, 5.0, 978300760.0]
    assert data.titles(data.item_index([10, 20])).tolist() == [
        "Star Wars: Episode IV - A New Hope (1977)", "Misérables, Les (1995)"]
    assert data.items.loc[data.item_index(20), "genres"] == "Drama|Musical"


def test_ml10m_format_and_folder_name(isolated):
    data_dir, cache = isolated
    folder = data_dir / "ml-10M100K"  # the name the GroupLens archive extracts to
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n7::122::0.5::868245777\n")
    (folder / "movies.dat").write_bytes(
        "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::(no genres listed)\n".encode("utf-8"))
    data = datasets.load("ml-10m", data_dir=data_dir, download=False, cache_dir=cache)
    assert (data.n_users, data.n_items, data.nnz) == (2, 2, 3)
    assert sorted(data.matrix.data.tolist()) == [0.5, 4.5, 5.0]
    assert data.items["genres"].tolist() == ["Comedy|Romance", ""]


def test_csv_format_with_crlf_and_quoted_titles(isolated):
    data_dir, cache = isolated
    folder = data_dir / "ml-25m"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes(
        b"userId,movieId,rating,timestamp\r\n1,296,5.0,1147880044\r\n1,307,3.5,1147868828\r\n"
        b"2,296,0.5,1141415820\r\n")
    (folder / "movies.csv").write_bytes(
        'movieId,title,genres\r\n296,Pulp Fiction (1994),Comedy|Crime|Drama|Thriller\r\n'
        '307,"Three Colors: Blue (Trois couleurs: Bleu) (1993)",Drama\r\n'
        '999,"Unrated, The (2001)",(no genres listed)\r\n'.encode())
    data = datasets.load("ml-25m", data_dir=data_dir, download=False, cache_dir=cache)
    assert (data.n_users, data.n_items, data.nnz) == (2, 2, 3)
    assert data.titles(data.item_index([296, 307])).tolist() == [
        "Pulp Fiction (1994)", "Three Colors: Blue (Trois couleurs: Bleu) (1993)"]
    assert data.items["genres"].tolist() == ["Comedy|Crime|Drama|Thriller", "Drama"]
    assert data.timestamps.tolist() == [1147880044.0, 1147868828.0, 1141415820.0]


def test_synthetic_is_reexported():
    from reclab.synthetic import synthetic
    assert datasets.synthetic is synthetic


# -- a ratings file of the user's own ---------------------------------------------------------
def test_read_interactions_of_the_movielens_csv_equals_load(tmp_path, shared_path):
    """ml-latest-small's ratings.csv read as a file of one's own gives what load() gives, less
    titles and features; with movies.csv as its items file, the titles and genre features too."""
    ratings = shared_path("ml-latest-small/ratings.csv")
    mine = datasets.read_interactions(ratings, user="userId", item="movieId", timestamp="timestamp")
    known = datasets.load("ml-latest-small", download=False, cache_dir=tmp_path)
    assert (mine.matrix != known.matrix).nnz == 0
    assert np.array_equal(mine.user_ids, known.user_ids) and np.array_equal(mine.item_ids, known.item_ids)
    assert np.array_equal(mine.timestamps, known.timestamps)
    assert mine.items is None and mine.item_features is None
    assert mine.titles([mine.item_index(1)]).tolist() == ["1"]   # no titles: the id stands in
    # with movies.csv as the items file: load()'s titles, and its genre features
    mine = datasets.read_interactions(ratings, user="userId", item="movieId", items=ratings.parent / "movies.csv",
                                      genres="genres")
    assert np.array_equal(mine.titles(np.arange(mine.n_items)), known.titles(np.arange(known.n_items)))
    names = [name for name in mine.item_feature_names if name in known.item_feature_names]
    assert len(names) == 19 and set(mine.item_feature_names) - set(names) == {"genre=(no genres listed)"}
    mine_genres = mine.item_features[:, [list(mine.item_feature_names).index(name) for name in names]]
    known_genres = known.item_features[:, [list(known.item_feature_names).index(name) for name in names]]
    assert (mine_genres != known_genres).nnz == 0


def test_genres_of_an_items_file_are_names_whatever_the_spaces_around_them(tmp_path):
    """'Drama | Comedy' made the features genre=Drama  and genre= Comedy, other features than the
    genre=Drama of 'Drama': ContentKNN and HybridALS saw two films of one genre as unrelated."""
    (tmp_path / "r.csv").write_text("user,item,rating\n1,10,5\n1,11,3\n2,12,4\n")
    (tmp_path / "i.csv").write_text("item,title,genres\n10,A,Drama | Comedy\n11,B,Drama\n12,C,Comedy|Drama \n")
    data = datasets.read_interactions(tmp_path / "r.csv", items=tmp_path / "i.csv", genres="genres")
    assert data.item_feature_names.tolist() == ["genre=Comedy", "genre=Drama"]
    assert data.item_features.toarray().tolist() == [[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]


@pytest.mark.filterwarnings("ignore:.*rows repeat an earlier")   # one of its files repeats a pair on purpose
def test_read_interactions_of_text_and_parquet_files(tmp_path):
    """Named columns, a file without header (columns _c0, _c1, ...), implicit feedback, ISO 8601
    date-times, a repeated pair (its latest row kept), Parquet, and nrows."""
    (tmp_path / "r.csv").write_text("who,what,stars,when\nann,x,4,2024-01-01\nbob,x,2,2024-01-02T10:00:00\n"
                                    "\nann,y,5,2024-01-03 12:00+02:00\nann,x,3,2024-01-04\n")
    data = datasets.read_interactions(tmp_path / "r.csv", user="who", item="what", rating="stars",
                                      timestamp="when")
    assert data.user_ids.tolist() == ["ann", "bob"] and data.item_ids.tolist() == ["x", "y"]
    assert data.matrix.toarray().tolist() == [[3.0, 5.0], [2.0, 0.0]]   # ann's later x: 3
    assert data.timestamps.tolist() == [1704326400.0, 1704276000.0, 1704189600.0]
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    data = datasets.read_interactions(tmp_path / "u.data", user="_c0", item="_c1", rating=None,
                                      sep="\t", header=False)
    assert data.user_ids.tolist() == [186, 196] and data.matrix.data.tolist() == [1.0, 1.0]
    # a separator of two characters, as ML-1M's ratings.dat (pandas' C parser refused it with
    # low_memory), with the line of a bad value
    (tmp_path / "r.dat").write_text("1::1193::5::978300760\n\n2::661::3::978302109\n")
    dat = datasets.read_interactions(tmp_path / "r.dat", user="_c0", item="_c1", rating="_c2",
                                     timestamp="_c3", sep="::", header=False)
    assert dat.user_ids.tolist() == [1, 2] and sorted(dat.matrix.data) == [3.0, 5.0]
    (tmp_path / "bad.dat").write_text("1::1193::5\n\n2::661::x\n")
    with pytest.raises(ReclabError, match="non-numeric value 'x' at row 3"):
        datasets.read_interactions(tmp_path / "bad.dat", user="_c0", item="_c1", rating="_c2", sep="::",
                                   header=False)
    frame = data.to_frame()
    frame.to_parquet(tmp_path / "r.parquet")
    again = datasets.read_interactions(tmp_path / "r.parquet")
    assert (again.matrix != data.matrix).nnz == 0 and np.array_equal(again.user_ids, data.user_ids)
    assert datasets.read_interactions(tmp_path / "u.data", user="_c0", item="_c1", rating="_c2",
                                      sep="\t", header=False, nrows=1).nnz == 1
    # nrows of Parquet reads the first row groups only, across their boundaries
    rows = pd.DataFrame({"user": [1, 2, 3, 4, 5], "item": [9, 8, 7, 6, 5], "rating": [1.0, 2, 3, 4, 5]})
    rows.to_parquet(tmp_path / "groups.parquet", row_group_size=2)
    first = datasets.read_interactions(tmp_path / "groups.parquet", nrows=3)
    assert first.user_ids.tolist() == [1, 2, 3] and sorted(first.matrix.data) == [1.0, 2.0, 3.0]


def test_ids_of_a_text_file_are_read_as_written(tmp_path):
    """"007" and "7" are two users (read as numbers they were one, and its 5-star row was dropped
    as a repeat); ids all written as integers are integers; an items file whose ids match none
    of the ratings' is refused rather than giving no titles."""
    (tmp_path / "r.csv").write_text("user,item,rating\n007,A1,5\n7,A1,1\n008,0042,3\n")
    data = datasets.read_interactions(tmp_path / "r.csv")
    assert data.user_ids.tolist() == ["007", "008", "7"] and data.item_ids.tolist() == ["0042", "A1"]
    assert data.nnz == 3
    (tmp_path / "n.csv").write_text("user,item,rating\n12,-3,5\n7,0,1\n18446744073709551615,0,2\n")
    data = datasets.read_interactions(tmp_path / "n.csv")
    assert data.item_ids.dtype == np.int64 and data.item_ids.tolist() == [-3, 0]
    assert data.user_ids.dtype == np.uint64 and data.user_ids.max() == 2 ** 64 - 1
    (tmp_path / "s.csv").write_text("user, item, rating\n1, 10, 4.0\n 2 ,A1 , 3\n")   # spaces: layout
    data = datasets.read_interactions(tmp_path / "s.csv")
    assert data.user_ids.tolist() == [1, 2] and data.item_ids.tolist() == ["10", "A1"]
    assert data.matrix.data.tolist() == [4.0, 3.0]
    (tmp_path / "z.csv").write_text("user,item,rating\n-0,1,5\n0,1,2\n")   # "-0" was read as 0
    data = datasets.read_interactions(tmp_path / "z.csv")
    assert data.user_ids.tolist() == ["-0", "0"] and data.nnz == 2


@pytest.mark.parametrize("header", [True, False])
def test_ids_and_titles_that_look_missing_are_names(tmp_path, header):
    """pandas reads "NA", "None", "null" and "nan" as missing values: as ids and titles they are
    names (pandas made the user "NA" a missing id, and the film "None" lost its title). An empty
    id is still missing, and so is a rating written "NA"."""
    top = "user,item,rating\n" if header else ""
    (tmp_path / "r.csv").write_text(top + "NA,None,4\nnull,nan,3\nbob,None,1\n")
    (tmp_path / "items.csv").write_text(("title,item\n" if header else "") + "NA,None\nNone,nan\n")
    columns = {} if header else {"user": "_c0", "item": "_c1", "rating": "_c2", "title": "_c0"}
    data = datasets.read_interactions(tmp_path / "r.csv", header=header, items=tmp_path / "items.csv",
                                      **columns)
    assert data.user_ids.tolist() == ["NA", "bob", "null"] and data.item_ids.tolist() == ["None", "nan"]
    assert data.nnz == 3
    assert data.items["title"].tolist() == ["NA", "None"]
    (tmp_path / "bad.csv").write_text(top + "ann,x,4\nbob,y,NA\n")
    with pytest.raises(ReclabError, match="rating column '(rating|_c2)' has a missing value \\(NaN\\) "
                                          "at row 3" if header else "at row 2"):
        datasets.read_interactions(tmp_path / "bad.csv", header=header, **columns)
    (tmp_path / "empty_id.csv").write_text(top + "ann,x,4\n,y,3\n")
    with pytest.raises(ReclabError, match="user column has a missing id"):
        datasets.read_interactions(tmp_path / "empty_id.csv", header=header, **columns)
    (tmp_path / "items.csv").write_text("item,title\n0012,Twelve\n")
    (tmp_path / "r2.csv").write_text("user,item,rating\n1,12,5\n")
    with pytest.raises(ReclabError, match=r"r2.csv: none of the 1 ids that index items is an item id of "
                                          r"the interactions: items has '0012', the interactions 12"):
        datasets.read_interactions(tmp_path / "r2.csv", items=tmp_path / "items.csv")


@pytest.mark.parametrize("text, columns, message", [
    ("u,i,r\n1,2,4\n\n2,3,five\n", {}, "rating column 'r' has a non-numeric value 'five' at row 4; "
                                       "ratings must be numbers (rows numbered as the lines of the file)"),
    ("u,i,r\n1,2,4\n,3,5\n", {}, "user column has a missing id at row 3"),
    ("u,i,r\n1,2,4\n", {"user": "userId"}, "user column 'userId' not found; columns are ['u', 'i', 'r']"),
    ("u,i,r,t\n1,2,4,1600000000\n2,2,3,2020-10-29T09:08:32\n", {"timestamp": "t"},
     "timestamp column 't' mixes numbers (seconds) and date-times, such as '2020-10-29T09:08:32' at row 3"),
    ("u,i,r,t\n1,2,4,2024-01-01\n2,2,4,yesterday\n", {"timestamp": "t"},
     "timestamp column 't' has the value 'yesterday' at row 3, neither a number (seconds) nor an ISO 8601"),
    ("u;i;r\n1;2;4\n", {}, "user column 'u' not found; columns are ['u;i;r']"),
    ("", {}, "cannot be read with sep=',', encoding='utf-8'"),
    ("u,i,r\n", {}, "no interactions: the table is empty"),
])
def test_a_bad_ratings_file_is_named_with_its_problem(tmp_path, text, columns, message):
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    arguments = {"user": "u", "item": "i", "rating": "r", **columns}
    with pytest.raises(ReclabError) as error:
        datasets.read_interactions(path, **arguments)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_a_missing_ratings_file_is_named(tmp_path):
    with pytest.raises(ReclabError, match=r"ratings file '.*nothere.csv' not found"):
        datasets.read_interactions(tmp_path / "nothere.csv")
    with pytest.raises(ReclabError, match="is not a file"):
        datasets.read_interactions(tmp_path)


def test_a_ratings_file_in_another_encoding_is_read_with_its_encoding(tmp_path):
    """Text that is not UTF-8 says so and how to give its encoding; with it, the ids read right.
    A UTF-8 byte-order mark (as spreadsheets write) does not become part of the first column's name."""
    path = tmp_path / "latin.csv"
    path.write_bytes("u,i,r\n1,Café,4\n".encode("latin-1"))
    with pytest.raises(ReclabError, match=r"latin.csv: is not utf-8 text \(.*\); give its "
                                          r"encoding, such as encoding='latin-1'"):
        datasets.read_interactions(path, user="u", item="i", rating="r")
    assert datasets.read_interactions(path, user="u", item="i", rating="r",
                                      encoding="latin-1").item_ids.tolist() == ["Café"]
    (tmp_path / "bom.csv").write_bytes("userId,movieId\r\n1,2\r\n".encode("utf-8-sig"))
    assert datasets.read_interactions(tmp_path / "bom.csv", user="userId", item="movieId", rating=None).nnz == 1


@pytest.mark.parametrize("lines", [["1,2,3,4", "5,6,7,8"], ["1,2,3,", "5,6,7,"]])
def test_read_interactions_refuses_rows_with_more_fields_than_the_header(tmp_path, lines):
    """A first row with one field more than the header made pandas take its first field for an
    index, shifting the rest: '1,2,3,4' under 'user,item,rating' was read as user 2, item 3,
    rating 4 without a word (with a separator at each line's end, rating became missing)."""
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(["user,item,rating", *lines]) + "\n")
    with pytest.raises(ReclabError, match=r"ratings.csv: its first row has more fields than the 3 "
                                          r"columns its header names \(user, item, rating\)"):
        datasets.read_interactions(path)
    path.write_text("user::item::rating\n1::2::3::4\n")
    with pytest.raises(ReclabError, match="its first row has more fields than the 3 columns"):
        datasets.read_interactions(path, sep="::")
    path.write_text("user,item,rating,\n1,2,3,\n5,6,7,\n")   # the header's last column is unnamed: read
    assert datasets.read_interactions(path).to_frame()[["user", "item", "rating"]].values.tolist() == [
        [1, 2, 3.0], [5, 6, 7.0]]
