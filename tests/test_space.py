"""Search spaces as data: the YAML schema, round trips, grids, sampling, and clear errors."""

import json

import numpy as np
import pytest
import yaml
from skopt.space import Categorical, Integer, Real

from reclab.errors import ReclabError
from reclab.models import ItemKNN
from reclab.space import check_values, grid_points, grid_size, parse_space, sample, space_to_dict

YAML_SPACE = """
factors: {type: int, low: 16, high: 256, prior: log-uniform}
regularization: {type: real, low: 1.0e-4, high: 1.0, prior: log-uniform}
alpha: {type: real, low: 1.0, high: 100.0, prior: log-uniform}
iterations: {type: int, low: 5, high: 30}
use_cg: {type: categorical, values: [true, false]}
"""


def test_the_documented_yaml_space_parses_to_named_dimensions():
    space = parse_space(yaml.safe_load(YAML_SPACE))
    assert list(space) == ["factors", "regularization", "alpha", "iterations", "use_cg"]
    factors = space["factors"]
    assert isinstance(factors, Integer) and (factors.low, factors.high) == (16, 256)
    assert factors.prior == "log-uniform" and factors.name == "factors"
    assert isinstance(space["regularization"], Real) and space["regularization"].low == 1e-4
    assert space["iterations"].prior == "uniform"          # the default prior
    assert isinstance(space["use_cg"], Categorical)
    assert list(space["use_cg"].categories) == [True, False]


def test_space_to_dict_round_trips_through_json():
    original = yaml.safe_load(YAML_SPACE)
    original["neighbors"] = [10, 20, 40]                    # list shorthand
    as_dict = space_to_dict(original)
    assert as_dict["neighbors"] == {"type": "categorical", "values": [10, 20, 40]}
    assert as_dict["iterations"] == {"type": "int", "low": 5, "high": 30, "prior": "uniform"}
    again = json.loads(json.dumps(as_dict))
    assert space_to_dict(again) == as_dict
    assert list(parse_space(again)) == list(original)


def test_skopt_dimensions_are_accepted_and_named_by_their_key():
    space = parse_space({"factors": Integer(8, 64, prior="log-uniform"),
                         "reg": Real(0.01, 1.0, name="reg"), "kind": Categorical(["a", "b"])})
    assert [dimension.name for dimension in space.values()] == ["factors", "reg", "kind"]
    assert space_to_dict(space)["factors"] == {"type": "int", "low": 8, "high": 64,
                                               "prior": "log-uniform"}
    with pytest.raises(ReclabError, match="named 'other'.*name it 'reg'"):
        parse_space({"reg": Real(0.01, 1.0, name="other")})
    with pytest.raises(ReclabError, match="log base 2"):
        parse_space({"reg": Real(0.01, 1.0, prior="log-uniform", base=2)})


@pytest.mark.parametrize("spec, message", [
    ({"type": "float", "low": 0.0, "high": 1.0}, r"'x': type must be one of \['int', 'real', 'categorical'\].*use 'real'"),
    ({"low": 0.0, "high": 1.0}, r"'x': type must be one of"),
    ({"type": "real", "low": 1.0, "high": 1.0}, r"'x': low must be below high, got low=1.0, high=1.0"),
    ({"type": "int", "low": 30, "high": 5}, r"'x': low must be below high, got low=30, high=5"),
    ({"type": "real", "low": 0.0, "high": 1.0, "prior": "log-uniform"},
     r"'x': prior 'log-uniform' needs low > 0, got low=0.0"),
    ({"type": "int", "low": -3, "high": 10, "prior": "log-uniform"}, r"needs low > 0, got low=-3"),
    ({"type": "real", "low": 0.1, "high": 1.0, "step": 0.1}, r"'x': unknown key \['step'\] for type 'real'; its keys are"),
    ({"type": "categorical", "values": [1, 2], "prior": "uniform"}, r"unknown key \['prior'\]"),
    ({"type": "real", "low": 0.1, "high": 1.0, "prior": "normal"}, r"prior must be one of \['uniform', 'log-uniform'\]"),
    ({"type": "real", "low": "1e-4", "high": 1.0}, r"low must be a number, got the string '1e-4'.*write 1.0e-4"),
    ({"type": "int", "low": 1.5, "high": 10}, r"low must be an integer for type 'int', got 1.5"),
    ({"type": "real", "low": float("nan"), "high": 1.0}, r"low must be a finite number"),
    ({"type": "int", "high": 10}, r"type 'int' needs low"),
    ({"type": "categorical"}, r"needs values"),
    ({"type": "categorical", "values": []}, r"values is an empty list"),
    ([1, 2, 1], r"values lists 1 twice"),
    ([[1, 2], [3]], r"values must be strings, numbers, booleans or null"),
    (5, r"'x': must be a mapping.*A fixed value is a model parameter"),
])
def test_bad_specs_raise_naming_the_parameter_and_the_fix(spec, message):
    with pytest.raises(ReclabError, match=message):
        parse_space({"x": spec})


def test_yaml_number_without_dot_is_caught():
    # PyYAML reads 1e-4 (no dot) as a string: the classic trap of YAML search spaces.
    spec = yaml.safe_load("reg: {type: real, low: 1e-4, high: 1.0}")
    with pytest.raises(ReclabError, match="'reg': low must be a number, got the string '1e-4'"):
        parse_space(spec)


