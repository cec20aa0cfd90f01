"""Simulated online evaluation (reclab.online): calibration of both tests under A/A, the known
answers of the synthetic world (ImplicitALS beats Popularity, the oracle beats both, interleaving
needs fewer users than an A/B test), team-draft crediting on hand-made lists, reproducibility and
clear errors.

The models are fitted once per module on an 80/20 split of the default synthetic data; the
simulations reuse each arm's lists, so 1,000 A/A tests take about a second.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import reclab as rl
from reclab.errors import ReclabError
from reclab.online import World, ab_test, interleave, offline_vs_online, sensitivity


@pytest.fixture(scope="module")
def split(synthetic_data):
    return rl.split.random_holdout(synthetic_data, test_frac=0.2, seed=42)


@pytest.fixture(scope="module")
def world(split):
    return World.from_truth(split[0])


@pytest.fixture(scope="module")
def models(split):
    train = split[0]
    return {"Popularity": rl.models.Popularity().fit(train), "ItemKNN": rl.models.ItemKNN().fit(train),
            "ImplicitALS": rl.models.ImplicitALS(factors=64, seed=0).fit(train)}


# -- calibration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ab", "interleaving"])
def test_aa_tests_reject_at_the_nominal_rate(world, models, method):
    same = models["ImplicitALS"]
    result = sensitivity(world, {"A": same, "B": same}, n_users=600, n_simulations=1000,
                         methods=[method], seed=0)
    assert result.better is None
    rate = result.table["rejection_rate"].item()
    assert 0.03 <= rate <= 0.07, f"{method}: {rate:.3f} of 1,000 A/A tests gave p < 0.05"


# -- the known answers of the synthetic world ---------------------------------------------------
def test_implicit_als_beats_popularity_and_the_oracle_beats_both(world, models):
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"],
            "oracle": world.oracle()}
    ab = ab_test(world, arms, n_users=5000, seed=0)
    assert ab.p_values["ImplicitALS"] < 0.01 and ab.lift["ImplicitALS"] > 0
    assert ab.lift_ci["ImplicitALS"][0] > 0
    table = ab.table
    assert table["users"].sum() == 5000 and set(table["users"]) <= {1666, 1667}
    assert table.loc["oracle", "ctr"] > table.loc["ImplicitALS", "ctr"] > table.loc["Popularity", "ctr"]
    # the oracle beats the better model in a test of its own, and the truth agrees with the simulation
    head_to_head = ab_test(world, {"ImplicitALS": models["ImplicitALS"], "oracle": world.oracle()},
                           n_users=5000, seed=0)
    assert head_to_head.p_value < 0.01 and head_to_head.lift["oracle"] > 0
    inside = (table["ctr_ci_low"] <= table["expected_ctr"]) & (table["expected_ctr"] <= table["ctr_ci_high"])
    assert inside.sum() >= 2
    assert np.isfinite(ab.users_needed["ImplicitALS"]) and ab.users_needed["ImplicitALS"] < 5000
    # the oracle against Popularity: a p-value below what a float holds is not printed as 0
    assert ab.p_values["oracle"] == 0.0 and str(ab).endswith(", p<1e-300")


def test_interleaving_prefers_implicit_als_to_itemknn(world, models):
    result = interleave(world, {"ItemKNN": models["ItemKNN"], "ImplicitALS": models["ImplicitALS"]},
                        n_users=3000, seed=0)
    assert result.p_value < 0.01 and result.preference > 0 and result.preference_ci[0] > 0
    assert result.wins["ImplicitALS"] > result.wins["ItemKNN"]
    assert sum(result.wins.values()) + result.ties == 3000
    assert result.table.loc["(tie)", "visits"] == result.ties


def test_interleaving_reaches_80_percent_power_with_fewer_users(world, models):
    result = sensitivity(world, {"ItemKNN": models["ItemKNN"], "ImplicitALS": models["ImplicitALS"]},
                         n_users=[50, 100, 150, 200, 300, 450], n_simulations=300, seed=0)
    assert result.better == "ImplicitALS"
    for method in ("ab", "interleaving"):
        power = result.table.loc[result.table["method"] == method, "power"].to_numpy()
        assert power[-1] >= 0.8 and power[0] < 0.8, (method, power)
    assert np.isfinite(result.users_needed["ab"])
    assert (result.table["reversed"] <= 0.05).all()   # hardly ever the worse arm
    assert result.users_needed["interleaving"] < result.users_needed["ab"]
    assert result.ratio() > 1


def test_team_draft_credits_the_arm_that_contributed_the_clicked_item():
    # One item is always clicked when seen (utility +50), every other never (-50), and every rank is
    # examined (position_bias 0). Item 0 is first in A's list and absent from B's top 3: A picks it
    # in the first round of every visit, so A wins every visit.
    utility = np.full((4, 8), -50.0)
    utility[:, 0] = 50.0
    world = World(utility, position_bias=0.0)
    rank_a = World(-np.arange(8.0)[None, :].repeat(4, axis=0))       # lists 0 1 2
    rank_b = World(np.arange(8.0)[None, :].repeat(4, axis=0))        # lists 7 6 5
    result = interleave(world, {"A": rank_a.oracle(), "B": rank_b.oracle()}, n_users=200, n=3)
    assert result.wins == {"A": 200, "B": 0} and result.clicks == {"A": 200, "B": 0}
    # the same lists on both sides: whoever picks item 0 gets the click, a fair coin decides
    same = interleave(world, {"A": rank_a.oracle(), "B": rank_a.oracle()}, n_users=2000, n=3, seed=3)
    assert same.ties == 0 and abs(same.wins["A"] - 1000) < 4 * np.sqrt(500)


# -- worlds ---------------------------------------------------------------------------------------
def test_users_with_fewer_unseen_items_than_a_list_are_left_out_of_the_simulation():
    """A user who has seen all but 2 of the items cannot be shown a top-5 list: the tests
    simulate the other users, exactly as in a world without that user, and say so."""
    rng = np.random.default_rng(0)
    utility = rng.normal(size=(30, 12))
    seen = (rng.random((30, 12)) < 0.2).astype(np.float32)
    seen[0, 2:] = 1.0
    noise = np.random.default_rng(1).normal(size=utility.shape)

    def world_and_arms(rows):
        world = World(utility[rows], seen=sp.csr_matrix(seen[rows]))
        other = World(utility[rows] + noise[rows], seen=sp.csr_matrix(seen[rows]))
        return world, {"oracle": world.oracle(), "noisy": other.oracle()}

    full, rest = world_and_arms(slice(None)), world_and_arms(slice(1, None))
    left_out = "1 of the 30 users have fewer than n=5 unseen items and are left out of the simulation"
    with pytest.warns(RuntimeWarning, match=left_out):
        got = ab_test(*full, n_users=400, n=5, seed=3)
    pd.testing.assert_frame_equal(got.table, ab_test(*rest, n_users=400, n=5, seed=3).table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # said once per world and n: not again for the next test
        got = interleave(*full, n_users=400, n=5, seed=3)
    assert got.wins == interleave(*rest, n_users=400, n=5, seed=3).wins
    with pytest.warns(RuntimeWarning, match=left_out):   # a world of its own says it again
        interleave(*world_and_arms(slice(None)), n_users=400, n=5, seed=3)
    most = int(12 - (seen > 0).sum(axis=1).min())
    with pytest.raises(ReclabError, match=rf"no user has n=13 unseen items .*; use n <= {most}"):
        ab_test(*full, n_users=400, n=13)


def test_a_world_from_a_model_has_that_model_as_its_oracle(split, models):
    train = split[0]
    model = models["ItemKNN"]
    world = World.from_model(model, train)
    users = np.arange(0, train.n_users, 7)
    assert np.array_equal(world.oracle().recommend(users, n=10)[0], model.recommend(users, n=10)[0])
    assert np.allclose(world.utility.std(axis=1), 2.0, atol=1e-3)


def test_a_world_from_a_model_refuses_a_model_without_scores_or_fitted_on_other_data(split, world):
    """World.from_model(world.oracle(), train) failed with AttributeError: 'Oracle' object has
    no attribute 'score_items'; a model fitted on other data was refused with the advice of an
    arm, to fit it 'on the data the world was made from (or World.align(train))', a world that
    from_model had not made yet."""
    train = split[0]
    with pytest.raises(ReclabError, match=r"world model must be a fitted model with recommend\(\) and "
                                          r"score_items\(\), got Oracle"):
        World.from_model(world.oracle(), train)
    other = rl.models.Popularity().fit(rl.datasets.synthetic(n_users=50, n_items=60, n_ratings=900))
    with pytest.raises(ReclabError, match=r"^world model: Popularity was fitted on 50 users x 60 items, "
                                          rf"but data has {train.n_users} x {train.n_items}; fit it on data$"):
        World.from_model(other, train)


def test_the_oracle_checks_its_users_as_a_model_does(world):
    """Oracle.recommend cast the users to int64: user 1.5 was given user 1's list, 'a' raised
    ValueError, a 2-D array scipy's IndexError; a model's recommend refuses them all."""
    oracle = world.oracle()
    for users, message in (([1.5], r"users must be integer user indices 0\.\.942, got float64 values \[1\.5\]"),
                           (["a"], r"users must be integer user indices 0\.\.942, got <U1 values \['a'\]"),
                           (np.array([[0, 1]]), r"users must be one index or a 1-D array of indices, got shape \(1, 2\)"),
                           ([0, 943, -1], r"unknown user indices \[-1, 943\] for the oracle: valid user indices "
                                          r"are 0\.\.942 \(943 users in the world\)")):
        with pytest.raises(ReclabError, match=message):
            oracle.recommend(users, n=3)
    ids, utilities = oracle.recommend(np.uint8(4), n=3)
    assert ids.shape == (3,) and np.array_equal(ids, oracle.recommend([4], n=3)[0][0])


def test_align_follows_the_ids_of_filtered_data(synthetic_data):
    world = World.from_truth(synthetic_data)
    kept = rl.preprocess.kcore(synthetic_data, min_user=5, min_item=20)
    assert kept.truth is None and kept.n_items < synthetic_data.n_items
    aligned = world.align(kept)
    users = pd.Index(synthetic_data.user_ids).get_indexer(kept.user_ids)
    items = pd.Index(synthetic_data.item_ids).get_indexer(kept.item_ids)
    assert np.array_equal(aligned.utility, world.utility[np.ix_(users, items)])
    assert (aligned.seen != kept.matrix).nnz == 0


def test_offline_vs_online_ranks_the_models(world, models, split):
    result = offline_vs_online(world, models, split[0], split[1], k=10, n_users=6000, seed=0)
    table = result.table
    assert list(table.index) == list(models)
    assert table["offline_rank"].to_dict() == {"ImplicitALS": 1, "ItemKNN": 2, "Popularity": 3}
    assert result.spearman_expected == pytest.approx(1.0)
    assert -1.0 <= result.spearman <= 1.0 and result.metric == "precision@10"
    # 3 models in perfect agreement: 2 of the 6 orderings agree as much (scipy's t said p = 0)
    assert result.spearman == 1.0 and result.spearman_p_value == pytest.approx(1 / 3)
    assert result.spearman_text() == "+1.00 (p=0.33)"


def test_offline_vs_online_of_models_with_equal_offline_scores_says_why_there_is_no_correlation(
        world, models, split):
    same = {name: models["Popularity"] for name in ("a", "b", "c")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no scipy ConstantInputWarning in the stage's output
        result = offline_vs_online(world, same, split[0], split[1], k=10, n_users=600, seed=0)
    assert np.isnan(result.spearman) and np.isnan(result.spearman_expected)
    assert result.spearman_text() == "undefined (every model has the same offline precision@10)"


def test_users_needed_in_words_says_when_the_target_is_not_reached_or_reached_at_once(world, models):
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"]}
    few = sensitivity(world, arms, n_users=[10, 20], n_simulations=20, seed=0)
    assert few.users_needed["ab"] == np.inf
    assert few.needed_text("ab") == "more than 20 (the most simulated)"
    many = sensitivity(world, arms, n_users=[4000, 8000], n_simulations=20, seed=0)
    assert many.users_needed["interleaving"] == 4000
    assert many.needed_text("interleaving") == "at most 4,000"


def test_interleaving_that_prefers_the_arm_with_the_lower_ctr_says_so():
    """Interleaving counts per-visit wins of the arms' top items; an A/B test counts clicks on
    each arm's whole list. A's top two items each attract 0.5, B's 0.6 and 0: A's list has the
    higher CTR (0.375 against 0.3 with examination 1 and 1/2), but an interleaved list of 2 shows
    each arm's top item only, and B's wins. Its power for the better arm (A) stays 0: the result
    says which arm it prefers instead."""
    logit = np.log(0.6 / 0.4)
    world = World(np.tile([logit, 0.0, 0.0, -100.0], (3, 1)), threshold=0.0)
    arms = {"B": World(np.tile([3.0, 0.0, 0.0, 2.0], (3, 1))).oracle(),   # lists items 0, 3
            "A": World(np.tile([0.0, 3.0, 2.0, -1.0], (3, 1))).oracle()}  # lists items 1, 2
    assert world.expected_ctr(arms["A"], n=2) == pytest.approx(0.375)
    assert world.expected_ctr(arms["B"], n=2) == pytest.approx(0.3)
    result = sensitivity(world, arms, n_users=[500, 2000], n=2, n_simulations=40, methods=["interleaving"],
                         seed=0)
    assert result.better == "A"
    table = result.table
    assert table["power"].max() == 0 and table["reversed"].iloc[-1] >= 0.9
    assert np.allclose(table["rejection_rate"], table["power"] + table["reversed"])
    assert result.needed_text("interleaving") == (
        f"more than 2,000 (the most simulated); it prefers B instead in "
        f"{table['reversed'].iloc[-1]:.0%} of the tests at 2,000 users")


def test_same_seed_same_result_to_the_last_digit(world, models):
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"]}
    first, again = ab_test(world, arms, n_users=999, seed=5), ab_test(world, arms, n_users=999, seed=5)
    pd.testing.assert_frame_equal(first.table, again.table, check_exact=True)
    assert first.p_value == again.p_value
    other = ab_test(world, arms, n_users=999, seed=6)
    assert not first.table["clicks"].equals(other.table["clicks"])
    a = interleave(world, arms, n_users=999, seed=5)
    assert vars(a) == vars(interleave(world, arms, n_users=999, seed=5))
    grid = dict(n_users=[20, 40], n_simulations=20, seed=2)
    pd.testing.assert_frame_equal(sensitivity(world, arms, **grid).table,
                                  sensitivity(world, arms, **grid).table, check_exact=True)


# -- errors ---------------------------------------------------------------------------------------
def test_bad_inputs_say_what_is_wrong(world, models, split, synthetic_data):
    als, pop = models["ImplicitALS"], models["Popularity"]
    two = {"A": pop, "B": als}
    with pytest.raises(ReclabError, match="arm 'B': ItemKNN is not fitted"):
        ab_test(world, {"A": pop, "B": rl.models.ItemKNN()}, n_users=100)
    with pytest.raises(ReclabError, match="n_users must be an integer >= 4, got 1"):
        ab_test(world, two, n_users=1)
    with pytest.raises(ReclabError, match="n_users must be an integer >= 2, got 1"):
        interleave(world, two, n_users=1)
    for alpha in (0.0, 1.0, 1.5):
        with pytest.raises(ReclabError, match=r"alpha must be a number in \(0, 1\)"):
            ab_test(world, two, n_users=100, alpha=alpha)
    with pytest.raises(ReclabError, match="exactly 2 arms, got 3"):
        interleave(world, {**two, "C": models["ItemKNN"]}, n_users=100)
    with pytest.raises(ReclabError, match="at least 2 arms, got 1"):
        ab_test(world, {"A": pop}, n_users=100)
    with pytest.raises(ReclabError, match=r"method must be one of \['team_draft'\], got 'balanced'"):
        interleave(world, two, n_users=100, method="balanced")
    with pytest.raises(ReclabError, match=r"methods must be one of \['ab', 'interleaving'\]"):
        sensitivity(world, two, n_users=100, methods=["bandit"])
    with pytest.raises(ReclabError, match="has no ground truth"):
        World.from_truth(rl.preprocess.kcore(synthetic_data, min_user=5, min_item=20))
    small = rl.datasets.synthetic(seed=0, n_users=50, n_items=80, n_ratings=2000)
    with pytest.raises(ReclabError, match="fitted on 50 users x 80 items, but the world has 943 x 1682"):
        ab_test(world, {"A": pop, "B": rl.models.Popularity().fit(small)}, n_users=100)
    with pytest.raises(ReclabError, match="world must be a reclab.online.World"):
        ab_test(split[0], two, n_users=100)
    # the world on all the data, the arms fitted on train: they showed items it counts as rated
    with pytest.raises(ReclabError, match=rf"arm 'A': Popularity was fitted on {split[0].nnz} interactions "
                                          rf"and the world's seen holds {synthetic_data.nnz}; "
                                          rf"{split[1].nnz} pairs are in one only"):
        interleave(World.from_truth(synthetic_data), two, n_users=100)
    with pytest.raises(ReclabError, match="position_bias must be >= 0.0, got -1"):
        World.from_truth(split[0], position_bias=-1)


def test_stage_6_parameters_are_validated_and_make_the_aligned_world(synthetic_data):
    from reclab.config import Config, make_world

    defaults = Config.from_values({})
    assert defaults["online"].model_dump() == {"enabled": False, "n_users": 5000, "n_simulations": 100,
                                  "world_model": "ItemKNN"}
    for key, value, message in (("online.enabled", "yes", "must be true or false"),
                                ("online.n_users", 4, "must be >= 8"),
                                ("online.world_model", "Oracle", "must be one of")):
        with pytest.raises(ReclabError, match=f"key '{key}' {message}"):
            Config.loads("{}", "test.yaml", {key: value})
    config = Config.from_values({"kcore": {"min_user": 5, "min_item": 20}})
    kept = rl.preprocess.kcore(synthetic_data, min_user=5, min_item=20)
    world = make_world(config, kept)
    assert world.source == "truth" and world.utility.shape == kept.shape
    assert np.array_equal(world.utility, World.from_truth(synthetic_data).align(kept).utility)


def test_a_few_visits_that_all_click_alike_give_the_exact_p_value_not_certainty():
    """Clicks that do not vary within an arm (a few visits in a world of certain clicks) leave
    the t-tests without a variance: they said p = 0 and 0 users needed. The exact tests say how
    likely so clean a split is by chance: 2 of the 6 ways of splitting 4 visits, 2 of the 8
    outcomes of 3 visits."""
    good = np.tile([100.0, 100.0, -100.0, -100.0], (5, 1))   # attraction 1, or below 1e-43
    world = World(good, position_bias=0.0)
    arms = {"A": World(-good).oracle(), "B": world.oracle()}   # A shows the items never clicked
    ab = ab_test(world, arms, n_users=4, n=1, seed=0)
    assert ab.table["ctr"].tolist() == [0.0, 1.0]
    assert ab.p_value == pytest.approx(1 / 3)
    assert np.isnan(ab.users_needed["B"])
    result = interleave(world, arms, n_users=3, n=2, seed=0)
    assert result.wins == {"A": 0, "B": 3}
    assert result.p_value == pytest.approx(0.25)
    same = interleave(world, {"A": world.oracle(), "B": world.oracle()}, n_users=3, n=2, seed=0)
    assert same.p_value == 1.0


def test_a_power_estimate_does_not_depend_on_the_other_grid_points(world, models):
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"]}
    alone = sensitivity(world, arms, n_users=[100], n_simulations=50, methods=["ab"], seed=0)
    among = sensitivity(world, arms, n_users=[50, 100], n_simulations=50, methods=["ab"], seed=0)
    assert among.table.set_index("n_users").loc[100, "power"] == alone.table["power"].item()


def test_expected_ctr_checks_its_model_as_the_tests_check_an_arm(world, split, models):
    everything = World.from_truth(split[0].union(split[1]))
    with pytest.raises(ReclabError, match="arm 'model': ImplicitALS was fitted on"):
        everything.expected_ctr(models["ImplicitALS"])
    other = rl.models.Popularity().fit(rl.datasets.synthetic(n_users=50, n_items=60, n_ratings=900))
    with pytest.raises(ReclabError, match="was fitted on 50 users x 60 items, but the world has"):
        world.expected_ctr(other)
    assert 0 < world.expected_ctr(models["ImplicitALS"]) < 1


def test_a_world_copies_the_utilities_it_is_given_and_leaves_the_callers_array_writable():
    """World froze the caller's own float32 array (``setflags(write=False)`` on what
    ``np.asarray`` returned without a copy): the caller's next ``utility += noise`` failed with
    'output array is read-only', far from the cause."""
    utility = np.zeros((3, 4), dtype=np.float32)
    world = World(utility)
    assert utility.flags.writeable
    utility += 1.0
    assert (world.utility == 0).all() and not world.utility.flags.writeable


def test_a_world_refuses_repeated_ids_which_align_cannot_match():
    """Repeated ids were accepted, and align() then failed with pandas' InvalidIndexError
    ('Reindexing only valid with uniquely valued Index objects')."""
    with pytest.raises(ReclabError, match=r"user_ids must be unique.*id 7 names rows 0 and 1"):
        World(np.zeros((3, 4)), user_ids=[7, 7, 8])
    with pytest.raises(ReclabError, match=r"item_ids must be unique.*id 'b' names columns 1 and 3"):
        World(np.zeros((3, 4)), item_ids=["a", "b", "c", "b"])
    # text ids as Interactions holds them (an object array): the same message
    with pytest.raises(ReclabError, match=r"item_ids must be unique.*id 'b' names columns 1 and 3"):
        World(np.zeros((3, 4)), item_ids=np.array(["a", "b", "c", "b"], dtype=object))
    # NaN twice (not equal to itself for ==): this failed with 'not enough values to unpack'
    with pytest.raises(ReclabError, match=r"user_ids must be unique.*id nan names rows 1 and 2"):
        World(np.zeros((3, 4)), user_ids=[1.0, np.nan, np.nan])


def test_sensitivity_refuses_a_number_of_users_that_is_no_integer_nor_a_sequence_of_them(world, models):
    """A float failed with TypeError "'float' object is not iterable", a string was read digit by
    digit ('n_users must be an integer >= 4, got '1''), a mapping was read as its keys."""
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"]}
    for value in (100.0, np.float64(100.0), "100", {100: 1, 200: 2}, None):
        with pytest.raises(ReclabError, match=r"n_users must be an integer >= 4 or a non-empty sequence "
                                              rf"of them, got {re.escape(repr(value))}"):
            sensitivity(world, arms, n_users=value, n_simulations=2)
    for value in (np.array([20, 10]), (20, 10), range(10, 21, 10)):
        table = sensitivity(world, arms, n_users=value, n_simulations=2, methods=["ab"]).table
        assert table["n_users"].tolist() == [10, 20]


def test_sensitivity_refuses_a_method_named_twice(world, models):
    """methods=['ab', 'ab'] simulated the A/B test twice, with the same draws: every row of its
    power table twice, and plot_power drew one curve through both copies (back to the first size)."""
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"]}
    with pytest.raises(ReclabError, match=r"methods must not repeat a method, got \['ab', 'interleaving', 'ab'\]"):
        sensitivity(world, arms, n_users=[10, 20], n_simulations=2, methods=["ab", "interleaving", "ab"])


def test_the_ratio_of_users_needed_says_when_a_method_was_not_simulated(world, models):
    """ratio() of a result that simulated the A/B test alone raised KeyError: 'interleaving'."""
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"]}
    result = sensitivity(world, arms, n_users=[10, 20], n_simulations=2, methods=["ab"])
    with pytest.raises(ReclabError, match=r"ratio compares the A/B test with interleaving, but this "
                                          r"result simulated \['ab'\] only"):
        result.ratio()


def test_users_needed_in_words_names_the_methods_a_result_simulated(world, models):
    """needed_text('interleaving') of a result that simulated the A/B test alone raised
    KeyError: 'interleaving', as ratio() did."""
    arms = {"Popularity": models["Popularity"], "ImplicitALS": models["ImplicitALS"]}
    result = sensitivity(world, arms, n_users=[10, 20], n_simulations=2, methods=["ab"])
    for method in ("interleaving", "AB"):
        with pytest.raises(ReclabError, match=rf"method must be one of \['ab'\], got '{method}'"):
            result.needed_text(method)
    assert result.needed_text("ab")


def test_stage_6_users_are_checked_against_the_arms_of_its_largest_a_b_test():
    """online.n_users >= 8 was the only rule, but stage 6's offline-vs-online test is an A/B test
    of every baseline, the untuned and the tuned model and up to four tuning trials, 2 visits per
    arm at least: with the default baselines (2) and 8 users the pipeline ran five stages, then
    stage 6 failed with 'n_users must be an integer >= 12, got 8'."""
    from reclab.config import Config

    with pytest.raises(ReclabError, match=r"key 'online.n_users' is 8, but stage 6 .* up to 8 "
                                          r"arms .* use online.n_users >= 16"):
        Config.loads("{}", "test.yaml", {"baselines": ["Popularity", "Bias"], "online.n_users": 8})
    # arms: one baseline, the untuned and the tuned model, at most 3 trials of 3
    one = {"baselines": ["Popularity"], "tune.n_trials": 3}
    with pytest.raises(ReclabError, match=r"up to 6 arms .* use online.n_users >= 12"):
        Config.loads("{}", "test.yaml", {**one, "online.n_users": 11})
    assert Config.loads("{}", "test.yaml", {**one, "online.n_users": 12})
    assert Config.loads("{}", "test.yaml", {"baselines": ["Popularity", "Bias"], "online.n_users": 16})
