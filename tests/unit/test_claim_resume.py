"""Rank 0's claim of a configuration with a checkpoint, against a real SQLite store: a stale
``latest.json`` starts the configuration afresh (never "MLflow unusable" forever, never another
experiment's run), and a resumed run's spooled epochs arrive once, before it goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig, TrackingConfig
from pipeline.tracking import spool
from pipeline.tracking.recorder import RunRecorder
from pipeline.tracking.resume import claim_trial
from pipeline.tracking.vocab import (
    FAILED,
    ROLE_CONFIG,
    ROLE_SWEEP,
    RUNNING,
    TAG_DATASET,
    TAG_HASH,
    TAG_PARENT,
    TAG_RESUMED_FROM,
    TAG_ROLE,
    TAG_STATUS,
    UNSTARTED,
)
from pipeline.train import checkpoints
from pipeline.train.contract import RankJob
from tests.helpers import free_port, rank_job, trial
from tests.helpers.stores import sqlite_store

FP, HASH = "fp", "cfg-1"
NO_WAIT = TrackingConfig(retries=0, backoff_seconds=0.0, claim_settle_seconds=0.0)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    return sqlite_store(tmp_path_factory.mktemp("store") / "mlflow.db")


@pytest.fixture
def sweep(db, tmp_path, monkeypatch) -> tuple[MlflowClient, RankJob]:
    """A fresh experiment with a running sweep, and the job its rank 0 holds."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(db)
    exp_id = client.create_experiment(tmp_path.name)
    parent = client.create_run(exp_id, tags={TAG_ROLE: ROLE_SWEEP}).info.run_id
    job = rank_job([trial(HASH, RunConfig())],
                   tracking=dict(uri=db, experiment_id=exp_id, parent_run_id=parent,
                                 spool_dir=str(tmp_path / "spool"), settings=NO_WAIT),
                   data=dict(fingerprint=FP), runtime=dict(checkpoint_dir=str(tmp_path / "ckpt")))
    return client, job


def _interrupted_run(client: MlflowClient, exp_id: str, epochs_logged: int) -> str:
    run = client.create_run(exp_id, run_name=HASH, tags={
        TAG_ROLE: ROLE_CONFIG, TAG_HASH: HASH, TAG_DATASET: FP, TAG_PARENT: "an-old-sweep",
        TAG_STATUS: FAILED})
    for epoch in range(epochs_logged):
        client.log_metric(run.info.run_id, "loss", 1.0 / (epoch + 1), step=epoch)
    client.set_terminated(run.info.run_id, "FAILED")
    return run.info.run_id


def _checkpoint(job: RankJob, run_id: str, epoch: int) -> Path:
    """A complete checkpoint as EpochCheckpoint commits it (latest.json last)."""
    folder = checkpoints.job_dir(job, HASH)
    folder.mkdir(parents=True)
    prefix = folder / f"epoch-{epoch:04d}"
    Path(f"{prefix}.index").write_bytes(b"")
    (folder / checkpoints.STATE).write_text(json.dumps({
        "epoch": epoch, "prefix": str(prefix), "run_id": run_id,
        "logs": {"loss": 0.3, "accuracy": 0.9}}))
    return folder


def _spool_epoch(job: RankJob, run_id: str, epoch: int) -> None:
    log = spool.RunLog(MlflowClient(f"http://127.0.0.1:{free_port()}"), run_id,
                       job.tracking.spool_dir, spool.Retry(0, 0.0), say=lambda m: None)
    log.log_metric("loss", 0.3, step=epoch)
    log.close()


def _steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "loss"))


def test_a_checkpoint_naming_a_run_that_does_not_exist_starts_afresh(sweep):
    client, job = sweep
    folder = _checkpoint(job, "0" * 32, 2)  # e.g. left over from before `make clean`
    start = claim_trial(job, job.trials[0])
    assert start.status != UNSTARTED and start.run_id is not None, start.reason
    assert start.state is None  # not resumed from a checkpoint of a run that is gone
    assert client.get_run(start.run_id).info.experiment_id == job.tracking.experiment_id
    assert not folder.exists()  # the stale checkpoint is cleared


