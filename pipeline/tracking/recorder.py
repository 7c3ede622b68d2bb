"""A run's records from rank 0, and the do-nothing twin every other rank holds.

Training code records unconditionally (``recorder.log_epoch(...)``); which rank it runs on
was decided once, when the recorder was made, so no ``if rank == 0`` is scattered through
the training loop. Records go through ``RunLog``: retried, then spooled while MLflow is down.
The twin lives in its own module, so the other ranks never import MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric

from pipeline.tracking.null_recorder import NullRecorder
from pipeline.tracking.spool import RunLog
from pipeline.tracking.vocab import MLFLOW_END_STATUS, TAG_STATUS

if TYPE_CHECKING:
    from pipeline.config import TrackingConfig


def open_recorder(uri: str, settings: TrackingConfig, run_id: str, spool_dir: str | Path,
                  say: Callable[[str], None], held: Mapping[str, int] | None = None) -> RunRecorder:
    """Rank 0's recorder for ``run_id``: retried by the sweep's settings, spooled when down."""
    from pipeline.tracking.spool import Retry
    from pipeline.tracking.store import client_for

    return RunRecorder(client_for(uri), run_id, spool_dir,
                       Retry(settings.retries, settings.backoff_seconds), say=say, held=held)


class RunRecorder(RunLog):
    """Rank 0's recorder for one configuration's run. ``held``: the last step MLflow already
    has of each metric (a resumed run's); epochs up to it are not logged a second time."""

    def __init__(self, *args: Any, held: Mapping[str, int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = dict(held or {})

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """One epoch's metrics, with the epoch as the step; steps already held are skipped."""
        now = int(time.time() * 1000)
        fresh = [Metric(k, float(v), now, epoch) for k, v in metrics.items()
                 if epoch > self.held.get(k, -1)]
        if fresh:
            self.log_batch(metrics=fresh)

    def end(self, status: str, tags: dict[str, str] | None = None) -> None:
        """Extra tags, the status tag, then the run's end (MLflow's status for it: vocab)."""
        for key, value in (tags or {}).items():
            self.set_tag(key, value[:4900])  # MLflow caps a tag value at 5,000 characters
        self.set_tag(TAG_STATUS, status)
        self.set_terminated(MLFLOW_END_STATUS.get(status, "FINISHED"))


Recorder = RunRecorder | NullRecorder
