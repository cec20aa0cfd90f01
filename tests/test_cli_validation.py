"""`reclab run` validates everything it can before any MLflow run exists or any kernel starts: the
data set's name and files, model names, search spaces; the message names the key, the value and
what would be right, and the store stays empty (no FAILED pipeline to resume)."""

import pytest

from reclab.cli import main
from reclab.config import Config, check_runnable
from reclab.errors import ReclabError

SMALL = "experiment: validation-test\nsynthetic: {n_users: 100, n_items: 150, n_ratings: 3000}\n"


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No MovieLens files anywhere, and no way to download them (a closed local port)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("RECLAB_DATA_DIR", str(empty))
    monkeypatch.setenv("RECLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RECLAB_DOWNLOAD_URL", "http://127.0.0.1:9/movielens")
    return empty


def run(tmp_path, text, *extra):
    path = tmp_path / "p.yaml"
    path.write_text(SMALL + text, encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return main(["run", "-p", str(path), "--tracking-uri", store, "--output", str(tmp_path / "out"), *extra]), path


def nothing_started(tmp_path):
    assert not (tmp_path / "mlflow.db").exists(), "the store was not even opened"
    assert not (tmp_path / "out").exists()


def test_validation_of_a_dataset_typo_names_the_key_the_value_and_the_choices(tmp_path, capsys):
    code, path = run(tmp_path, "dataset: ml-100K\n")
    error = capsys.readouterr().err
    assert code == 2, error
    assert f"{path}: key 'dataset' must be one of ['synthetic', 'ml-100k'" in error
    assert "got 'ml-100K'" in error and "Traceback" not in error
    nothing_started(tmp_path)


def test_validation_of_missing_data_files_fails_before_any_run(tmp_path, no_data, capsys):
    text = "dataset: ml-100k\nmodels: {ImplicitALS: {space: {factors: [8, 16]}}}\n"
    code, path = run(tmp_path, text)
    error = capsys.readouterr().err
    assert code == 2, error
    assert f"{path}: key 'dataset' is 'ml-100k', whose files are neither found nor downloaded" in error
    assert str(no_data / "ml-100k") in error, "the message says where it looked"
    nothing_started(tmp_path)
    code, _ = run(tmp_path, text, "--set", f"data_dir={tmp_path / 'absent'}")
    assert code == 2
    error = capsys.readouterr().err
    assert f"{path} with --set data_dir=" in error, "the value came from --set, not the file"
    assert "key 'data_dir' is" in error and "which is not a folder" in error
    nothing_started(tmp_path)
    code, _ = run(tmp_path, text.replace("dataset: ml-100k\n", ""), "--set", "dataset=ml-100k")
    error = capsys.readouterr().err
    assert code == 2 and f"{path} with --set dataset=\"ml-100k\": key 'dataset' is 'ml-100k', whose " \
                         f"files are neither found nor downloaded" in error, error
    nothing_started(tmp_path)


def test_validation_of_model_names_and_spaces_fails_before_any_run(tmp_path, capsys):
    code, _ = run(tmp_path, "", "--set", "model=DeepNet")
    error = capsys.readouterr().err
    assert code == 2 and "key 'model' must be one of [" in error and "'ImplicitALS'" in error
    assert "got 'DeepNet'" in error
    code, _ = run(tmp_path, "baselines: [Popularity, Oracle]\n")
    assert code == 2 and "key 'baselines' must be one of" in capsys.readouterr().err
    code, _ = run(tmp_path, "models: {ImplicitALS: {space: {factors: {type: int, low: 64, high: 8}}}}\n")
    error = capsys.readouterr().err
    assert code == 2 and "key 'models.ImplicitALS.space' is not a valid search space" in error
    code, _ = run(tmp_path, "models: {ImplicitALS: {space: {factor: [8, 16]}}}\n")
    error = capsys.readouterr().err
    assert code == 2 and "key 'models.ImplicitALS.space.factor' is not a parameter of ImplicitALS" in error
    nothing_started(tmp_path)


def test_validation_finds_the_data_files_where_they_are(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RECLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RECLAB_DOWNLOAD_URL", "http://127.0.0.1:9/movielens")   # never downloads
    check_runnable(Config.from_values({"dataset": "ml-100k", "data_dir": str(data_dir)}), "p.yaml")
    with pytest.raises(ReclabError, match=r"p\.yaml: key 'dataset' is 'ml-1m', whose files are neither"):
        check_runnable(Config.from_values({"dataset": "ml-1m", "data_dir": str(tmp_path)}), "p.yaml")


@pytest.mark.parametrize("uri, message", [
    ("relative.db", "the MLflow store 'relative.db' is a path, not a store URI: write "
                    "sqlite:///relative.db for a SQLite file"),
    ("foo://bar", "MLflow store foo://bar cannot be opened: Model registry functionality is unavailable"),
])
@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_store_uri_mlflow_cannot_open_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch,
                                                                    uri, message, command):
    """A path given as --tracking-uri (MLflow's file store, in maintenance mode) or an unknown
    scheme ended `reclab run` and `reclab compare` in MLflow's traceback, with exit status 1."""
    monkeypatch.chdir(tmp_path)
    args = ["--tracking-uri", uri, "--output", str(tmp_path / "out")] if command == "run" else \
        ["abcd", "--tracking-uri", uri]
    assert main([command, *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"reclab {command}: {message}") and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "relative.db").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))   # nothing written


@pytest.mark.parametrize("stages", ["", ","])
def test_a_stages_value_that_names_no_stage_is_refused_before_any_run(tmp_path, capsys, stages):
    # `--stages "$STAGES"` with the variable empty ran nothing, yet made an empty FINISHED
    # pipeline run, which a notebook opened alone then took for the experiment's latest pipeline.
    code, _ = run(tmp_path, "", "--stages", stages)
    error = capsys.readouterr().err
    assert code == 2, error
    assert f"--stages {stages!r} names no stage" in error and "Traceback" not in error
    nothing_started(tmp_path)
