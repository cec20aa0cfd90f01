"""Turn a benchmark JSON document into a Markdown table and a plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _by_case(results, case):
    return [r for r in results if r.get("case") == case and "error" not in r and "skipped" not in r]


def write_report(document: dict, markdown_path: Path, plot_path: Path) -> list[Path]:
    """Write the Markdown table and, when the als suite ran, the plot; return the files written."""
    results = document["results"]
    sections = [f"Measured {document['environment']['date']} on {document['environment']['cores']} cores, "
                f"Python {document['environment']['python']}; versions: "
                + ", ".join(f"{k} {v}" for k, v in document["environment"]["versions"].items() if v)]

    speed = _by_case(results, "implicit_als_speed")
    if speed:
        rows = {}
        for r in speed:
            key = (r["n_ratings"], r["factors"])
            rows.setdefault(key, {})[r["library"]] = r
        table = []
        for (n, k), pair in sorted(rows.items()):
            ours, peer = pair.get("reclab", {}), pair.get("implicit", {})
            ratio = (ours["seconds_per_iteration"] / peer["seconds_per_iteration"]
                     if ours.get("seconds_per_iteration") and peer.get("seconds_per_iteration") else None)
            table.append([f"{n / 1e6:g}M", k, ours.get("seconds_per_iteration"), peer.get("seconds_per_iteration"),
                          ratio, _fmt(ours.get("peak_rss_mb"), 0), _fmt(peer.get("peak_rss_mb"), 0)])
        sections.append("### Implicit ALS, seconds per iteration (synthetic long-tail matrices)\n\n" + _table(
            ["ratings", "factors", "reclab s/iter", "implicit s/iter", "reclab / implicit",
             "reclab peak MB", "implicit peak MB"], table))

    accuracy = _by_case(results, "implicit_als_accuracy")
    if accuracy:
        sections.append("### Implicit ALS accuracy, same factors and iterations\n\n" + _table(
            ["library", "dataset", "factors", "iterations", "fit s", "precision@10", "ndcg@10"],
            [[r["library"], r["dataset"], r["factors"], r["iterations"], r["fit_seconds"], r["precision@10"],
              r["ndcg@10"]] for r in accuracy]))

    rating = _by_case(results, "rating_model")
    if rating:
        sections.append("### Rating prediction (80/20 random holdout, seed 42)\n\n" + _table(
            ["dataset", "library", "model", "fit s", "RMSE", "MAE"],
            [[r["dataset"], r["library"], r["model"], r["fit_seconds"], r["rmse"], r["mae"]] for r in rating]))

    ranking = _by_case(results, "ranking_model")
    if ranking:
        sections.append("### Ranking models with their defaults (80/20 random holdout, seed 42)\n\n" + _table(
            ["dataset", "model", "fit s", "evaluate s", "precision@10", "recall@10", "ndcg@10", "coverage@10",
             "peak MB"],
            [[r["dataset"], r["model"], r["fit_seconds"], r["evaluate_seconds"], r["precision@10"],
              r["recall@10"], r["ndcg@10"], r["coverage@10"], _fmt(r["peak_rss_mb"], 0)] for r in ranking]))

    dtypes = _by_case(results, "ease_dtype")
    if dtypes:
        sections.append("### EASE in float32 and float64 (80/20 random holdout, seed 42)\n\n" + _table(
            ["dataset", "items", "regularization", "reference", "float32 fit s", "float64 fit s",
             "float32 fit s, 1 thread", "float64 fit s, 1 thread", "float32 max score error",
             "float64 max score error", "float32 precision@10", "float64 precision@10"],
            [[r["dataset"], r["n_items"], r.get("regularization"), r["reference"], r["float32_fit_seconds"],
              r["float64_fit_seconds"], r.get("float32_fit_seconds_1_thread"),
              r.get("float64_fit_seconds_1_thread"),
              f"{r['float32_max_score_error']:.2e}", f"{r['float64_max_score_error']:.2e}",
              r["float32_precision@10"], r["float64_precision@10"]] for r in dtypes]))

    large_ease = _by_case(results, "ease_large")
    if large_ease:
        sections.append("### EASE on a large synthetic catalog (float32)\n\n" + _table(
            ["items", "users", "ratings", "fit s", "B MB", "peak MB"],
            [[r["n_items"], r["n_users"], r["n_ratings"], r["fit_seconds"], r["matrix_mb"],
              _fmt(r["peak_rss_mb"], 0)] for r in large_ease]))

    large = _by_case(results, "evaluate_large")
    if large:
        sections.append("### Evaluating every user of the 20M-rating matrix\n\n" + _table(
            ["ratings", "users x items", "factors", "evaluated users", "seconds", "peak MB"],
            [[r["n_ratings"], " x ".join(map(str, r["shape"])), r["factors"], r["evaluated_users"],
              r["evaluate_seconds"], _fmt(r["peak_rss_mb"], 0)] for r in large]))

    spark = _by_case(results, "spark_vs_local")
    if spark:
        sections.append("### SparkALS (local[*]) against reclab, ML-100k\n\n" + _table(
            ["model", "factors", "iterations", "fit s", "RMSE", "precision@10"],
            [[r["model"], r["factors"], r["iterations"], r["fit_seconds"], r["rmse"], r["precision@10"]]
             for r in spark]))

    tuning = _by_case(results, "tuning")
    for r in tuning:
        shown = {k: v for k, v in r.items() if not isinstance(v, (list, dict)) and not k.startswith("arg_")}
        sections.append("### Tuning ImplicitALS (detail: benchmarks/results/tuning.md)\n\n" + _table(["figure", "value"],
                                                                           [[k, v] for k, v in shown.items()]))

    online = _by_case(results, "online_simulation")
    if online:
        sections.append("### Simulated online tests (synthetic world, top-10, Popularity vs ImplicitALS)\n\n"
                        + _table(["visits", "items", "A/B test s", "interleaving s"],
                                 [[r["n_visits"], r["n_items"], r["ab_test_seconds"], r["interleave_seconds"]]
                                  for r in online]))

    problems = [r for r in results if "error" in r or "skipped" in r]
    if problems:
        sections.append("### Not measured\n\n" + "\n".join(
            f"- {r['case']} {({k[4:]: v for k, v in r.items() if k.startswith('arg_')})}: "
            f"{r.get('error') or 'skipped: ' + r['skipped']}" for r in problems))
    markdown_path.write_text("\n\n".join(sections) + "\n")

    if speed:
        figure, axis = plt.subplots(figsize=(6, 4))
        for library, marker in (("reclab", "o"), ("implicit", "s")):
            for k in sorted({r["factors"] for r in speed}):
                points = sorted((r["n_ratings"], r["seconds_per_iteration"]) for r in speed
                                if r["library"] == library and r["factors"] == k)
                if points:
                    axis.plot([p[0] / 1e6 for p in points], [p[1] for p in points], marker=marker,
                              label=f"{library}, {k} factors")
        axis.set_xlabel("ratings (millions)")
        axis.set_ylabel("seconds per iteration")
        axis.set_title("Implicit ALS on 2 cores")
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(plot_path, dpi=100)
        plt.close(figure)
        return [markdown_path, plot_path]
    return [markdown_path]
