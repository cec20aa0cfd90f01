"""Parameter files: schema, defaults, --set overrides, validation messages, the shipped files."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from reclab import params
from reclab.errors import ReclabError

PROJECT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((PROJECT / "params").glob("*.yaml"))


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_files_validate_and_cover_the_tuned_model():
    names = {path.name for path in SHIPPED}
    assert {"default.yaml", "ml-100k.yaml", "ml-latest-small.yaml"} <= names
    for path in SHIPPED:
        loaded = params.load(path)
        entry = loaded["models"][loaded["model"]]
        assert entry["space"], f"{path.name}: the tuned model has no search space"
        # every model with a space in the file has a parseable space
        from reclab.space import parse_space

        for name, model_entry in loaded["models"].items():
            if model_entry["space"]:
                assert parse_space(model_entry["space"])


def test_shipped_files_tune_for_precision_at_10_and_know_spark_and_bias():
    assert params.DEFAULTS["tune"]["metric"] == "precision@10"
    for path in SHIPPED:
        loaded = params.load(path)
        assert loaded["tune"]["metric"] == "precision@10", path.name
        for name in ("Bias", "SparkALS"):
            assert loaded["models"][name]["space"], f"{path.name}: {name} has no search space"
        spark = params.load(path, {"backend": "spark"})
        assert spark["model"] == "SparkALS" and spark["backend"] == "spark"
        assert params.make_model(spark).get_params()["implicit"] is True
        assert params.load(path, {"model": "Bias"})["model"] == "Bias"


def test_default_file_is_the_quick_synthetic_run():
    loaded = params.load(PROJECT / "params" / "default.yaml")
    assert loaded["dataset"] == "synthetic"
    assert loaded["tune"]["n_trials"] <= 10
    assert loaded["backend"] == "local"


def test_empty_file_gives_every_default(tmp_path):
    loaded = params.load(write(tmp_path, ""))
    assert loaded["experiment"] == "reclab"
    assert loaded["kcore"] == {"min_user": 5, "min_item": 5}
    assert loaded["k"] == [5, 10, 20]
    assert loaded["split"]["method"] == "random_holdout"
    # the tuned model and the baselines always have an entry
    assert set(loaded["models"]) == {"ImplicitALS", "Popularity", "Bias"}


def test_sections_merge_key_by_key(tmp_path):
    loaded = params.load(write(tmp_path, "kcore: {min_user: 3}\ntune: {n_trials: 4}\n"))
    assert loaded["kcore"] == {"min_user": 3, "min_item": 5}
    assert loaded["tune"]["n_trials"] == 4 and loaded["tune"]["method"] == "smbo"


@pytest.mark.parametrize("text, key", [
    ("kcore: {min_usr: 3}\n", "kcore.min_usr"),
    ("colour: blue\n", "colour"),
    ("tune: {n_trials: ten}\n", "tune.n_trials"),
    ("tune: {n_trials: 2.5}\n", "tune.n_trials"),
    ("seed: true\n", "seed"),
    ("split: {test_frac: 1.5}\n", "split.test_frac"),
    ("split: {method: shuffle}\n", "split.method"),
    ("k: [10, 0]\n", "k"),
    ("model: DeepNet\n", "model"),
    ("backend: cluster\n", "backend"),
    ("tune: {metric: 'ndcg'}\n", "tune.metric"),
    ("baselines: Popularity\n", "baselines"),
    ("models: {SVD: {params: {factor: 3}}}\n", "models.SVD.params.factor"),
    ("models: {SVD: {weights: 3}}\n", "models.SVD.weights"),
    ("synthetic: {n_user: 10}\n", "synthetic.n_user"),
    ("kcore: 5\n", "kcore"),
])
def test_errors_name_the_key_and_the_file(tmp_path, text, key):
    path = write(tmp_path, text, "bad.yaml")
    with pytest.raises(ReclabError) as error:
        params.load(path)
    message = str(error.value)
    assert repr(key) in message, message
    assert str(path) in message, message


def test_bad_search_space_is_refused_with_the_model_key(tmp_path):
    path = write(tmp_path, "models: {ImplicitALS: {space: {factors: {type: int, low: 64, high: 8}}}}\n")
    with pytest.raises(ReclabError, match=r"models\.ImplicitALS\.space.*low must be below high"):
        params.load(path)


def test_a_parameter_both_fixed_and_searched_is_refused(tmp_path):
    path = write(tmp_path, "models: {SVD: {params: {factors: 8}, space: {factors: [4, 8]}}}\n")
    with pytest.raises(ReclabError, match="both a fixed parameter and in the search space"):
        params.load(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ReclabError, match="not found"):
        params.load(tmp_path / "absent.yaml")
    with pytest.raises(ReclabError, match="not valid YAML"):
        params.load(write(tmp_path, "tune: {n_trials: [1, 2\n"))


def test_yaml_is_read_with_safe_load_only(tmp_path):
    path = write(tmp_path, "experiment: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ReclabError, match="not valid YAML"):
        params.load(path)


def test_assignments_are_yaml_typed():
    parsed = params.parse_assignments(["tune.n_trials=5", "k=[5, 10]", "data_dir=null",
                                       "experiment='007'", "split.test_frac=0.25", "seed=3"])
    assert parsed == {"tune.n_trials": 5, "k": [5, 10], "data_dir": None, "experiment": "007",
                      "split.test_frac": 0.25, "seed": 3}
    for bad in ["n_trials", "=5"]:
        with pytest.raises(ReclabError, match="key=value"):
            params.parse_assignments([bad])


def test_overrides_reach_nested_keys_and_are_validated(tmp_path):
    path = write(tmp_path, "models: {SVD: {params: {factors: 8}}}\n")
    loaded = params.load(path, params.parse_assignments(
        ["tune.n_trials=3", "models.SVD.params.factors=16", "models.ItemKNN.params.neighbors=5",
         "k=10"]))
    assert loaded["tune"]["n_trials"] == 3
    assert loaded["models"]["SVD"]["params"] == {"factors": 16}
    assert loaded["models"]["ItemKNN"]["params"] == {"neighbors": 5}
    assert loaded["k"] == [10]
    with pytest.raises(ReclabError) as error:
        params.load(path, {"tune.n_trials": "ten"})
    assert "'tune.n_trials'" in str(error.value) and "--set" in str(error.value)
    assert str(path) in str(error.value)
    with pytest.raises(ReclabError, match="unknown key 'tune.trials'"):
        params.load(path, {"tune.trials": 3})
    with pytest.raises(ReclabError, match="'seed' is not a section"):
        params.load(path, {"seed.value": 3})


def test_notebook_overrides_skip_none_and_map_names():
    assert params.notebook_overrides() == {}
    assert params.notebook_overrides(model="SVD", method="grid", n_trials=4, k=[5]) == {
        "model": "SVD", "tune.method": "grid", "tune.n_trials": 4, "k": [5]}


def test_dump_and_loads_round_trip():
    loaded = params.load(PROJECT / "params" / "ml-100k.yaml", {"seed": 7})
    again = params.loads(params.dump(loaded), "dumped")
    assert again == loaded


def test_flatten_gives_readable_keys_for_the_active_model_only():
    loaded = params.load(PROJECT / "params" / "default.yaml")
    flat = params.flatten(loaded)
    assert flat["tune.n_trials"] == loaded["tune"]["n_trials"]
    assert flat["model"] == "ImplicitALS"
    assert "model.space.factors" in flat and "model.params.iterations" in flat
    assert not any(key.startswith("models.") for key in flat)
    assert all(not isinstance(value, (dict, list)) for value in flat.values())


def test_make_model_applies_fixed_params_seed_and_searched():
    loaded = params.load(PROJECT / "params" / "default.yaml", {"seed": 11})
    model = params.make_model(loaded, "SVD", {"factors": 7})
    assert model.get_params()["factors"] == 7 and model.get_params()["seed"] == 11
    model = params.make_model(loaded, "Popularity")
    assert type(model).__name__ == "Popularity"


def test_every_model_class_is_a_pipeline_model_with_a_space_in_every_shipped_file():
    # The vocabulary is reclab's model registry, so a new model needs no second list here.
    from reclab import models

    assert {"EASE", "RP3beta", "PureSVD", "SparkALS"} <= set(params.MODEL_NAMES)
    assert set(models.__all__) - {"Recommender", "FactorModel", "clone", "load"} <= set(params.MODEL_NAMES)
    for path in SHIPPED:
        for name in ("EASE", "RP3beta", "PureSVD"):
            loaded = params.load(path, {"model": name})
            assert loaded["models"][name]["space"], f"{path.name}: {name} has no search space"
            assert type(params.make_model(loaded)).__name__ == name


def test_a_rating_model_tuned_for_ranking_warns_towards_puresvd(tmp_path):
    import warnings

    ranking = params.load(write(tmp_path, "model: SVD\n"))
    with pytest.warns(UserWarning, match="model SVD is a rating predictor.*use model: PureSVD"):
        params.make_model(ranking)
    rmse = params.load(write(tmp_path, "model: SVD\ntune: {metric: rmse}\n", "rmse.yaml"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params.make_model(rmse)                 # tuned for RMSE: what SVD is for
        params.make_model(ranking, "Bias")      # a baseline beside the tuned model
        params.make_model(params.load(write(tmp_path, "model: PureSVD\n", "pure.yaml")))


def test_make_split_partitions_the_data_reproducibly():
    loaded = params.load(PROJECT / "params" / "default.yaml",
                         {"synthetic": {"n_users": 120, "n_items": 150, "n_ratings": 4000}})
    data = params.load_data(loaded)
    first = params.make_split(loaded, data)
    second = params.make_split(loaded, data)
    train, valid, test = first
    assert train.nnz + valid.nnz + test.nnz == data.nnz
    total = train.matrix + valid.matrix + test.matrix
    assert np.array_equal(total.toarray() != 0, data.matrix.toarray() != 0)
    for a, b in zip(first, second):
        assert a.fingerprint() == b.fingerprint()


def test_backend_spark_and_model_sparkals_imply_each_other(tmp_path):
    assert params.load(write(tmp_path, "backend: spark\n"))["model"] == "SparkALS"
    assert params.load(write(tmp_path, "model: SparkALS\n"))["backend"] == "spark"
    local = write(tmp_path, "model: SVD\n", "local.yaml")
    assert params.load(local, {"backend": "spark"})["model"] == "SparkALS"
    assert params.load(local, {"model": "SparkALS"})["backend"] == "spark"
    spark = write(tmp_path, "backend: spark\n", "spark.yaml")
    assert params.load(spark, {"backend": "local", "model": "SVD"})["backend"] == "local"
    # a contradiction, in a file or on the command line, names both keys and the way out
    for path, overrides in ((write(tmp_path, "backend: spark\nmodel: SVD\n", "bad.yaml"), None),
                            (spark, {"model": "SVD"})):
        with pytest.raises(ReclabError) as error:
            params.load(path, overrides)
        message = str(error.value)
        assert "key 'backend' is 'spark'" in message and "'SVD'" in message, message
        assert "set model: SparkALS" in message and str(path) in message, message
    with pytest.raises(ReclabError, match="key 'model' is 'SparkALS', which trains in Spark.*"
                                          "set backend: spark"):
        params.load(spark, {"backend": "local"})


def test_grid_search_of_a_range_is_refused_before_running(tmp_path):
    path = write(tmp_path, "models: {SVD: {space: {factors: [8, 16], user_reg: {type: real, low: 1.0, "
                           "high: 100.0, prior: log-uniform}}}}\nmodel: SVD\n")
    assert params.load(path)["tune"]["method"] == "smbo"     # a range is fine for smbo
    with pytest.raises(ReclabError) as error:
        params.load(path, {"tune.method": "grid"})
    message = str(error.value)
    assert "key 'models.SVD.space.user_reg'" in message and str(path) in message, message
    assert "is a real range from 1.0 to 100.0" in message, message
    assert "'grid' needs a list of values" in message and "user_reg: [1.0, 10.0, 100.0]" in message
    grid = write(tmp_path, "model: SVD\ntune: {method: grid}\n"
                           "models: {SVD: {space: {factors: [8, 16], user_reg: [1.0, 10.0]}}}\n", "grid.yaml")
    assert params.tune_options(params.load(grid))["n_trials"] is None      # a grid runs whole
    with pytest.raises(ReclabError, match=r"key 'models\.ImplicitALS\.space\.factors' is an integer "
                                          r"range from 8 to 64.*factors: \[8, 23, 64\]"):
        params.load(PROJECT / "params" / "default.yaml", {"tune.method": "grid"})


def test_tune_and_evaluation_options():
    loaded = params.load(PROJECT / "params" / "default.yaml")
    assert params.tune_options(loaded)["n_jobs"] == 1
    options = params.evaluation_options(loaded)
    assert options["k"] == tuple(loaded["k"]) and options["seed"] == loaded["seed"]


def test_shipped_files_are_plain_yaml_mappings():
    for path in SHIPPED:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(raw, dict) and set(raw) <= set(params.DEFAULTS)


def test_an_unknown_dataset_fails_when_read_naming_the_known_ones(tmp_path):
    """A typo such as ml-100K fails before any stage runs (no FAILED pipeline to resume)."""
    with pytest.raises(ReclabError, match=r"'dataset' must be one of \['synthetic', 'ml-100k'.*"
                                          r"got 'ml-100K'"):
        params.load(write(tmp_path, "dataset: ml-100K\n"))
    assert params.load(write(tmp_path, "dataset: ml-100k\n"))["dataset"] == "ml-100k"
