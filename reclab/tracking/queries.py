"""Reading runs back: the stage runs of a pipeline, what ``reclab run`` prints and ``--resume``
needs, the tables of ``reclab compare``, and addresses in the MLflow UI."""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from typing import Mapping

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import ViewType

from reclab.config import Config
from reclab.errors import ReclabError
from reclab.stages import STAGES
from reclab.tracking.layout import (BEST_PARAMS_FILE, PARAMS_FILE, PER_USER_TABLE, TAG_K, TAG_NOTE,
                                    TAG_OUTDATED, TAG_OUTPUT_DIR, TAG_PARENT, TAG_PIPELINE,
                                    TAG_RELEVANCE_THRESHOLD, TAG_RESUMED_WITH, TAG_STAGE,
                                    TAG_SUPERSEDED_BY, TAG_TEST_FINGERPRINT,
                                    TAG_SAVED_VIEW_PREFIX, METRICS_VIEW)
from reclab.tracking.store import download, open_client, param_text, tracking_uri

__all__ = ["UI_ADDRESS", "experiments_with_runs", "find_stage_run", "full_run_id", "latest_pipeline",
           "load_report", "pipeline_params", "pipeline_state", "pipeline_summary", "run_table", "stage_runs", "ui_path"]

# Where `reclab ui` serves a local store by default (its --host and --port).
UI_ADDRESS = "http://127.0.0.1:5000"


def stage_runs(parent_run_id: str, uri: str | None = None, status: str | None = None) -> list:
    """Stage runs of a pipeline (every attempt), oldest first; with ``status`` (``"RUNNING"``,
    ...), only those."""
    client = open_client(uri)
    parent = client.get_run(parent_run_id)
    condition = f"tags.`{TAG_PARENT}` = '{parent_run_id}'"
    if status is not None:
        condition += f" and attributes.status = '{status}'"
    runs = client.search_runs([parent.info.experiment_id], filter_string=condition,
                              order_by=["attributes.start_time ASC"], max_results=1000)
    return [run for run in runs if TAG_STAGE in run.data.tags]


