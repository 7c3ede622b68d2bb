"""A sweep run again after an interruption skips what the first attempt finished; its report
still shows every configuration the sweep planned (pipeline.report.frame, store.done_before),
read from a real SQLite store: the first attempt's finished runs, the rerun's own, none twice,
and nothing of another dataset or of a configuration the rerun did not plan."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig
from pipeline.report import frame
from pipeline.tracking import runs
from pipeline.tracking.vocab import (
    FAILED,
    FINISHED,
    ROLE_CONFIG,
    ROLE_SWEEP,
    TAG_DATASET,
    TAG_HASH,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
    TAG_SWEEP,
)
from tests.helpers import trial
from tests.helpers.stores import sqlite_store

FP = "fp-1"


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = sqlite_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    exp_id = client.create_experiment("rerun", artifact_location=str(tmp_path / "artifacts"))
    return client, exp_id


def _parent(client, exp_id, fingerprint=FP) -> str:
    return client.create_run(exp_id, tags={TAG_ROLE: ROLE_SWEEP, TAG_SWEEP: "s",
                                           TAG_DATASET: fingerprint}).info.run_id


def _child(client, exp_id, parent, config_hash, status=FINISHED, fingerprint=FP) -> str:
    run = client.create_run(exp_id, run_name=config_hash, tags={
        TAG_ROLE: ROLE_CONFIG, TAG_PARENT: parent, TAG_HASH: config_hash,
        TAG_DATASET: fingerprint, TAG_STATUS: status})
    client.log_param(run.info.run_id, "model.hidden_activation", config_hash)
    client.log_metric(run.info.run_id, "val_accuracy", 0.9)
    return run.info.run_id


def test_the_report_of_a_rerun_shows_what_the_first_attempt_finished(store):
    client, exp_id = store
    first = _parent(client, exp_id)
    done_a = _child(client, exp_id, first, "a")
    _child(client, exp_id, first, "b", status=FAILED)  # retried by the rerun
    _child(client, exp_id, first, "z")  # finished, but the rerun no longer plans it
    _child(client, exp_id, _parent(client, exp_id, "fp-other"), "c", fingerprint="fp-other")
    rerun = _parent(client, exp_id)
    runs.log_planned(client, rerun, [trial(h, RunConfig()) for h in ("a", "b", "c")])
    _child(client, exp_id, rerun, "b")
    _child(client, exp_id, rerun, "c")
    loaded = frame.load(client, "rerun")
    assert loaded.parent_id == rerun
    assert sorted(loaded.runs["cell"]) == ["a", "b", "c"]  # each once
    assert done_a in set(loaded.runs["run_id"])


def test_a_rerun_that_skipped_everything_shows_its_plan_only(store):
    client, exp_id = store
    first = _parent(client, exp_id)
    for h in ("a", "b", "old"):
        _child(client, exp_id, first, h)
    rerun = _parent(client, exp_id)
    runs.log_planned(client, rerun, [trial(h, RunConfig()) for h in ("a", "b")])
    assert sorted(frame.load(client, "rerun").runs["cell"]) == ["a", "b"]
