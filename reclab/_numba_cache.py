"""Where numba keeps reclab's compiled kernels: a folder this process can write, or a warning.

reclab's kernels are compiled with ``cache=True``. numba looks for a cache folder when a kernel is
*defined* (at import), in order: ``NUMBA_CACHE_DIR``, ``__pycache__`` next to the source, the
user's cache folder (under the home folder), and raises ``RuntimeError: cannot cache function
...: no locator available`` when none is writable, so ``import reclab`` would fail for a user
whose home folder is read-only and whose reclab is installed read-only (a shared install, a
locked-down server). :func:`ensure_cache_folder` runs first on import and, in that case, points
numba at a folder of its own under the system temporary folder, with a warning.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numba

__all__ = ["ensure_cache_folder"]

_PACKAGE = Path(__file__).resolve().parent
# One source file per folder that holds numba kernels: numba looks next to the source.
_KERNEL_FILES = (_PACKAGE / "ranking.py", _PACKAGE / "models" / "_als_kernels.py")


def _probe() -> None:
    """Stands in for a kernel when asking numba's locators (they look only at the file)."""


def _locatable() -> bool:
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    if impl is None:   # another numba layout: let numba decide at definition time
        return True
    for source in _KERNEL_FILES:
        if not any(locator.from_function(_probe, str(source)) is not None
                   for locator in impl._locator_classes):
            return False
    return True


def ensure_cache_folder() -> None:
    """Make sure numba can cache reclab's kernels; fall back to a private temporary folder.

    Raises
    ------
    RuntimeError
        If not even the temporary folder can be written: the message says to set
        ``NUMBA_CACHE_DIR`` to a writable folder.
    """
    if _locatable():
        return
    fallback = Path(tempfile.gettempdir()) / f"reclab-numba-cache-{os.getuid() if hasattr(os, 'getuid') else 0}"
    previous = numba.config.CACHE_DIR
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
        owner = fallback.stat()
        if owner.st_uid != getattr(os, "getuid", lambda: owner.st_uid)() or owner.st_mode & 0o022:
            # Made by someone else (numba's cache files are unpickled: never load theirs).
            fallback = Path(tempfile.mkdtemp(prefix="reclab-numba-cache-"))
        numba.config.CACHE_DIR = str(fallback)
        usable = _locatable()
    except OSError:
        usable = False
    if not usable:
        numba.config.CACHE_DIR = previous
        raise RuntimeError(f"numba cannot cache reclab's compiled kernels: neither {str(_PACKAGE)!r}, the "
                           f"home folder's cache nor {str(fallback)!r} is writable; set NUMBA_CACHE_DIR to "
                           f"a writable folder")
    warnings.warn(f"numba cannot cache reclab's compiled kernels next to reclab ({str(_PACKAGE)!r}) or in "
                  f"the home folder (not writable); caching them in {str(fallback)!r} instead. Set "
                  f"NUMBA_CACHE_DIR to choose the folder.", RuntimeWarning, stacklevel=2)
