"""Parameter files read into the typed configuration (reclab.config): schema, defaults, --set overrides,
validation messages, the shipped files."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from reclab import config, split
from reclab.config import Config
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
        loaded = Config.load(path)
        entry = loaded["models"][loaded["model"]]
        assert entry["space"], f"{path.name}: the tuned model has no search space"
        # every model with a space in the file has a parseable space
        from reclab.space import parse_space

        for name, model_entry in loaded["models"].items():
            if model_entry["space"]:
                assert parse_space(model_entry["space"])


def test_shipped_files_tune_for_precision_at_10_and_know_spark_and_bias():
    assert Config().tune.metric == "precision@10"
    for path in SHIPPED:
        loaded = Config.load(path)
        assert loaded["tune"]["metric"] == "precision@10", path.name
        for name in ("Bias", "SparkALS"):
            assert loaded["models"][name]["space"], f"{path.name}: {name} has no search space"
        spark = Config.load(path, {"backend": "spark"})
        assert spark["model"] == "SparkALS" and spark["backend"] == "spark"
        assert config.make_model(spark).get_params()["implicit"] is True
        assert Config.load(path, {"model": "Bias"})["model"] == "Bias"


def test_default_file_is_the_quick_synthetic_run():
    loaded = Config.load(PROJECT / "params" / "default.yaml")
    assert loaded["dataset"] == "synthetic"
    assert loaded["tune"]["n_trials"] <= 10
    assert loaded["backend"] == "local"


def test_empty_file_gives_every_default(tmp_path):
    loaded = Config.load(write(tmp_path, ""))
    assert loaded["experiment"] == "reclab"
    assert loaded["kcore"].model_dump() == {"min_user": 5, "min_item": 5}
    assert loaded["k"] == [5, 10, 20]
    assert loaded["split"]["method"] == "random_holdout"
    # the tuned model and the baselines always have an entry
    assert set(loaded["models"]) == {"ImplicitALS", "Popularity", "Bias"}


def test_sections_merge_key_by_key(tmp_path):
    loaded = Config.load(write(tmp_path, "kcore: {min_user: 3}\ntune: {n_trials: 4}\n"))
    assert loaded["kcore"].model_dump() == {"min_user": 3, "min_item": 5}
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
    ("tune: {select: first}\n", "tune.select"),
    ("tune: {select: one_se, folds: 1}\n", "tune"),
    ("baselines: Popularity\n", "baselines"),
    ("baselines: [Popularity, Bias, Popularity]\n", "baselines"),
    ("tune: {models: [EASE, EASE]}\n", "tune.models"),
    ("models: {SVD: {params: {factor: 3}}}\n", "models.SVD.params.factor"),
    ("models: {SVD: {weights: 3}}\n", "models.SVD.weights"),
    ("synthetic: {n_user: 10}\n", "synthetic.n_user"),
    ("synthetic: {n_users: -5}\n", "synthetic"),    # failed in stage 1
    ("synthetic: {n_ratings: 10}\n", "synthetic"),
    ("tune: {metric: rmse}\n", "tune.metric"),      # ImplicitALS predicts no ratings: failed in stage 2
    ("kcore: 5\n", "kcore"),
    ("seed: 4294967296\n", "seed"),                # scikit-optimize refused it in stage 2
    ("evaluation: {relevance_threshold: .nan}\n", "evaluation.relevance_threshold"),   # refused in stage 2
    ("evaluation: {relevance_threshold: -.inf}\n", "evaluation.relevance_threshold"),
    # The model's own checks (they failed in the stage that first fitted the model):
    ("models: {ImplicitALS: {params: {iterations: -1}}}\n", "models.ImplicitALS.params"),
    ("models: {Bias: {params: {iterations: 1e1}}}\n", "models.Bias.params"),
    ("models: {ImplicitALS: {space: {factors: [4, 8]}, starts: [{factors: 4}, {factors: abc}]}}\n",
     "models.ImplicitALS.starts[1]"),
])
def test_errors_name_the_key_and_the_file(tmp_path, text, key):
    path = write(tmp_path, text, "bad.yaml")
    with pytest.raises(ReclabError) as error:
        Config.load(path)
    message = str(error.value)
    assert repr(key) in message, message
    assert str(path) in message, message


def test_a_number_yaml_reads_as_text_is_explained():
    with pytest.raises(ReclabError, match=r"key 'models.Bias.params' is refused by Bias: Bias parameter "
                                          r"iterations must be an integer >= 1, got '1e1' \(YAML reads "
                                          r"1e1 as text: write 10\)"):
        Config.loads("models: {Bias: {params: {iterations: 1e1}}}\n", "bad.yaml")


def test_bad_search_space_is_refused_with_the_model_key(tmp_path):
    path = write(tmp_path, "models: {ImplicitALS: {space: {factors: {type: int, low: 64, high: 8}}}}\n")
    with pytest.raises(ReclabError, match=r"models\.ImplicitALS\.space.*low must be below high"):
        Config.load(path)


@pytest.mark.parametrize("space, message", [
    # YAML reads 1e2 as a string: the grid ran, every trial failed, the start point went on.
    ("{regularization: [1e2, 1e3]}", r"'regularization': value '1e2' is refused by EASE: .* write 1.0e\+2"),
    ("{regularization: {type: int, low: -5, high: 10}}", r"'regularization': low -5 is refused by EASE"),
])
def test_a_space_value_the_model_refuses_is_refused_with_the_model_key(space, message):
    with pytest.raises(ReclabError, match=r"bad.yaml: key 'models.EASE.space' is not a valid search "
                                          r"space: search space parameter " + message):
        Config.loads(f"model: EASE\ntune: {{method: grid}}\nmodels: {{EASE: {{space: {space}}}}}\n",
                     "bad.yaml")


def test_a_parameter_both_fixed_and_searched_is_refused(tmp_path):
    path = write(tmp_path, "models: {SVD: {params: {factors: 8}, space: {factors: [4, 8]}}}\n")
    with pytest.raises(ReclabError, match="both a fixed parameter and in the search space"):
        Config.load(path)


def test_missing_file_and_bad_yaml(tmp_path, monkeypatch):
    with pytest.raises(ReclabError, match=r"^parameter file '[^']*absent.yaml' not found$"):
        Config.load(tmp_path / "absent.yaml")
    # a relative path names the folder it was looked for in (a notebook's is notebooks/)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReclabError, match=rf"^parameter file 'params/absent.yaml' not found in the "
                                          rf"working folder {re.escape(str(tmp_path))}$"):
        Config.load("params/absent.yaml")
    with pytest.raises(ReclabError, match="not valid YAML"):
        Config.load(write(tmp_path, "tune: {n_trials: [1, 2\n"))


def test_yaml_is_read_with_safe_load_only(tmp_path):
    path = write(tmp_path, "experiment: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ReclabError, match="not valid YAML"):
        Config.load(path)


def test_a_key_written_twice_is_refused_not_silently_replaced(tmp_path):
    """PyYAML keeps the last of two equal keys: a tune section appended to a copy of a file would
    put the copy's other tune keys back to their defaults, without a word."""
    appended = (PROJECT / "params" / "default.yaml").read_text(encoding="utf-8") + "tune: {n_trials: 20}\n"
    with pytest.raises(ReclabError, match=r"key 'tune' is written twice in one mapping \(lines \d+ and \d+\)"):
        Config.load(write(tmp_path, appended))
    with pytest.raises(ReclabError, match=r"key 'n_trials' is written twice in one mapping \(lines 1 and 1\)"):
        Config.load(write(tmp_path, "tune: {n_trials: 3, n_trials: 4}\n"))
    with pytest.raises(ReclabError, match="key 'n_trials' is written twice"):
        config.parse_assignments(["tune={n_trials: 3, n_trials: 4}"])
    # the same name in two mappings, and a merge key overridden on purpose, are fine
    fine = write(tmp_path, "models:\n  EASE: {params: {regularization: 100.0}}\n"
                           "  ItemKNN: {params: {neighbors: 20}}\nk: [5, 10]\n")
    assert Config.load(fine)["models"]["ItemKNN"]["params"]["neighbors"] == 20
    assert config.parse_assignments(["k=[5]"]) == {"k": [5]}
    from reclab.config.files import read_text
    assert read_text("base: &b {x: 1, y: 2}\nmine: {<<: *b, x: 3}\n", "t")["mine"] == {"x": 3, "y": 2}


