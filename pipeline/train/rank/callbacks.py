"""Keras callbacks used inside a Horovod rank.

Order matters: MetricAverageCallback (Horovod) must run first, so that every later
callback sees the same, rank-averaged logs and so takes the same decision on every rank.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import tensorflow as tf

from pipeline.tracking.recorder import Recorder
from pipeline.tracking.vocab import EPOCH_METRICS, MODEL_EPOCH_METRICS


class EpochClock(tf.keras.callbacks.Callback):
    """Adds epoch_seconds and samples_per_sec (global samples) to the epoch logs, and
    notes when training ended (``fit()`` returns later, once its input is torn down)."""

    def __init__(self, samples_per_epoch: int) -> None:
        super().__init__()
        self.samples_per_epoch = samples_per_epoch
        self._start = 0.0
        self.ended: float | None = None  # time.perf_counter() at the end of training

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._start
        if logs is not None:
            logs["epoch_seconds"] = seconds
            logs["samples_per_sec"] = self.samples_per_epoch / max(seconds, 1e-9)
            logs["lr"] = _current_lr(self.model.optimizer)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.ended = time.perf_counter()


def _current_lr(optimizer: tf.keras.optimizers.Optimizer) -> float:
    lr = optimizer.learning_rate
    if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
        lr = lr(optimizer.iterations)
    return float(tf.keras.backend.get_value(lr))


class DivergenceStop(tf.keras.callbacks.Callback):
    """Stops training when the rank-averaged loss is NaN or inf.

    It reads the averaged logs, identical on all ranks, so all ranks stop at the
    same epoch; a per-batch local check could stop one rank and hang the others.
    """

    def __init__(self) -> None:
        super().__init__()
        self.diverged_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.diverged_at = epoch
            self.model.stop_training = True


class EpochLogger(tf.keras.callbacks.Callback):
    """Every epoch's averaged logs to the run's recorder, and a progress line.

    Every rank has one; only rank 0's recorder and printer do anything (see Role).
    Through a RunLog: while MLflow is down, epochs go to the spool and training goes on.
    """

    def __init__(self, recorder: Recorder, say: Callable[[str], None]) -> None:
        super().__init__()
        self.recorder = recorder
        self.say = say

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.recorder.log_epoch(epoch, {k: logs[k] for k in EPOCH_METRICS if k in logs})
        shown = " ".join(f"{k}={logs[k]:.4g}" for k in MODEL_EPOCH_METRICS if k in logs)
        self.say(f"    epoch {epoch + 1}: {shown} ({logs.get('epoch_seconds', 0):.1f}s)")
