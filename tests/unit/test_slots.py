"""Slot counting: executor cores over spark.task.cpus (and GPUs over the task's GPU amount),
local masters, and the bounded wait for executors to register (with a fake clock).

The same counting against a real standalone cluster is in tests/integration/test_cluster.py.
"""

from __future__ import annotations

import pytest
from pyspark import SparkConf

from pipeline.train.driver.slots import (
    SETTLE_SECONDS,
    Executor,
    TaskShape,
    count_slots,
    executor_slots,
    local_cores,
    local_slots,
    wait_for_executors,
)


def conf(**settings: str) -> SparkConf:
    c = SparkConf(loadDefaults=False)
    for key, value in settings.items():
        c.set(key.replace("_", "."), value)
    return c


@pytest.mark.parametrize(("cores", "gpus", "shape", "slots"), [
    (4, 0, TaskShape(1), 4),
    (4, 0, TaskShape(2), 2),
    (5, 0, TaskShape(2), 2),            # a leftover core runs no task
    (8, 2, TaskShape(1, 1.0), 2),       # GPU scheduling: the GPUs limit
    (8, 2, TaskShape(4, 1.0), 2),
    (2, 4, TaskShape(1, 1.0), 2),       # ... or the cores do
    (8, 1, TaskShape(1, 0.25), 4),      # four tasks share a GPU
    (8, 4, TaskShape(1, 2.0), 2),       # two GPUs per task
    (8, 0, TaskShape(1, 1.0), 0),       # an executor without GPUs runs no GPU task
])
def test_executor_slots(cores, gpus, shape, slots):
    assert executor_slots(Executor("1", cores, gpus), shape) == slots


def test_local_masters_count_their_cores():
    assert local_cores("local", lambda: 8) == 1
    assert local_cores("local[3]", lambda: 8) == 3
    assert local_cores("local[*]", lambda: 8) == 8
    assert local_cores("local[2,4]", lambda: 8) == 2
    assert local_cores("local[*, 3]", lambda: 6) == 6
    assert local_cores("spark://127.0.0.1:7077", lambda: 8) is None
    assert local_cores("yarn", lambda: 8) is None
    assert local_cores("k8s://https://api:6443", lambda: 8) is None


class FakeCluster:
    """Executors that register at given times, read through a fake clock."""

    def __init__(self, arrivals: dict[float, Executor]) -> None:
        self.now = 0.0
        self.arrivals = arrivals
        self.reads = 0

    def read(self) -> list[Executor]:
        self.reads += 1
        return [e for t, e in sorted(self.arrivals.items()) if t <= self.now]

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def wait(cluster: FakeCluster, settings: SparkConf, wanted: int | None = None):
    return wait_for_executors(cluster.read, settings, wanted, cluster.clock, cluster.sleep)


def test_a_late_executor_is_waited_for_when_the_ranks_need_it():
    cluster = FakeCluster({1.0: Executor("0", 1), 4.0: Executor("1", 1)})
    count = wait(cluster, conf(), wanted=2)
    assert count.slots == 2 and 4.0 <= count.waited < 4.5  # no later than needed


def test_too_many_ranks_end_once_the_executors_stop_changing():
    cluster = FakeCluster({1.0: Executor("0", 1), 2.0: Executor("1", 1)})
    count = wait(cluster, conf(), wanted=5)
    assert count.slots == 2
    assert 2.0 + SETTLE_SECONDS <= count.waited < 2.0 + SETTLE_SECONDS + 0.5
    assert "2 executor(s) registered after 7s: 2 core(s), spark.task.cpus=1" in count.describe()


def test_a_known_cluster_size_ends_the_wait_at_once():
    cluster = FakeCluster({1.0: Executor("0", 2), 1.5: Executor("1", 2)})
    assert wait(cluster, conf(spark_executor_instances="2"), wanted=9).waited < 2.0
    cluster = FakeCluster({1.0: Executor("0", 2), 1.5: Executor("1", 2)})
    assert wait(cluster, conf(spark_cores_max="4"), wanted=9).waited < 2.0


def test_a_stated_cluster_size_waits_past_a_quiet_spell_for_the_missing_executor():
    # The second executor unpacks the packed environment before it registers: 12 s after the
    # first, longer than a quiet spell, and the application said it expects two cores.
    cluster = FakeCluster({1.0: Executor("0", 1), 13.0: Executor("1", 1)})
    count = wait(cluster, conf(spark_cores_max="2"), wanted=2)
    assert count.slots == 2 and 13.0 <= count.waited < 13.5
    cluster = FakeCluster({1.0: Executor("0", 1)})  # ... but no longer than the bound
    count = wait(cluster, conf(spark_executor_instances="2",
                               spark_scheduler_maxRegisteredResourcesWaitingTime="20s"), wanted=2)
    assert count.slots == 1 and 20.0 <= count.waited < 20.5


def test_no_executor_at_all_waits_the_bound_and_says_so():
    cluster = FakeCluster({})
    count = wait(cluster, conf(spark_scheduler_maxRegisteredResourcesWaitingTime="3s"), 1)
    assert count.slots == 0 and 3.0 <= count.waited < 3.5
    assert "no executor registered" in count.describe()


def test_the_bound_is_read_in_sparks_units():
    for value, bound in (("2000ms", 2.0), ("1min", 60.0), ("4", 0.004)):
        cluster = FakeCluster({})
        count = wait(cluster, conf(spark_scheduler_maxRegisteredResourcesWaitingTime=value))
        assert bound <= count.waited < bound + 0.5


def test_gpu_scheduling_counts_gpus_per_task():
    cluster = FakeCluster({0.0: Executor("0", 8, 2), 0.1: Executor("1", 8, 2)})
    settings = conf(spark_task_resource_gpu_amount="1", spark_executor_instances="2")
    count = wait(cluster, settings, wanted=16)
    assert count.slots == 4
    assert "spark.task.resource.gpu.amount=1 over 4 GPU(s)" in count.describe()


def test_local_mode_counts_the_masters_cores_over_task_cpus(spark):
    count = count_slots(spark)  # the test session is local[2]
    assert count.local and count.slots == 2 and count.waited == 0


def test_local_mode_refuses_gpu_tasks_it_would_never_start():
    count = local_slots(4, TaskShape(1, 1.0))
    assert count.slots == 0 and "local mode schedules no GPU tasks" in count.describe()
    assert local_slots(4, TaskShape(2)).slots == 2


def test_dynamic_allocation_counts_its_maximum_or_nothing():
    from pipeline.train.driver.slots import _dynamic_allocation

    capped = _dynamic_allocation(conf(spark_dynamicAllocation_maxExecutors="3",
                                      spark_executor_cores="4", spark_task_cpus="2"),
                                 TaskShape(2))
    assert capped.slots == 6 and "dynamic allocation" in capped.describe()
    assert _dynamic_allocation(conf(), TaskShape()).slots == -1  # not countable
