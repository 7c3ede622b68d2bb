"""RunLog against a tracking server that is not there, then replay into a real SQLite store."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from pipeline.tracking import spool, spool_file
from tests.helpers import free_port
from tests.helpers.stores import sqlite_store

FAST = spool.Retry(retries=1, backoff_seconds=0.01)


def _offline_log(tmp_path, run_id: str) -> spool.RunLog:
    dead = MlflowClient(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    return spool.RunLog(dead, run_id, tmp_path / "spool", FAST, say=lambda m: None)


def test_records_the_server_refused_are_spooled_in_order_and_replayed_once(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
    run_id = store.create_run(store.create_experiment("e")).info.run_id
    log = _offline_log(tmp_path, run_id)
    for step in range(3):
        log.log_metric("loss", 1.0 / (step + 1), step=step)
    log.set_tag("status", "running")
    log.set_tag("status", "finished")  # a later tag must not be overtaken by an earlier one
    log.log_dict({"a": 1}, "resolved_config.json")
    log.set_terminated("FINISHED")
    assert log.offline and len(log.path.read_text().splitlines()) == 7

    held = spool.replay(store, tmp_path / "spool", FAST)  # the writer still holds the file
    assert held.pending == {str(log.path): "still being written by a running sweep"}
    log.close()
    report = spool.replay(store, tmp_path / "spool", FAST)
    assert report.delivered == {run_id: 7} and not report.pending
    run = store.get_run(run_id)
    assert [m.step for m in store.get_metric_history(run_id, "loss")] == [0, 1, 2]
    assert run.data.tags["status"] == "finished" and run.info.status == "FINISHED"
    assert not log.path.exists()
    assert spool.replay(store, tmp_path / "spool", FAST).delivered == {}  # nothing twice


def test_a_replay_that_fails_midway_keeps_only_what_is_left(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
    run_id = store.create_run(store.create_experiment("e")).info.run_id
    log = _offline_log(tmp_path, run_id)
    log.log_metric("loss", 0.5, step=0)
    log.log_metric("loss", 0.25, step=1)
    log.close()
    with log.path.open("a") as f:  # a well-formed record no replay can deliver
        f.write('{"op": "artifact", "path": "gone.png"}\n')
    report = spool.replay(store, tmp_path / "spool", FAST)
    assert "gone.png" in report.pending[str(log.path)]
    assert [m.step for m in store.get_metric_history(run_id, "loss")] == [0, 1]
    records, delivered = spool_file.read_spool(log.path)
    assert records[delivered:] == [{"op": "artifact", "path": "gone.png"}]  # only what is left
