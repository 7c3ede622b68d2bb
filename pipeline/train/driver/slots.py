"""How many Horovod ranks Spark can run at once, counted from the executors that registered.

Horovod runs every rank as a Spark task and needs them all running together; one too many
waits for a slot until HOROVOD_SPARK_START_TIMEOUT (600 s). ``spark.default.parallelism``
is no measure of that: right after start-up a standalone cluster's executors may not have
registered yet, and the setting can be any number. So the driver counts the cores (and GPUs)
of the executors that registered, waiting a bounded time for them, and divides by what one
task takes.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark import SparkConf
from pyspark.sql import SparkSession

# Once the registered executors stop changing for this long, the cluster is taken as complete
# (when its expected size is unknown: a standalone cluster without spark.cores.max).
SETTLE_SECONDS = 5.0
# The longest the count waits; Spark's own wait for executors before the first job.
WAIT_KEY, DEFAULT_WAIT_SECONDS = "spark.scheduler.maxRegisteredResourcesWaitingTime", 30.0
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Executor:
    executor_id: str
    cores: int
    gpus: int = 0


@dataclass(frozen=True)
class TaskShape:
    """What one task, so one rank, takes: spark.task.cpus and spark.task.resource.gpu.amount
    (0 when GPU scheduling is off; a fraction lets tasks share a GPU)."""

    cpus: int = 1
    gpus: float = 0.0


@dataclass(frozen=True)
class SlotCount:
    slots: int
    executors: list[Executor]
    shape: TaskShape
    waited: float = 0.0
    local: bool = False
    note: str = ""  # why the count is what it is, when that is not obvious

    def describe(self) -> str:
        """The count's evidence, for the refusal message."""
        gpu = (f", spark.task.resource.gpu.amount={self.shape.gpus:g} over "
               f"{sum(e.gpus for e in self.executors)} GPU(s)" if self.shape.gpus else "")
        where = ("local mode" if self.local else
                 f"{len(self.executors)} executor(s) registered after {self.waited:.0f}s")
        cores = sum(e.cores for e in self.executors)
        return (f"{where}: {cores} core(s), spark.task.cpus={self.shape.cpus}{gpu}"
                f"{'; ' + self.note if self.note else ''}")


def task_shape(conf: SparkConf) -> TaskShape:
    return TaskShape(int(conf.get("spark.task.cpus", "1")),
                     float(conf.get("spark.task.resource.gpu.amount", "0")))


def executor_slots(executor: Executor, shape: TaskShape) -> int:
    """Tasks one executor runs at once: limited by its cores and, with GPU scheduling, GPUs."""
    by_cpu = executor.cores // shape.cpus
    if shape.gpus <= 0:
        return by_cpu
    if shape.gpus < 1:  # Spark allows 1/n: n tasks share each GPU
        by_gpu = executor.gpus * math.floor(1 / shape.gpus + 1e-9)
    else:
        by_gpu = executor.gpus // math.ceil(shape.gpus)
    return min(by_cpu, by_gpu)


def local_cores(master: str, available_processors: Callable[[], int]) -> int | None:
    """The cores of a ``local``, ``local[N]``, ``local[*]`` (or ``[N,F]``/``[*,F]``) master;
    None for a cluster master. ``*`` is what the JVM counts, as Spark itself does."""
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if m is None:
        return None
    if m.group(1) is None:
        return 1
    return available_processors() if m.group(1) == "*" else int(m.group(1))


def size_stated(conf: SparkConf) -> bool:
    """Whether the application says how many executors it expects."""
    return any(conf.get(key) is not None
               for key in ("spark.executor.instances", "spark.cores.max"))


def expected_complete(executors: list[Executor], conf: SparkConf) -> bool:
    """Whether every executor the application asked for has registered, when it says how
    many: spark.executor.instances (YARN, Kubernetes) or spark.cores.max (standalone)."""
    instances, cores_max = conf.get("spark.executor.instances"), conf.get("spark.cores.max")
    if instances is not None and len(executors) >= int(instances):
        return True
    return cores_max is not None and sum(e.cores for e in executors) >= int(cores_max)


