"""The notebook pipeline end to end: papermill runs every stage notebook in a real kernel on small
synthetic data into a temporary MLflow store; the runs are read back with the MLflow client.

The pipeline runs once per module (fixture ``pipeline``) and many tests read it; a second
pipeline with the same parameters fails at stage 3 (an injected error), is resumed, and must end
with identical metrics.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from mlflow import MlflowClient

from reclab import pipeline, tracking
from reclab.errors import ReclabError

PROJECT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT / "notebooks"
PARAMETERS = ("params_file", "dataset", "data_dir", "model", "method", "n_trials", "k", "seed",
              "experiment", "tracking_uri", "parent_run_id")
SMALL = """\
experiment: pipeline-test
dataset: synthetic
synthetic: {n_users: 150, n_items: 200, n_ratings: 6000}
seed: 3
model: ImplicitALS
models:
  ImplicitALS:
    params: {iterations: 4}
    space:
      factors: {type: int, low: 4, high: 16}
      regularization: {type: real, low: 0.1, high: 100.0, prior: log-uniform}
tune: {method: random, n_trials: 3, metric: ndcg@10}
k: [5, 10]
evaluation: {n_bootstrap: 100}
n_recommendations: 5
"""
FIGURES = {"preprocess": {"rating_distribution", "user_bias"},
           "tune": {"convergence", "objective"}, "train": {"training_curve"},
           "postprocess": {"most_recommended"}, "evaluate": {"precision_recall_at_k"}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    params_file = folder / "small.yaml"
    params_file.write_text(SMALL, encoding="utf-8")
    return {"folder": folder, "uri": f"sqlite:///{folder / 'mlflow.db'}", "params": params_file}


@pytest.fixture(scope="module")
def client(store):
    return MlflowClient(tracking_uri=store["uri"])


@pytest.fixture(scope="module")
def pipeline_run(store):
    events = []
    result = pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                                   output_dir=store["folder"] / "first",
                                   progress=lambda *event: events.append(event))
    return result, events


def latest_by_stage(client, run_id, uri):
    return {run.data.tags["reclab.stage"]: run for run in tracking.stage_runs(run_id, uri)}


def comparable(metrics):
    """Metrics that must repeat exactly (not wall times)."""
    return {key: value for key, value in metrics.items() if "seconds" not in key}


# -- committed notebooks ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(pipeline.NOTEBOOKS.values()))
def test_committed_notebooks_are_clean_and_thin(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    declared = papermill.inspect_notebook(str(NOTEBOOKS / name))
    assert set(PARAMETERS) <= set(declared)
    assert all(declared[name]["help"] for name in PARAMETERS), "every parameter has a comment"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "committed with outputs"
            lines = cell.source.splitlines()
            assert not any(line.lstrip().startswith(("def ", "class ")) for line in lines)
            assert "import mlflow" not in cell.source


# -- one pipeline, read back ------------------------------------------------------------------
def test_five_stage_runs_under_one_finished_parent(pipeline_run, store, client):
    result, events = pipeline_run
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["reclab.pipeline"] == "reclab run"
    assert parent.info.run_name == "synthetic/ImplicitALS/random"
    assert "ndcg_at_10" in parent.data.tags["mlflow.note.content"]
    runs = tracking.stage_runs(result.run_id, store["uri"])
    assert [run.data.tags["reclab.stage"] for run in runs] == list(pipeline.STAGES)
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(run.data.tags["mlflow.parentRunId"] == result.run_id for run in runs)
    assert [event[:3] for event in events] == [
        (kind, stage, number) for number, stage in enumerate(pipeline.STAGES, 1)
        for kind in ("start", "done")]
    assert set(result.seconds) == set(pipeline.STAGES)
    assert result.summary["status"] == "FINISHED"


def test_kernels_run_this_interpreter(pipeline_run, store):
    result, _ = pipeline_run
    for run in tracking.stage_runs(result.run_id, store["uri"]):
        assert run.data.tags["reclab.executable"] == sys.executable


def test_trials_are_nested_under_the_tune_run(pipeline_run, store, client):
    result, _ = pipeline_run
    tune = latest_by_stage(client, result.run_id, store["uri"])["tune"]
    trials = client.search_runs([tune.info.experiment_id],
                                filter_string=f"tags.`mlflow.parentRunId` = '{tune.info.run_id}'")
    assert len(trials) == 3
    for trial in trials:
        assert trial.info.status == "FINISHED"
        assert 4 <= int(trial.data.params["factors"]) <= 16
        assert 0.0 < trial.data.metrics["ndcg_at_10"] <= 1.0
    best = max(trial.data.metrics["ndcg_at_10"] for trial in trials)
    assert tune.data.metrics["best_ndcg_at_10"] == pytest.approx(best)
    assert result.summary["best"]["score"] == pytest.approx(best)


def test_metrics_are_plausible_with_intervals_and_baselines(pipeline_run, store, client):
    result, _ = pipeline_run
    metrics = latest_by_stage(client, result.run_id, store["uri"])["evaluate"].data.metrics
    for prefix in ("", "Popularity/", "Bias/"):
        for name in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate"):
            for k in (5, 10):
                key = f"{prefix}{name}_at_{k}"
                assert 0.0 <= metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"] <= 1
    assert metrics["ndcg_at_10"] > 0.05          # far above random on this data
    assert metrics["hit_rate_at_10"] >= metrics["precision_at_10"]
    assert metrics["recall_at_10"] >= metrics["recall_at_5"]
    assert 0.5 < metrics["Bias/rmse"] < 2.0      # a rating model on 1-5 stars
    assert metrics["n_evaluated"] > 100
    parent = client.get_run(result.run_id).data.metrics
    assert parent["precision_at_10"] == metrics["precision_at_10"]
    assert result.summary["metrics"]["precision_at_10"] == metrics["precision_at_10"]


def test_split_fingerprints_and_dataset_are_recorded(pipeline_run, store, client):
    result, _ = pipeline_run
    preprocess = latest_by_stage(client, result.run_id, store["uri"])["preprocess"]
    parent_tags = client.get_run(result.run_id).data.tags
    for tag in ("reclab.data_fingerprint", "reclab.split_fingerprint"):
        assert len(parent_tags[tag]) == 64 and parent_tags[tag] == preprocess.data.tags[tag]
    contexts = {entry.dataset.name: {tag.key: tag.value for tag in entry.tags}["mlflow.data.context"]
                for entry in preprocess.inputs.dataset_inputs}
    assert contexts == {"synthetic/train": "training", "synthetic/valid": "validation",
                        "synthetic/test": "testing"}
    assert parent_tags["reclab.version"] and "version.numpy" in parent_tags
    split = {item.path for item in client.list_artifacts(preprocess.info.run_id, "split")}
    assert split == {"split/train.npz", "split/valid.npz", "split/test.npz"}


def test_executed_notebooks_and_figures_are_artifacts(pipeline_run, store, client):
    result, _ = pipeline_run
    runs = latest_by_stage(client, result.run_id, store["uri"])
    for stage, run in runs.items():
        name = pipeline.NOTEBOOKS[stage]
        listed = [item.path for item in client.list_artifacts(run.info.run_id, "notebook")]
        assert listed == [f"notebook/{name}"]
        local = client.download_artifacts(run.info.run_id, f"notebook/{name}",
                                          str(store["folder"]))
        executed = nbformat.read(local, as_version=4)
        outputs = [output for cell in executed.cells if cell.cell_type == "code"
                   for output in cell.outputs]
        assert outputs and not any(output.output_type == "error" for output in outputs)
        injected = [cell for cell in executed.cells
                    if "injected-parameters" in cell.metadata.get("tags", [])]
        assert len(injected) == 1 and result.run_id in injected[0].source
        images = sum("image/png" in output.get("data", {}) for output in outputs)
        assert images >= len(FIGURES[stage]), f"{name} shows its figures"
        figures = {Path(item.path).stem for item in client.list_artifacts(run.info.run_id, "figures")}
        assert FIGURES[stage] <= figures
        assert (result.output_dir / name).is_file()
    assert (result.output_dir / "params.yaml").is_file()


def test_pyfunc_model_predicts_in_a_new_process(pipeline_run, store, client):
    result, _ = pipeline_run
    train = latest_by_stage(client, result.run_id, store["uri"])["train"]
    script = (
        "import json, sys, mlflow.pyfunc, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "out = model.predict(pd.DataFrame({'user': [1, 2], 'n': [4, 4]}))\n"
        "print(json.dumps({'columns': list(out.columns), 'rows': len(out),\n"
        "                  'users': sorted(set(out['user'].tolist())),\n"
        "                  'ranks': out['rank'].tolist(), 'titles': out['title'].tolist()}))\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"]}
    completed = subprocess.run([sys.executable, "-c", script, f"runs:/{train.info.run_id}/model"],
                               capture_output=True, text=True, env=env, timeout=300,
                               cwd=store["folder"])
    assert completed.returncode == 0, completed.stderr[-2000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["columns"] == ["user", "item", "rank", "score", "title"]
    assert answer["rows"] == 8 and answer["users"] == [1, 2]
    assert answer["ranks"] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert all(title for title in answer["titles"])


def test_recommendations_of_every_user_are_logged(pipeline_run, store, client):
    result, _ = pipeline_run
    run = latest_by_stage(client, result.run_id, store["uri"])["postprocess"]
    local = client.download_artifacts(run.info.run_id, "tables/recommendations.csv",
                                      str(store["folder"]))
    table = pd.read_csv(local)
    assert list(table.columns) == ["user", "rank", "item", "title", "score"]
    assert table.groupby("user").size().max() == 5
    assert 0 < run.data.metrics["top_n_coverage"] <= 1


# -- failure, resume, determinism -------------------------------------------------------------
def test_failed_stage_then_resume_gives_identical_metrics(pipeline_run, store, client, tmp_path):
    first, _ = pipeline_run
    broken = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, broken)
    notebook = nbformat.read(broken / "03_train.ipynb", as_version=4)
    start = next(index for index, cell in enumerate(notebook.cells)
                 if "tracking.start_stage" in cell.source)
    notebook.cells.insert(start + 1, nbformat.v4.new_code_cell(
        "raise RuntimeError('injected failure')"))
    nbformat.write(notebook, broken / "03_train.ipynb")

    with pytest.raises(pipeline.PipelineError) as error:
        pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                              output_dir=tmp_path / "second", notebooks=broken)
    failure = error.value
    assert failure.stage == "train"
    assert failure.message == "RuntimeError: injected failure"
    assert "Traceback" not in str(failure)
    parent = client.get_run(failure.run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["reclab.error"] == "RuntimeError: injected failure"
    runs = latest_by_stage(client, failure.run_id, store["uri"])
    assert {stage: run.info.status for stage, run in runs.items()} == {
        "preprocess": "FINISHED", "tune": "FINISHED", "train": "FAILED"}
    kept = client.download_artifacts(runs["train"].info.run_id, "notebook/03_train.ipynb",
                                     str(tmp_path))
    errors = [output for cell in nbformat.read(kept, as_version=4).cells
              if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert [(output.ename, output.evalue) for output in errors] == [
        ("RuntimeError", "injected failure")]
    assert failure.notebook == tmp_path / "second" / "03_train.ipynb"

    resumed = pipeline.run_pipeline(resume=failure.run_id, tracking_uri=store["uri"],
                                    output_dir=tmp_path / "resumed")
    assert list(resumed.seconds) == ["train", "postprocess", "evaluate"]
    assert client.get_run(failure.run_id).info.status == "FINISHED"
    stages = [run.data.tags["reclab.stage"] for run in tracking.stage_runs(failure.run_id,
                                                                           store["uri"])]
    assert stages == ["preprocess", "tune", "train", "train", "postprocess", "evaluate"]
    # same parameters, separate processes: the same split, trials, model and metrics
    again = latest_by_stage(client, failure.run_id, store["uri"])
    before = latest_by_stage(client, first.run_id, store["uri"])
    for stage in ("preprocess", "tune", "evaluate"):
        assert comparable(again[stage].data.metrics) == comparable(before[stage].data.metrics), stage
    assert again["preprocess"].data.tags["reclab.split_fingerprint"] == \
        before["preprocess"].data.tags["reclab.split_fingerprint"]


def test_stage_plan_and_notebook_parameters_are_checked_before_running(store, client, tmp_path):
    experiment = client.get_experiment_by_name("pipeline-test")
    count = len(client.search_runs([experiment.experiment_id])) if experiment else 0
    with pytest.raises(ReclabError, match="stage 'train' needs the 'tune' stage first"):
        pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                              stages=["preprocess", "train"], output_dir=tmp_path)
    with pytest.raises(ReclabError, match="unknown stage 'fit'"):
        pipeline.parse_stages(["fit"])
    assert pipeline.parse_stages(["1-2", "evaluate"]) == ["preprocess", "tune", "evaluate"]
    stripped = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, stripped)
    notebook = nbformat.read(stripped / "01_preprocess.ipynb", as_version=4)
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("parent_run_id = None", "parent = None")
    nbformat.write(notebook, stripped / "01_preprocess.ipynb")
    with pytest.raises(ReclabError, match="01_preprocess.ipynb has no parameter 'parent_run_id'"):
        pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                              notebooks=stripped, output_dir=tmp_path)
    with pytest.raises(ReclabError, match="drop -p/--set"):
        pipeline.run_pipeline(params_file=store["params"], resume="abc", tracking_uri=store["uri"])
    experiment = client.get_experiment_by_name("pipeline-test")
    after = len(client.search_runs([experiment.experiment_id])) if experiment else 0
    assert after == count   # nothing was started


def test_a_notebook_opened_alone_continues_the_latest_pipeline(pipeline_run, store, client,
                                                               tmp_path):
    """As in JupyterLab: no parent run id; the notebook finds the latest earlier stage."""
    latest = tracking.find_stage_run("postprocess", "pipeline-test", uri=store["uri"])
    papermill.execute_notebook(
        str(NOTEBOOKS / "05_evaluate.ipynb"), str(tmp_path / "05_evaluate.ipynb"),
        parameters={"params_file": str(PROJECT / "params" / "default.yaml"),
                    "experiment": "pipeline-test", "tracking_uri": store["uri"]},
        kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
    evaluate = tracking.find_stage_run("evaluate", "pipeline-test", uri=store["uri"])
    pipeline_id = latest.data.tags["mlflow.parentRunId"]
    assert evaluate.data.tags["mlflow.parentRunId"] == pipeline_id
    train = latest_by_stage(client, pipeline_id, store["uri"])["train"]
    assert evaluate.data.tags["reclab.input.train"] == train.info.run_id
    # it used that pipeline's parameters (k = [5, 10] from the small file), not default.yaml's
    assert evaluate.data.params["k"] == "[5, 10]"
    first, _ = pipeline_run
    reference = latest_by_stage(client, first.run_id, store["uri"])["evaluate"]
    assert comparable(evaluate.data.metrics) == comparable(reference.data.metrics)
    assert client.get_run(pipeline_id).info.status == "FINISHED"


# -- real data --------------------------------------------------------------------------------
@pytest.mark.slow
def test_ml100k_pipeline(tmp_path):
    data_dir = os.environ.get("RECLAB_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-100k" / "u.data").is_file():
        pytest.skip("ml-100k not found: set RECLAB_DATA_DIR to the folder holding ml-100k/ "
                    "(the Makefile sets ../shared/data)")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = pipeline.run_pipeline(params_file=PROJECT / "params" / "ml-100k.yaml",
                                   overrides={"tune.n_trials": 4, "tune.n_initial": 3,
                                              "evaluation.n_bootstrap": 200},
                                   tracking_uri=uri, output_dir=tmp_path / "out")
    metrics = result.summary["metrics"]
    assert 0.1 < metrics["precision_at_10"] < 0.6
    assert metrics["precision_at_10"] > metrics["Bias/precision_at_10"]
    assert metrics["n_evaluated"] > 900
