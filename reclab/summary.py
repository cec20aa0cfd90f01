"""The end-of-run summary of a pipeline, rendered once for both places that show it: the terminal
(``reclab run``, :mod:`reclab.cli`) and the pipeline run's Markdown description in MLflow
(:mod:`reclab.pipeline`).

The summary itself (a dict) is read back from MLflow by :func:`reclab.tracking.pipeline_summary`;
this module only turns it into text and imports nothing of reclab but its number formats
(``reclab._text``: :func:`p_text`, re-exported for the notebooks). It also names the tuned model
for every table that shows it beside the baselines (:func:`tuned_label`, used by the evaluate and
online notebooks), so that the terminal's columns match theirs, and picks the cut-off at which
the evaluate notebook's warm/cold table and the summary compare the models on the cold items
(:func:`telling_cutoff`).
"""

from __future__ import annotations

import math

from reclab._text import p_text

__all__ = ["render_summary", "metric_rows", "tuned_label", "telling_cutoff", "p_text"]

#: Headline ranking metrics shown at every cut-off K, then the rating errors.
RANKING = ("precision", "recall", "ndcg", "map")
ERRORS = ("rmse", "mae")


def tuned_label(model: str, baselines) -> str:
    """What tables, comparisons and simulated arms call the tuned model: its class name, or
    ``"tuned <name>"`` when one of ``baselines`` has that name (that baseline is the same class
    with its default parameters, scored beside it under its plain name)."""
    return f"tuned {model}" if model in baselines else model


def telling_cutoff(cutoffs, n_candidates: int | None) -> int:
    """The largest cut-off K at which a top-K list still chooses among ``n_candidates`` items:
    the largest K below their number (else the smallest K). At K >= the number of candidates
    a list holds every candidate its user has not seen, so precision@K is the same for every
    model (stage 5 compares the models on the cold items at this K, and on all items alike)."""
    cutoffs = sorted(cutoffs)
    if n_candidates is None:
        return cutoffs[-1]
    below = [k for k in cutoffs if k < n_candidates]
    return below[-1] if below else cutoffs[0]


def _with_interval(metrics: dict, key: str) -> str:
    if key not in metrics:
        return ""
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    shown = f"{metrics[key]:.4f}"
    return shown + (f" [{low:.4f}, {high:.4f}]" if low is not None and high is not None else "")


def _cutoffs(metrics: dict, prefix: str = "") -> list[int]:
    """The cut-offs K, ascending, of the ``<prefix>precision_at_K`` metrics."""
    return sorted({int(key.rsplit("_at_", 1)[1]) for key in metrics
                   if key.startswith(f"{prefix}precision_at_") and "_ci_" not in key})


def metric_rows(metrics: dict, keys: bool = False) -> tuple[list, list]:
    """Rows (metric, model value [CI], baseline values [CI] ...) of the headline test metrics, and
    the baselines.

    Parameters
    ----------
    metrics : dict
        The evaluate run's MLflow metrics: ``precision_at_10``, ``precision_at_10_ci_low``, ...
        for the model, ``<baseline>/precision_at_10``, ... for each baseline.
    keys : bool
        Name the rows by their MLflow keys (``precision_at_10``) instead of ``precision@10``.

    Returns
    -------
    rows : list of list of str
        Precision, recall, nDCG and MAP at every K, then rmse and mae where logged.
    models : list of str
        ``""`` (the model) then the baselines, sorted: the columns after the metric name.
    """
    models = [""] + sorted({key.split("/", 1)[0] for key in metrics if "/" in key
                            and not key.startswith("vs_")})
    cutoffs = _cutoffs(metrics)
    names = [f"{name}_at_{k}" for name in RANKING for k in cutoffs]
    names += [name for name in ERRORS
              if name in metrics or any(f"{model}/{name}" in metrics for model in models[1:])]
    rows = [[name if keys else name.replace("_at_", "@")]
            + [_with_interval(metrics, f"{model}/{name}" if model else name) for model in models]
            for name in names]
    return rows, models


#: The column of the model ranking only the test items that training saw rarely or never (the
#: evaluate stage's ``cold/`` metrics): not a model of its own, so the table says what it is.
COLD_COLUMN = "cold items"
#: The column of the model on the test users without training interactions (``new_users/``).
NEW_USERS_COLUMN = "new users"
_COLUMNS = {"cold": COLD_COLUMN, "new_users": NEW_USERS_COLUMN}


