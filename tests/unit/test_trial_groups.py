"""Concurrent trials' pure parts: how the ranks form groups and the trials are shared out."""

from dataclasses import replace

import pytest

from pipeline.config import RunConfig, apply_overrides
from pipeline.errors import ConfigError
from pipeline.train.contract import BatchPlan, Trial
from pipeline.train.driver.groups import Layout, layout, split


def _trial(name: str, epochs: int, steps: int = 10) -> Trial:
    cfg = apply_overrides(RunConfig(), {"training.epochs": epochs}, "test")
    return Trial(name, cfg, name, BatchPlan(1, 32, steps, 1.0, False), name)


def test_ranks_form_groups_of_ranks_per_trial():
    assert layout(2, None) == Layout(2, 1)
    assert layout(2, 1) == Layout(1, 2)
    assert layout(16, 4) == Layout(4, 4)
    said = []
    assert layout(5, 2, said.append) == Layout(2, 2)
    assert said == ["slots: 5 ranks make 2 groups of 2; 1 stay idle"]


@pytest.mark.parametrize("ranks, message", [(0, "at least 1"), (3, "the sweep has 2 ranks")])
def test_impossible_groups_are_refused_in_one_line(ranks, message):
    with pytest.raises(ConfigError, match=message):
        layout(2, ranks)


def test_trials_are_shared_by_cost_and_keep_the_plans_order_in_a_group():
    trials = [_trial("a", 1), _trial("b", 4), _trial("c", 2), _trial("d", 2), _trial("e", 1)]
    shares = split(trials, 2)  # costs 10, 40, 20, 20, 10: two groups of 50
    assert [[t.name for t in s] for s in shares] == [["a", "b"], ["c", "d", "e"]]
    assert sorted(t.name for s in shares for t in s) == ["a", "b", "c", "d", "e"]


def test_a_budget_counts_as_the_cost_and_empty_groups_are_dropped():
    halved = [replace(_trial("a", 8), budget=1)]
    assert halved[0].stop_epoch == 1
    assert len(split(halved, 4)) == 1
