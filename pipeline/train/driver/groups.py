"""Trial groups: the ranks split into groups, each group a Horovod launch of its own.

On small models the per-step allreduce dominates a step, so every rank on one trial at a
time is the slowest way through a grid; several trials at once, each a data-parallel job on
fewer ranks, finish it sooner (BENCHMARKS.md). Each group is its own ``horovod.spark.run``
(its own Spark job, Gloo rendezvous and retries), started once from a driver thread and
living for the whole sweep: every group takes its next trial from one board (driver.board),
so a group that finishes early takes more, and rungs and rounds cost no relaunch. What a
launch guarantees (claims, checkpoints, exact test metrics, relaunch after a crash) holds
for each group, and a crash in one group leaves the others training.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from pipeline.errors import ConfigError
from pipeline.tracking import store
from pipeline.train.contract import RankJob, Trial
from pipeline.train.driver import signals
from pipeline.train.driver.board import Board
from pipeline.train.driver.launch import Launches
from pipeline.train.progress import Tracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """How a sweep's ranks are used: ``groups`` trials at once, each on ``ranks`` ranks."""

    ranks: int
    groups: int

    def describe(self) -> str:
        if self.groups == 1:
            return f"{self.ranks} Horovod ranks per trial, one trial at a time"
        return (f"{self.groups} trials at once, {self.ranks} Horovod "
                f"rank{'s' if self.ranks > 1 else ''} each")


def layout(num_proc: int, ranks_per_trial: int | None,
           log: Callable[[str], None] = logger.info) -> Layout:
    """``num_proc`` ranks in groups of ``ranks_per_trial`` (None: one group of them all)."""
    if ranks_per_trial is None:
        return Layout(num_proc, 1)
    if ranks_per_trial > num_proc:
        raise ConfigError(f"--ranks-per-trial: {ranks_per_trial} ranks per trial, but the sweep "
                          f"has {num_proc} ranks (--num-proc, or Spark's task slots)")
    groups, idle = divmod(num_proc, ranks_per_trial)
    if idle:
        log(f"slots: {num_proc} ranks make {groups} groups of {ranks_per_trial}; "
            f"{idle} stay idle")
    return Layout(ranks_per_trial, groups)


def longest_first(trials: list[Trial]) -> list[Trial]:
    """The order groups take trials in: longest first (cost: epochs x steps), the plan's
    order among equals, so no group starts a long trial when the others are nearly done."""
    return sorted(trials, key=_cost, reverse=True)


def _cost(trial: Trial) -> int:
    return trial.stop_epoch * trial.batches.steps_per_epoch


class Groups:
    """The sweep's trial groups: launched at the first batch of trials, fed from one board
    for the whole sweep (every rung and round), ended by ``close``."""

    def __init__(self, job: RankJob, shape: Layout, max_attempts: int,
                 log: Callable[[str], None], executable: str, host: str = "127.0.0.1",
                 tracker: Tracker | None = None) -> None:
        self.shape, self.log = shape, log
        self.board = Board(shape.groups, tracker, log, host)
        many = shape.groups > 1
        self.launches = [
            Launches(store.connect(job.tracking.uri),  # a client per thread
                     replace(job, runtime=replace(
                         job.runtime, first_slot=g * shape.ranks,
                         label=f"[trials {g + 1}/{shape.groups}] " if many else "")),
                     shape.ranks, log, executable, self.board, g)
            for g in range(shape.groups)]
        self._max_attempts = max_attempts
        self._threads: list[threading.Thread] = []

    def train(self, trials: list[Trial]) -> list[Trial]:
        """Train ``trials`` on the groups (launching them the first time); returns once every
        one is settled, with those no group could train (every launch attempt used). Nothing
        to train launches nothing (a rerun of a finished sweep pays no Horovod start-up)."""
        if not trials:
            return []
        if not self._threads:
            self._start()
        self.board.submit(longest_first(trials) if self.shape.groups > 1 else trials)
        return self.board.wait()

    def close(self, interrupted: bool = False) -> None:
        """End the groups: their ranks finish what they hold and exit. ``interrupted``: stop
        them at once (their Spark jobs cancelled), as after Ctrl-C or a driver error."""
        self.board.close()
        if interrupted:
            self.board.halt()
            signals.stop_launches()
            _cancel_spark_jobs()
        for thread in self._threads:
            thread.join()
        self.board.shutdown()

    def _start(self) -> None:
        signals.allow_thread_launches()
        self._threads = [threading.Thread(target=self._run, args=(launches,),
                                          name=f"trials-{g + 1}", daemon=True)
                         for g, launches in enumerate(self.launches)]
        for thread in self._threads:
            thread.start()

    def _run(self, launches: Launches) -> None:
        try:
            launches.run(self._max_attempts)
        except BaseException as exc:  # handed to the driver's thread, which raises it
            self.board.fail(exc)


def _cancel_spark_jobs() -> None:
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is not None:
        context.cancelAllJobs()
