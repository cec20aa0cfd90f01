"""The pipeline's artifacts: what one stage writes for the later ones, and how they read it back.

Each stage notebook logs and reads through these functions, with its
:class:`~reclab.tracking.stage_run.StageRun` as first argument (``stage``); the names of every
artifact and tag are in :mod:`reclab.tracking.layout`.

- preprocess: :func:`log_split` writes ``split/<part>.npz``, which :func:`load_split` reads back in
  every later stage;
- tune: :func:`log_best` writes ``best_params.json`` (:func:`load_best`: train, evaluate, online),
  :func:`trial_logger` a run per trial, :func:`tuning_checkpoint` ``tuning/checkpoint.jsonl`` (read
  back to continue an interrupted search, and by :func:`load_trials`: online);
- train: :func:`log_model` writes ``reclab_model/model.npz`` and the pyfunc model ``model``
  (:func:`load_model`, :func:`model_uri`: postprocess, evaluate, online), :func:`fit_logger` the
  training curve;
- evaluate: :func:`log_report` writes the test metrics and the per-user table
  (:func:`reclab.tracking.load_report`: ``reclab compare``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from mlflow.entities import LoggedModelOutput

from reclab._io import atomic_write
from reclab.data import Interactions, load_interactions, save_interactions
from reclab.errors import ReclabError
from reclab.tracking.layout import (BEST_PARAMS_FILE, CHECKPOINT_DIR, TAG_CHECKPOINT_OUTDATED, CHECKPOINT_FILE, MODEL_DIR,
                                    MODEL_FILE, PYFUNC_DIR, SPLIT_DIR, SPLIT_PARTS,
                                    TAG_BOUNDARY_WARNING, TAG_DATA_FINGERPRINT, TAG_ERROR, TAG_K,
                                    TAG_MODEL, TAG_MODEL_ID, TAG_PACKAGE_VERSION_PREFIX, TAG_PARENT,
                                    TAG_PIPELINE_RUN, TAG_RELEVANCE_THRESHOLD, TAG_RESTORED_FROM,
                                    TAG_RESTORED_TRIALS, TAG_RESUMED_FROM, TAG_SPLIT_FINGERPRINT,
                                    TAG_STAGE, TAG_TEST_FINGERPRINT, TAG_TRIAL,
                                    TAG_TUNING_SPLIT_FINGERPRINT, TAG_VERSION)
from reclab.tracking.pyfunc import save_pyfunc_model
from reclab.tracking.queries import find_stage_run, stage_runs
from reclab.tracking.stage_run import StageRun
from reclab.tracking.store import download, log_run_params

__all__ = ["FitLogger", "TuningCheckpoint", "fit_logger", "load_best", "load_model", "load_split",
           "load_trials", "log_best", "log_model", "log_report", "log_split", "model_uri",
           "trial_logger", "tuning_checkpoint"]


def log_split(stage: StageRun, data: Interactions, train: Interactions, valid: Interactions,
              test: Interactions) -> dict:
    """Log the split: ``split/{train,valid,test}.npz`` (read by the later stages), the
    three parts as MLflow dataset inputs, and the fingerprints as tags of the stage's run and the
    pipeline run.

    Returns
    -------
    dict
        ``reclab.data_fingerprint`` (of ``data``), ``reclab.split_fingerprint`` (train +
        valid against test: identifies the test split) and ``reclab.tuning_split_fingerprint``
        (train against valid).
    """
    from reclab import split

    stage.check_open()
    with tempfile.TemporaryDirectory() as folder:
        for part, values in zip(SPLIT_PARTS, (train, valid, test)):
            save_interactions(Path(folder) / f"{part}.npz", values)
        stage.client.log_artifacts(stage.run_id, folder, SPLIT_DIR)
    name = stage.params.dataset_name
    for values, part, context in ((train, "train", "training"), (valid, "valid", "validation"),
                                  (test, "test", "testing")):
        stage.log_dataset(values, f"{name}/{part}", context)
    tags = {TAG_DATA_FINGERPRINT: data.fingerprint(),
            TAG_SPLIT_FINGERPRINT: split.fingerprint(train.union(valid), test),
            TAG_TUNING_SPLIT_FINGERPRINT: split.fingerprint(train, valid)}
    stage.set_tags(tags)
    stage.set_tags(tags, run_id=stage.parent_run_id)
    return tags


def log_best(stage: StageRun, best_params: Mapping, best_score: float, metric: str, model_name: str,
             warnings=(), note: str = "") -> None:
    """Log the tuning result: ``best_params.json``, params ``best.model`` (the model chosen:
    one of several when tuning searched several) and ``best.<name>``, metric ``best_<metric>``.
    ``note`` (:attr:`reclab.tuning.Choice.note`: why these are not the best trial's parameters,
    or that every trial tied) goes into ``best_params.json`` too.

    ``warnings`` (:func:`reclab.tuning.boundary_warnings`, :func:`reclab.tuning.failure_warnings`
    and the tune notebook's when the time budget stopped the search) go into ``best_params.json`` and,
    joined, into tag ``reclab.boundary_warning`` of the stage's run and of the pipeline run, so that
    ``reclab run``'s summary and the MLflow UI show them; a tune stage run again without
    warnings removes the pipeline run's tag, which was the superseded run's.

    The params ``best.*`` also go to the pipeline run, so that pipelines compare on
    the values tuning chose (MLflow UI, ``reclab compare``), not only on their search
    spaces. MLflow params cannot change: a tune stage run again in the same pipeline (after
    ``--resume --set`` changed its search, or its seed) leaves the pipeline run's params as the
    first one logged them, adding only names it did not log; ``reclab compare``
    (:func:`reclab.tracking.run_table`) shows the latest finished tune run's ``best.*`` instead.
    """
    record = {"model": model_name, "params": dict(best_params), "metric": metric,
              "score": float(best_score), "warnings": list(warnings), "note": note}
    stage.log_dict(record, BEST_PARAMS_FILE)
    pipeline = stage.client.get_run(stage.parent_run_id).data
    if warnings:
        tag = {TAG_BOUNDARY_WARNING: " ".join(warnings)[:4000]}
        stage.set_tags(tag)
        stage.set_tags(tag, run_id=stage.parent_run_id)
    elif TAG_BOUNDARY_WARNING in pipeline.tags:   # an earlier tune run's, which this one replaces
        stage.client.delete_tag(stage.parent_run_id, TAG_BOUNDARY_WARNING)
    chosen = {"model": model_name, **best_params}
    stage.log_params(chosen, prefix="best.")
    stage.log_metrics({f"best_{metric}": best_score})
    logged = pipeline.params
    log_run_params(stage.client, stage.parent_run_id,
                   {f"best.{name}": value for name, value in chosen.items()
                    if f"best.{name}" not in logged})


def trial_logger(stage: StageRun, metric: str, restored_from: str | None = None):
    """A callback for :func:`reclab.tuning.tune`: one run per finished trial, nested under
    the stage's (tune) run, with the trial's parameters, score and validation metrics.

    Parameters
    ----------
    metric : str
        Name of the tuned metric (``"ndcg@10"``); the trial's score is logged under it.
    restored_from : str, optional
        For trials read back from a checkpoint: the tune run that ran them, set as tag
        ``reclab.restored_from`` of their runs.

    Returns
    -------
    callable
        ``callback(trial)`` for a :class:`reclab.tuning.Trial`. A failed trial's run is
        FAILED, with its error in tag ``reclab.error``. The run names its model (param
        ``model``, tag ``reclab.model``) and, with several folds, logs the score on each
        (``<metric>_fold_0``, ...) and their standard deviation (``<metric>_std``).
    """
    stage.check_open()
    stage_run = stage.client.get_run(stage.run_id)
    tags = {TAG_PARENT: stage.run_id,
            **{key: value for key, value in stage_run.data.tags.items()
               if key.startswith((TAG_PACKAGE_VERSION_PREFIX, TAG_VERSION))}}

    def log_trial(trial) -> None:
        run = stage.client.create_run(
            stage.experiment_id, run_name=f"{stage_run.info.run_name}/trial-{trial.number:03d}",
            tags={**tags, TAG_TRIAL: str(trial.number),
                  **({TAG_MODEL: trial.model} if trial.model else {}),
                  **({TAG_RESTORED_FROM: restored_from} if restored_from else {})})
        log_run_params(stage.client, run.info.run_id,
                       {**({"model": trial.model} if trial.model else {}), **trial.params})
        values = {**trial.metrics, metric: trial.score, "seconds": trial.seconds}
        if len(trial.fold_scores) > 1:   # the per-fold scores and their spread
            values.update({f"{metric}_fold_{fold}": score
                           for fold, score in enumerate(trial.fold_scores)})
            values[f"{metric}_std"] = trial.score_std
        stage.log_metrics(values, run_id=run.info.run_id)
        stage.log_metrics({metric: trial.score}, step=trial.number)
        if trial.error:
            stage.client.set_tag(run.info.run_id, TAG_ERROR, trial.error[:4000])
        stage.client.set_terminated(run.info.run_id,
                                    status="FINISHED" if trial.ok else "FAILED")
    return log_trial


def tuning_checkpoint(stage: StageRun) -> TuningCheckpoint:
    """The checkpoint file of the tune stage's search, continuing an interrupted one.

    The file (see ``checkpoint`` of :func:`reclab.tuning.tune`) lives in a temporary folder
    of this process, removed when the ``with`` block ends, and is logged as artifact
    ``tuning/checkpoint.jsonl`` of the stage's run after every trial (:meth:`TuningCheckpoint.save`
    is the ``tune`` callback that does it), so that it outlives a kernel that fails or is
    killed. When the stage's own run has that artifact already (the tune cell run again in its
    kernel, after an interrupt or twice), its search goes on: nothing is logged twice. Else, when
    the stage's pipeline has an unfinished (FAILED, KILLED or still RUNNING) tune
    run with such an artifact (and no tag ``reclab.checkpoint_outdated``: a resume with corrected
    values changed its search), the latest one is downloaded first: ``tune`` then reads its finished trials back and runs only the rest.
    The restored trials are logged again as runs nested under the stage's run (tag
    ``reclab.restored_from``), so that the stage's run holds the whole search; tag
    ``reclab.resumed_from`` of the stage's run names the run they come from.

    Examples
    --------
    >>> with tracking.tuning_checkpoint(stage) as checkpoint:              # doctest: +SKIP
    ...     result = tune(model, space, train, valid, checkpoint=checkpoint.path,
    ...                   callbacks=[tracking.trial_logger(stage, "precision@10"), checkpoint.save])
    """
    from reclab.tuning import Trial

    checkpoint = TuningCheckpoint(stage, Path(tempfile.mkdtemp(prefix="reclab-tune-")))

    def restore(run_id: str) -> list | None:
        """The finished trials of ``run_id``'s checkpoint artifact, copied to ``checkpoint.path``
        (None when it has none)."""
        listed = {item.path for item in stage.client.list_artifacts(run_id, CHECKPOINT_DIR)}
        if CHECKPOINT_FILE not in listed:
            return None
        with tempfile.TemporaryDirectory() as scratch:
            content = download(stage.client, run_id, CHECKPOINT_FILE, scratch).read_bytes()
        # A line cut short by a killed upload is not a trial (tune drops it too).
        lines = content[:content.rfind(b"\n") + 1].decode("utf-8").splitlines()
        with atomic_write(checkpoint.path, "wb") as handle:
            handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
        checkpoint.resumed_from = run_id
        return [Trial.from_record(json.loads(line)) for line in lines[1:]]

    # The tune cell run again in its kernel (after Ctrl-C, or twice): this run's own search goes
    # on, its trials already logged under it.
    own = restore(stage.run_id)
    if own is not None:
        checkpoint.n_restored = len(own)
        return checkpoint
    earlier = [run for run in reversed(stage_runs(stage.parent_run_id, stage.client.tracking_uri))
               if run.data.tags.get(TAG_STAGE) == "tune" and run.info.run_id != stage.run_id
               and run.info.status != "FINISHED" and TAG_CHECKPOINT_OUTDATED not in run.data.tags]
    for run in earlier:
        trials = restore(run.info.run_id)
        if trials is None:
            continue
        log = trial_logger(stage, stage.params["tune"]["metric"], restored_from=run.info.run_id)
        for trial in trials:
            log(trial)
        stage.set_tags({TAG_RESUMED_FROM: run.info.run_id,
                        TAG_RESTORED_TRIALS: len(trials)})
        checkpoint.n_restored = len(trials)
        checkpoint.save()
        break
    return checkpoint


def fit_logger(stage: StageRun) -> FitLogger:
    """A ``callback(iteration, seconds, loss)`` for ``model.fit`` that logs the training curve
    (metrics ``train_loss`` and ``iteration_seconds`` by iteration) and keeps it
    (:meth:`FitLogger.frame`)."""
    return FitLogger(stage)


def log_report(stage: StageRun, report, model_name: str | None = None) -> None:
    """Log an :class:`~reclab.evaluation.EvaluationReport`.

    The tuned model's report (``model_name`` None) gives metrics ``precision_at_10``,
    ``precision_at_10_ci_low``, ... on the stage's run and on the pipeline run (so that pipelines
    compare in the MLflow UI); a baseline's report gives ``<model_name>/precision_at_10``, ...
    on the stage's run only. The summary (with intervals) and the per-user table are logged as
    ``tables/summary[_<name>].csv`` and ``tables/per_user[_<name>].csv``.
    """
    values = report.mlflow_metrics()
    suffix = "" if model_name is None else f"_{model_name}"
    if model_name is None:
        stage.log_metrics(values, model_id=_logged_model_id(stage))
        stage.log_metrics(values, run_id=stage.parent_run_id)
        # What reclab compare needs to pair two runs' per-user values (load_report).
        stage.set_tags({TAG_TEST_FINGERPRINT: report.test_fingerprint,
                        TAG_RELEVANCE_THRESHOLD: str(report.relevance_threshold),
                        TAG_K: json.dumps(list(report.k))})
    else:
        stage.log_metrics({f"{model_name}/{key}": value for key, value in values.items()})
    stage.log_table(report.to_frame(), f"summary{suffix}")
    stage.log_table(report.per_user, f"per_user{suffix}")


def log_model(stage: StageRun, model, data: Interactions, n_example_users: int = 3) -> str:
    """Log the fitted model: the reclab file at ``reclab_model/model.npz`` and an MLflow
    pyfunc model at ``model`` (see :class:`~reclab.tracking.pyfunc.RecommenderPyfunc`).

    Parameters
    ----------
    model : fitted reclab model
    data : Interactions
        What the model was fitted on: gives the original user / item ids and titles (data of
        another shape is refused).
    n_example_users : int
        Users of the input example (the first ones by index).

    Returns
    -------
    str
        ``runs:/<run id>/model``, the URI that ``mlflow.pyfunc.load_model`` takes.
    """
    stage.check_open()
    with tempfile.TemporaryDirectory() as folder:
        model_file = model.save(Path(folder) / Path(MODEL_FILE).name)
        stage.client.log_artifact(stage.run_id, str(model_file), MODEL_DIR)
        local = save_pyfunc_model(Path(folder) / PYFUNC_DIR, model, model_file, data, n_example_users)
        stage.client.log_artifacts(stage.run_id, str(local), PYFUNC_DIR)
        _log_logged_model(stage, model, local)
    return f"runs:/{stage.run_id}/{PYFUNC_DIR}"


def _log_logged_model(stage: StageRun, model, local: Path) -> str:
    """The saved pyfunc model in ``local`` as an MLflow logged model named after the model
    class, made by the stage's run (the runs table's Models column links to it); its id is tag
    ``reclab.model_id`` of the stage's run, and the evaluate stage logs the test metrics to it.

    Not named ``model`` like the run's artifact folder: MLflow 3 would then resolve
    ``runs:/<id>/model`` through the logged model, with the default tracking URI rather
    than the run's store. A model the run logged before (the notebook's cell run again) is
    deleted: the run's artifacts now hold this one.
    """
    earlier = stage.client.get_run(stage.run_id).data.tags.get(TAG_MODEL_ID)
    params = {name: str(value) for name, value in model.get_params().items()}
    logged = stage.client.create_logged_model(
        stage.experiment_id, name=type(model).__name__, source_run_id=stage.run_id, params=params,
        model_type=type(model).__name__, tags={TAG_PIPELINE_RUN: stage.parent_run_id})
    stage.client.log_model_artifacts(logged.model_id, str(local))
    stage.client.finalize_logged_model(logged.model_id, "READY")
    stage.client.log_outputs(stage.run_id, [LoggedModelOutput(logged.model_id, 0)])
    stage.set_tags({TAG_MODEL_ID: logged.model_id})
    if earlier is not None:
        stage.client.delete_logged_model(earlier)
    return logged.model_id


def _logged_model_id(stage: StageRun) -> str | None:
    """Id of the logged model of the pipeline's train stage (None: no such stage or an
    older run without one)."""
    train = find_stage_run("train", stage.params["experiment"], stage.parent_run_id,
                           uri=stage.client.tracking_uri)
    return None if train is None else train.data.tags.get(TAG_MODEL_ID)


def load_split(stage: StageRun) -> tuple[Interactions, Interactions, Interactions]:
    """(train, valid, test) logged by the pipeline's ``preprocess`` stage."""
    with tempfile.TemporaryDirectory() as folder:
        local = stage.download("preprocess", SPLIT_DIR, folder)
        return tuple(load_interactions(local / f"{part}.npz") for part in SPLIT_PARTS)


