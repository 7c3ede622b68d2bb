"""The cell leaderboard and the report's frame logic on a generated table of replicate runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.report import answer, leaderboard, writer
from pipeline.report.frame import SweepRuns, varying_params


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


def _sweep(runs: pd.DataFrame, task: str = "multiclass") -> SweepRuns:
    return SweepRuns("e", "0", "p", runs, ["hidden_activation"], {}, [], task)


def test_cells_are_ranked_on_validation_and_test_is_quoted_for_the_chosen_cells_only():
    runs = _runs()
    # Validation says tanh; test would have said relu: the choice must follow validation.
    runs["final_val_accuracy"] = runs["hidden_activation"].map(
        {"relu": 0.95, "tanh": 0.96, "sigmoid": 0.90, "elu": np.nan}) + runs["replicate"] * 1e-4
    ranked, test = writer.ranking_metrics(_sweep(runs), None)
    assert (ranked, test) == ("final_val_accuracy", "test_accuracy")
    board = leaderboard.cell_board(runs, ["hidden_activation"], ranked)
    assert board.iloc[0]["cell"] == "tanh" and board.iloc[0]["verdict"] == "best"
    line = answer.test_line(board, ["hidden_activation"], test)
    tanh_test = runs[runs["cell"] == "tanh"]["test_accuracy"].mean()
    assert f"tanh {tanh_test:.4f}" in line and "relu" not in line
    champion = leaderboard.best_replicate(runs, "tanh", ranked)
    assert champion["replicate"] == 2  # the best validation replicate, whatever its test score
    assert writer.ranking_metrics(_sweep(runs), "test_loss") == ("test_loss", None)


def test_without_a_validation_metric_the_test_metric_ranks():
    assert writer.ranking_metrics(_sweep(_runs()), None) == ("test_accuracy", None)
    regression = _runs().assign(final_val_mae=0.1)
    assert writer.ranking_metrics(_sweep(regression, "regression"), None) == (
        "final_val_mae", "test_rmse")


def test_the_board_carries_its_min_effect_and_verdicts():
    board = leaderboard.cell_board(_runs(), ["hidden_activation"], "test_accuracy",
                                   min_effect=0.05)
    assert board.attrs["min_effect"] == 0.05
    verdict = board.set_index("cell")["verdict"]
    # tanh is 0.02 below relu: worse at min_effect 0.001, but tied or undecided at 0.05.
    assert verdict["relu"] == "best" and verdict["tanh"] in ("tied", "undecided")
    assert verdict["sigmoid"] == "worse" and verdict["elu"] == "worse"
    assert leaderboard.cell_board(_runs(), ["hidden_activation"], "test_accuracy").set_index(
        "cell").loc["tanh", "verdict"] == "worse"
