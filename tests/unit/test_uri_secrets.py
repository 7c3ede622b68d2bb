"""A tracking URI with a password (``http://user:pass@...``, ``postgresql://user:pass@...``)
never reaches the console, a CI log or a stored tag in clear: job errors, tracebacks, claim
reasons, offline and replay lines, launch failures and tags are all masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.cli import run_job
from pipeline.config import RunConfig, TrackingConfig
from pipeline.errors import PipelineError
from pipeline.tracking import spool
from pipeline.tracking.resume import claim_trial
from pipeline.tracking.vocab import ROLE_SWEEP, TAG_ROLE, UNSTARTED
from tests.helpers import free_port, rank_job, trial
from tests.helpers.stores import sqlite_store

SECRET = "s3cr3t-Pa55"


def _uri(port: int | None = None) -> str:
    return f"http://sweeper:{SECRET}@127.0.0.1:{port or free_port()}"  # nothing listens


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")


def test_a_job_error_naming_the_uri_is_masked(monkeypatch, capsys):
    uri = f"postgresql://mlflow:{SECRET}@db:5432/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def main(argv):
        raise PipelineError(f"cannot use {uri}")

    assert run_job(main, [], "job") == 2
    err = capsys.readouterr().err
    assert SECRET not in err and "mlflow:***@db:5432" in err


def test_an_unexpected_traceback_is_masked_and_exits_1(monkeypatch, capsys):
    uri = _uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def main(argv):
        raise RuntimeError(f"connection to {uri} reset")

    assert run_job(main, [], "job") == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err and SECRET not in err


def test_a_claim_that_cannot_reach_mlflow_gives_a_masked_reason(tmp_path):
    job = rank_job([trial("h", RunConfig())],
                   tracking=dict(uri=_uri(), spool_dir=str(tmp_path / "spool"),
                                 settings=TrackingConfig(retries=0, backoff_seconds=0.0,
                                                         claim_settle_seconds=0.0)),
                   runtime=dict(checkpoint_dir=str(tmp_path / "ckpt")))
    start = claim_trial(job, job.trials[0])
    assert start.status == UNSTARTED and "127.0.0.1" in start.reason
    assert SECRET not in start.reason


def test_offline_and_replay_lines_and_spooled_tags_are_masked(tmp_path):
    said: list[str] = []
    uri = _uri()
    log = spool.RunLog(MlflowClient(uri), "run1", tmp_path, spool.Retry(0, 0.0), said.append)
    log.set_tag("error", f"Traceback ...\nConnectionError: {uri}/api/2.0/mlflow/runs")
    log.close()
    assert said and SECRET not in "\n".join(said)
    assert SECRET not in log.path.read_text()  # the tag as it will be stored
    report = spool.replay(MlflowClient(uri), tmp_path, spool.Retry(0, 0.0))
    assert report.pending and SECRET not in "\n".join(report.pending.values())


def test_a_failed_launch_line_is_masked(tmp_path, monkeypatch):
    import horovod.spark

    from pipeline.train.driver.launch import Launches

    uri = _uri()
    store = MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
    exp_id = store.create_experiment("e")
    parent = store.create_run(exp_id, tags={TAG_ROLE: ROLE_SWEEP}).info.run_id
    job = rank_job([trial("h", RunConfig())],
                   tracking=dict(uri=uri, experiment_id=exp_id, parent_run_id=parent,
                                 spool_dir=str(Path(tmp_path) / "spool")))

    def failed_launch(*args, **kwargs):
        raise RuntimeError(f"rank 0 exited: MlflowException: API request to {uri} failed")

    monkeypatch.setattr(horovod.spark, "run", failed_launch)
    said: list[str] = []
    Launches(store, job, 1, said.append).run(1)
    assert any("launch 1/1 failed" in line for line in said)
    assert SECRET not in "\n".join(said)