def load_best(stage: StageRun) -> dict:
    """``{"model", "params", "metric", "score", "warnings", "note"}`` logged by the ``tune`` stage.

    The model must be one that these parameters tune (``model``, or one of ``tune.models``).
    """
    with tempfile.TemporaryDirectory() as folder:
        local = stage.download("tune", BEST_PARAMS_FILE, folder)
        best = json.loads(local.read_text(encoding="utf-8"))
    if best["model"] not in stage.params.tuned_models():
        raise ReclabError(f"the tune stage of pipeline {stage.parent_run_id} tuned "
                          f"{best['model']!r} but model is {stage.params['model']!r}; start a "
                          f"new pipeline to work with {stage.params['model']!r}")
    return best


def load_trials(stage: StageRun) -> list:
    """The trials of the pipeline's ``tune`` stage (:class:`reclab.tuning.Trial`, with typed
    parameters), read from its checkpoint artifact ``tuning/checkpoint.jsonl``."""
    from reclab.tuning import Trial

    with tempfile.TemporaryDirectory() as folder:
        text = stage.download("tune", CHECKPOINT_FILE, folder).read_text(encoding="utf-8")
    # The first line identifies the search; the others are trials, one JSON object each.
    return [Trial.from_record(json.loads(line)) for line in text.splitlines()[1:]]


