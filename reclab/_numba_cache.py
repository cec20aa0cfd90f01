"""Where numba keeps reclab's compiled kernels (a folder this process can write, or a warning), and
kernels that always run the cached machine code (:class:`FromCache`).

reclab's kernels are compiled with ``cache=True``. numba looks for a cache folder when a kernel is
*defined* (at import), in order: ``NUMBA_CACHE_DIR``, ``__pycache__`` next to the source, the
user's cache folder (under the home folder), and raises ``RuntimeError: cannot cache function
...: no locator available`` when none is writable, so ``import reclab`` would fail for a user
whose home folder is read-only and whose reclab is installed read-only (a shared install, a
locked-down server). :func:`ensure_cache_folder` runs first on import and, in that case, points
numba at a folder of its own under the system temporary folder, with a warning.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numba
import numpy as np

__all__ = ["ensure_cache_folder", "FromCache"]

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


# -- one machine code for every process ----------------------------------------------------------
_COMPILING_HERE = "RECLAB_COMPILE_KERNELS_HERE"


def _describe(value) -> list:
    """A kernel argument as JSON that :func:`_example` turns back into a value of the same numba type."""
    if isinstance(value, np.ndarray):
        return ["array", value.dtype.str, value.ndim, bool(value.flags.writeable)]
    plain = type(value) in (bool, int, float)
    return ["scalar", type(value).__name__ if plain else np.dtype(type(value)).str]


def _example(description: list):
    if description[0] == "array":
        _, dtype, ndim, writeable = description
        value = np.zeros((1,) * ndim, dtype=dtype)
        value.flags.writeable = writeable
        return value
    plain = {"bool": False, "int": 0, "float": 0.0}
    return plain[description[1]] if description[1] in plain else np.dtype(description[1]).type(0)


def compile_in_this_process(module: str, name: str, described: str) -> None:
    """Compile the :class:`FromCache` kernel ``module.name`` for arguments like ``described`` (JSON
    from :func:`_describe`); numba writes the machine code to its cache. The child's side of
    :meth:`FromCache.__call__`."""
    kernel = getattr(importlib.import_module(module), name).kernel
    kernel.compile(tuple(kernel.typeof_pyval(_example(item)) for item in json.loads(described)))


class FromCache:
    """A ``parallel`` ``fastmath`` numba kernel that runs the machine code of numba's disk cache in
    every process, so that the same inputs give the same bits in every process.

    numba does not run the same machine code for a ``parallel=True`` kernel in the process that
    compiles it as in the processes that load it from the cache afterwards (the loop body runs as
    optimized on its own in the first, as linked into the kernel's cached object code in the
    others). With ``reassoc`` the two vectorize their sums differently: ImplicitALS's factors
    differed in the last bits between the first fit after an install and every later one (on
    ML-100K, nDCG@10 0.450324 against 0.450331). So a process never calls a kernel it compiled:
    when the cache lacks a signature, a child process compiles the kernel for it and this process
    loads it (the time is the compile's, about a second more). Only if the cache still lacks the
    signature is the kernel compiled here (with a warning when the child failed).
    """

    def __init__(self, kernel, module: str):
        self.kernel = kernel
        self.module = module
        functools.update_wrapper(self, kernel.py_func)

    def __call__(self, *args):
        kernel = self.kernel
        signature = tuple(kernel.typeof_pyval(value) for value in args)
        if signature not in kernel.overloads:
            if os.environ.get(_COMPILING_HERE) != "1" \
                    and kernel._cache.load_overload(signature, kernel.targetctx) is None:
                self._compile_in_child(args)
            kernel.compile(signature)
        return kernel(*args)

    def _compile_in_child(self, args: tuple) -> None:
        environment = dict(os.environ, **{_COMPILING_HERE: "1"})
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE.parent)] + [path for path in [os.environ.get("PYTHONPATH")] if path])
        if numba.config.CACHE_DIR:   # ensure_cache_folder may have chosen a folder for this process
            environment["NUMBA_CACHE_DIR"] = numba.config.CACHE_DIR
        code = "import sys; from reclab._numba_cache import compile_in_this_process as c; c(*sys.argv[1:])"
        child = subprocess.run([sys.executable, "-c", code, self.module, self.__name__,
                                json.dumps([_describe(value) for value in args])],
                               env=environment, capture_output=True, text=True)
        if child.returncode != 0:
            warnings.warn(f"reclab could not compile its kernel {self.__name__} in a child process, so "
                          f"this process compiles it; the results may then differ in the last bits from "
                          f"those of a process that loads it from numba's cache. The child said:\n"
                          f"{child.stderr[-2000:]}", RuntimeWarning, stacklevel=3)
