"""The notebook pipeline end to end: papermill runs every stage notebook in a real kernel on small
synthetic data into a temporary MLflow store; the runs are read back with the MLflow client.

The pipeline runs once per module (fixture ``pipeline_run``) and many tests read it; a second
pipeline with the same parameters fails in the middle of stage 2 (an injected error after its
second trial), is resumed, and must end with the same trials and identical metrics. A third
pipeline (model Bias) has its stages 1-3 logged in-process and its stage 4 notebook opened alone.
The slow tests run whole pipelines on MovieLens, locally and with backend spark.
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
from mlflow import MlflowClient

from helpers import FRESH_ENVIRONMENT, new_store, site_packages_path, tiny_params
from reclab import kernels, pipeline, postprocess, tracking
from reclab.config import RUN_PARAMETERS, Config, load_data, make_model, make_split
from reclab.datasets import synthetic
from reclab.errors import ReclabError
from reclab.summary import render_summary
from reclab.models import ImplicitALS

PROJECT = Path(__file__).resolve().parent.parent
# The fork server of stage kernels runs on Linux only (reclab._kernel.ForkServer).
LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="stage kernels are forked on Linux only")
NOTEBOOKS = PROJECT / "notebooks"
# What reclab run passes to every stage (each stage's configuration parameters: test_notebook_parameters.py).
PARAMETERS = (*RUN_PARAMETERS, "experiment")
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
tune: {method: random, n_trials: 3, metric: ndcg@10, folds: 2, select: one_se}
k: [5, 10]
evaluation: {n_bootstrap: 100}
n_recommendations: 5
"""
# What a pipeline runs without --stages when its parameters leave stage 6 (online) disabled.
FIVE = [stage for stage in pipeline.STAGES if stage != "online"]
FIGURES = {"preprocess": {"rating_distribution", "user_bias"},
           "tune": {"convergence", "objective"}, "train": {"training_curve"},
           "postprocess": {"most_recommended"}, "evaluate": {"precision_recall_at_k"},
           "online": {"power_curves", "offline_vs_online"}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    params_file = folder / "small.yaml"
    params_file.write_text(SMALL, encoding="utf-8")
    return {"folder": folder, "uri": new_store(folder), "params": params_file}


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


def kept_its_start(client, tune_run, params_file, folder) -> bool:
    """Whether tuning chose the model's own parameters: stage 6 then has one model, not an
    untuned and a tuned one."""
    best = json.loads(Path(client.download_artifacts(tune_run.info.run_id, "best_params.json",
                                                     str(folder))).read_text())
    own = make_model(Config.load(params_file), best["model"]).get_params()
    return all(own[name] == value for name, value in best["params"].items())


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
    assert [run.data.tags["reclab.stage"] for run in runs] == FIVE
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(run.data.tags["mlflow.parentRunId"] == result.run_id for run in runs)
    assert [event[:3] for event in events if event[0] != "trial"] == [
        (kind, stage, number) for number, stage in enumerate(FIVE, 1)
        for kind in ("start", "done")] + [("off", "online", 6)]   # online.enabled=false
    # While stage 2 runs, its progress bar comes through: trial i of n and the best so far.
    bars = [event[3] for event in events if event[0] == "trial"]
    assert {event[1] for event in events if event[0] == "trial"} == {"tune"}
    assert any("3/3" in bar and "best ndcg@10=" in bar for bar in bars)
    assert set(result.seconds) == set(FIVE)
    assert result.summary["status"] == "FINISHED"


def test_kernels_run_this_interpreter(pipeline_run, store):
    result, _ = pipeline_run
    for run in tracking.stage_runs(result.run_id, store["uri"]):
        assert run.data.tags["reclab.executable"] == sys.executable


@LINUX_ONLY
def test_stage_kernels_are_forks_of_one_preloaded_server_and_run_every_exit_handler(tmp_path):
    """A pipeline's stage kernels (reclab/_kernel.py) are forks of one server process that has
    imported what every stage imports; each ends without the interpreter's teardown, but only
    after the exit handlers the notebook's code registered have run: an ``atexit`` function, a
    temporary folder's finalizer. The server reports each kernel's exit status."""
    from reclab._kernel import ForkServer
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(
        "import atexit, os, pathlib, sys, tempfile\n"
        f"print(sorted(set({stage_kernel_module()['PRELOADED']!r}) - set(sys.modules)))\n"
        "print(any(pathlib.Path(entry, '_kernel.py').is_file() for entry in sys.path))\n"
        "print(os.getppid(), os.getpid() == os.getpgid(0), pathlib.Path.cwd())\n"
        "atexit.register(pathlib.Path('atexit-ran').write_text, 'yes')\n"
        "kept = tempfile.TemporaryDirectory()\n"
        "pathlib.Path('folder.txt').write_text(kept.name)\n")]
    nbformat.write(notebook, tmp_path / "in.ipynb")
    with ForkServer() as forks:
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            with open(tmp_path / name / "kernel.log", "wb") as log:
                papermill.execute_notebook(
                    str(tmp_path / "in.ipynb"), str(tmp_path / name / "out.ipynb"),
                    kernel_name="python3", progress_bar=False, cwd=str(tmp_path / name),
                    kernel_manager_class=kernels.kernel_manager_class(log, forks))
        server = forks.process.pid
        assert sorted(forks.returncodes.values()) == [0, 0]   # both kernels ended, reaped
    assert forks.process.returncode == 0
    for name in ("one", "two"):
        printed = nbformat.read(tmp_path / name / "out.ipynb", as_version=4).cells[0].outputs[0]
        # all preloaded; reclab/ not on sys.path; a child of the server leading its own session,
        # in the folder papermill gave it
        assert printed["text"].splitlines() == ["[]", "False", f"{server} True {tmp_path / name}"]
        assert (tmp_path / name / "atexit-ran").read_text() == "yes"
        assert not Path((tmp_path / name / "folder.txt").read_text()).exists()


@LINUX_ONLY
def test_a_forked_kernel_that_dies_is_seen_dead_and_ends_with_its_server(tmp_path):
    """jupyter_client drives a forked kernel as its own child: a kernel killed outright reads as
    dead with its signal; closing the server (or its process ending) ends the kernels it
    started, as a pipeline process that dies ends them."""
    import asyncio

    import psutil
    from reclab._kernel import ForkServer

    async def start(manager_class):
        manager = manager_class(kernel_name="python3")
        await manager.start_kernel(cwd=str(tmp_path))
        return manager

    with open(tmp_path / "kernel.log", "wb") as log, ForkServer() as forks:
        manager_class = kernels.kernel_manager_class(log, forks)
        killed, orphaned = (asyncio.run(start(manager_class)) for _ in range(2))
        try:
            os.kill(killed.provisioner.pid, 9)
            assert killed.provisioner.process.wait(timeout=30) == -9
            assert not asyncio.run(killed.is_alive())
            kernel = psutil.Process(orphaned.provisioner.pid)
            assert kernel.ppid() == forks.process.pid and asyncio.run(orphaned.is_alive())
            forks.process.kill()
            assert psutil.wait_procs([kernel], timeout=30)[1] == []   # gone with its parent
            assert orphaned.provisioner.process.poll() is not None
        finally:
            for manager in (killed, orphaned):   # their connection files and socket folders
                asyncio.run(manager.shutdown_kernel(now=True))


