"""Successive halving's pure parts: the rungs' budgets and the decision at a rung."""

import math

import pytest

from pipeline.config import HalvingConfig
from pipeline.errors import ConfigError
from pipeline.tasks import validation_metric
from pipeline.train.driver.halving import budgets, decide


def test_budgets_grow_eta_fold_and_end_at_the_epochs():
    assert budgets(5, HalvingConfig(True, 1, 2)) == [1, 2, 4, 5]
    assert budgets(8, HalvingConfig(True, 1, 2)) == [1, 2, 4, 8]
    assert budgets(10, HalvingConfig(True, 2, 3)) == [2, 6, 10]
    assert budgets(1, HalvingConfig(True, 1, 2)) == [1]  # nothing to halve: one full rung


@pytest.mark.parametrize("values, message", [((True, 0, 2), "min_epochs"),
                                             ((True, 1, 1), "eta")])
def test_settings_that_never_halve_are_refused_when_the_file_is_read(values, message):
    with pytest.raises(ConfigError, match=message):
        HalvingConfig(*values)


def test_the_best_fraction_is_kept_in_the_metrics_direction():
    scores = {"a": 0.9, "b": 0.95, "c": 0.5, "d": 0.7, "e": 0.8}
    assert decide(scores, higher=True, eta=2) == (["b", "a", "e"], ["d", "c"])
    assert decide(scores, higher=False, eta=2) == (["c", "d", "e"], ["a", "b"])
    assert decide(scores, higher=True, eta=3) == (["b", "a"], ["e", "d", "c"])


def test_a_cell_without_a_score_ranks_last_whatever_the_direction():
    scores = {"nan": math.nan, "x": 0.1, "y": 0.2}
    assert decide(scores, higher=True, eta=2)[1][-1] == "nan"
    assert decide(scores, higher=False, eta=2)[1][-1] == "nan"


def test_ties_keep_the_plans_order():
    assert decide({"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.0}, True, 2) == (["a", "b"], ["c", "d"])


def test_cells_are_compared_on_a_metric_every_loss_shares():
    assert validation_metric("multiclass") == ("val_accuracy", True)
    assert validation_metric("regression") == ("val_mae", False)
