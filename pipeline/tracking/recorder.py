"""A run's records from rank 0, and the do-nothing twin every other rank holds.

Training code records unconditionally (``recorder.log_epoch(...)``); which rank it runs on
was decided once, when the recorder was made, so no ``if rank == 0`` is scattered through
the training loop. Records go through ``RunLog``: retried, then spooled while MLflow is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.entities import Metric

from pipeline.tracking.spool import RunLog
from pipeline.tracking.vocab import MLFLOW_END_STATUS, TAG_STATUS


class RunRecorder(RunLog):
    """Rank 0's recorder for one configuration's run."""

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """One epoch's metrics, with the epoch as the step."""
        now = int(time.time() * 1000)
        self.log_batch(metrics=[Metric(k, float(v), now, epoch) for k, v in metrics.items()])

    def end(self, status: str, tags: dict[str, str] | None = None) -> None:
        """Extra tags, the status tag, then the run's end (MLflow's status for it: vocab)."""
        for key, value in (tags or {}).items():
            self.set_tag(key, value[:4900])  # MLflow caps a tag value at 5,000 characters
        self.set_tag(TAG_STATUS, status)
        self.set_terminated(MLFLOW_END_STATUS.get(status, "FINISHED"))


class NullRecorder:
    """The recorder of ranks other than 0: accepts every record and keeps none."""

    run_id: str | None = None
    offline = False
    path: Path | None = None

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        pass

    def set_tag(self, key: str, value: str) -> None:
        pass

    def log_dict(self, data: dict, artifact_file: str) -> None:
        pass

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        pass

    def log_model(self, live: Callable[[], None], stash: Callable[[Path], dict]) -> None:
        pass

    def metric_history(self, key: str) -> list[tuple[int, float]] | None:
        return None

    def end(self, status: str, tags: dict[str, str] | None = None) -> None:
        pass

    def close(self) -> None:
        pass


Recorder = RunRecorder | NullRecorder