def test_a_stage_kernel_reaps_the_children_that_ended_and_keeps_the_living():
    """What a stage kernel's shutdown waits for (reclab/_kernel.py): children still running, not
    the ones that ended unwaited for (pyspark's JVM), which it reaps instead."""
    import psutil
    living = stage_kernel_module()["living"]
    ended, running = subprocess.Popen(["true"]), subprocess.Popen(["sleep", "60"])
    try:
        processes = [psutil.Process(ended.pid), psutil.Process(running.pid)]
        for _ in range(500):
            if processes[0].status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.01)
        assert processes[0].status() == psutil.STATUS_ZOMBIE
        assert living(processes) == [processes[1]]
        assert not psutil.pid_exists(ended.pid)   # reaped: no longer in the process table
    finally:
        running.kill()
        running.wait()


# A stage kernel in a fresh interpreter (a kernel app takes over the process's standard streams
# and signals), which a client thread asks to print, then to shut down.
_SHUTDOWN = """
import json, runpy, sys, threading, time
from pathlib import Path
module = runpy.run_path(sys.argv[1], run_name="reclab_kernel")
connection, result = Path(sys.argv[2]), Path(sys.argv[3])

def client():
    from jupyter_client import BlockingKernelClient
    while not connection.exists() or not connection.read_text():
        time.sleep(0.05)
    kernel = BlockingKernelClient(connection_file=str(connection))
    kernel.load_connection_file()
    kernel.start_channels()
    kernel.wait_for_ready(timeout=60)
    kernel.execute_interactive("print('output to flush')", timeout=60)
    kernel.shutdown()

threading.Thread(target=client, daemon=True).start()
sys.argv = [sys.argv[1], "-f", str(connection), "--IPKernelApp.transport=ipc",
            f"--IPKernelApp.ip={connection}.ipc"]
module["_run_kernel"]()
from ipykernel.kernelapp import IPKernelApp
result.write_text(json.dumps(IPKernelApp.instance().control_thread.is_alive()))
"""


def test_a_stage_kernel_ends_its_control_thread_before_the_exit_handlers_stop_iopub(tmp_path):
    """ipykernel's exit handlers stop the IOPub thread first, while the control thread may still
    flush output to it after its shutdown reply: that flush then waited 10 s, and the stage 5 s
    until SIGTERM (3 of 125 stage kernels). A stage kernel's control thread has ended when its
    loop returns, before any exit handler runs (it was still alive there)."""
    result = tmp_path / "control-alive.json"
    subprocess.run([sys.executable, "-c", _SHUTDOWN, str(kernels.KERNEL_LAUNCHER),
                    str(tmp_path / "kernel.json"), str(result)], check=True, capture_output=True, timeout=120)
    assert json.loads(result.read_text()) is False


def stage_kernel_module() -> dict:
    """The names of reclab/_kernel.py (a script, run by its path), without running its main."""
    import runpy
    return runpy.run_path(str(kernels.KERNEL_LAUNCHER), run_name="reclab_kernel")


def test_trials_are_nested_under_the_tune_run(pipeline_run, store, client):
    result, _ = pipeline_run
    tune = latest_by_stage(client, result.run_id, store["uri"])["tune"]
    trials = client.search_runs([tune.info.experiment_id],
                                filter_string=f"tags.`mlflow.parentRunId` = '{tune.info.run_id}'")
    assert len(trials) == 3
    for trial in trials:
        assert trial.info.status == "FINISHED"
        assert trial.data.tags["reclab.model"] == trial.data.params["model"] == "ImplicitALS"
        if trial.data.tags["reclab.trial"] == "0":   # the model's own parameters come first
            assert int(trial.data.params["factors"]) == ImplicitALS().factors
        else:
            assert 4 <= int(trial.data.params["factors"]) <= 16
        assert 0.0 < trial.data.metrics["ndcg_at_10"] <= 1.0
        folds = [trial.data.metrics[f"ndcg_at_10_fold_{fold}"] for fold in (0, 1)]
        assert trial.data.metrics["ndcg_at_10"] == pytest.approx(np.mean(folds))
        assert trial.data.metrics["ndcg_at_10_std"] == pytest.approx(np.std(folds, ddof=1))
    # tune.select: one_se: the best trial unless it leads trial 0 by at most one standard error
    folds = {trial.data.tags["reclab.trial"]: np.array(
        [trial.data.metrics[f"ndcg_at_10_fold_{fold}"] for fold in (0, 1)]) for trial in trials}
    best = max(folds, key=lambda number: (folds[number].mean(), -int(number)))
    lead = folds[best] - folds["0"]
    chosen = best if lead.mean() > lead.std(ddof=1) / np.sqrt(2) else "0"
    assert tune.data.metrics["best_ndcg_at_10"] == pytest.approx(folds[chosen].mean())
    assert result.summary["best"]["score"] == pytest.approx(folds[chosen].mean())
    assert (result.summary["best"]["note"] == "") == (chosen == best)


def test_metrics_are_plausible_with_intervals_and_baselines(pipeline_run, store, client):
    result, _ = pipeline_run
    metrics = latest_by_stage(client, result.run_id, store["uri"])["evaluate"].data.metrics
    for prefix in ("", "Popularity/", "Bias/", "untuned/"):
        for name in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate"):
            for k in (5, 10):
                key = f"{prefix}{name}_at_{k}"
                assert 0.0 <= metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"] <= 1
    assert metrics["ndcg_at_10"] > 0.05          # far above random on this data
    assert metrics["hit_rate_at_10"] >= metrics["precision_at_10"]
    assert metrics["recall_at_10"] >= metrics["recall_at_5"]
    assert 0.5 < metrics["Bias/rmse"] < 2.0      # a rating model on 1-5 stars
    assert metrics["n_evaluated"] > 100
    # The untuned model (ImplicitALS with its own parameters) is compared like the baselines.
    assert metrics["vs_untuned/ndcg_at_10_difference"] == pytest.approx(
        metrics["ndcg_at_10"] - metrics["untuned/ndcg_at_10"])
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
        assert listed == [f"notebook/{name.replace('.ipynb', '.html')}", f"notebook/{name}"]
        local = client.download_artifacts(run.info.run_id, f"notebook/{name}",
                                          str(store["folder"]))
        executed = nbformat.read(local, as_version=4)
        outputs = [output for cell in executed.cells if cell.cell_type == "code"
                   for output in cell.outputs]
        assert outputs and not any(output.output_type == "error" for output in outputs)
        injected = [cell for cell in executed.cells
                    if "injected-parameters" in cell.metadata.get("tags", [])]
        assert len(injected) == 1 and result.run_id in injected[0].source
        figures = {Path(item.path).stem for item in client.list_artifacts(run.info.run_id, "figures")}
        assert FIGURES[stage] <= figures
        # the notebook shows each figure as it was logged, byte for byte (rendered once)
        shown = {base64.b64decode(output["data"]["image/png"]) for output in outputs
                 if "image/png" in output.get("data", {})}
        for figure in FIGURES[stage]:
            logged = client.download_artifacts(run.info.run_id, f"figures/{figure}.png",
                                               str(store["folder"]))
            assert Path(logged).read_bytes() in shown, f"{name} shows figure {figure}"
        assert (result.output_dir / name).is_file()
    assert (result.output_dir / "params.yaml").is_file()


