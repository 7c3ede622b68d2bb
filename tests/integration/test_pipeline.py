"""The three stages on a tiny generated dataset: real Spark, 2 Horovod ranks, real MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from pipeline.data import feed
from pipeline.data.manifest import load_manifest
from pipeline.tracking import store as tracking
from tests.helpers import load_job, write_data_config, write_npz
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration

EPOCHS = 4
SWEEP_YAML = """
name: tiny
dataset: tiny
base:
  model: {{architecture: mlp, hidden_layers: [16]}}
  optimizer: {{name: adam, learning_rate: 0.01}}
  training: {{epochs: {epochs}, batch_size: 32, seed: 3}}
grid:
  model.hidden_activation: [relu, tanh]
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def prepared(workspace, spark):
    source = write_npz(workspace / "tiny.npz")
    cfg = write_data_config(workspace, source)
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return workspace / "processed" / "tiny"


def test_prepare_writes_shards_and_manifest(prepared):
    manifest = load_manifest(prepared)
    assert manifest.image_shape == [12, 12, 1] and manifest.num_classes == 4
    assert manifest.splits["test"].rows == 160  # the source's own test split is kept
    assert manifest.splits["train"].rows + manifest.splits["val"].rows == 480
    assert manifest.splits["val"].rows == 120  # ceil(0.25 * 120) per class, 4 classes
    assert manifest.splits["val"].class_histogram == [30, 30, 30, 30]  # stratified
    for split, info in manifest.splits.items():
        files = sorted((prepared / split).glob("part-*.parquet"))
        assert len(files) == len(info.shards) == 4
        assert sum(pq.read_metadata(f).num_rows for f in files) == info.rows
        assert [s.rows for s in info.shards] == [pq.read_metadata(f).num_rows for f in files]
    table = pq.read_table(next((prepared / "train").glob("part-*.parquet")))
    assert str(table.schema.field("image").type) == "binary"  # uint8 bytes, not floats
    assert not list(prepared.parent.glob(".tiny.tmp-*")), "staging folder left behind"


def test_prepare_rerun_is_a_no_op_with_the_same_fingerprint(prepared, capsys):
    before = (prepared / "manifest.json").stat().st_mtime_ns
    cfg = prepared.parent.parent / "tiny.yaml"
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (prepared / "manifest.json").stat().st_mtime_ns == before


def test_ranks_read_disjoint_shards_covering_the_split(prepared):
    manifest = load_manifest(prepared)
    parts = [feed.rank_split(prepared, manifest, "train", r, 2) for r in range(2)]
    assert sum(len(y) for _, y in parts) == manifest.splits["train"].rows
    files = [set(manifest.shard_files(prepared, "train", r, 2)) for r in range(2)]
    assert not files[0] & files[1]


@pytest.fixture(scope="module")
def sweep_run(prepared, workspace, spark):
    """Run the tiny sweep once on 2 ranks into a module-wide MLflow store."""
    uri = sqlite_store(workspace / "mlflow.db")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    sweep = workspace / "sweep.yaml"
    sweep.write_text(SWEEP_YAML.format(epochs=EPOCHS))
    args = ["--config", str(sweep), "--data", str(prepared), "--num-proc", "2",
            "--ranks-per-trial", "2", "--checkpoint-dir", str(workspace / "ckpt")]
    code = load_job("train_sweep").main(args)
    yield {"uri": uri, "args": args, "code": code, "client": MlflowClient(uri)}
    mp.undo()


def _children(client: MlflowClient):
    exp = client.get_experiment_by_name("tiny")
    return tracking.children(client, exp.experiment_id)


def test_sweep_logs_parent_and_child_runs(sweep_run):
    assert sweep_run["code"] == 0
    client = sweep_run["client"]
    exp = client.get_experiment_by_name("tiny")
    parents = client.search_runs([exp.experiment_id], "tags.role = 'sweep'")
    assert len(parents) == 1
    children = _children(client)
    assert sorted(r.data.params["model.hidden_activation"] for r in children) == ["relu", "tanh"]
    for run in children:
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert tags["status"] == "finished" and run.info.status == "FINISHED"
        assert tags["sweep"] == "tiny" and len(tags["config_hash"]) == 16
        assert run.data.params["training.batch_size"] == "32"


def test_per_epoch_metrics_and_loss_goes_down(sweep_run):
    client = sweep_run["client"]
    for run in _children(client):
        rid = run.info.run_id
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
                    "samples_per_sec"):
            history = client.get_metric_history(rid, key)
            assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(EPOCHS))
        losses = [m.value for m in sorted(client.get_metric_history(rid, "loss"),
                                          key=lambda m: m.step)]
        assert losses[-1] < losses[0] * 0.7, losses
        assert run.data.metrics["test_accuracy"] > 0.5  # 4 classes: chance is 0.25


def test_logged_model_reproduces_the_test_accuracy(sweep_run, prepared):
    """The model in MLflow, loaded in this process, scores the whole test split as logged."""
    mlflow.set_tracking_uri(sweep_run["uri"])
    manifest = load_manifest(prepared)
    files = [prepared / "test" / s.file for s in manifest.splits["test"].shards]
    x, y = feed.read_shards(files, manifest.image_shape)
    run = _children(sweep_run["client"])[0]
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    probs = np.asarray(model.predict(x.astype(np.float32) / 255.0))
    accuracy = float((probs.argmax(axis=1) == y).mean())
    assert accuracy == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)
    artifacts = {a.path for a in sweep_run["client"].list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "curves.png", "resolved_config.json"} <= artifacts
    confusion = sweep_run["client"].download_artifacts(run.info.run_id, "resolved_config.json")
    assert json.loads(Path(confusion).read_text())["config_hash"] == run.data.tags["config_hash"]


def test_rerun_skips_finished_configurations(sweep_run, capsys):
    before = len(_children(sweep_run["client"]))
    assert load_job("train_sweep").main(sweep_run["args"]) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().out
    assert len(_children(sweep_run["client"])) == before


def test_compare_writes_a_leaderboard_matching_mlflow(sweep_run, workspace):
    out = workspace / "report"
    assert load_job("compare").main(["--experiment", "tiny", "--output", str(out), "--all"]) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    per_run = pd.read_csv(out / "runs.csv")
    runs = {r.info.run_id: r for r in _children(sweep_run["client"])}
    assert set(per_run["run_id"]) == set(runs)
    for row in per_run.itertuples():
        assert row.test_accuracy == pytest.approx(runs[row.run_id].data.metrics["test_accuracy"])
        assert row.status == "finished"
    # one replicate per configuration here: each cell's mean is its run's last validation
    # accuracy (cells are ranked on validation)
    means = per_run.set_index("cell")["final_val_accuracy"]
    for row in board.itertuples():
        assert row.mean == pytest.approx(means[row.cell]) and row.n_finished == 1
    assert list(board["mean"]) == sorted(board["mean"], reverse=True)
    md = (out / "leaderboard.md").read_text()
    assert md.count("\n| ") == 1 + len(board)  # header + one line per configuration
