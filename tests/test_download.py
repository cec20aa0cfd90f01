"""Downloading from a real local HTTP server: verification, interrupted transfers, unsafe archives."""

import hashlib
import http.server
import re
import threading
from pathlib import Path

import pytest

from helpers import crafted_zip
from reclab import ReclabError, datasets
from reclab._io import atomic_write
from reclab.datasets import _extract_zip

SHA256 = "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes); ``server.cut`` sends half a file under its full length."""

    def do_GET(self):
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.server.cut else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, shared_path):
    source = shared_path("zips/ml-latest-small.zip")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {"ml-latest-small.zip": source.read_bytes()}
    httpd.cut = False
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("RECLAB_DOWNLOAD_URL", f"http://127.0.0.1:{httpd.server_address[1]}/movielens/")
    # The real data must not be found locally, so that load() has to download.
    monkeypatch.delenv("RECLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("RECLAB_CACHE_DIR", raising=False)
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty", tmp_path / "cache"


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_verifies_extracts_and_loads(server, dirs):
    empty, cache = dirs
    data = datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, progress=False)
    assert (data.n_users, data.n_items, data.nnz) == (610, 9724, 100_836)
    assert data.titles([data.item_index(1)])[0] == "Toy Story (1995)"
    assert server.requests == ["/movielens/ml-latest-small.zip"]
    assert leftovers(cache) == ["ml-latest-small"]  # no .part, no temporary folder, no archive
    # Later calls use the cache, even offline.
    again = datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, download=False)
    assert again.fingerprint() == data.fingerprint()
    assert len(server.requests) == 1


def test_cut_download_leaves_nothing_and_a_retry_works(server, dirs):
    empty, cache = dirs
    server.cut = True
    with pytest.raises(ReclabError, match=r"cut off after 489101 of 978202 bytes"):
        datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, progress=False)
    assert leftovers(cache) == []
    with pytest.raises(ReclabError, match="not found"):
        datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, download=False)
    server.cut = False
    assert datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache).nnz == 100_836


def test_short_file_fails_the_size_check(server, dirs):
    empty, cache = dirs
    server.files["ml-latest-small.zip"] = server.files["ml-latest-small.zip"][:1000]
    with pytest.raises(ReclabError, match=r"ml-latest-small.zip .* has 1000 bytes, expected 978202"):
        datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, progress=False)
    assert leftovers(cache) == []


def test_wrong_checksum_names_the_file_and_both_checksums(server, dirs):
    empty, cache = dirs
    body = bytearray(server.files["ml-latest-small.zip"])
    body[len(body) // 2] ^= 0xFF  # same size, different content
    server.files["ml-latest-small.zip"] = bytes(body)
    with pytest.raises(ReclabError) as error:
        datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, progress=False)
    message = str(error.value)
    assert "ml-latest-small.zip" in message and SHA256 in message
    assert hashlib.sha256(body).hexdigest() in message
    assert leftovers(cache) == []


def test_stale_partial_file_is_replaced(server, dirs):
    empty, cache = dirs
    cache.mkdir()
    (cache / "ml-latest-small.zip.part").write_bytes(b"left over by a killed process")
    assert datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache).nnz == 100_836
    assert leftovers(cache) == ["ml-latest-small"]


def test_http_error_is_reported(server, dirs):
    empty, cache = dirs
    server.files.clear()
    with pytest.raises(ReclabError, match=r"could not download ml-latest-small from http://127.0.0.1:\d+/movielens/"):
        datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache)
    assert leftovers(cache) == []


def test_progress_bar_on_request(server, dirs, capsys):
    empty, cache = dirs
    datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, progress=True)
    err = capsys.readouterr().err
    assert "ml-latest-small.zip" in err and "100%" in err


def test_corrupt_zip_in_data_dir_is_rejected(server, dirs):
    empty, cache = dirs
    body = bytearray(server.files["ml-latest-small.zip"])
    body[100] ^= 0xFF
    (empty / "ml-latest-small.zip").write_bytes(bytes(body))
    expected = rf"checksum mismatch for ml-latest-small.zip \({re.escape(str(empty))}.*{SHA256}"
    with pytest.raises(ReclabError, match=expected):
        datasets.load("ml-latest-small", data_dir=empty, cache_dir=cache, download=False)
    assert leftovers(cache) == []
    assert server.requests == []


# -- unsafe archives --------------------------------------------------------------------------
SAFE = ("ml-x/ratings.csv", b"userId,movieId,rating,timestamp\n", 0o100644)


@pytest.mark.parametrize("member, reason", [
    (("../evil", b"owned", 0o100644), "climbs out"),
    (("ml-x/../../evil", b"owned", 0o100644), "climbs out"),
    (("/tmp/evil", b"owned", 0o100644), "absolute path"),
    (("ml-x/link", b"../../evil", 0o120777), "symbolic link"),
])
def test_unsafe_member_is_rejected_and_nothing_is_written(tmp_path, member, reason):
    # The safe member comes first: an all-or-nothing extraction must not keep it either.
    archive = crafted_zip(tmp_path / "crafted.zip", [SAFE, member])
    target = tmp_path / "cache" / "ml-x"
    with pytest.raises(ReclabError, match=rf"refusing to extract .*crafted.zip: member '{member[0]}' .*{reason}"):
        _extract_zip(archive, target, ("ml-x",))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "cache" / "evil").exists()
    assert leftovers(tmp_path / "cache") == []


def test_safe_archive_extracts_its_inner_folder(tmp_path):
    archive = crafted_zip(tmp_path / "ok.zip", [SAFE, ("ml-x/sub/readme.txt", b"hi", 0o100644)])
    target = tmp_path / "cache" / "ml-x"
    _extract_zip(archive, target, ("ml-x",))
    assert (target / "ratings.csv").read_bytes() == SAFE[1]
    assert (target / "sub" / "readme.txt").read_bytes() == b"hi"
    assert leftovers(tmp_path / "cache") == ["ml-x"]


# -- atomic writes ----------------------------------------------------------------------------
def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "params.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.json"]
    with atomic_write(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.json"]


def test_md5_only_archive_is_verified_with_a_warning(caplog):
    # ml-10m has no known sha256: its size and GroupLens' published md5 are checked instead.
    from reclab.datasets import _Dataset, _Digest
    spec = _Dataset(3, None, hashlib.md5(b"abc").hexdigest(), ("x",), "r", None)
    good = _Digest()
    good.update(b"abc")
    with caplog.at_level("WARNING", logger="reclab.datasets"):
        good.check("ml-x", spec, "test")
    assert "size and md5 only" in caplog.text
    bad = _Digest()
    bad.update(b"abd")
    with pytest.raises(ReclabError, match=rf"expected md5 {spec.md5} \(no sha256 is known for it\)"):
        bad.check("ml-x", spec, "test")
    assert datasets._DATASETS["ml-10m"].sha256 is None and datasets._DATASETS["ml-10m"].md5