def test_pyfunc_model_predicts_where_only_its_requirements_are_installed(pipeline_run, store, client):
    """The logged model is served from an environment made from its requirements.txt (as by
    ``mlflow models serve``): reclab is not on PyPI, so the model carries the package's source."""
    result, _ = pipeline_run
    train = latest_by_stage(client, result.run_id, store["uri"])["train"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"], "PYTHONPATH": site_packages_path()}
    completed = subprocess.run([sys.executable, "-S", "-c", FRESH_ENVIRONMENT,
                                f"runs:/{train.info.run_id}/model"],
                               capture_output=True, text=True, env=env, timeout=300,
                               cwd=store["folder"])
    assert completed.returncode == 0, completed.stderr[-2000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert Path(answer["reclab"]).is_relative_to(Path(answer["model"]) / "artifacts" / "reclab")
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
def trial_runs(client, tune_run):
    runs = client.search_runs([tune_run.info.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{tune_run.info.run_id}'")
    return sorted(runs, key=lambda run: int(run.data.tags["reclab.trial"]))


def checkpoint_lines(client, run_id, folder):
    local = client.download_artifacts(run_id, "tuning/checkpoint.jsonl", str(folder))
    return Path(local).read_text(encoding="utf-8").splitlines()


def test_stage_6_simulates_online_tests_and_logs_them(pipeline_run, store, client):
    """Stage 6 run on the finished pipeline (``--stages 6``): A/B test, interleaving, power curves
    and the offline-vs-online table, read back from MLflow; the summary carries the A/B result."""
    first, _ = pipeline_run
    result = pipeline.run_pipeline(resume=first.run_id, stages=["6"], tracking_uri=store["uri"],
                                   output_dir=store["folder"] / "online")
    assert list(result.seconds) == ["online"]
    run = latest_by_stage(client, first.run_id, store["uri"])["online"]
    assert run.info.status == "FINISHED" and run.data.tags["reclab.online.world"] == "truth"
    metrics = run.data.metrics
    ctr = {arm: metrics[f"ab.ctr.{arm}"] for arm in ("Popularity", "Bias", "ImplicitALS", "oracle")}
    assert all(0.0 <= value <= 1.0 for value in ctr.values())
    assert ctr["oracle"] == max(ctr.values())
    for key in ("ab.p_value", "interleaving.p_value"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["power.users_needed.ab"] >= 8 and -1 <= metrics["offline_online.spearman"] <= 1
    tables = {Path(item.path).name for item in client.list_artifacts(run.info.run_id, "tables")}
    assert {"ab_test.csv", "interleaving.csv", "power.csv", "offline_vs_online.csv"} <= tables
    versus = pd.read_csv(client.download_artifacts(run.info.run_id, "tables/offline_vs_online.csv",
                                                   str(store["folder"])), index_col=0)
    assert {"Popularity", "Bias", "tuned"} <= set(versus.index)
    tune_run = latest_by_stage(client, first.run_id, store["uri"])["tune"]
    # the untuned model is a model of its own unless tuning kept the start point (counted once)
    assert ("untuned" in versus.index) != kept_its_start(client, tune_run, store["params"], store["folder"])
    assert "trial 0 (ImplicitALS)" not in versus.index   # the start point: "untuned", or "tuned" if kept
    assert result.summary["online"].startswith("Simulated online test (truth; 5000 users, top-5)")
    assert "A/B ImplicitALS vs Popularity: lift" in result.summary["online"]


def test_resume_runs_again_a_stage_6_that_ran_where_the_parameters_leave_it_off(pipeline_run, store,
                                                                                 client):
    """Stage 6 run with --stages 6 (online.enabled false), then outdated by stage 5 run again:
    the summary says ``reclab run --resume`` runs it again, and it does (it ran nothing, said
    'online off' and named the stage outdated again), unless that resume sets online.enabled."""
    first, _ = pipeline_run
    if "online" not in latest_by_stage(client, first.run_id, store["uri"]):   # run alone
        pipeline.run_pipeline(resume=first.run_id, stages=["6"], tracking_uri=store["uri"],
                              output_dir=store["folder"] / "online")
    again = pipeline.run_pipeline(resume=first.run_id, stages=["5"], tracking_uri=store["uri"],
                                  output_dir=store["folder"] / "online")
    assert again.summary["outdated"] == ["online"]
    # --set online.enabled=false on the way leaves it off (as the parameters now say): nothing runs
    events = []
    off = pipeline.run_pipeline(resume=first.run_id, overrides={"online.enabled": False},
                                tracking_uri=store["uri"], progress=lambda *event: events.append(event[:2]))
    assert off.seconds == {} and ("off", "online") in events and off.summary["outdated"] == ["online"]
    events = []
    # without --output, a resume writes where the pipeline's last run did (not outputs/<run id>)
    assert client.get_run(first.run_id).data.tags["reclab.output_dir"] == str(store["folder"] / "online")
    (store["folder"] / "online" / "06_online.ipynb").unlink()
    result = pipeline.run_pipeline(resume=first.run_id, tracking_uri=store["uri"],
                                   progress=lambda *event: events.append(event[:2]))
    assert result.output_dir == store["folder"] / "online"
    assert (store["folder"] / "online" / "06_online.ipynb").is_file()
    assert list(result.seconds) == ["online"] and result.summary["outdated"] == []
    assert ("off", "online") not in events and ("done", "online") in events
    latest = latest_by_stage(client, first.run_id, store["uri"])
    assert all(run.info.status == "FINISHED" for run in latest.values())


# Tuning picks between two models, neither of them ``model``; stage 6 on.
PICKED = """\
experiment: picked
dataset: synthetic
synthetic: {n_users: 150, n_items: 200, n_ratings: 6000}
model: ImplicitALS
models:
  EASE:
    space: {regularization: {type: real, low: 10.0, high: 1000.0, prior: log-uniform}}
  RP3beta:
    space: {alpha: {type: real, low: 0.2, high: 1.5}, beta: {type: real, low: 0.0, high: 1.0}}
tune: {method: random, n_trials: 4, metric: ndcg@10, models: [EASE, RP3beta]}
k: [5, 10]
evaluation: {n_bootstrap: 20}
n_recommendations: 5
baselines: [Popularity, EASE, RP3beta]   # whichever model tuning picks is also a baseline
online: {enabled: true, n_users: 300, n_simulations: 5}
"""


def test_every_stage_works_with_the_model_tuning_picked_not_the_model_named(tmp_path):
    """With tune.models, stages 3-6 use the model tuning chose: stage 6's arms are named after it
    and the offline-vs-online table refits each other trial as the model it tried. A baseline of
    the same class (its default parameters) keeps its name, and the tuned model is ``tuned <name>``
    in the tables, the comparisons and the arms, so neither replaces the other."""
    params_file = tmp_path / "picked.yaml"
    params_file.write_text(PICKED, encoding="utf-8")
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(params_file=params_file, tracking_uri=uri,
                                   output_dir=tmp_path / "out")
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(result.run_id)
    assert parent.info.run_name == "synthetic/EASE+RP3beta/random"
    picked = parent.data.params["best.model"]
    assert picked in {"EASE", "RP3beta"}
    runs = latest_by_stage(client, result.run_id, uri)
    # Stage 5: the tuned model and the baseline of its class, side by side, each its own numbers.
    metrics = runs["evaluate"].data.metrics
    table = pd.read_csv(client.download_artifacts(runs["evaluate"].info.run_id,
                                                  "tables/summary_all_models.csv", str(tmp_path)),
                        index_col=0, header=[0, 1])
    assert [name for name in table.columns.get_level_values(0).unique()] == [
        f"tuned {picked}", "Popularity", "EASE", "RP3beta", "untuned"]
    values = table.xs("value", axis=1, level=1)
    assert values.loc["precision@10", f"tuned {picked}"] == pytest.approx(metrics["precision_at_10"])
    assert values.loc["precision@10", picked] == pytest.approx(metrics[f"{picked}/precision_at_10"])
    # the baseline is the untuned model: same class, default parameters
    assert metrics[f"{picked}/precision_at_10"] == pytest.approx(metrics["untuned/precision_at_10"])
    comparisons = pd.read_csv(client.download_artifacts(runs["evaluate"].info.run_id,
                                                        "tables/comparisons.csv", str(tmp_path)), index_col=0)
    assert list(comparisons.index) == [f"tuned {picked} vs {name}"
                                       for name in ("Popularity", "EASE", "RP3beta", "untuned")]
    assert f"tuned {picked}" in render_summary(result.summary).split("Test metrics")[1].split("\n")[1]
    online = runs["online"]
    assert {key for key in online.data.metrics if key.startswith("ab.ctr.")} == {
        f"ab.ctr.{arm}" for arm in ("Popularity", "EASE", "RP3beta", f"tuned {picked}", "oracle")}
    versus = pd.read_csv(client.download_artifacts(online.info.run_id, "tables/offline_vs_online.csv",
                                                   str(tmp_path)), index_col=0)
    # the trials other than the chosen one and the picked model's start point (trial 0 of EASE,
    # 1 of RP3beta: the untuned model), of both models, each refitted as its own model and named
    # with it; the untuned model apart unless tuning kept the start point
    trials = [name for name in versus.index if name.startswith("trial ")]
    kept = kept_its_start(client, runs["tune"], params_file, tmp_path)
    assert len(trials) == (3 if kept else 2) and all(name.endswith(("(EASE)", "(RP3beta)")) for name in trials)
    assert f"trial {['EASE', 'RP3beta'].index(picked)} ({picked})" not in trials
    assert set(versus.index) - set(trials) == {"Popularity", "EASE", "RP3beta", "tuned"} | (
        set() if kept else {"untuned"})
    assert f"A/B tuned {picked} vs Popularity: lift" in result.summary["online"]


def test_without_baselines_stage_6_tests_the_tuned_model_against_its_untuned_self(tmp_path):
    """``baselines: []``: stage 5 compares the model with its untuned self only, and stage 6's
    control (the A/B test's first arm, interleaving's other side) is the untuned model; stage 6
    took the first baseline and failed with StopIteration."""
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(
        params_file=tiny_params(tmp_path, "no-baselines"), tracking_uri=uri,
        overrides={"baselines": [], "online.enabled": True, "online.n_users": 200,
                   "online.n_simulations": 3}, output_dir=tmp_path / "out")
    runs = latest_by_stage(MlflowClient(tracking_uri=uri), result.run_id, uri)
    assert list(runs) == list(pipeline.STAGES) and all(run.info.status == "FINISHED" for run in runs.values())
    prefixes = {key.split("/")[0] for key in runs["evaluate"].data.metrics if "/" in key}
    assert {"untuned", "vs_untuned"} <= prefixes <= {"untuned", "vs_untuned", "cold", "new_users"}
    metrics = runs["online"].data.metrics
    assert {key for key in metrics if key.startswith("ab.ctr.")} == {
        "ab.ctr.untuned", "ab.ctr.ImplicitALS", "ab.ctr.oracle"}
    assert {key for key in metrics if key.startswith("interleaving.wins.")} == {
        "interleaving.wins.untuned", "interleaving.wins.ImplicitALS"}
    assert "A/B ImplicitALS vs untuned: lift" in result.summary["online"]


def test_stage_6_with_one_model_only_finishes_and_says_there_is_no_ranking_to_compare(tmp_path):
    """``baselines: []`` and one tuning trial (the start point, kept): the offline-vs-online test
    had the tuned model alone, and stage 6 failed after its A/B test, interleaving and power
    curves with 'an online test needs at least 2 arms, got 1: ['tuned']'."""
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(
        params_file=tiny_params(tmp_path, "one-model", n_trials=1), tracking_uri=uri,
        overrides={"baselines": [], "online.enabled": True, "online.n_users": 200,
                   "online.n_simulations": 3}, output_dir=tmp_path / "out")
    client = MlflowClient(tracking_uri=uri)
    runs = latest_by_stage(client, result.run_id, uri)
    assert all(run.info.status == "FINISHED" for run in runs.values()) and "online" in runs
    online = runs["online"]
    assert {"ab.ctr.untuned", "ab.ctr.ImplicitALS", "interleaving.p_value"} <= set(online.data.metrics)
    assert not any(key.startswith("offline_online.") for key in online.data.metrics)
    tables = {Path(item.path).name for item in client.list_artifacts(online.info.run_id, "tables")}
    assert "ab_test.csv" in tables and "offline_vs_online.csv" not in tables
    assert result.summary["online"].endswith(
        "offline vs online: not compared, one model only (baselines is empty, and tuning kept the "
        "start point with no other trial to refit)")


# Half of the users held out whole (split.method: cold_users): stages 1-4 only.
COLD_USERS = """\
experiment: cold-users
dataset: synthetic
seed: 2   # stage 4 samples two cold users first
synthetic: {n_users: 100, n_items: 120, n_ratings: 3000}
split: {method: cold_users, test_frac: 0.5, valid_frac: 0.2}
model: ImplicitALS
models:
  ImplicitALS:
    params: {iterations: 2}
    space: {factors: {type: int, low: 4, high: 8}}
tune: {method: random, n_trials: 2, metric: ndcg@10}
n_recommendations: 5
"""


def test_stage_4_explains_with_a_user_who_has_watched_something_on_a_cold_users_split(tmp_path):
    """On a cold_users split, many users have no training interactions. Stage 2's 3 validation
    folds hold out whole users, as valid does (per-user holdouts were empty: every trial failed),
    and stage 4's "because you watched" example takes the first sampled user who has watched
    something (it took the first sampled user, and failed on an empty history)."""
    params_file = tmp_path / "cold-users.yaml"
    params_file.write_text(COLD_USERS, encoding="utf-8")
    result = pipeline.run_pipeline(params_file=params_file, stages=["1", "2", "3", "4"],
                                   tracking_uri=new_store(tmp_path),
                                   output_dir=tmp_path / "out")
    executed = nbformat.read(result.output_dir / pipeline.NOTEBOOKS["postprocess"], as_version=4)
    printed = "".join(output.get("text", "") for cell in executed.cells
                      if cell.cell_type == "code" for output in cell.outputs)
    assert "Because you watched " in printed


# A temporal split: the late users rated nothing before the cut-off. Stages 1-5 only, on a ratings
# file of one's own (dataset: file) with date-times, beside the parameter file.
TEMPORAL = """\
experiment: temporal
dataset: file
file: {path: ratings.csv, user: userId, item: movieId, timestamp: when}
split: {method: temporal}
model: ImplicitALS
models:
  ImplicitALS:
    params: {iterations: 2}
    space: {factors: {type: int, low: 4, high: 8}}
tune: {method: random, n_trials: 2, folds: 2}
k: [5, 10]
evaluation: {n_bootstrap: 20}
"""


def test_stage_5_reports_the_new_users_of_a_temporal_split_apart(tmp_path):
    """Many of a temporal split's test users have no training interactions: stage 2 says so
    (ImplicitALS cannot rank them), and stage 5 logs their metrics apart (new_users/), for the
    model and the baselines, which the summary shows in a column and a line of their own. The
    data is a ratings file beside the parameter file, whose name names the run."""
    ratings = synthetic(n_users=150, n_items=120, n_ratings=4000, seed=0).to_frame()
    ratings["when"] = pd.to_datetime(ratings.pop("timestamp"), unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    ratings.rename(columns={"user": "userId", "item": "movieId"}).to_csv(tmp_path / "ratings.csv", index=False)
    params_file = tmp_path / "temporal.yaml"
    params_file.write_text(TEMPORAL, encoding="utf-8")
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(params_file=params_file, stages=["1", "2", "3", "4", "5"],
                                   tracking_uri=uri, output_dir=tmp_path / "out")
    parent = MlflowClient(tracking_uri=uri).get_run(result.run_id)
    assert parent.info.run_name == "ratings.csv/ImplicitALS/random"
    assert parent.data.params["file.path"] == str(tmp_path / "ratings.csv")
    tuned = nbformat.read(result.output_dir / pipeline.NOTEBOOKS["tune"], as_version=4)
    assert "have no training interactions, and ImplicitALS gives such a user the same score" in \
        "".join(output.get("text", "") for cell in tuned.cells if cell.cell_type == "code"
                for output in cell.outputs)
    metrics = result.summary["metrics"]
    assert 0 < metrics["new_users/n_evaluated"] < metrics["n_evaluated"]
    for baseline in ("Popularity", "Bias"):
        assert 0.0 <= metrics[f"new_users/{baseline}/precision_at_10"] <= 1.0
    # ImplicitALS gives the new users zero factors (ties); Popularity ranks them
    assert metrics["new_users/precision_at_10"] < metrics["new_users/Popularity/precision_at_10"]
    text = render_summary(result.summary)
    assert any(line.startswith("metric") and "  new users  " in line for line in text.split("\n"))
    assert (f"new users: ImplicitALS on the {int(metrics['new_users/n_evaluated'])} test users without "
            f"training interactions; precision@10 there: ImplicitALS ") in text


def test_stage_1_of_an_implicit_ratings_file_says_it_has_no_rating_biases(tmp_path):
    """A ratings file without a rating column (``file.rating: null``, string ids): stage 1 keeps
    every interaction as 1 and, instead of fitting the bias normalizer (which failed there), says
    that implicit feedback has no optimists or pessimists."""
    (tmp_path / "bought.csv").write_text("customer,product\n" + "".join(
        f"c{user},p{item}\n" for user in range(30) for item in range(40) if (user * 7 + item) % 3))
    params_file = tmp_path / "bought.yaml"
    params_file.write_text("dataset: file\nfile: {path: bought.csv, user: customer, item: product, "
                           "rating: null}\nbaselines: [Popularity]\n", encoding="utf-8")
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(params_file=params_file, stages=["1"], tracking_uri=uri,
                                   output_dir=tmp_path / "out")
    run = latest_by_stage(MlflowClient(tracking_uri=uri), result.run_id, uri)["preprocess"]
    assert run.info.status == "FINISHED" and run.data.metrics["n_interactions"] == 800
    assert "global_mean" not in run.data.metrics
    executed = nbformat.read(result.output_dir / pipeline.NOTEBOOKS["preprocess"], as_version=4)
    assert "implicit feedback (every interaction is 1): no rating biases to fit" in "".join(
        output.get("text", "") for cell in executed.cells if cell.cell_type == "code"
        for output in cell.outputs)


def test_a_search_the_time_budget_stopped_says_so_in_the_summary_and_the_tune_run(tmp_path):
    """The same command runs fewer trials on a busier machine: the run records that the budget
    cut the search short, where reclab compare and the MLflow UI show nothing different."""
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(params_file=tiny_params(tmp_path, "budget", n_trials=5000),
                                   overrides={"tune.time_budget": 1.0}, stages=["1", "2"],
                                   tracking_uri=uri, output_dir=tmp_path / "out")
    warning = (r"the time budget \(tune.time_budget: 1 s\) stopped the search after \d+ of 5000 "
               r"trials: a faster or idler machine runs more of them")
    assert re.search(f"WARNING: {warning}", render_summary(result.summary))
    tune = latest_by_stage(MlflowClient(tracking_uri=uri), result.run_id, uri)["tune"]
    assert re.search(warning, tune.data.tags["reclab.boundary_warning"])


def test_failed_tune_stage_resumes_its_search_and_gives_identical_results(pipeline_run, store,
                                                                          client, tmp_path):
    """Stage 2 fails after its second trial; --resume continues the search from the checkpoint
    (running only the third trial) and the pipeline ends as the uninterrupted one did."""
    first, _ = pipeline_run
    broken = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, broken)
    notebook = nbformat.read(broken / "02_tune.ipynb", as_version=4)
    search = next(index for index, cell in enumerate(notebook.cells) if "result = tune(" in cell.source)
    assert "checkpoint.save]" in notebook.cells[search].source
    notebook.cells[search].source = notebook.cells[search].source.replace(
        "checkpoint.save]", "checkpoint.save, stop_after_two_trials]")
    notebook.cells.insert(search, nbformat.v4.new_code_cell(
        "def stop_after_two_trials(trial):\n"
        "    if trial.number == 1:\n"
        "        raise RuntimeError('injected failure after trial 1')"))
    nbformat.write(notebook, broken / "02_tune.ipynb")

    with pytest.raises(pipeline.PipelineError) as error:
        pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                              output_dir=tmp_path / "second", notebooks=broken)
    failure = error.value
    assert failure.stage == "tune"
    assert failure.message == "RuntimeError: injected failure after trial 1"
    assert "Traceback" not in str(failure)
    parent = client.get_run(failure.run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["reclab.error"] == failure.message
    runs = latest_by_stage(client, failure.run_id, store["uri"])
    assert {stage: run.info.status for stage, run in runs.items()} == {
        "preprocess": "FINISHED", "tune": "FAILED"}
    failed_tune = runs["tune"]
    kept = client.download_artifacts(failed_tune.info.run_id, "notebook/02_tune.ipynb",
                                     str(tmp_path))
    errors = [output for cell in nbformat.read(kept, as_version=4).cells
              if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert [(output.ename, output.evalue) for output in errors] == [
        ("RuntimeError", "injected failure after trial 1")]
    assert failure.notebook == tmp_path / "second" / "02_tune.ipynb"
    # both finished trials are in MLflow and in the checkpoint artifact (header + 2 trials)
    assert [run.data.tags["reclab.trial"] for run in trial_runs(client, failed_tune)] == ["0", "1"]
    assert len(checkpoint_lines(client, failed_tune.info.run_id, tmp_path / "failed")) == 3

    # resumed elsewhere (another output folder): the checkpoint is found in MLflow
    resumed = pipeline.run_pipeline(resume=failure.run_id, tracking_uri=store["uri"],
                                    output_dir=tmp_path / "resumed")
    assert list(resumed.seconds) == ["tune", "train", "postprocess", "evaluate"]
    assert client.get_run(failure.run_id).info.status == "FINISHED"
    stages = [run.data.tags["reclab.stage"] for run in tracking.stage_runs(failure.run_id,
                                                                           store["uri"])]
    assert stages == ["preprocess", "tune", "tune", "train", "postprocess", "evaluate"]
    again = latest_by_stage(client, failure.run_id, store["uri"])
    tune = again["tune"]
    assert tune.data.tags["reclab.resumed_from"] == failed_tune.info.run_id
    assert tune.data.tags["reclab.restored_trials"] == "2"
    trials = trial_runs(client, tune)
    assert [run.data.tags["reclab.trial"] for run in trials] == ["0", "1", "2"]
    assert [run.data.tags.get("reclab.restored_from") for run in trials] == [
        failed_tune.info.run_id, failed_tune.info.run_id, None]   # only trial 2 ran again
    assert len(checkpoint_lines(client, tune.info.run_id, tmp_path / "resumed-tune")) == 4
    # same parameters, separate processes: the same split, trials, best parameters and metrics
    assert resumed.summary["best"] == first.summary["best"]
    before = latest_by_stage(client, first.run_id, store["uri"])
    assert [run.data.params for run in trials] == [
        run.data.params for run in trial_runs(client, before["tune"])]
    for stage in ("preprocess", "tune", "evaluate"):
        assert comparable(again[stage].data.metrics) == comparable(before[stage].data.metrics), stage
    assert again["preprocess"].data.tags["reclab.split_fingerprint"] == \
        before["preprocess"].data.tags["reclab.split_fingerprint"]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
def test_a_signal_while_the_pipeline_run_is_made_takes_effect_once_it_is_made(tmp_path, monkeypatch):
    """SIGTERM or SIGHUP (which ``reclab run`` turns into KeyboardInterrupt, as Ctrl-C is) that
    comes while the pipeline run is being made acts once the run is made and the cleanup knows
    it: the run ends KILLED. Here it comes just after MLflow made the run, where the run was left
    RUNNING for ever."""
    uri = new_store(tmp_path)
    params_file = tmp_path / "small.yaml"
    params_file.write_text(SMALL, encoding="utf-8")
    made, real = [], tracking.start_pipeline

    def start_then_hang_up(*args, **kwargs):
        made.append(real(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(1.0)   # a Python handler runs within this
        return made[-1]

    def terminate(number, frame):
        raise KeyboardInterrupt(f"stopped by {signal.Signals(number).name}")

    monkeypatch.setattr(tracking, "start_pipeline", start_then_hang_up)
    previous = signal.signal(signal.SIGHUP, terminate)
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGHUP"):
            pipeline.run_pipeline(params_file=params_file, tracking_uri=uri, output_dir=tmp_path / "out")
    finally:
        signal.signal(signal.SIGHUP, previous)
    run = MlflowClient(tracking_uri=uri).get_run(made[0])
    assert run.info.status == "KILLED"
    assert run.data.tags["reclab.error"] == "interrupted: stopped by SIGHUP"
    assert tracking.stage_runs(made[0], uri) == []   # no stage began


def test_an_output_folder_that_is_the_notebooks_folder_is_refused_before_any_run(store, client, tmp_path):
    # Each executed notebook (outputs, and the pipeline's run id injected as parent_run_id) was
    # written over its stage notebook: opened alone later, the notebook joined that old pipeline.
    notebooks = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, notebooks)
    before = {path.name: path.read_bytes() for path in notebooks.iterdir()}
    experiment = client.get_experiment_by_name("pipeline-test")
    count = len(client.search_runs([experiment.experiment_id])) if experiment else 0
    with pytest.raises(ReclabError, match=r"--output '.*notebooks' is the folder of the stage "
                                          r"notebooks: the executed notebooks would replace them"):
        pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                              stages=["preprocess"], notebooks=notebooks,
                              output_dir=tmp_path / "." / "notebooks")
    assert {path.name: path.read_bytes() for path in notebooks.iterdir()} == before
    experiment = client.get_experiment_by_name("pipeline-test")
    assert (len(client.search_runs([experiment.experiment_id])) if experiment else 0) == count


def test_stage_plan_and_notebook_parameters_are_checked_before_running(store, client, tmp_path):
    experiment = client.get_experiment_by_name("pipeline-test")
    count = len(client.search_runs([experiment.experiment_id])) if experiment else 0
    with pytest.raises(ReclabError, match="stage 'train' needs the 'tune' stage first"):
        pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                              stages=["preprocess", "train"], output_dir=tmp_path)
    with pytest.raises(ReclabError, match="unknown stage 'fit'"):
        pipeline.parse_stages(["fit"])
    assert pipeline.parse_stages(["1-2", "evaluate"]) == ["preprocess", "tune", "evaluate"]
    # stage 6 runs by default only where the parameters enable it, and always when asked for
    disabled = Config.load(store["params"])
    enabled = Config.load(store["params"], {"online.enabled": True})
    assert pipeline.parse_stages(None, disabled) == FIVE
    assert pipeline.parse_stages(None, enabled) == list(pipeline.STAGES)
    assert pipeline.parse_stages(["1-6"], disabled) == list(pipeline.STAGES)
    # A parameter the pipeline passes but a notebook does not declare: papermill would only warn
    # and run the notebook with its own default. Every stage is checked before stage 1 starts.
    stripped = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, stripped)
    notebook = nbformat.read(stripped / "04_postprocess.ipynb", as_version=4)
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("parent_run_id = None", "parent = None")
    nbformat.write(notebook, stripped / "04_postprocess.ipynb")
    with pytest.raises(ReclabError, match="04_postprocess.ipynb has no parameter 'parent_run_id' "
                                          "in its cell tagged 'parameters', but the pipeline passes it"):
        pipeline.run_pipeline(params_file=store["params"], tracking_uri=store["uri"],
                              notebooks=stripped, output_dir=tmp_path)
    with pytest.raises(ReclabError, match=r"key 'models\.ImplicitALS\.space\.factors' is an integer "
                                          r"range.*'grid' needs a list of values"):
        pipeline.run_pipeline(params_file=store["params"], overrides={"tune.method": "grid"},
                              tracking_uri=store["uri"], output_dir=tmp_path)
    with pytest.raises(ReclabError, match=r"drop -p \(correct single values with --set"):
        pipeline.run_pipeline(params_file=store["params"], resume="abc", tracking_uri=store["uri"])
    experiment = client.get_experiment_by_name("pipeline-test")
    after = len(client.search_runs([experiment.experiment_id])) if experiment else 0
    assert after == count   # nothing was started


# -- a notebook opened alone; a model without item similarities ---------------------------------
@pytest.fixture(scope="module")
def bias_postprocess(store, tmp_path_factory):
    """As in JupyterLab: 04_postprocess opened alone (no parent run id) in an experiment whose
    latest pipeline trained Bias (--set model=Bias), a model without item similarities. Stages 1-3
    of that pipeline are logged here in-process, as their notebooks do, so that only one notebook
    runs in a kernel."""
    folder = tmp_path_factory.mktemp("bias")
    params_file = folder / "bias.yaml"
    params_file.write_text(SMALL.replace("model: ImplicitALS", "model: Bias")
                           .replace("experiment: pipeline-test", "experiment: pipeline-bias"),
                           encoding="utf-8")
    uri = store["uri"]
    stage = tracking.start_stage("preprocess", params_file, uri=uri)
    config, pipeline_id = stage.params, stage.parent_run_id
    data = load_data(config)
    train, valid, test = make_split(config, data)
    tracking.log_split(stage, data, train, valid, test)
    stage.finish()
    stage = tracking.start_stage("tune", params_file, parent_run_id=pipeline_id, uri=uri)
    tracking.log_best(stage, {"user_reg": 5.0}, 0.05, "ndcg@10", "Bias")
    stage.finish()
    stage = tracking.start_stage("train", params_file, parent_run_id=pipeline_id, uri=uri)
    fit_data = train.union(valid)
    model = make_model(config, "Bias", {"user_reg": 5.0}).fit(fit_data)
    tracking.log_model(stage, model, fit_data)
    stage.finish()
    executed = folder / "04_postprocess.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "04_postprocess.ipynb"), str(executed),
        parameters={"experiment": "pipeline-bias", "tracking_uri": uri},
        kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
    return {"pipeline_id": pipeline_id, "train_run_id": stage.run_id, "model": model,
            "data": fit_data, "executed": nbformat.read(executed, as_version=4)}


def test_a_notebook_opened_alone_continues_the_latest_pipeline(bias_postprocess, store, client):
    run = tracking.find_stage_run("postprocess", "pipeline-bias", uri=store["uri"])
    assert run.data.tags["mlflow.parentRunId"] == bias_postprocess["pipeline_id"]
    assert run.data.tags["reclab.input.train"] == bias_postprocess["train_run_id"]
    # it used that pipeline's parameters (5 recommendations, from the small file), not default.yaml's
    assert run.data.params["n_recommendations"] == "5"
    local = client.download_artifacts(run.info.run_id, "tables/recommendations.csv",
                                      str(store["folder"]))
    assert pd.read_csv(local).groupby("user").size().max() == 5
    assert client.get_run(bias_postprocess["pipeline_id"]).info.status == "FINISHED"


def test_stage_4_of_a_model_without_item_similarities_skips_the_explanations(bias_postprocess,
                                                                             store, client):
    model, data = bias_postprocess["model"], bias_postprocess["data"]
    assert not postprocess.has_item_similarities(model)
    with pytest.raises(TypeError, match="Bias has no item similarities"):
        postprocess.explain_recommendations(
            model, data, postprocess.recommendations_table(model, data, data.user_ids[:1], n=2))
    run = tracking.find_stage_run("postprocess", "pipeline-bias", uri=store["uri"])
    assert run.info.status == "FINISHED"
    tables = {Path(item.path).stem for item in client.list_artifacts(run.info.run_id, "tables")}
    assert {"recommendations", "top_n_sample"} <= tables
    assert not tables & {"because_you_watched", "similar_items_sample"}
    outputs = [output for cell in bias_postprocess["executed"].cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert not any(output.output_type == "error" for output in outputs)
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "Bias has no item similarities" in printed
    assert "no 'because you watched' table" in printed


# -- real data --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("data_dir")  # the pipeline finds ml-100k through RECLAB_DATA_DIR
def test_ml100k_pipeline(tmp_path):
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(params_file=PROJECT / "params" / "ml-100k.yaml",
                                   overrides={"tune.n_trials": 4, "tune.n_initial": 3,
                                              "evaluation.n_bootstrap": 200},
                                   tracking_uri=uri, output_dir=tmp_path / "out")
    metrics = result.summary["metrics"]
    assert 0.1 < metrics["precision_at_10"] < 0.6
    assert metrics["precision_at_10"] > metrics["Bias/precision_at_10"]
    assert metrics["n_evaluated"] > 900
    # tuning searches ImplicitALS and EASE: the run is named after both, best.model is the chosen
    parent = MlflowClient(tracking_uri=uri).get_run(result.run_id)
    assert parent.info.run_name == "ml-100k/ImplicitALS+EASE/smbo"
    assert parent.data.params["best.model"] in {"ImplicitALS", "EASE"}
    # ml-100k.yaml enables stage 6: real data has no truth, a fitted model stands in for it
    assert result.summary["online"].startswith("Simulated online test (model ItemKNN;")


# Keeps the Spark pipeline test within a few minutes on 2 cores: two cores and two ALS blocks,
# fewer iterations, small factors (Spark's scoring in stage 5 is linear in them).
SPARK_SMALL = {"models.SparkALS.params": {"iterations": 5, "implicit": True, "master": "local[2]",
                                          "num_blocks": 2},
               "models.SparkALS.space.factors": {"type": "int", "low": 8, "high": 16}}


@pytest.mark.slow
@pytest.mark.spark
def test_ml_latest_small_pipeline_on_spark(tmp_path, shared_path):
    """backend: spark end to end (issue 9): SparkALS tuned, trained and evaluated in the stage
    kernels' own Spark sessions; stage 5's metrics computed in Spark equal reclab.evaluate's."""
    pytest.importorskip("pyspark", reason="backend spark needs pyspark and Java 17 "
                                          "(pip install 'reclab[spark]')")
    # The kernels' JVMs inherit the session's JAVA_TOOL_OPTIONS (conftest.py): the JIT's quick tier.
    shared_path("ml-latest-small/ratings.csv")  # the pipeline reads it through RECLAB_DATA_DIR
    uri = new_store(tmp_path)
    result = pipeline.run_pipeline(params_file=PROJECT / "params" / "ml-latest-small.yaml",
                                   overrides={"backend": "spark", "tune.n_trials": 3, "tune.folds": 1,
                                              "tune.select": "best",
                                              "tune.time_budget": None,
                                              "tune.n_initial": 3, "k": [5, 10],
                                              "evaluation.n_bootstrap": 200, **SPARK_SMALL},
                                   tracking_uri=uri, output_dir=tmp_path / "out")
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "ml-latest-small/SparkALS/smbo"
    assert parent.data.tags["version.pyspark"] != "not installed"
    runs = latest_by_stage(client, result.run_id, uri)
    assert list(runs) == FIVE
    assert all(run.info.status == "FINISHED" for run in runs.values())
    trials = trial_runs(client, runs["tune"])
    assert len(trials) == 3 and all(run.info.status == "FINISHED" for run in trials)
    assert result.summary["best"]["model"] == "SparkALS"
    assert 8 <= int(result.summary["best"]["params"]["factors"]) <= 16
    metrics = result.summary["metrics"]
    assert 0.05 < metrics["precision_at_10"] < 0.5
    assert metrics["precision_at_10"] > metrics["Bias/precision_at_10"]
    assert metrics["n_evaluated"] > 500
    for name in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage"):
        for k in (5, 10):
            key = f"{name}_at_{k}"
            assert metrics[f"spark.{key}"] == pytest.approx(metrics[key], abs=1e-6), key
    assert metrics["spark.max_abs_difference"] <= 1e-6
    tables = {item.path for item in client.list_artifacts(runs["evaluate"].info.run_id, "tables")}
    assert "tables/spark_evaluate.csv" in tables
    # Spark's start-up messages (its log4j profile, host name and native-library warnings) stay
    # out of the stages' output (reclab/spark-log4j2.properties). The JVM writes them to the
    # kernel's standard error: the stage's kernel log, which the notebook's output also shows
    # outside pytest (ipykernel watches that stream unless PYTEST_CURRENT_TEST is set).
    for stage in ("tune", "train", "evaluate"):
        log = result.output_dir / f"{Path(pipeline.NOTEBOOKS[stage]).stem}.kernel.log"
        printed = log.read_text()
        assert "Using incubator modules" in printed   # the JVM's own line: the log is the JVM's
        for chatter in ("log4j", " WARN ", "log level", "netlib"):
            assert chatter not in printed, (stage, chatter, printed[-2000:])


def test_stage_5_reports_the_long_tail_items_beside_all_items(pipeline_run, store, client, tmp_path):
    """On a normal split, stage 5 also ranks only the test items with <= 5 training interactions
    (issue 19), for the model and every baseline, and logs the side-by-side table and plot."""
    result, _ = pipeline_run
    run = latest_by_stage(client, result.run_id, store["uri"])["evaluate"]
    metrics = run.data.metrics
    for prefix in ("cold/", "cold/Popularity/", "cold/Bias/"):
        assert 0.0 <= metrics[f"{prefix}precision_at_10"] <= 1.0
        assert metrics[f"{prefix}n_candidates"] >= 1
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "tables/warm_cold.csv",
                                                  str(tmp_path)), index_col=0)
    assert list(table.columns) == ["all items", "items with <= 5 training interactions"]
    # precision at the largest K below the number of candidates (tests/test_summary.py), else at
    # the smallest K, which the summary then says cannot tell the models apart
    n_cold = int(metrics["cold/n_candidates"])
    assert n_cold <= 5
    k = 5
    assert table.loc["Popularity", "items with <= 5 training interactions"] == pytest.approx(
        metrics[f"cold/Popularity/precision_at_{k}"])
    assert table.loc["Bias", "all items"] == pytest.approx(metrics[f"Bias/precision_at_{k}"])
    # reclab run's summary names the column and says which items it ranks
    assert metrics["cold/max_train_interactions"] == 5
    note = (f"cold items: ImplicitALS ranking only the {n_cold:,} test items with <= 5 training "
            f"interactions, for the {int(metrics['cold/n_evaluated']):,} users with a test interaction "
            f"among them; precision@{k} there: ImplicitALS {metrics[f'cold/precision_at_{k}']:.4f}, "
            f"Bias {metrics[f'cold/Bias/precision_at_{k}']:.4f}, "
            f"Popularity {metrics[f'cold/Popularity/precision_at_{k}']:.4f} (a top-5 list holds "
            f"every one of the {n_cold} that its user has not seen, so precision@5 is the same for "
            f"every model)")
    assert note in render_summary(result.summary).split("\n")
