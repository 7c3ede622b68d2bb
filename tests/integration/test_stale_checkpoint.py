"""A real sweep (Spark driver, one Horovod rank, SQLite store) whose checkpoint folder holds a
latest.json written against another tracking store (``make clean``, a new server): the
configuration trains afresh and finishes, instead of "MLflow unusable" on every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import load_sweep_config
from pipeline.data.manifest import load_manifest
from pipeline.tracking import store as tracking
from pipeline.tracking.vocab import TAG_LEASE, TAG_RESUMED_FROM
from pipeline.train import checkpoints
from pipeline.train.driver.plan import plan_trials
from tests.helpers import load_job, prepare_tiny
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration

SWEEP = """
name: stale
dataset: tiny
tracking: {lease_seconds: 60, claim_settle_seconds: 0.2}
base:
  model: {hidden_layers: [8]}
  training: {epochs: 2, batch_size: 16, seed: 4}
"""


def test_a_checkpoint_from_another_store_does_not_block_its_configuration(tmp_path, spark,
                                                                          monkeypatch):
    data = prepare_tiny(tmp_path, n_train=160, n_test=40)
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    [trial] = plan_trials(load_sweep_config(tmp_path / "sweep.yaml"), load_manifest(data), 1,
                          None)
    # as an earlier store's sweep of the same name left it (its first experiment, id 1)
    folder = checkpoints.trial_dir(tmp_path / "ckpt", "1", trial.config_hash)
    folder.mkdir(parents=True)
    Path(folder / "epoch-0001.index").write_bytes(b"")
    (folder / "latest.json").write_text(json.dumps({
        "epoch": 1, "prefix": str(folder / "epoch-0001"), "run_id": "f" * 32,
        "logs": {"loss": 1.0}}))
    uri = sqlite_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    code = load_job("train_sweep").main([
        "--config", str(tmp_path / "sweep.yaml"), "--data", str(data), "--num-proc", "1",
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--spool-dir", str(tmp_path / "spool")])

    assert code == 0
    client = MlflowClient(uri)
    [run] = tracking.children(client, client.get_experiment_by_name("stale").experiment_id)
    assert run.data.tags["status"] == "finished" and TAG_RESUMED_FROM not in run.data.tags
    assert run.data.tags[TAG_LEASE] == "60"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [0, 1]
    assert not folder.exists()
