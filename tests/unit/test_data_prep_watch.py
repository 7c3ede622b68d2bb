"""The data-preparation benchmark's memory watcher: a job's peak resident memory is its
processes' high-water marks, so a peak the job has freed again before the watcher looks still
counts, and the job's own process is reported apart from its Python descendants."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.data_prep import _watch, high_water_rss

# Holds 200 MiB for a moment, frees it, then lives on well past the watcher's next read.
PEAK_THEN_FREE = ("import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
                  "del b; time.sleep(1.5)")


def test_a_freed_peak_of_a_python_descendant_is_reported():
    # bash stands in for spark-submit's JVM: the watched process, Python started beneath it
    job = subprocess.Popen(["bash", "-c", f'"{sys.executable}" -c "{PEAK_THEN_FREE}"; sleep 0.2'])
    python_peak, own_peak = _watch(job, every=0.5, rescan=0.5)
    assert job.returncode == 0
    assert python_peak >= 200 * 2**20
    assert 0 < own_peak < 100 * 2**20  # bash's own, not its child's


def test_high_water_of_a_gone_process_is_zero():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    assert high_water_rss(int(done.stdout)) == 0
    assert high_water_rss(os.getpid()) > 0
