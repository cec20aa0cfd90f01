"""The parameters of the stage notebooks, derived from the configuration.

Every stage notebook has one cell tagged ``parameters`` (papermill replaces its values): the run
parameters that ``reclab run`` passes (:data:`RUN_PARAMETERS`, and ``experiment``) and the
configuration keys that stage uses (:data:`STAGE_PARAMETERS`), each ``None`` by default, meaning
"as in the parameter file". The text of each cell is :func:`parameters_cell` of its stage, which
``tests/test_notebook_parameters.py`` compares with the committed notebooks; the help of a key is
the documentation of its field in :mod:`reclab.config.schema`.
"""

from __future__ import annotations

from typing import Mapping

from pydantic import BaseModel

from reclab.config.schema import Config
from reclab.stages import default_params_file

__all__ = ["NOTEBOOK_KEYS", "RUN_PARAMETERS", "STAGE_PARAMETERS", "notebook_overrides", "parameters_cell"]

#: Notebook parameter -> the configuration key it sets (``-p method grid`` sets ``tune.method``).
NOTEBOOK_KEYS = {"dataset": "dataset", "data_dir": "data_dir", "model": "model", "method": "tune.method",
                 "n_trials": "tune.n_trials", "k": "k", "seed": "seed", "experiment": "experiment"}

#: Parameters of every stage notebook that are no configuration key, with their help; ``reclab run``
#: passes them (and ``experiment``) to each stage.
RUN_PARAMETERS = {
    "params_file": "str | None: YAML parameter file of a new pipeline (default: params/default.yaml of "
                   "the project); it also holds each model's search space",
    "tracking_uri": "str | None: MLflow store (default: $MLFLOW_TRACKING_URI, else mlflow.db of the project)",
    "parent_run_id": "str | None: pipeline run to log under (default: the latest pipeline of the "
                     "experiment, while it is open)",
}

#: The notebook parameters (keys of :data:`NOTEBOOK_KEYS`) each stage declares: those it uses.
#: Stage 1 starts a pipeline, whose configuration every later stage reads, so it takes them all.
STAGE_PARAMETERS = {
    "preprocess": tuple(NOTEBOOK_KEYS),
    "tune": ("model", "method", "n_trials", "seed", "experiment"),
    "train": ("model", "seed", "experiment"),
    "postprocess": ("seed", "experiment"),
    "evaluate": ("k", "seed", "experiment"),
    "online": ("seed", "experiment"),
}


def _help(key: str, defaults: Config) -> str:
    """``<key>: <first sentence of the field's documentation> (params/default.yaml: <value>)``:
    the value a notebook given no parameter file reads (``defaults``)."""
    section: type[BaseModel] = Config
    *parents, name = key.split(".")
    for part in parents:
        section = section.model_fields[part].annotation
    field = section.model_fields[name]
    doc = " ".join((field.description or "").split()).split(". ")[0].rstrip(".")
    choices = (field.json_schema_extra or {}).get("choices")
    value = defaults
    for part in key.split("."):
        value = value[part]
    return f"{key}: {doc}{f', one of {choices}' if choices else ''} (params/default.yaml: {value!r})"


def parameters_cell(stage: str) -> str:
    """The source of stage ``stage``'s cell tagged ``parameters``."""
    names = [*STAGE_PARAMETERS[stage], *RUN_PARAMETERS]
    width = max(len(name) for name in names) + len(" = None")
    lines = ['# Parameters (papermill and `reclab run` replace them). None means "as in the parameters".']
    defaults = Config.load(default_params_file())
    for name in names:
        help_text = RUN_PARAMETERS[name] if name in RUN_PARAMETERS else _help(NOTEBOOK_KEYS[name], defaults)
        lines.append(f"{name + ' = None':<{width}}  # {help_text}")
    return "\n".join(lines)


def notebook_overrides(stage: str, namespace: Mapping) -> dict:
    """``{dotted key: value}`` of the configuration parameters stage ``stage`` declares that are
    set in ``namespace`` (a notebook's ``globals()``), not None."""
    return {NOTEBOOK_KEYS[name]: namespace[name] for name in STAGE_PARAMETERS[stage]
            if namespace.get(name) is not None}
