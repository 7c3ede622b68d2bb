"""Rank pinning, in child processes (the affinity of the test runner itself is left alone)."""

import os
import subprocess
import sys

PROBE = """
import os, sys
from pipeline.train.rank.pinning import pin_cores
got = pin_cores(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
print(got, sorted(os.sched_getaffinity(0)))
"""


def _pin(local_rank: int, local_size: int, threads: int) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, str(local_rank), str(local_size),
                           str(threads)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_each_local_rank_gets_its_own_cores():
    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "the machines this project targets have at least 2 cores"
    assert _pin(0, 2, 1) == f"[{cores[0]}] [{cores[0]}]"
    assert _pin(1, 2, 1) == f"[{cores[1]}] [{cores[1]}]"


def test_ranks_are_left_unpinned_when_cores_are_too_few():
    cores = sorted(os.sched_getaffinity(0))
    assert _pin(0, len(cores) + 1, 1) == f"None {cores}"
    assert _pin(0, 1, len(cores) + 1) == f"None {cores}"
