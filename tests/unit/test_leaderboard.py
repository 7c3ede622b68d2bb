"""The cell leaderboard and the report's frame logic on a generated table of replicate runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.report import leaderboard
from pipeline.report.frame import varying_params


def _runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for act, acc, secs in (("relu", 0.97, 30.0), ("sigmoid", 0.90, 10.0), ("tanh", 0.95, 20.0)):
        for r in range(3):
            rows.append({"run_id": f"{act}{r}", "cell": act, "configuration": act,
                         "replicate": r, "status": "finished", "hidden_activation": act,
                         "test_accuracy": acc + rng.normal(0, 0.002), "test_loss": 1 - acc,
                         "train_seconds": secs + r})
    rows.append({"run_id": "x", "cell": "elu", "configuration": "elu", "replicate": 0,
                 "status": "failed", "hidden_activation": "elu", "test_accuracy": np.nan,
                 "test_loss": np.nan, "train_seconds": np.nan})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("metric, higher", [("test_accuracy", True), ("test_loss", False),
                                            ("train_seconds", False), ("rmse", False),
                                            ("val_auc", True)])
def test_every_metric_ranks_in_its_own_direction(metric, higher):
    assert leaderboard.higher_is_better(metric) is higher


def test_accuracy_ranks_descending_and_seconds_ascending():
    runs = _runs()
    by_accuracy = leaderboard.cell_board(runs, ["hidden_activation"], "test_accuracy")
    assert list(by_accuracy["cell"][:3]) == ["relu", "tanh", "sigmoid"]
    by_time = leaderboard.cell_board(runs, ["hidden_activation"], "train_seconds")
    assert list(by_time["cell"][:3]) == ["sigmoid", "tanh", "relu"]  # the fastest first
    assert by_time.iloc[-1]["cell"] == "elu" and by_time.iloc[-1]["n_failed"] == 1
    mean = runs[runs["cell"] == "relu"]["test_accuracy"].mean()
    assert by_accuracy.iloc[0]["mean"] == pytest.approx(mean)
    assert by_accuracy.iloc[0]["mean_test_loss"] == pytest.approx(0.03)


def test_the_champion_replicate_is_the_best_of_the_best_cell_in_the_metrics_direction():
    runs = _runs()
    best = leaderboard.best_replicate(runs, "relu", "test_accuracy")
    assert best["test_accuracy"] == runs[runs["cell"] == "relu"]["test_accuracy"].max()
    fastest = leaderboard.best_replicate(runs, "relu", "train_seconds")
    assert fastest["train_seconds"] == 30.0  # never the slowest
    assert leaderboard.best_replicate(runs, "elu", "test_accuracy") is None


def test_an_unknown_metric_is_one_clear_error():
    with pytest.raises(PipelineError, match="--metric: 'f1' is not a run metric"):
        leaderboard.cell_board(_runs(), ["hidden_activation"], "f1")


def test_factors_are_the_keys_that_vary_between_cells_never_the_seed():
    frame = pd.DataFrame({
        "cell": ["a", "a", "b", "b"],
        "params.model.hidden_activation": ["relu", "relu", "tanh", "tanh"],
        "params.training.seed": ["1", "2", "1", "2"],
        "params.optimizer.learning_rate": ["0.1", "0.1", "0.2", "0.2"],
        "params.model.kernel_initializer": ["zeros"] * 4,
        "params.model.name": ["x", "x", "y", "y"], "params.optimizer.name": ["a", "a", "b", "b"],
    })
    assert varying_params(frame) == {
        "hidden_activation": "model.hidden_activation", "learning_rate":
            "optimizer.learning_rate", "model.name": "model.name",
        "optimizer.name": "optimizer.name"}
