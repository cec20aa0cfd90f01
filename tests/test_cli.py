"""The `reclab` command: exit codes and messages of `run`, the MLflow UI, `compare`."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers import new_store, stop_when
from reclab import tracking
from reclab.config import Config, load_data, make_split
from reclab.cli import main
from reclab.errors import ReclabError
from reclab.evaluation import evaluate
from reclab.models import Bias, Popularity

RECLAB = Path(sys.executable).parent / "reclab"
RECLAB_PROJECT = Path(__file__).resolve().parent.parent
SMALL = "experiment: cli-test\nsynthetic: {n_users: 100, n_items: 150, n_ratings: 3000}\n"


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = new_store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_bad_parameter_file_exits_2_naming_key_and_file(tmp_path, store, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tune: {n_trials: ten}\n", encoding="utf-8")
    assert main(["run", "-p", str(bad)]) == 2
    error = capsys.readouterr().err
    assert "'tune.n_trials'" in error and str(bad) in error and "Traceback" not in error
    assert MlflowClient().get_experiment_by_name("reclab") is None   # nothing was started


def test_a_missing_parameter_file_is_told_before_mlflow_is_imported(tmp_path):
    """A typo in -p costs the parameter check, not MLflow's seconds of imports first; and no line
    claims a run to the store before the file is found."""
    script = ("import sys\nfrom reclab.cli import main\ncode = main(['run', '-p', 'typo.yaml'])\n"
              "print('mlflow imported:', 'mlflow' in sys.modules)\nsys.exit(code)\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               cwd=tmp_path, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr == f"reclab run: parameter file 'typo.yaml' not found in the working folder {tmp_path}\n"
    assert completed.stdout == "mlflow imported: False\n"


def test_a_tuned_model_without_a_search_space_exits_2_before_stage_1(tmp_path, store, capsys):
    bare = tmp_path / "bare.yaml"
    bare.write_text("experiment: bare\nmodel: EASE\n", encoding="utf-8")   # no models: EASE: space
    assert main(["run", "-p", str(bare), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"{bare}: key 'models.EASE.space' is empty, but stage 2 tunes EASE" in error, error
    assert "--set 'models.EASE.space={regularization: {type: real" in error and "Traceback" not in error
    assert MlflowClient().get_experiment_by_name("bare") is None   # no pipeline run, no stage 1
    assert not (tmp_path / "out").exists()


def test_bad_set_and_stage_and_resume_arguments_exit_2(tmp_path, store, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(SMALL, encoding="utf-8")
    assert main(["run", "-p", str(good), "--set", "kcore.min_users=3"]) == 2
    assert "unknown key 'kcore.min_users'" in capsys.readouterr().err
    assert main(["run", "-p", str(good), "--set", "n_trials"]) == 2
    assert "key=value" in capsys.readouterr().err
    assert main(["run", "-p", str(good), "--stages", "fit"]) == 2
    assert "unknown stage 'fit'" in capsys.readouterr().err
    assert main(["run", "-p", str(good), "--stages", "3-1"]) == 2
    assert "--stages range '3-1' runs backwards; write '1-3'" in capsys.readouterr().err
    assert main(["run", "-p", str(good), "--resume", "0123"]) == 2
    assert "drop -p (correct single values with --set" in capsys.readouterr().err
    assert main(["run", "--resume", "0123"]) == 2
    assert "no MLflow run '0123'" in capsys.readouterr().err


def test_a_reader_that_stops_reading_does_not_fail_the_run(tmp_path):
    """``reclab run | head -1``: the lines nobody reads go nowhere; the stage and the pipeline
    finish (a BrokenPipeError from a progress line marked them FAILED)."""
    from helpers import tiny_params

    uri = new_store(tmp_path)
    process = subprocess.Popen([str(RECLAB), "run", "-p", str(tiny_params(tmp_path, "pipe")), "--stages", "1",
                                "--output", str(tmp_path / "out"), "--tracking-uri", uri],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert process.stdout.readline().startswith("reclab run: ")
    process.stdout.close()   # as head does after its line
    stderr = process.communicate(timeout=600)[1]
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    (run,) = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name("pipe").experiment_id],
        filter_string="tags.`reclab.stage` = 'preprocess'")
    assert run.info.status == "FINISHED"


def test_compare_in_a_store_that_does_not_exist_or_is_empty_says_so_and_makes_none(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'typo.db'}"
    assert main(["compare", "abcd1234", "--tracking-uri", uri]) == 2
    assert f"no MLflow store at {uri}: the file does not exist" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()
    # an empty file (made by mistake, or by touch) is no store either, and stays as it was
    (tmp_path / "empty.db").touch()
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["compare", "abcd1234", "--tracking-uri", uri]) == 2
    assert f"no MLflow store at {uri}: the file is empty" in capsys.readouterr().err
    assert (tmp_path / "empty.db").stat().st_size == 0 and not (tmp_path / "mlruns").exists()


def test_a_terminal_that_hung_up_takes_no_output_and_the_command_ends_as_it_would(tmp_path, monkeypatch):
    """After a hang-up (SIGHUP, as when the terminal of ``reclab run`` closes), writing to the
    terminal fails with EIO: the lines reclab prints then, such as "interrupted" and the cleanup's,
    go nowhere, as a closed pipe's do, rather than ending the command in an OSError."""
    import pty

    controller, terminal = pty.openpty()
    os.close(controller)   # the terminal is gone
    with open(terminal, "w") as gone:
        monkeypatch.setattr(sys, "stdout", gone)
        monkeypatch.setattr(sys, "stderr", gone)
        assert main(["compare", "abcd1234", "--tracking-uri", f"sqlite:///{tmp_path / 'typo.db'}"]) == 2


