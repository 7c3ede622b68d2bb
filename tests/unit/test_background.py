"""Rank 0's records thread: tasks run one at a time, in order, and failures surface."""

import threading
import time

import pytest

from pipeline.train.rank.background import Background


def test_tasks_run_in_order_one_at_a_time():
    done: list[int] = []
    running = threading.Lock()

    def task(i: int):
        def run():
            assert running.acquire(blocking=False), "two tasks ran at once"
            time.sleep(0.05)
            done.append(i)
            running.release()
        return run

    bg = Background()
    for i in range(3):
        bg.submit(task(i))
    bg.wait()
    assert done == [0, 1, 2]


def test_submit_reports_how_long_it_waited_for_the_previous_task():
    bg = Background()
    assert bg.submit(lambda: time.sleep(0.3)) == pytest.approx(0.0, abs=0.05)
    assert bg.submit(lambda: None) >= 0.2
    bg.wait()


def test_a_failed_task_is_raised_by_the_next_wait_and_only_once():
    bg = Background()
    bg.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bg.wait()
    assert bg.wait() == pytest.approx(0.0, abs=0.05)
