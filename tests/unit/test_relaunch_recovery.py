"""After a failed launch, against a real SQLite store: a run whose records wait in the spool
(it trained while MLflow was down) is delivered, not deleted as an empty claim, and its
configuration is not trained again; a claim that trained nothing is still deleted."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig
from pipeline.tracking import spool
from pipeline.tracking.vocab import (
    FINISHED,
    ROLE_CONFIG,
    ROLE_SWEEP,
    RUNNING,
    TAG_DATASET,
    TAG_HASH,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
)
from pipeline.train.driver.launch import Launches
from tests.helpers import free_port, rank_job, trial
from tests.helpers.stores import sqlite_store

FP = "fp"


@pytest.fixture
def store(tmp_path, monkeypatch) -> tuple[str, MlflowClient, str, str]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    exp_id = client.create_experiment("relaunch")
    parent = client.create_run(exp_id, tags={TAG_ROLE: ROLE_SWEEP}).info.run_id
    return uri, client, exp_id, parent


def _claimed(client: MlflowClient, exp_id: str, parent: str, config_hash: str) -> str:
    """A child run as rank 0 leaves it when claimed: running, no metrics yet in MLflow."""
    return client.create_run(exp_id, run_name=config_hash, tags={
        TAG_ROLE: ROLE_CONFIG, TAG_HASH: config_hash, TAG_DATASET: FP, TAG_PARENT: parent,
        TAG_STATUS: RUNNING}).info.run_id


def _trained_offline(spool_dir: Path, run_id: str) -> None:
    """What rank 0 spooled for a run it trained to the end while MLflow was unreachable."""
    log = spool.RunLog(MlflowClient(f"http://127.0.0.1:{free_port()}"), run_id, spool_dir,
                       spool.Retry(0, 0.0), say=lambda m: None)
    for epoch in range(2):
        log.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
    log.log_metric("epochs_run", 2)
    log.log_metric("test_accuracy", 0.75)
    log.set_tag(TAG_STATUS, FINISHED)
    log.set_terminated("FINISHED")
    log.close()


def test_a_run_with_spooled_records_is_delivered_not_deleted_nor_trained_again(tmp_path,
                                                                             store):
    uri, client, exp_id, parent = store
    spool_dir = tmp_path / "spool"
    trained = _claimed(client, exp_id, parent, "trained-offline")
    _trained_offline(spool_dir, trained)
    claim_only = _claimed(client, exp_id, parent, "claimed-only")
    job = rank_job([trial("trained-offline", RunConfig()), trial("claimed-only", RunConfig())],
                   tracking=dict(uri=uri, experiment_id=exp_id, parent_run_id=parent,
                                 spool_dir=str(spool_dir)),
                   data=dict(fingerprint=FP), runtime=dict(checkpoint_dir=str(tmp_path / "ckpt")))
    said: list[str] = []
    launches = Launches(client, job, 1, said.append)

    launches._after_failure()

    run = client.get_run(trained)
    assert run.info.lifecycle_stage == "active"  # not deleted as an empty claim
    assert run.data.tags[TAG_STATUS] == FINISHED and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(trained, "loss")] == [0, 1]
    assert not list(spool_dir.glob("*.jsonl"))
    assert [t.config_hash for t in launches.remaining] == ["claimed-only"]  # not trained again
    assert [o.config_hash for o in launches.outcomes] == ["trained-offline"]
    assert client.get_run(claim_only).info.lifecycle_stage == "deleted"
    assert any(f"delivered 6 records of run {trained}" in line for line in said)


def test_a_run_whose_spool_cannot_be_delivered_yet_is_kept_and_not_retrained(tmp_path, store):
    uri, client, exp_id, parent = store
    spool_dir = tmp_path / "spool"
    trained = _claimed(client, exp_id, parent, "trained-offline")
    spool_dir.mkdir()
    (spool_dir / f"{trained}.jsonl").write_text('{"op": "no-such-op"}\n')  # refused by MLflow
    _trained_offline(spool_dir, trained)
    job = rank_job([trial("trained-offline", RunConfig())],
                   tracking=dict(uri=uri, experiment_id=exp_id, parent_run_id=parent,
                                 spool_dir=str(spool_dir)),
                   data=dict(fingerprint=FP), runtime=dict(checkpoint_dir=str(tmp_path / "ckpt")))
    launches = Launches(client, job, 1, lambda m: None)

    launches._after_failure()

    assert client.get_run(trained).info.lifecycle_stage == "active"
    assert launches.remaining == []
    assert "records waiting in the spool" in launches.unstarted["trained-offline"]
    assert launches.spooled == [str(spool_dir / f"{trained}.jsonl")]
