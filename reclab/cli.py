"""The ``reclab`` command: ``reclab run``, ``reclab ui``, ``reclab compare``.

Exit status: 0 on success, 1 when a pipeline stage fails, 2 for bad arguments, parameters or
run ids (the message names what is wrong; no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from reclab.errors import ReclabError
from reclab.stages import STAGES
from reclab.summary import render_summary

__all__ = ["main"]


def _print(*parts, **options) -> None:
    _written(options.get("file") or sys.stdout, lambda: print(*parts, **options, flush=True))


def _written(stream, write) -> None:
    """Call ``write()``, which writes to ``stream``; when the reader of ``stream`` has gone (a
    closed pipe, ``reclab run | head``: EPIPE; a terminal that hung up: EIO), what follows is
    written to nowhere, as Python's documentation advises, so that the run goes on and its
    records stay right rather than a stage failing, or a hang-up's cleanup stopping, over lines
    nobody reads."""
    try:
        write()
    except OSError as error:
        if error.errno not in (errno.EPIPE, errno.EIO):
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


# -- reclab run -------------------------------------------------------------------------------
# The tuning progress line: its length when shown in place (0 when none is); in a log, the tenth
# of the trials it was last printed at.
_BAR = {"width": 0, "tenth": -1}


def _in_place() -> bool:
    """Whether the tuning progress bar is redrawn in place (a terminal) rather than printed as
    lines (a log file or pipe, where each redraw would pile up on one line)."""
    return sys.stdout.isatty()


def _progress(event: str, stage: str, number: int, seconds) -> None:
    head = f"[{number}/{len(STAGES)}] {stage:<12}"
    if event == "trial":   # ``seconds`` holds the text of the tuning progress bar
        line = f"    {seconds}"
        if _in_place():
            _print("\r" + line.ljust(_BAR["width"]), end="")
            _BAR["width"] = len(line)
            return
        # In a log: one line at each tenth of the trials (tqdm's text: "... | i/n [...").
        done = re.search(r"\|\s*(\d+)/(\d+)", seconds)
        tenth = 10 * int(done[1]) // max(1, int(done[2])) if done else _BAR["tenth"] + 1
        if tenth > _BAR["tenth"]:
            _print(line)
            _BAR["tenth"] = tenth
        return
    _BAR["tenth"] = -1
    _end_bar()
    # One line per event: what the stage's kernel prints comes between start and end.
    if event == "kept":
        _print(f"{head} kept: finished before, not run again")
    elif event == "outdated":
        _print(f"{head} outdated: made from the run of an earlier stage run again now; "
               f"--resume runs it again")
    elif event == "start":
        _print(f"{head} running")
    elif event == "off":
        _print(f"{head} off: the parameters do not set online: {{enabled: true}} "
               "(--stages 6 runs it)")
    elif event == "done":
        _print(f"{head} {seconds:7.1f} s")
    else:
        _print(f"{head} {seconds:7.1f} s  FAILED")


def _end_bar() -> None:
    """End the line of an in-place progress bar before anything else is printed."""
    if _BAR["width"]:
        _print()
        _BAR["width"] = 0


def _print_summary(result, uri: str) -> None:
    from reclab import tracking

    summary = result.summary
    _print()
    _print(render_summary(summary, seconds=sum(result.seconds.values())))
    _print()
    _print(f"MLflow run id: {summary['run_id']}  (experiment id {summary['experiment_id']}, "
           f"store {uri})")
    _print(f"Executed notebooks: {result.output_dir}")
    _print(f"Open the MLflow UI: {_ui_command(uri)}, then http://127.0.0.1:5000"
           f"{tracking.ui_path(summary['experiment_id'], summary['run_id'])}")


def _ui_command(uri: str) -> str:
    """The command that serves the store ``uri`` in the MLflow UI: ``make ui`` and a plain ``reclab
    ui`` open the default store, so another one (``--tracking-uri``) is named."""
    from reclab import tracking

    if uri == tracking.tracking_uri():
        return "make ui  (or: reclab ui)"
    return f"reclab ui --tracking-uri {shlex.quote(uri)}"


def _run(args) -> int:
    from reclab.config import Config, parse_assignments
    from reclab.stages import default_params_file

    overrides = parse_assignments(args.set or [])
    if not args.resume:   # a missing or bad parameter file is told before MLflow's imports (2 s)
        Config.load(args.params or default_params_file(), overrides)
    from reclab import pipeline, tracking

    # An application's choice: MLflow's INFO lines and download progress bars are noise here.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking.tracking_uri(args.tracking_uri)
    if args.resume:
        args.resume = tracking.full_run_id(args.resume, uri)
    source = "run " + args.resume if args.resume else str(args.params or default_params_file())
    _print(f"reclab run: {source} -> MLflow {uri}")
    # SIGTERM (a scheduler, `kill`, a closing container) and SIGHUP (the terminal closed) take
    # Ctrl-C's way out: the stage's kernel is stopped and the runs are marked KILLED instead of
    # being left RUNNING.
    previous = _stop_on_signals()
    try:
        result = pipeline.run_pipeline(
            params_file=args.params, overrides=overrides, stages=args.stages, resume=args.resume,
            output_dir=args.output, tracking_uri=uri, progress=_progress,
            kernel_output=_KernelOutput(sys.stdout))
    except pipeline.PipelineError as error:
        _print(f"\nreclab run: stage {error.stage!r} failed: {error.message}", file=sys.stderr)
        if error.notebook is not None:
            what = "partial: it could not be written in full" if error.notebook_partial else "with the error"
            _print(f"  executed notebook ({what}): {error.notebook}", file=sys.stderr)
        _print(f"  resume after fixing it: reclab run --resume {error.run_id}", file=sys.stderr)
        _print(f"  (a parameter that stage {error.stage!r} or a later one reads can be corrected "
               f"there with --set KEY=VALUE)", file=sys.stderr)
        return 1
    finally:
        _restore(previous)
    _print_summary(result, uri)
    return 0


class _KernelOutput:
    """What a stage's kernel prints, written to ``stream`` as it comes, each line indented
    under its stage's progress line (a progress bar's carriage returns included)."""

    def __init__(self, stream):
        self.stream, self.at_line_start = stream, True

    def write(self, text: str) -> None:
        if text:
            _end_bar()
        out = []
        for char in text:
            if self.at_line_start and char not in "\n":
                out.append("    ")
            out.append(char)
            self.at_line_start = char in "\r\n"
        _written(self.stream, lambda: self.stream.write("".join(out)))

    def flush(self) -> None:
        _written(self.stream, self.stream.flush)


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP received: handled as Ctrl-C is, but ``reclab`` exits with status 128 +
    the signal's number (143, 129)."""

    signum = signal.SIGTERM


