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
    return trial_dir(job.checkpoint_dir, job.experiment_id, config_hash)


def read_state(folder: Path) -> dict | None:
    """``{"epoch": epochs done, "prefix": checkpoint path, "run_id": MLflow run}`` or None."""
    path = folder / STATE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except ValueError:
        return None  # unreadable: start over rather than resume from something unknown
    if not Path(f"{state.get('prefix', '')}.index").is_file():
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
