"""A driver interrupted or crashing mid-sweep never leaves its parent run FINISHED."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import load_sweep_config
from pipeline.tracking import store, vocab
from pipeline.train.driver import launch
from pipeline.train.driver.sweep import SweepOptions, run_sweep
from tests.helpers import prepare_tiny
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fault, status, mlflow_status", [
    (KeyboardInterrupt, "killed", "KILLED"), (RuntimeError, "failed", "FAILED")])
def test_an_interrupted_or_crashed_driver_ends_its_parent_run(tmp_path, spark, monkeypatch,
                                                              fault, status, mlflow_status):
    data = prepare_tiny(tmp_path)
    (tmp_path / "s.yaml").write_text("name: halt\ndataset: tiny\n"
                                     "base: {training: {batch_size: 32}}\n")

    def explode(self, max_attempts):  # the launch is where a user's Ctrl-C lands
        raise fault("injected")

    monkeypatch.setattr(launch.Launches, "run", explode)
    uri = sqlite_store(tmp_path / "mlflow.db")
    with pytest.raises(fault):
        run_sweep(spark, load_sweep_config(tmp_path / "s.yaml"),
                  SweepOptions(data, num_proc=2, tracking_uri=uri,
                               checkpoint_dir=tmp_path / "ckpt", spool_dir=tmp_path / "spool"))
    client = MlflowClient(uri)
    parent = store.latest_parent(client, client.get_experiment_by_name("halt").experiment_id)
    assert parent.data.tags[vocab.TAG_STATUS] == status
    assert parent.info.status == mlflow_status
