"""One place merges the command line into the sweep and checks every range
(pipeline.config.resolve): what the driver, the plan and the layout read afterwards."""

from __future__ import annotations

import pytest

from pipeline.config import SweepConfig, parse
from pipeline.config.resolve import Overrides, resolve
from pipeline.errors import ConfigError


def _sweep(**fields) -> SweepConfig:
    return parse(SweepConfig, {"name": "s", "dataset": "d", **fields}, "")


def test_the_command_line_wins_over_the_file_and_the_file_fills_the_rest():
    sweep = _sweep(repeats=2, ranks_per_trial=2, num_proc=4,
                   grid={"model.hidden_activation": ["relu", "tanh"]})
    kept = resolve(sweep).sweep
    assert (kept.repeats, kept.ranks_per_trial, kept.num_proc) == (2, 2, 4)
    merged = resolve(sweep, Overrides(repeats=5, ranks_per_trial=1, num_proc=2)).sweep
    assert (merged.repeats, merged.ranks_per_trial, merged.num_proc) == (5, 1, 2)
    assert resolve(merged).sweep == merged  # idempotent: the driver resolves again


def test_epochs_from_the_command_line_reach_every_point_even_a_grid_axis_on_them():
    sweep = _sweep(grid={"training.epochs": [3, 8], "model.hidden_activation": ["relu"]})
    points = resolve(sweep, Overrides(epochs=1)).points
    assert [p.config.training.epochs for p in points] == [1, 1]
    assert [p.config.training.epochs for p in resolve(sweep).points] == [3, 8]


def test_racing_plans_every_replicate_a_cell_may_get_and_switches_the_schedule():
    sweep = _sweep(repeats=3, racing={"max_replicates": 5})
    raced = resolve(sweep, Overrides(racing=True)).sweep
    assert raced.racing.enabled and raced.repeats == 5
    assert resolve(sweep, Overrides(halving=True)).sweep.halving.enabled


@pytest.mark.parametrize("given, message", [
    (Overrides(epochs=0), "--epochs: must be at least 1, got 0"),
    (Overrides(repeats=-1), "--repeats: must be at least 1, got -1"),
    (Overrides(repeats=101), "--repeats: must be in [1, 100], got 101"),
    (Overrides(num_proc=0), "--num-proc: must be at least 1, got 0"),
    (Overrides(ranks_per_trial=0), "--ranks-per-trial: must be at least 1, got 0"),
])
def test_command_line_values_out_of_range_are_refused(given, message):
    with pytest.raises(ConfigError) as err:
        resolve(_sweep(), given)
    assert str(err.value) == message


def test_each_grid_point_is_checked_by_name():
    sweep = _sweep(grid={"training.batch_size": [32, 0]})
    with pytest.raises(ConfigError, match=r"^batch_size=0: training.batch_size must be at least"):
        resolve(sweep)