def _terminate(signum, frame) -> None:
    stopped = _Terminated(f"stopped by {signal.Signals(signum).name}")
    stopped.signum = signum
    raise stopped


def _stop_on_signals() -> dict:
    """Make SIGTERM and SIGHUP (a closed terminal) stop ``reclab`` as Ctrl-C does (a hang-up
    ended it at once, leaving its runs RUNNING and the UI's server serving); a hang-up that is
    ignored (``nohup``) still is. Returns the handlers replaced, for :func:`_restore`; none off
    the main thread, where Python sets no handler."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for stop in (signal.SIGTERM, signal.SIGHUP):
            if stop == signal.SIGTERM or signal.getsignal(stop) is not signal.SIG_IGN:
                previous[stop] = signal.signal(stop, _terminate)
    return previous


def _restore(previous: dict) -> None:
    for stop, handler in previous.items():   # None: the handler was not set from Python
        signal.signal(stop, signal.SIG_DFL if handler is None else handler)


# -- reclab ui --------------------------------------------------------------------------------
def _port_free(host: str, port: int) -> bool:
    """Whether the UI can listen on ``host:port``; a port out of range, a host name that does not
    resolve or an address of another machine is refused (each was reported as a port in use, or
    a traceback)."""
    if not 1 <= port <= 65535:
        raise ReclabError(f"--port must be a number from 1 to 65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except socket.gaierror:
            raise ReclabError(f"--host {host!r} is not an address or a name this machine can "
                              f"resolve; the default is 127.0.0.1") from None
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                raise ReclabError(f"--host {host} is not an address of this machine; the default "
                                  f"is 127.0.0.1") from None
            return False
    return True


def _wait_listening(host: str, port: int, process, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def _ui(args) -> int:
    from reclab import tracking

    uri = tracking.tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        _print(f"The MLflow store is a server already: open {uri}")
        return 0
    if not _port_free(args.host, args.port):
        raise ReclabError(f"port {args.port} on {args.host} is in use; choose another with --port")
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port), "--workers", "1"]
    folder = tracking.sqlite_folder(uri)
    if folder is not None:
        command += ["--default-artifact-root", (folder / "mlruns").as_uri()]
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
    database = tracking.sqlite_file(uri)
    new = database is not None and not database.exists()   # a typo made an empty UI unsaid
    # Read before the server starts: on a new SQLite store this builds the schema under reclab's
    # lock, so that the server does not race a pipeline that starts meanwhile.
    experiments = tracking.experiments_with_runs(uri)
    # Each experiment opens on its saved view "reclab: test metrics" (columns and sort order).
    views = {experiment: tracking.save_metrics_view(experiment, uri) for experiment, _ in experiments}
    # The UI only browses runs: MLflow's background job runners (GenAI scorers) stay off unless
    # asked for. The server gets its own process group, so that stopping it stops every process
    # it started, whoever sent the Ctrl-C.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION":
           os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")}
    process = subprocess.Popen(command, env=env, start_new_session=True)
    interrupted = False
    # SIGTERM and SIGHUP stop the UI as Ctrl-C does: the server's process group, in a session of
    # its own, goes with it (it kept the port after a hang-up).
    previous = _stop_on_signals()
    try:
        if _wait_listening(args.host, args.port, process, 120):
            _print(f"MLflow UI: {url}  (store {uri}; Ctrl-C to stop)")
            for experiment, name in experiments:
                _print(f"  experiment {name!r}: {url}"
                       f"{tracking.ui_path(experiment, view=views[experiment])}")
            if not experiments:
                _print("  no runs in this store yet" + (f": it was made now, no file was at "
                       f"{database} (see --tracking-uri)" if new else ""))
        status = process.wait()
        if status != 0:
            raise ReclabError(f"mlflow server exited with status {status}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _stop_group(process)
        _restore(previous)
    if interrupted:
        _print("\nMLflow UI stopped.")
    return 0


def _stop_group(process) -> None:
    """Stop the server's process group quietly and completely.

    First SIGTERM to the leader's children (uvicorn, which shuts down cleanly; ``mlflow
    server``, waiting for it, then exits by itself: a SIGINT would make it print a
    KeyboardInterrupt traceback). Whatever is left then gets SIGINT, SIGTERM and SIGKILL in
    turn, each given some seconds to empty the group.
    """
    for child in _children(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
    if _wait_group_gone(process, 20):
        return
    for sig, seconds in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return   # the whole group is gone
        if _wait_group_gone(process, seconds):
            return


def _wait_group_gone(process, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        process.poll()   # reap the leader, or the group never looks empty
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


# -- reclab compare ---------------------------------------------------------------------------
def _compare(args) -> int:
    import pandas as pd

    from reclab import tracking

    uri = tracking.tracking_uri(args.tracking_uri)
    database = tracking.sqlite_file(uri)
    if database is not None and not (database.is_file() and database.stat().st_size):
        # a typo, or an empty file: not a new store (MLflow would make one of it, in silence)
        problem = "is empty" if database.is_file() else "does not exist"
        raise ReclabError(f"no MLflow store at {uri}: the file {problem} (runs are compared "
                          f"where they were logged; see --tracking-uri)")
    args.runs = [tracking.full_run_id(run_id, args.tracking_uri) for run_id in args.runs]
    repeated = sorted({run_id for run_id in args.runs if args.runs.count(run_id) > 1})
    if repeated:   # one column per run: a run twice made the table ambiguous (a traceback)
        raise ReclabError(f"run {repeated[0]} is given more than once; name each run once")
    params, metrics = tracking.run_table(args.runs, args.tracking_uri)
    reports = [tracking.load_report(run_id, args.tracking_uri) for run_id in args.runs]
    _check_metric(args.metric, args.runs, reports)   # before any output
    if not args.all_params:
        differs = params.astype(str).nunique(axis=1, dropna=False) > 1
        shown = params[differs]
    else:
        shown = params
    shown = shown.fillna("-")   # a parameter one of the runs does not have (another model's)
    keep = sorted((key for key in metrics.index if "_ci_" not in key), key=_metric_order)
    table = metrics.loc[keep].map(lambda value: "" if pd.isna(value) else f"{value:.4f}")
    for key in keep:
        for column in metrics.columns:
            low = metrics.at[f"{key}_ci_low", column] if f"{key}_ci_low" in metrics.index else None
            high = metrics.at[f"{key}_ci_high", column] if f"{key}_ci_high" in metrics.index else None
            if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
                table.at[key, column] += f" [{low:.4f}, {high:.4f}]"
    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 200, "display.max_colwidth", 60):
        title = "Parameters" if args.all_params else "Parameters that differ"
        _print(f"{title}:")
        _print(shown.to_string() if len(shown) else "(none)")
        _print()
        _print("Metrics (95% CI):")
        _print(table.to_string() if len(table) else "(none)")
    _print_paired(args.runs, reports, args.metric)
    return 0


def _check_metric(metric: str, run_ids, reports) -> None:
    """``--metric`` must be a per-user metric of every evaluated run (and a ranking metric's name
    when no run was evaluated: a typo was accepted then)."""
    from reclab.metrics import RANKING_METRICS, check_metric_name

    try:
        ranking = check_metric_name(metric)[0].partition("@")[0] in RANKING_METRICS
    except ReclabError:
        ranking = False
    if not ranking:
        raise ReclabError(f"--metric {metric!r} is no per-user ranking metric; use one of "
                          f"{list(RANKING_METRICS)} at a cut-off, for example ndcg@10")
    for run_id, report in zip(run_ids, reports):
        if report is not None and metric not in report.per_user.columns:
            choices = [column for column in report.per_user.columns if "@" in column]
            raise ReclabError(f"--metric {metric!r} is not a per-user metric of run {run_id}; "
                              f"choose from {choices}")


def _metric_order(key: str):
    """The model's own metrics first, then each baseline's; by name, then by K."""
    owner, _, name = key.rpartition("/")
    base, _, cut = name.partition("_at_")
    return (owner != "", owner, base, int(cut) if cut.isdigit() else 0, name)


def _print_paired(run_ids, reports, metric: str) -> None:
    """Paired comparison (reclab.evaluation.compare) of each run against the first, where they
    share a test split."""
    from reclab.evaluation import compare

    if len(reports) < 2:
        return
    _print()
    if reports[0] is None:   # the comparisons were left out without a word
        _print(f"No paired comparison: the first run ({run_ids[0][:8]}) has no evaluation logged; "
               f"name an evaluated run first")
        return
    _print(f"Paired comparison with the first run ({run_ids[0][:8]}), {metric} per test user:")
    for run_id, report in zip(run_ids[1:], reports[1:]):
        if report is None:
            _print(f"  {run_id[:8]}: no evaluation logged")
        elif report.test_fingerprint != reports[0].test_fingerprint:
            _print(f"  {run_id[:8]}: another test split; no paired comparison")
        else:
            try:
                _print(f"  {run_id[:8]}: {compare(reports[0], report, metric=metric)}")
            except ReclabError as error:   # another relevance threshold or candidate set
                _print(f"  {run_id[:8]}: no paired comparison: {error}")


# -- entry point ------------------------------------------------------------------------------
def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("reclab")
    except metadata.PackageNotFoundError:   # run from a source tree that was never installed
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reclab", description="Reproducible recommender experiments: "
                                     "run the notebook pipeline, browse and compare runs.")
    parser.add_argument("--version", action="version", version=f"reclab {_installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="execute the stage notebooks with papermill")
    run.add_argument("-p", "--params", type=Path, default=None,
                     help="YAML parameter file (default: params/default.yaml of the project)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a parameter, dotted keys for nesting, YAML values "
                          "(e.g. --set tune.n_trials=5; nothing after = is null); repeatable")
    run.add_argument("--stages", nargs="+", metavar="STAGE",
                     help="stages to run: names or numbers, e.g. '--stages 1-2' or "
                          "'--stages preprocess tune' (default: 1-5, and 6 when online.enabled)")
    run.add_argument("--resume", metavar="RUN_ID",
                     help="continue the pipeline run RUN_ID (or the start of its id) from its first "
                          "unfinished stage")
    run.add_argument("--output", type=Path, default=None,
                     help="folder for the executed notebooks (default outputs/<run id>; with "
                          "--resume, the pipeline's own folder)")
    run.add_argument("--tracking-uri", default=None,
                     help="MLflow store (default $MLFLOW_TRACKING_URI, else ./mlflow.db of the project)")
    run.set_defaults(handler=_run)

    ui = commands.add_parser("ui", help="start the MLflow UI on the project's store")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    ui.add_argument("--tracking-uri", default=None, help="MLflow store (as for run)")
    ui.set_defaults(handler=_ui)

    compare = commands.add_parser("compare", help="parameters and metrics of runs side by side")
    compare.add_argument("runs", nargs="+", metavar="RUN_ID",
                         help="run ids, or their first characters (the 8 that compare shows)")
    compare.add_argument("--all-params", action="store_true",
                         help="show every parameter, not only those that differ")
    compare.add_argument("--metric", default="ndcg@10",
                         help="per-user metric of the paired comparison (default ndcg@10)")
    compare.add_argument("--tracking-uri", default=None, help="MLflow store (as for run)")
    compare.set_defaults(handler=_compare)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``reclab`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except ReclabError as error:
        _print(f"reclab {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        reason = f" ({error})" if str(error) else ""
        _print(f"\nreclab {args.command}: interrupted{reason}", file=sys.stderr)
        for note in getattr(error, "__notes__", ()):
            _print(f"  {note}", file=sys.stderr)
        return 128 + (error.signum if isinstance(error, _Terminated) else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
