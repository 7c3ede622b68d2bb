"""The progress lines: a remaining-time estimate from per-configuration history that ignores
the first run's warm-up, a clock time on each line, and the trial table."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from pipeline.config import RunConfig
from pipeline.train.contract import TrialOutcome
from pipeline.train.progress import Tracker, estimate_left
from tests.helpers import trial


def _naive(done: list[float], total: int) -> float:
    """The estimate the sweep printed before: the mean time per run so far."""
    return sum(done) / len(done) * (total - len(done))


def test_after_three_runs_of_a_uniform_grid_the_estimate_is_within_a_quarter():
    rng = random.Random(0)
    # 12 configurations x 3 replicates; the first run also pays the warm-up.
    cells = [f"c{i}" for i in range(12) for _ in range(3)]
    seconds = [rng.uniform(9.0, 11.0) for _ in cells]
    seconds[0] += 25.0
    done = list(zip(cells[:3], seconds[:3], strict=True))
    actual = sum(seconds[3:])
    estimate = estimate_left(done, cells[3:])
    assert abs(estimate - actual) / actual < 0.25
    # The mean of the runs so far, warm-up included, misses by far more.
    assert abs(_naive(seconds[:3], len(cells)) - actual) / actual > 0.25


def test_each_groups_first_run_is_left_out_as_warm_up():
    # Two groups side by side: both first runs paid a launch's warm-up (as measured on the
    # default sweep: about 32 s against 9 s for the runs after them).
    done = [("a", 32.0), ("b", 33.0), ("c", 9.0)]
    assert estimate_left(done, ["d", "e"], warmups=2) == pytest.approx(18.0)
    assert estimate_left(done, ["d", "e"]) == pytest.approx(2 * 21.0)  # one warm-up assumed
    assert estimate_left(done[:2], ["d"], warmups=2) == pytest.approx(32.5)  # nothing else yet


def test_a_configuration_with_finished_replicates_is_expected_to_take_their_mean():
    done = [("warm", 40.0), ("slow", 30.0), ("slow", 32.0), ("fast", 5.0)]
    # slow: mean 31; any other: the median of the runs after the first (30, 32, 5): 30.
    assert estimate_left(done, ["slow", "new"]) == pytest.approx(31.0 + 30.0)


def test_the_first_run_counts_while_it_is_the_only_one():
    assert estimate_left([("a", 40.0)], ["a", "b"]) == pytest.approx(80.0)
    assert estimate_left([], ["a"]) is None
    assert estimate_left([("a", 40.0)], []) == 0


def _outcome(t, accuracy: float | None, status: str = "finished") -> TrialOutcome:
    """A run whose last epoch's validation accuracy is ``accuracy``; its test accuracy is
    deliberately the other way round, which the progress lines must not rank by."""
    if accuracy is None:
        return TrialOutcome(t.name, t.config_hash, status)
    return TrialOutcome(t.name, t.config_hash, status, metrics={"test_accuracy": 1 - accuracy},
                        history={"val_accuracy": [0.5, accuracy]})


def test_lines_carry_a_clock_the_estimate_and_the_trial_table():
    trials = [replace(trial(f"cell{c} #{r}", RunConfig()), cell_hash=f"cell{c}")
              for c in (1, 2) for r in (1, 2)]
    tracker = Tracker(trials, "val_accuracy", higher=True, began=100.0)
    tracker.record(trials[0], _outcome(trials[0], 0.90), 30.0)
    assert tracker.lines(now=130.0, clock="14:02:57")[1].endswith(
        "best so far cell1: val_accuracy 0.9000 (1 replicate, no interval yet)")
    tracker.record(trials[1], _outcome(trials[1], 0.96), 10.0)
    line, table = tracker.lines(now=140.0, clock="14:03:07")
    # cell1 #2 took 10 s; the others are expected to take the median of the steady runs.
    assert line == "14:03:07     2/4 runs done in 40s; about 20s left"
    # mean 0.93, sd 0.0424: t(0.975, 1 df) = 12.706 gives half-width 0.3812.
    assert table == ("14:03:07     trials: 2 done, 1 running, 1 left; best so far cell1: "
                     "val_accuracy 0.9300 (95% t-interval 0.5488 to 1.3112, 2 replicates)")


def test_skipped_runs_count_as_done_without_a_duration_and_lower_is_better_works():
    trials = [trial(f"t{i}", RunConfig()) for i in range(3)]
    tracker = Tracker(trials, "val_mae", higher=False, began=0.0)
    tracker.record(trials[0], _outcome(trials[0], None, status="skipped"), 0.1)
    assert tracker.lines(now=1.0, clock="00:00:01") == [
        "00:00:01     1/3 runs done in 1s",
        "00:00:01     trials: 1 done, 1 running, 1 left; no val_mae yet"]
    for t, mae in ((trials[1], 0.5), (trials[2], 0.3)):
        tracker.record(t, TrialOutcome(t.name, t.config_hash, "finished",
                                       history={"val_mae": [0.9, mae]}), 5.0)
    line, table = tracker.lines(now=11.0, clock="00:00:11")
    assert line == "00:00:11     3/3 runs done in 11s"
    assert table.endswith("trials: 3 done, 0 running, 0 left; best so far t2: val_mae 0.3000 "
                          "(1 replicate, no interval yet)")
