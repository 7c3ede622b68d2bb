"""The report from a real MLflow store written by a small sweep with replicates: two finished
configurations, a diverged and a failed one, two replicates each. Leaderboard statistics against
a direct computation, images, the web page, the champion, the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from pipeline.report.champion import model_name
from pipeline.tracking import store as tracking
from tests.helpers import (
    ROOT,
    MlflowServer,
    chromium,
    free_port,
    load_job,
    write_data_config,
    write_npz,
)
from tests.helpers.stores import sqlite_store
from tests.helpers.suite import slow_fixture

pytestmark = pytest.mark.integration

SWEEP_YAML = """
name: report
dataset: tiny
max_attempts: 2
repeats: 2
base:
  model: {architecture: mlp, hidden_layers: [16]}
  optimizer: {name: adam, learning_rate: 0.01}
  training: {epochs: 2, batch_size: 32, seed: 5}
grid:
  case:
    - {model.hidden_activation: relu}
    - {model.hidden_activation: sigmoid}
    - {model.hidden_activation: tanh, loss: mse, model.output_activation: linear,
       optimizer.name: sgd, optimizer.learning_rate: 1.0e+12}
    - {model.hidden_activation: "tests.helpers.faults:explode"}
"""


@pytest.fixture(scope="module")
@slow_fixture("prepares a dataset, sweeps it (finished, diverged and failing cells, replicates, "
              "diagnostics) and builds the report once for every test of the module")
def sweep(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("report")
    mp = pytest.MonkeyPatch()
    uri = sqlite_store(root / "mlflow.db")
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.setenv("PYTHONPATH", str(ROOT))  # ranks import tests.helpers.faults
    cfg = write_data_config(root, write_npz(root / "tiny.npz"))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    (root / "sweep.yaml").write_text(SWEEP_YAML)
    data = root / "processed" / "tiny"
    code = load_job("train_sweep").main(["--config", str(root / "sweep.yaml"), "--data",
                                         str(data), "--checkpoint-dir", str(root / "ckpt")])
    out = root / "out"
    assert load_job("compare").main(["--experiment", "report", "--output", str(out)]) == 0
    yield {"root": root, "uri": uri, "code": code, "out": out, "data": data,
           "client": MlflowClient(uri)}
    mp.undo()


@pytest.fixture(scope="module")
def server(sweep, tmp_path_factory):
    """One ``mlflow server`` on the sweep's store for the tests that read it over HTTP: each
    start imports MLflow's whole server, seconds of CPU."""
    started = MlflowServer(sweep["uri"], tmp_path_factory.mktemp("server"), free_port()).start()
    yield started
    started.kill(signal.SIGTERM)


def _runs(client: MlflowClient) -> dict[str, object]:
    exp = client.get_experiment_by_name("report")
    return {r.info.run_id: r for r in tracking.children(client, exp.experiment_id)}


def test_sweep_reports_failure_but_keeps_the_rest(sweep):
    assert sweep["code"] == 1  # one configuration failed
    runs = _runs(sweep["client"])
    statuses = sorted(r.data.tags["status"] for r in runs.values())
    # each replicate once: nothing duplicated
    assert statuses == ["diverged"] * 2 + ["failed"] * 2 + ["finished"] * 4
    failed = [r for r in runs.values() if r.data.tags["status"] == "failed"]
    assert all(r.info.status == "FAILED" for r in failed)
    assert {r.data.params["model.hidden_activation"] for r in failed} == {
        "tests.helpers.faults:explode"}
    assert sorted(r.data.tags["replicate"] for r in failed) == ["0", "1"]


def test_leaderboard_statistics_match_a_direct_computation(sweep):
    board = pd.read_csv(sweep["out"] / "leaderboard.csv")
    runs = _runs(sweep["client"])
    assert len(board) == 4  # one row per configuration, every status kept
    by_cell: dict[str, list[float]] = {}
    for run in runs.values():  # cells are ranked on the last epoch's validation accuracy
        if run.data.tags["status"] == "finished":
            by_cell.setdefault(run.data.tags["cell"], []).append(
                run.data.metrics["val_accuracy"])
    for cell, values in by_cell.items():
        row = board[board["cell"] == cell].iloc[0]
        assert len(values) == 2 and row.n_finished == 2
        assert row["mean"] == pytest.approx(np.mean(values))
        assert row["std"] == pytest.approx(np.std(values, ddof=1))
        assert row.ci_low <= row["mean"] <= row.ci_high
    assert board.iloc[0]["mean"] == max(np.mean(v) for v in by_cell.values())  # best first
    assert board["p_best"].sum() == pytest.approx(1.0)
    assert bool(board.iloc[0]["is_best"]) and board.iloc[0]["verdict"] == "best"
    assert set(board["verdict"]) <= {"best", "tied", "undecided", "worse"}
    for row in board[~board["is_best"] & board["diff"].notna()].itertuples():
        assert row.diff_low <= row.diff <= row.diff_high
    diverged = board[board["n_diverged"] == 2]
    failed = board[board["n_failed"] == 2]
    assert len(diverged) == 1 and len(failed) == 1 and failed["mean"].isna().all()
    markdown = (sweep["out"] / "leaderboard.md").read_text()
    assert "Best:" in markdown and "2 failed" in markdown


