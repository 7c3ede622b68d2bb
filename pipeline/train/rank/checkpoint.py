"""Per-epoch checkpoints of a configuration, so an interrupted one resumes where it stopped.

Layout: ``<checkpoint_dir>/<config_hash>/epoch-NNNN.{index,data-*}`` plus ``latest.json``.
Rank 0 writes the TensorFlow checkpoint first and ``latest.json`` last, by atomic rename:
a checkpoint is complete exactly when ``latest.json`` names it, so a crash mid-write leaves
the previous epoch's state in force. The folder must be on storage every rank can read.

A checkpoint that cannot be written (disk full, no permission) does not stop training: the
results go to MLflow either way, and failing would throw away every epoch trained so far. The
partial files are removed, ``latest.json`` keeps naming the last complete checkpoint, and the
configuration's run gets a ``checkpoint_warning`` tag besides the warning on the console.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import tensorflow as tf

from pipeline.storage import disk_problem
from pipeline.tracking.recorder import Recorder
from pipeline.tracking.vocab import TAG_CHECKPOINT_WARNING
from pipeline.train.checkpoints import STATE, read_state

log = logging.getLogger(__name__)


def restore(ckpt: tf.train.Checkpoint, state: dict) -> None:
    # expect_partial: optimizer slots are created lazily and restored when they appear.
    ckpt.read(state["prefix"]).expect_partial()


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
        tmp = self.folder / f".{STATE}.tmp"
        # The epoch's (rank-averaged) logs travel with the checkpoint: if the process dies
        # between this commit and MLflow logging, the resumed run logs them from here.
        tmp.write_text(json.dumps({"epoch": epoch + 1, "prefix": str(prefix),
                                   "run_id": self.recorder.run_id,
                                   "logs": {k: float(v) for k, v in (logs or {}).items()}}))
        os.replace(tmp, self.folder / STATE)
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
        resume = f"epoch {state['epoch']}" if state else "the start"
        message = (f"checkpoint of epoch {epoch} not written to {self.folder}: {reason}; "
                   f"training goes on, an interruption now resumes from {resume}")
        log.warning("WARNING: %s", message)
        if not self.warned:  # one tag per run: the first failure says what happened
            self.warned = True
            self.recorder.set_tag(TAG_CHECKPOINT_WARNING, message)
