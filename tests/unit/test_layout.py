"""The layout a sweep takes when not told: one-rank trials side by side on one machine when
there are runs enough for the slots, data-parallel ranks otherwise; an explicit choice wins."""

from __future__ import annotations

import pytest

from pipeline.config import SweepConfig, parse
from pipeline.config.resolve import resolve
from pipeline.errors import ConfigError
from pipeline.train.driver import layout
from pipeline.train.driver.sweep import SweepOptions, choose_layout


@pytest.mark.parametrize("master, local", [
    ("local", True), ("local[2]", True), ("local[*]", True), ("local[4,2]", True),
    ("local-cluster[2,1,1024]", False), ("spark://host:7077", False), ("yarn", False),
    ("k8s://https://host", False)])
def test_which_masters_are_one_machine(master, local):
    assert layout.is_local(master) is local


def test_one_machine_with_runs_enough_trains_one_rank_trials_side_by_side():
    choice = layout.choose(slots=2, runs=36, local=True)
    assert choice.ranks_per_trial == 1
    assert "one machine, 36 runs for 2 slots" in choice.why and "BENCHMARKS.md" in choice.why


@pytest.mark.parametrize("slots, runs, ranks", [(2, 1, 2), (4, 1, 4), (4, 2, 2), (4, 3, 1)])
def test_fewer_runs_than_slots_share_the_slots_as_data_parallel_ranks(slots, runs, ranks):
    assert layout.choose(slots, runs, local=True).ranks_per_trial == ranks


def test_a_cluster_keeps_every_rank_on_each_trial():
    choice = layout.choose(slots=4, runs=36, local=False)
    assert choice.ranks_per_trial == 4 and choice.why.startswith("a cluster")


def test_an_explicit_choice_wins_everywhere():
    for local in (True, False):
        assert layout.choose(2, 36, local, asked=2).ranks_per_trial == 2


def _sweep(**fields: object) -> SweepConfig:
    return parse(SweepConfig, {"name": "s", "dataset": "d", **fields})


def test_the_sweep_says_its_layout_and_why_in_one_line():
    said: list[str] = []
    sweep = _sweep(grid={"model.hidden_activation": ["relu", "tanh"]}, repeats=3)
    shape = choose_layout("local[2]", sweep, 2, said.append)
    assert (shape.ranks, shape.groups) == (1, 2)
    [line] = said
    assert line.startswith("sweep s: layout: 2 trials at once, 1 Horovod rank each; "
                           "one machine, 6 runs for 2 slots")


def test_ranks_per_trial_from_the_options_or_the_sweep_override_the_rule():
    said: list[str] = []
    asked = resolve(_sweep(repeats=3), SweepOptions(None, ranks_per_trial=2).overrides()).sweep
    shape = choose_layout("local[2]", asked, 2, said.append)
    assert (shape.ranks, shape.groups) == (2, 1)
    shape = choose_layout("local[2]", _sweep(repeats=3, ranks_per_trial=2), 2, said.append)
    assert (shape.ranks, shape.groups) == (2, 1)
    assert all("as asked" in line for line in said)
    too_many = resolve(_sweep(), SweepOptions(None, ranks_per_trial=3).overrides()).sweep
    with pytest.raises(ConfigError, match="--ranks-per-trial: 3 ranks per trial"):
        choose_layout("local[2]", too_many, 2, said.append)
