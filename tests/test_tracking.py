"""MLflow tracking: the store, stage runs, artifacts exchanged between stages, trials, the model.

Every test writes to its own SQLite store in a temporary folder (MLFLOW_TRACKING_URI).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from helpers import new_store
from reclab import tracking
from reclab.config import Config, load_data, make_split
from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.evaluation import evaluate
from reclab.models import Bias, Popularity
from reclab.stages import RUNNER_ENV
from reclab.tracking.queries import pipeline_params
from reclab.tuning import tune

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = new_store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experiment: unit\nsynthetic: {n_users: 80, n_items: 120, n_ratings: 2500}\n"
                    "model: Bias\nmodels: {Bias: {space: {user_reg: [1.0, 10.0]}}}\n"
                    "tune: {method: grid, metric: ndcg@10}\nk: [5, 10]\n"
                    "evaluation: {n_bootstrap: 50}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def split():
    loaded = Config.from_values({"synthetic": {"n_users": 80, "n_items": 120, "n_ratings": 2500}})
    data = load_data(loaded)
    return (data, *make_split(loaded, data))


def test_tracking_uri_precedence(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # a notebook runs in notebooks/: the default store is still the project's
    assert tracking.project_root() == tmp_path.resolve()
    assert tracking.tracking_uri() == f"sqlite:///{(tmp_path / 'mlflow.db').resolve().as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri() == "http://127.0.0.1:5999"
    # a relative SQLite path is the file in the current folder, made absolute (below)
    assert tracking.tracking_uri("sqlite:///other.db") == \
        f"sqlite:///{(tmp_path / 'notebooks' / 'other.db').resolve().as_posix()}"


def test_an_mlflow_server_that_does_not_answer_is_refused_at_once(monkeypatch):
    """``reclab run --tracking-uri http://127.0.0.1:<wrong port>``: MLflow retried its first
    request for 4 minutes, then the run ended in a traceback (exit status 1)."""
    import socket
    import time

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert tracking.open_client(f"http://127.0.0.1:{port}").tracking_uri == f"http://127.0.0.1:{port}"
    with socket.socket() as closed:   # a port nothing listens at
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ReclabError, match=rf"MLflow server http://127.0.0.1:{port} does not answer "
                                          rf"\(Connection refused\); start it, or point --tracking-uri"):
        tracking.open_client(f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 10


def test_a_relative_sqlite_store_is_the_same_store_from_the_notebooks_folder(tmp_path, monkeypatch,
                                                                             params_file):
    """``reclab run --tracking-uri sqlite:///runs.db`` passes the store to stage kernels that run
    in ``notebooks/``: the relative path named a new, empty store there, and stage 1 failed with
    "no pipeline run ... at sqlite:///runs.db"."""
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking.tracking_uri("sqlite:///runs.db")
    assert tracking.sqlite_file(uri) == (tmp_path / "runs.db").resolve()
    pipeline_id = tracking.start_pipeline(Config.load(params_file), uri)
    # A stage kernel of reclab run: another process (MLflow keeps a store per URI in a process),
    # in notebooks/, given the URI that reclab run resolved.
    import subprocess

    code = ("import sys\nfrom reclab import tracking\n"
            "stage = tracking.start_stage('preprocess', sys.argv[1], parent_run_id=sys.argv[2], "
            "uri=sys.argv[3])\nstage.finish()\n")
    done = subprocess.run([sys.executable, "-c", code, str(params_file), pipeline_id, uri],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path / "notebooks",
                          env={**os.environ, RUNNER_ENV: pipeline_id})
    assert done.returncode == 0, done.stderr[-2000:]
    assert [run.data.tags["reclab.stage"] for run in tracking.stage_runs(pipeline_id, uri)] == [
        "preprocess"]
    assert not (tmp_path / "notebooks" / "runs.db").exists()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///runs.db?timeout=20")
    assert tracking.tracking_uri() == \
        f"sqlite:///{(tmp_path / 'notebooks' / 'runs.db').resolve().as_posix()}?timeout=20"


def test_experiment_artifacts_live_beside_the_database(tmp_path, store, monkeypatch):
    monkeypatch.chdir(PROJECT)   # not the store's folder
    experiment = tracking.experiment_id("located")
    location = MlflowClient().get_experiment(experiment).artifact_location
    assert location == (tmp_path / "mlruns" / "located").as_uri()
    assert tracking.experiment_id("located") == experiment   # found, not created twice


def test_interactions_round_trip_without_pickle(tmp_path, split):
    data = split[0]
    path = tracking.save_interactions(tmp_path / "data.npz", data)
    back = tracking.load_interactions(path)
    assert back.fingerprint() == data.fingerprint()
    assert list(back.titles(np.arange(5))) == list(data.titles(np.arange(5)))
    with np.load(path, allow_pickle=False) as archive:   # readable without pickle
        assert "indptr" in archive.files
    frame = pd.DataFrame({"user": ["u2", "u1", "u1"], "item": ["b", "a", "b"],
                          "rating": [1.0, 2.0, 3.0]})
    text_ids = Interactions.from_frame(frame)
    back = tracking.load_interactions(tracking.save_interactions(tmp_path / "text.npz", text_ids))
    assert back.fingerprint() == text_ids.fingerprint()
    assert list(back.user_ids) == ["u1", "u2"]


def test_interactions_round_trip_keeps_missing_titles_and_the_types_of_item_columns(tmp_path):
    """An item without a title (an items file that lacks it) read back with no title, so titles()
    gives its id (it came back as an empty title); numbers, booleans and dates come back as they
    were (as text before: 1990 as '1990.0')."""
    ratings = pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 12], "rating": [4.0, 3.0, 5.0]})
    items = pd.DataFrame({"title": ["Ten", None, "Twelve"], "year": [1990, 2000, 2010],
                          "score": [0.5, np.nan, 1.5], "new": [False, True, False],
                          "added": pd.to_datetime(["1990-01-02", "2000-03-04", None])},
                         index=[10, 11, 12])
    data = Interactions.from_frame(ratings, items=items)
    back = tracking.load_interactions(tracking.save_interactions(tmp_path / "items.npz", data))
    assert back.titles([0, 1, 2]).tolist() == ["Ten", "11", "Twelve"]
    assert pd.isna(back.items["title"][1])
    for column in ("year", "score", "new", "added"):
        assert back.items[column].dtype == items[column].dtype, column
        assert back.items[column].equals(data.items[column]), column


def test_stage_opened_alone_starts_and_joins_a_pipeline(store, params_file, split):
    data, train, valid, test = split
    with pytest.raises(ReclabError, match="no finished 'preprocess' run"):
        tracking.start_stage("tune", params_file)
    first = tracking.start_stage("preprocess", params_file)
    client = MlflowClient()
    parent = client.get_run(first.parent_run_id)
    assert parent.data.tags["reclab.pipeline"] == "notebook"
    assert parent.info.run_name == "synthetic/Bias/grid"
    tags = tracking.log_split(first, data, train, valid, test)
    first.finish("preprocessed")
    assert client.get_run(first.run_id).info.status == "FINISHED"
    assert client.get_run(first.run_id).data.tags["mlflow.note.content"] == "preprocessed"
    assert client.get_run(first.parent_run_id).data.tags["reclab.split_fingerprint"] == \
        tags["reclab.split_fingerprint"]

    # the next stage, opened alone, joins that open pipeline with its parameters and reads its
    # split; given other parameters than the pipeline's, it refuses (test_notebooks_alone.py)
    with pytest.raises(ReclabError, match=r"other parameters than this notebook's: k='\[10\]'"):
        tracking.start_stage("tune", overrides={"experiment": "unit", "k": [10]})
    second = tracking.start_stage("tune", overrides={"experiment": "unit", "k": [5, 10]})
    assert second.parent_run_id == first.parent_run_id and second.joined == "continued"
    assert second.params["model"] == "Bias" and second.params["k"] == [5, 10]
    back = tracking.load_split(second)
    assert [part.fingerprint() for part in back] == [part.fingerprint() for part in (train, valid, test)]
    run = client.get_run(second.run_id)
    assert run.data.tags["reclab.stage"] == "tune"
    assert run.data.tags["mlflow.parentRunId"] == first.parent_run_id
    assert run.data.tags["reclab.input.preprocess"] == first.run_id
    assert run.data.params["tune.method"] == "grid"
    logged = client.get_run(first.run_id).inputs.dataset_inputs
    assert {entry.dataset.name for entry in logged} == {"synthetic/train", "synthetic/valid",
                                                         "synthetic/test"}
    with pytest.raises(ReclabError, match="no finished 'tune' stage"):
        tracking.load_best(second)


def test_a_model_given_is_tuned_alone_and_a_notebook_giving_one_joins_only_a_pipeline_tuning_it(
        store, tmp_path):
    """``--set model=EASE`` on a file whose ``tune.models`` lists several tunes EASE alone (the
    list is emptied unless given too); a notebook given a ``model`` joins an open pipeline only
    if that pipeline tunes that model alone."""
    path = tmp_path / "two.yaml"
    path.write_text("experiment: unit\nmodel: Bias\ntune: {method: grid, models: [Bias, SVD]}\n"
                    "models: {Bias: {space: {user_reg: [1.0, 10.0]}}, SVD: {space: {factors: [4, 8]}}}\n",
                    encoding="utf-8")
    assert Config.load(path).tuned_models() == ["Bias", "SVD"]
    assert Config.load(path, {"model": "SVD"}).tuned_models() == ["SVD"]
    assert Config.load(path, {"model": "Bias"}).tuned_models() == ["Bias"]
    assert Config.load(path, {"model": "SVD", "tune.models": ["SVD", "Bias"]}).tuned_models() == ["SVD", "Bias"]
    # Both given, the model outside the list: it would go unused (stage 2 picks from the list).
    with pytest.raises(ReclabError, match=r"two.yaml with --set model=\"SVD\" tune.models=\[\"Bias\"\]: "
                                          r"key 'model' is 'SVD', but tune.models is given too, \['Bias'\]"):
        Config.load(path, {"model": "SVD", "tune.models": ["Bias"]})
    assert Config.load(path, {"tune.method": "random"}).tuned_models() == ["Bias", "SVD"]
    first = tracking.start_stage("preprocess", path)
    first.finish()
    with pytest.raises(ReclabError, match=r"other parameters than this notebook's: .*"
                                          r"tune.models='\[\]' \(pipeline: '\[\"Bias\", \"SVD\"\]'\)"):
        tracking.start_stage("tune", overrides={"experiment": "unit", "model": "Bias"})
    joined = tracking.start_stage("tune", overrides={"experiment": "unit"})
    assert joined.parent_run_id == first.parent_run_id
    assert joined.params.tuned_models() == ["Bias", "SVD"]


def test_a_value_refused_in_a_stage_notebook_is_named_as_its_notebook_parameter(store, params_file,
                                                                               monkeypatch):
    """A stage notebook's own values (papermill's -p, or edited in JupyterLab) are refused as
    notebook parameters; the same values in a kernel of ``reclab run`` came from its --set."""
    with pytest.raises(ReclabError) as refused:
        tracking.start_stage("preprocess", params_file, overrides={"seed": -1})
    assert str(refused.value).startswith(f"{params_file} with notebook parameters seed=-1: key 'seed' "
                                         f"must be >= 0")
    first = tracking.start_stage("preprocess", params_file)
    first.finish()
    pipeline = first.parent_run_id
    for opened in ({}, {"parent_run_id": pipeline}):   # alone (the latest pipeline), or given it
        with pytest.raises(ReclabError) as refused:
            tracking.start_stage("tune", overrides={"experiment": "unit", "tune.n_trials": 0}, **opened)
        assert " with notebook parameters experiment=\"unit\" tune.n_trials=0: key 'tune.n_trials' " \
            in str(refused.value)
        assert "--set" not in str(refused.value)
    monkeypatch.setenv(RUNNER_ENV, pipeline)
    with pytest.raises(ReclabError) as refused:
        tracking.start_stage("tune", overrides={"tune.n_trials": 0}, parent_run_id=pipeline)
    assert str(refused.value).startswith(f"params.yaml of pipeline run {pipeline} with --set "
                                         f"tune.n_trials=0: key 'tune.n_trials' ")


def test_trials_are_nested_runs_of_the_tune_run(store, params_file, split):
    data, train, valid, test = split
    first = tracking.start_stage("preprocess", params_file)
    tracking.log_split(first, data, train, valid, test)
    first.finish()
    stage = tracking.start_stage("tune", params_file, parent_run_id=first.parent_run_id)
    result = tune(Bias(), {"user_reg": [1.0, 10.0]}, train, valid, method="grid",
                  metric="ndcg@10", callbacks=[tracking.trial_logger(stage, "ndcg@10")])
    tracking.log_best(stage, result.best_params, result.best_score, result.metric, "Bias")
    stage.finish()
    client = MlflowClient()
    trials = client.search_runs([stage.experiment_id],
                                filter_string=f"tags.`mlflow.parentRunId` = '{stage.run_id}'")
    assert len(trials) == 2
    for run in trials:
        assert run.info.status == "FINISHED"
        assert run.data.params["user_reg"] in ("1.0", "10.0")
        assert 0.0 <= run.data.metrics["ndcg_at_10"] <= 1.0
        assert "reclab.stage" not in run.data.tags
    scores = sorted(run.data.metrics["ndcg_at_10"] for run in trials)
    assert scores[-1] == pytest.approx(result.best_score)
    history = client.get_metric_history(stage.run_id, "ndcg_at_10")
    assert sorted(point.step for point in history) == [0, 1]
    reader = tracking.start_stage("train", params_file, parent_run_id=first.parent_run_id)
    best = tracking.load_best(reader)
    assert best == {"model": "Bias", "params": result.best_params, "metric": "ndcg@10",
                    "score": result.best_score, "warnings": [], "note": ""}
    with pytest.raises(ReclabError, match="model='SVD': the finished 'tune' stage of pipeline run "
                                          f"{first.parent_run_id} used model='Bias'"):
        tracking.start_stage("train", params_file, overrides={"model": "SVD"},
                             parent_run_id=first.parent_run_id)
    # A runner's kernel is given the pipeline's own file; were it another, load_best still refuses.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNNER_ENV, first.parent_run_id)
        other = tracking.start_stage("train", params_file, overrides={"model": "SVD"},
                                     parent_run_id=first.parent_run_id)
    with pytest.raises(ReclabError, match="tuned 'Bias' but model is 'SVD'"):
        tracking.load_best(other)


def test_a_tune_stage_run_again_replaces_the_pipelines_best_and_boundary_warning(store, tmp_path):
    """The tune stage run again in its pipeline with another search (``--resume --set``) chose
    another model: ``reclab compare`` shows that run's ``best.*`` (the pipeline run's MLflow
    params keep the first run's, mixed with the names only the second logged), and the first
    run's boundary warning no longer stands on the pipeline run."""
    path = tmp_path / "two.yaml"
    path.write_text("experiment: unit\nmodel: Bias\n"
                    "tune: {method: random, n_trials: 4, models: [Bias, SVD]}\n"
                    "models: {Bias: {space: {user_reg: [1.0, 10.0]}}, SVD: {space: {factors: [4, 8]}}}\n",
                    encoding="utf-8")
    first = tracking.start_stage("preprocess", path)
    first.finish()
    pipeline_id = first.parent_run_id
    one = tracking.start_stage("tune", parent_run_id=pipeline_id)
    tracking.log_best(one, {"user_reg": 10.0}, 0.2, "ndcg@10", "Bias",
                      warnings=["best user_reg = 10.0 is at the upper bound of its space"])
    one.finish()
    assert "reclab.boundary_warning" in MlflowClient().get_run(pipeline_id).data.tags
    two = tracking.start_stage("tune", overrides={"tune.n_trials": 8}, parent_run_id=pipeline_id)
    tracking.log_best(two, {"factors": 4}, 0.3, "ndcg@10", "SVD")
    two.finish()
    assert "reclab.boundary_warning" not in MlflowClient().get_run(pipeline_id).data.tags
    params, _ = tracking.run_table([pipeline_id])
    best = params.iloc[:, 0][params.index.str.startswith("best.")].dropna().to_dict()
    assert best == {"best.model": "SVD", "best.factors": "4"}


