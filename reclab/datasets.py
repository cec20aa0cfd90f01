"""MovieLens data sets: find, download, verify, extract and parse them into ``Interactions``.

``load(name)`` looks for the data in this order and uses the first hit:

1. the ``data_dir`` argument, then the folder named by the environment variable
   ``RECLAB_DATA_DIR``: each is searched for the extracted folder (``<dir>/ml-100k/u.data``) or the
   original archive (``<dir>/ml-100k.zip`` or ``<dir>/zips/ml-100k.zip``); an archive found there is
   verified and extracted into the cache, never next to itself (the folder may be read-only);
2. the cache folder (``cache_dir``, else ``RECLAB_CACHE_DIR``, else ``~/.cache/reclab``);
3. a download from GroupLens (base URL overridable with ``RECLAB_DOWNLOAD_URL``) into the cache.

Every archive is checked against its known byte size and sha256 before it is used. A download
goes to ``<name>.zip.part`` and is renamed only after the checks pass, so an interrupted download
never leaves a file that looks complete; extraction goes to a temporary folder renamed at the end,
and refuses members that would land outside it (absolute paths, ``..``, symlinks).

The MovieLens licenses forbid redistribution of most of these files: reclab downloads them from
GroupLens for each user and never ships them.

A ratings file of the user's own is read by :func:`read_interactions` (from
:mod:`reclab.data.ratings_file`, re-exported here beside the loaders).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclab._io import atomic_write
from reclab.data import Interactions, genre_features, indicator_features
from reclab.data.ratings_file import read_interactions
from reclab.errors import ReclabError
from reclab.synthetic import synthetic

__all__ = ["NAMES", "fetch", "load", "read_interactions", "synthetic"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://files.grouplens.org/datasets/movielens"
_CHUNK = 1 << 20

_RATING_DTYPES = {"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.int64}
# Rows read at once when a malformed file is read again as text to find the bad line.
_TEXT_CHUNK_ROWS = 1 << 20


# -- parsers ----------------------------------------------------------------------------------
def _damaged(path: Path, problem: str) -> ReclabError:
    return ReclabError(f"{path}: {problem}; the file was edited or damaged: replace the "
                       f"{path.parent.name}/ folder with a fresh copy from the MovieLens archive")


def _first_bad_value(path: Path, dtypes: dict, options: dict) -> tuple[int, str, str, str] | None:
    """(line number, column, value, what was expected) of the first value that does not parse.

    Only called after the fast typed read failed, to say where: the file is read again as text,
    in chunks (a damaged ml-25m must not need gigabytes of strings), blank lines kept so that
    row numbers are line numbers.
    """
    first_line = 2 if options.get("header") == 0 else 1
    try:
        chunks = pd.read_csv(path, **{**options, "dtype": str, "keep_default_na": False,
                                      "skip_blank_lines": False, "chunksize": _TEXT_CHUNK_ROWS})
        for chunk in chunks:
            blank = (chunk == "").all(axis=1).to_numpy()
            found = None
            for column, dtype in dtypes.items():
                kind = np.dtype(dtype).kind
                if column not in chunk.columns or kind not in "iuf":
                    continue
                raw = chunk[column]
                number = pd.to_numeric(raw.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
                if kind in "iu":
                    info = np.iinfo(dtype)
                    fine = (np.isfinite(number) & (number == np.round(number))
                            & (number >= info.min) & (number <= info.max))
                    expected = f"an integer in [{info.min}, {info.max}]"
                else:
                    fine = np.isfinite(number)
                    expected = "a finite number"
                bad = np.flatnonzero(~fine & ~blank)
                if bad.size and (found is None or bad[0] < found[0]):
                    found = (int(bad[0]), column, raw.iloc[bad[0]], expected)
            if found is not None:
                row, column, value, expected = found
                return int(chunk.index[row]) + first_line, column, value, expected
    except (ValueError, OSError):
        return None
    return None


def _read_table(path: Path, layout: str, dtypes: dict, **options) -> pd.DataFrame:
    """``pandas.read_csv`` of one MovieLens file with typed columns.

    A malformed file raises ``ReclabError`` naming the file, the line and the bad value (or the
    parser's complaint), with ``layout``, an example of a good line; a missing file names itself.
    """
    try:
        return pd.read_csv(path, dtype=dtypes, **options)
    except FileNotFoundError:
        raise ReclabError(f"{path} is missing: the {path.parent.name}/ folder is incomplete; replace "
                          f"it with a fresh copy from the MovieLens archive") from None
    except (ValueError, OverflowError) as error:   # pandas' ParserError and UnicodeDecodeError included
        found = _first_bad_value(path, dtypes, options)
        if found is not None:
            line, column, value, expected = found
            problem = f"line {line}: {column} is {value!r}, expected {expected} (lines look like {layout!r})"
        else:
            problem = (f"cannot be parsed ({type(error).__name__}: {str(error).strip()}); lines look "
                       f"like {layout!r}")
        raise _damaged(path, problem) from None


def _frames(ratings: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    items = items.set_index("item")[["title", "genres"]]
    return ratings, items


def _read_ml100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = _read_table(folder / "u.data", "196\t242\t3\t881250949", _RATING_DTYPES,
                          sep="\t", header=None, names=list(_RATING_DTYPES))
    genres = _read_table(folder / "u.genre", "Action|1", {"flag": np.int64}, sep="|", header=None,
                         names=["genre", "flag"], encoding="iso-8859-1").sort_values("flag")["genre"].tolist()
    # QUOTE_NONE: a title is never quoted in u.item, and a stray '"' must not swallow lines.
    # The genre flags typed too: a missing one (a line cut short) was NaN, which is True as a bool.
    items = _read_table(folder / "u.item", "1|Toy Story (1995)|01-Jan-1995||http://...|0|0|0|1|1|1|0|...",
                        {"item": np.int64, "title": str, **dict.fromkeys(genres, np.int8)}, sep="|",
                        header=None, encoding="iso-8859-1",
                        quoting=3, names=["item", "title", "release_date", "video_release_date",
                                          "imdb_url"] + genres)
    flags = items[genres].to_numpy(dtype=bool)
    names = np.array(genres, dtype=object)
    items["genres"] = ["|".join(names[row]) for row in flags]
    return _frames(ratings, items)


def _read_dat(folder: Path, movies_encoding: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    # '::' as a separator would need pandas' slow python engine; splitting on ':' with the C engine
    # gives empty columns between the fields instead, which usecols drops (ids and ratings hold no ':').
    ratings = _read_table(folder / "ratings.dat", "1::1193::5::978300760", _RATING_DTYPES, sep=":",
                          header=None, names=["user", "_1", "item", "_2", "rating", "_3", "timestamp"],
                          usecols=list(_RATING_DTYPES))[list(_RATING_DTYPES)]
    # Titles contain ':' ("Star Wars: Episode IV ..."), so movies.dat is split by hand.
    path = folder / "movies.dat"
    try:
        text = path.read_bytes().decode(movies_encoding)
    except FileNotFoundError:
        raise ReclabError(f"{path} is missing: the {folder.name}/ folder is incomplete; replace it "
                          f"with a fresh copy from the MovieLens archive") from None
    except UnicodeDecodeError as error:
        raise _damaged(path, f"byte {error.start} is not {movies_encoding} text") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("::", 2)
        if len(fields) != 3 or not fields[0].strip().isdigit():
            raise _damaged(path, f"line {number} is {line[:80]!r}, expected 'id::title::genres' "
                                 f"(lines look like '1::Toy Story (1995)::Animation|Children's|Comedy')")
        rows.append(fields)
    items = pd.DataFrame(rows, columns=["item", "title", "genres"])
    items["item"] = items["item"].astype(np.int64)
    items["genres"] = items["genres"].replace("(no genres listed)", "")
    return _frames(ratings, items)


def _read_csv(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    # The C parser treats '\r\n' as a line end, so the CRLF files of ml-latest-small need nothing more.
    ratings = _read_table(folder / "ratings.csv", "1,296,5.0,1147880044", _RATING_DTYPES, header=0,
                          names=list(_RATING_DTYPES))
    items = _read_table(folder / "movies.csv", "1,Toy Story (1995),Adventure|Animation|Children",
                        {"item": np.int64, "title": str, "genres": str}, header=0,
                        names=["item", "title", "genres"], encoding="utf-8", keep_default_na=False)
    items["genres"] = items["genres"].replace("(no genres listed)", "")
    return _frames(ratings, items)


# -- content features ---------------------------------------------------------------------------
# ML-1M's age groups (its users.dat codes), used for ML-100K's exact ages as well.
_AGE_GROUPS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"),
               (56, "50-55"), (np.inf, "56+"))
# A tag is a feature only when it was put on at least this many of the rated movies: a tag of one
# movie makes it similar to nothing.
_MIN_TAG_MOVIES = 2


def _item_features(data: Interactions, folder: Path):
    """Genres, release decade (from the year in the title) and, where the set has ``tags.csv``,
    TF-IDF tag weights of the rated items: (CSR float32 items x features, names).

    Tags are lower-cased and stripped; a tag's weight for a movie is ``tf * log(n / df)`` (``tf``:
    how often the tag was put on the movie, ``df``: movies carrying it, ``n``: rated movies), each
    movie's tag block scaled to unit length; tags on fewer than 2 movies are dropped.
    """
    n_items = data.n_items
    blocks = [genre_features(data.items["genres"])]
    years = pd.to_numeric(data.items["title"].astype(str).str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    dated = np.flatnonzero(years.notna().to_numpy())
    blocks.append(indicator_features(dated, (years.to_numpy()[dated] // 10 * 10).astype(int), n_items, "decade"))
    path = folder / "tags.csv"
    if path.is_file():
        tags = _read_table(path, "2,60756,funny,1445714994", {"user": np.int64, "item": np.int64, "tag": str},
                           header=0, names=["user", "item", "tag", "timestamp"], usecols=[0, 1, 2],
                           encoding="utf-8", keep_default_na=False)
        tags["tag"] = tags["tag"].str.strip().str.lower()
        tags = tags[(tags["tag"] != "") & tags["item"].isin(data.item_ids)]
        rows = data.item_index(tags["item"].to_numpy())
        names, columns = np.unique(tags["tag"].to_numpy(dtype=str), return_inverse=True)
        # Repeated (movie, tag) pairs are summed: the term frequency.
        counts = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(n_items, len(names)))
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        keep = np.flatnonzero(df >= _MIN_TAG_MOVIES)
        weights = counts[:, keep] @ sp.diags(np.log(n_items / df[keep]).astype(np.float32))
        norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
        weights = sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ weights
        blocks.append((weights, [f"tag={names[column]}" for column in keep]))
    matrix = sp.hstack([block for block, _ in blocks], format="csr", dtype=np.float32)
    return matrix, [name for _, block_names in blocks for name in block_names]


def _ml100k_user_features(data: Interactions, folder: Path):
    """Age group, gender and occupation of ML-100K's users (``u.user``): indicator features."""
    users = _read_table(folder / "u.user", "1|24|M|technician|85711",
                        {"user": np.int64, "age": np.int64, "gender": str, "occupation": str},
                        sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"],
                        encoding="iso-8859-1")
    missing = users[["gender", "occupation"]].isna().to_numpy()
    if missing.any():   # else the feature 'occupation=nan', shared by every such user
        row, column = np.argwhere(missing)[0]
        raise _damaged(folder / "u.user", f"user {users['user'].iloc[row]} has no "
                                          f"{['gender', 'occupation'][column]} (lines look like "
                                          f"'1|24|M|technician|85711')")
    users = users[users["user"].isin(data.user_ids)]
    rows = data.user_index(users["user"].to_numpy())
    bounds = np.array([bound for bound, _ in _AGE_GROUPS])
    groups = np.array([label for _, label in _AGE_GROUPS])[np.searchsorted(bounds, users["age"], side="right")]
    blocks = [indicator_features(rows, groups, data.n_users, "age"),
              indicator_features(rows, users["gender"].to_numpy(), data.n_users, "gender"),
              indicator_features(rows, users["occupation"].to_numpy(), data.n_users, "occupation")]
    return (sp.hstack([block for block, _ in blocks], format="csr", dtype=np.float32),
            [name for _, names in blocks for name in names])


