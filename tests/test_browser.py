"""Two pipeline runs compared in the MLflow UI, in a real browser.

Two of the session's three ``reclab run`` pipelines (fixture ``pipelines_at_once`` of conftest.py,
small synthetic data; ImplicitALS and SVD with the same seed, so the same test split) are in a
temporary SQLite store. ``reclab ui`` serves that store on a free loopback port; headless
Chromium (Debian's ``chromium`` package, driven by Playwright) opens what a user looks at: the
address ``reclab ui`` printed (the saved view of the pipelines' test metrics: ``precision_at_10``
of every pipeline in one column, best first), the run comparison page (the two runs by name and
``precision_at_10`` side by side), a figure of the pipeline run, the evaluate stage's notebook
rendered as HTML, and the logged model with its source run and metrics; each must show the
values MLflow holds. Screenshots are kept in ``test-artifacts/browser/`` (git-ignored). The
server is then stopped as Ctrl-C would stop it. ``reclab compare`` prints the same two runs side
by side, with the paired comparison.

The browser is always the system's Chromium: a missing one fails the test with the command that
installs it (``make test`` and ``.ci/run`` do), never a silent skip and never a browser downloaded
by Playwright. The page and the server talk only to 127.0.0.1.
"""

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mlflow import MlflowClient
from playwright.sync_api import expect, sync_playwright