def test_the_tune_cell_run_again_in_its_kernel_continues_its_own_search(store, params_file, split):
    """Interrupted (Ctrl-C) and run again, or run twice, in one kernel: the stage run's own
    search goes on from its finished trials, none of them run or logged twice (it started over)."""
    data, train, valid, test = split
    first = tracking.start_stage("preprocess", params_file)
    tracking.log_split(first, data, train, valid, test)
    first.finish()
    stage = tracking.start_stage("tune", params_file, parent_run_id=first.parent_run_id)
    options = dict(method="random", n_trials=4, metric="ndcg@10", seed=0)

    def interrupt_after_2(trial):
        if trial.number == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt), tracking.tuning_checkpoint(stage) as checkpoint:
        tune(Bias(), {"user_reg": (1.0, 50.0)}, train, valid, checkpoint=checkpoint.path, **options,
             callbacks=[tracking.trial_logger(stage, "ndcg@10"), checkpoint.save, interrupt_after_2])
    for _ in range(2):   # run again, then once more
        with tracking.tuning_checkpoint(stage) as checkpoint:
            assert repr(checkpoint).startswith(f"TuningCheckpoint(continues tune run {stage.run_id}: ")
            result = tune(Bias(), {"user_reg": (1.0, 50.0)}, train, valid, checkpoint=checkpoint.path,
                          **options, callbacks=[tracking.trial_logger(stage, "ndcg@10"), checkpoint.save])
    assert [trial.params for trial in result.trials] == [
        trial.params for trial in tune(Bias(), {"user_reg": (1.0, 50.0)}, train, valid, **options).trials]
    trials = MlflowClient().search_runs([stage.experiment_id],
                                        filter_string=f"tags.`mlflow.parentRunId` = '{stage.run_id}'")
    assert sorted(run.info.run_name.rsplit("/", 1)[1] for run in trials) == [f"trial-{n:03d}" for n in range(4)]


