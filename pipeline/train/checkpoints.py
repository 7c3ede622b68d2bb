"""Per-epoch checkpoint folders on disk: the layout the driver and the ranks share.

Layout: ``<checkpoint_dir>/<experiment_id>/<config_hash>/epoch-NNNN.{index,data-*}`` plus
``latest.json``. The experiment is part of the key: experiments sharing a ``--checkpoint-dir``
train the same configuration in runs of their own, and one's checkpoints and clean-up must
never touch the other's; a relaunch of the same experiment finds its folder again.
A checkpoint is complete exactly when ``latest.json`` names it (rank 0 writes it last, by
atomic rename). No TensorFlow here: the driver reads states too.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.train.contract import RankJob

STATE = "latest.json"


def trial_dir(root: str | Path, experiment_id: str, config_hash: str) -> Path:
    """The checkpoint folder of one configuration in one MLflow experiment."""
    return Path(root) / experiment_id / config_hash


def job_dir(job: RankJob, config_hash: str) -> Path:
    """The checkpoint folder of ``config_hash`` in ``job``'s experiment."""
    return trial_dir(job.runtime.checkpoint_dir, job.tracking.experiment_id, config_hash)


@dataclass(frozen=True)
class CheckpointState:
    """What ``latest.json`` says: the epochs done, the checkpoint's path prefix, the MLflow
    run it belongs to, and that epoch's (rank-averaged) logs, logged from here if the process
    died before MLflow had them."""

    epoch: int
    prefix: str
    run_id: str = ""
    logs: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CheckpointState | None:
        """None for anything but a well-formed state (start over rather than resume from
        something unknown)."""
        try:
            data = json.loads(text)
            return cls(int(data["epoch"]), str(data["prefix"]), str(data.get("run_id") or ""),
                       {str(k): float(v) for k, v in (data.get("logs") or {}).items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def read_state(folder: Path) -> CheckpointState | None:
    """The folder's committed checkpoint, or None (none, unreadable, or its files missing)."""
    path = folder / STATE
    if not path.is_file():
        return None
    state = CheckpointState.from_json(path.read_text())
    if state is None or not Path(f"{state.prefix}.index").is_file():
        return None
    return state


def fsync_path(path: Path) -> None:
    """Flush a file's contents, or a folder's entries, to the disk: without it a host crash can
    keep a ``latest.json`` that names checkpoint files the disk never received."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
