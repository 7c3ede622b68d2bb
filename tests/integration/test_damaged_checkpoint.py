"""A real sweep (Spark driver, one Horovod rank, SQLite store) relaunched over an interrupted
run whose ``latest.json`` names a checkpoint the disk never received intact: the rank's
restore fails, and the configuration trains afresh in its run to the end, with a warning and a
tag, instead of failing the launch on every relaunch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import load_sweep_config
from pipeline.data.manifest import load_manifest
from pipeline.tracking import store as tracking
from pipeline.tracking.vocab import (
    FAILED,
    ROLE_CONFIG,
    TAG_CHECKPOINT_WARNING,
    TAG_DATASET,
    TAG_HASH,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
)
from pipeline.train import checkpoints
from pipeline.train.driver.plan import plan_trials
from tests.helpers import load_job, prepare_tiny
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration

SWEEP = """
name: damaged
dataset: tiny
tracking: {lease_seconds: 60, claim_settle_seconds: 0.2}
base:
  model: {hidden_layers: [8]}
  training: {epochs: 2, batch_size: 16, seed: 4}
"""


@pytest.mark.slow(reason="a whole sweep through spark-submit's driver and a Horovod rank: "
                  "Spark and TensorFlow start-up alone take most of a minute")
def test_a_damaged_checkpoint_restarts_its_configuration_afresh(tmp_path, spark, monkeypatch):
    data = prepare_tiny(tmp_path, n_train=160, n_test=40)
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    manifest = load_manifest(data)
    [trial] = plan_trials(load_sweep_config(tmp_path / "sweep.yaml"), manifest, 1, None)
    uri = sqlite_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    exp_id = tracking.experiment_id(client, "damaged", uri)
    run_id = client.create_run(exp_id, run_name=trial.name, tags={
        TAG_ROLE: ROLE_CONFIG, TAG_HASH: trial.config_hash, TAG_DATASET: manifest.fingerprint,
        TAG_PARENT: "an-old-sweep", TAG_STATUS: FAILED}).info.run_id
    client.log_metric(run_id, "loss", 1.0, step=0)
    client.set_terminated(run_id, "FAILED")
    # What a host crash can leave: latest.json renamed into place, the files it names empty.
    folder = checkpoints.trial_dir(tmp_path / "ckpt", exp_id, trial.config_hash)
    folder.mkdir(parents=True)
    Path(folder / "epoch-0001.index").write_bytes(b"")
    Path(folder / "epoch-0001.data-00000-of-00001").write_bytes(b"")
    (folder / "latest.json").write_text(json.dumps({
        "epoch": 1, "prefix": str(folder / "epoch-0001"), "run_id": run_id,
        "logs": {"loss": 1.0}}))

    code = load_job("train_sweep").main([
        "--config", str(tmp_path / "sweep.yaml"), "--data", str(data), "--num-proc", "1",
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--spool-dir", str(tmp_path / "spool")])

    assert code == 0
    [run] = tracking.children(client, exp_id)
    assert run.info.run_id == run_id  # the interrupted run, taken over and finished
    assert run.data.tags["status"] == "finished"
    warning = run.data.tags[TAG_CHECKPOINT_WARNING]
    assert f"checkpoint {folder / 'epoch-0001'} (epoch 1) could not be restored" in warning
    assert "starting afresh from epoch 0" in warning
    assert {m.step for m in client.get_metric_history(run_id, "val_loss")} == {0, 1}
    assert not folder.exists()
