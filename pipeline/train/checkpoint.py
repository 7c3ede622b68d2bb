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

import contextlib
import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from pipeline.storage import disk_problem

STATE = "latest.json"
TAG_WARNING = "checkpoint_warning"


def trial_dir(root: str | Path, config_hash: str) -> Path:
    return Path(root) / config_hash


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


def restore(ckpt: tf.train.Checkpoint, state: dict) -> None:
    # expect_partial: optimizer slots are created lazily and restored when they appear.
    ckpt.read(state["prefix"]).expect_partial()


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Rank 0 only: save model and optimizer after every epoch, then commit ``latest.json``."""

    def __init__(self, folder: Path, ckpt: tf.train.Checkpoint, run_id: str) -> None:
        super().__init__()
        self.folder = folder
        self.ckpt = ckpt
        self.run_id = run_id
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
                                   "run_id": self.run_id,
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
        print(f"WARNING: {message}", flush=True)
        if not self.warned:  # one tag per run: the first failure says what happened
            from mlflow.tracking import MlflowClient

            self.warned = True
            # Best effort: the console line stands if MLflow is unreachable too. The ranks'
            # environment carries MLFLOW_TRACKING_URI (and any credentials): read it here, not a
            # URI some other code set process-wide with mlflow.set_tracking_uri.
            with contextlib.suppress(Exception):
                MlflowClient(os.environ.get("MLFLOW_TRACKING_URI")).set_tag(
                    self.run_id, TAG_WARNING, message)