def test_assignments_are_yaml_typed():
    parsed = config.parse_assignments(["tune.n_trials=5", "k=[5, 10]", "data_dir=null",
                                       "experiment='007'", "split.test_frac=0.25", "seed=3"])
    assert parsed == {"tune.n_trials": 5, "k": [5, 10], "data_dir": None, "experiment": "007",
                      "split.test_frac": 0.25, "seed": 3}
    for bad in ["n_trials", "=5"]:
        with pytest.raises(ReclabError, match="key=value"):
            config.parse_assignments([bad])
    with pytest.raises(ReclabError, match=r"--set seed=\.\.\. is given twice"):   # the last one won
        config.parse_assignments(["seed=1", "k=5", "seed=2"])
    # nothing after '=' is null, as 'data_dir:' in a file (it was '', refused as no number)
    assert config.parse_assignments(["data_dir=", "tune.time_budget= "]) == {
        "data_dir": None, "tune.time_budget": None}


def test_the_old_name_split_k_sets_held_out_per_user_from_the_command_line_too(tmp_path):
    """--set split.k=3 was refused on every file (the file's split already held the new name's
    default), though the README says the old name is still read."""
    path = write(tmp_path, "split: {method: leave_k_out, k: 2}\n")
    assert Config.load(path).split.held_out_per_user == 2
    assert Config.load(path, {"split.k": 3}).split.held_out_per_user == 3
    with pytest.raises(ReclabError, match="'split.k' is the old name of 'split.held_out_per_user'"):
        Config.load(path, {"split.k": 3, "split.held_out_per_user": 4})


