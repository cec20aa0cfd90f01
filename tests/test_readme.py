"""Every Python example of the README runs as written.

The examples are taken from README.md's ```python blocks and executed in order, each in a fresh
namespace, on real data: the library example on MovieLens 100K (RECLAB_DATA_DIR, skipped with a
reason when absent), the model-loading example against the session's three pipelines (conftest.py),
whose experiment is the default one, ``reclab``. The shell examples (``make``, ``reclab run``,
``papermill``) are what the pipeline, CLI and notebook tests run.
"""

import re
from pathlib import Path

import pandas as pd
import pytest

from helpers import AT_ONCE_EXPERIMENT

README = Path(__file__).resolve().parent.parent / "README.md"


def python_examples() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"),
                      flags=re.MULTILINE | re.DOTALL)


def example_with(*needles: str) -> str:
    found = [code for code in python_examples() if all(needle in code for needle in needles)]
    assert len(found) == 1, f"one README example with {needles}, found {len(found)}"
    return found[0]


def test_the_readme_has_its_python_examples():
    assert len(python_examples()) == 4


@pytest.mark.usefixtures("data_dir")   # the example loads ml-100k through RECLAB_DATA_DIR
def test_the_cold_start_example_runs_as_written():
    namespace = {}
    exec(compile(example_with("cold_items"), "README.md", "exec"), namespace)
    assert namespace["report"].summary["precision@10"] > 0.1    # cold items only; random is about 0.06


def test_the_online_example_runs_as_written():
    namespace = {}
    exec(compile(example_with("rl.online.ab_test"), "README.md", "exec"), namespace)
    assert namespace["ab"].p_value < 0.01
    assert set(namespace["power"].users_needed) >= {"ab", "interleaving"}


def test_the_model_loading_example_runs_as_written(pipelines_at_once, monkeypatch):
    assert AT_ONCE_EXPERIMENT == "reclab"   # the example's experiment
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pipelines_at_once["uri"])
    namespace = {}
    exec(compile(example_with("pyfunc.load_model"), "README.md", "exec"), namespace)
    predicted = namespace["model"].predict(pd.DataFrame({"user": [1, 2], "n": [10, 10]}))
    assert list(predicted.columns) == ["user", "item", "rank", "score", "title"]
    assert len(predicted) == 20


@pytest.mark.usefixtures("data_dir")   # the example loads ml-100k through RECLAB_DATA_DIR
def test_the_library_example_runs_as_written():
    namespace = {}
    exec(compile(example_with("import reclab as rl", "rl.tune("), "README.md", "exec"), namespace)
    report, result, picked = namespace["report"], namespace["result"], namespace["picked"]
    assert 0.1 < report.summary["precision@10"] < 0.6
    assert len(result.trials) == 12 and set(result.best_params) == {"factors", "regularization"}
    assert {trial.model for trial in picked.trials} == {"ImplicitALS", "EASE"}
