"""The spool's own recovery paths against real processes and a real SQLite store: two replays
at once, a writer appending during a replay, a torn last line, a resumed epoch still spooled."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import spool, spool_file
from tests.helpers import free_port
from tests.helpers.stores import sqlite_store

FAST = spool.Retry(retries=2, backoff_seconds=0.05)
RECORDS = 12


@pytest.fixture(autouse=True)
def _no_http_retries(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@pytest.fixture(scope="module")
def _db(tmp_path_factory) -> tuple[str, str]:
    """One real SQLite store for the module (creating one takes seconds); a run per test."""
    uri = sqlite_store(tmp_path_factory.mktemp("store") / "mlflow.db")
    return uri, MlflowClient(uri).create_experiment("e")


@pytest.fixture
def run(_db) -> tuple[str, MlflowClient, str]:
    uri, exp_id = _db
    client = MlflowClient(uri)
    return uri, client, client.create_run(exp_id).info.run_id


def _offline_log(folder: Path, run_id: str, say=lambda m: None) -> spool.RunLog:
    dead = MlflowClient(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    return spool.RunLog(dead, run_id, folder, FAST, say=say)


def _spool_steps(folder: Path, run_id: str, steps: range) -> Path:
    log = _offline_log(folder, run_id)
    for step in steps:
        log.log_metric("loss", 1.0 / (step + 1), step=step)
    log.close()
    return log.path


def _slow_replayer(uri: str, folder: str, deliveries: str, first: object,
                   go: object | None) -> None:
    """A replay whose every delivery takes a while and is logged to ``deliveries``; sets
    ``first`` after its first delivery; waits for ``go`` before starting, if given."""
    real = spool.deliver

    def logged(client, run_id, record, files):
        real(client, run_id, record, files)
        with open(deliveries, "a") as f:
            f.write(json.dumps(record) + "\n")
        first.set()
        time.sleep(0.15)

    spool.deliver = logged
    if go is not None:
        go.wait(60)
    spool.replay(MlflowClient(uri), Path(folder), FAST)


def _process(*args: object) -> multiprocessing.Process:
    proc = multiprocessing.get_context("spawn").Process(target=_slow_replayer, args=args)
    proc.start()
    return proc


def test_two_replays_at_once_deliver_each_record_once(tmp_path, run):
    uri, client, run_id = run
    folder = tmp_path / "spool"
    _spool_steps(folder, run_id, range(RECORDS))
    deliveries = tmp_path / "deliveries.jsonl"
    ctx = multiprocessing.get_context("spawn")
    first, second_first = ctx.Event(), ctx.Event()
    a = _process(uri, str(folder), str(deliveries), first, None)
    # The second replayer starts once the first has delivered a record (and, before the fix,
    # replaced the file it had locked).
    b = _process(uri, str(folder), str(deliveries), second_first, first)
    for proc in (a, b):
        proc.join(120)
        assert proc.exitcode == 0
    delivered = [json.loads(line) for line in deliveries.read_text().splitlines()]
    assert len(delivered) == RECORDS  # none twice
    assert not list(folder.glob("*.jsonl"))  # nothing left that would never replay
    assert spool.replay(client, folder, FAST) == spool.ReplayReport()
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == list(
        range(RECORDS))


def test_a_record_appended_during_a_replay_is_kept(tmp_path, run):
    uri, client, run_id = run
    folder = tmp_path / "spool"
    _spool_steps(folder, run_id, range(RECORDS))
    deliveries = tmp_path / "deliveries.jsonl"
    first = multiprocessing.get_context("spawn").Event()
    replayer = _process(uri, str(folder), str(deliveries), first, None)
    assert first.wait(60)
    # The same run, resumed by a sweep while MLflow is down for it, spools one more epoch.
    _spool_steps(folder, run_id, range(100, 101))
    replayer.join(120)
    assert replayer.exitcode == 0
    report = spool.replay(client, folder, FAST)
    assert not report.pending
    steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
    assert steps == [*range(RECORDS), 100]  # every record once, the appended one too
    assert not list(folder.glob("*.jsonl"))


def test_a_torn_last_line_is_quarantined_and_the_rest_delivered(tmp_path, run):
    _, client, run_id = run
    folder = tmp_path / "spool"
    path = _spool_steps(folder, run_id, range(3))
    torn = '{"op": "batch", "metrics": [["loss", 0.1, 1'
    with path.open("a") as f:  # a write cut short by a kill or a full disk
        f.write(torn)
    report = spool.replay(client, folder, FAST)
    assert report.delivered == {run_id: 3} and not report.pending
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [0, 1, 2]
    quarantine = folder / f"{run_id}.jsonl.torn"
    assert quarantine.read_text() == torn  # kept for a human, not replayed
    assert "torn" in report.warnings[str(path)] and str(quarantine) in report.warnings[str(path)]
    assert not path.exists()


def test_a_writer_resuming_a_torn_spool_starts_on_a_new_line(tmp_path, run):
    _, client, run_id = run
    folder = tmp_path / "spool"
    path = _spool_steps(folder, run_id, range(2))
    with path.open("a") as f:
        f.write('{"op": "batch", "metr')
    said: list[str] = []
    log = _offline_log(folder, run_id, said.append)
    log.log_metric("loss", 0.5, step=2)
    log.close()
    assert any("torn" in line for line in said)
    report = spool.replay(client, folder, FAST)
    assert report.delivered == {run_id: 3} and not report.pending
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [0, 1, 2]


def test_a_damaged_line_before_the_end_keeps_the_file_and_names_the_line(tmp_path, run):
    _, client, run_id = run
    folder = tmp_path / "spool"
    path = _spool_steps(folder, run_id, range(2))
    with path.open("a") as f:
        f.write("not json\n")
    _spool_steps(folder, run_id, range(2, 3))
    report = spool.replay(client, folder, FAST)
    assert "line 3" in report.pending[str(path)]
    assert client.get_metric_history(run_id, "loss") == []  # nothing out of order
    assert path.exists()


def test_spooled_steps_reads_only_what_is_not_delivered(tmp_path, run):
    _, client, run_id = run
    folder = tmp_path / "spool"
    _spool_steps(folder, run_id, range(3))
    assert spool_file.spooled_steps(folder, run_id, "loss") == {0, 1, 2}
    assert spool_file.spooled_steps(folder, "no-such-run", "loss") == set()
    spool.replay(client, folder, FAST)
    assert spool_file.spooled_steps(folder, run_id, "loss") == set()
