"""What every run records about where it ran: versions, interpreter, commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from reclab.tracking.layout import (TAG_EXECUTABLE, TAG_GIT_COMMIT, TAG_PACKAGE_VERSION_PREFIX,
                                    TAG_PYTHON, TAG_SOURCE_GIT_COMMIT, TAG_VERSION)

__all__ = ["environment_tags", "package_version"]

# Versions recorded with every run (tags version.<name>), the packages that decide the numbers.
_PACKAGES = ("numpy", "scipy", "pandas", "numba", "scikit-learn", "scikit-optimize", "mlflow",
             "papermill", "matplotlib", "pyyaml", "pyspark")


def _git_commit(root: Path) -> tuple[str | None, bool]:
    """(commit hash or None, working tree has uncommitted changes)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None, False
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, False


def package_version(package: str) -> str:
    """Installed version of ``package``, or ``"not installed"``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_tags() -> dict:
    """Tags of every pipeline and stage run: reclab's version, the interpreter, the commit of the
    code (``-dirty`` with uncommitted changes) and ``version.<package>`` of the packages that decide
    the numbers."""
    commit, dirty = _git_commit(Path(__file__).resolve().parents[2])
    tags = {TAG_VERSION: package_version("reclab"), TAG_PYTHON: platform.python_version(),
            TAG_EXECUTABLE: sys.executable}
    if commit:
        tags[TAG_SOURCE_GIT_COMMIT] = commit
        tags[TAG_GIT_COMMIT] = commit + ("-dirty" if dirty else "")
    tags.update({f"{TAG_PACKAGE_VERSION_PREFIX}{name}": package_version(name) for name in _PACKAGES})
    return tags
