"""Run the stage notebooks in order with papermill: the engine behind ``reclab run``.

One pipeline is one MLflow parent run (see :mod:`reclab.tracking`). Each stage notebook is
executed by papermill in a fresh Jupyter kernel, with the parameters ``params_file`` (the
resolved parameters, written to the run's output folder as ``params.yaml``), ``experiment``,
``tracking_uri`` and ``parent_run_id``; the executed notebook is written to the output folder
and logged to the stage's run (``notebook/<name>.ipynb``).

The kernel is always the Python interpreter that runs this code (``sys.executable``), through
``reclab/_kernel.py``, on Linux as a fork of one preloaded process (:mod:`reclab.kernels`).

Every parameter the pipeline passes must be declared in the notebook's cell tagged
``parameters``: papermill only warns about an unknown one (and the notebook would silently run
with its own default), so the pipeline checks every stage's notebook before the first one runs.

When a stage fails, its run and the pipeline run are marked FAILED, the executed notebook with
the error is kept (output folder and MLflow), and :class:`PipelineError` says which stage failed
and why. When it is interrupted (Ctrl-C; SIGTERM under ``reclab run``), the kernel is stopped,
the runs are marked KILLED and the ``KeyboardInterrupt`` goes on; any other exception marks them
FAILED and goes on too. No run is left RUNNING, except by a process killed outright (SIGKILL).

``resume=<pipeline run id>`` continues a pipeline from its first unfinished stage; stage runs it
finds still RUNNING (their process was killed outright) are marked KILLED first. A tune stage
that was interrupted continues its search: every finished trial is in a checkpoint logged with
the tune run (``tuning/checkpoint.jsonl``, see :func:`reclab.tracking.tuning_checkpoint`),
so the resumed stage runs only the trials that had not finished, and ends with the same trials
and best parameters as an uninterrupted search.

``backend: spark`` needs pyspark and Java (checked before anything runs); the stage kernels then
train SparkALS in their own Spark session (see :mod:`reclab.config.schema`, "Backends").

Everything that can be checked is checked before the pipeline run exists and any kernel starts:
the configuration (dataset and model names, search spaces, backend), a space to search for every
tuned model (:func:`reclab.config.check_searchable`), the data files of the data set
(:func:`reclab.config.check_runnable`), the backend's needs and the notebooks' parameters.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from reclab._io import atomic_write
from reclab.config import (RUN_PARAMETERS, Config, check_runnable, check_searchable,
                           notebook_overrides)
from reclab.config.files import overridden_source
from reclab.errors import ReclabError
from reclab.kernels import fork_server, kernel_manager_class
from reclab.stages import (NOTEBOOKS, STAGES, changes_search, check_output,
                           default_params_file, differences, first_reader, notebooks_dir)
from reclab.summary import render_summary

__all__ = ["NOTEBOOKS", "STAGES", "PipelineError", "PipelineResult", "run_pipeline", "notebooks_dir",
           "default_params_file", "parse_stages", "start_notebook"]

# Parameters the pipeline passes to every stage notebook (each must be in its parameters cell).
_PASSED = (*RUN_PARAMETERS, "experiment")
# Seconds a kernel may take to start; papermill's 60 s is tight on a loaded 2-core machine.
_KERNEL_START_TIMEOUT = 300


class PipelineError(ReclabError):
    """A stage notebook failed (or could not start).

    Attributes
    ----------
    stage : str
    message : str
        The exception type and message raised in the notebook (no traceback).
    notebook : pathlib.Path or None
        The executed notebook, with the error in its failing cell.
    run_id : str
        The pipeline (parent) run id, for ``reclab run --resume``.
    notebook_partial : bool
        True when ``notebook`` is not a whole notebook (writing it failed, for example on a
        full disk): it holds the start of the executed notebook only.
    """

    def __init__(self, stage: str, message: str, notebook: Path | None, run_id: str,
                 notebook_partial: bool = False):
        self.stage, self.message, self.notebook, self.run_id = stage, message, notebook, run_id
        self.notebook_partial = notebook_partial
        super().__init__(f"stage {stage!r} failed: {message}")


def _is_whole_notebook(path: Path) -> bool:
    """Whether ``path`` holds a whole notebook (JSON), not the start of one."""
    import json

    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` did.

    Attributes
    ----------
    run_id : str
        The pipeline (parent) run id.
    output_dir : pathlib.Path
        Folder holding ``params.yaml`` and the executed notebooks.
    seconds : dict of str -> float
        Wall time of each stage run now, by stage.
    summary : dict
        :func:`reclab.tracking.pipeline_summary` of the pipeline run.
    """

    run_id: str
    output_dir: Path
    seconds: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def parse_stages(stages: Sequence[str] | None, config: Config | None = None) -> list[str]:
    """Stage names from ``--stages`` values: names, numbers (``2``) or ranges (``2-4``), given
    separately or comma-separated; None means all of :data:`STAGES`, in order, where stage 6
    (``online``) is left out when ``config`` does not set ``online: {enabled: true}``."""
    if not stages:
        return [stage for stage in STAGES
                if stage != "online" or config is None or config.online.enabled]
    chosen = set()
    for value in stages:
        for token in str(value).replace(",", " ").split():
            span = re.fullmatch(r"(\d+)-(\d+)", token)
            if span:
                low, high = int(span.group(1)), int(span.group(2))
                if low > high:
                    raise ReclabError(f"--stages range {token!r} runs backwards; write '{high}-{low}'")
                if not 1 <= low <= high <= len(STAGES):
                    raise ReclabError(f"--stages range {token!r} must lie within 1-{len(STAGES)}")
                chosen.update(STAGES[low - 1:high])
            elif token.isdigit() and 1 <= int(token) <= len(STAGES):
                chosen.add(STAGES[int(token) - 1])
            elif token in STAGES:
                chosen.add(token)
            else:
                raise ReclabError(f"unknown stage {token!r}; stages are {list(STAGES)} "
                                  f"(or their numbers 1-{len(STAGES)})")
    if not chosen:   # an empty value ('', ','): no stage to run, not an empty pipeline run
        raise ReclabError(f"--stages {' '.join(map(str, stages))!r} names no stage; stages are "
                          f"{list(STAGES)} (or their numbers 1-{len(STAGES)}); leave --stages out "
                          f"to run them all")
    return [stage for stage in STAGES if stage in chosen]


