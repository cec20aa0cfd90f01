"""Run reclab's benchmarks against its peers and write a JSON result, a Markdown table and a plot.

Every measurement runs in a fresh child process, so that its peak memory is its own and one case's
compiled kernels or caches never flatter the next. Peers (implicit, scikit-surprise, pyspark) are
optional: a case whose peer is not installed is reported as skipped, with the reason.

    python -m benchmarks                       # everything (about 20-30 minutes on 2 cores)
    python -m benchmarks --suite als --sizes 1M,5M
    python -m benchmarks --list
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path
from queue import Empty

from benchmarks import cases

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"1M": 1_000_000, "5M": 5_000_000, "20M": 20_000_000}


def _child(queue, name, kwargs):
    import resource

    try:
        result = getattr(cases, name)(**kwargs)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(result)
    except cases.Skip as skip:
        queue.put({"skipped": str(skip)})
    except Exception as error:  # a failed case is reported, not allowed to stop the suite
        queue.put({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})


def run_case(name: str, **kwargs) -> dict:
    """Run one case function of ``benchmarks.cases`` in a fresh process; return its result."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, name, kwargs))
    started = time.perf_counter()
    # Ctrl-C reaches the terminal's whole process group: the case's process starts with SIGINT
    # ignored (Python keeps it so), and the runner ends it. Interrupted while it started up, it
    # printed a "Fatal Python error" with a traceback.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        result = _result(queue, process)
    except KeyboardInterrupt:   # the case's process ends with the runner
        process.terminate()
        process.join()
        raise
    process.join()
    result.update(case=name, **{f"arg_{key}": value for key, value in kwargs.items()},
                  wall_seconds=round(time.perf_counter() - started, 3))
    shown = {key: value for key, value in result.items() if key != "traceback"}
    print(json.dumps(shown), flush=True)
    return result


def _result(queue, process) -> dict:
    """The case's result, or an error when its process ended without one (killed by the kernel's
    out-of-memory killer, a crash in native code, an exit): waiting on the queue alone hung the
    suite for ever then."""
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            if process.is_alive():
                continue
        try:   # it may have put its result just before it ended
            return queue.get(timeout=1)
        except Empty:
            code = process.exitcode
            how = f"exit status {code}"
            if code is not None and code < 0:
                how = "killed by " + next((sig.name for sig in signal.Signals if sig == -code),
                                          f"signal {-code}")
            return {"error": f"the case's process ended without a result ({how}; SIGKILL is often "
                             f"the out-of-memory killer)"}


def plan(suites: set[str], sizes: list[str], factors: list[int]) -> list[tuple[str, dict]]:
    steps = []
    if "als" in suites:
        for size in sizes:
            for k in factors:
                iterations = 3 if size == "20M" else 5
                for library in ("reclab", "implicit"):
                    steps.append(("implicit_als_speed", dict(library=library, n_ratings=SIZES[size],
                                                             factors=k, iterations=iterations)))
        for library in ("reclab", "implicit"):
            steps.append(("implicit_als_accuracy", dict(library=library, dataset="ml-100k")))
    if "rating" in suites:
        for dataset in ("ml-100k", "ml-latest-small"):
            for model in ("reclab.ExplicitALS", "reclab.Bias", "reclab.SVD", "surprise.SVD",
                          "surprise.BaselineOnly"):
                steps.append(("rating_model", dict(model=model, dataset=dataset)))
            # The speed/accuracy trade-off: the most accurate setting of the defaults' grid.
            steps.append(("rating_model", dict(model="reclab.ExplicitALS", dataset=dataset,
                                               params={"factors": 50, "regularization": 0.12,
                                                       "iterations": 10})))
    if "ranking" in suites:
        for dataset in ("ml-100k", "ml-latest-small"):
            for model in ("Popularity", "ItemKNN", "SVD", "ImplicitALS", "EASE", "RP3beta", "PureSVD"):
                steps.append(("ranking_model", dict(model=model, dataset=dataset)))
    if "ease" in suites:
        for dataset in ("ml-100k", "ml-latest-small"):
            steps.append(("ease_dtype", dict(dataset=dataset, repeats=3 if dataset == "ml-100k" else 1)))
        steps.append(("ease_large", dict(n_items=20_000, n_ratings=1_000_000)))
    if "eval" in suites:
        steps.append(("evaluate_large", dict(n_ratings=SIZES["20M"], factors=64)))
    if "spark" in suites:
        for model in ("SparkALS", "ExplicitALS"):
            steps.append(("spark_vs_local", dict(model=model, dataset="ml-100k")))
    if "tuning" in suites:
        steps.append(("tuning", {}))
    if "online" in suites:
        steps.append(("online_simulation", dict(n_visits=100_000)))
    return steps


def environment() -> dict:
    from importlib import metadata

    versions = {}
    for package in ("reclab", "numpy", "scipy", "numba", "implicit", "scikit-surprise", "pyspark",
                    "scikit-optimize"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), "machine": platform.machine(), "cores": os.cpu_count(),
            "versions": versions, "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="als,rating,ranking,ease,eval,spark,tuning,online",
                        help="comma-separated: als, rating, ranking, ease, eval, spark, tuning, online")
    parser.add_argument("--sizes", default="1M,5M,20M", help="synthetic sizes for the als suite")
    parser.add_argument("--factors", default="64,128", help="factors for the als suite")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"), help="JSON result file")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)

    suites = set(args.suite.split(","))
    unknown = suites - {"als", "rating", "ranking", "ease", "eval", "spark", "tuning", "online"}
    if unknown:
        parser.error(f"unknown suite(s) {sorted(unknown)}")
    sizes = args.sizes.split(",")
    if set(sizes) - set(SIZES):
        parser.error(f"unknown size(s) {sorted(set(sizes) - set(SIZES))}; known: {list(SIZES)}")
    factors = args.factors.split(",")
    if not all(k.strip().isdigit() and int(k) > 0 for k in factors):
        parser.error(f"--factors takes positive integers separated by commas, got {args.factors!r}")
    steps = plan(suites, sizes, [int(k) for k in factors])
    if args.list:
        for name, kwargs in steps:
            print(name, kwargs)
        return 0

    out = Path(args.out)
    try:   # checked before the cases run: at the end, a traceback lost every result
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {out}: its folder cannot be made ({error.strerror})")
    if out.is_dir() or not os.access(out.parent, os.W_OK):
        parser.error(f"--out {out}: " + ("a folder; name the JSON file to write" if out.is_dir()
                                          else "its folder cannot be written"))
    from benchmarks.report import write_report

    results = []
    try:
        for name, kwargs in steps:
            results.append(run_case(name, **kwargs))
    except KeyboardInterrupt:
        print(f"python -m benchmarks: interrupted after {len(results)} of {len(steps)} cases; "
              f"nothing written", file=sys.stderr)
        return 130
    document = {"environment": environment(), "results": results}
    out.write_text(json.dumps(document, indent=2) + "\n")
    written = write_report(document, out.with_suffix(".md"), out.with_suffix(".png"))
    print(f"wrote {', '.join(map(str, [out, *written]))}")
    return 0
