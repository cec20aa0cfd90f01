"""The life of a pipeline's runs: started (the pipeline, each stage), continued when a notebook is
opened alone, superseded when a stage runs again, ended (finished, failed or interrupted).

A pipeline is one parent run (tag ``reclab.pipeline``), each stage a nested run (tags
``mlflow.parentRunId`` and ``reclab.stage``, one of :data:`reclab.stages.STAGES`), each tuning
trial a run nested under the ``tune`` run. Every run is created and ended explicitly through an
:class:`mlflow.MlflowClient` with its run id, so no global "active run" exists and library code
never starts a run by itself (any fluent ``mlflow.log_*`` call would silently start one).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import Mapping

import mlflow
from mlflow import MlflowClient

from reclab.config import NOTEBOOK_KEYS, STAGE_PARAMETERS, Config
from reclab.config.schema import applied_overrides
from reclab.errors import ReclabError
from reclab.stages import (NOTEBOOKS, RUNNER_ENV, STAGES, changes_search, default_params_file,
                           differences, first_reader)
from reclab.tracking.environment import environment_tags
from reclab.tracking.layout import (NOTEBOOK_DIR, PARAMS_FILE, TAG_ERROR, TAG_NOTE, TAG_OUTDATED,
                                    TAG_OUTPUT_DIR, TAG_PARENT, TAG_PIPELINE, TAG_RESUMED_WITH, TAG_STAGE,
                                    TAG_SUPERSEDED_BY, TAG_CHECKPOINT_OUTDATED, run_name)
from reclab.tracking.queries import find_stage_run, latest_pipeline, pipeline_params, stage_runs
from reclab.tracking.stage_run import StageRun
from reclab.tracking.store import (experiment_id, log_run_params, open_client,
                                   sqlite_file, tracking_uri)

__all__ = ["end_pipeline", "end_replaced_stage", "end_unfinished_pipeline", "fail_stage", "log_notebook",
           "open_pipeline", "record_output_dir", "reopen_pipeline", "start_pipeline", "start_stage"]


def start_pipeline(params: Mapping, uri: str | None = None, runner: str = "reclab run",
                   params_text: str | None = None) -> str:
    """Create the parent run of a pipeline and return its id.

    Parameters
    ----------
    params : dict
        The pipeline's configuration (:meth:`reclab.config.Config.load`); logged flattened, and as
        ``params.yaml`` (``params_text``, or its :meth:`~reclab.config.Config.dump`).
    uri : str, optional
        Tracking URI (see :func:`~reclab.tracking.store.tracking_uri`).
    runner : str
        Value of tag ``reclab.pipeline``: who drives the stages (``"reclab run"`` or
        ``"notebook"``).
    """
    client = open_client(uri)
    exp = experiment_id(params["experiment"], uri)
    tags = {TAG_PIPELINE: runner, **environment_tags()}
    run = client.create_run(exp, run_name=run_name(params), tags=tags)
    try:
        log_run_params(client, run.info.run_id, params.flatten())
        client.log_text(run.info.run_id, params_text or params.dump(), PARAMS_FILE)
        client.set_tag(run.info.run_id, TAG_NOTE,
                       f"Pipeline {run_name(params)} (seed {params['seed']}), started by {runner}.")
    except BaseException:   # the caller never gets the id: end the run here, not RUNNING forever
        with contextlib.suppress(Exception):
            client.set_terminated(run.info.run_id, status="FAILED")
        raise
    return run.info.run_id


def start_stage(stage: str, params_file=None, overrides: Mapping | None = None,
                parent_run_id: str | None = None, uri: str | None = None) -> StageRun:
    """Start the nested run of one stage (called at the top of each stage notebook).

    Parameters
    ----------
    stage : str
        One of :data:`STAGES`.
    params_file : str or os.PathLike, optional
        Parameter file of a new pipeline (always validated; also names the experiment). None
        (the notebooks' default) is the project's ``params/default.yaml``, whatever the current
        folder (papermill runs a notebook in the folder it was started from).
    overrides : mapping, optional
        ``{dotted key: value}`` on top (see :func:`reclab.config.notebook_overrides`).
    parent_run_id : str, optional
        The pipeline run (``reclab run`` passes it). When None the notebook was opened alone:
        ``preprocess`` starts a new pipeline; a later stage continues the latest pipeline of
        the experiment only while it is open (see :func:`open_pipeline`), else it stops with a
        message that names that pipeline and how to choose one. Given outside ``reclab run``,
        parameters other than the pipeline's are checked and recorded as ``reclab run --resume
        --set`` would (a value that a finished earlier stage used is refused).
    uri : str, optional
        Tracking URI (see :func:`~reclab.tracking.store.tracking_uri`).

    Returns
    -------
    StageRun
        Its ``params`` are those of the pipeline: ``params_file`` for a new pipeline (and under
        ``reclab run``, which passes the pipeline's own file), else the joined pipeline run's
        ``params.yaml``; ``overrides`` on top in every case.

    Notes
    -----
    Outside ``reclab run`` (whose stage kernels have :data:`reclab.stages.RUNNER_ENV`), the
    stage marks its pipeline RUNNING, and :meth:`StageRun.finish` FINISHED again; a process that
    exits before the stage finished ends them (KILLED).

    A stage run in a pipeline that already has a finished run of the same stage supersedes it:
    the earlier run gets tag ``reclab.superseded_by`` (and a note saying so), and the finished
    runs of the later stages, made from it, get tag ``reclab.outdated``. The later stages read
    the newest finished run of each stage.
    """
    if stage not in STAGES:
        raise ReclabError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
    file_given = params_file is not None
    if not file_given:
        params_file = default_params_file()
    client = open_client(uri)
    # Only a kernel of `reclab run` has a runner that ends its runs (RUNNER_ENV names its pipeline).
    interactive = not parent_run_id or os.environ.get(RUNNER_ENV) != parent_run_id
    # A refused override is named as its user gave it: reclab run's come from --set.
    given = "notebook parameters" if interactive else "--set"
    if parent_run_id and not file_given:   # given only the pipeline: that pipeline's parameters
        params = pipeline_params(client, parent_run_id, overrides, given)
    else:
        params = Config.load(params_file, overrides, given)
    exp = experiment_id(params["experiment"], uri)
    joined = "given"
    if not parent_run_id:
        if STAGES.index(stage) == 0:
            parent_run_id = start_pipeline(params, uri, runner="notebook")
            joined = "new"
        else:
            parent_run_id = open_pipeline(stage, params, overrides, uri,
                                          compare_file=file_given)
            params = pipeline_params(client, parent_run_id, overrides, given)
            joined = "continued"
    else:
        try:
            parent = client.get_run(parent_run_id)
        except mlflow.exceptions.MlflowException:
            raise ReclabError(f"no pipeline run {parent_run_id!r} at {tracking_uri(uri)}") from None
        if parent.info.experiment_id != exp:
            raise ReclabError(f"pipeline run {parent_run_id} belongs to experiment id "
                              f"{parent.info.experiment_id}, not to {params['experiment']!r} ({exp})")
        if interactive:
            _record_changes(client, stage, parent_run_id, params, uri)
    if interactive and joined != "new":
        client.update_run(parent_run_id, status="RUNNING")
    tags = {TAG_PARENT: parent_run_id, TAG_STAGE: stage, **environment_tags()}
    run = client.create_run(exp, run_name=run_name(params, f"{STAGES.index(stage) + 1}-{stage}"),
                            tags=tags)
    if interactive:
        # A stage notebook outside `reclab run` has no runner to end its runs: when its kernel
        # exits before stage.finish() (an error in a cell, then the kernel shut down), end them here.
        atexit.register(_end_if_running, client.tracking_uri, run.info.run_id, parent_run_id)
    log_run_params(client, run.info.run_id, params.flatten())
    if joined != "new":
        _supersede(client, stage, parent_run_id, run.info.run_id, uri)
    return StageRun(client, run.info.run_id, parent_run_id, exp, stage, params, interactive, joined)


def open_pipeline(stage: str, params: Mapping, overrides: Mapping | None = None,
                  uri: str | None = None, compare_file: bool = False) -> str:
    """The pipeline that stage ``stage``, opened alone, continues: its run id.

    It is the latest pipeline of experiment ``params["experiment"]`` (the last started, see
    :func:`~reclab.tracking.queries.latest_pipeline`), and only while that pipeline is open: it
    has a finished run of the stage before ``stage`` and no finished ``stage`` run yet, no
    ``reclab run`` is driving it, and its parameters agree with what the notebook was given
    (``overrides``; with ``compare_file``, also every parameter of ``params``, read from an
    explicit parameter file, but for those an earlier stage's notebook parameters set: ``-p
    n_trials 20`` given to the first two notebooks, not to the third). An older pipeline is never
    continued in its place, even one that this stage could continue: which pipeline a notebook
    joins does not depend on which stages the others happen to have finished.

    Raises
    ------
    ReclabError
        No pipeline, or the latest one is not open: the message names it, says why, and how to
        choose (``parent_run_id``, or a new pipeline from stage 1).
    """
    experiment = params["experiment"]
    earlier = STAGES[STAGES.index(stage) - 1]
    parent = latest_pipeline(experiment, uri)
    if parent is None:
        raise ReclabError(f"no finished {earlier!r} run in MLflow experiment {experiment!r} at "
                          f"{tracking_uri(uri)}: it has no pipeline yet; run the notebooks from "
                          f"01_preprocess (or `reclab run`) first")
    client = open_client(uri)
    pipeline_id = parent.info.run_id
    name = f"{parent.info.run_name!r} (run {pipeline_id})"
    how = (f"pass parent_run_id={pipeline_id!r}; for a new pipeline run the notebooks from "
           f"01_preprocess (or `reclab run`)")
    choose = f"to run {stage!r} in it anyway, {how}"
    if find_stage_run(stage, experiment, pipeline_id, uri=uri) is not None:
        raise ReclabError(f"the latest pipeline of experiment {experiment!r}, {name}, already has a "
                          f"finished {stage!r} stage, so a notebook opened alone does not join it; to "
                          f"run {stage!r} in it anyway (superseding its earlier {stage!r} run), {how}")
    if parent.info.status == "RUNNING" and parent.data.tags.get(TAG_PIPELINE) == "reclab run":
        raise ReclabError(f"the latest pipeline of experiment {experiment!r}, {name}, is being run "
                          f"by `reclab run` (or was killed: then `reclab run --resume "
                          f"{pipeline_id}`); {choose}")
    if find_stage_run(earlier, experiment, pipeline_id, uri=uri) is None:
        last = find_stage_run(earlier, experiment, pipeline_id, uri=uri, status=None)
        state = (f"its {earlier!r} stage is {last.info.status} (run {last.info.run_id})" if last
                 else f"it has no {earlier!r} stage")
        raise ReclabError(f"the latest pipeline of experiment {experiment!r}, {name}, has no finished "
                          f"{earlier!r} stage ({state}), so a notebook opened alone does not join it "
                          f"(nor an older pipeline); run the {NOTEBOOKS[earlier]} notebook first, "
                          f"or to run {stage!r} in another pipeline, pass its run id as "
                          f"parent_run_id; for a new pipeline run the notebooks from 01_preprocess "
                          f"(or `reclab run`)")
    theirs = pipeline_params(client, pipeline_id, None).flatten()
    mine = params.flatten()
    keys = {key for key in mine for given in applied_overrides(overrides or {})
            if key == given or key.startswith(given + ".")}
    if compare_file:   # but not what an earlier notebook's own parameters set (-p n_trials 20)
        settable = {NOTEBOOK_KEYS[name] for earlier in STAGES[:STAGES.index(stage)]
                    for name in STAGE_PARAMETERS[earlier]}
        keys |= {key for key in mine if key not in settable}
    differ = sorted(key for key in keys if key != "experiment" and theirs.get(key) != mine[key])
    if differ:
        shown = ", ".join(f"{key}={mine[key]!r} (pipeline: {theirs.get(key)!r})" for key in differ[:5])
        raise ReclabError(f"the latest pipeline of experiment {experiment!r}, {name}, was made with "
                          f"other parameters than this notebook's: {shown}; " + choose)
    return pipeline_id


def _record_changes(client: MlflowClient, stage: str, parent_run_id: str, params: Config,
                    uri: str | None) -> None:
    """Check and record the parameters of stage ``stage`` given its pipeline (``parent_run_id``)
    outside ``reclab run``, where they differ from the pipeline's, as ``reclab run --resume --set``
    does: a value that a finished earlier stage of the pipeline used is refused (its results
    would no longer match the pipeline's parameters); any other change is recorded in the
    pipeline (:func:`record_resume_changes`), so that its ``params.yaml`` stays what its stages
    ran with."""
    before = pipeline_params(client, parent_run_id)
    changes = differences(before.model_dump(), params.model_dump())
    if not changes:
        return
    finished = {run.data.tags[TAG_STAGE] for run in stage_runs(parent_run_id, uri)
                if run.info.status == "FINISHED"
                and not {TAG_SUPERSEDED_BY, TAG_OUTDATED} & set(run.data.tags)}
    for key, (old, new) in changes.items():
        reader = first_reader(key, (before, params))
        used = [earlier for earlier in STAGES[STAGES.index(reader):STAGES.index(stage)]
                if earlier in finished]
        if used:
            raise ReclabError(
                f"{key}={new!r}: the finished {used[0]!r} stage of pipeline run {parent_run_id} "
                f"used {key}={old!r}, and the stages of a pipeline run with its parameters; leave "
                f"{key} as the pipeline has it (None in a notebook), run the pipeline's stages again "
                f"from {reader!r} on with the new value, or start a new pipeline")
    record_resume_changes(parent_run_id, params, params.dump(), changes, uri,
                          changes_search(changes, (before, params)), how=f"Stage {stage!r} run again with")


def _supersede(client: MlflowClient, stage: str, parent_run_id: str, run_id: str,
               uri: str | None) -> None:
    """Mark the earlier finished runs of ``stage`` in the pipeline as superseded by ``run_id``,
    and the finished runs of the later stages as outdated (see :func:`start_stage`)."""
    later = STAGES[STAGES.index(stage) + 1:]
    for run in stage_runs(parent_run_id, uri):
        tags = run.data.tags
        if (run.info.run_id == run_id or run.info.status != "FINISHED"
                or TAG_SUPERSEDED_BY in tags):
            continue
        if tags[TAG_STAGE] == stage:
            client.set_tag(run.info.run_id, TAG_SUPERSEDED_BY, run_id)
            note = tags.get(TAG_NOTE, "")
            client.set_tag(run.info.run_id, TAG_NOTE,
                           f"**Superseded** by run {run_id} of the same stage.\n\n{note}")
        elif tags[TAG_STAGE] in later and TAG_OUTDATED not in tags:
            client.set_tag(run.info.run_id, TAG_OUTDATED,
                           f"made from a {stage!r} run superseded by {run_id}; run this stage again")


def end_replaced_stage(earlier: StageRun, run: StageRun) -> None:
    """Stage run ``earlier`` replaced by ``run``, which the same notebook kernel started after it
    (the notebook's first cell run again, alone or by Run all): ``earlier``, if still RUNNING, is
    ended KILLED, and so is its pipeline when no stage of it runs any more (``preprocess``
    started ``run`` in a new pipeline). Left RUNNING until the kernel exits, it kept the pipeline
    RUNNING after ``run`` finished, and that exit then marked the finished pipeline KILLED."""
    if earlier.run_id != run.run_id:
        _end_if_running(earlier.client.tracking_uri, earlier.run_id, earlier.parent_run_id,
                        f"replaced by run {run.run_id} of the same stage: the notebook's first "
                        f"cell was run again in its kernel before this run finished")


def _end_if_running(uri: str, run_id: str, parent_run_id: str, message: str = (
        "interrupted: the process running the stage exited before the stage finished")) -> None:
    """At exit of a process that ran stage run ``run_id`` outside ``reclab run`` (a notebook in
    JupyterLab or under papermill), or when its notebook started another run of the stage in its
    place (:func:`end_replaced_stage`, with its own ``message``): end what that process left
    unfinished, KILLED.

    That is its stage run, if still RUNNING (with its trial runs still RUNNING: a tune cell
    interrupted while it logged a trial), and then the pipeline run, if RUNNING with no other
    stage run of it RUNNING. A process whose stage finished leaves nothing unfinished: the
    pipeline being RUNNING then means another notebook continued it (``stage.finish()`` marked it
    FINISHED), and shutting down the finished stage's kernel must not end that notebook's
    pipeline. A process whose stage was left running ends the pipeline only if no other stage of
    it still runs (another kernel running a stage of it, or starting one again): that kernel
    finishes the pipeline, or ends it at its own exit."""
    database = sqlite_file(uri)
    if database is not None and not database.is_file():
        return   # the store is gone (a temporary one): nothing to end, and no retries to wait for
    try:
        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(run_id)
        if run.info.status != "RUNNING":
            return
        for trial in client.search_runs([run.info.experiment_id], max_results=1000,
                                        filter_string=f"tags.`{TAG_PARENT}` = '{run_id}' and "
                                                      f"attributes.status = 'RUNNING'"):
            client.set_terminated(trial.info.run_id, status="KILLED")
        client.set_tag(run_id, TAG_ERROR, message)
        client.set_terminated(run_id, status="KILLED")
        if client.get_run(parent_run_id).info.status == "RUNNING" and not stage_runs(
                parent_run_id, uri, status="RUNNING"):
            client.set_tag(parent_run_id, TAG_ERROR, message)
            client.set_terminated(parent_run_id, status="KILLED")
    except Exception:   # at exit, a store that cannot be reached cannot be helped
        pass


def log_notebook(run_id: str, path, uri: str | None = None) -> None:
    """Log an executed notebook as ``notebook/<file name>`` of ``run_id``, and rendered as
    HTML (``notebook/<stem>.html``, which MLflow's artifact viewer shows as a page)."""
    client = open_client(uri)
    client.log_artifact(run_id, str(path), NOTEBOOK_DIR)
    with tempfile.TemporaryDirectory() as folder:
        client.log_artifact(run_id, str(_notebook_html(path, folder)), NOTEBOOK_DIR)


@functools.cache
def _html_exporter():
    """nbconvert's HTML exporter, made once per process: a new one loads and compiles its
    templates again, about as long as rendering a stage's notebook (0.1 s)."""
    import nbconvert

    return nbconvert.HTMLExporter()


def _notebook_html(path, folder) -> Path:
    """The executed notebook ``path`` rendered by nbconvert (its HTML exporter, figures
    embedded) into ``folder``; returns the HTML file."""
    import nbformat

    body, _ = _html_exporter().from_notebook_node(nbformat.read(str(path), as_version=4))
    html = Path(folder) / f"{Path(path).stem}.html"
    html.write_text(body, encoding="utf-8")
    return html


def fail_stage(parent_run_id: str, stage: str, notebook, message: str,
               uri: str | None = None, status: str = "FAILED") -> str | None:
    """Mark a stage and its pipeline FAILED after a notebook raised (or KILLED, interrupted).

    The stage's RUNNING run (or, when the notebook failed before starting one, a new run for
    the record) gets the executed notebook with the error, tag ``reclab.error`` and ``status``;
    so do the pipeline run and any trial run still RUNNING under the stage run. Returns the
    stage run id.

    ``status="KILLED"`` is for an interruption (Ctrl-C, SIGTERM): when the stage then has no
    RUNNING run (its kernel had not started one yet, or had just finished it), no run is made
    for the record; only the pipeline run is marked, and None is returned.
    """
    if status not in ("FAILED", "KILLED"):
        raise ReclabError(f"status must be 'FAILED' or 'KILLED', got {status!r}")
    client = open_client(uri)
    parent = client.get_run(parent_run_id)
    runs = [run for run in stage_runs(parent_run_id, uri)
            if run.data.tags.get(TAG_STAGE) == stage and run.info.status == "RUNNING"]
    text = message if len(message) <= 4000 else message[:3990] + " [...]"
    if runs:
        run_id = runs[-1].info.run_id
    elif status == "KILLED":
        client.set_tag(parent_run_id, TAG_ERROR, text)
        client.set_terminated(parent_run_id, status=status)
        return None
    else:
        run_id = client.create_run(parent.info.experiment_id,
                                   run_name=f"{parent.info.run_name}/{STAGES.index(stage) + 1}-{stage}",
                                   tags={TAG_PARENT: parent_run_id, TAG_STAGE: stage}).info.run_id
    if notebook is not None and Path(notebook).is_file():
        client.log_artifact(run_id, str(notebook), NOTEBOOK_DIR)
    for target in (run_id, parent_run_id):
        client.set_tag(target, TAG_ERROR, text)
    what = "failed" if status == "FAILED" else "was interrupted"
    client.set_tag(run_id, TAG_NOTE, f"Stage {stage} {what}:\n\n```\n{text}\n```")
    # A kernel stopped while logging a tuning trial leaves that trial's run RUNNING.
    for trial in client.search_runs([parent.info.experiment_id], max_results=1000,
                                    filter_string=f"tags.`{TAG_PARENT}` = '{run_id}' and "
                                                  f"attributes.status = 'RUNNING'"):
        client.set_terminated(trial.info.run_id, status=status)
    client.set_terminated(run_id, status=status)
    client.set_terminated(parent_run_id, status=status)
    return run_id


def end_unfinished_pipeline(parent_run_id: str, message: str, uri: str | None = None,
                            status: str = "FAILED") -> None:
    """Mark a pipeline run still RUNNING, and its stage and trial runs still RUNNING, ``status``
    (FAILED, or KILLED when interrupted), with ``message`` as tag ``reclab.error``.

    For a runner that leaves outside a stage's own error handling (an unwritable output folder,
    a store error while logging, a signal between stages); a run already ended is left as it is.
    """
    client = open_client(uri)
    parent = client.get_run(parent_run_id)
    if parent.info.status != "RUNNING":
        return
    text = message if len(message) <= 4000 else message[:3990] + " [...]"
    pending = [parent_run_id]
    while pending:   # the pipeline run, its stage runs, their trial runs
        run_id = pending.pop()
        children = client.search_runs([parent.info.experiment_id], max_results=1000,
                                      filter_string=f"tags.`{TAG_PARENT}` = '{run_id}' and "
                                                    f"attributes.status = 'RUNNING'")
        pending.extend(child.info.run_id for child in children)
        if run_id != parent_run_id:
            client.set_terminated(run_id, status=status)
    client.set_tag(parent_run_id, TAG_ERROR, text)
    client.set_terminated(parent_run_id, status=status)


def end_pipeline(parent_run_id: str, summary: str | None = None, uri: str | None = None) -> None:
    """Mark the pipeline run FINISHED, with ``summary`` as its description."""
    client = open_client(uri)
    if summary:
        client.set_tag(parent_run_id, TAG_NOTE, summary)
    if TAG_ERROR in client.get_run(parent_run_id).data.tags:   # a resumed pipeline succeeded
        client.delete_tag(parent_run_id, TAG_ERROR)
    client.set_terminated(parent_run_id, status="FINISHED")


def reopen_pipeline(parent_run_id: str, uri: str | None = None) -> None:
    """Set a pipeline run back to RUNNING, as ``--resume`` continues it."""
    open_client(uri).update_run(parent_run_id, status="RUNNING")


def record_output_dir(parent_run_id: str, folder, uri: str | None = None) -> None:
    """Tag the pipeline run with the folder of its executed notebooks (absolute; tag
    ``reclab.output_dir``), where ``--resume`` writes by default."""
    open_client(uri).set_tag(parent_run_id, TAG_OUTPUT_DIR, str(Path(folder).resolve()))


def record_resume_changes(parent_run_id: str, params: Mapping, params_text: str,
                          changes: Mapping, uri: str | None = None,
                          new_search: bool = False, how: str = "Resumed with") -> None:
    """Record parameters corrected on ``--resume`` (or by a stage notebook given the pipeline's
    ``parent_run_id``): ``params.yaml`` of the pipeline run replaced by ``params_text``, tag
    ``reclab.resumed_with`` (``key: old -> new``, one line per key and resume, added to any
    earlier ones), a line of the run's note (``how``, then the changes), and the run name made
    from the new ``params``. With
    ``new_search`` (the changes make another search), the unfinished tune runs get tag
    ``reclab.checkpoint_outdated``: the tune stage then starts its search anew rather than
    continuing theirs.

    The pipeline run's MLflow params keep the values it started with (MLflow never changes a
    logged param); the stage runs started after the resume log the corrected ones.
    """
    client = open_client(uri)
    run = client.get_run(parent_run_id)
    lines = [f"{key}: {old!r} -> {new!r}" for key, (old, new) in changes.items()]
    earlier = run.data.tags.get(TAG_RESUMED_WITH)
    client.set_tag(parent_run_id, TAG_RESUMED_WITH, "\n".join([earlier, *lines] if earlier
                                                                    else lines))
    client.log_text(parent_run_id, params_text, PARAMS_FILE)
    client.set_tag(parent_run_id, TAG_NOTE, run.data.tags.get(TAG_NOTE, "") + f"\n\n{how} "
                   + "; ".join(lines) + " (MLflow params keep the first values; params.yaml "
                   "and the later stage runs hold these).")
    if run_name(params) != run.info.run_name:
        client.update_run(parent_run_id, name=run_name(params))
    for stage in stage_runs(parent_run_id, uri) if new_search else ():
        if stage.data.tags[TAG_STAGE] == "tune" and stage.info.status != "FINISHED":
            client.set_tag(stage.info.run_id, TAG_CHECKPOINT_OUTDATED, "; ".join(lines))
