"""MLflow tracking of the pipeline: the only package of reclab that imports mlflow.

A pipeline is one parent run, each stage a nested run, each tuning trial a run nested under the
``tune`` run; stages exchange data only through MLflow artifacts of the earlier stage runs. A
notebook opened alone (no ``parent_run_id``) continues the latest pipeline of its experiment, and
only while that pipeline is open to its stage (never an older pipeline in its place).

One concern per module (docs/architecture.md shows where each sits):

- :mod:`~reclab.tracking.store`: the store's URI, the project folder, the lock on a new SQLite
  store, experiments;
- :mod:`~reclab.tracking.layout`: the name of every tag and artifact, run names, metric keys;
- :mod:`~reclab.tracking.environment`: the versions and commit every run records;
- :mod:`~reclab.tracking.runs`: the runs' life (start, continue, supersede, fail, end);
- :mod:`~reclab.tracking.stage_run`: :class:`StageRun`, what every stage logs;
- :mod:`~reclab.tracking.artifacts`: what one stage writes for the later ones and how they read it
  (``log_split`` / ``load_split``, ``log_best`` / ``load_best``, the tuning checkpoint,
  ``log_model`` / ``load_model``, ...);
- :mod:`~reclab.tracking.pyfunc`: the MLflow pyfunc model;
- :mod:`~reclab.tracking.queries`: reading runs back (``reclab run``'s summary, ``--resume``,
  ``reclab compare``, the MLflow UI's addresses).

Every public name is importable from ``reclab.tracking``.
"""

import warnings

with warnings.catch_warnings():
    # mlflow imports tqdm.auto, which warns in Jupyter kernels without ipywidgets. Imported here,
    # before any module of the package, so that none of them imports it first.
    warnings.filterwarnings("ignore", message="IProgress not found")
    import mlflow  # noqa: F401

from reclab.data import load_interactions, save_interactions
from reclab.stages import STAGES
from reclab.tracking.artifacts import (FitLogger, TuningCheckpoint, fit_logger, load_best, load_model,
                                       load_split, load_trials, log_best, log_model, log_report,
                                       log_split, model_uri, trial_logger, tuning_checkpoint)
from reclab.tracking import layout
from reclab.tracking.layout import *  # noqa: F401,F403  every tag and artifact name, as layout.__all__
from reclab.tracking.pyfunc import RecommenderPyfunc
from reclab.tracking.queries import (experiments_with_runs, find_stage_run, full_run_id,
                                     latest_pipeline, load_report, pipeline_state, pipeline_summary,
                                     run_table, save_metrics_view, stage_runs, ui_path)
from reclab.tracking.runs import (end_pipeline, end_replaced_stage, end_unfinished_pipeline,
                                  fail_stage, log_notebook, open_pipeline, record_output_dir,
                                  record_resume_changes, reopen_pipeline, start_pipeline, start_stage)
from reclab.tracking.stage_run import StageRun
from reclab.tracking.store import (experiment_id, open_client, project_root, sqlite_file, sqlite_folder,
                                   tracking_uri)

__all__ = [
    "STAGES", "project_root", "tracking_uri", "open_client", "sqlite_file", "sqlite_folder", "experiment_id",
    "start_pipeline",
    "start_stage", "StageRun", "TuningCheckpoint", "FitLogger", "find_stage_run", "stage_runs",
    "latest_pipeline", "log_notebook", "fail_stage", "end_pipeline", "end_replaced_stage",
    "end_unfinished_pipeline", "pipeline_summary", "pipeline_state", "reopen_pipeline", "record_output_dir",
    "load_interactions", "save_interactions",
    "RecommenderPyfunc", "run_table", "full_run_id", "load_report", "ui_path", "experiments_with_runs",
    "open_pipeline", "log_split", "load_split", "log_best", "load_best", "trial_logger",
    "tuning_checkpoint", "load_trials", "fit_logger", "log_report", "log_model", "load_model",
    "model_uri", "save_metrics_view", "record_resume_changes", *layout.__all__,
]