class _TrialProgress:
    """A papermill ``stderr_file`` that passes the tuning progress bar on as ``progress("trial",
    stage, number, text)`` and every other line to ``forward`` (the kernel output, or nowhere).

    reclab.tuning's bar (tqdm, on the notebook's standard error) writes lines beginning with
    "tuning"; every other standard-error text is forwarded as it comes (and is in the executed
    notebook in any case).
    """

    def __init__(self, progress, stage: str, number: int, forward=None):
        self.progress, self.stage, self.number, self.forward = progress, stage, number, forward

    def write(self, text: str) -> None:
        pieces = [piece for piece in re.split(r"[\r\n]", text) if piece.strip()]
        bars = [piece.strip() for piece in pieces if piece.strip().startswith("tuning")]
        if bars:
            self.progress("trial", self.stage, self.number, bars[-1])
        others = [piece for piece in pieces if not piece.strip().startswith("tuning")]
        if others and self.forward is not None:
            self.forward.write("\n".join(others) + "\n")

    def flush(self) -> None:
        if self.forward is not None:
            self.forward.flush()


@contextlib.contextmanager
def _signals_held():
    """Hold Ctrl-C, SIGTERM and SIGHUP (where Python handles them) while the block runs, then act
    on the first that came: the pipeline run is made or reopened in one piece. A signal in the
    middle of MLflow's writes made MLflow log its SQLAlchemy error with a traceback, and one just
    after the run was made, before the cleanup knew of it, left the run RUNNING. Off the main
    thread, where Python handles no signal, nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held, previous = [], {}
    for number in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if number is not None and callable(signal.getsignal(number)):
            previous[number] = signal.signal(number, lambda *arrived: held.append(arrived))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number, frame in held[:1]:
            previous[number](number, frame)


def _check_notebook(path: Path, passed: Sequence[str] = _PASSED) -> None:
    """The notebook exists and declares every parameter in ``passed`` (papermill itself only
    warns about an unknown parameter and runs the notebook with its own default)."""
    import papermill

    if not path.is_file():
        raise ReclabError(f"stage notebook {str(path)!r} not found")
    declared = papermill.inspect_notebook(str(path))
    unknown = [name for name in passed if name not in declared]
    if unknown:
        raise ReclabError(f"{path.name} has no parameter {unknown[0]!r} in its cell tagged "
                          f"'parameters', but the pipeline passes it (declared: {sorted(declared)})")


def _check_backend(backend: str) -> None:
    """What the backend needs is installed (before anything runs, not in stage 2's kernel)."""
    if backend != "spark":
        return
    if importlib.util.find_spec("pyspark") is None:
        raise ReclabError("backend 'spark' needs pyspark (and Java 17): pip install 'reclab[spark]', "
                          "or set backend: local")
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and (Path(java_home) / "bin" / "java").is_file()):
        raise ReclabError("backend 'spark' needs Java 17 (Spark runs in a JVM): no 'java' on PATH and "
                          "JAVA_HOME is not set; install a JDK 17 or set backend: local")


