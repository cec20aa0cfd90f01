"""What a small pipeline costs in its stage kernels: ``reclab.pipeline.run_pipeline`` on small
synthetic data, with its stage kernels forked from one preloaded server (what ``reclab run``
does: ``reclab._kernel.ForkServer``), each started by reclab's launcher (``reclab/_kernel.py``:
imports preloaded in each kernel, ended children reaped, no interpreter teardown), and with
ipykernel's own launcher, on the same parameters, taking turns.

Protocol: ``params/default.yaml`` with :data:`SMALL` (150 users, 200 items, 6,000 ratings; 2
random-search trials; stage 6 off), a new SQLite store per run, ``--repeats`` runs per launcher.
Each run records its wall time, each stage's seconds (``PipelineResult.seconds``) and the CPU
time of this process and its children (the kernels; ``resource.getrusage``). The table gives
the median over the runs. On such data nearly all of a stage's time is the kernel's fixed cost:
start, imports, MLflow, exit.

Run it alone (about 7 minutes on 2 cores with the default 3 repeats)::

    nice python -m benchmarks.pipeline                # -> results/pipeline.{json,md}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

RESULTS = Path(__file__).resolve().parent / "results"
SMALL = {"synthetic.n_users": 150, "synthetic.n_items": 200, "synthetic.n_ratings": 6000,
         "tune.method": "random", "tune.n_trials": 2, "tune.metric": "ndcg@10", "k": [5, 10],
         "evaluation.n_bootstrap": 20, "n_recommendations": 5, "baselines": ["Popularity"],
         "models.ImplicitALS.params.iterations": 4, "online.enabled": False}
LAUNCHERS = ("forked", "launcher", "ipykernel")
NAMES = {"forked": "forked from reclab._kernel.ForkServer", "launcher": "reclab/_kernel.py",
         "ipykernel": "ipykernel_launcher"}


def _cpu_seconds() -> float:
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                           resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _manager_class(reclab_manager_class, launcher: str):
    """The pipeline's kernel manager for ``launcher``: as it is (``forked``), or starting each
    kernel as a process of its own, by reclab's launcher or ipykernel's."""
    from jupyter_client.manager import AsyncKernelManager

    if launcher == "forked":
        return reclab_manager_class

    def manager_class(stderr, forks=None, pipeline_id=None):
        class OwnProcess(reclab_manager_class(stderr, None, pipeline_id)):   # no fork server
            def format_kernel_cmd(self, extra_arguments=None):
                if launcher == "ipykernel":
                    return AsyncKernelManager.format_kernel_cmd(self, extra_arguments)
                return super().format_kernel_cmd(extra_arguments)

        return OwnProcess

    return manager_class


def run_once(launcher: str) -> dict:
    from reclab import pipeline

    manager = _manager_class(pipeline.kernel_manager_class, launcher)
    no_server = contextlib.nullcontext(None)   # without the fork server, none starts
    with tempfile.TemporaryDirectory() as folder, \
            mock.patch.object(pipeline, "kernel_manager_class", manager), \
            mock.patch.object(pipeline, "fork_server",
                              pipeline.fork_server if launcher == "forked" else lambda: no_server):
        cpu, started = _cpu_seconds(), time.perf_counter()
        result = pipeline.run_pipeline(overrides=SMALL, tracking_uri=f"sqlite:///{folder}/mlflow.db",
                                       output_dir=Path(folder) / "out")
        wall = time.perf_counter() - started
        return {"launcher": launcher, "wall_seconds": wall, "cpu_seconds": _cpu_seconds() - cpu,
                "stage_seconds": dict(result.seconds)}


def markdown(rows: list[dict], environment: dict) -> str:
    stages = list(rows[0]["stage_seconds"])
    lines = [f"Measured {environment['date']} on {environment['cores']} cores, Python "
             f"{environment['python']}; median of {len(rows) // len(LAUNCHERS)} runs per launcher "
             "(benchmarks/pipeline.py).", "",
             "| launcher | pipeline s | CPU s | " + " | ".join(f"{stage} s" for stage in stages) + " |",
             "|---|---|---|" + "---|" * len(stages)]
    for launcher in LAUNCHERS:
        mine = [row for row in rows if row["launcher"] == launcher]
        median = {key: statistics.median(row[key] for row in mine)
                  for key in ("wall_seconds", "cpu_seconds")}
        per_stage = [statistics.median(row["stage_seconds"][stage] for row in mine)
                     for stage in stages]
        lines.append(f"| {NAMES[launcher]} | {median['wall_seconds']:.1f} | {median['cpu_seconds']:.1f} | "
                     + " | ".join(f"{seconds:.1f}" for seconds in per_stage) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "pipeline.json")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    from benchmarks.runner import environment

    rows = []
    for repeat in range(args.repeats):
        for launcher in LAUNCHERS:
            rows.append(run_once(launcher))
            print(f"{launcher:>9} run {repeat + 1}: {rows[-1]['wall_seconds']:.1f} s, "
                  f"{rows[-1]['cpu_seconds']:.1f} CPU s", flush=True)
    document = {"environment": environment(), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(rows, document["environment"]), encoding="utf-8")
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
