"""The stage notebooks as papermill and JupyterLab users run them: one at a time, no parent run.

The five notebooks are executed with the ``papermill`` command from the project root (not from
``notebooks/``), as the README shows, each without ``parent_run_id``: stage 1 starts a pipeline
and every later notebook continues it, because it is the experiment's latest pipeline, still
open, and the notebook was given nothing that disagrees with it. The first output of every
notebook names its pipeline and links to it in the MLflow UI.

Then, in-process on the same real store: a finished pipeline is never joined again (a second
train notebook stops with a message naming the pipeline and ``parent_run_id``), a notebook given
other parameters than the open pipeline's stops too, one given the same ones joins, and a
stage re-run in a pipeline through ``parent_run_id`` visibly supersedes the earlier run.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient

from helpers import new_store, tiny_params
from reclab import pipeline, tracking
from reclab.errors import ReclabError

PROJECT = Path(__file__).resolve().parent.parent
PAPERMILL = Path(sys.executable).parent / "papermill"
EXPERIMENT = "notebooks-alone"


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The five notebooks run one by one with the papermill command, from the project root."""
    folder = tmp_path_factory.mktemp("papermill")
    params_file = tiny_params(folder, EXPERIMENT)
    uri = new_store(folder)
    # The store comes from the environment, as a user's MLFLOW_TRACKING_URI would.
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)   # MLflow's default, as in JupyterLab
    executed = {}
    for stage, name in pipeline.NOTEBOOKS.items():
        given = ["-p", "params_file", str(params_file)] if stage == "preprocess" else []
        completed = subprocess.run(
            [str(PAPERMILL), f"notebooks/{name}", str(folder / name), "-p", "experiment",
             EXPERIMENT, *given, "--no-progress-bar"],
            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)
        assert completed.returncode == 0, f"{name}: {completed.stderr[-3000:]}"
        executed[stage] = nbformat.read(folder / name, as_version=4)
    return {"folder": folder, "uri": uri, "params_file": params_file, "executed": executed,
            "client": MlflowClient(tracking_uri=uri)}


def pipelines(client, experiment=EXPERIMENT):
    found = client.get_experiment_by_name(experiment)
    return [run for run in client.search_runs([found.experiment_id], max_results=1000)
            if "reclab.pipeline" in run.data.tags]


def stage_output(notebook) -> dict:
    """The output of the cell that starts the stage run (the first thing a notebook shows)."""
    cell = next(cell for cell in notebook.cells
                if cell.cell_type == "code" and "start_notebook(" in cell.source)
    return next(output for output in cell.outputs if output.output_type == "execute_result")["data"]


def test_papermill_from_the_project_root_runs_the_five_notebooks_as_one_pipeline(alone):
    client, uri = alone["client"], alone["uri"]
    (parent,) = pipelines(client)
    assert parent.data.tags["reclab.pipeline"] == "notebook"
    assert parent.info.status == "FINISHED"
    runs = tracking.stage_runs(parent.info.run_id, uri)
    assert [run.data.tags["reclab.stage"] for run in runs] == list(pipeline.STAGES)
    assert all(run.info.status == "FINISHED" for run in runs)
    # every later stage used the pipeline's parameters (tiny.yaml), not params/default.yaml
    assert {run.data.params["synthetic.n_users"] for run in runs} == {"100"}
    evaluate_run = next(run for run in runs if run.data.tags["reclab.stage"] == "evaluate")
    assert evaluate_run.data.metrics["precision_at_10"] > 0
    # nothing was written to the project's own store
    assert all(not (alone["folder"] / name).with_suffix(".db").exists()
               for name in pipeline.NOTEBOOKS.values())
    # MLflow's artifact download bars (red standard error in JupyterLab) stay out of the
    # notebooks, which download the earlier stages' artifacts without `reclab run` around them
    for stage, notebook in alone["executed"].items():
        errors = "".join(output.get("text", "") for cell in notebook.cells
                         if cell.cell_type == "code" for output in cell.outputs
                         if output.get("name") == "stderr")
        assert "Downloading artifacts" not in errors, (stage, errors[:500])


def test_the_first_output_names_the_pipeline_and_links_to_it(alone):
    (parent,) = pipelines(alone["client"])
    pipeline_id = parent.info.run_id
    for stage, notebook in alone["executed"].items():
        data = stage_output(notebook)
        text = data["text/plain"]
        assert f"pipeline 'synthetic/ImplicitALS/random' (run {pipeline_id})" in text, text
        expected = "a new pipeline" if stage == "preprocess" else "continued"
        assert expected in text, text
        link = "http://127.0.0.1:5000" + tracking.ui_path(parent.info.experiment_id, pipeline_id)
        assert f'href="{link}"' in data["text/html"].replace("&amp;", "&")