def test_report_metrics_use_at_keys_with_intervals_on_stage_and_pipeline(store, params_file, split):
    data, train, valid, test = split
    stage = tracking.start_stage("evaluate", params_file, parent_run_id=tracking.start_pipeline(
        Config.load(params_file)))
    fit = train.union(valid)
    report = evaluate(Bias().fit(fit), fit, test, k=(5, 10), n_bootstrap=50)
    tracking.log_report(stage, report)
    tracking.log_report(stage, evaluate(Popularity().fit(fit), fit, test, k=(5, 10), n_bootstrap=50),
                     "Popularity")
    client = MlflowClient()
    metrics = client.get_run(stage.run_id).data.metrics
    assert metrics["precision_at_10"] == pytest.approx(report.summary["precision@10"])
    assert metrics["precision_at_10_ci_low"] <= metrics["precision_at_10"] <= \
        metrics["precision_at_10_ci_high"]
    assert "Popularity/precision_at_10" in metrics and "rmse" in metrics
    parent_metrics = client.get_run(stage.parent_run_id).data.metrics
    assert parent_metrics["ndcg_at_10"] == metrics["ndcg_at_10"]
    assert not any(key.startswith("Popularity/") for key in parent_metrics)
    files = {item.path for item in client.list_artifacts(stage.run_id, "tables")}
    assert {"tables/summary.csv", "tables/per_user.csv", "tables/per_user_Popularity.csv"} <= files


def test_compare_shows_the_metrics_of_the_latest_evaluate_run_only(store, params_file, split):
    """The evaluate stage run again with other cut-offs (``--resume --stages 5 --set k=[5]``): the
    pipeline run's MLflow metrics still hold the first run's precision_at_10 (metrics cannot be
    removed), and ``reclab compare`` showed it beside the new run's as the pipeline's result."""
    data, train, valid, test = split
    fit = train.union(valid)
    model = Bias().fit(fit)
    first = tracking.start_stage("preprocess", params_file)
    first.finish()
    pipeline_id = first.parent_run_id
    for k in ([5, 10], [5]):
        stage = tracking.start_stage("evaluate", overrides={"k": k}, parent_run_id=pipeline_id)
        tracking.log_report(stage, evaluate(model, fit, test, k=tuple(k), n_bootstrap=20))
        stage.finish()
    assert "precision_at_10" in MlflowClient().get_run(pipeline_id).data.metrics
    _, metrics = tracking.run_table([pipeline_id])
    shown = metrics.iloc[:, 0].dropna()
    assert "precision_at_5" in shown.index and "precision_at_10" not in shown.index
    assert shown["precision_at_5"] == pytest.approx(
        MlflowClient().get_run(stage.run_id).data.metrics["precision_at_5"])