def test_images_are_valid_pngs_referenced_by_the_page(sweep):
    page = (sweep["out"] / "index.html").read_text()
    for name in ("heatmap.png", "curves.png", "effects.png", "diag_grad.png", "diag_out.png"):
        path = sweep["out"] / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as img:
            assert img.size[0] > 300 and img.size[1] > 150
        assert f'src="{name}"' in page
    assert 'href="leaderboard.csv"' in page
    assert "Why: what the diagnostics measured" in page and "after one epoch" in page.lower()


def test_report_is_logged_on_the_parent_run(sweep):
    client = sweep["client"]
    exp = client.get_experiment_by_name("report")
    parent = tracking.latest_parent(client, exp.experiment_id)
    logged = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"leaderboard.csv", "leaderboard.md", "heatmap.png", "curves.png",
            "index.html", "runs.csv"} <= logged


def test_champion_is_the_best_cells_best_replicate_and_says_if_it_won(sweep):
    client = sweep["client"]
    name = model_name("report")
    version = client.get_model_version_by_alias(name, "champion")
    board = pd.read_csv(sweep["out"] / "leaderboard.csv")
    runs = pd.read_csv(sweep["out"] / "runs.csv")
    best_cell = runs[(runs["cell"] == board.iloc[0]["cell"]) & (runs["status"] == "finished")]
    # Chosen on validation: the test split plays no part in the choice.
    best_run = best_cell.sort_values("final_val_accuracy", ascending=False).iloc[0]
    assert version.run_id == best_run["run_id"]
    assert "test_accuracy=" in version.description
    assert version.tags["decision"].startswith(("Decisive", "Tied", "Undecided", "Not tested"))
    assert version.tags["decision"] in version.description
    script = (
        "import sys, json, numpy as np, mlflow\n"
        "from pathlib import Path\n"
        "from pipeline.data.manifest import load_manifest\n"
        "from pipeline.data import feed\n"
        "root = Path(sys.argv[1]); m = load_manifest(root)\n"
        "x, y = feed.read_shards([root / 'test' / s.file for s in m.splits['test'].shards],"
        " m.image_shape)\n"
        f"model = mlflow.pyfunc.load_model('models:/{name}@champion')\n"
        "p = np.asarray(model.predict(x.astype(np.float32) / 255.0))\n"
        "print(json.dumps(float((p.argmax(1) == y).mean())))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": sweep["uri"], "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", script, str(sweep["data"])], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    accuracy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert accuracy == pytest.approx(best_run["test_accuracy"], abs=1e-6)


def test_page_renders_in_headless_chromium_with_every_image(sweep, tmp_path):
    driver = chromium(tmp_path)
    try:
        driver.get((sweep["out"] / "index.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete,"
            " i.naturalWidth])")
        rows = driver.execute_script(
            "return document.querySelector('table tbody').querySelectorAll('tr').length")
        answer = driver.execute_script("return document.querySelector('.answer').innerText")
        width = driver.execute_script("return document.querySelector('table').scrollWidth")
        toc = driver.execute_script("return Array.from(document.querySelectorAll('nav.toc a'))"
                                    ".map(a => a.getAttribute('href'))")
        headings = driver.execute_script("return Array.from(document.querySelectorAll('h2'))"
                                         ".map(h => '#' + h.id)")
        lead_links = driver.execute_script(
            "return Array.from(document.querySelectorAll('.answer a')).map(a => "
            "document.querySelector(a.getAttribute('href')) !== null)")
        run_links = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')[0].querySelectorAll('td a'))"
            ".map(a => a.href)")
        page_overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        below_first_screen = driver.execute_script(
            "return document.querySelector('nav.toc').getBoundingClientRect().bottom")
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert {"heatmap.png", "curves.png", "effects.png"} <= {src for src, _, _ in images}
    assert all(complete and width > 0 for _, complete, width in images), images
    assert rows == 4
    assert answer.startswith("Best:") and "replicates" in answer and "How sure:" in answer
    assert width <= 1280  # the leaderboard fits a laptop's screen
    assert page_overflow <= 0  # and the page itself never scrolls sideways
    assert toc == headings and len(toc) >= 4  # a table of contents naming every section
    assert lead_links and all(lead_links)  # each answer line links to a section that exists
    assert below_first_screen < 900  # answer and contents on the first screen
    run_ids = set(_runs(sweep["client"]))
    assert len(run_links) == len(run_ids)  # every replicate's run, from its cell's row
    assert {link.rsplit("/runs/", 1)[1] for link in run_links} == run_ids


