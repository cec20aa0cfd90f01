"""The names reclab gives to what it keeps in MLflow: every tag and artifact path as a constant, the
run names and the metric keys.

Who writes each artifact, and who reads it, is in :mod:`reclab.tracking.artifacts` (the stages'
exchange) and :mod:`reclab.tracking.stage_run` (figures and tables); the pipeline's table of
stages and artifacts is in docs/architecture.md. This module imports nothing of reclab, so that
every other module of the package can use it.
"""

from __future__ import annotations

__all__ = [
    "BEST_PARAMS_FILE", "CHECKPOINT_DIR", "CHECKPOINT_FILE", "FIGURES_DIR", "MODEL_DIR", "MODEL_FILE",
    "NOTEBOOK_DIR", "PARAMS_FILE", "PER_USER_TABLE", "PYFUNC_DIR", "SPLIT_DIR", "SPLIT_PARTS",
    "TABLES_DIR", "TAG_BOUNDARY_WARNING", "TAG_DATA_CONTEXT", "TAG_DATA_FINGERPRINT", "TAG_ERROR",
    "TAG_EXECUTABLE", "TAG_GIT_COMMIT", "TAG_INPUT_PREFIX", "TAG_K", "TAG_MODEL", "TAG_MODEL_ID",
    "TAG_NOTE", "TAG_ONLINE_WORLD", "TAG_OUTDATED", "TAG_PACKAGE_VERSION_PREFIX", "TAG_PARENT",
    "TAG_OUTPUT_DIR", "TAG_PIPELINE", "TAG_PIPELINE_RUN", "TAG_PYTHON", "TAG_RELEVANCE_THRESHOLD", "TAG_RESTORED_FROM",
    "TAG_RESTORED_TRIALS", "TAG_RESUMED_FROM", "TAG_RESUMED_WITH", "TAG_CHECKPOINT_OUTDATED",
    "TAG_SAVED_VIEW_PREFIX", "METRICS_VIEW", "TAG_SOURCE_GIT_COMMIT", "TAG_SPLIT_FINGERPRINT",
    "TAG_STAGE", "TAG_SUPERSEDED_BY", "TAG_TEST_FINGERPRINT", "TAG_TRIAL", "TAG_TUNING_SPLIT_FINGERPRINT",
    "TAG_VERSION", "metric_key", "run_name",
]

# -- tags of MLflow's own ---------------------------------------------------------------------
#: The run's description (markdown) in the MLflow UI.
TAG_NOTE = "mlflow.note.content"
#: The run this run is nested under: a stage run's pipeline run, a trial run's tune run.
TAG_PARENT = "mlflow.parentRunId"
#: Commit of the code, which the MLflow UI shows as the run's source version.
TAG_SOURCE_GIT_COMMIT = "mlflow.source.git.commit"
#: What a dataset input is for (``training``, ``validation``, ``testing``).
TAG_DATA_CONTEXT = "mlflow.data.context"

# -- what a run is ----------------------------------------------------------------------------
#: On a pipeline run: who drives its stages (``reclab run`` or ``notebook``).
TAG_PIPELINE = "reclab.pipeline"
#: On a pipeline run that ``reclab run`` drove: the folder (absolute) of its executed notebooks,
#: the last run's; ``--resume`` without ``--output`` writes there.
TAG_OUTPUT_DIR = "reclab.output_dir"
#: On a stage run: its stage (one of :data:`reclab.stages.STAGES`).
TAG_STAGE = "reclab.stage"
#: On a trial run: the trial's number in the search.
TAG_TRIAL = "reclab.trial"
#: On a trial run: the model it tried (a search over several models).
TAG_MODEL = "reclab.model"
#: On a logged model: the pipeline run it belongs to.
TAG_PIPELINE_RUN = "reclab.pipeline_run"

# -- the environment (every pipeline and stage run) -------------------------------------------
TAG_VERSION = "reclab.version"
TAG_PYTHON = "reclab.python"
TAG_EXECUTABLE = "reclab.executable"
#: The commit, with ``-dirty`` when the working tree had uncommitted changes.
TAG_GIT_COMMIT = "reclab.git_commit"
#: ``version.<package>``: the versions of the packages that decide the numbers.
TAG_PACKAGE_VERSION_PREFIX = "version."

# -- how a run ended, and what became of it ---------------------------------------------------
#: The error that ended a stage (or its pipeline) FAILED or KILLED.
TAG_ERROR = "reclab.error"
#: On a finished stage run: the later run of the same stage in the pipeline that replaces it.
TAG_SUPERSEDED_BY = "reclab.superseded_by"
#: On a finished stage run: made from a run since superseded (why, in words).
TAG_OUTDATED = "reclab.outdated"
#: ``reclab.input.<stage>``: the run of an earlier stage whose artifacts this run read.
TAG_INPUT_PREFIX = "reclab.input."

