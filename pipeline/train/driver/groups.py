"""Concurrent trials: the ranks split into groups, each group a Horovod launch of its own.

On small models the per-step allreduce dominates a step, so every rank on one trial at a
time is the slowest way through a grid; several trials at once, each a data-parallel job on
fewer ranks, finish it sooner (BENCHMARKS.md). Each group is its own ``horovod.spark.run``
(its own Spark job, Gloo rendezvous and retries), started from a driver thread, so what a
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
from pipeline.train.driver.launch import Launches

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
    if ranks_per_trial < 1:
        raise ConfigError(f"--ranks-per-trial: must be at least 1, got {ranks_per_trial}")
    if ranks_per_trial > num_proc:
        raise ConfigError(f"--ranks-per-trial: {ranks_per_trial} ranks per trial, but the sweep "
                          f"has {num_proc} ranks (--num-proc, or Spark's task slots)")
    groups, idle = divmod(num_proc, ranks_per_trial)
    if idle:
        log(f"slots: {num_proc} ranks make {groups} groups of {ranks_per_trial}; "
            f"{idle} stay idle")
    return Layout(ranks_per_trial, groups)


def split(trials: list[Trial], groups: int) -> list[list[Trial]]:
    """Longest trial first onto the least loaded group (cost: epochs x steps); each group
    then trains its share in the plan's order. Empty groups are dropped."""
    shares: list[list[Trial]] = [[] for _ in range(groups)]
    load = [0] * groups
    order = {t.config_hash: i for i, t in enumerate(trials)}
    for trial in sorted(trials, key=_cost, reverse=True):
        g = load.index(min(load))
        shares[g].append(trial)
        load[g] += _cost(trial)
    return [sorted(s, key=lambda t: order[t.config_hash]) for s in shares if s]


def _cost(trial: Trial) -> int:
    return trial.stop_epoch * trial.batches.steps_per_epoch


def run_groups(job: RankJob, shape: Layout, max_attempts: int, log: Callable[[str], None],
               executable: str) -> list[Launches]:
    """Every trial of ``job`` trained by ``shape.groups`` concurrent launches; their records.

    An interrupt cancels every group's Spark job before it propagates, so no launch is left
    running behind the driver.
    """
    shares = split(job.trials, shape.groups)
    if len(shares) <= 1:
        launches = Launches(store.connect(job.tracking_uri), job, shape.ranks, log, executable)
        launches.run(max_attempts)
        return [launches]
    group = [Launches(store.connect(job.tracking_uri),  # a client per thread
                      replace(job, trials=share, first_slot=g * shape.ranks,
                              label=f"[trials {g + 1}/{len(shares)}] "),
                      shape.ranks, log, executable)
             for g, share in enumerate(shares)]
    signals.allow_thread_launches()
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_run, args=(launches, max_attempts, errors),
                                name=f"trials-{g + 1}", daemon=True)
               for g, launches in enumerate(group)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        signals.stop_launches()
        _cancel_spark_jobs()
        raise
    if errors:
        raise errors[0]
    return group


def _run(launches: Launches, max_attempts: int, errors: list[BaseException]) -> None:
    try:
        launches.run(max_attempts)
    except BaseException as exc:  # handed to the driver's thread, which raises it
        errors.append(exc)


def _cancel_spark_jobs() -> None:
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is not None:
        context.cancelAllJobs()
