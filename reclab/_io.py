"""Atomic file writing, shared by everything in reclab that writes a file, and the reading of
reclab's ``.npz`` files (``read_npz``: every array, without pickle, a damaged file refused).

A reader (another process, a crashed run restarted, a notebook) must never see a half-written file
under its final name: content goes to a temporary file in the same directory (so that the final
``os.replace`` is a rename within one file system, which POSIX makes atomic), is flushed and fsynced,
and only then replaces the target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from reclab.errors import ReclabError

__all__ = ["atomic_write", "read_npz"]


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened (Windows).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _target_error(error: OSError, path: Path) -> OSError:
    return type(error)(error.errno, f"cannot write {str(path)!r}: {error.strerror}", str(path))


def _file_mode(path: Path) -> int:
    """Permission bits for ``path``: its current ones, or 0666 less the process umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as status:   # Linux: read without changing it
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", *, encoding: str | None = None,
                 partial_suffix: str | None = None) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` only when the ``with`` block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        Final file name. Its directory must exist.
    mode : {"wb", "w"}
        Binary or text writing.
    encoding : str or None
        Text encoding for ``mode="w"`` (default utf-8).
    partial_suffix : str or None
        None (default): the temporary file gets a unique hidden name, so concurrent writers never
        share one. A suffix such as ``".part"`` gives the fixed name ``path + suffix`` instead,
        truncated on open: used for downloads, so that the leftover of a killed process is
        overwritten by the next attempt rather than piling up.

    Yields
    ------
    file object
        Write to it inside the block. If the block raises, the temporary file is removed and
        ``path`` is left as it was (absent or the previous complete version).

    Examples
    --------
    >>> with atomic_write("params.json", "w") as f:   # doctest: +SKIP
    ...     f.write("{}")
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {str(path)!r}: it is a folder", str(path))
    try:
        if partial_suffix is None:
            fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
            temp = Path(temp_name)
            handle = os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None)
        else:
            temp = path.with_name(path.name + partial_suffix)
            handle = open(temp, mode, encoding=(encoding or "utf-8") if mode == "w" else None)
    except OSError as error:
        # Name the target, not the hidden temporary file the user never asked for.
        raise _target_error(error, path) from None
    try:
        with handle:
            # mkstemp makes the file 0600 whatever the umask; a file reclab writes gets the mode
            # any new file would (the target's own mode when it exists), so that other users of
            # a shared store can read it like the rest.
            if os.chmod in os.supports_fd:
                os.chmod(handle.fileno(), _file_mode(path))
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(temp, path)
        except OSError as error:
            raise _target_error(error, path) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_directory(directory)


def read_npz(path: Path, what: str, hint: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path`` (an existing file), read without pickle.

    Raises
    ------
    ReclabError
        ``"<path> is not a readable <what>"``: not a zip archive (numpy would call any other file
        "pickled data"; ``hint`` says what the file should be), or truncated or corrupt (a CRC
        error, a member that needs pickle, ...). Every member is read, so each one's CRC is checked.
    """
    with open(path, "rb") as handle:
        start = handle.read(4)
    if start not in (b"PK\x03\x04", b"PK\x05\x06"):   # a zip's; numpy calls the rest "pickled data"
        begins = f"it begins {start!r}" if start else "it is empty"
        raise ReclabError(f"{path} is not a readable {what}: not an .npz archive ({begins}); {hint}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise ReclabError(f"{path} is not a readable {what} (truncated or corrupt?): {error}") from None
