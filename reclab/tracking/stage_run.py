"""The run of one stage: what every stage notebook logs (parameters, metrics, tags, figures,
tables, datasets) and how it finds the earlier stages' runs of its pipeline."""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Mapping, NamedTuple

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Dataset as _DatasetEntity
from mlflow.entities import DatasetInput, InputTag, Metric, RunTag

from reclab.data import Interactions
from reclab.errors import ReclabError
from reclab.tracking.layout import (FIGURES_DIR, TABLES_DIR, TAG_DATA_CONTEXT, TAG_ERROR,
                                    TAG_INPUT_PREFIX, TAG_NOTE, metric_key, run_name)
from reclab.tracking.queries import UI_ADDRESS, find_stage_run, stage_runs, ui_path
from reclab.tracking.store import download, log_run_params

__all__ = ["StageRun", "LoggedFigure"]

# Figures that the pipeline run carries as well as their stage run (see StageRun.log_figure).
_HEADLINE_FIGURES = ("convergence", "precision_recall_at_k")


class LoggedFigure(NamedTuple):
    """A figure as :meth:`StageRun.log_figure` logged it: its artifact path and PNG bytes, shown
    as that image where a notebook displays it."""

    path: str
    png: bytes

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<figure {self.path}, {len(self.png):,} bytes of PNG>"