def test_fit_logger_records_the_training_curve(store, params_file, split):
    from reclab.models import ExplicitALS

    stage = tracking.start_stage("train", params_file, parent_run_id=tracking.start_pipeline(
        Config.load(params_file)))
    curve = tracking.fit_logger(stage)
    ExplicitALS(factors=4, iterations=3, seed=0).fit(split[1], callback=curve)
    frame = curve.frame()
    assert list(frame["iteration"]) == [1, 2, 3]
    assert (frame["seconds"] > 0).all() and frame["loss"].notna().all()
    history = MlflowClient().get_metric_history(stage.run_id, "iteration_seconds")
    assert len(history) == 3


def test_the_log_model_cell_run_again_leaves_one_logged_model(store, params_file, split):
    """The train notebook's log_model cell run twice in its kernel: the run's logged model is the
    second, and the first is deleted (MLflow's Models list showed both)."""
    data, train, valid, test = split
    stage = tracking.start_stage("train", params_file, parent_run_id=tracking.start_pipeline(
        Config.load(params_file)))
    for user_reg in (1.0, 10.0):
        tracking.log_model(stage, Bias(user_reg=user_reg).fit(train), train)
    client = MlflowClient()
    models = client.search_logged_models([stage.experiment_id])
    assert [model.model_id for model in models] == [
        client.get_run(stage.run_id).data.tags["reclab.model_id"]]
    assert models[0].params["user_reg"] == "10.0"


def test_pyfunc_model_predicts_original_ids_and_titles(store, params_file, split):
    data, train, valid, test = split
    fit = train.union(valid)
    model = Bias().fit(fit)
    stage = tracking.start_stage("train", params_file, parent_run_id=tracking.start_pipeline(
        Config.load(params_file)))
    uri = tracking.log_model(stage, model, fit)
    assert uri == f"runs:/{stage.run_id}/model"
    loaded = mlflow.pyfunc.load_model(uri)
    signature = loaded.metadata.signature
    assert signature.inputs.input_names() == ["user", "n"]
    assert signature.outputs.input_names() == ["user", "item", "rank", "score", "title"]
    example = json.loads(Path(mlflow.artifacts.download_artifacts(
        f"{uri}/input_example.json")).read_text())
    assert example["columns"] == ["user", "n"]
    assert [row[0] for row in example["data"]] == list(fit.user_ids[:3])   # real users
    users = fit.user_ids[[0, 5]]
    out = loaded.predict(pd.DataFrame({"user": users, "n": [3, 5]}))
    assert list(out.columns) == ["user", "item", "rank", "score", "title"]
    assert list(out.groupby("user").size().loc[list(users)]) == [3, 5]
    expected_ids, _ = model.recommend(fit.user_index(users[:1]), n=3)
    first = out[out["user"] == users[0]]
    assert list(first["item"]) == list(fit.item_ids[expected_ids[0]])
    assert list(first["title"]) == list(fit.titles(expected_ids[0]))
    seen = set(fit.item_ids[fit.matrix[fit.user_index(users[:1])[0]].indices])
    assert not seen & set(first["item"])
    assert len(loaded.predict(pd.DataFrame({"user": users[:1]}))) == 10   # n is optional
    # A length beyond the catalog gives every unseen item (it raised MemoryError for 10**12).
    unseen = fit.n_items - fit.user_counts()[fit.user_index(users[:1])[0]]
    assert len(loaded.predict(pd.DataFrame({"user": users[:1], "n": [10**12]}))) == unseen
    with pytest.raises(Exception, match="unknown user id"):
        loaded.predict(pd.DataFrame({"user": [10**9]}))
    # the reclab model file is there too, for the later stages
    files = {item.path for item in MlflowClient().list_artifacts(stage.run_id, "reclab_model")}
    assert files == {"reclab_model/model.npz"}


def test_failed_stage_marks_stage_and_pipeline_failed(store, params_file, tmp_path):
    parent = tracking.start_pipeline(Config.load(params_file))
    stage = tracking.start_stage("preprocess", params_file, parent_run_id=parent)
    notebook = tmp_path / "01_preprocess.ipynb"
    notebook.write_text("{}", encoding="utf-8")
    failed = tracking.fail_stage(parent, "preprocess", notebook, "ValueError: boom")
    assert failed == stage.run_id
    client = MlflowClient()
    assert client.get_run(stage.run_id).info.status == "FAILED"
    assert client.get_run(parent).info.status == "FAILED"
    assert client.get_run(parent).data.tags["reclab.error"] == "ValueError: boom"
    assert [item.path for item in client.list_artifacts(stage.run_id, "notebook")] == \
        ["notebook/01_preprocess.ipynb"]
    # a stage that failed before starting its run still gets one, for the record
    other = tracking.fail_stage(parent, "tune", None, "KeyError: 'x'")
    assert client.get_run(other).data.tags["reclab.stage"] == "tune"
    state = tracking.pipeline_state(parent)
    assert state["finished"] == [] and "experiment: unit" in state["params_text"]
    assert client.get_run(parent).info.status == "FAILED"     # reading changes nothing
    tracking.reopen_pipeline(parent)
    assert client.get_run(parent).info.status == "RUNNING"
    tracking.end_pipeline(parent, "done")
    assert client.get_run(parent).info.status == "FINISHED"
    assert "reclab.error" not in client.get_run(parent).data.tags


def test_run_table_and_bad_ids(store, params_file):
    first = tracking.start_pipeline(Config.load(params_file))
    second = tracking.start_pipeline(Config.load(params_file, {"seed": 5}))
    table_params, table_metrics = tracking.run_table([first, second])
    assert table_params.shape[1] == 2
    assert table_params.loc["seed"].tolist() == ["0", "5"]
    with pytest.raises(ReclabError, match="no MLflow run 'nope'"):
        tracking.run_table(["nope"])
    with pytest.raises(ReclabError, match="not a reclab pipeline run"):
        stage = tracking.start_stage("preprocess", params_file, parent_run_id=first)
        tracking.pipeline_state(stage.run_id)


