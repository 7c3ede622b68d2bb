"""Keras callbacks used inside a Horovod rank.

Order matters: MetricAverageCallback (Horovod) must run first, so that every later
callback sees the same, rank-averaged logs and so takes the same decision on every rank.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from pipeline.tracking.vocab import EPOCH_METRICS, MODEL_EPOCH_METRICS

if TYPE_CHECKING:
    from pipeline.tracking.recorder import Recorder


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


class RankResources(tf.keras.callbacks.Callback):
    """Each rank's CPU use and resident memory per epoch, gathered on every rank (one small
    allreduce that every rank makes at the same point) and recorded by rank 0 as
    ``system.rank<r>.cpu_percent`` and ``system.rank<r>.rss_mib``."""

    def __init__(self, rank: int, size: int, recorder: Recorder,
                 allreduce_sum: Callable[[np.ndarray, str], np.ndarray]) -> None:
        super().__init__()
        self.rank, self.size, self.recorder = rank, size, recorder
        self.allreduce_sum = allreduce_sum
        self._wall = self._cpu = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        mine = np.zeros((self.size, 2))
        mine[self.rank] = (100.0 * (time.process_time() - self._cpu) / wall, _rss_mib())
        every = self.allreduce_sum(mine.ravel(), f"resources.{epoch}").reshape(self.size, 2)
        self.recorder.log_epoch(epoch, {
            **{f"system.rank{r}.cpu_percent": float(every[r, 0]) for r in range(self.size)},
            **{f"system.rank{r}.rss_mib": float(every[r, 1]) for r in range(self.size)}})


def _rss_mib() -> float:
    """This process's resident memory now (Linux: /proc/self/statm, in pages)."""
    import os

    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class StepDeadline(tf.keras.callbacks.Callback):
    """Every training step allreduces its gradients: no step done within the stall deadline
    means a rank that never joined (pipeline.train.rank.stall). Epoch-level hooks only, so
    that no per-batch Python call slows the steps; validation, which has no collective, is
    not watched."""

    def __init__(self) -> None:
        super().__init__()
        from pipeline.train.rank.stall import watchdog

        self._dog = watchdog()
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._arm()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._dog.disarm()

    def on_test_end(self, logs: dict | None = None) -> None:
        self._arm()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._dog.disarm()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._dog.disarm()

    def _arm(self) -> None:
        steps = self.model.optimizer.iterations
        self._dog.arm(f"epoch {self._epoch + 1}'s training steps (gradient allreduce)",
                      progress=lambda: int(steps.numpy()))
