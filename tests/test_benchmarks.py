"""The benchmark suite's command line, ``python -m benchmarks`` (benchmarks/runner.py): its
arguments and what it does when a case cannot finish. No benchmark is measured here."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def benchmarks(*args, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks", *args], cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **options)


def case_process(runner: int) -> int | None:
    """The id of the process that runs a case for the runner ``runner`` (multiprocessing's spawned
    child; not its resource tracker), once it exists."""
    for task in Path(f"/proc/{runner}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                return int(child)
    return None


def during_a_case(runner: subprocess.Popen, send) -> tuple[str, str]:
    """Once the runner's case process exists, ``send(its id)`` (a signal), then the runner's
    output; whatever of the runner's process group is left then is killed."""
    try:
        child = None
        while child is None and runner.poll() is None:
            child = case_process(runner.pid)
            time.sleep(0.05)
        assert child is not None, runner.communicate()
        send(child)
        return runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()


def test_a_case_whose_process_is_killed_is_reported_and_the_suite_goes_on(tmp_path):
    """A case's process killed (the out-of-memory killer's SIGKILL): the runner waited for its
    result for ever."""
    out = tmp_path / "result.json"
    runner = benchmarks("--suite", "online", "--out", str(out))
    stdout, stderr = during_a_case(runner, lambda child: os.kill(child, signal.SIGKILL))
    assert runner.returncode == 0, stderr
    (result,) = json.loads(out.read_text())["results"]
    assert result["case"] == "online_simulation"
    assert result["error"].startswith("the case's process ended without a result (killed by SIGKILL")
    assert "online_simulation" in out.with_suffix(".md").read_text().split("### Not measured")[1]
    # only the als suite draws a plot: the last line named a .png that was never written
    assert stdout.splitlines()[-1] == f"wrote {out}, {out.with_suffix('.md')}"
    assert not out.with_suffix(".png").exists()


def test_bad_factors_are_refused_naming_the_option():
    """``--factors x`` was a ValueError traceback; ``--factors 0`` was planned, and each case
    refused it only once it had built its matrix."""
    for factors in ("x", "64,", "0", "-8"):
        process = benchmarks("--list", "--suite", "als", "--factors", factors)
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr
        assert stdout == "" and "Traceback" not in stderr
        assert f"--factors takes positive integers separated by commas, got {factors!r}" in stderr
    process = benchmarks("--list", "--suite", "als", "--sizes", "1M", "--factors", "16,32")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert [json.loads(line.split(" ", 1)[1].replace("'", '"'))["factors"]
            for line in stdout.splitlines() if line.startswith("implicit_als_speed")] == [16, 16, 32, 32]


def test_an_out_file_that_cannot_be_written_is_refused_before_any_case_runs(tmp_path):
    """The folder of ``--out`` was made after every case had run (20-30 minutes for the whole
    suite): one that could not be made ended in a traceback, and every result was lost."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out, message in ((blocker / "result.json", "its folder cannot be made"),
                         (tmp_path, "a folder; name the JSON file to write")):
        process = benchmarks("--suite", "online", "--out", str(out))
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr
        assert stdout == ""   # no case ran
        assert f"--out {out}: {message}" in stderr and "Traceback" not in stderr


def test_ctrl_c_stops_the_suite_with_a_line_not_tracebacks(tmp_path):
    """Ctrl-C (SIGINT to the terminal's whole process group) printed two interleaved tracebacks,
    the runner's and the case process's; and a case process still starting up printed a "Fatal
    Python error" with a traceback. The case's process ignores SIGINT from its start: the runner
    ends it."""
    out = tmp_path / "result.json"
    # as from a terminal: SIGINT at its default (a background job's would be ignored)
    runner = benchmarks("--suite", "online", "--out", str(out),
                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ignored = []

    def interrupt(child: int) -> None:
        mask = re.search(r"SigIgn:\s*([0-9a-f]+)", Path(f"/proc/{child}/status").read_text()).group(1)
        ignored.append(bool(int(mask, 16) >> (signal.SIGINT - 1) & 1))
        os.killpg(runner.pid, signal.SIGINT)

    stdout, stderr = during_a_case(runner, interrupt)
    assert ignored == [True]
    assert runner.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == ("python -m benchmarks: interrupted after 0 of 1 cases; "
                                               "nothing written")
    assert not out.exists()


def test_the_pipeline_benchmarks_kernel_managers_take_what_the_pipeline_passes(tmp_path):
    """benchmarks/pipeline.py measures a pipeline with each launcher by swapping in its own kernel
    manager for reclab's: it must be called as the pipeline calls reclab's (stderr, the fork
    server, the pipeline run's id) and start the kernel its launcher names."""
    import inspect

    from jupyter_client.manager import AsyncKernelManager

    from benchmarks.pipeline import LAUNCHERS, _manager_class
    from reclab import kernels

    expected = list(inspect.signature(kernels.kernel_manager_class).parameters)
    with open(tmp_path / "kernel.log", "wb") as log:
        for launcher in LAUNCHERS:
            made = _manager_class(kernels.kernel_manager_class, launcher)
            assert list(inspect.signature(made).parameters) == expected, launcher
            manager = made(log, None, "0123abcd")(kernel_name="python3")
            assert isinstance(manager, AsyncKernelManager)
            command = manager.format_kernel_cmd()
            launched = command[1] if launcher != "ipykernel" else command[1:3]
            assert launched == (["-m", "ipykernel_launcher"] if launcher == "ipykernel"
                                else str(kernels.KERNEL_LAUNCHER)), (launcher, command)