def test_a_checkpoint_naming_a_deleted_run_starts_afresh(sweep):
    client, job = sweep
    gone = _interrupted_run(client, job.tracking.experiment_id, 2)
    client.delete_run(gone)
    _checkpoint(job, gone, 2)
    start = claim_trial(job, job.trials[0])
    assert start.run_id not in (None, gone) and start.state is None


def test_another_experiments_run_is_never_taken_over(sweep):
    client, job = sweep
    other = client.create_experiment(f"other-{job.tracking.experiment_id}")
    theirs = _interrupted_run(client, other, 2)  # same configuration, same checkpoint folder
    _checkpoint(job, theirs, 2)
    start = claim_trial(job, job.trials[0])
    assert start.run_id not in (None, theirs) and start.state is None
    run = client.get_run(theirs)
    assert run.data.tags[TAG_PARENT] == "an-old-sweep" and run.data.tags[TAG_STATUS] == FAILED
    assert client.get_run(start.run_id).info.experiment_id == job.tracking.experiment_id


def test_a_resumed_run_gets_its_spooled_epoch_once(sweep):
    client, job = sweep
    run_id = _interrupted_run(client, job.tracking.experiment_id, 2)  # epochs 0, 1 in MLflow
    _spool_epoch(job, run_id, 2)  # epoch 2 in the spool: MLflow was down when it ended
    _checkpoint(job, run_id, 3)
    start = claim_trial(job, job.trials[0])
    assert start.run_id == run_id and start.state.epoch == 3
    spool.replay(client, Path(job.tracking.spool_dir), spool.Retry(0, 0.0))
    assert _steps(client, run_id) == [0, 1, 2]  # not once from the spool, once from the state


def test_a_resumed_run_whose_epoch_is_nowhere_gets_it_from_the_checkpoint(sweep):
    client, job = sweep
    run_id = _interrupted_run(client, job.tracking.experiment_id, 2)
    _checkpoint(job, run_id, 3)  # killed after the checkpoint, before epoch 2 was logged
    start = claim_trial(job, job.trials[0])
    assert start.run_id == run_id
    assert _steps(client, run_id) == [0, 1, 2]


def test_a_run_whose_spool_cannot_be_delivered_is_not_resumed_past_it(sweep):
    client, job = sweep
    run_id = _interrupted_run(client, job.tracking.experiment_id, 2)
    Path(job.tracking.spool_dir).mkdir()
    (Path(job.tracking.spool_dir) / f"{run_id}.jsonl").write_text('{"op": "no-such-op"}\n')
    _spool_epoch(job, run_id, 2)
    _checkpoint(job, run_id, 3)
    start = claim_trial(job, job.trials[0])
    assert start.run_id is None and start.status == UNSTARTED
    assert "spool" in start.reason
    run = client.get_run(run_id)
    assert run.data.tags[TAG_PARENT] == "an-old-sweep"  # not claimed
    assert _steps(client, run_id) == [0, 1]  # and nothing logged out of order


def test_the_missing_epoch_is_not_logged_while_the_spool_holds_it(sweep):
    from pipeline.tracking.resume import log_missing_epoch

    client, job = sweep
    run_id = _interrupted_run(client, job.tracking.experiment_id, 2)
    _spool_epoch(job, run_id, 2)  # waiting for a replay that has not happened yet
    state = checkpoints.CheckpointState(3, "", logs={"loss": 0.3})
    log_missing_epoch(client, spool.Retry(0, 0.0), run_id, state, job.tracking.spool_dir)
    assert _steps(client, run_id) == [0, 1]
    spool.replay(client, Path(job.tracking.spool_dir), spool.Retry(0, 0.0))
    assert _steps(client, run_id) == [0, 1, 2]