def test_failing_stage_exits_1_with_stage_and_error_and_no_traceback(tmp_path, capsys):
    params_file = tmp_path / "small.yaml"
    # valid for the parameter schema; the k-core leaves nothing, inside the notebook's kernel
    params_file.write_text("experiment: cli-test\n"
                           "synthetic: {n_users: 100, n_items: 150, n_ratings: 3000}\n"
                           "kcore: {min_user: 1000}\n"
                           "models: {ImplicitALS: {space: {factors: [4, 8]}}}\n",
                           encoding="utf-8")
    env = {**os.environ, "MLFLOW_TRACKING_URI": new_store(tmp_path)}
    completed = subprocess.run([str(RECLAB), "run", "-p", str(params_file), "--output",
                                str(tmp_path / "out")], capture_output=True, text=True, env=env,
                               timeout=600, cwd=tmp_path)
    assert completed.returncode == 1, completed.stderr
    assert "stage 'preprocess' failed: ReclabError: no interactions left after k-core" in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout
    assert len(completed.stderr.strip().splitlines()) <= 4
    assert f"executed notebook (with the error): {tmp_path / 'out' / '01_preprocess.ipynb'}" in \
        completed.stderr
    assert "reclab run --resume " in completed.stderr
    run_id = completed.stderr.split("--resume ")[1].split()[0]
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).info.status == "FAILED"
    assert "[1/6] preprocess" in completed.stdout and "FAILED" in completed.stdout

    # The advice holds: resumed with the corrected value, the pipeline finishes, and says so.
    uri = ["--tracking-uri", env["MLFLOW_TRACKING_URI"]]
    assert "can be corrected there with --set KEY=VALUE" in completed.stderr
    assert main(["run", "--resume", run_id, "--set", "experiment=elsewhere", *uri]) == 2
    assert "stays in its experiment 'cli-test'" in capsys.readouterr().err
    # the start of the id will do (the 8 characters that compare shows)
    assert main(["run", "--resume", run_id[:8], "--stages", "1", "--set", "kcore.min_user=5",
                 "--output", str(tmp_path / "resumed"), *uri]) == 0
    capsys.readouterr()
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED" and "reclab.error" not in parent.data.tags
    assert parent.data.tags["reclab.resumed_with"] == "kcore.min_user: 1000 -> 5"
    (tmp_path / "logged").mkdir()
    logged = Path(client.download_artifacts(run_id, "params.yaml", str(tmp_path / "logged")))
    assert Config.loads(logged.read_text(), "params.yaml")["kcore"]["min_user"] == 5
    assert parent.data.params["kcore.min_user"] == "1000"   # MLflow params are write-once
    stage = tracking.find_stage_run("preprocess", "cli-test", run_id, uri=uri[1])
    assert stage.data.params["kcore.min_user"] == "5"
    # A value the finished preprocess stage used: refused, naming the stages to run again.
    assert main(["run", "--resume", run_id, "--set", "seed=5", *uri]) == 2
    error = capsys.readouterr().err
    assert "--set seed=5: the finished 'preprocess' stage" in error and "seed=0" in error
    assert f"reclab run --resume {run_id} --stages 1-" in error
    assert client.get_run(run_id).data.tags["reclab.resumed_with"] == "kcore.min_user: 1000 -> 5"