@pytest.mark.parametrize("text", ["1e3", "1.0e3", "1E3", "1e-4", "-2e-3"])
def test_yaml_number_hint_is_a_spelling_yaml_reads_as_that_number(text):
    # PyYAML needs a dot and a signed exponent: the hint said "write 1.0e3" for 1e3, a string too.
    spec = yaml.safe_load(f"reg: {{type: real, low: {text}, high: 5.0}}")   # low: a string
    with pytest.raises(ReclabError, match=r"write (\S+)$") as error:
        parse_space(spec)
    written = str(error.value).rsplit("write ", 1)[1]
    assert yaml.safe_load(written) == float(text), written


def test_check_values_refuses_a_value_the_model_refuses():
    model = ItemKNN()
    check_values({"neighbors": [5, 50], "shrinkage": {"type": "real", "low": 0.0, "high": 100.0}}, model)
    # A YAML list of exponent numbers is a list of strings: every trial at them failed.
    with pytest.raises(ReclabError, match=r"'shrinkage': value '1e2' is refused by ItemKNN: .*got '1e2'; "
                                          r"YAML reads .* write 1.0e\+2"):
        check_values(yaml.safe_load("shrinkage: [0.0, 1e2]"), model)
    with pytest.raises(ReclabError, match=r"'neighbors': low 5.0 is refused by ItemKNN: .*must be an integer"):
        check_values({"neighbors": {"type": "real", "low": 5.0, "high": 50.0}}, model)
    with pytest.raises(ReclabError, match=r"'neighbors': value 0 is refused by ItemKNN"):
        check_values({"neighbors": [0, 10]}, model)


def test_bad_space_containers_raise():
    with pytest.raises(ReclabError, match="space is empty"):
        parse_space({})
    with pytest.raises(ReclabError, match="must be a mapping of parameter name"):
        parse_space([("x", [1, 2])])
    with pytest.raises(ReclabError, match="keys must be parameter names"):
        parse_space({"not a name": [1, 2]})


def test_int_bounds_beyond_int64_are_refused():
    # scikit-optimize's integers are int64: it raised a TypeError for these.
    for high in (2**64, 1e300):
        with pytest.raises(ReclabError, match=r"'n': high must be a 64-bit integer"):
            parse_space({"n": {"type": "int", "low": 1, "high": high}})


def test_true_and_one_are_different_categorical_values():
    assert parse_space({"x": [True, 1, 1.0]})["x"].categories == (True, 1, 1.0)


def test_grid_is_the_cartesian_product_in_declared_order():
    space = {"b": [2, 1], "a": ["x", "y", "z"], "c": [True]}
    points = grid_points(space)
    assert grid_size(space) == 6 == len(points)
    assert points == [{"b": b, "a": a, "c": True} for b in (2, 1) for a in ("x", "y", "z")]
    assert all(list(point) == ["b", "a", "c"] for point in points)


def test_grid_of_a_range_is_refused():
    with pytest.raises(ReclabError, match=r"grid search needs a list of values.*\['factors'\] is a range"):
        grid_points({"factors": {"type": "int", "low": 8, "high": 64}, "reg": [0.1, 1.0]})


def test_sample_respects_bounds_and_priors():
    space = {"factors": {"type": "int", "low": 16, "high": 256, "prior": "log-uniform"},
             "reg": {"type": "real", "low": 1.0e-4, "high": 1.0, "prior": "log-uniform"},
             "iterations": {"type": "int", "low": 5, "high": 8},
             "frac": {"type": "real", "low": 0.0, "high": 1.0},
             "use_cg": [True, False]}
    points = sample(space, 2000, seed=3)
    factors = np.array([p["factors"] for p in points])
    reg = np.array([p["reg"] for p in points])
    iterations = np.array([p["iterations"] for p in points])
    frac = np.array([p["frac"] for p in points])
    assert all(type(p["factors"]) is int and type(p["reg"]) is float and type(p["use_cg"]) is bool
               for p in points)
    assert factors.min() >= 16 and factors.max() <= 256
    assert set(iterations) == {5, 6, 7, 8}                  # both bounds are included
    assert reg.min() >= 1e-4 and reg.max() <= 1.0
    # log-uniform over 4 decades: about a quarter in each, where a uniform prior would put
    # 0.01% of the draws below 1e-3.
    decades = np.histogram(np.log10(reg), bins=[-4, -3, -2, -1, 0])[0] / reg.size
    np.testing.assert_allclose(decades, 0.25, atol=0.04)
    assert np.mean(factors < 62) == pytest.approx(0.5, abs=0.05)   # 62 ~ sqrt(16 * 256)
    assert np.mean(frac < 0.5) == pytest.approx(0.5, abs=0.05)
    assert np.mean([p["use_cg"] for p in points]) == pytest.approx(0.5, abs=0.05)


def test_sample_is_seeded_and_prefix_stable():
    space = {"reg": {"type": "real", "low": 0.01, "high": 1.0, "prior": "log-uniform"},
             "k": [1, 2, 3]}
    assert sample(space, 20, seed=5) == sample(space, 20, seed=5)
    assert sample(space, 20, seed=5)[:7] == sample(space, 7, seed=5)
    assert sample(space, 20, seed=5) != sample(space, 20, seed=6)