def _error_message(error: Exception) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        return f"{error.ename}: {error.evalue}"
    return f"{type(error).__name__}: {error}"


def _check_changes(changes: Mapping, finished: Sequence[str], chosen: Sequence[str],
                   resume: str, last: str, configs: tuple) -> None:
    """Refuse ``--resume --set`` values that a finished stage kept as it is has used: its
    results (and everything made from them) would no longer match the pipeline's parameters.
    ``configs``: the pipeline's configuration and the changed one (which stages use a model)."""
    if "experiment" in changes:
        raise ReclabError(f"--set experiment=...: pipeline {resume} stays in its experiment "
                          f"{changes['experiment'][0]!r}; start a new pipeline for another one")
    for key, (old, new) in changes.items():
        reader = first_reader(key, configs)
        used = [stage for stage in STAGES[STAGES.index(reader):]
                if stage in finished and stage not in chosen]
        if used:
            end = max(STAGES.index(last), STAGES.index(used[-1])) + 1
            raise ReclabError(
                f"--set {key}={new!r}: the finished {used[0]!r} stage of pipeline {resume} used "
                f"{key}={old!r}, and a resumed pipeline keeps what finished; run the stages that "
                f"use it again (reclab run --resume {resume} --stages "
                f"{STAGES.index(reader) + 1}-{end} --set {key}=...), or start a new pipeline "
                f"with -p/--set")


def _plan(stages: list[str], finished: Sequence[str], resume: str | None) -> list[str]:
    """Check that every chosen stage's predecessor runs before it or has finished."""
    for stage in stages:
        position = STAGES.index(stage)
        if position == 0:
            continue
        before = STAGES[position - 1]
        if before not in stages and before not in finished:
            hint = (f"pipeline {resume} has no finished {before!r} stage" if resume
                    else "a new pipeline starts at 'preprocess'")
            raise ReclabError(f"stage {stage!r} needs the {before!r} stage first: {hint}; add "
                              f"{before!r} to --stages or --resume a pipeline where it finished")
    return stages


