"""The pipeline configuration: a parameter file (YAML) parsed into typed, documented classes.

``Config.load(path, overrides)`` reads a file, applies ``--set`` overrides (dotted keys reach
nested values; each value is read as YAML, so ``--set k=[5,10]`` is a list and ``--set
data_dir=null`` is None) and validates the result: an unknown key, a wrong type or a value out of
range raises :class:`~reclab.errors.ReclabError` naming the key and the file (or the ``--set``
override). Every key, its type, default and meaning is a field of :mod:`reclab.config.schema`, the
one place they are written.

Modules: ``schema`` (the classes, reading and writing), ``files`` (YAML and overrides), ``checks``
(rules across keys; before a pipeline starts, a space for every tuned model and the data files),
``build`` (the objects a configuration describes: data, split, models, world, options of ``tune``
and ``evaluate``), ``notebook`` (the stage notebooks' parameters).
"""

from reclab.config.build import (evaluation_options, load_data, make_model, make_split, make_world, tune_options,
                                 tune_search)
from reclab.config.checks import check_runnable, check_searchable
from reclab.config.files import parse_assignments
from reclab.config.notebook import NOTEBOOK_KEYS, RUN_PARAMETERS, STAGE_PARAMETERS, notebook_overrides, parameters_cell
from reclab.config.schema import MODEL_NAMES, Config

__all__ = ["Config", "MODEL_NAMES", "NOTEBOOK_KEYS", "RUN_PARAMETERS", "STAGE_PARAMETERS", "check_runnable",
           "check_searchable", "evaluation_options", "load_data", "make_model", "make_split", "make_world",
           "notebook_overrides", "parameters_cell", "parse_assignments", "tune_options", "tune_search"]