def count_slots(spark: SparkSession, wanted: int | None = None) -> SlotCount:
    """The task slots of this application. On a cluster, waits for executors to register
    (see wait_for_executors); in local mode, the master's cores."""
    sc = spark.sparkContext
    conf, shape = sc.getConf(), task_shape(sc.getConf())
    cores = local_cores(sc.master, sc._jvm.java.lang.Runtime.getRuntime().availableProcessors)
    if cores is not None:
        return local_slots(cores, shape)
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return _dynamic_allocation(conf, shape)
    return wait_for_executors(lambda: registered_executors(spark), conf, wanted)


def local_slots(cores: int, shape: TaskShape) -> SlotCount:
    """Local mode: the driver's cores. Spark's local mode offers tasks no GPU (measured: with
    spark.task.resource.gpu.amount set, tasks never started), so a GPU amount leaves none."""
    if shape.gpus:
        return SlotCount(0, [Executor("driver", cores)], shape, local=True,
                         note="Spark's local mode schedules no GPU tasks: drop "
                              "spark.task.resource.gpu.amount (ranks then take GPUs by local rank)")
    return SlotCount(cores // shape.cpus, [Executor("driver", cores)], shape, local=True)


def wait_for_executors(read: Callable[[], list[Executor]], conf: SparkConf,
                       wanted: int | None = None, clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> SlotCount:
    """Count the registered executors' slots until ``wanted`` slots exist, every expected
    executor registered, or the registered set stopped changing for SETTLE_SECONDS; at most
    spark.scheduler.maxRegisteredResourcesWaitingTime (30 s).

    A quiet spell ends the wait only when the cluster's size is unknown: where the application
    states it, the executors still missing are on their way (e.g. unpacking an archive of the
    runtime environment before they register), so the wait goes on to the bound."""
    shape = task_shape(conf)
    may_settle = not size_stated(conf)
    started = clock()
    deadline = started + _wait_seconds(conf)
    seen, stable_since = read(), started
    while True:
        slots = sum(executor_slots(e, shape) for e in seen)
        now = clock()
        settled = may_settle and bool(seen) and now - stable_since >= SETTLE_SECONDS
        if ((wanted is not None and slots >= wanted) or expected_complete(seen, conf)
                or settled or now >= deadline):
            note = "" if seen else "no executor registered: is the cluster up, with free cores?"
            return SlotCount(slots, seen, shape, waited=now - started, note=note)
        sleep(POLL_SECONDS)
        current = read()
        if {e.executor_id for e in current} != {e.executor_id for e in seen}:
            seen, stable_since = current, clock()


def _dynamic_allocation(conf: SparkConf, shape: TaskShape) -> SlotCount:
    """Executors start on demand: the ceiling is maxExecutors x executor cores, when set."""
    most, cores = conf.get("spark.dynamicAllocation.maxExecutors"), conf.get("spark.executor.cores")
    if most is None or cores is None:
        return SlotCount(-1, [], shape, note="dynamic allocation without maxExecutors and "
                                             "spark.executor.cores: not counted")
    gpus = int(conf.get("spark.executor.resource.gpu.amount", "0"))
    executors = [Executor(f"max-{i}", int(cores), gpus) for i in range(int(most))]
    slots = sum(executor_slots(e, shape) for e in executors)
    return SlotCount(slots, executors, shape, note="dynamic allocation: its maximum")


def _wait_seconds(conf: SparkConf) -> float:
    raw = conf.get(WAIT_KEY)
    if raw is None:
        return DEFAULT_WAIT_SECONDS
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m)?", raw.strip())
    if m is None:
        return DEFAULT_WAIT_SECONDS
    scale = {"ms": 0.001, None: 0.001, "s": 1.0, "min": 60.0, "m": 60.0}[m.group(2)]
    return float(m.group(1)) * scale


def registered_executors(spark: SparkSession) -> list[Executor]:
    """The application's live executors (not the driver), from Spark's status store."""
    listed = spark.sparkContext._jsc.sc().statusStore().executorList(True)  # active only
    executors = []
    for i in range(listed.size()):
        e = listed.apply(i)
        if e.id() == "driver":
            continue
        resources = e.resources()
        gpus = len(resources.apply("gpu").addresses()) if resources.contains("gpu") else 0
        executors.append(Executor(e.id(), e.totalCores(), gpus))
    return executors