def test_mlflow_server_serves_the_sweep_over_rest(server):
    base = server.url
    with urllib.request.urlopen(
            f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=report") as r:
        exp_id = json.load(r)["experiment"]["experiment_id"]
    body = json.dumps({"experiment_ids": [exp_id], "filter": "tags.role = 'config'",
                       "max_results": 100}).encode()
    req = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        runs = json.load(r)["runs"]
    assert len(runs) == 8
    by_status = {next(t["value"] for t in run["data"]["tags"] if t["key"] == "status"): run
                 for run in runs}
    assert set(by_status) == {"finished", "diverged", "failed"}
    metrics = {m["key"] for m in by_status["finished"]["data"]["metrics"]}
    assert {"test_accuracy", "val_accuracy", "loss"} <= metrics


def test_the_mlflow_ui_lists_the_sweeps_runs_at_the_printed_link(sweep, server, tmp_path):
    """MLflow 3's UI opens an experiment on a GenAI overview; the link the sweep prints goes
    to the training runs, and a real browser finds them there."""
    import time

    from pipeline.tracking.store import experiment_link

    exp_id = sweep["client"].get_experiment_by_name("report").experiment_id
    parent = tracking.latest_parent(sweep["client"], exp_id).info.run_name
    listed = f"{len(_runs(sweep['client'])) + 1} matching runs"  # the replicates + the sweep
    driver = chromium(tmp_path / "profile")
    try:
        driver.get(experiment_link(server.url, exp_id))
        deadline, text = time.monotonic() + 90, ""
        # The count can render before the rows: wait for both.
        while time.monotonic() < deadline and not (listed in text and parent in text):
            time.sleep(1)
            text = driver.execute_script("return document.body.innerText")
    finally:
        driver.quit()
    # the sweep's parent run is listed, its replicate runs nested under it (counted)
    assert parent in text and listed in text, text[-2000:]


def test_every_finished_run_logs_its_diagnostics_at_initialization_and_every_epoch(sweep):
    client = sweep["client"]
    finished = [r for r in _runs(client).values() if r.data.tags["status"] == "finished"]
    assert len(finished) == 4  # relu and sigmoid, two replicates each
    for run in finished:
        epochs = int(run.data.metrics["epochs_run"])
        keys = {k for k in run.data.metrics if k.startswith("diag.")}
        # One hidden layer and the output; the bounded/ReLU statistic by activation.
        unit = "dead" if run.data.params["model.hidden_activation"] == "relu" else "sat"
        assert {f"diag.h1.{unit}", "diag.h1.grad_norm", "diag.h1.update_ratio",
                "diag.out.sat", "diag.out.grad_logits", "diag.seconds"} <= keys
        for key in keys:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            first = 1 if key.endswith("update_ratio") else 0  # no update before training
            assert sorted(steps) == list(range(first, epochs + 1)), (key, steps)


def test_runs_are_named_by_what_the_sweep_compares_and_the_parent_holds_the_answer(sweep):
    client = sweep["client"]
    names = {r.info.run_name for r in _runs(client).values()}
    assert {"relu | ce(softmax) | s0", "sigmoid | ce(softmax) | s1",
            "explode | ce(softmax) | s0"} <= names
    assert any(n.startswith("tanh | mse(linear) | opt=sgd lr=") for n in names), names
    exp_id = client.get_experiment_by_name("report").experiment_id
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == (
        "custom_model_development")
    parent = tracking.latest_parent(client, exp_id)
    metrics, tags = parent.data.metrics, parent.data.tags
    # 4 configurations x 2 replicates: counted as such, not one as the other
    assert (metrics["cells"], metrics["runs"]) == (4, 8)
    assert parent.data.params["planned_runs"] == "8" and "configurations" not in parent.data.params
    board = pd.read_csv(sweep["out"] / "leaderboard.csv")
    best = board[board["is_best"]].iloc[0]
    assert tags["best_configuration"] == best["configuration"]
    assert metrics["best_mean"] == pytest.approx(best["mean"])
    assert metrics["best_ci_low"] <= metrics["best_mean"] <= metrics["best_ci_high"]
    note = tags["mlflow.note.content"]
    assert tags["verdict"] in note and "/artifacts/report/index.html?" in note
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert "report/index.html" in logged


def test_the_printed_link_opens_every_replicate_run_with_the_swept_params_and_metric(
        sweep, server, tmp_path, capsys):
    """``make ui``'s link: the runs table, one row per replicate (not one collapsed parent),
    with the cell label, the swept parameters and the primary metric as columns."""
    import time

    assert load_job("links").main(["--ui", server.url]) == 0
    printed = capsys.readouterr().out.splitlines()
    link = next(line.split(": ", 1)[1] for line in printed if line.startswith("report: "))
    driver = chromium(tmp_path / "profile")
    try:
        driver.get(link)
        deadline, text = time.monotonic() + 90, ""
        while time.monotonic() < deadline and not (
                "8 matching runs" in text and "relu | ce(softmax) | s0" in text):
            time.sleep(1)
            text = driver.execute_script("return document.body.innerText")
        driver.save_screenshot(str(tmp_path / "runs.png"))
    finally:
        driver.quit()
    assert "8 matching runs" in text and "relu | ce(softmax) | s0" in text, text[-2000:]
    for column in ("configuration", "model.hidden_activation", "test_accuracy"):
        assert column in text, column
    parent = tracking.latest_parent(sweep["client"], sweep["client"].get_experiment_by_name(
        "report").experiment_id).info.run_name
    assert parent not in text  # the replicates themselves, not their parent's row
