"""bench/progress_estimate.py reads a sweep's console and compares each "about ... left" with
what was left, so the estimate's accuracy is measured, not claimed."""

from __future__ import annotations

import json

import pytest

from bench import progress_estimate

LOG = """\
[0]<stdout>:[trials 1/2] 10:00:00 [1/4] relu #1 (aaaa)
10:00:20     1/4 runs done in 20s; about 1m30s left
10:00:20     trials: 1 done, 1 running, 2 left; no val_accuracy yet
10:00:50     2/4 runs done in 50s; about 40s left
10:01:10     3/4 runs done in 1m10s; about 10s left
10:01:30     4/4 runs done in 1m30s
"""


def test_each_estimate_is_compared_with_the_time_to_the_last_run(tmp_path):
    log = tmp_path / "sweep.log"
    log.write_text(LOG)
    rows = progress_estimate.errors(progress_estimate.progress(LOG))
    assert [(d, s, a) for d, s, a, _ in rows] == [(1, 90, 70), (2, 40, 40), (3, 10, 20)]
    assert rows[0][3] == pytest.approx(20 / 70) and rows[2][3] == pytest.approx(-0.5)
    out = tmp_path / "e.json"
    assert progress_estimate.main([str(log), "--json", str(out)]) == 0
    assert [r["after_run"] for r in json.loads(out.read_text())["sweep.log"]] == [1, 2, 3]


def test_lines_of_a_later_round_are_left_out():
    """Racing plans its next round after the first: the first round's estimates could not
    see those runs, so only lines planned with the final total count."""
    log = "10:00:00     1/2 runs done in 5s; about 5s left\n" \
          "10:00:10     2/3 runs done in 15s; about 5s left\n" \
          "10:00:20     3/3 runs done in 25s\n"
    rows = progress_estimate.errors(progress_estimate.progress(log))
    assert [r[0] for r in rows] == [2]


def test_clock_strings_read_as_seconds():
    assert [progress_estimate.seconds(c) for c in ("45s", "2m07s", "1h02m03s")] == [45, 127, 3723]
