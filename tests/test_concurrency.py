"""Concurrent and interrupted pipelines against one local MLflow store (SQLite).

Real processes throughout: several processes open a new ``mlflow.db`` at the same moment (MLflow
builds its schema on first use, which races without reclab's lock), three ``reclab run`` pipelines
run at once on one new store (the session fixture ``pipelines_at_once`` of conftest.py), and a ``reclab run`` stopped by SIGTERM in the middle of a stage
leaves no run RUNNING and no kernel behind, and is resumed to the end.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient

from helpers import PIPELINES_AT_ONCE, AT_ONCE_EXPERIMENT, new_store, tiny_params
from reclab import pipeline, tracking

RECLAB = Path(sys.executable).parent / "reclab"
# The stages of a pipeline whose parameters leave stage 6 (online) disabled, as these do.
FIVE = [stage for stage in pipeline.STAGES if stage != "online"]
def environment(uri: str, marker: str) -> dict:
    """The test's store, and a marker that every child process (kernels too) inherits."""
    return {**os.environ, "MLFLOW_TRACKING_URI": uri, "RECLAB_TEST_MARKER": marker}


def processes_with(marker: str) -> list[int]:
    """Ids of live processes whose environment holds ``RECLAB_TEST_MARKER=<marker>``."""
    needle = f"RECLAB_TEST_MARKER={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:   # gone meanwhile, or not ours to read
                pass
    return found


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def pipeline_runs(client: MlflowClient, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment!r} was not created"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    return [run for run in runs if "reclab.pipeline" in run.data.tags]


# -- a new store opened by several processes at once -----------------------------------------
OPEN_STORE = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from mlflow import MlflowClient
    from reclab import tracking

    uri, barrier, number, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    (barrier / f"ready-{number}").touch()
    deadline = time.monotonic() + 300
    while len(list(barrier.glob("ready-*"))) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    # every process is imported and waiting: now all of them open the new store at once
    experiment = tracking.experiment_id("race", uri)
    client = MlflowClient(uri)
    run = client.create_run(experiment, run_name=f"process-{number}")
    client.log_metric(run.info.run_id, "number", float(number))
    client.set_terminated(run.info.run_id)
""")


@pytest.mark.slow
def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path):
    """Without the lock, MLflow's schema creation races ("table ... already exists",
    "duplicate column name") and most of these processes fail."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    count = 4
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_STORE, uri, str(barrier), str(number),
                                   str(count)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=tmp_path)
                 for number in range(count)]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("race")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.data.metrics["number"] for run in runs) == [0.0, 1.0, 2.0, 3.0]
    assert all(run.info.status == "FINISHED" for run in runs)
    assert [exp.name for exp in client.search_experiments(order_by=["name"])] == ["Default", "race"]