def test_the_start_of_a_run_id_names_its_run_unless_it_starts_several(store, monkeypatch):
    """``reclab compare`` and ``--resume`` take the 8 characters that compare shows; MLflow draws
    run ids at random, so two that share a start are drawn here (MLflow's own uuid4, fixed)."""
    import uuid

    ids = iter(["abcd1234" + "0" * 24, "abcd5678" + "0" * 24, "abce1234" + "0" * 24])
    client = MlflowClient()
    experiment = client.create_experiment("prefixes")
    with monkeypatch.context() as patch:
        patch.setattr(uuid, "uuid4", lambda: uuid.UUID(next(ids)))
        made = [client.create_run(experiment).info.run_id for _ in range(3)]
    assert tracking.full_run_id("abcd1234") == made[0]
    assert tracking.full_run_id("abce") == made[2]
    assert tracking.full_run_id(made[1]) == made[1]
    assert tracking.full_run_id("ffff") == "ffff"          # no such run: the caller says so
    assert tracking.full_run_id("nope") == "nope"
    with pytest.raises(ReclabError, match="run id 'abcd' starts the ids of 2 runs .*give more of it"):
        tracking.full_run_id("abcd")
    assert tracking.full_run_id("ABCE") == made[2]            # as the UI shows it, or upper case
    with pytest.raises(ReclabError, match="run id 'abc' is too short: give at least its first 4 characters"):
        tracking.full_run_id("abc")                       # not "no MLflow run 'abc'"


def test_runs_record_versions_and_environment(store, params_file, tmp_path):
    parent = tracking.start_pipeline(Config.load(params_file))
    tags = MlflowClient().get_run(parent).data.tags
    assert tags["reclab.version"] and tags["version.numpy"] == np.__version__
    assert tags["version.mlflow"] == mlflow.__version__
    assert tags["reclab.executable"] == sys.executable
    (tmp_path / "download").mkdir()
    text = MlflowClient().download_artifacts(parent, "params.yaml", str(tmp_path / "download"))
    assert Config.load(text) == Config.load(params_file)


def test_metric_key():
    assert tracking.metric_key("precision@10") == "precision_at_10"
    assert tracking.metric_key("rmse") == "rmse"


def test_run_name_names_every_model_that_tuning_searches():
    shipped = PROJECT / "params" / "ml-100k.yaml"
    assert tracking.run_name(Config.load(shipped)) == "ml-100k/ImplicitALS+EASE/smbo"
    assert tracking.run_name(Config.load(shipped), "2-tune") == "ml-100k/ImplicitALS+EASE/smbo/2-tune"
    # One model tuned: named after it; Spark searches its own model only.
    assert tracking.run_name(Config.load(shipped, {"tune.models": []})) == "ml-100k/ImplicitALS/smbo"
    assert tracking.run_name(Config.load(shipped, {"backend": "spark"})) == "ml-100k/SparkALS/smbo"


