"""Horovod launches from the Spark driver: slots, the ranks' environment, retries.

Each trial group is one ``horovod.spark.run`` launch for the whole sweep, fed by the board.
If the launch fails (a rank crashed, a host went away), the configurations that finished are
already in MLflow; the driver marks the interrupted one failed and relaunches, and the new
launch resumes it from its checkpoint before going on, up to ``max_attempts`` launches.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from pyspark.sql import SparkSession

from pipeline.config import SweepConfig
from pipeline.errors import ConfigError
from pipeline.tracking import runs, spool, spool_file, store
from pipeline.tracking.store import Client, Run
from pipeline.tracking.vocab import SKIPPED, TAG_HASH, TAG_STATUS, UNSTARTED, Status
from pipeline.train import checkpoints
from pipeline.train.contract import RankJob, Trial, TrialOutcome
from pipeline.train.driver.board import Board
from pipeline.train.driver.slots import count_slots


def resolve_num_proc(spark: SparkSession, sweep: SweepConfig, requested: int | None,
                     log: Callable[[str], None] = print) -> int:
    """The launch's rank count, checked against the slots Spark has before anything starts."""
    wanted = requested or sweep.num_proc
    count = count_slots(spark, wanted)
    if count.slots < 0:  # not countable (dynamic allocation without a maximum)
        if wanted is None:
            raise ConfigError(f"--num-proc: required here ({count.note})")
        log(f"slots: {count.note}; trusting --num-proc {wanted}")
        return wanted
    num_proc = wanted or count.slots
    if num_proc < 1:
        raise ConfigError(f"--num-proc: Spark has no task slot for a rank ({count.describe()})")
    if num_proc > count.slots:
        # Horovod needs all ranks running at once; more would wait until the start timeout.
        raise ConfigError(f"--num-proc: {num_proc} ranks requested but Spark can run only "
                          f"{count.slots} tasks at once ({count.describe()})")
    return num_proc


class Launches:
    """The launches of one trial group, and what its trials came to.

    The group's ranks take their trials from ``board`` (driver.board) and live until it is
    closed. A failed launch hands back the trials it held: those MLflow shows finished (or
    whose records wait in the spool) are settled here, the rest go first in the queue, and
    the group launches again, up to ``max_attempts`` launches in the sweep.
    """

    def __init__(self, client: Client, job: RankJob, num_proc: int,
                 log: Callable[[str], None], executable: str = sys.executable,
                 board: Board | None = None, group: int = 0) -> None:
        self.client, self.job, self.num_proc, self.log = client, job, num_proc, log
        self.executable = executable  # the ranks' interpreter, as the executors resolve it
        self.outcomes: list[TrialOutcome] = []
        self.rank_outcomes: list[list[TrialOutcome]] = []  # each rank's, last good launch
        self.elsewhere: list[tuple[str, str]] = []  # (configuration, reason)
        self.unstarted: dict[str, str] = {}  # configuration -> why
        self.remaining: list[Trial] = list(job.trials)  # held when a launch failed
        self.spooled: list[str] = []  # spool files a failed launch left that did not replay
        if board is None:  # the job's own trials, then the end
            board = Board(1, log=log)
            board.submit(list(job.trials))
            board.close()
        self.board, self.group = board, group
        board.on_outcome(group, self._sort_one)

    def run(self, max_attempts: int) -> None:
        for attempt in range(1, max_attempts + 1):
            if self.board.drained() or self.board.halted():
                return
            if self._attempt(attempt, max_attempts):
                return
        self.board.give_up(self.group)

    def _attempt(self, attempt: int, max_attempts: int) -> bool:
        """One launch of the group; whether it ended well (the board said the sweep is over)."""
        import horovod.spark

        from pipeline.train.rank.entry import run_rank

        started = time.perf_counter()
        job = replace(self.job, board=self.board.address(self.group))
        try:
            per_rank = horovod.spark.run(run_rank, args=(job,), num_proc=self.num_proc,
                                         use_gloo=True, env=rank_env(self.job, self.executable),
                                         executable=self.executable,
                                         verbose=1 if self.job.runtime.verbose else 0)
        except Exception as exc:  # a failed launch is retried, not fatal
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            line = store.scrub(line, self.job.tracking.uri)
            self.log(f"{self.job.runtime.label}launch {attempt}/{max_attempts} failed after "
                     f"{time.perf_counter() - started:.0f}s: {line}")
            held = self.board.take_back(self.group)
            self.remaining = held
            self._after_failure()
            retry = {t.config_hash for t in self.remaining}
            self.board.put_back(self.remaining, [t for t in held if t.config_hash not in retry])
            return False
        self.rank_outcomes = per_rank
        self.remaining = []
        return True

    def _after_failure(self) -> None:
        target, client = self.job.tracking, self.client
        # What the dead ranks spooled first: a run that trained while MLflow was down then
        # counts as done (or at least as trained), like any other.
        retry = spool.Retry(target.settings.retries, target.settings.backoff_seconds)
        for line in spool.report_lines(spool.replay(client, Path(target.spool_dir), retry)):
            self.log(line)
        runs.fail_stale_children(client, target.experiment_id, target.parent_run_id,
                                 self._trained_something, {t.config_hash for t in self.remaining})
        finished = store.done_hashes(client, target.experiment_id, self.job.data.fingerprint)
        hashes = {t.config_hash for t in self.remaining} & finished
        self.outcomes += [_outcome_from_run(r) for r in runs.finished_children(
            client, target.experiment_id, target.parent_run_id, hashes)]
        self.remaining = [t for t in self.remaining if t.config_hash not in finished]
        self._hold_spooled()

    def _trained_something(self, run: Run) -> bool:
        folder = checkpoints.job_dir(self.job, run.data.tags.get(TAG_HASH, ""))
        return (bool(run.data.metrics) or checkpoints.read_state(folder) is not None
                or spool_file.waiting(self.job.tracking.spool_dir, run.info.run_id) is not None)

    def _hold_spooled(self) -> None:
        """Configurations whose run still has records in the spool are not trained again
        here: how the run ended is in those records, which the next invocation delivers."""
        waiting = {}
        target = self.job.tracking
        for run in store.children(self.client, target.experiment_id, target.parent_run_id):
            path = spool_file.waiting(target.spool_dir, run.info.run_id)
            if path is not None:
                waiting[run.data.tags.get(TAG_HASH)] = (run.info.run_id, path)
        for trial in [t for t in self.remaining if t.config_hash in waiting]:
            run_id, path = waiting[trial.config_hash]
            self.unstarted[trial.name] = (f"its run {run_id} has records waiting in the spool "
                                          f"({path}); the next invocation delivers them first")
            self.spooled.append(str(path))
            self.remaining.remove(trial)

    def _sort_one(self, o: TrialOutcome) -> None:
        """An outcome rank 0 reported: trained, done elsewhere, or not started (MLflow was
        down)."""
        if o.status == SKIPPED:
            self.elsewhere.append((o.name, o.reason))
        elif o.status == UNSTARTED:
            self.unstarted[o.name] = o.reason
        else:
            self.outcomes.append(o)