def test_a_resumed_run_logs_each_epoch_and_diagnostic_step_once(sweep):
    """Epochs 0-4 reached MLflow but the last good checkpoint is after epoch 2 (the writes of
    epochs 3 and 4 failed): the resumed run re-measures step 3 and retrains epochs 3 and 4,
    and none of those steps is logged a second time."""
    client, job = sweep
    run_id = _interrupted_run(client, job.tracking.experiment_id, epochs_logged=5)
    for step in range(6):  # diagnostics: at initialisation, then after every epoch
        client.log_metric(run_id, "diag.out.saturation", 0.1 * step, step=step)
    _checkpoint(job, run_id, epoch=3)
    start = claim_trial(job, job.trials[0])
    assert start.run_id == run_id and start.held == {"loss": 4, "diag.out.saturation": 5}
    recorder = RunRecorder(client, run_id, job.tracking.spool_dir, spool.Retry(0, 0.0),
                           held=start.held)
    recorder.log_epoch(3, {"diag.out.saturation": 9.0})  # the resume's first measurement
    for epoch in range(3, 7):
        recorder.log_epoch(epoch, {"loss": 9.0})
        recorder.log_epoch(epoch + 1, {"diag.out.saturation": 9.0})
    recorder.close()
    for key, steps in (("loss", range(7)), ("diag.out.saturation", range(8))):
        history = client.get_metric_history(run_id, key)
        assert sorted(m.step for m in history) == list(steps), key
        assert [m.value for m in history if m.step == 3] != [9.0]  # the first value stays


def _failed_in_this_sweep(client: MlflowClient, job: RankJob, epochs_logged: int) -> str:
    """A run of this sweep whose launch died before its first checkpoint reached the disk
    (marked failed by the driver, runs.fail_stale_children); no checkpoint folder."""
    run_id = _interrupted_run(client, job.tracking.experiment_id, epochs_logged)
    client.set_tag(run_id, TAG_PARENT, job.tracking.parent_run_id)
    client.log_metric(run_id, "diag.out.saturation", 0.5, step=0)  # logged at initialisation
    return run_id


def test_a_retry_without_a_checkpoint_goes_on_in_the_sweeps_failed_run_from_epoch_0(sweep):
    client, job = sweep
    run_id = _failed_in_this_sweep(client, job, epochs_logged=1)
    start = claim_trial(job, job.trials[0])
    assert start.run_id == run_id  # one run per configuration in the sweep, not a second
    assert start.state is None  # nothing to restore: trained from the start
    assert start.held == {"loss": 0, "diag.out.saturation": 0}  # and not logged twice
    run = client.get_run(run_id)
    assert run.data.tags[TAG_RESUMED_FROM] == "0" and run.data.tags[TAG_STATUS] == RUNNING
    assert _steps(client, run_id) == [0]


def test_another_sweeps_failed_run_without_a_checkpoint_is_left_alone(sweep):
    client, job = sweep
    theirs = _interrupted_run(client, job.tracking.experiment_id, 1)  # parent: an old sweep
    start = claim_trial(job, job.trials[0])
    assert start.run_id not in (None, theirs) and start.held == {}
    assert client.get_run(theirs).data.tags[TAG_STATUS] == FAILED


def test_new_and_resumed_runs_carry_how_their_launch_trains_them(sweep):
    client, job = sweep
    plan = job.trials[0].batches
    wanted = {"ranks": str(plan.ranks), "local_batch": str(plan.local_batch),
              "lr_scale": f"{plan.lr_scale:g}"}
    fresh = claim_trial(job, job.trials[0]).run_id
    assert {k: client.get_run(fresh).data.tags.get(k) for k in wanted} == wanted
    resumed = _failed_in_this_sweep(client, job, epochs_logged=1)
    client.delete_run(fresh)  # so the retry is the only run of the configuration left
    assert claim_trial(job, job.trials[0]).run_id == resumed
    assert {k: client.get_run(resumed).data.tags.get(k) for k in wanted} == wanted
