"""Concurrent trials' pure parts: how the ranks form groups and the order they take trials in."""

from dataclasses import replace

import pytest

from pipeline.config import RunConfig, apply_overrides
from pipeline.errors import ConfigError
from pipeline.train.contract import BatchPlan, Trial
from pipeline.train.driver.groups import Groups, Layout, layout, longest_first
from tests.helpers import rank_job
from tests.helpers.stores import sqlite_store


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


def test_more_ranks_per_trial_than_the_sweep_has_are_refused_in_one_line():
    # Below 1 is refused as the sweep is resolved (tests/unit/test_resolve.py).
    with pytest.raises(ConfigError, match="the sweep has 2 ranks"):
        layout(2, 3)


def test_groups_take_the_longest_trials_first_and_keep_the_plans_order_among_equals():
    trials = [_trial("a", 1), _trial("b", 4), _trial("c", 2), _trial("d", 2), _trial("e", 1)]
    assert [t.name for t in longest_first(trials)] == ["b", "c", "d", "a", "e"]


def test_a_budget_counts_as_the_cost():
    halved = replace(_trial("a", 8), budget=1)
    assert halved.stop_epoch == 1
    assert [t.name for t in longest_first([halved, _trial("b", 2)])] == ["b", "a"]


def test_nothing_to_train_starts_no_launch(tmp_path):
    job = rank_job([], tracking=dict(uri=sqlite_store(tmp_path / "mlflow.db")))
    groups = Groups(job, Layout(1, 2), 1, lambda line: None, "python")
    assert groups.train([]) == []
    assert groups._threads == []  # no group was launched
    groups.close()