def run_pipeline(params_file=None, overrides: Mapping | None = None,
                 stages: Sequence[str] | None = None, resume: str | None = None,
                 output_dir=None, tracking_uri: str | None = None, notebooks=None,
                 progress: Callable[[str, str, int, float | None], None] | None = None,
                 execution_timeout: float | None = None, kernel_output=None) -> PipelineResult:
    """Execute the stage notebooks of one pipeline, in order.

    Parameters
    ----------
    params_file : str or os.PathLike, optional
        YAML parameter file (see :mod:`reclab.config`); default :func:`default_params_file`.
        Not allowed with ``resume`` (a resumed pipeline keeps its parameters file).
    overrides : mapping of str to value, optional
        ``{dotted key: value}`` on top of the file (``--set``).
    stages : sequence of str, optional
        Stages to run (see :func:`parse_stages`); default all, or with ``resume`` every stage
        from the first that has not finished. The default includes stage 6 (``online``) only
        when the parameters set ``online: {enabled: true}``; ``--stages 1-6`` always runs it.
    resume : str, optional
        Id of a pipeline run to continue: its stages that finished are not run again.
        ``overrides`` correct its parameters, each only where no finished stage that is kept
        has used it (see ``reclab.stages.first_reader``; a key read by a finished stage needs ``stages``
        from that stage on); the pipeline's ``params.yaml`` is then replaced and tag
        ``reclab.resumed_with`` says what changed (MLflow params are write-once: the pipeline
        run's keep their first values; the stage runs made now log the corrected ones).
    output_dir : str or os.PathLike, optional
        Where ``params.yaml`` and the executed notebooks go; default
        ``<project>/outputs/<pipeline run id>``, or with ``resume`` the folder of the pipeline's
        last ``reclab run`` (tag ``reclab.output_dir``).
    tracking_uri : str, optional
        MLflow store (see :func:`reclab.tracking.tracking_uri`).
    notebooks : str or os.PathLike, optional
        Folder of the stage notebooks (default :func:`notebooks_dir`); kernels run in it, so
        relative paths in notebooks mean the same as in JupyterLab.
    progress : callable, optional
        ``progress(event, stage, number, seconds)`` with event ``"start"`` (seconds None),
        ``"done"`` or ``"failed"``; number is the stage's position 1..6. While a search runs,
        event ``"trial"`` passes, in place of the seconds, the text of its progress bar (trial i
        of n, the best score so far, the time left) after each trial. Resuming, each stage that
        finished before and is not run again is reported first as ``"kept"`` (``"outdated"`` when
        it comes after a stage that runs again: made from that stage's old run); stage 6, left out
        because the parameters do not enable it, is reported last as ``"off"``.
    execution_timeout : float, optional
        Seconds a single cell may run (default: no limit).
    kernel_output : text file, optional
        Where the stage kernels' standard output and error (what cells print, progress bars)
        are written while they run, such as ``sys.stdout`` under ``reclab run``; default:
        only into the executed notebooks.

    Returns
    -------
    PipelineResult

    Raises
    ------
    PipelineError
        A stage failed; its run and the pipeline run are marked FAILED.
    ReclabError
        Bad parameters, stages or notebooks (before anything runs), or an output folder that
        cannot be written.

    Notes
    -----
    Whatever ends the call after the pipeline run started (a stage failure, an unwritable output
    folder, a store error while logging, Ctrl-C or SIGTERM between stages), the pipeline run and
    its stage runs are not left RUNNING.
    """
    from reclab import tracking

    begun: list[tuple[str, str]] = []   # (pipeline run id, store) once the run exists
    try:
        with contextlib.ExitStack() as cleanup:   # closes the stage kernels' fork server
            return _run_pipeline(begun, cleanup, params_file, overrides, stages, resume, output_dir,
                                 tracking_uri, notebooks, progress, execution_timeout,
                                 kernel_output)
    except BaseException as error:
        if begun:
            interrupted = isinstance(error, (KeyboardInterrupt, SystemExit))
            message = (f"interrupted: {str(error) or 'stopped by the user (Ctrl-C)'}" if interrupted
                       else _error_message(error))
            try:
                tracking.end_unfinished_pipeline(begun[0][0], message, begun[0][1],
                                                 status="KILLED" if interrupted else "FAILED")
            except Exception as store_error:   # the store itself may be what failed
                error.add_note(f"the pipeline run {begun[0][0]} could not be marked ended: "
                               f"{_error_message(store_error)}")
        raise