def test_a_closed_terminal_stops_run_as_ctrl_c_does_leaving_nothing_running(tmp_path):
    """SIGHUP (the terminal of ``reclab run`` closed) ended it at once: the pipeline and stage runs
    stayed RUNNING, which the README says only SIGKILL can leave."""
    params_file = tmp_path / "small.yaml"
    params_file.write_text(SMALL + "models: {ImplicitALS: {space: {factors: [4, 8]}}}\n",
                           encoding="utf-8")
    uri = new_store(tmp_path)
    process = subprocess.Popen([str(RECLAB), "run", "-p", str(params_file), "--output",
                                str(tmp_path / "out")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    client = MlflowClient(uri)
    # Once a stage runs (its kernel's run): not while reclab run itself writes the pipeline run,
    # where an interrupt makes MLflow log its SQLAlchemy error, traceback included.
    stdout, stderr = stop_when(process, lambda: any("reclab.stage" in run.data.tags for run in client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "attributes.status = 'RUNNING'")),
        signal.SIGHUP)
    assert process.returncode == 128 + signal.SIGHUP, stderr[-3000:]
    assert "reclab run: interrupted (stopped by SIGHUP)" in stderr and "Traceback" not in stderr
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    # none left RUNNING: the stage and the pipeline are KILLED
    assert runs and not [run.info.run_name for run in runs if run.info.status == "RUNNING"]

def test_resume_corrections_are_recorded_and_a_changed_search_starts_anew(store, tmp_path):
    """What --resume --set leaves in MLflow: the new params.yaml, what changed, the run name; an
    unfinished tune run whose search the change alters is no longer continued."""
    client = MlflowClient()
    before = Config.from_values({"experiment": "resumed", "tune": {"method": "random"}})
    pipeline_id = tracking.start_pipeline(before)
    tune = client.create_run(client.get_run(pipeline_id).info.experiment_id,
                             tags={"mlflow.parentRunId": pipeline_id, "reclab.stage": "tune"})
    client.set_terminated(tune.info.run_id, status="FAILED")
    after = Config.from_values({"experiment": "resumed", "tune": {"method": "grid"}})
    changes = {"tune.method": ("random", "grid")}
    tracking.record_resume_changes(pipeline_id, after, after.dump(), changes, new_search=True)
    run = client.get_run(pipeline_id)
    assert run.data.tags["reclab.resumed_with"] == "tune.method: 'random' -> 'grid'"
    assert run.info.run_name == "synthetic/ImplicitALS/grid"
    assert run.data.params["tune.method"] == "random"   # write-once
    assert tracking.pipeline_state(pipeline_id)["params_text"] == after.dump()
    assert "reclab.checkpoint_outdated" in client.get_run(tune.info.run_id).data.tags
    # reclab compare shows the value the pipeline ran with (it showed the write-once param)
    other = tracking.start_pipeline(after)
    params, _ = tracking.run_table([pipeline_id, other])
    assert params.loc["tune.method"].tolist() == ["grid", "grid"]


def test_resume_corrects_only_values_no_kept_finished_stage_used():
    """Each key counts as used from the first stage that reads it on; later stages use that
    stage's results, so they must run again too."""
    from reclab.pipeline import STAGES, _check_changes
    from reclab.stages import changes_search, first_reader
    from reclab.stages import differences as _differences

    before = Config.from_values({"tune": {"n_trials": 2}, "evaluation": {"n_bootstrap": 500}})
    after = Config.from_values({"tune": {"n_trials": 3}, "evaluation": {"n_bootstrap": 7}})
    changes = _differences(before.model_dump(), after.model_dump())
    assert changes == {"tune.n_trials": (2, 3), "evaluation.n_bootstrap": (500, 7)}
    done, rest = ["preprocess"], list(STAGES[1:5])
    configs = (before, after)
    _check_changes(changes, done, rest, "r", "evaluate", configs)   # tune has not finished: allowed
    _check_changes({"evaluation.n_bootstrap": (500, 7)}, list(STAGES[:4]), ["evaluate"], "r",
                   "evaluate", configs)
    for key, kept in [("tune.n_trials", 2), ("evaluation.relevance_threshold", 2),
                      ("n_recommendations", 4), ("k", 5), ("some.new_key", 1)]:
        with pytest.raises(ReclabError, match=rf"--set {key}=.*--stages"):
            _check_changes({key: (1, 2)}, list(STAGES[:kept]), list(STAGES[kept:5]), "r",
                           "evaluate", configs)
    # Run again from the stage that reads it: allowed, whatever had finished.
    _check_changes({"seed": (0, 1)}, list(STAGES[:5]), list(STAGES[:5]), "r", "evaluate", configs)
    with pytest.raises(ReclabError, match=r"--stages 2-5"):
        _check_changes({"tune.n_trials": (2, 3)}, list(STAGES[:5]), ["evaluate"], "r", "evaluate",
                       configs)
    # A model's entry is read by the first stage that uses the model: a baseline's by stage 5
    # (every model's counted as read by stage 2, so a baseline's fix meant tuning again).
    change = {"models.Bias.params.iterations": (1, 5)}
    _check_changes(change, list(STAGES[:4]), ["evaluate", "online"], "r", "online", configs)
    with pytest.raises(ReclabError, match=r"finished 'evaluate' stage .* --stages 5-6"):
        _check_changes(change, list(STAGES), ["online"], "r", "online", configs)
    tuned = {"models.ImplicitALS.params.iterations": (1, 5)}
    with pytest.raises(ReclabError, match=r"finished 'tune' stage .* --stages 2-6"):
        _check_changes(tuned, list(STAGES[:4]), ["evaluate", "online"], "r", "online", configs)
    assert first_reader("models.ItemKNN.params.neighbors", configs) == "online"   # the world's model
    assert first_reader("models.SVD.space.factors", configs) == "tune"   # used by none: as before
    assert not changes_search(change, configs) and changes_search(tuned, configs)


def test_compare_prints_params_metrics_and_a_paired_comparison(tmp_path, store, capsys):
    params_file = tmp_path / "small.yaml"
    params_file.write_text(SMALL, encoding="utf-8")
    loaded = Config.load(params_file)
    data = load_data(loaded)
    train, valid, test = make_split(loaded, data)
    fit = train.union(valid)
    ids = []
    for seed, model in ((0, Popularity()), (1, Bias())):
        # another baseline parameter in the second: the params MLflow holds are the active model's
        # only, so compare showed no difference in it
        overrides = {"seed": seed, **({"models.Bias.params.iterations": 7} if seed else {})}
        run_id = tracking.start_pipeline(Config.load(params_file, overrides))
        stage = tracking.start_stage("evaluate", params_file, overrides, parent_run_id=run_id)
        tracking.log_report(stage, evaluate(model.fit(fit), fit, test, k=(5, 10), n_bootstrap=50))
        stage.finish()
        ids.append(run_id)
    assert main(["compare", *ids]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    seed_line = next(line for line in lines if line.startswith("seed"))
    assert seed_line.split()[1:] == ["0", "1"]
    bias_line = next(line for line in lines if line.startswith("models.Bias.params.iterations"))
    assert bias_line.split()[1:] == ["-", "7"]
    assert not any(line.startswith("dataset ") for line in lines)   # same in both: hidden
    metrics = MlflowClient().get_run(ids[1]).data.metrics
    metric_line = next(line for line in lines if line.startswith("precision_at_10 "))
    assert (f"{metrics['precision_at_10']:.4f} [{metrics['precision_at_10_ci_low']:.4f}, "
            f"{metrics['precision_at_10_ci_high']:.4f}]") in metric_line
    assert all(run_id[:8] in out for run_id in ids)
    paired = next(line for line in lines if line.strip().startswith(ids[1][:8]))
    assert "ndcg@10: B - A = " in paired and "sign-flip test p" in paired
    # the same test split at another relevance threshold: said, and the other runs still compared
    # (compare's refusal ended the command after the tables)
    other = tracking.start_pipeline(Config.load(params_file, {"seed": 2}))
    stage = tracking.start_stage("evaluate", params_file, {"seed": 2}, parent_run_id=other)
    tracking.log_report(stage, evaluate(Bias().fit(fit), fit, test, k=(5, 10), n_bootstrap=50,
                                        relevance_threshold=4.0))
    stage.finish()
    assert main(["compare", *ids, other]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "sign-flip test p" in next(line for line in lines if line.strip().startswith(ids[1][:8]))
    refused = next(line for line in lines if line.strip().startswith(other[:8]))
    assert "no paired comparison: the reports were made on different test splits or relevance " \
           "thresholds" in refused
    assert main(["compare", ids[0], "nope"]) == 2
    assert "no MLflow run 'nope'" in capsys.readouterr().err
    # the 8 characters it shows name the runs too
    assert main(["compare", ids[0][:8], ids[1][:8]]) == 0
    assert capsys.readouterr().out == out
    assert main(["compare", ids[0], ids[1][:8] + "0" * 24]) == 2   # a whole id is never a prefix
    assert f"no MLflow run '{ids[1][:8]}" in capsys.readouterr().err
    assert main(["compare", ids[0], ids[0]]) == 2   # was a traceback
    assert f"run {ids[0]} is given more than once" in capsys.readouterr().err
    # a metric the runs do not have: said before any table is printed
    assert main(["compare", *ids, "--metric", "precision@7"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"--metric 'precision@7' is not a per-user metric of run {ids[0]}" in captured.err
    # runs without an evaluation: a name that is no per-user metric is refused all the same (it
    # was accepted, then ignored)
    bare = [tracking.start_pipeline(Config.load(params_file, {"seed": seed})) for seed in (5, 6)]
    for metric in ("rmse", "coverage@10", "ndcg@x", "ndcg"):
        assert main(["compare", *bare, "--metric", metric]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert f"--metric {metric!r} is no per-user ranking metric; use one of ['precision'" in captured.err
    assert main(["compare", *bare, "--metric", "map@3"]) == 0
    # the first run not evaluated (a pipeline stopped before stage 5): said, not left out
    assert main(["compare", bare[0], ids[0]]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"No paired comparison: the first run ({bare[0][:8]}) has no evaluation logged; name an "
        f"evaluated run first")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("args, message", [
    (["--port", "99999"], "--port must be a number from 1 to 65535, got 99999"),   # a traceback
    (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid' is not an address or a name"),
    (["--host", "192.0.2.1"], "--host 192.0.2.1 is not an address of this machine"),   # "port in use"
])
def test_ui_refuses_a_port_or_host_it_cannot_listen_on_saying_which(tmp_path, capsys, args, message):
    assert main(["ui", *args, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    assert capsys.readouterr().err.startswith(f"reclab ui: {message}")
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["ctrl-c", "sigterm", "hangup"])
def test_ui_serves_on_loopback_prints_url_and_stops_on_ctrl_c(tmp_path, stop):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP (the terminal closed) stop ``reclab ui`` and its server
    quietly: no traceback, no server left on the port (after a hang-up it kept serving)."""
    port = free_port()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # As from a terminal: SIGINT at its default (a shell's background job would ignore it, and
    # Python keeps an inherited "ignore").
    process = subprocess.Popen([str(RECLAB), "ui", "--port", str(port), "--tracking-uri", uri],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    server = None
    try:
        url = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and url is None:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            if line.startswith("MLflow UI: "):
                url = line.split()[2]
        assert url == f"http://127.0.0.1:{port}", process.stderr.read() if url is None else url
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
        (server,) = [int(child) for task in Path(f"/proc/{process.pid}/task").glob("*")
                     for child in (task / "children").read_text().split()]
        process.send_signal(stop)
        process.wait(timeout=60)
        try:   # the server's session, left running, would hold the pipes open
            os.killpg(server, signal.SIGKILL)
            left = True
        except ProcessLookupError:
            left = False
        out, err = process.stdout.read(), process.stderr.read()   # the lines after the link too
        assert process.returncode == 0 and not left, err[-3000:]
        # a store path that named no file (a typo, say): a new, empty store, said so
        assert out.startswith(f"  no runs in this store yet: it was made now, no file was at "
                              f"{tmp_path / 'mlflow.db'} (see --tracking-uri)\n")
        assert "MLflow UI stopped." in out
        assert "Traceback" not in err, err[-3000:]
        with socket.socket() as probe:   # the server is gone: nothing listens on its port
            # (SO_REUSEADDR: a closed connection's TIME_WAIT on the port is no server)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if server is not None:   # its own session: whatever of it is left
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server, signal.SIGKILL)


def test_make_lab_starts_jupyter_as_root_too():
    """Jupyter refuses root without --allow-root; containers and CI machines run as root."""
    dry = subprocess.run(["make", "-n", "lab"], cwd=RECLAB_PROJECT, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    (command,) = [line for line in dry.stdout.splitlines() if "jupyter lab" in line]
    assert "--ip 127.0.0.1" in command and command.endswith("notebooks/")
    assert ("--allow-root" in command) == (os.geteuid() == 0)


def test_version_names_the_installed_reclab(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"reclab {metadata.version('reclab')}"


def test_ui_refuses_a_busy_port(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["ui", "--port", str(port), "--tracking-uri",
                     f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_compare_shows_each_pipelines_tuned_values(tmp_path, store, capsys):
    """The tune stage's best values are params of the pipeline run too (MLflow UI, compare)."""
    params_file = tmp_path / "small.yaml"
    params_file.write_text(SMALL, encoding="utf-8")
    ids = []
    for model, best in (("Bias", {"user_reg": 5.0}), ("SVD", {"factors": 8, "user_reg": 20.0})):
        run_id = tracking.start_pipeline(Config.load(params_file, {"model": model}))
        stage = tracking.start_stage("tune", params_file, {"model": model}, parent_run_id=run_id)
        tracking.log_best(stage, best, 0.1, "ndcg@10", model)
        stage.finish()
        ids.append(run_id)
    # A tune stage run again in a pipeline: MLflow params cannot change, the first values stay.
    again = tracking.start_stage("tune", params_file, {"model": "SVD"}, parent_run_id=ids[1])
    tracking.log_best(again, {"factors": 16, "user_reg": 20.0}, 0.2, "ndcg@10", "SVD")
    assert MlflowClient().get_run(again.run_id).data.params["best.factors"] == "16"
    assert MlflowClient().get_run(ids[1]).data.params["best.factors"] == "8"

    assert main(["compare", *ids]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()
            if line.startswith(("model ", "best."))}
    assert rows == {"model": ["Bias", "SVD"], "best.model": ["Bias", "SVD"], "best.factors": ["-", "8"],
                    "best.user_reg": ["5.0", "20.0"]}


def test_ui_links_open_the_runs_table_of_each_experiment_with_runs(tmp_path, store):
    """MLflow 3 opens an experiment on its GenAI overview unless the address says otherwise."""
    client = MlflowClient()
    used = tracking.experiment_id("used")
    tracking.experiment_id("empty")
    client.set_terminated(client.create_run(used, run_name="a/b/c").info.run_id)
    assert tracking.experiments_with_runs() == [(used, "used")]
    assert tracking.ui_path(used) == f"/#/experiments/{used}/runs?workflowType=machine_learning"
    assert tracking.ui_path(used, "abc") == (f"/#/experiments/{used}/runs/abc"
                                             f"?workflowType=machine_learning")
    assert tracking.ui_path(used, view="v") == (f"/#/experiments/{used}/runs"
                                                f"?workflowType=machine_learning&viewStateShareKey=v")


def test_ui_saves_a_view_of_the_pipelines_test_metrics(store):
    """The saved view `reclab ui` opens: MLflow's own format (the experiment tag its "Save view"
    writes), pipeline runs only, their test metrics at K = 10 as columns, best precision first."""
    client = MlflowClient()
    experiment = tracking.experiment_id("views")
    assert tracking.save_metrics_view(experiment) is None   # no pipeline with test metrics yet
    pipeline = client.create_run(experiment, tags={"reclab.pipeline": "reclab run"}).info.run_id
    for key in ("precision_at_5", "precision_at_10", "ndcg_at_10", "recall_at_10", "map_at_10",
                "precision_at_10_ci_low"):
        client.log_metric(pipeline, key, 0.1)
    client.log_metric(client.create_run(experiment).info.run_id, "precision_at_20", 0.3)   # no pipeline
    view = tracking.save_metrics_view(experiment)
    saved = json.loads(client.get_experiment(experiment).tags[f"mlflow.sharedViewState.{view}"])
    assert saved["name"] == "reclab: test metrics" and saved["createdAt"] == saved["updatedAt"]
    state = json.loads(saved["state"])
    assert state == {"selectedColumns": ["params.`model`", "params.`best.model`",
                                         "params.`dataset`", "params.`seed`",
                                         "metrics.`precision_at_10`", "metrics.`recall_at_10`",
                                         "metrics.`ndcg_at_10`", "metrics.`map_at_10`"],
                     "orderByKey": "metrics.`precision_at_10`", "orderByAsc": False,
                     "searchFilter": "tags.`reclab.pipeline` IS NOT NULL"}
    assert [run.info.run_id for run in client.search_runs([experiment], state["searchFilter"])] == [
        pipeline]
    # Saved again (each `reclab ui`): the same view, created when it was first saved.
    time.sleep(0.01)
    assert tracking.save_metrics_view(experiment) == view
    again = json.loads(client.get_experiment(experiment).tags[f"mlflow.sharedViewState.{view}"])
    assert again["createdAt"] == saved["createdAt"] < again["updatedAt"]


def test_run_shows_the_tuning_progress_bar_in_place_and_the_rest_of_stderr_as_lines(capsys,
                                                                                     monkeypatch):
    import io

    from reclab import cli, pipeline
    from reclab.cli import _progress

    monkeypatch.setattr(cli, "_in_place", lambda: True)   # a terminal

    events, forwarded = [], io.StringIO()
    echo = pipeline._TrialProgress(lambda *event: events.append(event), "tune", 2, forwarded)
    echo.write("/some/module.py:3: UserWarning: unrelated\n")
    echo.write("\rtuning:  50%|#####     | 1/2 [00:01<00:01, best precision@10=0.2100]")
    assert events == [("trial", "tune", 2,
                       "tuning:  50%|#####     | 1/2 [00:01<00:01, best precision@10=0.2100]")]
    # Everything else the kernel writes to stderr goes on to the kernel output, the bar does not.
    assert forwarded.getvalue() == "/some/module.py:3: UserWarning: unrelated\n"
    _progress("start", "tune", 2, None)
    _progress(*events[0])
    _progress(*events[0])
    _progress("done", "tune", 2, 3.5)
    out = capsys.readouterr().out
    bar = "    " + events[0][3]
    assert out == ("[2/6] tune         running\n" + "\r" + bar + "\r" + bar + "\n"
                   + "[2/6] tune             3.5 s\n")
    # a finished stage after one run again (--resume --stages 2) is made from the old run
    _progress("outdated", "train", 3, None)
    assert capsys.readouterr().out == ("[3/6] train        outdated: made from the run of an earlier "
                                       "stage run again now; --resume runs it again\n")


def test_run_prints_the_tuning_progress_as_a_line_per_tenth_of_the_trials_in_a_log(capsys):
    """Redirected to a file, 40 redraws in place would be one line of 40 bars."""
    from reclab.cli import _progress

    def bar(done):
        return f"tuning: {done * 100 // 40:3d}%|###| {done}/40 [00:01<00:01, best precision@10=0.2100]"

    _progress("start", "tune", 2, None)
    for done in range(41):
        _progress("trial", "tune", 2, bar(done))
    _progress("trial", "tune", 2, bar(40))   # tqdm draws the finished bar again when it closes
    _progress("done", "tune", 2, 3.5)
    lines = capsys.readouterr().out.splitlines()
    assert "\r" not in "".join(lines)
    assert lines == (["[2/6] tune         running"] + [f"    {bar(done)}" for done in range(0, 41, 4)]
                     + ["[2/6] tune             3.5 s"])


def test_run_names_the_store_the_ui_must_open_when_it_is_not_the_default(tmp_path, monkeypatch):
    """`make ui` and a plain `reclab ui` open the default store: after `reclab run --tracking-uri
    sqlite:///other.db` the printed link led to a run that store does not hold."""
    from reclab.cli import _ui_command

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _ui_command(tracking.tracking_uri()) == "make ui  (or: reclab ui)"
    other = tracking.tracking_uri(f"sqlite:///{tmp_path}/runs.db")
    assert _ui_command(other) == f"reclab ui --tracking-uri {other}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other)   # a plain `reclab ui` opens it too
    assert _ui_command(other) == "make ui  (or: reclab ui)"
