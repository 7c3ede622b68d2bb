"""MLflow calls that survive an unreachable tracking server: retry, then spool, then replay.

A ``RunLog`` sends one run's records to MLflow, trying each call again a few times with a
short backoff. When a call still fails, the run goes *offline*: that record and every later
one are appended to ``<spool>/<run_id>.jsonl`` (files they refer to, such as figures and the
model's weights, go to ``<spool>/<run_id>/``), so nothing is lost and order is kept (a
status tag spooled before a later one must not overtake it). ``replay`` delivers a spool
once MLflow is reachable again and deletes what it delivered.

The writer holds an exclusive ``flock`` on its spool file while the run is open, so a replay
started by another sweep meanwhile leaves that file alone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retry:
    retries: int = 3
    backoff_seconds: float = 0.5

    def call(self, fn: Callable[[], Any]) -> Any:
        delay = self.backoff_seconds
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except Exception as exc:
                if attempt == self.retries or not retriable(exc):
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


def retriable(exc: BaseException) -> bool:
    """A refused connection, a timeout, a 5xx or a locked SQLite file may pass; a 4xx will not."""
    if isinstance(exc, MlflowException):
        return exc.get_http_status_code() >= 500 or exc.get_http_status_code() == 429
    return True


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


class RunLog:
    """One run's MLflow records: delivered live while possible, spooled from then on."""

    def __init__(self, client: MlflowClient, run_id: str, spool_dir: str | Path, retry: Retry,
                 say: Callable[[str], None] = logger.warning) -> None:
        self.client = client
        self.run_id = run_id
        self.retry = retry
        self.path = Path(spool_dir) / f"{run_id}.jsonl"
        self.files = Path(spool_dir) / run_id
        self.say = say
        self._spool: IO[str] | None = None

    @property
    def offline(self) -> bool:
        return self._spool is not None

    def log_batch(self, metrics: Iterable[Metric] = (), params: Iterable[Param] = (),
                  tags: Iterable[RunTag] = ()) -> None:
        self._submit({"op": "batch",
                      "metrics": [[m.key, m.value, m.timestamp, m.step] for m in metrics],
                      "params": [[p.key, p.value] for p in params],
                      "tags": [[t.key, t.value] for t in tags]})

    def set_tag(self, key: str, value: str) -> None:
        self.log_batch(tags=[RunTag(key, str(value))])

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self.log_batch(metrics=[Metric(key, float(value), int(time.time() * 1000), step)])

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self._submit({"op": "dict", "data": data, "file": artifact_file})

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self._submit({"op": "artifact", "path": artifact_file},
                     live=lambda: self.client.log_figure(self.run_id, figure, artifact_file),
                     stash=lambda folder: figure.savefig(folder / artifact_file))

    def log_model(self, live: Callable[[], None], stash: Callable[[Path], dict]) -> None:
        """``live`` logs the model; ``stash(folder)`` saves it there and returns its record."""
        record: dict = {"op": "model"}
        self._submit(record, live=live, stash=lambda folder: record.update(stash(folder)))

    def set_terminated(self, status: str) -> None:
        self._submit({"op": "terminated", "status": status})

    def metric_history(self, key: str) -> list[tuple[int, float]] | None:
        """(step, value) pairs from MLflow, or None when offline (MLflow lacks the latest)."""
        if self.offline:
            return None
        try:
            return [(m.step, m.value) for m in
                    self.retry.call(lambda: self.client.get_metric_history(self.run_id, key))]
        except Exception as exc:
            if not retriable(exc):
                raise
            return None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()  # releases the lock: a replay may now take the file

    def _submit(self, record: dict, live: Callable[[], Any] | None = None,
                stash: Callable[[Path], Any] | None = None) -> None:
        if not self.offline:
            try:
                self.retry.call(live or (lambda: deliver(self.client, self.run_id, record,
                                                         self.files)))
                return
            except Exception as exc:
                if not retriable(exc):
                    raise
                self._go_offline(exc)
        if stash is not None:
            self.files.mkdir(parents=True, exist_ok=True)
            stash(self.files)
        self._spool.write(json.dumps(record) + "\n")
        self._spool.flush()
        os.fsync(self._spool.fileno())

    def _go_offline(self, exc: BaseException) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._spool = _open_locked(self.path, blocking=True)
        self.say(f"    MLflow unreachable ({first_line(exc)}); run {self.run_id} continues, "
                 f"its records go to {self.path}")


def _open_locked(path: Path, blocking: bool) -> IO[str] | None:
    """``path`` opened for appending under an exclusive lock; None if busy (non-blocking).

    A replay may delete the file between our open and our lock: then lock the new one.
    """
    while True:
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return None
        if path.exists() and os.path.samefile(path, handle.fileno()):
            return handle
        handle.close()


def deliver(client: MlflowClient, run_id: str, record: dict, files: Path) -> None:
    """Send one spooled record to MLflow."""
    op = record["op"]
    if op == "batch":
        client.log_batch(run_id, metrics=[Metric(*m) for m in record["metrics"]],
                         params=[Param(*p) for p in record["params"]],
                         tags=[RunTag(*t) for t in record["tags"]])
    elif op == "dict":
        client.log_dict(run_id, record["data"], record["file"])
    elif op == "artifact":
        client.log_artifact(run_id, str(files / record["path"]))
    elif op == "model":
        from pipeline.tracking.models import replay_model

        replay_model(client, run_id, record, files)
    elif op == "terminated":
        client.set_terminated(run_id, record["status"])
    else:
        raise ValueError(f"unknown spool record {op!r}")


@dataclass
class ReplayReport:
    delivered: dict[str, int] = field(default_factory=dict)  # run id -> records delivered
    pending: dict[str, str] = field(default_factory=dict)    # spool file -> why it is kept


def replay(client: MlflowClient, folder: Path, retry: Retry) -> ReplayReport:
    """Deliver every spool file in ``folder`` not held by a live writer; delete what arrived."""
    report = ReplayReport()
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        handle = _open_locked(path, blocking=False)
        if handle is None:
            report.pending[str(path)] = "still being written by a running sweep"
            continue
        with handle:
            run_id = path.stem
            try:
                report.delivered[run_id] = _replay_file(client, path, retry)
            except Exception as exc:
                report.pending[str(path)] = first_line(exc)
                continue
            path.unlink()
            shutil.rmtree(folder / run_id, ignore_errors=True)
    return report


def _replay_file(client: MlflowClient, path: Path, retry: Retry) -> int:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    files = path.with_suffix("")
    for done, record in enumerate(records):
        retry.call(lambda r=record: deliver(client, path.stem, r, files))
        # Keep only what is left, so a replay interrupted here never delivers a record twice.
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records[done + 1:]))
        os.replace(tmp, path)
    return len(records)
