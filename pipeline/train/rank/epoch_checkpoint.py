"""Per-epoch checkpoints of a configuration, so an interrupted one resumes where it stopped.

Layout: ``<checkpoint_dir>/<experiment_id>/<config_hash>/epoch-NNNN.{index,data-*}`` plus
``latest.json`` (see pipeline.train.checkpoints).
Rank 0 writes the TensorFlow checkpoint first and ``latest.json`` last, by atomic rename:
a checkpoint is complete exactly when ``latest.json`` names it, so a crash mid-write leaves
the previous epoch's state in force. The folder must be on storage every rank can read.

A checkpoint that cannot be written (disk full, no permission) does not stop training: the
results go to MLflow either way, and failing would throw away every epoch trained so far. The
partial files are removed, ``latest.json`` keeps naming the last complete checkpoint, and the
configuration's run gets a ``checkpoint_warning`` tag besides the warning on the console.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from pipeline.errors import first_line
from pipeline.storage import disk_problem
from pipeline.tracking.vocab import TAG_CHECKPOINT_WARNING
from pipeline.train.checkpoints import STATE, CheckpointState, fsync_path, read_state
from pipeline.train.rank import distributed

if TYPE_CHECKING:
    from pipeline.tracking.recorder import Recorder

log = logging.getLogger(__name__)


def restore(ckpt: tf.train.Checkpoint, state: CheckpointState) -> None:
    # expect_partial: optimizer slots are created lazily and restored when they appear.
    ckpt.read(state.prefix).expect_partial()


def restored_everywhere(ckpt: tf.train.Checkpoint, state: CheckpointState, recorder: Recorder,
                        say: Callable[[str], None]) -> bool:
    """Restore ``state`` into ``ckpt`` on every rank or on none; True when every rank could.

    A host crash can leave ``latest.json`` naming files that never reached the disk, and a
    disk can damage them: failing here would fail every relaunch the same way. The
    configuration starts afresh instead, with a warning and a tag on its run; the caller
    builds a fresh model, since a read that failed half-way may have assigned some variables.
    """
    why = _read_problem(ckpt, state)
    # [hvd] allreduce: ranks resume together or start afresh together
    failed = distributed.allreduce_sum(np.array([1.0 if why else 0.0]),
                                       name=f"restore.{Path(state.prefix).parent.name}")
    if not failed[0]:
        return True
    message = (f"checkpoint {state.prefix} (epoch {state.epoch}) could not be restored "
               f"({why or 'on another rank'}); starting afresh from epoch 0")
    say(f"    WARNING: {message}")
    recorder.set_tag(TAG_CHECKPOINT_WARNING, message)
    return False


def _read_problem(ckpt: tf.train.Checkpoint, state: CheckpointState) -> str:
    """Why the checkpoint could not be read ('' when it was)."""
    try:
        restore(ckpt, state)
    # Damaged files surface as whatever the reader tripped on (OpError, IndexError, ...);
    # every one of them means the same here: this checkpoint cannot be resumed from.
    except Exception as exc:
        return f"{type(exc).__name__}: {first_line(exc)}"
    return ""


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Rank 0 only: save model and optimizer after every epoch, then commit ``latest.json``."""

    def __init__(self, folder: Path, ckpt: tf.train.Checkpoint, recorder: Recorder) -> None:
        super().__init__()
        self.folder = folder
        self.ckpt = ckpt
        self.recorder = recorder
        self.warned = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        prefix = self.folder / f"epoch-{epoch + 1:04d}"
        try:
            self._commit(prefix, epoch, logs)
        except (OSError, tf.errors.OpError) as exc:
            reason = disk_problem(exc)
            if reason is None:
                raise
            self._discard(prefix)
            self._warn(epoch + 1, reason)

    def _commit(self, prefix: Path, epoch: int, logs: dict | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ckpt.write(str(prefix))
        # On the disk before latest.json may name them: files, then their folder entries.
        for written in self.folder.glob(f"{prefix.name}.*"):
            fsync_path(written)
        fsync_path(self.folder)
        tmp = self.folder / f".{STATE}.tmp"
        # The epoch's (rank-averaged) logs travel with the checkpoint: if the process dies
        # between this commit and MLflow logging, the resumed run logs them from here.
        with tmp.open("w") as f:
            f.write(CheckpointState(epoch + 1, str(prefix), self.recorder.run_id,
                                    {k: float(v) for k, v in (logs or {}).items()}).to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / STATE)
        fsync_path(self.folder)  # the rename itself
        for old in self.folder.glob("epoch-*"):
            if not old.name.startswith(prefix.name):
                old.unlink(missing_ok=True)

    def _discard(self, prefix: Path) -> None:
        """Remove a failed epoch's files (TensorFlow's ``*_temp`` folder included)."""
        for partial in [*self.folder.glob(f"{prefix.name}*"), self.folder / f".{STATE}.tmp"]:
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)

    def _warn(self, epoch: int, reason: str) -> None:
        state = read_state(self.folder)
        resume = f"epoch {state.epoch}" if state else "the start"
        message = (f"checkpoint of epoch {epoch} not written to {self.folder}: {reason}; "
                   f"training goes on, an interruption now resumes from {resume}")
        log.warning("WARNING: %s", message)
        if not self.warned:  # one tag per run: the first failure says what happened
            self.warned = True
            self.recorder.set_tag(TAG_CHECKPOINT_WARNING, message)