def test_pipelines_logging_the_same_dataset_at_once_all_succeed(store, params_file, split):
    # Each pipeline's preprocess stage records the same split as MLflow dataset inputs; MLflow
    # looks a dataset up and inserts it when missing in one transaction, so runs racing on the
    # same (experiment, name, digest) collide on the datasets table's unique key.
    import threading

    data, train, valid, test = split
    stages = [tracking.start_stage("preprocess", params_file,
                                   parent_run_id=tracking.start_pipeline(Config.load(params_file)))
              for _ in range(6)]
    barrier = threading.Barrier(len(stages))
    errors = []

    def log(stage):
        barrier.wait()
        try:
            stage.log_dataset(train, "synthetic/train", "training")
        except Exception as error:   # noqa: BLE001 - collected and reported below
            errors.append(error)

    threads = [threading.Thread(target=log, args=(stage,)) for stage in stages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    client = MlflowClient()
    for stage in stages:
        logged = client.get_run(stage.run_id).inputs.dataset_inputs
        assert [(entry.dataset.name, entry.dataset.digest) for entry in logged] == \
            [("synthetic/train", train.fingerprint()[:16])]


def test_a_notebook_process_that_exits_mid_stage_leaves_no_run_running(store, params_file):
    """A stage notebook opened alone (no ``reclab run`` to end its runs) whose cell raised and
    whose kernel then exited: its stage and pipeline runs are marked KILLED at exit (issue 17)."""
    import subprocess
    import sys

    code = ("import sys\nfrom reclab import tracking\n"
            "stage = tracking.start_stage('preprocess', sys.argv[1])\n"
            "print(stage.run_id, stage.parent_run_id)\n"
            "raise RuntimeError('a cell failed')\n")
    done = subprocess.run([sys.executable, "-c", code, str(params_file)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "a cell failed" in done.stderr
    run_id, parent_id = done.stdout.split()
    client = MlflowClient()
    for target in (run_id, parent_id):
        run = client.get_run(target)
        assert run.info.status == "KILLED"
        assert "exited before the stage finished" in run.data.tags["reclab.error"]


def test_a_tune_notebook_interrupted_while_logging_a_trial_leaves_no_trial_running(store, params_file):
    """A tune cell interrupted (Ctrl-C) while its trial's run was being logged, then the kernel
    shut down: the exit hook ends that trial's run too, as ``fail_stage`` does under ``reclab
    run``; it stayed RUNNING under a KILLED stage run."""
    import subprocess

    code = ("import sys\nfrom reclab import tracking\nfrom reclab.tuning import Trial\n"
            "first = tracking.start_stage('preprocess', sys.argv[1])\nfirst.finish()\n"
            "stage = tracking.start_stage('tune', parent_run_id=first.parent_run_id)\n"
            "print(stage.run_id, flush=True)\n"
            "log = tracking.trial_logger(stage, 'ndcg@10')\n"
            "log(Trial(0, {'user_reg': 1.0}, 0.1, {}, 0.5, 'ok', None, None, ()))\n"
            "class Interrupt:\n"
            "    def __float__(self):\n"
            "        raise KeyboardInterrupt\n"
            "log(Trial(1, {'user_reg': 10.0}, 0.2, {'recall@10': Interrupt()}, 0.5, 'ok', None, None, ()))\n")
    done = subprocess.run([sys.executable, "-c", code, str(params_file)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr, done.stderr[-2000:]
    run_id = done.stdout.split()[0]
    client = MlflowClient()
    assert client.get_run(run_id).info.status == "KILLED"
    trials = client.search_runs([client.get_run(run_id).info.experiment_id],
                                filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'")
    assert sorted((run.data.tags["reclab.trial"], run.info.status) for run in trials) == [
        ("0", "FINISHED"), ("1", "KILLED")]


def test_a_stage_given_its_pipeline_outside_reclab_run_ends_its_runs_at_exit(store, params_file):
    """A stage notebook given ``parent_run_id`` in JupyterLab (no ``reclab run`` to end its
    runs) whose cell raised and whose kernel exited: the stage run, and the pipeline it marked
    RUNNING, end KILLED at exit. In a kernel of ``reclab run`` (the environment names the
    pipeline it drives) they are left to the runner, which ends them with the stage's error."""
    import subprocess

    first = tracking.start_stage("preprocess", params_file)
    first.finish()
    pipeline_id = first.parent_run_id
    code = ("import sys\nfrom reclab import tracking\n"
            "stage = tracking.start_stage('tune', parent_run_id=sys.argv[1])\n"
            "print(stage.run_id)\n"
            "raise RuntimeError('a cell failed')\n")
    client = MlflowClient()
    for runner in (None, pipeline_id):
        env = {name: value for name, value in os.environ.items() if name != RUNNER_ENV}
        if runner:
            env[RUNNER_ENV] = runner
        before = client.get_run(pipeline_id).info.status
        done = subprocess.run([sys.executable, "-c", code, pipeline_id], capture_output=True,
                              text=True, timeout=300, env=env)
        assert done.returncode == 1 and "a cell failed" in done.stderr, done.stderr[-2000:]
        run = client.get_run(done.stdout.split()[0])
        if runner:   # untouched: the runner marks them FAILED
            assert run.info.status == "RUNNING"
            assert client.get_run(pipeline_id).info.status == before == "KILLED"
        else:
            assert before == "FINISHED"
            for target in (run, client.get_run(pipeline_id)):
                assert target.info.status == "KILLED"
                assert "exited before the stage finished" in target.data.tags["reclab.error"]


def test_a_stage_given_its_pipeline_with_other_parameters_records_them_or_stops(store, params_file):
    """Outside ``reclab run``, a stage given its pipeline (``parent_run_id``) and other parameters
    than the pipeline's: as ``reclab run --resume --set`` does, a value that a finished earlier
    stage used is refused, nothing written; any other change is recorded in the pipeline, whose
    params.yaml then says what its stages ran with (stage 1 run again with another seed)."""
    first = tracking.start_stage("preprocess", params_file)
    first.finish()
    pipeline_id, seed = first.parent_run_id, first.params["seed"]
    tune_run = tracking.start_stage("tune", parent_run_id=pipeline_id)
    tune_run.finish()
    before = len(tracking.stage_runs(pipeline_id))
    with pytest.raises(ReclabError) as error:
        tracking.start_stage("train", overrides={"seed": seed + 5}, parent_run_id=pipeline_id)
    message = str(error.value)
    assert (f"seed={seed + 5}: the finished 'preprocess' stage of pipeline run {pipeline_id} "
            f"used seed={seed}") in message, message
    assert "from 'preprocess' on" in message and "start a new pipeline" in message
    assert len(tracking.stage_runs(pipeline_id)) == before
    client = MlflowClient()
    assert pipeline_params(client, pipeline_id)["seed"] == seed
    assert client.get_run(pipeline_id).info.status == "FINISHED"

    again = tracking.start_stage("preprocess", overrides={"seed": seed + 5}, parent_run_id=pipeline_id)
    assert again.params["seed"] == seed + 5
    assert client.get_run(pipeline_id).info.status == "RUNNING"
    again.finish()
    parent = client.get_run(pipeline_id)
    assert parent.info.status == "FINISHED"
    assert pipeline_params(client, pipeline_id)["seed"] == seed + 5
    assert parent.data.tags["reclab.resumed_with"] == f"seed: {seed} -> {seed + 5}"
    assert f"Stage 'preprocess' run again with seed: {seed} -> {seed + 5}" in \
        parent.data.tags["mlflow.note.content"]
    assert again.run_id in client.get_run(tune_run.run_id).data.tags["reclab.outdated"]
    # --resume runs the outdated stage again (it counted as finished, so resume kept it)
    assert tracking.pipeline_state(pipeline_id)["finished"] == ["preprocess"]
    later = tracking.start_stage("tune", parent_run_id=pipeline_id)   # the pipeline's new seed
    assert later.params["seed"] == seed + 5
    later.finish()
    assert tracking.pipeline_state(pipeline_id)["finished"] == ["preprocess", "tune"]


def test_a_stage_run_again_that_failed_is_unfinished_for_resume(store, params_file):
    """A finished stage run again in its pipeline (``--resume --stages 2-5 --set tune.n_trials=..``)
    whose new run failed: its earlier run is superseded, so the stage is not finished, and
    ``--resume`` runs it again (continuing the failed run's search) rather than going on to train
    with the superseded run's result, made with the old parameters."""
    first = tracking.start_stage("preprocess", params_file)
    first.finish()
    pipeline_id = first.parent_run_id
    tracking.start_stage("tune", parent_run_id=pipeline_id).finish()
    assert tracking.pipeline_state(pipeline_id)["finished"] == ["preprocess", "tune"]
    again = tracking.start_stage("tune", overrides={"tune.n_trials": 3}, parent_run_id=pipeline_id)
    tracking.fail_stage(pipeline_id, "tune", None, "RuntimeError: a trial's fit failed")
    assert MlflowClient().get_run(again.run_id).info.status == "FAILED"
    assert tracking.pipeline_state(pipeline_id)["finished"] == ["preprocess"]
    later = tracking.start_stage("tune", parent_run_id=pipeline_id)   # what --resume runs now
    later.finish()
    assert tracking.pipeline_state(pipeline_id)["finished"] == ["preprocess", "tune"]


def test_a_pipeline_stays_running_while_another_kernel_runs_a_stage_of_it(store, params_file):
    """Two notebooks run stages of one pipeline at once (two kernels): the first to finish
    leaves the pipeline RUNNING; the last marks it FINISHED."""
    first = tracking.start_stage("preprocess", params_file)
    first.finish()
    one = tracking.start_stage("tune", parent_run_id=first.parent_run_id)
    two = tracking.start_stage("tune", parent_run_id=first.parent_run_id)
    client = MlflowClient()
    one.finish()
    assert client.get_run(first.parent_run_id).info.status == "RUNNING"
    two.finish()
    assert client.get_run(first.parent_run_id).info.status == "FINISHED"


def test_a_notebook_opened_alone_continues_only_the_latest_pipeline(store, params_file):
    """Never an older pipeline in its place: pipeline 1 has stages 1-3 finished, pipeline 2 (the
    latest, seed 1) stages 1-2; stage 4 opened alone stops, naming pipeline 2, rather than
    continuing pipeline 1 (whose train run is the latest finished one of the experiment). So it
    does after pipeline 2's train stage was interrupted (its kernel restarted mid-stage)."""
    from reclab.tracking.runs import _end_if_running

    def alone(stage, **overrides):
        return tracking.start_stage(stage, params_file, overrides=overrides or None)

    for stage in ("preprocess", "tune", "train"):
        first = alone(stage)
        first.finish()
    for stage in ("preprocess", "tune"):
        second = alone(stage, seed=1)
        second.finish()
    assert second.parent_run_id != first.parent_run_id

    def refused():
        with pytest.raises(ReclabError) as error:
            tracking.start_stage("postprocess", overrides={"experiment": "unit"})
        message = str(error.value)
        assert f"the latest pipeline of experiment 'unit', 'synthetic/Bias/grid' (run " \
               f"{second.parent_run_id}), has no finished 'train' stage" in message, message
        assert "parent_run_id" in message and first.parent_run_id not in message
        for pipeline_id in (first.parent_run_id, second.parent_run_id):
            assert "postprocess" not in {run.data.tags["reclab.stage"]
                                         for run in tracking.stage_runs(pipeline_id)}
        return message

    assert "(it has no 'train' stage)" in refused()
    train = alone("train", seed=1)
    assert train.parent_run_id == second.parent_run_id
    _end_if_running(store, train.run_id, train.parent_run_id)   # its kernel restarted mid-stage
    assert f"(its 'train' stage is KILLED (run {train.run_id}))" in refused()
    # the older pipeline is still there for whoever names it
    fourth = tracking.start_stage("postprocess", overrides={"experiment": "unit"},
                                  parent_run_id=first.parent_run_id)
    assert fourth.parent_run_id == first.parent_run_id and fourth.joined == "given"
    assert tracking.latest_pipeline("unit").info.run_id == second.parent_run_id


_NOTEBOOK_ALONE = ("import sys\nfrom reclab import tracking\n"
                   "stage = tracking.start_stage(sys.argv[1], sys.argv[2])\n"
                   "if sys.argv[3] == 'finish':\n"
                   "    stage.finish()\n"
                   "print(stage.run_id, stage.parent_run_id, flush=True)\n"
                   "if sys.argv[3] == 'finish':\n"
                   "    sys.stdin.readline()   # a kernel left open, until it is shut down\n"
                   "else:\n"
                   "    raise RuntimeError('a cell failed')\n")


def test_shutting_down_a_finished_stages_kernel_leaves_the_pipeline_to_the_next_stage(
        store, params_file):
    """Stage 1 finished in one kernel, left open; stage 2 started in another; stage 1's kernel shut
    down (a graceful exit: its exit handlers run): the pipeline, which stage 2 runs, stays
    RUNNING without an error, and stage 2 finishes it."""
    import subprocess
    import sys

    first = subprocess.Popen([sys.executable, "-c", _NOTEBOOK_ALONE, "preprocess", str(params_file),
                              "finish"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        run_id, parent_id = first.stdout.readline().split()
        second = tracking.start_stage("tune", params_file)
        assert second.parent_run_id == parent_id
    finally:
        _, stderr = first.communicate("\n", timeout=300)
    assert first.returncode == 0, stderr
    client = MlflowClient()
    assert client.get_run(run_id).info.status == "FINISHED"
    parent = client.get_run(parent_id)
    assert parent.info.status == "RUNNING" and "reclab.error" not in parent.data.tags
    second.finish()
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and "reclab.error" not in parent.data.tags


def test_a_kernel_that_exits_mid_stage_ends_the_pipeline_only_if_no_other_stage_runs(
        store, params_file):
    """A stage kernel exiting mid-stage ends its stage run, and the pipeline only when no other
    stage run of it is RUNNING; a pipeline so ended and continued again keeps no error once its
    stage finishes."""
    import subprocess
    import sys

    def exits_mid_stage():
        done = subprocess.run([sys.executable, "-c", _NOTEBOOK_ALONE, "tune", str(params_file),
                               "fail"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 1 and "a cell failed" in done.stderr
        return done.stdout.split()

    first = tracking.start_stage("preprocess", params_file)
    first.finish()
    client = MlflowClient()
    run_id, parent_id = exits_mid_stage()   # alone in the pipeline: ends it
    assert parent_id == first.parent_run_id
    assert client.get_run(run_id).info.status == "KILLED"
    parent = client.get_run(parent_id)
    assert parent.info.status == "KILLED" and "exited before" in parent.data.tags["reclab.error"]
    tune = tracking.start_stage("tune", params_file)   # continues the interrupted pipeline
    assert tune.parent_run_id == parent_id
    run_id, _ = exits_mid_stage()   # beside a running tune stage: leaves the pipeline to it
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.get_run(parent_id).info.status == "RUNNING"
    tune.finish()
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and "reclab.error" not in parent.data.tags


_START_CELL_TWICE = ("import sys\nfrom reclab.pipeline import start_notebook\n"
                     "cell = {'params_file': sys.argv[2]}   # the notebook's globals()\n"
                     "first, _ = start_notebook(sys.argv[1], cell)\n"
                     "second, _ = start_notebook(sys.argv[1], cell)   # the cell run again\n"
                     "print(first.run_id, first.parent_run_id, second.run_id, second.parent_run_id)\n"
                     "second.finish()\n")


def test_the_start_cell_run_again_in_its_kernel_leaves_no_run_behind(store, params_file):
    """A stage notebook's first cell (start_notebook) run again in its kernel (the cell twice, or
    Run all again after a failed cell) starts a new stage run: the one it started before is ended
    then, not left RUNNING until the kernel exits, so the stage that finishes finishes its
    pipeline, and the kernel's exit ends nothing (it marked a finished pipeline KILLED)."""
    import subprocess

    client = MlflowClient()
    tracking.start_stage("preprocess", params_file).finish()
    for stage in ("tune", "preprocess"):
        done = subprocess.run([sys.executable, "-c", _START_CELL_TWICE, stage, str(params_file)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        first, first_parent, second, parent = done.stdout.split()
        assert client.get_run(second).info.status == "FINISHED"
        pipeline = client.get_run(parent)
        assert pipeline.info.status == "FINISHED" and "reclab.error" not in pipeline.data.tags
        assert client.get_run(first).info.status == "KILLED"
        assert second in client.get_run(first).data.tags["reclab.error"]   # says what replaced it
        if stage == "preprocess":   # the cell started a new pipeline: the first one ends with its run
            assert first_parent != parent
            assert client.get_run(first_parent).info.status == "KILLED"
        else:
            assert first_parent == parent


def test_a_cell_run_after_the_finish_cell_is_refused_and_changes_nothing(store, params_file, split):
    """A cell run again after its stage's finish cell (the finish cell too), as is or edited,
    would write into the finished run, whose results later stages may already have read (a split
    replaced under the tune run made from it, with no run superseded and nothing marked outdated):
    it stops with a clear error naming the run and how to run the stage again, and the run stays
    as it finished. Reading the earlier stages' results is still allowed."""
    from matplotlib.figure import Figure

    data, train, valid, test = split
    first = tracking.start_stage("preprocess", params_file)
    tracking.log_split(first, data, train, valid, test)
    first.finish("preprocessed")
    client = MlflowClient()
    before = client.get_run(first.run_id)
    other = make_split(Config.from_values({"synthetic": {"n_users": 80, "n_items": 120,
                                                         "n_ratings": 2500}, "seed": 9}), data)
    cells = [lambda: tracking.log_split(first, data, *other), lambda: first.log_metrics({"x": 1}),
             lambda: first.log_figure(Figure(), "again"), lambda: first.log_table(pd.DataFrame(), "t"),
             lambda: first.log_params({"y": 2}), lambda: tracking.trial_logger(first, "ndcg@10"),
             lambda: tracking.log_model(first, Popularity().fit(train), train),
             lambda: first.finish("finished twice")]
    for cell in cells:
        with pytest.raises(ReclabError, match=f"stage run {first.run_id} .*is finished.*run the "
                                              f"stage again"):
            cell()
    after = client.get_run(first.run_id)
    assert (after.info.status, after.info.end_time) == ("FINISHED", before.info.end_time)
    assert (after.data.tags, after.data.metrics, after.data.params) == (
        before.data.tags, before.data.metrics, before.data.params)
    assert {item.path for item in client.list_artifacts(first.run_id)} == {"split"}
    tune_run = tracking.start_stage("tune", parent_run_id=first.parent_run_id)
    tune_run.finish()
    assert [part.fingerprint() for part in tracking.load_split(tune_run)] == [
        part.fingerprint() for part in (train, valid, test)]


def test_pyfunc_predict_refuses_lengths_and_users_that_are_not_ones(tmp_path):
    # Called directly (RecommenderPyfunc is public; MLflow's schema refuses these before predict):
    # n=2.7 was cut to 2, True taken as 1, "5" as 5, inf and 'abc' were pandas casting errors,
    # 2**63 wrapped to "n must be >= 1, got -9223372036854775808", and a user True found user 1.
    from reclab.tracking.pyfunc import save_pyfunc_model

    data = Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2, 3, 3], "item": [10, 11, 10, 12, 13],
                                                 "rating": [4.0, 3.0, 5.0, 2.0, 1.0]}))
    model = Popularity().fit(data)
    model_file = model.save(tmp_path / "model.npz")
    path = save_pyfunc_model(tmp_path / "pyfunc", model, model_file, data)
    wrapper = mlflow.pyfunc.load_model(str(path)).unwrap_python_model()
    for bad in (2.7, True, "5", np.inf, "abc", [1, 2], 0):
        with pytest.raises(ReclabError, match=r"n must be an integer >= 1, got"):
            wrapper.predict(None, pd.DataFrame({"user": [1], "n": [bad]}))
    for bad in (True, [1]):
        with pytest.raises(ReclabError, match="unknown user id"):
            wrapper.predict(None, pd.DataFrame({"user": [bad]}))
    expected, _ = model.recommend(data.user_index([2, 1]), n=3)
    # A length beyond the catalog (even beyond int64) is every unseen item; a missing one is 10.
    out = wrapper.predict(None, pd.DataFrame({"user": [2, 1], "n": np.array([2**63, 1], dtype=np.uint64)}))
    assert out["item"].tolist() == data.item_ids[expected[0]].tolist() + data.item_ids[expected[1, :1]].tolist()
    out = wrapper.predict(None, pd.DataFrame({"user": [2, 3], "n": [None, 1.0]}))
    assert out.groupby("user").size().tolist() == [3, 1]


def test_a_pyfunc_model_loaded_where_reclab_is_installed_imports_the_installed_reclab(tmp_path):
    """The copy of reclab saved with the model is for an environment without reclab
    (test_pipeline.py serves one): a new process where reclab is installed imports that one, whose
    numba kernels are compiled, rather than the copy (8 s more per load, compiling them anew)."""
    import reclab
    from reclab.tracking.pyfunc import save_pyfunc_model

    data = Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 10]}), rating=None)
    model = Popularity().fit(data)
    path = save_pyfunc_model(tmp_path / "pyfunc", model, model.save(tmp_path / "model.npz"), data)
    copy = path / "artifacts" / "reclab"
    assert (copy / "tracking" / "pyfunc.py").read_text() == Path(reclab.tracking.pyfunc.__file__).read_text()
    assert not list(copy.rglob("__pycache__"))   # source only: no compiled caches
    script = ("import sys, mlflow.pyfunc, pandas as pd\n"
              "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
              "print(model.predict(pd.DataFrame({'user': [2]}))['item'].tolist())\n"
              "import reclab\n"
              "print(reclab.__file__)\n")
    completed = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                               text=True, cwd=tmp_path, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    items, imported = completed.stdout.strip().splitlines()[-2:]
    assert items == "[11]"
    assert Path(imported) == Path(reclab.__file__)


def test_pyfunc_model_of_ids_beyond_int64(tmp_path):
    # MLflow's integers are int64: saving refused the input example of uint64 user ids with
    # "Can not safely convert uint64 to int64", so such data had no servable model.
    from reclab.tracking.pyfunc import save_pyfunc_model

    users = np.array([2**64 - 1, 2**63, 3, 3, 5], dtype=np.uint64)
    data = Interactions.from_frame(pd.DataFrame({"user": users, "item": users[::-1],
                                                 "rating": [1.0, 2.0, 3.0, 4.0, 5.0]}))
    model = Popularity().fit(data)
    loaded = mlflow.pyfunc.load_model(str(save_pyfunc_model(
        tmp_path / "pyfunc", model, model.save(tmp_path / "model.npz"), data)))
    out = loaded.predict(pd.DataFrame({"user": np.array([2**64 - 1, 3], dtype=np.uint64), "n": [2, 1]}))
    expected, _ = model.recommend(data.user_index(np.array([2**64 - 1, 3], dtype=np.uint64)), n=2)
    assert out["user"].tolist() == [2**64 - 1, 2**64 - 1, 3]
    assert out["item"].tolist() == data.item_ids[expected[0]].tolist() + data.item_ids[expected[1, :1]].tolist()


def test_pyfunc_model_refuses_data_of_another_shape_than_the_model(tmp_path):
    # Its ids and titles name the model's indices: data with more users and items was taken,
    # and the model's items 10..13 were served as 20..23.
    from reclab.tracking.pyfunc import save_pyfunc_model

    fitted = Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2, 3], "item": [10, 11, 12, 13],
                                                   "rating": [1.0, 2.0, 3.0, 4.0]}))
    other = Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2, 3, 4], "item": [20, 21, 22, 23, 24],
                                                  "rating": [1.0, 2.0, 3.0, 4.0, 5.0]}))
    model = Popularity().fit(fitted)
    with pytest.raises(ReclabError, match=r"has 4 users x 5 items, but the Popularity was fitted on "
                                          r"3 x 4; pass the Interactions it was fitted on"):
        save_pyfunc_model(tmp_path / "pyfunc", model, model.save(tmp_path / "model.npz"), other)
    assert not (tmp_path / "pyfunc").exists()
