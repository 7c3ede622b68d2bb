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