class StageRun:
    """One stage's MLflow run, with what a stage notebook logs and reads.

    Created by :func:`reclab.tracking.start_stage`; every method writes to this run by its id (no
    active run). What one stage writes for another, and reads back (the split, the best
    parameters, the model, ...), is in :mod:`reclab.tracking.artifacts`.

    Attributes
    ----------
    run_id, parent_run_id, experiment_id : str
    stage : str
    params : dict
        The validated parameters the stage runs with.
    """

    def __init__(self, client: MlflowClient, run_id: str, parent_run_id: str, experiment_id_: str,
                 stage: str, params: dict, interactive: bool, joined: str = "given"):
        self.client = client
        self.joined = joined
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.experiment_id = experiment_id_
        self.stage = stage
        self.params = params
        self._interactive = interactive
        self._tracking_uri = client.tracking_uri
        self._finished = False

    def __repr__(self) -> str:
        return self._describe_pipeline()

    def _repr_html_(self) -> str:
        import html

        return f"<p>{html.escape(self._describe_pipeline()).replace(chr(10), '<br>')}" \
               f"<br><a href=\"{html.escape(self.pipeline_url())}\" target=\"_blank\">" \
               f"open the pipeline in the MLflow UI</a></p>"

    def pipeline_url(self) -> str:
        """Address of the pipeline run in the MLflow UI: the tracking server itself, or for a
        local store the address ``reclab ui`` serves by default."""
        uri = self._tracking_uri
        base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else UI_ADDRESS
        return base + ui_path(self.experiment_id, self.parent_run_id)

    def _describe_pipeline(self) -> str:
        """Which pipeline this stage belongs to, in words (the first output of every notebook)."""
        how = {"new": "a new pipeline, started by this notebook",
               "continued": "continued: the latest pipeline of the experiment, still open",
               "given": "the pipeline given as parent_run_id"}[self.joined]
        name = run_name(self.params)
        lines = [f"Stage {self.stage!r} (run {self.run_id}) of pipeline {name!r} "
                 f"(run {self.parent_run_id}): {how}.",
                 f"Experiment {self.params['experiment']!r}, store {self._tracking_uri}.",
                 f"MLflow UI (`reclab ui` for a local store): {self.pipeline_url()}"]
        return "\n".join(lines)

    # -- writing ----------------------------------------------------------------------------------
    def check_open(self) -> None:
        """Raise :class:`ReclabError` once :meth:`finish` ended the run: every write of a stage
        (these methods, and :mod:`reclab.tracking.artifacts`' writers) checks it first. A cell
        run again after the finish cell would otherwise change a finished run, whose results the
        later stages may already have read, with no run superseded and nothing marked outdated."""
        if self._finished:
            again = ("its notebook from the first cell (a new pipeline)" if self.stage == "preprocess"
                     else f"its notebook from the first cell with parent_run_id="
                          f"{self.parent_run_id!r} (a new run, superseding this one; the later "
                          f"stages made from it are marked outdated)")
            raise ReclabError(f"stage run {self.run_id} ({self.stage!r}) is finished: a cell run "
                              f"after its finish cell would change what the later stages may "
                              f"already have read; to change its results, run the stage again: "
                              + again)

    def log_params(self, values: Mapping, prefix: str = "") -> None:
        """Log parameters (``prefix`` + key); lists and mappings as JSON text."""
        self.check_open()
        log_run_params(self.client, self.run_id,
                       {f"{prefix}{key}": (json.dumps(value, sort_keys=True, default=str)
                                           if isinstance(value, (list, tuple, dict)) else value)
                        for key, value in values.items()})

    def log_metrics(self, values: Mapping, step: int = 0, run_id: str | None = None,
                    model_id: str | None = None) -> None:
        """Log metrics; ``@`` in names becomes ``_at_``. Non-finite values are skipped. With
        ``model_id`` they are also the metrics of that MLflow logged model."""
        self.check_open()
        now = int(time.time() * 1000)
        metrics = [Metric(metric_key(key), float(value), now, int(step), model_id=model_id)
                   for key, value in values.items() if value is not None and np.isfinite(float(value))]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id or self.run_id, metrics=metrics[start:start + 1000],
                                  synchronous=True)

    def set_tags(self, values: Mapping, run_id: str | None = None) -> None:
        """Set tags (values as text) on this run (or ``run_id``)."""
        self.check_open()
        tags = [RunTag(str(key), str(value)) for key, value in values.items()]
        self.client.log_batch(run_id or self.run_id, tags=tags, synchronous=True)

    def describe(self, text: str, run_id: str | None = None) -> None:
        """Set the run description shown in the MLflow UI (markdown)."""
        self.check_open()
        self.client.set_tag(run_id or self.run_id, TAG_NOTE, text)

    def log_figure(self, figure, name: str) -> LoggedFigure:
        """Log a matplotlib figure as ``figures/<name>.png``, rendered once.

        The headline figures (tuning convergence, precision and recall at K) also go to the
        pipeline run, so that MLflow's Compare page shows them side by side. Returns the logged
        image: a notebook cell that ends with this call shows exactly what was logged, without
        rendering the figure again (each rendering of a stage's figure, about 0.1-0.5 s of CPU,
        was done two or three times: once for the notebook, once per run)."""
        self.check_open()
        path = f"{FIGURES_DIR}/{name}.png"
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / f"{name}.png"
            figure.savefig(local, dpi=110, bbox_inches="tight")
            for run_id in (self.run_id, self.parent_run_id) if name in _HEADLINE_FIGURES else (
                    self.run_id,):
                self.client.log_artifact(run_id, str(local), FIGURES_DIR)
            return LoggedFigure(path, local.read_bytes())

    def log_table(self, frame: pd.DataFrame, name: str, index: bool = False) -> str:
        """Log a table as ``tables/<name>.csv``; returns the artifact path."""
        self.check_open()
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / f"{name}.csv"
            frame.to_csv(local, index=index)
            self.client.log_artifact(self.run_id, str(local), TABLES_DIR)
        return f"{TABLES_DIR}/{name}.csv"

    def log_dict(self, values: Mapping, path: str) -> None:
        """Log a JSON artifact at ``path``."""
        self.check_open()
        self.client.log_dict(self.run_id, dict(values), path)

    def log_dataset(self, data: Interactions, name: str, context: str) -> None:
        """Record ``data`` as an MLflow dataset input of this run (name, digest = its
        fingerprint, schema and row count; the values themselves are not stored)."""
        import mlflow.data

        self.check_open()
        with warnings.catch_warnings():
            # A hint that integer columns cannot hold missing values: ids and counts never do.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            dataset = mlflow.data.from_pandas(data.to_frame(), name=name,
                                              digest=data.fingerprint()[:16])
            entity = _DatasetEntity(**dataset.to_dict())   # the schema is inferred here
        inputs = [DatasetInput(entity, tags=[InputTag(TAG_DATA_CONTEXT, context)])]
        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, datasets=inputs)
                return
            except mlflow.exceptions.MlflowException as error:
                # MLflow looks the dataset up and inserts it when missing, in one transaction:
                # another pipeline logging the same data (same experiment, name and digest) at
                # the same moment makes that insert break the unique key, and the transaction
                # rolls back whole. The next attempt finds that pipeline's dataset and links it.
                if "UNIQUE constraint failed: datasets." not in str(error) or attempt == 2:
                    raise

    def log_artifact(self, path, artifact_path: str | None = None) -> None:
        """Log the file ``path`` into folder ``artifact_path`` (None: the top) of this run."""
        self.check_open()
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def finish(self, summary: str | None = None) -> None:
        """End the stage run (FINISHED), with ``summary`` as its description. Outside ``reclab
        run`` (which ends the pipeline itself), a notebook also marks its pipeline run finished,
        unless another stage of it still runs (in another kernel, which finishes it then), and
        removes the pipeline's tag ``reclab.error`` left by an earlier interruption, as ``reclab
        run --resume`` does when it finishes. Once finished, the run takes no more writes
        (:meth:`check_open`), this one included."""
        self.check_open()
        if summary:
            self.describe(summary)
        self.client.set_terminated(self.run_id, status="FINISHED")
        self._finished = True
        if self._interactive and not stage_runs(self.parent_run_id, self._tracking_uri,
                                                status="RUNNING"):
            # The pipeline may have been interrupted before this stage continued it (a kernel
            # that exited mid-stage): finished now, it keeps no error of that interruption.
            if TAG_ERROR in self.client.get_run(self.parent_run_id).data.tags:
                self.client.delete_tag(self.parent_run_id, TAG_ERROR)
            self.client.set_terminated(self.parent_run_id, status="FINISHED")

    # -- reading the earlier stages ---------------------------------------------------------------
    def earlier(self, stage: str) -> str:
        """Run id of the latest finished run of ``stage`` in this pipeline."""
        found = find_stage_run(stage, self.params["experiment"], self.parent_run_id,
                               uri=self._tracking_uri)
        if found is None:
            raise ReclabError(f"pipeline run {self.parent_run_id} has no finished {stage!r} stage; "
                              f"run the {stage} notebook (or `reclab run --resume "
                              f"{self.parent_run_id}`) first")
        return found.info.run_id

    def download(self, stage: str, path: str, folder: str) -> Path:
        """Download artifact ``path`` of this pipeline's latest finished ``stage`` run into
        ``folder``, and record that run as tag ``reclab.input.<stage>`` of this one (while it
        runs: a finished run's inputs are those it finished with)."""
        run_id = self.earlier(stage)
        local = download(self.client, run_id, path, folder)
        if not self._finished:
            self.set_tags({f"{TAG_INPUT_PREFIX}{stage}": run_id})
        return local
