"""The recorder of ranks other than 0, apart from MLflow: those ranks never import it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


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
