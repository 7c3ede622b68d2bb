"""Rank pinning, in child processes (the affinity of the test runner itself is left alone)."""

import os
import subprocess
import sys

PROBE = """
import os, sys
from pipeline.train.rank.pinning import pin_cores
got = pin_cores(*map(int, sys.argv[1:]))
print(got, sorted(os.sched_getaffinity(0)))
"""


def _pin(*args: int) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)],
                          capture_output=True, text=True, check=True)
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


def test_concurrent_launches_on_one_host_take_cores_after_each_other():
    """Two one-rank trials at once: both are local rank 0 of their own launch."""
    cores = sorted(os.sched_getaffinity(0))
    assert _pin(0, 1, 1, 0) == f"[{cores[0]}] [{cores[0]}]"
    assert _pin(0, 1, 1, 1) == f"[{cores[1]}] [{cores[1]}]"
    assert _pin(0, 1, 1, len(cores)) == f"None {cores}"  # past the host's cores: unpinned