def _with_scores(note: str, metrics: dict, model: str, prefix: str, n_candidates=None) -> str:
    """``note`` and every model's precision under ``prefix`` (the model's
    ``<prefix>precision_at_K``, the baselines' ``<prefix><name>/precision_at_K``) at the largest
    K that tells them apart on ``n_candidates`` items (:func:`telling_cutoff`)."""
    cutoffs = _cutoffs(metrics, prefix)
    if not cutoffs:
        return note
    k = telling_cutoff(cutoffs, n_candidates)
    others = sorted({key.split("/")[1] for key in metrics
                     if key.count("/") == 2 and key.startswith(prefix)})
    scores = [(model, metrics[f"{prefix}precision_at_{k}"])] + [
        (name, metrics[f"{prefix}{name}/precision_at_{k}"]) for name in others
        if f"{prefix}{name}/precision_at_{k}" in metrics]
    shown = ", ".join(f"{name} {value:.4f}" for name, value in scores)
    same = (f" (a top-{k} list holds every one of the {n_candidates} that its user has not seen, so "
            f"precision@{k} is the same for every model)" if n_candidates is not None and k >= n_candidates
            else "")
    return f"{note}; precision@{k} there: {shown}{same}"


def _cold_note(metrics: dict, model: str) -> str:
    """Which items the cold column ranks, and every model's precision there (as stage 5's
    warm/cold table)."""
    n, few = metrics.get("cold/n_candidates"), metrics.get("cold/max_train_interactions")
    which = "test items" if n is None else f"{int(n):,} test items"
    rare = ("" if few is None else " without training interactions" if few == 0
            else f" with <= {int(few)} training interactions")
    users = metrics.get("cold/n_evaluated")
    whom = "" if users is None else f", for the {int(users):,} users with a test interaction among them"
    return _with_scores(f"{COLD_COLUMN}: {model} ranking only the {which}{rare}{whom}", metrics, model,
                        "cold/", None if n is None else int(n))


def _new_users_note(metrics: dict, model: str) -> str:
    """How many test users the new-users column scores, and every model's precision on them."""
    n = metrics.get("new_users/n_evaluated")
    which = "test users" if n is None else f"{int(n):,} test users"
    return _with_scores(f"{NEW_USERS_COLUMN}: {model} on the {which} without training interactions",
                        metrics, model, "new_users/")


def _text_table(rows, header) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
              for row in rows]
    return "\n".join(lines)


def _markdown_table(rows, header) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _short(value) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def render_summary(summary: dict, seconds: float | None = None, markdown: bool = False) -> str:
    """The summary as text: a title, the best parameters of tuning, the test metrics with their
    intervals next to the baselines', and the online stage's result.

    Parameters
    ----------
    summary : dict
        :func:`reclab.tracking.pipeline_summary` of the pipeline run.
    seconds : float, optional
        Wall time of the stages run, for the terminal's title line.
    markdown : bool
        Markdown for the MLflow run description (bold run name as the title, metrics by their
        MLflow keys, a Markdown table) instead of plain text for the terminal.

    Returns
    -------
    str
        Blocks separated by a blank line, without a trailing newline.
    """
    if markdown:
        blocks = [f"**{summary['run_name']}**"]
    else:
        took = "" if seconds is None else f" in {seconds:.1f} s"
        blocks = [f"Pipeline {summary['run_name']}: {summary['status']}{took}"]
    if summary.get("outdated"):   # their results are shown below: say what they were made from
        blocks.append(f"OUTDATED: {', '.join(summary['outdated'])}, made from a run of an earlier "
                      f"stage that was run again since; reclab run --resume {summary['run_id']} "
                      f"runs them again")
    best = summary.get("best")
    if best:
        shown = ", ".join(f"{name}={_short(value)}" for name, value in best["params"].items())
        lines = [f"Best {best['model']} parameters ({best['metric']} on validation = "
                 f"{best['score']:.4f}): {shown or '(no search space)'}"]
        lines += [f"CHOSEN: {best['note']}"] if best.get("note") else []
        lines += [f"WARNING: {warning}" for warning in best.get("warnings", [])]
        if markdown:
            blocks += lines
        else:   # the terminal keeps them under the title line
            blocks[0] += "\n" + "\n".join(lines)
    metrics = summary.get("metrics", {})
    rows, models = metric_rows(metrics, keys=markdown)
    if rows:
        model = tuned_label(best["model"], models[1:]) if best else "model"
        header = ["metric", model, *(_COLUMNS.get(name, name) for name in models[1:])]
        parts = ["Test metrics (95% bootstrap confidence intervals over users):",
                 _markdown_table(rows, header) if markdown else _text_table(rows, header)]
        parts += [_cold_note(metrics, model)] if "cold" in models else []
        parts += [_new_users_note(metrics, model)] if "new_users" in models else []
        blocks.append(("\n\n" if markdown else "\n").join(parts))
    if summary.get("online"):
        blocks.append(summary["online"])
    return "\n\n".join(blocks)
