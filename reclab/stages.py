"""The pipeline's stages and their notebooks: the one list that the runner (:mod:`reclab.pipeline`),
the tracking layer (:mod:`reclab.tracking`) and the command line share.

A low module on purpose (it imports nothing of reclab): ``tracking`` needs the stage order to name and
find stage runs, and ``pipeline`` runs the notebooks through ``tracking``, so neither may own the list
(see docs/architecture.md). Adding a stage means one entry here and one notebook in ``notebooks/``.
"""

from pathlib import Path

__all__ = ["NOTEBOOKS", "STAGES", "default_params_file", "notebooks_dir"]

#: Stage names, in pipeline order (their numbers are positions from 1).
STAGES = ("preprocess", "tune", "train", "postprocess", "evaluate", "online")

#: The notebook of each stage, in ``notebooks/``.
NOTEBOOKS = {"preprocess": "01_preprocess.ipynb", "tune": "02_tune.ipynb", "train": "03_train.ipynb",
             "postprocess": "04_postprocess.ipynb", "evaluate": "05_evaluate.ipynb",
             "online": "06_online.ipynb"}


def notebooks_dir() -> Path:
    """The folder of the stage notebooks: ``notebooks/`` of the project reclab is installed from."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def default_params_file() -> Path:
    """``params/default.yaml`` beside the stage notebooks (see :func:`notebooks_dir`)."""
    return notebooks_dir().parent / "params" / "default.yaml"
