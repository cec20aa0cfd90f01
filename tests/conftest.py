"""Shared fixtures: the real MovieLens data (skipped with a reason when absent) and its standard split."""

import os
from pathlib import Path

import pytest

import reclab as rl


@pytest.fixture(scope="session")
def shared_path():
    """``shared_path("zips/ml-latest-small.zip")``: that path in the real-data folder RECLAB_DATA_DIR,
    or skip the test saying how to provide it.

    The folder is read when the session starts, so tests that then clear RECLAB_DATA_DIR (to check
    the lookup order) still find the real files.
    """
    folder = os.environ.get("RECLAB_DATA_DIR")

    def path(relative: str) -> Path:
        if not folder or not (Path(folder) / relative).exists():
            pytest.skip(f"real MovieLens data not found: no {relative} in RECLAB_DATA_DIR={folder!r}; "
                        "set RECLAB_DATA_DIR to the shared data folder (../shared/data)")
        return Path(folder) / relative

    return path


@pytest.fixture(scope="session")
def data_dir(shared_path) -> Path:
    """RECLAB_DATA_DIR, when it holds ml-100k (else the test is skipped)."""
    return shared_path("ml-100k/u.data").parents[1]


@pytest.fixture(scope="session")
def ml100k(data_dir):
    return rl.datasets.load("ml-100k", data_dir=data_dir, download=False)


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    """The protocol of the quality bands: 80/20 per-user random holdout, seed 42."""
    return rl.split.random_holdout(ml100k, test_frac=0.2, seed=42)


@pytest.fixture(scope="session")
def synthetic_data():
    return rl.datasets.synthetic(seed=0)
