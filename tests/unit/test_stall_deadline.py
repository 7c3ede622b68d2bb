"""The stall deadline in a real process: a rank waiting past it in a collective says which one
and exits with the stall status; one that leaves the collective in time goes on."""

from __future__ import annotations

import subprocess
import sys

from pipeline.train.rank.stall import STALL_EXIT, deadline_seconds
from tests.helpers import ROOT

WAIT = """
import time
from pipeline.train.rank.stall import within_deadline
with within_deadline("claim.abc"):
    time.sleep({inside})
time.sleep({after})
print("went on")
"""


def _rank(inside: float, after: float, deadline: str = "1") -> subprocess.CompletedProcess:
    env = {"HOROVOD_STALL_SHUTDOWN_TIME_SECONDS": deadline, "HOROVOD_RANK": "1",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", WAIT.format(inside=inside, after=after)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_a_collective_past_the_deadline_ends_the_rank_naming_it():
    proc = _rank(inside=5, after=0)
    assert proc.returncode == STALL_EXIT and "went on" not in proc.stdout
    [line] = proc.stderr.splitlines()
    assert line.startswith("rank 1: collective claim.abc: not every rank joined within 1s")


def test_time_outside_a_collective_does_not_count():
    proc = _rank(inside=0.2, after=2.5)
    assert proc.returncode == 0 and "went on" in proc.stdout


def test_the_deadline_is_horovods_stall_shutdown_setting(monkeypatch):
    monkeypatch.setenv("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", "42")
    assert deadline_seconds() == 42
    for bad in ("", "soon", "0", "-5"):
        monkeypatch.setenv("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", bad)
        assert deadline_seconds() == 600


STEPS = """
import time
from pipeline.train.rank.stall import watchdog
done = [0]
dog = watchdog()
dog.arm("epoch 1's training steps", progress=lambda: done[0])
for _ in range({steps}):  # steps that keep finishing: the deadline runs from the last one
    time.sleep(0.5)
    done[0] += 1
print("steps went on", flush=True)
time.sleep({stuck})  # no step finishes any more
dog.disarm()
print("went on")
"""


def _training(steps: int, stuck: float) -> subprocess.CompletedProcess:
    env = {"HOROVOD_STALL_SHUTDOWN_TIME_SECONDS": "1", "HOROVOD_RANK": "0",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", STEPS.format(steps=steps, stuck=stuck)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_training_that_keeps_stepping_outlives_the_deadline_and_one_that_stops_does_not():
    moving = _training(steps=6, stuck=0)  # 3 s of training with a 1 s deadline
    assert moving.returncode == 0 and "went on" in moving.stdout
    stuck = _training(steps=2, stuck=5)
    assert stuck.returncode == STALL_EXIT and "steps went on" in stuck.stdout
    assert "collective epoch 1's training steps: not every rank joined" in stuck.stderr
