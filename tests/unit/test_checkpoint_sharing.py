"""Two experiments on one ``--checkpoint-dir`` with the same configuration, against a real
SQLite store and real TensorFlow checkpoints: each keeps its own checkpoint folder, so one
training and clearing never touches the other's, and a relaunch of the first still resumes."""

from __future__ import annotations

import tensorflow as tf
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig, TrackingConfig
from pipeline.tracking.recorder import NullRecorder
from pipeline.tracking.resume import claim_trial
from pipeline.tracking.vocab import (
    FAILED,
    ROLE_CONFIG,
    ROLE_SWEEP,
    TAG_DATASET,
    TAG_HASH,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
)
from pipeline.train import checkpoints
from pipeline.train.contract import RankJob
from tests.helpers import rank_job, trial
from tests.helpers.stores import sqlite_store

FP, HASH = "fp", "cfg-1"
NO_WAIT = TrackingConfig(retries=0, backoff_seconds=0.0, claim_settle_seconds=0.0)


class _Run(NullRecorder):
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id


def _job(client: MlflowClient, db: str, name: str, root: str, spool: str) -> RankJob:
    exp_id = client.create_experiment(name)
    parent = client.create_run(exp_id, tags={TAG_ROLE: ROLE_SWEEP}).info.run_id
    return rank_job([trial(HASH, RunConfig())],
                    tracking=dict(uri=db, experiment_id=exp_id, parent_run_id=parent,
                                  spool_dir=spool, settings=NO_WAIT),
                    data=dict(fingerprint=FP), runtime=dict(checkpoint_dir=root))


def _interrupted_run(client: MlflowClient, exp_id: str) -> str:
    run_id = client.create_run(exp_id, run_name=HASH, tags={
        TAG_ROLE: ROLE_CONFIG, TAG_HASH: HASH, TAG_DATASET: FP, TAG_PARENT: "an-old-sweep",
        TAG_STATUS: FAILED}).info.run_id
    client.log_metric(run_id, "loss", 1.0, step=0)
    client.set_terminated(run_id, "FAILED")
    return run_id


def _train_one_epoch(job: RankJob, run_id: str, bias: float) -> None:
    """What the rank does for one epoch: EpochCheckpoint into the configuration's folder."""
    from pipeline.train.rank.epoch_checkpoint import EpochCheckpoint

    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    model.layers[0].bias.assign([bias])
    folder = checkpoints.trial_dir(job.runtime.checkpoint_dir, job.tracking.experiment_id, HASH)
    EpochCheckpoint(folder, tf.train.Checkpoint(model=model), _Run(run_id)).on_epoch_end(0)


def test_experiments_sharing_a_checkpoint_dir_keep_each_others_checkpoints(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    db = sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(db)
    root, spool = str(tmp_path / "ckpt"), str(tmp_path / "spool")
    first = _job(client, db, "first", root, spool)
    second = _job(client, db, "second", root, spool)

    # The first experiment's run was interrupted after epoch 1, its checkpoint on disk.
    interrupted = _interrupted_run(client, first.tracking.experiment_id)
    _train_one_epoch(first, interrupted, bias=1.0)

    # The second experiment trains the same configuration: its own run, its own folder,
    # which it clears once its results are recorded.
    start = claim_trial(second, second.trials[0])
    assert start.run_id != interrupted and start.state is None
    _train_one_epoch(second, start.run_id, bias=2.0)
    checkpoints.clear(checkpoints.trial_dir(root, second.tracking.experiment_id, HASH))

    # The first experiment's relaunch resumes its run from its own, intact checkpoint.
    resumed = claim_trial(first, first.trials[0])
    assert resumed.run_id == interrupted and resumed.state.epoch == 1
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    tf.train.Checkpoint(model=model).read(resumed.state.prefix).expect_partial()
    assert model.layers[0].bias.numpy().tolist() == [1.0]


def test_the_folder_is_keyed_by_experiment_and_configuration(tmp_path):
    one = checkpoints.trial_dir(tmp_path, "1", HASH)
    assert one != checkpoints.trial_dir(tmp_path, "2", HASH)
    assert one == checkpoints.trial_dir(tmp_path, "1", HASH)  # a relaunch finds it again
    assert one != checkpoints.trial_dir(tmp_path, "1", "cfg-2")