def find_stage_run(stage: str, experiment: str, parent_run_id: str | None = None,
                   uri: str | None = None, status: str | None = "FINISHED"):
    """The latest run of ``stage`` (with ``status``; None for any) in experiment ``experiment``,
    within pipeline ``parent_run_id`` when given; None when there is none."""
    if stage not in STAGES:
        raise ReclabError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
    client = open_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    conditions = [f"tags.`{TAG_STAGE}` = '{stage}'"]
    if parent_run_id:
        conditions.append(f"tags.`{TAG_PARENT}` = '{parent_run_id}'")
    if status:
        conditions.append(f"attributes.status = '{status}'")
    runs = client.search_runs([found.experiment_id], filter_string=" and ".join(conditions),
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def latest_pipeline(experiment: str, uri: str | None = None):
    """The latest pipeline run (tag ``reclab.pipeline``; the last started, whatever its status)
    of experiment ``experiment``; None when it has none."""
    client = open_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`{TAG_PIPELINE}` LIKE '%'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def pipeline_state(parent_run_id: str, uri: str | None = None) -> dict:
    """What ``--resume`` needs of a pipeline run: ``{"params_text": str, "finished": [stage,
    ...], "begun": [stage, ...], "output_dir": str or None}``: its ``params.yaml`` text, the
    stages that have a finished run that is neither outdated (made from an earlier stage's run that a later run of that stage
    superseded) nor itself superseded (a later run of its stage started, and failed or was
    interrupted: that stage is unfinished, and ``--resume`` runs it again, continuing an
    interrupted search), and the stages that have a run of any status (stage 6, run with
    ``--stages 6`` where the parameters leave it off, is then resumed as the others are), and the
    folder of its executed notebooks (tag ``reclab.output_dir``; None for a pipeline of notebooks
    run alone)."""
    client = open_client(uri)
    try:
        parent = client.get_run(parent_run_id)
    except mlflow.exceptions.MlflowException:
        raise ReclabError(f"no MLflow run {parent_run_id!r} at {tracking_uri(uri)}") from None
    if TAG_PIPELINE not in parent.data.tags:
        raise ReclabError(f"run {parent_run_id} is not a reclab pipeline run (no reclab.pipeline "
                          f"tag); pass the id of the parent run")
    with tempfile.TemporaryDirectory() as folder:
        text = download(client, parent_run_id, PARAMS_FILE, folder).read_text(encoding="utf-8")
    runs = stage_runs(parent_run_id, uri)
    finished = sorted({run.data.tags[TAG_STAGE] for run in runs if run.info.status == "FINISHED"
                       and not {TAG_OUTDATED, TAG_SUPERSEDED_BY} & set(run.data.tags)},
                      key=STAGES.index)
    begun = sorted({run.data.tags[TAG_STAGE] for run in runs}, key=STAGES.index)
    return {"params_text": text, "finished": finished, "begun": begun,
            "output_dir": parent.data.tags.get(TAG_OUTPUT_DIR)}


def pipeline_summary(parent_run_id: str, uri: str | None = None) -> dict:
    """What ``reclab run`` prints at the end, read back from MLflow.

    Returns
    -------
    dict
        ``run_id``, ``run_name``, ``experiment_id``, ``status``, ``stages`` (list of
        ``(stage, run_id, status, seconds)``), ``best`` (tune's best_params.json or None),
        ``metrics`` (evaluate run's metrics, a dict), ``online`` (the description of the online
        stage's run, its A/B result; None without one), ``outdated`` (the stages whose latest run
        is outdated, made from a run an earlier stage run again since superseded), ``tracking_uri``.
    """
    client = open_client(uri)
    parent = client.get_run(parent_run_id)
    latest = {}
    for run in stage_runs(parent_run_id, uri):
        latest[run.data.tags[TAG_STAGE]] = run
    stages = []
    for stage in STAGES:
        run = latest.get(stage)
        if run is not None:
            seconds = ((run.info.end_time or run.info.start_time) - run.info.start_time) / 1000.0
            stages.append((stage, run.info.run_id, run.info.status, seconds))
    best = None
    if "tune" in latest and latest["tune"].info.status == "FINISHED":
        with tempfile.TemporaryDirectory() as folder, contextlib.suppress(Exception):
            best = json.loads(download(client, latest["tune"].info.run_id, BEST_PARAMS_FILE,
                                        folder).read_text(encoding="utf-8"))
    metrics = dict(latest["evaluate"].data.metrics) if "evaluate" in latest else {}
    online = latest["online"].data.tags.get(TAG_NOTE) if "online" in latest else None
    return {"run_id": parent_run_id, "run_name": parent.info.run_name,
            "experiment_id": parent.info.experiment_id, "status": parent.info.status,
            "stages": stages, "best": best, "metrics": metrics, "online": online,
            "outdated": [stage for stage, run in latest.items() if TAG_OUTDATED in run.data.tags],
            "tracking_uri": tracking_uri(uri)}


def _evaluate_run(client: MlflowClient, run_id: str, uri: str | None):
    """``run_id`` itself if it is an evaluate run, else its pipeline's latest finished evaluate
    run, else None."""
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ReclabError(f"no MLflow run {run_id!r} at {tracking_uri(uri)}") from None
    if run.data.tags.get(TAG_STAGE) == "evaluate":
        return run
    if TAG_PIPELINE in run.data.tags:
        return find_stage_run("evaluate", client.get_experiment(run.info.experiment_id).name,
                              run_id, uri=uri)
    return None


def load_report(run_id: str, uri: str | None = None):
    """The model's :class:`~reclab.evaluation.EvaluationReport` logged by an evaluate run (or by
    the evaluate stage of pipeline run ``run_id``), rebuilt from its per-user table, so that
    :func:`reclab.evaluation.compare` can pair two runs. Intervals are not restored and
    ``curve()`` is not available. None when the run has no evaluation."""
    from reclab.evaluation import EvaluationReport

    client = open_client(uri)
    run = _evaluate_run(client, run_id, uri)
    if run is None or TAG_TEST_FINGERPRINT not in run.data.tags:
        return None
    with tempfile.TemporaryDirectory() as folder:
        per_user = pd.read_csv(download(client, run.info.run_id, PER_USER_TABLE, folder))
    metrics, tags = run.data.metrics, run.data.tags
    threshold = tags[TAG_RELEVANCE_THRESHOLD]
    summary = {name: float(per_user[name].mean()) for name in per_user.columns if "@" in name}
    return EvaluationReport(
        summary=summary, per_user=per_user, n_evaluated=int(metrics.get("n_evaluated", len(per_user))),
        n_skipped=int(metrics.get("n_skipped", 0)), k=tuple(json.loads(tags[TAG_K])),
        intervals={}, relevance_threshold=None if threshold == "None" else float(threshold),
        n_bootstrap=0, seed=0, test_fingerprint=tags[TAG_TEST_FINGERPRINT])


def pipeline_params(client: MlflowClient, parent_run_id: str, overrides: Mapping | None = None,
                    given: str = "--set"):
    """The parameters of a pipeline run (its ``params.yaml``, a :class:`reclab.config.Config`), with
    ``overrides`` on top: the values it ran with, corrections on ``--resume`` included. ``given``
    names the overrides in error messages (see :meth:`reclab.config.Config.load`)."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            text = download(client, parent_run_id, PARAMS_FILE, folder).read_text(encoding="utf-8")
        except (mlflow.exceptions.MlflowException, OSError):
            raise ReclabError(f"run {parent_run_id} has no params.yaml artifact; is it a reclab "
                              f"pipeline run?") from None
    return Config.loads(text, f"params.yaml of pipeline run {parent_run_id}", overrides, given)


def full_run_id(run_id: str, uri: str | None = None) -> str:
    """``run_id``, or the id of the one run whose id starts with it: the 8 characters that
    ``reclab compare`` and the MLflow UI show will do, as a short commit hash does in git.

    Case does not matter (MLflow's ids are lower-case hex). An id that starts no run's id is
    returned as it is, for the caller's "no MLflow run" error; one that starts several is
    refused, naming them, and so is a prefix shorter than 4 characters.
    """
    if re.fullmatch(r"[0-9a-fA-F]{1,32}", run_id):
        run_id = run_id.lower()
    if re.fullmatch(r"[0-9a-f]{1,3}", run_id):
        raise ReclabError(f"run id {run_id!r} is too short: give at least its first 4 characters "
                          f"(reclab compare shows 8)")
    if not re.fullmatch(r"[0-9a-f]{4,31}", run_id):
        return run_id
    client = open_client(uri)
    experiments = [experiment.experiment_id
                   for experiment in client.search_experiments(view_type=ViewType.ALL)]
    found = client.search_runs(experiments, f"attributes.run_id LIKE '{run_id}%'",
                               run_view_type=ViewType.ALL, max_results=10) if experiments else []
    if len(found) > 1:
        names = ", ".join(f"{run.info.run_id} ({run.info.run_name})" for run in found[:3])
        raise ReclabError(f"run id {run_id!r} starts the ids of {len(found)} runs ({names}); "
                          f"give more of it")
    return found[0].info.run_id if found else run_id


def run_table(run_ids, uri: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parameters and metrics of runs side by side (for ``reclab compare``).

    A pipeline run is shown with its own parameters (those it ran with: a value corrected on
    ``--resume``, which its MLflow params cannot show, from its ``params.yaml``; the ``best.*``
    of its latest finished tune run, which its own params keep from the first) and the metrics
    of its ``evaluate`` stage.

    Returns
    -------
    (params, metrics) : two DataFrames
        Indexed by parameter / metric name, one column per run (its run name and short id).
    """
    client = open_client(uri)
    params, metrics, columns = {}, {}, []
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            raise ReclabError(f"no MLflow run {run_id!r} at {tracking_uri(uri)}") from None
        values = dict(run.data.metrics)
        column = f"{run.info.run_name} ({run_id[:8]})"
        columns.append(column)
        params[column] = dict(run.data.params)
        if TAG_PIPELINE in run.data.tags:
            experiment = client.get_experiment(run.info.experiment_id).name
            evaluate = find_stage_run("evaluate", experiment, run_id, uri=uri)
            if evaluate is not None:   # not the pipeline run's copy: it keeps the keys of every
                values = dict(evaluate.data.metrics)   # evaluate run, an earlier one's other K too
            used = pipeline_params(client, run_id)
            if TAG_RESUMED_WITH in run.data.tags:   # MLflow keeps a param's first value;
                # params.yaml the one used
                params[column].update({key: param_text(value) for key, value in used.flatten().items()
                                       if key in params[column]})
            # Every model's entry, not only the active model's that MLflow's params hold: the
            # other tuned models' spaces and the baselines' parameters differ between runs too.
            params[column].update({key: param_text(value)
                                   for key, value in used.model_entries().items()})
            tune = find_stage_run("tune", experiment, run_id, uri=uri)
            if tune is not None:   # what the later stages read, not the first tune run's values
                params[column] = {key: value for key, value in params[column].items()
                                  if not key.startswith("best.")}
                params[column].update({key: value for key, value in tune.data.params.items()
                                       if key.startswith("best.")})
        metrics[column] = values
    return (pd.DataFrame(params).reindex(columns=columns).sort_index(),
            pd.DataFrame(metrics).reindex(columns=columns).sort_index())


def ui_path(experiment_id: str, run_id: str | None = None, view: str | None = None) -> str:
    """Where an experiment's runs table (or one run's page) is in the MLflow UI: the part of
    the address after ``http://host:port``.

    MLflow 3's UI opens an experiment on its GenAI overview (traces, token costs) unless the
    address says ``workflowType=machine_learning``: a new browser starts its "GenAI / Model
    training" switch at GenAI. reclab's runs are in the runs table of "Model training".
    ``view`` is the id of a saved view of the runs table (see :func:`save_metrics_view`), which
    the address then opens.
    """
    path = f"/#/experiments/{experiment_id}/runs" + (f"/{run_id}" if run_id else "")
    return path + "?workflowType=machine_learning" + (f"&viewStateShareKey={view}" if view else "")


def experiments_with_runs(uri: str | None = None, limit: int = 10) -> list[tuple[str, str]]:
    """``(experiment id, name)`` of the active experiments that hold runs, the most recently
    created first, at most ``limit`` of them (``reclab ui`` prints their addresses).

    Opening a new local SQLite store here creates its schema (see
    :func:`reclab.tracking.store.prepare_sqlite_store`), so call this before starting a server on it.
    """
    client = open_client(uri)
    found = []
    for experiment in client.search_experiments(order_by=["creation_time DESC"], max_results=200):
        if client.search_runs([experiment.experiment_id], max_results=1):
            found.append((experiment.experiment_id, experiment.name))
            if len(found) >= limit:
                break
    return found


_VIEW_METRICS = ("precision", "recall", "ndcg", "map")


def save_metrics_view(experiment_id: str, uri: str | None = None) -> str | None:
    """Save (or refresh) the experiment's saved view ``reclab: test metrics`` in the MLflow UI
    and return its id (:data:`METRICS_VIEW`; None when no pipeline run has test metrics).

    The view is the runs table of the pipeline runs only (one row per pipeline; the stage and
    trial runs are on each pipeline's page), with the columns model, dataset, seed and the test
    metrics at K = 10 (the largest K when 10 is not among them): precision, recall, nDCG and
    MAP, and RMSE where logged; sorted by precision@K, best first (RMSE, lowest first, when
    there is no ranking metric). The UI lists it under the experiment's saved views;
    :func:`ui_path` with ``view=`` opens it.
    """
    client = open_client(uri)
    keys = set()
    for run in client.search_runs([experiment_id], max_results=200,
                                  order_by=["attributes.start_time DESC"]):
        if TAG_PIPELINE in run.data.tags:
            keys.update(run.data.metrics)
    cutoffs = {int(key.rsplit("_at_", 1)[1]) for key in keys
               if key.startswith("precision_at_") and key.rsplit("_at_", 1)[1].isdigit()}
    if not cutoffs and "rmse" not in keys:
        return None
    cutoff = 10 if 10 in cutoffs else max(cutoffs, default=None)
    metrics = [f"{name}_at_{cutoff}" for name in _VIEW_METRICS if f"{name}_at_{cutoff}" in keys]
    metrics += [name for name in ("rmse",) if name in keys]
    columns = ["params.`model`", "params.`best.model`", "params.`dataset`", "params.`seed`",
               *(f"metrics.`{name}`" for name in metrics)]
    state = {"selectedColumns": columns, "orderByKey": f"metrics.`{metrics[0]}`",
             "orderByAsc": metrics[0] == "rmse",
             "searchFilter": "tags.`reclab.pipeline` IS NOT NULL"}   # pipeline runs only
    key = TAG_SAVED_VIEW_PREFIX + METRICS_VIEW
    now = int(time.time() * 1000)
    earlier = client.get_experiment(experiment_id).tags.get(key)
    created = now
    with contextlib.suppress(ValueError, TypeError, KeyError):
        created = int(json.loads(earlier)["createdAt"])
    client.set_experiment_tag(experiment_id, key, json.dumps(
        {"name": "reclab: test metrics", "createdAt": created, "updatedAt": now,
         "state": json.dumps(state)}))
    return METRICS_VIEW
