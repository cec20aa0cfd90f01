"""The pipeline's stages and their notebooks: the one list that the runner (:mod:`reclab.pipeline`),
the tracking layer (:mod:`reclab.tracking`) and the command line share; with it, which stage first
reads each parameter (what a change of it makes run again) and how a stage kernel knows that
``reclab run`` drives it.

A low module on purpose (it imports nothing of reclab but its errors): ``tracking`` needs the stage order to name and
find stage runs, and ``pipeline`` runs the notebooks through ``tracking``, so neither may own the list
(see docs/architecture.md). Adding a stage means one entry here and one notebook in ``notebooks/``.
"""

from pathlib import Path
from typing import Mapping

from reclab.errors import ReclabError

__all__ = ["NOTEBOOKS", "RUNNER_ENV", "STAGES", "changes_search", "check_output", "default_params_file",
           "differences", "first_reader", "notebooks_dir"]

#: Stage names, in pipeline order (their numbers are positions from 1).
STAGES = ("preprocess", "tune", "train", "postprocess", "evaluate", "online")

#: The notebook of each stage, in ``notebooks/``.
NOTEBOOKS = {"preprocess": "01_preprocess.ipynb", "tune": "02_tune.ipynb", "train": "03_train.ipynb",
             "postprocess": "04_postprocess.ipynb", "evaluate": "05_evaluate.ipynb",
             "online": "06_online.ipynb"}

#: Set by ``reclab run`` in the environment of the stage kernels it starts: the id of the pipeline
#: run it drives. Such a kernel's stage leaves ending its runs (finished, failed, interrupted) to
#: the runner; any other process that runs a stage (JupyterLab, papermill) ends them itself.
RUNNER_ENV = "RECLAB_RUNNER_PIPELINE"


def notebooks_dir() -> Path:
    """The folder of the stage notebooks: ``notebooks/`` of the project reclab is installed from."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def check_output(output: Path, notebooks: Path) -> Path:
    """``output``, a folder for the executed notebooks, unless it is the ``notebooks`` folder itself:
    each executed notebook (with its outputs and the pipeline's run id injected) would replace its
    stage notebook, which, opened alone later, would then join that pipeline."""
    if output.resolve() == notebooks.resolve():
        raise ReclabError(f"--output {str(output)!r} is the folder of the stage notebooks: the executed "
                          f"notebooks would replace them; pass another folder (or leave --output out)")
    return output


def default_params_file() -> Path:
    """``params/default.yaml`` beside the stage notebooks (see :func:`notebooks_dir`)."""
    return notebooks_dir().parent / "params" / "default.yaml"


# The first stage that reads each parameter (a top-level key, or a dotted key where one part of
# it is read earlier than the rest); unknown keys count as read by stage 1. Every later stage
# uses that stage's results, so a value changed in a pipeline (``reclab run --resume --set``, or
# a stage notebook given ``parent_run_id``) needs that stage and the finished ones after it to
# run again.
_FIRST_READER = {"dataset": "preprocess", "data_dir": "preprocess", "synthetic": "preprocess",
                 "file": "preprocess", "seed": "preprocess", "kcore": "preprocess", "split": "preprocess",
                 "model": "tune", "models": "tune", "tune": "tune", "backend": "tune",
                 "evaluation.relevance_threshold": "tune", "n_recommendations": "postprocess",
                 "k": "evaluate", "evaluation": "evaluate", "baselines": "evaluate",
                 "online": "online"}


def first_reader(key: str, configs=()) -> str:
    """The first stage that reads the dotted configuration key ``key``.

    A model's entry (``models.<name>...``) is read by the first stage that uses the model in any
    of ``configs`` (the configurations before and after a change): stage 2 for a tuned model (and
    ``model``), stage 5 for a baseline, stage 6 for the online world's model; by stage 2 when
    none is given or none uses it.
    """
    parts = key.split(".")
    if parts[0] == "models" and len(parts) > 1 and configs:
        name = parts[1]
        users = [stage for config in configs for stage, names in (
            ("tune", [config.model, *config.tuned_models()]), ("evaluate", config.baselines),
            ("online", [config.online.world_model])) if name in names]
        return min(users, key=STAGES.index) if users else "tune"
    for length in range(len(parts), 0, -1):
        found = _FIRST_READER.get(".".join(parts[:length]))
        if found:
            return found
    return STAGES[0]


def differences(before: Mapping, after: Mapping, prefix: str = "") -> dict:
    """``{dotted key: (value before, value after)}`` of the values that differ (nested)."""
    out = {}
    for key in [*before, *(key for key in after if key not in before)]:
        old, new = before.get(key), after.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            out.update(differences(old, new, f"{prefix}{key}."))
        elif old != new:
            out[f"{prefix}{key}"] = (old, new)
    return out


def changes_search(changes: Mapping, configs=()) -> bool:
    """Whether ``changes`` (of :func:`differences` between ``configs``) make the tune stage's
    search another one: a search's identity (reclab.tuning's checkpoint header) is all it reads
    but the number of trials and the time budget, which only extend or cut it."""
    return any(STAGES.index(first_reader(key, configs)) <= STAGES.index("tune")
               for key in changes if key not in ("tune.n_trials", "tune.time_budget"))