def load_model(stage: StageRun):
    """The fitted reclab model logged by the ``train`` stage."""
    from reclab.models import load

    with tempfile.TemporaryDirectory() as folder:
        local = stage.download("train", MODEL_FILE, folder)
        return load(local)


def model_uri(stage: StageRun) -> str:
    """``runs:/<train run id>/model``: the pyfunc model of the pipeline's ``train`` stage."""
    return f"runs:/{stage.earlier('train')}/{PYFUNC_DIR}"


class TuningCheckpoint:
    """A tune stage's checkpoint file, made by :func:`tuning_checkpoint`.

    Attributes
    ----------
    path : pathlib.Path
        The JSON-lines file to pass as ``checkpoint`` to :func:`reclab.tuning.tune`.
    resumed_from : str or None
        The interrupted tune run whose finished trials the file holds, if any.
    n_restored : int
        Trials read back from it (0 for a new search).
    """

    def __init__(self, stage: StageRun, folder: Path):
        self._stage = stage
        self.path = folder / Path(CHECKPOINT_FILE).name
        self.resumed_from: str | None = None
        self.n_restored = 0
        # Also at garbage collection or exit when close() is never called (no with block).
        self._remove = weakref.finalize(self, shutil.rmtree, folder, True)

    def __enter__(self) -> "TuningCheckpoint":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Remove the local file and its folder (the logged artifact stays)."""
        self._remove()

    def save(self, trial=None) -> None:
        """Log the file as ``tuning/checkpoint.jsonl`` of the tune run; a ``tune`` callback
        (``trial`` is not used: the file already holds it)."""
        if self.path.is_file():
            self._stage.log_artifact(self.path, CHECKPOINT_DIR)

    def __repr__(self) -> str:
        if self.resumed_from is None:
            return "TuningCheckpoint(new search; logged as tuning/checkpoint.jsonl after every trial)"
        return (f"TuningCheckpoint(continues tune run {self.resumed_from}: {self.n_restored} "
                f"finished trial(s) restored)")


class FitLogger:
    """Training-curve callback made by :func:`fit_logger`."""

    def __init__(self, stage: StageRun):
        self._stage = stage
        self._rows: list[tuple[int, float, float]] = []

    def __call__(self, iteration: int, seconds: float, loss: float | None = None) -> None:
        loss = np.nan if loss is None else float(loss)
        self._rows.append((int(iteration), float(seconds), loss))
        self._stage.log_metrics({"train_loss": loss, "iteration_seconds": seconds}, step=iteration)

    def frame(self) -> pd.DataFrame:
        """``iteration``, ``seconds`` (of that iteration) and ``loss`` (NaN where the model
        reports none), one row per iteration."""
        return pd.DataFrame(self._rows, columns=["iteration", "seconds", "loss"])
