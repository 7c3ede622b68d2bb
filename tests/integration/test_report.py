"""The report from a real MLflow store written by a small sweep with a finished, a diverged
and a failed configuration: leaderboard values, images, the web page, the champion, the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from pipeline.report.champion import model_name
from pipeline.tracking import store as tracking
from tests.helpers import ROOT, MlflowServer, free_port, load_job, write_data_config, write_npz

pytestmark = pytest.mark.integration

SWEEP_YAML = """
name: report
dataset: tiny
max_attempts: 2
base:
  model: {architecture: mlp, hidden_layers: [16]}
  optimizer: {name: adam, learning_rate: 0.01}
  training: {epochs: 2, batch_size: 32, seed: 5}
grid:
  case:
    - {model.hidden_activation: relu}
    - {model.hidden_activation: tanh, loss: mse, model.output_activation: linear,
       optimizer.name: sgd, optimizer.learning_rate: 1.0e+12}
    - {model.hidden_activation: "tests.faults:explode"}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("report")
    mp = pytest.MonkeyPatch()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.setenv("PYTHONPATH", str(ROOT))  # ranks import tests.faults
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


def _runs(client: MlflowClient) -> dict[str, object]:
    exp = client.get_experiment_by_name("report")
    return {r.info.run_id: r for r in tracking.children(client, exp.experiment_id)}


def test_sweep_reports_failure_but_keeps_the_rest(sweep):
    assert sweep["code"] == 1  # one configuration failed
    runs = _runs(sweep["client"])
    statuses = sorted(r.data.tags["status"] for r in runs.values())
    assert statuses == ["diverged", "failed", "finished"]  # each once: nothing duplicated
    failed = next(r for r in runs.values() if r.data.tags["status"] == "failed")
    assert failed.info.status == "FAILED"
    assert failed.data.params["model.hidden_activation"] == "tests.faults:explode"


def test_leaderboard_matches_mlflow_and_lists_every_status(sweep):
    board = pd.read_csv(sweep["out"] / "leaderboard.csv")
    runs = _runs(sweep["client"])
    assert set(board["run_id"]) == set(runs)
    assert list(board["status"]) == ["finished", "diverged", "failed"]
    for row in board.itertuples():
        metrics = runs[row.run_id].data.metrics
        if row.status == "finished":
            assert row.test_accuracy == pytest.approx(metrics["test_accuracy"])
            assert row.test_loss == pytest.approx(metrics["test_loss"])
            history = sweep["client"].get_metric_history(row.run_id, "val_accuracy")
            assert row.best_val_accuracy == pytest.approx(max(m.value for m in history))
            assert row.epochs_run == 2
    assert "| failed |" in (sweep["out"] / "leaderboard.md").read_text()


def test_images_are_valid_pngs_referenced_by_the_page(sweep):
    page = (sweep["out"] / "index.html").read_text()
    for name in ("heatmap.png", "curves.png"):
        path = sweep["out"] / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as img:
            assert img.size[0] > 300 and img.size[1] > 200
        assert f'src="{name}"' in page
    assert 'href="leaderboard.csv"' in page


def test_report_is_logged_on_the_parent_run(sweep):
    client = sweep["client"]
    exp = client.get_experiment_by_name("report")
    parent = tracking.latest_parent(client, exp.experiment_id)
    logged = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"leaderboard.csv", "leaderboard.md", "heatmap.png", "curves.png",
            "index.html"} <= logged


def test_champion_loads_in_a_fresh_process_with_the_reported_accuracy(sweep):
    client = sweep["client"]
    name = model_name("report")
    version = client.get_model_version_by_alias(name, "champion")
    board = pd.read_csv(sweep["out"] / "leaderboard.csv")
    assert version.run_id == board.iloc[0]["run_id"]
    assert "test_accuracy=" in version.description
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
    assert accuracy == pytest.approx(board.iloc[0]["test_accuracy"], abs=1e-6)


def test_page_renders_in_headless_chromium_with_every_image(sweep, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get((sweep["out"] / "index.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete,"
            " i.naturalWidth])")
        rows = driver.execute_script("return document.querySelectorAll('tbody tr').length")
    finally:
        driver.quit()
    assert sorted(src for src, _, _ in images) == ["curves.png", "heatmap.png"]
    assert all(complete and width > 0 for _, complete, width in images), images
    assert rows == 3


def test_mlflow_server_serves_the_sweep_over_rest(sweep, tmp_path):
    server = MlflowServer(sweep["uri"], tmp_path, free_port()).start()
    base = server.url
    try:
        with urllib.request.urlopen(
                f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=report") as r:
            exp_id = json.load(r)["experiment"]["experiment_id"]
        body = json.dumps({"experiment_ids": [exp_id], "filter": "tags.role = 'config'",
                           "max_results": 100}).encode()
        req = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            runs = json.load(r)["runs"]
    finally:
        server.kill(signal.SIGTERM)
    assert len(runs) == 3
    by_status = {next(t["value"] for t in run["data"]["tags"] if t["key"] == "status"): run
                 for run in runs}
    assert set(by_status) == {"finished", "diverged", "failed"}
    metrics = {m["key"] for m in by_status["finished"]["data"]["metrics"]}
    assert {"test_accuracy", "val_accuracy", "loss"} <= metrics
