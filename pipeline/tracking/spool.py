"""MLflow calls that survive an unreachable tracking server: retry, then spool, then replay.

A ``RunLog`` sends one run's records to MLflow, trying each call again a few times with a
short backoff. When a call still fails, the run goes *offline*: that record and every later
one are appended to ``<spool>/<run_id>.jsonl`` (files they refer to, such as figures and the
model's weights, go to ``<spool>/<run_id>/``), so nothing is lost and order is kept (a
status tag spooled before a later one must not overtake it). ``replay`` delivers a spool
once MLflow is reachable again and deletes what it delivered.

One exclusive ``flock`` on the spool file guards it: the writer holds it while the run is
open, a replay while it delivers. The file is only ever appended to, never replaced, so the
lock always covers the one file every process sees: a replay marks its progress by appending
``{"op": "delivered", "count": n}`` after each record it delivered, and deletes the file,
still under the lock, once everything arrived. A process killed mid-write leaves a *torn*
last line; the next writer or replay moves it to ``<run_id>.jsonl.torn`` with a warning and
delivers every complete record.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.errors import first_line
from pipeline.tracking.spool_file import (
    DELIVERED,
    append,
    cut_torn_tail,
    open_locked,
    read_spool,
    waiting,
)
from pipeline.tracking.spool_records import check_all, inside, private_folder, untrusted
from pipeline.tracking.store import scrub

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
        # Tag values (an error's traceback, say) may quote the tracking URI: never its password.
        self._uri = str(getattr(client, "tracking_uri", "") or "")

    @property
    def offline(self) -> bool:
        return self._spool is not None

    def log_batch(self, metrics: Iterable[Metric] = (), params: Iterable[Param] = (),
                  tags: Iterable[RunTag] = ()) -> None:
        self._submit({"op": "batch",
                      "metrics": [[m.key, m.value, m.timestamp, m.step] for m in metrics],
                      "params": [[p.key, p.value] for p in params],
                      "tags": [[t.key, scrub(t.value, self._uri)] for t in tags]})

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
            stash(private_folder(self.files))
        append(self._spool, record)

    def _go_offline(self, exc: BaseException) -> None:
        private_folder(self.path.parent)
        self._spool = open_locked(self.path, blocking=True)
        self.say(f"    MLflow unreachable ({scrub(first_line(exc), self._uri)}); run "
                 f"{self.run_id} continues, its records go to {self.path}")
        warning = cut_torn_tail(self.path, self._spool)
        if warning:  # an earlier writer of this run died mid-record: start on a new line
            self.say(f"    spool: {warning}")


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
        client.log_artifact(run_id, str(inside(files, record["path"])))
    elif op == "model":
        from pipeline.tracking.model_replay import replay_model_record

        replay_model_record(str(client.tracking_uri), run_id, record, files)
    elif op == "terminated":
        client.set_terminated(run_id, record["status"])
    else:
        raise ValueError(f"unknown spool record {op!r}")


@dataclass
class ReplayReport:
    delivered: dict[str, int] = field(default_factory=dict)  # run id -> records delivered
    pending: dict[str, str] = field(default_factory=dict)    # spool file -> why it is kept
    warnings: dict[str, str] = field(default_factory=dict)   # spool file -> torn tail moved


def report_lines(report: ReplayReport) -> list[str]:
    """One console line per run delivered, torn tail moved aside, or file kept."""
    return ([f"spool: delivered {n} records of run {run_id} to MLflow"
             for run_id, n in report.delivered.items()]
            + [f"spool: WARNING: {warning}" for warning in report.warnings.values()]
            + [f"spool: kept {path}: {why}" for path, why in report.pending.items()])


def replay(client: MlflowClient, folder: Path, retry: Retry) -> ReplayReport:
    """Deliver every spool file in ``folder`` not held by a live writer; delete what arrived."""
    report = ReplayReport()
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        _replay_one(client, path, retry, report)
    return report


def replay_run(client: MlflowClient, folder: Path, run_id: str, retry: Retry) -> ReplayReport:
    """``replay`` for one run's spool file only."""
    report = ReplayReport()
    path = waiting(folder, run_id)
    if path is not None:
        _replay_one(client, path, retry, report)
    return report


def _replay_one(client: MlflowClient, path: Path, retry: Retry, report: ReplayReport) -> None:
    why = untrusted(path)
    if why:
        report.pending[str(path)] = why
        return
    handle = open_locked(path, blocking=False)
    if handle is None:
        report.pending[str(path)] = "still being written by a running sweep"
        return
    with handle:  # the lock is held until the file is gone or left for next time
        run_id = path.stem
        try:
            warning = cut_torn_tail(path, handle)
            if warning:
                report.warnings[str(path)] = warning
            report.delivered[run_id] = _replay_file(client, path, handle, retry)
        except Exception as exc:
            report.pending[str(path)] = scrub(first_line(exc), str(client.tracking_uri))
            return
        path.unlink()
        shutil.rmtree(path.with_suffix(""), ignore_errors=True)


def _replay_file(client: MlflowClient, path: Path, handle: IO[str], retry: Retry) -> int:
    records, done = read_spool(path)
    files = path.with_suffix("")
    check_all(records, files)
    for count, record in enumerate(records[done:], done + 1):
        retry.call(lambda r=record: deliver(client, path.stem, r, files))
        # Mark the progress in the same (locked) file, so a replay interrupted here never
        # delivers a record twice and a writer's appended records are never overwritten.
        append(handle, {"op": DELIVERED, "count": count})
    return len(records) - done