from helpers import AT_ONCE_EXPERIMENT, QUIET
from reclab import tracking
from reclab.cli import main

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parent.parent
RECLAB = Path(sys.executable).parent / "reclab"
ARTIFACTS = PROJECT / "test-artifacts" / "browser"
EXPERIMENT = AT_ONCE_EXPERIMENT
SEED = 11   # both pipelines of this seed: one test split
MODELS = ("ImplicitALS", "SVD")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 90_000   # Playwright timeouts (ms): a loaded 2-core machine renders the UI slowly


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(found, os.X_OK):
        pytest.fail("Debian's Chromium is needed for the browser test and was not found: install "
                    "it with `apt-get install -y chromium` (.ci/run does); Playwright's own "
                    "browser downloads are not used", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class UiServer:
    """``reclab ui`` in a subprocess, its output read by a thread (so waits have deadlines)."""

    def __init__(self, uri: str, folder: Path):
        self.port = free_port()
        # As from a terminal: SIGINT at its default (a background job would inherit "ignore").
        self.process = subprocess.Popen(
            [str(RECLAB), "ui", "--port", str(self.port), "--tracking-uri", uri],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder,
            env={**os.environ, **QUIET}, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines, self.errors = queue.Queue(), []
        self.stdout = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._collect, args=(self.process.stderr,), daemon=True).start()

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _collect(self, stream):
        self.errors.extend(stream)

    def wait_for_links(self, seconds: float) -> dict:
        """The addresses ``reclab ui`` prints: ``{"ui": url, <experiment name>: url}``."""
        links, deadline = {}, time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if "ui" in links and EXPERIMENT in links:
                    break
                continue
            if line is None:
                break
            self.stdout.append(line)
            if line.startswith("MLflow UI: "):
                links["ui"] = line.split()[2]
            found = re.match(r"\s+experiment '(.+)': (\S+)", line)
            if found:
                links[found.group(1)] = found.group(2)
        return links

    def stop(self) -> tuple[int, str]:
        """Ctrl-C: SIGINT to ``reclab ui``, which stops the server's process group."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=60)
        rest = []
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            rest.append(line)
        return status, "".join(self.stdout + rest)

    def kill(self) -> None:
        """After a failed test: Ctrl-C first (``reclab ui`` stops the server, which runs in a
        process group of its own), then SIGKILL to whatever is left."""
        if self.process.poll() is not None:
            return
        servers = children(self.process.pid)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for group in [self.process.pid, *servers]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
            self.process.wait()


def children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


@pytest.fixture(scope="module")
def chromium():
    return chromium_path()


@pytest.fixture(scope="module")
def store(pipelines_at_once):
    """Two finished pipelines of one seed in the session's store, and ``reclab ui`` serving it
    (it boots while the tests that need no browser run)."""
    folder, uri = pipelines_at_once["folder"], pipelines_at_once["uri"]
    runs = {model: pipelines_at_once["runs"][model, SEED] for model in MODELS}
    pipelines = pipelines_at_once["seconds"]
    server = UiServer(uri, folder)
    try:
        client = MlflowClient(tracking_uri=uri)
        parents = {model: client.get_run(run_id) for model, run_id in runs.items()}
        yield {"uri": uri, "folder": folder, "runs": runs, "parents": parents, "server": server,
               "experiment_id": parents[MODELS[0]].info.experiment_id, "seconds": pipelines}
    finally:
        server.kill()


def test_runs_are_named_and_comparable(store):
    """What makes the two runs comparable at all: names, shared keys, tuned values, split."""
    parents = store["parents"]
    for model, run in parents.items():
        assert run.info.status == "FINISHED"
        assert run.info.run_name == f"synthetic/{model}/random"
        assert run.data.params["model"] == model and run.data.params["tune.method"] == "random"
        # the tuned values are on the pipeline run, beside the search space
        assert {key for key in run.data.params if key.startswith("best.")} == {"best.model"} | {
            "best." + key.rsplit(".", 1)[1] for key in run.data.params
            if key.startswith("model.space.")}
        assert run.data.params["best.model"] == model
        assert 0.0 < run.data.metrics["precision_at_10"] <= 1.0
        note = run.data.tags["mlflow.note.content"]
        assert run.info.run_name in note and "precision_at_10" in note
    first, second = (parents[model] for model in MODELS)
    ranking = {key for key in first.data.metrics if "_at_" in key}
    assert ranking == {key for key in second.data.metrics if "_at_" in key}
    assert first.data.tags["reclab.split_fingerprint"] == second.data.tags["reclab.split_fingerprint"]
    assert first.data.metrics["precision_at_10"] != second.data.metrics["precision_at_10"]
    # figures are PNG images, which the UI shows in its artifact viewer
    client = MlflowClient(tracking_uri=store["uri"])
    evaluate = client.search_runs(
        [store["experiment_id"]], filter_string=f"tags.`mlflow.parentRunId` = '{first.info.run_id}' "
        f"and tags.`reclab.stage` = 'evaluate'")[0]
    figures = [item.path for item in client.list_artifacts(evaluate.info.run_id, "figures")]
    assert "figures/precision_recall_at_k.png" in figures


def test_compare_prints_both_runs_with_a_paired_comparison(store, capsys):
    runs = [store["runs"][model] for model in MODELS]
    assert main(["compare", *runs, "--tracking-uri", store["uri"]]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    names = [store["parents"][model].info.run_name for model in MODELS]
    header = next(line for line in lines if names[0] in line)
    assert header.index(f"{names[0]} ({runs[0][:8]})") < header.index(f"{names[1]} ({runs[1][:8]})")
    assert next(line for line in lines if line.startswith("model ")).split()[1:] == list(MODELS)
    assert any(line.startswith("best.factors ") for line in lines)
    # a parameter only one model has: a dash for the other
    assert next(line for line in lines if line.startswith("model.params.iterations ")
                ).split()[1:] == ["4", "-"]
    row = next(line for line in lines if line.startswith("precision_at_10 "))
    for model in MODELS:
        metrics = store["parents"][model].data.metrics
        assert (f"{metrics['precision_at_10']:.4f} [{metrics['precision_at_10_ci_low']:.4f}, "
                f"{metrics['precision_at_10_ci_high']:.4f}]") in row
    # the same test split: a paired test per user, not "another test split"
    paired = next(line for line in lines if line.strip().startswith(runs[1][:8]))
    assert "ndcg@10: B - A = " in paired and "sign-flip test p" in paired
    assert "another test split" not in out


def test_mlflow_ui_shows_both_runs_and_precision_at_10(chromium, store, tmp_path):
    server, runs, parents = store["server"], store["runs"], store["parents"]
    client = MlflowClient(tracking_uri=store["uri"])
    names = [parents[model].info.run_name for model in MODELS]
    started = time.monotonic()
    links = server.wait_for_links(300)
    assert links.get("ui") == f"http://127.0.0.1:{server.port}", (
        "".join(server.stdout) + "".join(server.errors)[-3000:])
    experiment_link = links.get(EXPERIMENT)
    assert experiment_link == (f"{links['ui']}/#/experiments/{store['experiment_id']}/runs"
                               f"?workflowType=machine_learning&viewStateShareKey="
                               f"{tracking.METRICS_VIEW}"), links
    with urllib.request.urlopen(links["ui"], timeout=60) as response:
        assert response.status == 200
    served = time.monotonic() - started

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside = []

    def loopback_only(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 900})
        try:
            context.set_default_timeout(TIMEOUT_MS)
            for stale in ARTIFACTS.glob("*.png"):
                stale.unlink()
            context.route("**/*", loopback_only)
            # MLflow's assistant panel opens itself on a first visit and covers a third of the
            # page; these are its own "seen it, closed it" flags.
            context.add_init_script(
                "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
                "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');")
            page = context.new_page()

            # The address `reclab ui` printed: the runs table in the saved view of the test
            # metrics, one row per pipeline, precision_at_10 a column, best first.
            page.goto(experiment_link)
            for name in names:
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            assert "/runs" in page.url and "overview" not in page.url, page.url
            expect(page.get_by_text("reclab: test metrics").first).to_be_visible()
            column = page.locator("[role=gridcell][col-id='metrics.`precision_at_10`']")
            pipelines = client.search_runs([store["experiment_id"]],
                                           "tags.`reclab.pipeline` IS NOT NULL",
                                           order_by=["metrics.`precision_at_10` DESC"])
            expect(column).to_have_count(len(pipelines))
            assert [float(text) for text in column.all_inner_texts()] == pytest.approx(
                [run.data.metrics["precision_at_10"] for run in pipelines], rel=1e-9)
            for header in ("metrics.`precision_at_10`", "metrics.`recall_at_10`",
                           "metrics.`ndcg_at_10`", "params.`model`", "params.`best.model`"):
                expect(page.locator(f"[role=columnheader][col-id='{header}']")).to_be_visible()
            page.screenshot(path=ARTIFACTS / "experiment.png")

            # The run comparison page, as the runs table's "Compare" button opens it.
            page.set_viewport_size({"width": 1400, "height": 1600})
            page.goto(f"{links['ui']}/#/compare-runs?runs={json.dumps([runs[m] for m in MODELS])}"
                      f"&experiments={json.dumps([store['experiment_id']])}"
                      f"&workflowType=machine_learning")
            expect(page.get_by_text("Comparing 2 Runs from 1 Experiment")).to_be_visible()
            for name in names:
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            page.get_by_text("Visualizations", exact=True).click()   # folded: room for tables
            page.get_by_role("switch").first.click()   # parameters: "Show diff only"
            model_row = page.locator("tr", has=page.locator("th").get_by_text("model", exact=True))
            expect(model_row).to_contain_text(MODELS[0])
            expect(model_row).to_contain_text(MODELS[1])
            shown = metric_row(page, "precision_at_10", metric_keys(parents))
            for value, model in zip(shown, MODELS):
                assert value == pytest.approx(parents[model].data.metrics["precision_at_10"],
                                              rel=6e-3)
            page.locator("main").evaluate("main => main.scrollTo(0, 0)")   # the title in view
            expect(page.get_by_text("Comparing 2 Runs from 1 Experiment")).to_be_in_viewport()
            page.screenshot(path=ARTIFACTS / "compare.png")

            # A figure of the pipeline run, in the artifact viewer.
            page.set_viewport_size({"width": 1400, "height": 900})
            first = runs[MODELS[0]]
            page.goto(f"{links['ui']}/#/experiments/{store['experiment_id']}/runs/{first}"
                      f"/artifacts/figures/precision_recall_at_k.png?workflowType=machine_learning")
            image = page.locator("img[src^='blob:']").first
            expect(image).to_be_visible()
            assert image.evaluate("image => image.complete && image.naturalWidth") > 100
            page.screenshot(path=ARTIFACTS / "figure.png")

            # The evaluate stage's executed notebook, rendered (its HTML, not the JSON).
            evaluate, train = (stage_run(client, store["experiment_id"], first, name)
                               for name in ("evaluate", "train"))
            page.goto(f"{links['ui']}/#/experiments/{store['experiment_id']}/runs/"
                      f"{evaluate.info.run_id}/artifacts/notebook/05_evaluate.html"
                      f"?workflowType=machine_learning")
            notebook = page.frame_locator("iframe")
            expect(notebook.get_by_role("heading", name="5 · Evaluation")).to_be_visible()
            expect(notebook.locator("img[src^='data:image/png']").first).to_be_attached()
            page.screenshot(path=ARTIFACTS / "notebook.png")

            # The trained model: an MLflow logged model, linked to its train run and metrics.
            model = client.search_logged_models(
                [store["experiment_id"]],
                filter_string=f"source_run_id = '{train.info.run_id}'")[0]
            page.goto(f"{links['ui']}/#/experiments/{store['experiment_id']}/models/"
                      f"{model.model_id}?workflowType=machine_learning")
            expect(page.get_by_role("heading", name=MODELS[0])).to_be_visible()
            expect(page.get_by_role("link", name=train.info.run_name).first).to_be_visible()
            metric = page.get_by_role("row").filter(
                has=page.get_by_role("cell", name="precision_at_10", exact=True))
            expect(metric).to_contain_text(repr(parents[MODELS[0]].data.metrics["precision_at_10"]))
            page.screenshot(path=ARTIFACTS / "model.png")
        except Exception:
            # What the page showed when it went wrong, beside the screenshots of a passing run.
            for number, open_page in enumerate(context.pages):
                open_page.screenshot(path=ARTIFACTS / f"failure-{number}.png")
            raise
        finally:
            context.close()
    browsed = time.monotonic() - started - served

    status, out = server.stop()
    assert status == 0, out
    assert "MLflow UI stopped." in out
    with socket.socket() as probe:   # the server is gone: nothing listens on its port
        # (SO_REUSEADDR: a closed connection's TIME_WAIT on the port is no server)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))
    print(f"pipelines {store['seconds']:.0f} s, UI up {served:.0f} s later, browser {browsed:.0f} s; "
          f"requests kept from leaving the machine: {len(outside)}")


def stage_run(client, experiment_id: str, parent_run_id: str, stage: str):
    """The finished run of ``stage`` in pipeline ``parent_run_id``."""
    return client.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' and "
        f"tags.`reclab.stage` = '{stage}' and attributes.status = 'FINISHED'")[0]


def metric_keys(parents) -> list[str]:
    """Rows of the comparison page's metrics table: every key of either run, sorted."""
    return sorted({key for run in parents.values() for key in run.data.metrics})


def metric_row(page, key: str, keys: list[str]) -> list[float]:
    """Values of metric ``key``, one per run (left to right), read off the comparison page.

    The metrics table is two virtualized grids side by side (names; values), 300 pixels high,
    rendering only the rows in view. Scrolling the values grid moves the names grid to the
    values grid's previous position, so each grid is scrolled in turn (values first) to the
    row, which must then show ``key`` beside its values.
    """
    grids = page.locator(".ReactVirtualized__Grid")
    expect(grids).to_have_count(2)
    names, values = grids.nth(0), grids.nth(1)
    height = names.evaluate("grid => grid.querySelector('[style*=\"top: 0px\"]').offsetHeight")
    top = keys.index(key) * height
    values.scroll_into_view_if_needed()
    for grid in (values, names):
        grid.evaluate("(grid, top) => { grid.scrollTop = top; }", top)
        grid.locator(f"[style*='top: {top}px']").first.wait_for()
    expect(names.locator(f"[style*='top: {top}px']")).to_have_text(key)
    cells = values.locator(f"[style*='top: {top}px']")
    expect(cells).to_have_count(2)
    boxes = sorted((cells.nth(i).bounding_box()["x"], cells.nth(i).inner_text()) for i in range(2))
    return [float(text) for _, text in boxes]