def test_overrides_reach_nested_keys_and_are_validated(tmp_path):
    path = write(tmp_path, "models: {SVD: {params: {factors: 8}}}\n")
    loaded = Config.load(path, config.parse_assignments(
        ["tune.n_trials=3", "models.SVD.params.factors=16", "models.ItemKNN.params.neighbors=5",
         "k=10"]))
    assert loaded["tune"]["n_trials"] == 3
    assert loaded.models["SVD"].params == {"factors": 16}
    assert loaded.models["ItemKNN"].params == {"neighbors": 5}
    assert loaded["k"] == [10]
    with pytest.raises(ReclabError) as error:
        Config.load(path, {"tune.n_trials": "ten"})
    assert "'tune.n_trials'" in str(error.value) and "--set" in str(error.value)
    assert str(path) in str(error.value)
    with pytest.raises(ReclabError, match="unknown key 'tune.trials'"):
        Config.load(path, {"tune.trials": 3})
    with pytest.raises(ReclabError, match="'seed' is not a section"):
        Config.load(path, {"seed.value": 3})


def test_notebook_overrides_skip_none_and_map_names():
    assert config.notebook_overrides("tune", {"model": None, "k": [5]}) == {}   # stage 2 takes no k
    assert config.notebook_overrides("preprocess", {"model": "SVD", "method": "grid", "n_trials": 4, "k": [5],
                                                    "seed": None, "unrelated": 1}) == {
        "model": "SVD", "tune.method": "grid", "tune.n_trials": 4, "k": [5]}


def test_dump_and_loads_round_trip():
    loaded = Config.load(PROJECT / "params" / "ml-100k.yaml", {"seed": 7})
    again = Config.loads(loaded.dump(), "dumped")
    assert again == loaded


def test_flatten_gives_readable_keys_for_the_active_model_only():
    loaded = Config.load(PROJECT / "params" / "default.yaml")
    flat = loaded.flatten()
    assert flat["tune.n_trials"] == loaded["tune"]["n_trials"]
    assert flat["model"] == "ImplicitALS"
    assert "model.space.factors" in flat and "model.params.iterations" in flat
    assert not any(key.startswith("models.") for key in flat)
    assert all(not isinstance(value, (dict, list)) for value in flat.values())


def test_make_model_applies_fixed_params_seed_and_searched():
    loaded = Config.load(PROJECT / "params" / "default.yaml", {"seed": 11})
    model = config.make_model(loaded, "SVD", {"factors": 7})
    assert model.get_params()["factors"] == 7 and model.get_params()["seed"] == 11
    model = config.make_model(loaded, "Popularity")
    assert type(model).__name__ == "Popularity"


def test_every_model_class_is_a_pipeline_model_with_a_space_in_every_shipped_file():
    # The vocabulary is reclab's model registry, so a new model needs no second list here.
    from reclab import models

    assert {"EASE", "RP3beta", "PureSVD", "SparkALS"} <= set(config.MODEL_NAMES)
    assert set(models.__all__) - {"Recommender", "FactorModel", "clone", "load"} <= set(config.MODEL_NAMES)
    for path in SHIPPED:
        for name in ("EASE", "RP3beta", "PureSVD"):
            loaded = Config.load(path, {"model": name})
            assert loaded["models"][name]["space"], f"{path.name}: {name} has no search space"
            assert type(config.make_model(loaded)).__name__ == name


