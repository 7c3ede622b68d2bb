"""Spool files are untrusted input to the replaying driver (tests/unit/test_spool.py has the
replay itself): a file another user could have written is not replayed, a record naming a file
outside its run's spool folder or shaped unlike what the writer writes is refused before any
record of that file is delivered, and the spool is private to its user."""

from __future__ import annotations

import json
import stat

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import spool
from tests.helpers import free_port
from tests.helpers.stores import sqlite_store

FAST = spool.Retry(retries=1, backoff_seconds=0.01)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    return client, run_id


def _spooled(tmp_path, run_id: str) -> spool.RunLog:
    """A run's log gone offline with one metric spooled: the file the writer itself made."""
    dead = MlflowClient(f"http://127.0.0.1:{free_port()}")
    log = spool.RunLog(dead, run_id, tmp_path / "spool", FAST, say=lambda m: None)
    log.log_metric("loss", 0.5, step=0)
    log.close()
    return log


def _append(log: spool.RunLog, record: dict) -> None:
    with log.path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def test_the_spool_folder_and_files_are_private_to_their_user(tmp_path, store):
    _, run_id = store
    log = _spooled(tmp_path, run_id)
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["/abs/id_rsa", "../outside/id_rsa", "link/id_rsa"],
                         ids=["absolute", "climbing", "symlink"])
def test_an_artifact_outside_the_runs_spool_folder_is_never_uploaded(tmp_path, store, name):
    client, run_id = store
    secret = tmp_path / "outside" / "id_rsa"  # a stand-in private key beside the spool
    secret.parent.mkdir()
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    log = _spooled(tmp_path, run_id)
    log.files.mkdir(exist_ok=True)
    (log.files / "link").symlink_to(secret.parent)
    path = str(secret) if name.startswith("/") else name
    _append(log, {"op": "artifact", "path": path})
    report = spool.replay(client, tmp_path / "spool", FAST)
    assert report.pending[str(log.path)] == (
        f"record 2: path {path!r} leaves the run's spool folder")
    assert client.list_artifacts(run_id) == []
    assert client.get_metric_history(run_id, "loss") == []  # nothing of a refused file
    assert log.path.exists()  # kept for a person to look at


@pytest.mark.parametrize("record, why", [
    ({"op": "batch", "metrics": [], "params": [], "tags": [["status", 1]]},
     "record 2: 'status' must have a text value"),
    ({"op": "batch", "metrics": [["loss", "x", 0, 0]], "params": [], "tags": []},
     "record 2: metric 'loss' is not (value, time, step)"),
    ({"op": "terminated", "status": "PWNED"}, "record 2: status must be one of"),
    ({"op": "dict", "data": {}, "file": "/etc/cron.d/x"}, "record 2: file '/etc/cron.d/x'"),
    ({"op": "exec", "cmd": "rm -rf /"}, "record 2: unknown spool record 'exec'"),
    (["op", "batch"], "line 2 is not a spool record (not a mapping)"),
], ids=["tag-value", "metric-value", "status", "dict-file", "unknown-op", "not-a-mapping"])
def test_a_record_unlike_what_the_writer_writes_is_refused_before_any_is_delivered(
        tmp_path, store, record, why):
    client, run_id = store
    log = _spooled(tmp_path, run_id)
    _append(log, record)
    report = spool.replay(client, tmp_path / "spool", FAST)
    assert report.pending[str(log.path)].startswith(why)
    assert client.get_metric_history(run_id, "loss") == []
    assert client.get_run(run_id).info.status == "RUNNING"


@pytest.mark.parametrize("target", ["file", "folder"])
def test_a_spool_others_could_write_is_not_replayed(tmp_path, store, target):
    client, run_id = store
    log = _spooled(tmp_path, run_id)
    _append(log, {"op": "batch", "metrics": [], "params": [],
                  "tags": [["status", "finished"]]})  # a forged "finished"
    (log.path if target == "file" else log.path.parent).chmod(0o777)
    report = spool.replay(client, tmp_path / "spool", FAST)
    shown = log.path if target == "file" else log.path.parent
    assert report.pending == {str(log.path): f"{shown} is writable by other users: not replayed"}
    assert "status" not in client.get_run(run_id).data.tags
    log.path.parent.chmod(0o700)
    log.path.chmod(0o600)
    # The same file, private again, is the writer's own: it replays.
    assert spool.replay(client, tmp_path / "spool", FAST).delivered == {run_id: 2}
    assert client.get_run(run_id).data.tags["status"] == "finished"