# -- three pipelines at once ------------------------------------------------------------------
@pytest.mark.slow
def test_three_pipelines_at_once_on_one_new_store_all_finish_with_everything_logged(pipelines_at_once):
    """The session's three pipelines (conftest.py), started at the same moment on a new store."""
    n_trials = 2
    uri, folder = pipelines_at_once["uri"], pipelines_at_once["folder"]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(AT_ONCE_EXPERIMENT)
    assert experiment.artifact_location.startswith((folder / "mlruns").as_uri())
    parents = pipeline_runs(client, AT_ONCE_EXPERIMENT)
    assert sorted(run.info.run_id for run in parents) == sorted(pipelines_at_once["runs"].values())
    assert sorted((run.data.params["model"], int(run.data.params["seed"])) for run in parents) == \
        sorted(PIPELINES_AT_ONCE)
    every_run = client.search_runs([experiment.experiment_id], max_results=1000)
    # one parent, five stages and the trials per pipeline: nothing lost, nothing extra
    assert len(every_run) == len(PIPELINES_AT_ONCE) * (1 + len(FIVE) + n_trials)
    assert {run.info.status for run in every_run} == {"FINISHED"}
    fingerprints = {}
    for parent in parents:
        assert 0.0 <= parent.data.metrics["precision_at_10"] <= 1.0
        stages = tracking.stage_runs(parent.info.run_id, uri)
        assert [run.data.tags["reclab.stage"] for run in stages] == FIVE
        by_stage = {run.data.tags["reclab.stage"]: run for run in stages}
        for stage, run in by_stage.items():
            listed = {item.path for item in client.list_artifacts(run.info.run_id, "notebook")}
            notebook = pipeline.NOTEBOOKS[stage]
            # the executed notebook, and rendered as a page for MLflow's artifact viewer
            assert listed == {f"notebook/{notebook}",
                              f"notebook/{notebook.replace('.ipynb', '.html')}"}, (stage, listed)
            assert run.data.params["seed"] == parent.data.params["seed"]
        tune = by_stage["tune"]
        trials = client.search_runs([experiment.experiment_id],
                                    filter_string=f"tags.`mlflow.parentRunId` = '{tune.info.run_id}'")
        assert len(trials) == n_trials
        assert all(0.0 <= trial.data.metrics["ndcg_at_10"] <= 1.0 for trial in trials)
        assert "best_ndcg_at_10" in tune.data.metrics
        train = by_stage["train"].info.run_id
        assert {item.path for item in client.list_artifacts(train, "model")} >= {
            "model/MLmodel", "model/python_env.yaml"}
        assert [item.path for item in client.list_artifacts(train, "reclab_model")] == [
            "reclab_model/model.npz"]
        assert {item.path for item in client.list_artifacts(by_stage["preprocess"].info.run_id,
                                                            "split")} == {
            "split/train.npz", "split/valid.npz", "split/test.npz"}
        # the trained model is an MLflow logged model of the train run, with the test metrics
        (logged,) = [found for found in client.search_logged_models([experiment.experiment_id])
                     if found.source_run_id == train]
        assert logged.name == parent.data.params["model"] and logged.status == "READY"
        assert by_stage["train"].data.tags["reclab.model_id"] == logged.model_id
        assert {metric.key: metric.value for metric in logged.metrics}["precision_at_10"] == \
            parent.data.metrics["precision_at_10"]
        # the pipeline run carries the headline figures beside the test metrics
        assert {item.path for item in client.list_artifacts(parent.info.run_id, "figures")} == {
            "figures/convergence.png", "figures/precision_recall_at_k.png"}
        metrics = by_stage["evaluate"].data.metrics
        for key in ("precision_at_10", "recall_at_10", "ndcg_at_10", "Popularity/ndcg_at_10"):
            assert 0.0 <= metrics[key] <= 1.0, key
        assert metrics["precision_at_10"] == parent.data.metrics["precision_at_10"]
        fingerprints.setdefault(parent.data.params["seed"], set()).add(
            parent.data.tags["reclab.split_fingerprint"])
    # one split per seed, the same in both pipelines of seed 11, and the two seeds' splits differ:
    # three pipelines, not one logged three times
    assert [len(found) for found in fingerprints.values()] == [1, 1]
    assert len(set.union(*fingerprints.values())) == 2
    with sqlite3.connect(folder / "mlflow.db") as database:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_what_the_stage_kernels_print_reaches_the_terminal_while_they_run(pipelines_at_once):
    """``reclab run`` writes each kernel's output under its stage's line as it comes."""
    for printed in pipelines_at_once["stdout"].values():
        lines = printed.splitlines()
        start = lines.index("[1/6] preprocess   running")
        end = next(number for number, line in enumerate(lines) if line.startswith("[1/6] preprocess ")
                   and line.endswith(" s"))
        assert any(line.startswith("    split fingerprint ") for line in lines[start:end]), printed
        tune = lines.index("[2/6] tune         running")
        assert any(line.startswith("    best ndcg@10 = ") for line in lines[tune:]), printed
        # a pipe, not a terminal: the search's progress as lines, not redrawn in place
        assert "\r" not in printed and any(line.startswith("    tuning: 100%|") for line in lines)
        # online.enabled=false: stage 6 is said to be off, after stage 5
        off = lines.index("[6/6] online       off: the parameters do not set online: {enabled: true} "
                          "(--stages 6 runs it)")
        assert off > lines.index("[5/6] evaluate     running")


