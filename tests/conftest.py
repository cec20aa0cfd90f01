"""Shared fixtures: the real MovieLens data (skipped with a reason when absent) and its standard split."""

import os
from pathlib import Path

import pytest

import reclab as rl


def movielens_dir() -> Path:
    """The folder with the real MovieLens files, or skip the test saying how to provide it."""
    folder = os.environ.get("RECLAB_DATA_DIR")
    if not folder or not (Path(folder) / "ml-100k" / "u.data").exists():
        pytest.skip(f"real MovieLens data not found (RECLAB_DATA_DIR={folder!r}); "
                    "set RECLAB_DATA_DIR to the folder holding ml-100k/ (../shared/data)")
    return Path(folder)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return movielens_dir()


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