def test_a_finished_pipeline_is_never_joined(alone):
    client, uri = alone["client"], alone["uri"]
    (parent,) = pipelines(client)
    before = len(tracking.stage_runs(parent.info.run_id, uri))
    with pytest.raises(ReclabError) as error:
        tracking.start_stage("train", overrides={"experiment": EXPERIMENT}, uri=uri)
    message = str(error.value)
    assert f"run {parent.info.run_id}" in message
    assert "already has a finished 'train' stage" in message
    assert f"parent_run_id={parent.info.run_id!r}" in message
    assert len(tracking.stage_runs(parent.info.run_id, uri)) == before
    assert len(pipelines(client)) == 1


def test_an_open_pipeline_is_joined_only_with_matching_parameters(alone):
    client, uri = alone["client"], alone["uri"]
    first = tracking.start_stage("preprocess", alone["params_file"], uri=uri)
    first.finish()
    with pytest.raises(ReclabError, match=r"other parameters.*tune\.n_trials=7 \(pipeline: 2\)"):
        tracking.start_stage("tune", overrides={"experiment": EXPERIMENT, "tune.n_trials": 7},
                             uri=uri)
    with pytest.raises(ReclabError, match=r"other parameters.*seed"):
        tracking.start_stage("tune", alone["params_file"], overrides={"seed": 99}, uri=uri)
    joined = tracking.start_stage("tune", overrides={"experiment": EXPERIMENT, "tune.n_trials": 2},
                                  uri=uri)
    assert joined.parent_run_id == first.parent_run_id and joined.joined == "continued"
    assert joined.params["synthetic"]["n_users"] == 100   # the pipeline's, not default.yaml's
    joined.finish()
    assert len(pipelines(client)) == 2


def test_a_notebook_given_the_pipelines_file_joins_whatever_earlier_notebooks_set(alone, tmp_path):
    """The README's steps with a parameter file of one's own: -p n_trials 3 given to the first two
    notebooks, the file alone to the third (which has no n_trials parameter) joins; a file that
    differs in a key no notebook parameter sets does not."""
    client, uri = alone["client"], alone["uri"]
    params_file = alone["params_file"]
    first = tracking.start_stage("preprocess", params_file, overrides={"tune.n_trials": 3}, uri=uri)
    first.finish()
    tune = tracking.start_stage("tune", params_file, overrides={"tune.n_trials": 3}, uri=uri)
    tune.finish()
    other = tmp_path / "other.yaml"
    other.write_text(params_file.read_text().replace("n_bootstrap: 20", "n_bootstrap: 30"))
    assert "n_bootstrap: 30" in other.read_text()
    with pytest.raises(ReclabError, match=r"other parameters.*evaluation\.n_bootstrap=30 \(pipeline: 20\)"
                                          r"; to run 'train' in it anyway, pass parent_run_id"):
        tracking.start_stage("train", other, uri=uri)
    train = tracking.start_stage("train", params_file, uri=uri)
    assert train.parent_run_id == first.parent_run_id and train.params["tune"]["n_trials"] == 3
    train.finish()


def test_a_stage_run_again_in_its_pipeline_supersedes_the_earlier_run(alone):
    client, uri = alone["client"], alone["uri"]
    first = tracking.start_stage("preprocess", alone["params_file"], uri=uri)
    first.finish()
    tune = tracking.start_stage("tune", uri=uri, parent_run_id=first.parent_run_id)
    assert tune.params["synthetic"]["n_users"] == 100   # the given pipeline's parameters
    tune.finish()
    again = tracking.start_stage("preprocess", uri=uri, parent_run_id=first.parent_run_id)
    again.finish()
    tags = {run.info.run_id: run.data.tags for run in tracking.stage_runs(first.parent_run_id, uri)}
    assert tags[first.run_id]["reclab.superseded_by"] == again.run_id
    assert tags[first.run_id]["mlflow.note.content"].startswith("**Superseded**")
    assert again.run_id in tags[tune.run_id]["reclab.outdated"]
    assert "reclab.superseded_by" not in tags[again.run_id]
    found = tracking.find_stage_run("preprocess", EXPERIMENT, first.parent_run_id, uri=uri)
    assert found.info.run_id == again.run_id   # later stages read the newest run