# -- SIGTERM in the middle of a stage, then --resume ------------------------------------------
@pytest.mark.slow
def test_sigterm_during_a_stage_leaves_nothing_running_and_resume_finishes(tmp_path):
    uri = new_store(tmp_path)
    # enough trials that stage 2 is still searching when the signal comes (sent within a poll,
    # 0.25 s, of the second finished trial; a trial takes about that long), few enough that the
    # resumed search does not spend a minute finishing them
    params = tiny_params(tmp_path, "concurrency", n_trials=20)
    marker = str(tmp_path)
    env = environment(uri, marker)
    process = subprocess.Popen([str(RECLAB), "run", "-p", str(params), "--output",
                                str(tmp_path / "out")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        # params.yaml is written once the pipeline run exists (the store is built by then)
        wait_until((tmp_path / "out" / "params.yaml").is_file, 600, "the pipeline run")
        client = MlflowClient(uri)

        def searching_tune_run():
            experiment = client.get_experiment_by_name("concurrency")
            if experiment is None:
                return None
            tunes = client.search_runs([experiment.experiment_id],
                                       filter_string="tags.`reclab.stage` = 'tune'")
            if not tunes:
                return None
            trials = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{tunes[0].info.run_id}'")
            return tunes[0] if len(trials) >= 2 else None

        tune = wait_until(searching_tune_run, 600, "two finished tuning trials")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "interrupted (stopped by SIGTERM)" in stderr
    parent_id = tune.data.tags["mlflow.parentRunId"]
    assert f"reclab run --resume {parent_id}" in stderr
    # the kernel of stage 2 was stopped with its pipeline, not left to run on
    assert wait_until(lambda: not processes_with(marker), 30, "the stage kernel to exit") is True

    parent = client.get_run(parent_id)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["reclab.error"] == "interrupted: stopped by SIGTERM"
    statuses = {run.data.tags["reclab.stage"]: run.info.status
                for run in tracking.stage_runs(parent_id, uri)}
    assert statuses == {"preprocess": "FINISHED", "tune": "KILLED"}
    experiment = client.get_experiment_by_name("concurrency")
    every_run = client.search_runs([experiment.experiment_id], max_results=1000)
    assert not [run.info.run_name for run in every_run if run.info.status == "RUNNING"]

    resumed = subprocess.run([str(RECLAB), "run", "--resume", parent_id, "--output",
                              str(tmp_path / "resumed")], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=900)
    assert resumed.returncode == 0, (resumed.stdout[-2000:], resumed.stderr[-3000:])
    # it says what it kept and what the tune stage restored
    assert "[1/6] preprocess   kept: finished before, not run again" in resumed.stdout
    assert f"continues tune run {tune.info.run_id}: " in resumed.stdout, resumed.stdout[-3000:]
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert "reclab.error" not in parent.data.tags
    latest = {run.data.tags["reclab.stage"]: run for run in tracking.stage_runs(parent_id, uri)}
    assert {stage: run.info.status for stage, run in latest.items()} == dict.fromkeys(
        FIVE, "FINISHED")
    assert 0.0 <= parent.data.metrics["ndcg_at_10"] <= 1.0
    assert not processes_with(marker)


# -- every other way out of a pipeline (issue 17): no run left RUNNING ------------------------
def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: /sys)."""
    if os.getuid() == 0:
        return Path("/sys/reclab-output")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder / "out"


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One store for the tests below (each in an experiment of its own): building a new store's
    schema takes seconds."""
    uri = new_store(tmp_path_factory.mktemp('store'))
    tracking.experiment_id("concurrency", uri)
    return uri


def _raise_at(event: str, stage: str, error: BaseException):
    def progress(what, name, number, seconds):
        if (what, name) == (event, stage):
            raise error
    return progress


@pytest.mark.parametrize("way_out, expected, status", [
    ("Ctrl-C or SIGTERM before the first stage", "interrupted: stopped by SIGTERM", "KILLED"),
    ("an error outside any stage", "RuntimeError: the progress display broke", "FAILED"),
])
def test_a_pipeline_that_ends_before_or_between_stages_leaves_no_run_running(tmp_path, shared_store,
                                                                              way_out, expected, status):
    uri, experiment = shared_store, f"way-out-{status}-{len(expected)}"
    options = dict(params_file=tiny_params(tmp_path, "concurrency"), tracking_uri=uri,
                   output_dir=tmp_path / "out", overrides={"experiment": experiment})
    if way_out.startswith("Ctrl-C"):
        options["progress"] = _raise_at("start", "preprocess", KeyboardInterrupt("stopped by SIGTERM"))
        raised = pytest.raises(KeyboardInterrupt)
    else:
        options["progress"] = _raise_at("start", "preprocess", RuntimeError("the progress display broke"))
        raised = pytest.raises(RuntimeError)
    with raised:
        pipeline.run_pipeline(**options)
    runs = pipeline_runs(MlflowClient(uri), experiment)
    assert [(run.info.status, expected in run.data.tags.get("reclab.error", "")) for run in runs] == \
        [(status, True)]


def test_reclab_run_names_a_bad_output_folder_or_store_without_a_traceback(tmp_path, shared_store, capsys):
    from reclab import cli

    params = str(tiny_params(tmp_path, "concurrency"))
    uri, output = shared_store, _unwritable_folder(tmp_path)
    assert cli.main(["run", "-p", params, "--output", str(output), "--tracking-uri", uri,
                     "--set", "experiment=cli-output"]) == 2
    assert f"reclab run: cannot write the output folder '{output}'" in capsys.readouterr().err
    assert MlflowClient(uri).get_experiment_by_name("cli-output") is None   # refused before any run
    # Resumed into such a folder: refused before the pipeline is reopened (it stays as it was).
    first = pipeline.run_pipeline(params, {"experiment": "cli-output"}, stages=["preprocess"],
                                  output_dir=tmp_path / "out", tracking_uri=uri)
    before = MlflowClient(uri).get_run(first.run_id).info
    assert cli.main(["run", "--resume", first.run_id, "--output", str(output),
                     "--tracking-uri", uri]) == 2
    assert f"reclab run: cannot write the output folder '{output}'" in capsys.readouterr().err
    after = MlflowClient(uri).get_run(first.run_id).info
    assert (after.status, after.end_time) == ("FINISHED", before.end_time)

    corrupt = tmp_path / "corrupt" / "mlflow.db"
    corrupt.parent.mkdir()
    corrupt.write_bytes(bytes(range(256)) * 16)
    for store, message in ((f"sqlite:///{corrupt}", "is not an SQLite database"),
                           ("sqlite:///" + str(_unwritable_folder(tmp_path).parent / "mlflow.db"),
                            "cannot be created: folder")):
        assert cli.main(["run", "-p", params, "--tracking-uri", store]) == 2
        err = capsys.readouterr().err
        assert f"reclab run: MLflow store {store}" in err and message in err and "Traceback" not in err
    assert corrupt.read_bytes() == bytes(range(256)) * 16


def test_a_full_output_folder_fails_the_stage_and_says_the_notebook_is_partial(tmp_path, shared_store):
    """papermill writes the executed notebook before the kernel starts: on a full disk that
    write stops part-way, and the stage fails pointing at a file that is not a notebook."""
    full = tmp_path / "full"
    full.mkdir()
    if os.getuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(full)],
                                          capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs as a full output folder")
    try:
        uri = shared_store
        with pytest.raises(pipeline.PipelineError) as caught:
            pipeline.run_pipeline(tiny_params(tmp_path, "concurrency"), {"experiment": "full-disk"},
                                  stages=["preprocess"], output_dir=full, tracking_uri=uri)
        executed = full / pipeline.NOTEBOOKS["preprocess"]
        assert caught.value.notebook == executed and caught.value.notebook_partial
        assert "is partial: it could not be written in full" in caught.value.message
        assert executed.stat().st_size > 0
    finally:
        subprocess.run(["umount", str(full)], check=True)
    runs = pipeline_runs(MlflowClient(uri), "full-disk")
    assert [run.info.status for run in runs] == ["FAILED"]
    assert "is partial" in runs[0].data.tags["reclab.error"]


def test_train_notebooks_show_a_training_curve_only_for_iterative_models_and_no_download_bars(
        pipelines_at_once):
    client = MlflowClient(pipelines_at_once["uri"])
    for (model, seed), run_id in pipelines_at_once["runs"].items():
        executed = nbformat.read(pipelines_at_once["folder"] / f"out-{model}-{seed}" / "03_train.ipynb",
                                 as_version=4)
        streams = [output for cell in executed.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream"]
        errors = "".join(output.text for output in streams if output.name == "stderr")
        assert "Downloading artifacts" not in errors, (model, errors)
        printed = "".join(output.text for output in streams)
        train = tracking.find_stage_run("train", AT_ONCE_EXPERIMENT, run_id,
                                        uri=pipelines_at_once["uri"])
        figures = {item.path for item in client.list_artifacts(train.info.run_id, "figures")}
        if model == "SVD":   # fitted in closed form: no iterations, no empty axes
            assert "SVD is fitted in closed form, without iterations: no training curve" in printed
            assert "figures/training_curve.png" not in figures
        else:
            assert "figures/training_curve.png" in figures
