"""Every model against the shared contract checks of tests/model_contract.py."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

import reclab as rl
import reclab.models as models
from model_contract import CHECKS, contract_data
from reclab.errors import ReclabError
from reclab.models.base import FactorModel, check_float, check_int, check_seed
from reclab.models.persistence import digest as _digest

FACTORIES = {
    "Popularity": lambda: models.Popularity(),
    "Bias": lambda: models.Bias(),
    "ItemKNN": lambda: models.ItemKNN(neighbors=5),
    "SVD": lambda: models.SVD(factors=4, seed=0),
    "ExplicitALS": lambda: models.ExplicitALS(factors=8, iterations=3),
    "ImplicitALS": lambda: models.ImplicitALS(factors=8, iterations=3),
    "ContentKNN": lambda: models.ContentKNN(),
    "HybridALS": lambda: models.HybridALS(factors=8, iterations=3),
    "EASE": lambda: models.EASE(regularization=5.0),
    "RP3beta": lambda: models.RP3beta(neighbors=5),
    "PureSVD": lambda: models.PureSVD(factors=4),
}


@pytest.fixture(scope="module")
def data():
    return contract_data()


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__ for check in CHECKS])
def test_contract(check, name, data, tmp_path):
    check(FACTORIES[name], data, tmp_path)


def test_every_model_class_is_checked():
    exported = {name for name in models.__all__
                if isinstance(getattr(models, name), type) and name not in ("Recommender", "FactorModel")}
    assert exported <= set(FACTORIES), f"models without contract checks: {exported - set(FACTORIES)}"


# -- base-class behaviour that does not depend on the model ---------------------------------------


class _ToyFactors(FactorModel):
    """A two-iteration factor model with fixed factors, to exercise fit reporting."""

    def __init__(self, iterations=2):
        self.iterations = iterations

    def _validate_params(self):
        check_int("iterations", self.iterations, low=1, model=self)

    def _fit(self, train, report):
        self.user_factors_ = np.ones((train.n_users, 1), np.float32)
        self.item_factors_ = np.arange(train.n_items, dtype=np.float32)[:, None]
        for iteration in range(1, self.iterations + 1):
            report(iteration, 1.0 / iteration if report.wants_loss else None)


@pytest.mark.parametrize("name", ["SVD", "PureSVD", "ItemKNN", "ImplicitALS"])
def test_similarities_stay_within_minus_one_and_one(name):
    """Two items rated alike: each is the other's most similar, at 1 and not above (the cosine of
    float32 factors gave 1.0000001 for SVD and PureSVD on some of these seeds)."""
    for seed in range(12):
        rng = np.random.default_rng(seed)
        ratings = (rng.random((40, 12)) < 0.4) * rng.integers(1, 6, size=(40, 12)).astype(float)
        ratings[:, 5] = ratings[:, 4]
        model = FACTORIES[name]().fit(rl.Interactions.from_matrix(sp.csr_matrix(ratings)))
        ids, scores = model.similar_items(np.arange(12), n=11)
        assert -1.0 <= scores.min() and scores.max() <= 1.0, (seed, scores.max())
        assert ids[4, 0] == 5 and scores[4, 0] == pytest.approx(1.0, abs=1e-5), seed


def test_progress_goes_to_stderr_only_when_asked(data, capsys):
    _ToyFactors().fit(data)
    assert capsys.readouterr() == ("", "")
    calls = []
    _ToyFactors(iterations=3).fit(data, callback=lambda *args: calls.append(args), progress=True)
    out, err = capsys.readouterr()
    assert out == "" and err.count("_ToyFactors iteration") == 3 and "loss 0.5" in err
    assert [(i, loss) for i, _, loss in calls] == [(1, 1.0), (2, 0.5), (3, 1 / 3)]


def test_call_arguments_are_not_called_model_parameters(data):
    # filter_seen and progress are arguments of recommend and fit: "Popularity parameter
    # filter_seen" sent the reader to Popularity(...), which has no such parameter.
    model = models.Popularity()
    with pytest.raises(ReclabError, match="^progress must be True or False, got 1$"):
        model.fit(data, progress=1)
    with pytest.raises(ReclabError, match="^filter_seen must be True or False, got 'no'$"):
        model.fit(data).recommend(0, filter_seen="no")


def test_a_failed_refit_leaves_the_model_unfitted(data):
    model = models.SVD(factors=3).fit(data)
    with pytest.raises(ReclabError, match="factors=99"):
        model.set_params(factors=99).fit(data)
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(ReclabError, match="SVD is not fitted; call fit\\(train\\) first"):
        model.predict(0, 0)


def test_set_params_names_the_valid_parameters():
    with pytest.raises(ReclabError, match=r"unknown parameter \['factor'\] for SVD; valid parameters are "
                                          r"\['factors', 'user_reg', 'item_reg', 'seed'\]"):
        models.SVD().set_params(factor=3)


def test_parameter_checks():
    assert check_int("factors", np.int64(4), low=1) == 4
    for bad in (True, 3.0, "3", 0):
        with pytest.raises(ReclabError, match="factors must be an integer"):
            check_int("factors", bad, low=1)
    for bad in (float("nan"), float("inf"), None, -0.1, 10**400):   # 10**400: an OverflowError
        with pytest.raises(ReclabError, match="reg must be"):
            check_float("reg", bad, low=0.0)
    with pytest.raises(ReclabError, match="> 0"):
        check_float("rate", 0.0, low=0.0, low_open=True)
    with pytest.raises(ReclabError, match="irreproducible"):
        check_seed(None)


def _write(path, meta, arrays):
    meta = dict(meta, sha256=_digest(meta, arrays))
    np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)


def test_load_rejects_what_is_not_a_known_model(data, tmp_path):
    with pytest.raises(FileNotFoundError):
        models.load(tmp_path / "missing.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ReclabError, match=r"plain.npy is not a readable reclab model file: not an .npz "
                                          r"archive \(it begins b'\\x93NUM'\)"):
        models.load(tmp_path / "plain.npy")
    (tmp_path / "ratings.csv").write_text("user,item,rating\n1,2,5\n")
    with pytest.raises(ReclabError, match=r"ratings.csv is not a readable reclab model file: not an "
                                          r"\.npz archive \(it begins b'user'\); a model file is what "
                                          r"model.save\(path\) writes$"):
        models.load(tmp_path / "ratings.csv")   # numpy's own error spoke of pickled data
    np.savez(tmp_path / "nometa.npz", x=np.zeros(3))
    with pytest.raises(ReclabError, match="no valid __meta__"):
        models.load(tmp_path / "nometa.npz")
    meta = {"format": "reclab-model", "version": 1, "class": "os.system", "params": {},
            "attributes": {}, "reclab_version": "0"}
    _write(tmp_path / "foreign.npz", meta, {})
    with pytest.raises(ReclabError, match="'os.system' model, which is not a known reclab model class"):
        models.load(tmp_path / "foreign.npz")
    _write(tmp_path / "future.npz", dict(meta, version=2, **{"class": "SVD"}), {})
    with pytest.raises(ReclabError, match="version 2"):
        models.load(tmp_path / "future.npz")
    # A consistent file whose parameters were edited (and re-hashed) must still match the class.
    _write(tmp_path / "params.npz", dict(meta, **{"class": "SVD", "params": {"rank": 3}}), {})
    with pytest.raises(ReclabError, match="takes \\['factors'"):
        models.load(tmp_path / "params.npz")


def test_load_detects_edited_parameters(data, tmp_path):
    path = models.Bias().fit(data).save(tmp_path / "bias.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    meta["params"]["user_reg"] = 0.0          # edited without updating the digest
    np.savez(tmp_path / "edited.npz", __meta__=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ReclabError, match="edited.npz failed its sha256 check"):
        models.load(tmp_path / "edited.npz")


def test_save_refuses_parameters_made_invalid_after_the_fit(data, tmp_path):
    """set_params after fit stores without checking: save wrote a file that load then refused."""
    model = models.EASE(regularization=10.0).fit(data).set_params(regularization=-5.0)
    with pytest.raises(ReclabError, match="EASE parameter regularization must be"):
        model.save(tmp_path / "ease.npz")
    assert not (tmp_path / "ease.npz").exists()
    models.load(model.set_params(regularization=10.0).save(tmp_path / "ease.npz"))
