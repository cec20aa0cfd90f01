"""The end-of-run summary (reclab/summary.py): one renderer for the terminal and for MLflow."""

from reclab.summary import p_text, render_summary, telling_cutoff, tuned_label

SUMMARY = {
    "run_name": "synthetic/ImplicitALS/random", "status": "FINISHED",
    "best": {"model": "ImplicitALS", "metric": "precision@10", "score": 0.3, "warnings": ["at the bound"],
             "note": "kept the start point",
             "params": {"factors": 32, "regularization": 0.0123456}},
    "metrics": {"precision_at_10": 0.31, "precision_at_10_ci_low": 0.3, "precision_at_10_ci_high": 0.33,
                "ndcg_at_10": 0.4, "Popularity/precision_at_10": 0.2, "Popularity/ndcg_at_10": 0.25,
                "vs_Popularity/precision_at_10_p_value": 0.01},
    "online": "A/B test, 500 users, top-10: CTR A 0.0100, B 0.0200"}


def test_the_terminal_summary():
    assert render_summary(SUMMARY, seconds=12.34).split("\n") == [
        "Pipeline synthetic/ImplicitALS/random: FINISHED in 12.3 s",
        "Best ImplicitALS parameters (precision@10 on validation = 0.3000): factors=32, regularization=0.01235",
        "CHOSEN: kept the start point",
        "WARNING: at the bound",
        "",
        "Test metrics (95% bootstrap confidence intervals over users):",
        "metric        ImplicitALS              Popularity",
        "------------  -----------------------  ----------",
        "precision@10  0.3100 [0.3000, 0.3300]  0.2000",
        "recall@10",
        "ndcg@10       0.4000                   0.2500",
        "map@10",
        "",
        "A/B test, 500 users, top-10: CTR A 0.0100, B 0.0200"]


def test_the_mlflow_description_is_the_same_summary_in_markdown():
    text = render_summary(SUMMARY, markdown=True)
    assert text.startswith("**synthetic/ImplicitALS/random**\n\nBest ImplicitALS parameters")
    assert "| metric | ImplicitALS | Popularity |\n|---|---|---|\n" in text
    assert "| precision_at_10 | 0.3100 [0.3000, 0.3300] | 0.2000 |" in text
    assert text.endswith("A/B test, 500 users, top-10: CTR A 0.0100, B 0.0200")


def test_a_summary_without_tuning_or_metrics_is_its_title():
    bare = {"run_name": "run", "status": "FAILED", "metrics": {}}
    assert render_summary(bare, seconds=1.0) == "Pipeline run: FAILED in 1.0 s"
    assert render_summary(bare, markdown=True) == "**run**"


def test_the_cold_item_column_says_what_it_is():
    """The evaluate stage's ``cold/`` metrics are the model ranking only the rarely seen test
    items: a column named for that, with a line under the table saying which items."""
    metrics = {**SUMMARY["metrics"], "cold/precision_at_10": 0.05, "cold/n_candidates": 1234.0,
               "cold/max_train_interactions": 5.0, "cold/Popularity/precision_at_10": 0.01,
               "cold/n_evaluated": 567.0}
    lines = render_summary({**SUMMARY, "metrics": metrics}).split("\n")
    assert lines[6].split() == ["metric", "ImplicitALS", "Popularity", "cold", "items"]
    assert lines[8].split()[-1] == "0.0500"
    assert lines[12] == ("cold items: ImplicitALS ranking only the 1,234 test items with <= 5 "
                         "training interactions, for the 567 users with a test interaction among "
                         "them; precision@10 there: ImplicitALS 0.0500, Popularity 0.0100")
    on_a_cold_split = {**metrics, "cold/max_train_interactions": 0.0}
    on_a_cold_split.pop("cold/n_evaluated")
    text = render_summary({**SUMMARY, "metrics": on_a_cold_split}, markdown=True)
    assert "| metric | ImplicitALS | Popularity | cold items |" in text
    assert ("\n\ncold items: ImplicitALS ranking only the 1,234 test items without training "
            "interactions; precision@10 there: ImplicitALS 0.0500, Popularity 0.0100\n\n") in text