def _outcome_from_run(run: Run) -> TrialOutcome:
    m = run.data.metrics
    return TrialOutcome(run.info.run_name, run.data.tags[TAG_HASH],
                        Status(run.data.tags[TAG_STATUS]),
                        epochs_run=int(m.get("epochs_run", 0)),
                        metrics={k: v for k, v in m.items() if k.startswith("test_")},
                        train_seconds=m.get("train_seconds", float("nan")))


def rank_python(spark: SparkSession) -> str:
    """The interpreter Horovod starts the ranks with: the one Spark starts the executors'
    Python workers with (spark.pyspark.python, else PYSPARK_PYTHON), resolved where the
    executor runs. With a shipped environment that is e.g. ./environment/bin/python in the
    executor's working folder; never the driver's own path, unless Spark uses it too."""
    return spark.sparkContext.pythonExec


# A collective some ranks never join (a mismatch) would hang the launch for ever. Each rank
# gives up on a collective after this long (pipeline.train.rank.stall reads it: Horovod's own
# stall shutdown does not fire on these launches), so the driver relaunches what is left.
# Longer than anything a healthy rank waits for inside a collective: rank 0's claim, which
# other ranks wait for in a broadcast, gives up on MLflow within seconds (tracking.retries).
STALL_SHUTDOWN_SECONDS = 600


def rank_env(job: RankJob, executable: str = sys.executable) -> dict[str, str]:
    """Environment overlaid on each rank's: thread counts, quiet TensorFlow logs, Horovod's
    cycle time and stall shutdown."""
    env = {"OMP_NUM_THREADS": str(job.runtime.threads), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": job.tracking.uri,
           "HOROVOD_CYCLE_TIME": horovod_cycle_time_ms(
               (t.config.model.architecture for t in job.trials), launch_ranks(job)),
           "HOROVOD_STALL_SHUTDOWN_TIME_SECONDS": str(STALL_SHUTDOWN_SECONDS),
           # Spark's GPU addresses are nvidia-smi's, numbered by PCI bus; CUDA numbers by
           # speed unless told otherwise (rank/devices.py). No effect without a GPU.
           "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    # MLflow's own HTTP retries (minutes by default) would hide an outage from RunLog's.
    passed = ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT",
              "CUDA_DEVICE_ORDER"]
    if _is_driver_python(executable):
        # Same interpreter, same install: the driver's import path holds for the ranks. A
        # shipped environment brings its own, and the driver's paths do not exist there.
        passed.append("PYTHONPATH")
    for key, value in os.environ.items():
        if key in passed or key.startswith("HOROVOD_"):  # the user's Horovod tuning wins
            env[key] = value
    return env


def _is_driver_python(executable: str) -> bool:
    return os.path.abspath(executable) == os.path.abspath(sys.executable)


# Horovod's background loop wakes every cycle time to start pending allreduces, on the core
# the rank computes on. A dense model's short step waits on that loop; a convolutional step
# is long, and the loop's wake-ups take its compute (side by side, bench/README.md).
CYCLE_TIME_MS_BY_ARCHITECTURE = {"cnn": 1.0}
DEFAULT_CYCLE_TIME_MS = 0.1
# A one-rank launch averages no gradients (Horovod skips the allreduce at size 1): the loop
# serves only the pipeline's own few collectives per epoch, and waking often would only take
# CPU from the trials beside it (BENCHMARKS.md, "Horovod's cycle time on one-rank launches").
ONE_RANK_CYCLE_TIME_MS = 5.0


def horovod_cycle_time_ms(architectures: Iterable[str], ranks: int = 2) -> str:
    """The launch's cycle time: on several ranks, the longest any of its architectures asks
    for, since the slowest steps dominate a mixed sweep's time."""
    if ranks == 1:
        return str(ONE_RANK_CYCLE_TIME_MS)
    wanted = [CYCLE_TIME_MS_BY_ARCHITECTURE.get(a, DEFAULT_CYCLE_TIME_MS) for a in architectures]
    return str(max(wanted, default=DEFAULT_CYCLE_TIME_MS))


def launch_ranks(job: RankJob) -> int:
    """How many ranks the launch of ``job`` has: its trials' (one group trains them all)."""
    return max((t.batches.ranks for t in job.trials), default=2)