def _prepared_output(output: Path, params_text: str | None) -> Path:
    """``output`` made, with ``params.yaml`` written into it when ``params_text`` is given (the
    kernels read it: never half-written); a folder that cannot be written is named."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        if params_text is not None:
            with atomic_write(output / "params.yaml", "w") as handle:
                handle.write(params_text)
    except OSError as error:
        raise ReclabError(f"cannot write the output folder {str(output)!r}: {error.strerror}; pass a "
                          f"writable folder (--output)") from None
    return output


def _run_pipeline(begun: list, cleanup: contextlib.ExitStack, params_file, overrides, stages,
                  resume, output_dir, tracking_uri, notebooks, progress, execution_timeout,
                  kernel_output) -> PipelineResult:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from reclab import tracking

    notebooks = Path(notebooks) if notebooks is not None else notebooks_dir()
    uri = tracking.tracking_uri(tracking_uri)
    changes = {}
    if resume:
        if params_file is not None:
            raise ReclabError("--resume continues a pipeline with its own parameters; drop -p "
                              "(correct single values with --set, or start a new pipeline without "
                              "--resume)")
        state = tracking.pipeline_state(resume, uri)
        stored = f"params.yaml of run {resume}"
        before = Config.loads(state["params_text"], stored)
        config = Config.loads(state["params_text"], stored, overrides) if overrides else before
        source = overridden_source(stored, overrides)
        finished = state["finished"]
        # Stage 6 where it ran (--stages 6), enabled or not, unless this resume says otherwise.
        decided = {"online", "online.enabled"} & set(overrides or ())
        by_default = parse_stages(["1-6"] if "online" in state["begun"] and not decided else None, config)
        chosen = parse_stages(stages) if stages else [s for s in by_default if s not in finished][:1]
        if not stages and chosen:
            chosen = by_default[by_default.index(chosen[0]):]
        run_id = resume
    else:
        if params_file is None:
            params_file = default_params_file()
        config = Config.load(params_file, overrides)
        source = overridden_source(str(params_file), overrides)   # a value given with --set: said so
        finished = []
        chosen = parse_stages(stages, config)
        run_id = None
    # Kernels run in the notebooks folder: a path relative to here must stay valid there.
    if config.data_dir is not None:
        config = config.model_copy(update={"data_dir": str(Path(config.data_dir).expanduser().resolve())})
    located = {key: os.path.abspath(Path(config.file[key]).expanduser())   # as named, links kept
               for key in ("path", "items") if config.file[key] is not None}
    config = config.model_copy(update={"file": config.file.model_copy(update=located)})
    if resume:
        changes = differences(before.model_dump(), config.model_dump())
        _check_changes(changes, finished, chosen, resume, by_default[-1], (before, config))
    _check_backend(config.backend)
    _plan(chosen, finished, resume)
    for stage in chosen:
        _check_notebook(notebooks / NOTEBOOKS[stage])
    if "tune" in chosen:   # a space to search for every tuned model, before stage 1 runs
        check_searchable(config, source)
    if "preprocess" in chosen:   # the one stage that reads the data set: its files, before any run
        check_runnable(config, source)
    params_text = config.dump()
    if run_id is None:   # a store MLflow cannot open, before anything is written (resume opened it)
        tracking.open_client(uri)
    # A folder that cannot be written is refused before any run is made or reopened. Resumed
    # without --output, a pipeline that reclab run began writes to its own folder.
    folder = output_dir if output_dir is not None or not resume else state["output_dir"]
    if folder is not None:
        output = _prepared_output(check_output(Path(folder), notebooks), params_text)
    else:   # the project's outputs/<run id>, once the run has its id
        output = _prepared_output(tracking.project_root() / "outputs", None)
    # Checked: the stage kernels' server starts, and preloads while the pipeline run is created.
    forks = cleanup.enter_context(fork_server())
    with _signals_held():   # the pipeline run is made or reopened whole, and is in begun
        if run_id is None:
            run_id = tracking.start_pipeline(config, uri, params_text=params_text)
            begun.append((run_id, uri))
        else:
            begun.append((run_id, uri))
            for run in tracking.stage_runs(run_id, uri, status="RUNNING"):
                # Left RUNNING by a process killed outright; a tune run's checkpoint is still
                # found by the tune stage that runs now (it looks at every unfinished tune run).
                tracking.fail_stage(run_id, run.data.tags[tracking.TAG_STAGE], None,
                                    "interrupted: the run was still RUNNING when the pipeline was "
                                    "resumed (its process was killed)", uri, status="KILLED")
            tracking.reopen_pipeline(run_id, uri)
            if changes:
                tracking.record_resume_changes(run_id, config, params_text, changes, uri,
                                               changes_search(changes, (before, config)))
        if folder is None:
            output = _prepared_output(output / run_id, params_text)
        tracking.record_output_dir(run_id, output, uri)
    params_path = output / "params.yaml"
    result = PipelineResult(run_id=run_id, output_dir=output)
    if progress:
        for stage in finished:
            if stage not in chosen:   # a stage after one that runs again is made from the old run
                later = chosen and STAGES.index(stage) > STAGES.index(chosen[0])
                progress("outdated" if later else "kept", stage, STAGES.index(stage) + 1, None)
    for stage in chosen:
        number = STAGES.index(stage) + 1
        executed = output / NOTEBOOKS[stage]
        if progress:
            progress("start", stage, number, None)
        started = time.perf_counter()
        try:
            with open(output / f"{Path(NOTEBOOKS[stage]).stem}.kernel.log", "wb") as kernel_log:
                papermill.execute_notebook(
                    str(notebooks / NOTEBOOKS[stage]), str(executed),
                    parameters={"params_file": str(params_path.resolve()),
                                "experiment": config.experiment, "tracking_uri": uri,
                                "parent_run_id": run_id},
                    kernel_name="python3", cwd=str(notebooks), progress_bar=False,
                    start_timeout=_KERNEL_START_TIMEOUT,
                    log_output=False, execution_timeout=execution_timeout,
                    stdout_file=kernel_output,
                    stderr_file=(_TrialProgress(progress, stage, number, kernel_output) if progress
                                 else kernel_output),
                    kernel_manager_class=kernel_manager_class(kernel_log, forks, run_id))
            stage_run = tracking.find_stage_run(stage, config.experiment, run_id, uri=uri)
            if stage_run is None:
                raise ReclabError(f"{NOTEBOOKS[stage]} ran to the end without finishing a "
                                  f"{stage!r} run (it must call stage.finish())")
        except (PapermillExecutionError, ReclabError, RuntimeError, OSError, TimeoutError) as error:
            seconds = time.perf_counter() - started
            result.seconds[stage] = seconds
            message = _error_message(error)
            partial = executed.is_file() and not _is_whole_notebook(executed)
            if partial:
                message += (f" (the executed notebook {str(executed)!r} is partial: it could not be "
                            f"written in full)")
            tracking.fail_stage(run_id, stage, executed if executed.is_file() else None, message, uri)
            if progress:
                progress("failed", stage, number, seconds)
            raise PipelineError(stage, message, executed if executed.is_file() else None,
                                run_id, partial) from None
        except BaseException as error:
            # Ctrl-C, SIGTERM (``reclab run`` raises KeyboardInterrupt for it) or an error that
            # is no stage failure (a bug here): papermill has stopped the kernel on the way out.
            # Never leave the runs RUNNING: mark them, KILLED when interrupted, and re-raise.
            interrupted = isinstance(error, (KeyboardInterrupt, SystemExit))
            message = (f"interrupted: {str(error) or 'stopped by the user (Ctrl-C)'}" if interrupted
                       else _error_message(error))
            tracking.fail_stage(run_id, stage, executed if executed.is_file() else None, message,
                                uri, status="KILLED" if interrupted else "FAILED")
            error.add_note(f"resume the pipeline: reclab run --resume {run_id}")
            raise
        result.seconds[stage] = time.perf_counter() - started
        tracking.log_notebook(stage_run.info.run_id, executed, uri)
        if progress:
            progress("done", stage, number, result.seconds[stage])
    if progress and not stages and "online" not in (*chosen, *finished):
        progress("off", "online", STAGES.index("online") + 1, None)
    result.summary = tracking.pipeline_summary(run_id, uri)
    tracking.end_pipeline(run_id, render_summary(result.summary, markdown=True), uri)
    result.summary["status"] = "FINISHED"
    return result


# The stage run that start_notebook last started in this process (a notebook's kernel), by store
# and stage: the notebook's first cell run again ends it (tracking.end_replaced_stage).
_NOTEBOOK_RUNS: dict = {}


def start_notebook(stage: str, parameters: Mapping):
    """Start the run of stage notebook ``stage`` from the values of its ``parameters`` cell (the
    notebook passes ``globals()``): the one line that begins every stage notebook.

    Returns
    -------
    (reclab.tracking.StageRun, reclab.config.Config)
        The stage's run, and the configuration of its pipeline (see
        :func:`reclab.tracking.start_stage` for which pipeline and which parameters).
    """
    from reclab import tracking

    run = tracking.start_stage(stage, parameters.get("params_file"),
                               overrides=notebook_overrides(stage, parameters),
                               parent_run_id=parameters.get("parent_run_id"),
                               uri=parameters.get("tracking_uri"))
    earlier = _NOTEBOOK_RUNS.get((run.client.tracking_uri, stage))   # this cell's run before
    _NOTEBOOK_RUNS[run.client.tracking_uri, stage] = run
    if earlier is not None:
        tracking.end_replaced_stage(earlier, run)
    return run, run.params