def test_the_cold_item_line_compares_the_models_where_their_lists_differ():
    """With 20 cold candidates, every top-20 list holds all of them and precision@20 is the same
    for every model (the default pipeline's stage 5): the line compares precision@10 instead."""
    assert telling_cutoff([1, 5, 10, 20], 20) == 10
    assert telling_cutoff([20, 5], 21) == 20 and telling_cutoff([5, 10], 3) == 5
    assert telling_cutoff([5, 10], None) == 10
    metrics = {"precision_at_10": 0.4, "precision_at_20": 0.3, "Popularity/precision_at_20": 0.2,
               "cold/n_candidates": 20.0, "cold/max_train_interactions": 5.0,
               "cold/precision_at_10": 0.006, "cold/precision_at_20": 0.0028,
               "cold/Popularity/precision_at_10": 0.004, "cold/Popularity/precision_at_20": 0.0028}
    text = render_summary({**SUMMARY, "metrics": metrics})
    assert text.split("\n")[-3] == ("cold items: ImplicitALS ranking only the 20 test items with <= 5 "
                                    "training interactions; precision@10 there: ImplicitALS 0.0060, "
                                    "Popularity 0.0040")
    few = {**metrics, "cold/n_candidates": 4.0}
    assert render_summary({**SUMMARY, "metrics": few}).split("\n")[-3].endswith(
        "precision@10 there: ImplicitALS 0.0060, Popularity 0.0040 (a top-10 list holds every one "
        "of the 4 that its user has not seen, so precision@10 is the same for every model)")


def test_the_new_users_column_says_what_it_is():
    """The evaluate stage's ``new_users/`` metrics (the test users without training
    interactions, most of a temporal split's) get a column and a line of their own."""
    metrics = {**SUMMARY["metrics"], "new_users/precision_at_10": 0.02, "new_users/n_evaluated": 151.0,
               "new_users/Popularity/precision_at_10": 0.41, "cold/precision_at_10": 0.05}
    text = render_summary({**SUMMARY, "metrics": metrics})
    header = next(line for line in text.split("\n") if line.startswith("metric"))
    assert header.split() == ["metric", "ImplicitALS", "Popularity", "cold", "items", "new", "users"]
    assert ("new users: ImplicitALS on the 151 test users without training interactions; "
            "precision@10 there: ImplicitALS 0.0200, Popularity 0.4100") in text.split("\n")
    assert "cold items: ImplicitALS ranking only the test items" in text


def test_a_baseline_of_the_tuned_models_class_is_a_column_of_its_own():
    """A baseline named like the tuned model (its class with default parameters) keeps its name;
    the tuned model's column is ``tuned <name>``, as in stages 5 and 6."""
    metrics = {"precision_at_10": 0.31, "EASE/precision_at_10": 0.29, "Popularity/precision_at_10": 0.2}
    summary = {**SUMMARY, "best": {**SUMMARY["best"], "model": "EASE"}, "metrics": metrics}
    header = next(line for line in render_summary(summary).split("\n") if line.startswith("metric"))
    assert [cell.strip() for cell in header.split("  ") if cell.strip()] == [
        "metric", "tuned EASE", "EASE", "Popularity"]
    markdown = render_summary(summary, markdown=True)
    assert "| metric | tuned EASE | EASE | Popularity |" in markdown
    assert "| precision_at_10 | 0.3100 | 0.2900 | 0.2000 |" in markdown
    assert tuned_label("EASE", ["Popularity", "EASE"]) == "tuned EASE"
    assert tuned_label("EASE", ["Popularity"]) == "EASE"


def test_a_p_value_that_underflowed_is_printed_as_below_what_a_float_holds():
    assert p_text(0.012345) == "p=0.0123" and p_text(3.2e-5, 2) == "p=3.2e-05"
    assert p_text(0.0) == "p<1e-300" and p_text(0.0, spaced=True) == "p < 1e-300"
    assert p_text(0.5, spaced=True) == "p = 0.5"


def test_outdated_stages_are_named_above_their_results():
    """A stage run again alone (--resume --stages 2) left the later stages' old results in the
    summary, with nothing to say they were made from the superseded run."""
    outdated = {**SUMMARY, "run_id": "abc123", "outdated": ["train", "evaluate"]}
    lines = render_summary(outdated, seconds=1.0).split("\n")
    note = ("OUTDATED: train, evaluate, made from a run of an earlier stage that was run again since; "
            "reclab run --resume abc123 runs them again")
    assert lines.index(note) < lines.index("Test metrics (95% bootstrap confidence intervals over users):")
    assert note in render_summary(outdated, markdown=True)
    assert "OUTDATED" not in render_summary(SUMMARY)