def test_every_search_of_a_shipped_file_starts_inside_its_space():
    """A search starts from the model's parameters (its trial 0): in every shipped file, each
    searched value starts inside its range, not at a bound, where a search that keeps it would
    warn that the space is too narrow (make run did, for ImplicitALS's 64 factors in [8, 64])."""
    from reclab.space import parse_space
    from reclab.tuning import TuningResult, boundary_warnings

    for path in SHIPPED:
        loaded = Config.load(path)
        for name, entry in loaded.models.items():
            if not entry.space:
                continue
            start = config.make_model(loaded, name).get_params()
            space = parse_space(entry.space)
            kept = TuningResult(best_params={key: start[key] for key in space}, best_score=0.2,
                                trials=(), method="random", metric="precision@10", space=space,
                                best_model=name)
            assert boundary_warnings(kept) == [], path.name


# A search space for each model the warning tests tune (stage 2 refuses a tuned model without one).
SPACES = ("models: {SVD: {space: {factors: [8, 16]}}, ImplicitALS: {space: {factors: [8, 16]}}, "
          "Bias: {space: {user_reg: [5.0, 10.0]}}, PureSVD: {space: {factors: [8, 16]}}, "
          "HybridALS: {space: {factors: [8, 16]}}}\n")


def test_a_rating_model_tuned_for_ranking_warns_towards_puresvd(tmp_path):
    import warnings

    ranking = Config.load(write(tmp_path, "model: SVD\n" + SPACES))
    with pytest.warns(UserWarning, match="model SVD is a rating predictor.*use model: PureSVD"):
        config.tune_search(ranking)
    both = Config.load(write(tmp_path, "tune: {models: [ImplicitALS, Bias]}\n" + SPACES, "both.yaml"))
    with pytest.warns(UserWarning, match="model Bias is a rating predictor"):
        config.tune_search(both)                # any tuned model, not only `model`
    rmse = Config.load(write(tmp_path, "model: SVD\ntune: {metric: rmse}\n" + SPACES, "rmse.yaml"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config.tune_search(rmse)                # tuned for RMSE: what SVD is for
        config.make_model(ranking)              # stages 3-6 build it without saying it again
        config.make_model(ranking, "Bias")      # a baseline beside the tuned model
        config.tune_search(Config.load(write(tmp_path, "model: PureSVD\n" + SPACES, "pure.yaml")))


@pytest.mark.parametrize("method", ["cold_users", "temporal", "random_holdout"])
def test_a_model_that_cannot_rank_for_new_users_warns_when_validation_has_many(tmp_path, method):
    """Stage 2 warns when >= 10% of the validation users have no training interactions (all on
    cold_users, a third on this synthetic data's temporal split, none on a per-user holdout)
    and a tuned model has ranks_new_users False."""
    import warnings

    text = f"split: {{method: {method}}}\nsynthetic: {{n_users: 300, n_items: 200, n_ratings: 9000}}\n" + SPACES
    loaded = {name: Config.load(write(tmp_path, f"model: {name}\n" + text, f"{name}.yaml"))
              for name in ("ImplicitALS", "HybridALS")}
    train, valid, _ = config.make_split(loaded["ImplicitALS"], config.load_data(loaded["ImplicitALS"]))
    share = len(split.new_users(train, valid)) / np.count_nonzero(valid.user_counts())
    assert (share == 1.0) if method == "cold_users" else (share > 0.2) if method == "temporal" else share == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config.tune_search(loaded["ImplicitALS"], train, valid)
        config.tune_search(loaded["ImplicitALS"])   # without the split: nothing to count
        config.tune_search(loaded["HybridALS"], train, valid)
    messages = [str(warning.message) for warning in caught]
    if method == "random_holdout":
        assert messages == []
    else:
        assert len(messages) == 1, messages
        assert re.match(rf"\d+ of the \d+ validation users \({share:.0%}, split.method {method}\) have no "
                        rf"training interactions, and ImplicitALS gives such a user the same score .*"
                        rf"use model: HybridALS", messages[0]), messages[0]


def test_make_split_partitions_the_data_reproducibly():
    loaded = Config.load(PROJECT / "params" / "default.yaml",
                         {"synthetic": {"n_users": 120, "n_items": 150, "n_ratings": 4000}})
    data = config.load_data(loaded)
    first = config.make_split(loaded, data)
    second = config.make_split(loaded, data)
    train, valid, test = first
    assert train.nnz + valid.nnz + test.nnz == data.nnz
    total = train.matrix + valid.matrix + test.matrix
    assert np.array_equal(total.toarray() != 0, data.matrix.toarray() != 0)
    for a, b in zip(first, second):
        assert a.fingerprint() == b.fingerprint()


def test_a_split_part_that_would_be_empty_is_refused_naming_its_key():
    """A per-user holdout that rounds to nothing for every user made an empty part: stage 1
    logged it and stage 2 failed reading it back ("no interactions"). The validation part's
    refusal names split.valid_frac (the split function knows it as its test_frac)."""
    default = PROJECT / "params" / "default.yaml"
    small = {"synthetic": {"n_users": 40, "n_items": 60, "n_ratings": 600}}
    data = config.load_data(Config.load(default, small))
    most = int(data.user_counts().max())
    with pytest.raises(ReclabError, match=rf"^split.method random_holdout with split.test_frac=0.01 holds "
                                          rf"out nothing for the test part: .*\(at most {most} each\)"):
        config.make_split(Config.load(default, {**small, "split": {"test_frac": 0.01}}), data)
    with pytest.raises(ReclabError, match=r"^split.method random_holdout with split.valid_frac=0.01 holds "
                                          r"out nothing for the validation part"):
        config.make_split(Config.load(default, {**small, "split": {"valid_frac": 0.01}}), data)
    with pytest.raises(ReclabError, match=r"^the validation part \(split.valid_frac=0.001, .*\): cold_items "
                                          r"with test_frac=0.001 moves 0 of"):
        config.make_split(Config.load(default, {**small, "split": {"method": "cold_items",
                                                                   "valid_frac": 0.001}}), data)


def test_a_list_longer_than_any_user_can_be_shown_in_stage_6_is_refused_in_stage_1():
    default = PROJECT / "params" / "default.yaml"
    small = {"synthetic": {"n_users": 40, "n_items": 60, "n_ratings": 1500}}
    data = config.load_data(Config.load(default, small))
    train, valid, _ = config.make_split(Config.load(default, small), data)
    most = data.n_items - int(train.union(valid).user_counts().min())   # unseen items of a user
    assert len(config.make_split(Config.load(default, {**small, "n_recommendations": most}), data)) == 3
    with pytest.raises(ReclabError, match=rf"key 'n_recommendations' is {most + 1}, .* no user has "
                                          rf"that many \(the most is {most} of {data.n_items} items\); "
                                          rf"use n_recommendations <= {most}, or online.enabled: false"):
        config.make_split(Config.load(default, {**small, "n_recommendations": most + 1}), data)
    # without stage 6 a list may be shorter than asked: stage 4 shows what there is
    quiet = {**small, "n_recommendations": most + 1, "online": {"enabled": False}}
    assert len(config.make_split(Config.load(default, quiet), data)) == 3


def test_backend_spark_and_model_sparkals_imply_each_other(tmp_path):
    assert Config.load(write(tmp_path, "backend: spark\n"))["model"] == "SparkALS"
    assert Config.load(write(tmp_path, "model: SparkALS\n"))["backend"] == "spark"
    local = write(tmp_path, "model: SVD\n", "local.yaml")
    assert Config.load(local, {"backend": "spark"})["model"] == "SparkALS"
    assert Config.load(local, {"model": "SparkALS"})["backend"] == "spark"
    spark = write(tmp_path, "backend: spark\n", "spark.yaml")
    assert Config.load(spark, {"backend": "local", "model": "SVD"})["backend"] == "local"
    # a contradiction, in a file or on the command line, names both keys and the way out
    for path, overrides in ((write(tmp_path, "backend: spark\nmodel: SVD\n", "bad.yaml"), None),
                            (spark, {"model": "SVD"})):
        with pytest.raises(ReclabError) as error:
            Config.load(path, overrides)
        message = str(error.value)
        assert "key 'backend' is 'spark'" in message and "'SVD'" in message, message
        assert "set model: SparkALS" in message and str(path) in message, message
    with pytest.raises(ReclabError, match="key 'model' is 'SparkALS', which trains in Spark.*"
                                          "set backend: spark"):
        Config.load(spark, {"backend": "local"})


def test_backend_spark_refuses_tuning_other_models(tmp_path):
    # tune.models was ignored (stage 2 tuned SparkALS alone) while params.yaml recorded the list
    path = write(tmp_path, "backend: spark\ntune: {models: [SparkALS, EASE]}\n")
    with pytest.raises(ReclabError, match=r"key 'tune.models' is \['SparkALS', 'EASE'\], but backend "
                                          r"'spark' tunes only SparkALS, not EASE; .*backend: local"):
        Config.load(path)
    with pytest.raises(ReclabError, match="key 'tune.models'"):
        Config.load(write(tmp_path, "tune: {models: [ImplicitALS, EASE]}\n", "local.yaml"),
                    {"backend": "spark", "tune.models": ["ImplicitALS", "EASE"]})
    # its own model alone is fine, and --set backend=spark empties a file's list (model implied)
    assert Config.load(write(tmp_path, "backend: spark\ntune: {models: [SparkALS]}\n", "own.yaml"))
    assert Config.load(tmp_path / "local.yaml", {"backend": "spark"}).tuned_models() == ["SparkALS"]


def test_grid_search_of_a_range_is_refused_before_running(tmp_path):
    path = write(tmp_path, "models: {SVD: {space: {factors: [8, 16], user_reg: {type: real, low: 1.0, "
                           "high: 100.0, prior: log-uniform}}}}\nmodel: SVD\n")
    assert Config.load(path)["tune"]["method"] == "smbo"     # a range is fine for smbo
    with pytest.raises(ReclabError) as error:
        Config.load(path, {"tune.method": "grid"})
    message = str(error.value)
    assert "key 'models.SVD.space.user_reg'" in message and str(path) in message, message
    assert "is a real range from 1.0 to 100.0" in message, message
    assert "'grid' needs a list of values" in message and "user_reg: [1.0, 10.0, 100.0]" in message
    grid = write(tmp_path, "model: SVD\ntune: {method: grid}\n"
                           "models: {SVD: {space: {factors: [8, 16], user_reg: [1.0, 10.0]}}}\n", "grid.yaml")
    assert config.tune_options(Config.load(grid))["n_trials"] is None      # a grid runs whole
    with pytest.raises(ReclabError, match=r"key 'models\.ImplicitALS\.space\.factors' is an integer "
                                          r"range from 8 to 128.*factors: \[8, 32, 128\]"):
        Config.load(PROJECT / "params" / "default.yaml", {"tune.method": "grid"})


def test_tuning_a_model_without_hyperparameters_is_refused_before_running():
    default = PROJECT / "params" / "default.yaml"
    # Popularity has no parameters at all: say so, not "declare at least one parameter".
    popularity = Config.loads(default.read_text(), str(default), overrides={"model": "Popularity"})
    for check in (lambda: config.check_searchable(popularity, str(default)),
                  lambda: config.tune_search(popularity)):
        with pytest.raises(ReclabError, match=r"Popularity has no hyperparameters, so stage 2 \(tuning\) has "
                                              r"nothing to search for it; stage 5 already scores it"):
            check()
    both = Config.load(default, {"tune.models": ["ImplicitALS", "Popularity"], "baselines": ["Bias"]})
    with pytest.raises(ReclabError, match=r"add it to 'baselines'.*'tune.models' without Popularity"):
        config.check_searchable(both, str(default))
    config.check_searchable(Config.load(default, {"baselines": ["Popularity"]}), str(default))


def test_a_tuned_model_whose_space_the_file_leaves_empty_is_refused_with_an_example(tmp_path):
    path = write(tmp_path, "model: SVD\nmodels: {SVD: {params: {factors: 8}}}\n")
    loaded = Config.load(path)   # a valid file: only stage 2 needs a space
    config.check_runnable(loaded, str(path))
    with pytest.raises(ReclabError, match=r"key 'models\.SVD\.space' is empty, but stage 2 tunes SVD"):
        config.tune_search(loaded)   # the tune notebook run alone
    with pytest.raises(ReclabError) as error:
        config.check_searchable(loaded, str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: key 'models.SVD.space' is empty, but stage 2 tunes SVD"), message
    # the example is params/default.yaml's space for SVD without the fixed factors, written so
    # that --set reads it back
    example = message.partition("--set '")[2].partition("'")[0]
    key, value = next(iter(config.parse_assignments([example]).items()))
    default = Config.load(PROJECT / "params" / "default.yaml").models["SVD"].space
    assert key == "models.SVD.space" and "factors" in default
    assert value == {param: spec for param, spec in default.items() if param != "factors"}
    assert Config.load(path, {key: value}).models["SVD"].space == value
    # a model list names the first model without one
    listed = Config.load(path, {"tune.models": ["EASE", "SVD"],
                                "models.EASE.space": {"regularization": [100.0, 400.0]}})
    with pytest.raises(ReclabError, match=r"key 'models\.SVD\.space' is empty"):
        config.check_searchable(listed, str(path))


def test_tune_and_evaluation_options():
    loaded = Config.load(PROJECT / "params" / "default.yaml")
    assert config.tune_options(loaded)["n_jobs"] == 1
    options = config.evaluation_options(loaded)
    assert options["k"] == tuple(loaded["k"]) and options["seed"] == loaded["seed"]


def test_shipped_files_are_plain_yaml_mappings():
    for path in SHIPPED:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(raw, dict) and set(raw) <= set(Config.model_fields)


def test_an_unknown_dataset_fails_when_read_naming_the_known_ones(tmp_path):
    """A typo such as ml-100K fails before any stage runs (no FAILED pipeline to resume)."""
    with pytest.raises(ReclabError, match=r"'dataset' must be one of \['synthetic', 'ml-100k'.*"
                                          r"got 'ml-100K'"):
        Config.load(write(tmp_path, "dataset: ml-100K\n"))
    assert Config.load(write(tmp_path, "dataset: ml-100k\n"))["dataset"] == "ml-100k"


def test_split_k_is_now_held_out_per_user_and_the_old_name_is_still_read(tmp_path):
    """Top-level `k` is the metric cut-offs; the count leave_k_out holds out per user has its own
    name. Files and the params.yaml of earlier pipelines that say split.k still load."""
    new = Config.load(write(tmp_path, "split: {method: leave_k_out, held_out_per_user: 3}\n"))
    old = Config.load(write(tmp_path, "split: {method: leave_k_out, k: 3}\n", "old.yaml"))
    assert new == old and new.split.held_out_per_user == 3 and "split.k" not in new.flatten()
    with pytest.raises(ReclabError, match="'split.k' is the old name of 'split.held_out_per_user'"):
        Config.load(write(tmp_path, "split: {k: 3, held_out_per_user: 3}\n", "both.yaml"))
    data = config.load_data(Config.from_values({"synthetic": {"n_users": 60, "n_items": 80, "n_ratings": 2000}}))
    train, valid, test = config.make_split(new, data)
    assert test.user_counts().max() == 3 and valid.user_counts().max() == 3


def test_vocabularies_and_defaults_come_from_the_modules_that_own_them():
    from reclab import datasets, split, tuning

    defaults = Config()
    assert defaults.tune.n_trials is None and defaults.tune.method == "smbo"   # tune()'s own defaults
    assert defaults.evaluation.n_bootstrap == 1000 and defaults.k == [5, 10, 20]
    assert Config.from_values({"tune": {"metric": "coverage@10"}}).tune.metric == "coverage@10"
    for key, values in (("dataset", datasets.NAMES), ("split.method", split.METHODS),
                        ("tune.method", tuning.METHODS), ("tune.estimator", tuning.ESTIMATORS)):
        section, _, name = key.rpartition(".")
        fields = (Config.model_fields[section].annotation if section else Config).model_fields
        assert set(values) <= set(fields[name].json_schema_extra["choices"]), key


def test_dataset_file_reads_the_ratings_file_its_section_names(tmp_path):
    """``dataset: file``: the path is relative to the parameter file's folder (one given with --set
    to the working folder), the run and its MLflow datasets are named after the file, only then is
    the section logged, and a missing path, a temporal split without timestamps, a missing file
    or column are refused before anything runs, naming the key."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.tsv").write_text("who\twhat\tstars\n1\t10\t4\n1\t11\t2\n2\t10\t5\n")
    (tmp_path / "params").mkdir()
    path = write(tmp_path / "params", "dataset: file\nfile: {path: ../data/mine.tsv, user: who, "
                                      "item: what, rating: stars, sep: \"\\t\"}\n")
    loaded = Config.load(path)
    assert Path(loaded.file.path) == tmp_path / "params" / ".." / "data" / "mine.tsv"
    assert loaded.dataset_name == "mine.tsv" and loaded.file.header is True
    assert config.load_data(loaded).matrix.toarray().tolist() == [[4.0, 2.0], [5.0, 0.0]]
    config.check_runnable(loaded, str(path))
    flat = loaded.flatten()
    assert flat["file.user"] == "who" and flat["file.sep"] == "\t"
    assert not any(key.startswith("file.") for key in Config.load(write(tmp_path, "{}\n")).flatten())
    given = Config.load(path, {"file.path": "data/mine.tsv"})
    assert given.file.path == "data/mine.tsv" and given.file.user == "who"
    # data_dir likewise (it was relative to the working folder, unlike file.path beside it)
    located = Config.load(write(tmp_path / "params", "data_dir: ../data\n", "dir.yaml"))
    assert Path(located.data_dir) == tmp_path / "params" / ".." / "data"
    assert Config.load(path, {"data_dir": "data"}).data_dir == "data"
    with pytest.raises(ReclabError, match=r"key 'file.path' is not set, but dataset is 'file'"):
        Config.load(write(tmp_path, "dataset: file\n"))
    with pytest.raises(ReclabError, match=r"key 'split.method' is 'temporal', .* but file.timestamp is null"):
        Config.load(path, {"split.method": "temporal"})
    with pytest.raises(ReclabError, match=r"key 'baselines' names ContentKNN, which scores items from "
                                          r"their content features, but the ratings file has none"):
        Config.load(path, {"baselines": ["Popularity", "ContentKNN"]})
    with pytest.raises(ReclabError, match=r"key 'file.genres' is 'kind', .* but file.items is null"):
        Config.load(path, {"file.genres": "kind"})
    with pytest.raises(ReclabError, match=r"key 'baselines' names Bias, which learns rating biases, but "
                                          r"file.rating is null"):
        Config.load(path, {"file.rating": None})
    implicit = {"file.rating": None, "baselines": ["Popularity"]}
    assert Config.load(path, implicit).file.rating is None
    with pytest.raises(ReclabError, match=r"key 'evaluation.relevance_threshold' is 4.0, but file.rating "
                                          r"is null .* so no test interaction would be relevant"):
        Config.load(path, {**implicit, "evaluation.relevance_threshold": 4})   # failed in stage 2
    for override, problem in (({"file.user": "user"}, r"user column 'user' not found; columns are "
                                                      r"\['who', 'what', 'stars'\]"),
                              ({"file.path": str(tmp_path / "nothere.csv")}, r"ratings file .* not found")):
        with pytest.raises(ReclabError, match=rf"key 'file' does not give ratings: .*{problem}"):
            config.check_runnable(Config.load(path, override), str(path))


def test_dataset_file_with_an_items_file_gives_titles_and_genre_features(tmp_path):
    """``file.items`` (relative to the parameter file, as ``file.path``) adds the titles and, with
    ``file.genres``, the genre features that ContentKNN reads, which is then allowed."""
    (tmp_path / "ratings.csv").write_text("who,what,stars\n1,10,4\n1,11,2\n2,10,5\n")
    (tmp_path / "things.csv").write_text("what,name,kinds\n10,Ten,Drama|War\n11,Eleven,\n12,Unrated,Drama\n")
    path = write(tmp_path, "dataset: file\nfile: {path: ratings.csv, user: who, item: what, rating: stars, "
                           "items: things.csv, title: name, genres: kinds}\nmodel: ContentKNN\n"
                           "models: {ContentKNN: {space: {rating_weight: {type: real, low: 0.0, high: 1.0}}}}\n")
    loaded = Config.load(path)
    assert Path(loaded.file.items) == tmp_path / "things.csv"
    data = config.load_data(loaded)
    assert data.titles([0, 1]).tolist() == ["Ten", "Eleven"]
    assert list(data.item_feature_names) == ["genre=Drama", "genre=War"]
    assert data.item_features.toarray().tolist() == [[1.0, 1.0], [0.0, 0.0]]
    config.check_runnable(loaded, str(path))
    with pytest.raises(ReclabError, match=r"key 'file' does not give ratings: .*things.csv: genres column "
                                          r"'genre' not found; columns are \['what', 'name', 'kinds'\]"):
        config.check_runnable(Config.load(path, {"file.genres": "genre"}), str(path))
