"""Each stage notebook's cell tagged ``parameters`` is the configuration's, written once: the
parameters the stage uses (reclab.config.notebook), each named after a configuration key and
documented by that key's field, with its default; papermill sees every one of them."""

import ast
from pathlib import Path

import nbformat
import papermill
import pytest

from reclab import pipeline
from reclab.config import NOTEBOOK_KEYS, RUN_PARAMETERS, STAGE_PARAMETERS, Config, notebook_overrides, parameters_cell

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
DEFAULTS = Config.load(NOTEBOOKS.parent / "params" / "default.yaml")


def field(key: str):
    """The pydantic field of a dotted configuration key."""
    section = Config
    *parents, name = key.split(".")
    for part in parents:
        section = section.model_fields[part].annotation
    return section.model_fields[name]


def test_every_stage_declares_parameters_and_every_notebook_parameter_is_a_configuration_key():
    assert set(STAGE_PARAMETERS) == set(pipeline.STAGES)
    for stage, names in STAGE_PARAMETERS.items():
        assert set(names) <= set(NOTEBOOK_KEYS), stage
        assert "experiment" in names, f"{stage}: reclab run passes experiment to every stage"
    assert set(STAGE_PARAMETERS["preprocess"]) == set(NOTEBOOK_KEYS), "stage 1 starts the pipeline"
    for key in NOTEBOOK_KEYS.values():
        assert field(key).description, f"{key} has no documentation"


@pytest.mark.parametrize("stage", pipeline.STAGES)
def test_the_parameters_cell_is_the_configurations(stage):
    notebook = nbformat.read(NOTEBOOKS / pipeline.NOTEBOOKS[stage], as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert tagged[0].source == parameters_cell(stage), (
        f"{pipeline.NOTEBOOKS[stage]}: write its parameters cell as reclab.config.parameters_cell"
        f"({stage!r}) gives it:\n{parameters_cell(stage)}")
    declared = papermill.inspect_notebook(str(NOTEBOOKS / pipeline.NOTEBOOKS[stage]))
    assert list(declared) == [*STAGE_PARAMETERS[stage], *RUN_PARAMETERS]
    for name, spec in declared.items():
        assert spec["default"] == "None", f"{name}: None means 'as in the parameter file'"
        if name in NOTEBOOK_KEYS:
            key = NOTEBOOK_KEYS[name]
            assert spec["help"].startswith(f"{key}: "), spec["help"]
            # the value a notebook given no parameter file reads (papermill shows the help)
            value = DEFAULTS
            for part in key.split("."):
                value = value[part]
            assert spec["help"].endswith(f"(params/default.yaml: {value!r})")


@pytest.mark.parametrize("stage", pipeline.STAGES)
def test_the_stage_starts_in_one_line_from_its_parameters(stage):
    notebook = nbformat.read(NOTEBOOKS / pipeline.NOTEBOOKS[stage], as_version=4)
    starts = [cell.source.splitlines()[0] for cell in notebook.cells
              if cell.cell_type == "code" and "start_notebook(" in cell.source]
    assert starts == [f'stage, config = start_notebook("{stage}", globals())']


def test_notebook_values_override_their_keys_and_none_keeps_the_files(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("tune: {n_trials: 8}\nk: [5, 10]\n", encoding="utf-8")
    given = {"method": "random", "n_trials": None, "seed": 4, "k": [20], "experiment": None}
    overrides = notebook_overrides("tune", given)
    assert overrides == {"tune.method": "random", "seed": 4}       # stage 2 takes no k
    config = Config.load(path, overrides)
    assert (config.tune.method, config.tune.n_trials, config.seed, config.k) == ("random", 8, 4, [5, 10])
    # every override a notebook can make is a key the configuration accepts
    for name, key in NOTEBOOK_KEYS.items():
        section = Config().model_dump()
        for part in key.split(".")[:-1]:
            section = section[part]
        assert key.split(".")[-1] in section, name


def test_parameters_cells_are_plain_assignments():
    for stage in pipeline.STAGES:
        tree = ast.parse(parameters_cell(stage))
        assert all(isinstance(node, ast.Assign) for node in tree.body)