# -- what the stages found --------------------------------------------------------------------
TAG_DATA_FINGERPRINT = "reclab.data_fingerprint"
#: Train + valid against test: identifies the test split.
TAG_SPLIT_FINGERPRINT = "reclab.split_fingerprint"
#: Train against valid: identifies the tuning split.
TAG_TUNING_SPLIT_FINGERPRINT = "reclab.tuning_split_fingerprint"
#: Best parameters on the boundary of their search space (tune stage and pipeline run).
TAG_BOUNDARY_WARNING = "reclab.boundary_warning"
#: On a tune run that continued an interrupted search: the run it continued.
TAG_RESUMED_FROM = "reclab.resumed_from"
#: On a pipeline run resumed with corrected values: ``key: old -> new``, one line per key.
TAG_RESUMED_WITH = "reclab.resumed_with"
#: On an unfinished tune run whose search a corrected resume changed: its checkpoint is not read.
TAG_CHECKPOINT_OUTDATED = "reclab.checkpoint_outdated"
#: On that tune run: how many finished trials it read back.
TAG_RESTORED_TRIALS = "reclab.restored_trials"
#: On a trial run read back from a checkpoint: the tune run that ran the trial.
TAG_RESTORED_FROM = "reclab.restored_from"
#: On a train run: the id of its MLflow logged model.
TAG_MODEL_ID = "reclab.model_id"
#: On an evaluate run: what ``reclab compare`` needs to pair two runs' per-user values.
TAG_TEST_FINGERPRINT = "reclab.test_fingerprint"
TAG_RELEVANCE_THRESHOLD = "reclab.relevance_threshold"
#: The metric cut-offs, as a JSON list.
TAG_K = "reclab.k"
#: On an online run: where the simulated users' preferences come from.
TAG_ONLINE_WORLD = "reclab.online.world"

# -- the MLflow UI ----------------------------------------------------------------------------
#: A saved view of an experiment's runs table is an experiment tag (MLflow's "Save view" writes the
#: same): this prefix and the view's id; an address with ``viewStateShareKey=<id>`` opens it.
TAG_SAVED_VIEW_PREFIX = "mlflow.sharedViewState."
#: The id of reclab's saved view of the pipeline runs' test metrics.
METRICS_VIEW = "reclab-test-metrics"

# -- artifacts --------------------------------------------------------------------------------
#: The pipeline run's parameter file.
PARAMS_FILE = "params.yaml"
#: The preprocess run's split: ``split/<part>.npz`` for each part (:mod:`reclab.data.npz`).
SPLIT_DIR = "split"
SPLIT_PARTS = ("train", "valid", "test")
#: The tune run's result: model, parameters, metric, score, boundary warnings (JSON).
BEST_PARAMS_FILE = "best_params.json"
#: The tune run's checkpoint, one JSON line per finished trial after the search's own line.
CHECKPOINT_DIR = "tuning"
CHECKPOINT_FILE = f"{CHECKPOINT_DIR}/checkpoint.jsonl"
#: The train run's model as a reclab ``.npz`` file.
MODEL_DIR = "reclab_model"
MODEL_FILE = f"{MODEL_DIR}/model.npz"
#: The train run's MLflow pyfunc model (``runs:/<id>/model``).
PYFUNC_DIR = "model"
#: Figures (``figures/<name>.png``) and tables (``tables/<name>.csv``) of any stage.
FIGURES_DIR = "figures"
TABLES_DIR = "tables"
#: The evaluate run's per-user metric table.
PER_USER_TABLE = f"{TABLES_DIR}/per_user.csv"
#: The executed notebook of a stage run, and its HTML rendering.
NOTEBOOK_DIR = "notebook"


def run_name(params, suffix: str | None = None) -> str:
    """A pipeline run's name, ``<dataset>/<model>/<search method>``, and ``/<suffix>`` for its stage
    runs (``1-preprocess``, ...). ``params`` is a :class:`reclab.config.Config`; ``<model>`` is
    the models that stage 2 searches, joined by ``+`` (``ml-100k/ImplicitALS+EASE/smbo``), so that
    a run whose tuning picked EASE is not named after ImplicitALS alone."""
    models = "+".join(params.tuned_models())
    name = f"{params.dataset_name}/{models}/{params['tune']['method']}"
    return f"{name}/{suffix}" if suffix else name


def metric_key(name: str) -> str:
    """MLflow metric key of a reclab metric name: ``"precision@10"`` -> ``"precision_at_10"``."""
    return str(name).replace("@", "_at_")