@dataclass(frozen=True)
class _Dataset:
    size: int                     # bytes of the GroupLens archive
    sha256: str | None
    md5: str | None               # only where no sha256 is known
    folders: tuple[str, ...]      # folder names the archive extracts to (first one is canonical)
    ratings_file: str
    read: Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]


_DATASETS: dict[str, _Dataset] = {
    "ml-100k": _Dataset(4924029, "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                        None, ("ml-100k",), "u.data", _read_ml100k),
    "ml-1m": _Dataset(5917549, "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                      None, ("ml-1m",), "ratings.dat", lambda folder: _read_dat(folder, "iso-8859-1")),
    "ml-latest-small": _Dataset(978202, "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
                                None, ("ml-latest-small",), "ratings.csv", _read_csv),
    # No sha256 of ml-10m.zip is published by GroupLens or by the checksum registries we could
    # check (TensorFlow Datasets lists the other five, not this one). GroupLens does publish the
    # md5 (ml-10m.zip.md5), and the size 65566137 is recorded independently in several projects,
    # so this archive is verified by size and md5, and a warning says that no sha256 is known.
    "ml-10m": _Dataset(65566137, None, "ce571fd55effeba0271552578f2648bd",
                       ("ml-10M100K", "ml-10m"), "ratings.dat", lambda folder: _read_dat(folder, "utf-8")),
    "ml-20m": _Dataset(198702078, "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
                       None, ("ml-20m",), "ratings.csv", _read_csv),
    "ml-25m": _Dataset(261978986, "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
                       None, ("ml-25m",), "ratings.csv", _read_csv),
}

NAMES: tuple[str, ...] = tuple(_DATASETS)
"""Names of the MovieLens data sets that :func:`load` knows."""


def _spec(name) -> _Dataset:
    if not isinstance(name, str) or name not in _DATASETS:
        raise ReclabError(f"unknown data set {name!r}; known names are {list(NAMES)} "
                          f"(or use reclab.datasets.synthetic() for the embedded synthetic data)")
    return _DATASETS[name]


# -- verification -----------------------------------------------------------------------------
class _Digest:
    """Size, sha256 and (where needed) md5 of a byte stream, fed chunk by chunk."""

    def __init__(self):
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.sha256.update(chunk)
        self.md5.update(chunk)

    def check(self, name: str, spec: _Dataset, source: str) -> None:
        """Raise ``ReclabError`` unless size and checksum match the table for ``name``."""
        label = f"{name}.zip ({source})"
        if self.size != spec.size:
            raise ReclabError(f"{label} has {self.size} bytes, expected {spec.size}: the file is "
                              f"truncated or not the original GroupLens archive")
        if spec.sha256 is not None:
            actual = self.sha256.hexdigest()
            if actual != spec.sha256:
                raise ReclabError(f"checksum mismatch for {label}: expected sha256 {spec.sha256}, "
                                  f"got {actual}; the file is corrupt or not the original archive")
            return
        actual = self.md5.hexdigest()
        if actual != spec.md5:
            raise ReclabError(f"checksum mismatch for {label}: expected md5 {spec.md5} "
                              f"(no sha256 is known for it), got {actual}")
        logger.warning("%s verified by size and md5 only: no sha256 of this archive is known", label)


def _verify_file(path: Path, name: str, spec: _Dataset) -> None:
    digest = _Digest()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    digest.check(name, spec, str(path))


# -- download ---------------------------------------------------------------------------------
def _download(url: str, destination: Path, name: str, spec: _Dataset, progress: bool | None) -> None:
    """Fetch ``url`` to ``destination`` through ``<destination>.part``, renamed only once verified."""
    from tqdm import tqdm   # here: only a download needs it, not every import of reclab

    destination.parent.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    bar = tqdm(total=spec.size, desc=f"{name}.zip", unit="B", unit_scale=True, file=sys.stderr,
               disable=not progress)
    digest = _Digest()
    announced = None
    try:
        # The fixed '.part' name is truncated on open, so a previous interrupted attempt is discarded.
        with atomic_write(destination, "wb", partial_suffix=".part") as out:
            with urllib.request.urlopen(url, timeout=60) as response:
                announced = response.headers.get("Content-Length")
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            # A connection closed early ends the stream without an exception, so the byte count
            # is what tells a cut download from a complete one.
            if announced is not None and digest.size != int(announced):
                raise ReclabError(f"download of {url} was cut off after {digest.size} of {announced} "
                                  f"bytes; nothing was kept, call load({name!r}) again to retry")
            digest.check(name, spec, f"downloaded from {url}")
    except urllib.error.URLError as error:
        raise ReclabError(f"could not download {name} from {url}: {getattr(error, 'reason', error)}; "
                          f"check the network, or put {name}.zip or the extracted {spec.folders[0]}/ "
                          f"folder in a data directory (data_dir= or RECLAB_DATA_DIR)") from error
    except OSError as error:
        raise ReclabError(f"download of {name} from {url} failed after {digest.size} bytes: {error}; "
                          f"nothing was kept, call load({name!r}) again to retry") from error
    finally:
        bar.close()


# -- extraction -------------------------------------------------------------------------------
def _check_member(info: zipfile.ZipInfo, root: Path, archive: Path) -> Path:
    """The path a zip member extracts to, or ``ReclabError`` when the member is unsafe."""
    name = info.filename
    unix_mode = info.external_attr >> 16
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if stat.S_ISLNK(unix_mode):
        reason = "is a symbolic link"
    elif name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        reason = "has an absolute path"
    elif ".." in parts:
        reason = "climbs out of the folder with '..'"
    else:
        target = (root / Path(*parts)).resolve() if parts else root
        if target == root or root in target.parents:
            return target
        reason = "resolves outside the folder"
    raise ReclabError(f"refusing to extract {archive}: member {name!r} {reason}; "
                      f"the archive is not a genuine MovieLens archive")


def _extract_zip(archive: Path, target: Path, inner: tuple[str, ...] = ()) -> None:
    """Extract ``archive`` safely into the new folder ``target``, all or nothing.

    Every member is checked before anything is written; the content goes to a temporary sibling
    folder that is renamed to ``target`` at the end. When the archive holds one of the folder
    names in ``inner`` at its top level, that folder's content becomes ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.extracting")
    # A fixed temporary name, so the leftover of a killed process is cleared by the next attempt.
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        root = temp.resolve()
        with zipfile.ZipFile(archive) as zf:
            members = [(info, _check_member(info, root, archive)) for info in zf.infolist()]
            for info, path in members:
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
        source = next((temp / folder for folder in inner if (temp / folder).is_dir()), temp)
        if target.exists():  # an incomplete folder left by hand; ours appear only by rename
            shutil.rmtree(target)
        os.replace(source, target)
    except zipfile.BadZipFile as error:
        raise ReclabError(f"{archive} is not a readable zip archive: {error}") from error
    finally:
        shutil.rmtree(temp, ignore_errors=True)


# -- lookup -----------------------------------------------------------------------------------
def _cache_dir(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("RECLAB_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "reclab"


def _extracted(directory: Path, spec: _Dataset) -> Path | None:
    for folder in spec.folders:
        if (directory / folder / spec.ratings_file).is_file():
            return directory / folder
    return None


def fetch(name: str, data_dir=None, download: bool = True, cache_dir=None,
          progress: bool | None = None) -> Path:
    """The folder holding the extracted files of MovieLens data set ``name``, fetching it if needed.

    Parameters
    ----------
    name : str
        One of ``"ml-100k"``, ``"ml-1m"``, ``"ml-latest-small"``, ``"ml-10m"``, ``"ml-20m"``,
        ``"ml-25m"``.
    data_dir : str or os.PathLike, optional
        Folder searched first for ``<name>/`` (extracted) or ``<name>.zip`` / ``zips/<name>.zip``.
        The environment variable ``RECLAB_DATA_DIR`` names a second such folder.
    download : bool
        Download from GroupLens when the data is found nowhere; False raises instead.
    cache_dir : str or os.PathLike, optional
        Where downloads and extractions go; default ``RECLAB_CACHE_DIR`` or ``~/.cache/reclab``.
    progress : bool or None
        Draw a download progress bar on stderr; None draws it only when stderr is a terminal.

    Returns
    -------
    pathlib.Path
        The extracted folder (for example ``.../ml-100k`` containing ``u.data``).

    Raises
    ------
    ReclabError
        Unknown name; a size or checksum mismatch (naming the file and both checksums); an unsafe
        archive; ``download=False`` and the data found nowhere (naming where it looked).
    """
    spec = _spec(name)
    searched: list[str] = []
    roots = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise ReclabError(f"data_dir {str(data_dir)!r} is not a folder; pass a folder that holds "
                              f"{spec.folders[0]}/ or {name}.zip, or leave data_dir=None")
        roots.append(data_dir)
    env = os.environ.get("RECLAB_DATA_DIR")
    if env:
        # Not an error when missing: project Makefiles set it to a folder that a user may not have.
        roots.append(Path(env).expanduser())
    cache = _cache_dir(cache_dir)

    for root in roots:
        found = _extracted(root, spec)
        if found is not None:
            return found
        searched.append(str(root / spec.folders[0]))
        for archive in (root / f"{name}.zip", root / "zips" / f"{name}.zip"):
            searched.append(str(archive))
            if archive.is_file():
                found = _extracted(cache, spec)
                if found is not None:
                    return found
                _verify_file(archive, name, spec)
                _extract_zip(archive, cache / name, spec.folders)
                return cache / name

    found = _extracted(cache, spec)
    if found is not None:
        return found
    searched.append(str(cache / name))
    archive = cache / f"{name}.zip"
    url = f"{os.environ.get('RECLAB_DOWNLOAD_URL') or DEFAULT_URL}".rstrip("/") + f"/{name}.zip"
    if not archive.is_file():
        if not download:
            raise ReclabError(
                f"{name} not found; looked in {searched}. Put the extracted {spec.folders[0]}/ folder or "
                f"{name}.zip in a folder passed as data_dir= (or named by RECLAB_DATA_DIR), or call "
                f"load({name!r}, download=True) to download it from {url}")
        _download(url, archive, name, spec, progress)
    else:
        # A verified download whose extraction was interrupted; check it again before trusting it.
        _verify_file(archive, name, spec)
    _extract_zip(archive, cache / name, spec.folders)
    archive.unlink()  # the extracted folder is what later calls use; the archive only costs space
    return cache / name


def load(name: str, data_dir=None, download: bool = True, cache_dir=None,
         progress: bool | None = None) -> Interactions:
    """Load a MovieLens data set as explicit ratings with timestamps, titles and genres.

    Parameters
    ----------
    name, data_dir, download, cache_dir, progress
        As in :func:`fetch`, which finds (or downloads) the files.

    Returns
    -------
    Interactions
        Users x items ratings (1..5, or 0.5..5 in half steps for the newer sets), timestamps in
        seconds since 1970, and ``items`` with columns ``title`` (str) and ``genres`` (the genre
        names joined with ``'|'``; empty when MovieLens lists none). Items are the rated ones.
        ``item_features``: genres (``genre=Drama``), release decade from the title's year
        (``decade=1990``) and, for the sets with ``tags.csv`` (ml-latest-small, ml-20m, ml-25m),
        TF-IDF tag weights (``tag=atmospheric``). ``user_features`` (ml-100k only): age group,
        gender and occupation from ``u.user`` (``age=25-34``, ``gender=F``,
        ``occupation=writer``); None for the other sets.

    Examples
    --------
    >>> import reclab as rl
    >>> data = rl.datasets.load("ml-100k")          # doctest: +SKIP
    >>> data.n_users, data.n_items, data.nnz        # doctest: +SKIP
    (943, 1682, 100000)
    """
    spec = _spec(name)
    folder = fetch(name, data_dir=data_dir, download=download, cache_dir=cache_dir, progress=progress)
    ratings, items = spec.read(folder)
    try:
        data = Interactions.from_frame(ratings, user="user", item="item", rating="rating",
                                       timestamp="timestamp", items=items)
    except ReclabError as error:   # NaN ratings and the like: say which file holds them
        raise _damaged(folder / spec.ratings_file, str(error)) from None
    item_features, item_names = _item_features(data, folder)
    user_features = user_names = None
    if name == "ml-100k":
        user_features, user_names = _ml100k_user_features(data, folder)
    return data.with_features(item_features, item_names, user_features, user_names)
