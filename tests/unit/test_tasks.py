"""The task table, the head/loss rules by task and the driver's pre-flight check. No TensorFlow."""

from __future__ import annotations

import pytest

from pipeline import tasks
from pipeline.config import RunConfig, apply_overrides
from pipeline.data.manifest import Manifest
from pipeline.errors import ConfigError
from pipeline.model import names
from pipeline.tracking import vocab
from pipeline.train.driver.plan import check_task, check_training


def test_every_task_has_a_row_and_rules():
    assert set(tasks.SPECS) == set(tasks.TASKS)
    assert set(names.TASK_LOSSES) == set(names.TASK_OUTPUTS) == set(tasks.TASKS)
    for task in tasks.TASKS:
        spec = tasks.task_spec(task)
        assert spec.primary_metric in spec.final_metrics
        assert set(spec.directions) == set(spec.final_metrics)
        assert spec.prediction and spec.head
        for table in (names.TASK_LOSSES[task], names.TASK_OUTPUTS[task]):
            for name in table:  # every rule names a registered loss or activation
                assert name in names.LOSSES or name in names.ACTIVATIONS, name


@pytest.mark.parametrize(("task", "metric", "higher"), [
    ("multiclass", "test_accuracy", True), ("binary", "test_auc", True),
    ("multilabel", "test_micro_f1", True), ("regression", "test_rmse", False)])
def test_primary_metric_and_direction(task, metric, higher):
    assert tasks.primary_metric(task) == (metric, higher)
    assert tasks.task_spec(task).higher_is_better is higher


def test_directions_of_losses_and_errors_are_lower_is_better():
    assert not tasks.higher_is_better("regression", "test_mae")
    assert tasks.higher_is_better("regression", "test_r2")
    assert not tasks.higher_is_better("multilabel", "test_hamming_loss")
    assert not tasks.higher_is_better("binary", "test_log_loss")
    with pytest.raises(ConfigError, match="not a metric of task binary"):
        tasks.higher_is_better("binary", "test_rmse")


def test_mlflow_final_metrics_come_from_the_table():
    assert vocab.final_metrics("regression") == (
        "test_rmse", "test_mae", "test_r2", "test_loss", "train_seconds", "epochs_run")
    assert set(vocab.FINAL_METRICS) == {"test_accuracy", "test_loss", "train_seconds",
                                        "epochs_run"}
    for task in tasks.TASKS:  # the per-epoch logger keeps every task's Keras metrics
        assert set(tasks.epoch_metrics(task)) <= set(vocab.EPOCH_METRICS)
    assert tasks.epoch_metrics("regression") == ("loss", "mae", "val_loss", "val_mae")


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown task 'ranking'.*multiclass, binary"):
        tasks.task_spec("ranking")


@pytest.mark.parametrize(("task", "loss", "output"), [
    ("regression", "categorical_crossentropy", "linear"),
    ("regression", "mse", "softmax"),
    ("regression", "hinge", "linear"),
    ("binary", "categorical_crossentropy", "sigmoid"),
    ("binary", "mse", "softmax"),
    ("multilabel", "sparse_categorical_crossentropy", "sigmoid"),
])
def test_errors(task, loss, output):
    assert names.check_head(task, loss, output).errors


@pytest.mark.parametrize(("task", "loss", "output", "word"), [
    ("multilabel", "binary_crossentropy", "softmax", "compete"),
    ("multilabel", "categorical_crossentropy", "softmax", "exactly one true label"),
    ("regression", "mse", "tanh", "[-1, 1]"),
    ("regression", "mae", "relu", "never negative"),
    ("multiclass", "categorical_crossentropy", "relu", "meant for softmax"),
])
def test_warnings(task, loss, output, word):
    check = names.check_head(task, loss, output)
    assert not check.errors
    assert any(word in w for w in check.warnings), check.warnings


@pytest.mark.parametrize(("task", "loss", "output"), [
    ("regression", "mse", "linear"), ("regression", "mae", "linear"),
    ("regression", "huber", "linear"), ("binary", "binary_crossentropy", "sigmoid"),
    ("binary", "hinge", "linear"), ("multilabel", "binary_crossentropy", "sigmoid"),
    ("multiclass", "categorical_crossentropy", "softmax"), ("multiclass", "mse", "softmax")])
def test_what_the_documents_recommend_is_accepted_silently(task, loss, output):
    assert names.check_head(task, loss, output) == names.HeadCheck([], [])


def test_rules_table_lists_errors_first():
    lines = names.rules_table("regression")
    assert lines[0].startswith("regression: error")
    assert any("warn output tanh" in line for line in lines)
    assert names.rules_table("multiclass") == []


@pytest.mark.parametrize(("activation", "encoding", "logits", "expected"), [
    ("sigmoid", "onehot", False, 0.5), ("tanh", "pm1", False, 0.0),
    ("linear", "pm1", False, 0.0), ("linear", "onehot", False, 0.5),
    ("sigmoid", "onehot", True, 0.0), ("my.module:act", "onehot", False, 0.5)])
def test_decision_threshold(activation, encoding, logits, expected):
    assert names.decision_threshold(activation, encoding, logits) == expected


def _manifest(task: str, input_kind: str = "vector") -> Manifest:
    return Manifest("d", "f", "parquet", "s", [4], 0, "float32", task=task,
                    input_kind=input_kind)


def _cfg(**overrides) -> RunConfig:
    return apply_overrides(RunConfig(), overrides)


def test_preflight_refuses_in_one_line_naming_the_configuration():
    with pytest.raises(ConfigError) as err:
        check_task("relu,xent", _cfg(), _manifest("regression"))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("relu,xent: loss categorical_crossentropy on a regression target")


def test_preflight_refuses_a_cnn_on_tabular_features():
    with pytest.raises(ConfigError, match="architecture cnn needs images"):
        check_task("c", _cfg(**{"model.architecture": "cnn", "loss": "mse",
                                "model.output_activation": "linear"}), _manifest("regression"))


def test_preflight_returns_warnings():
    cfg = _cfg(**{"loss": "binary_crossentropy", "model.output_activation": "softmax"})
    task_rule, pairing = check_task("p", cfg, _manifest("multilabel", "image"))
    assert "softmax on a multilabel target" in task_rule
    assert "meant for sigmoid outputs" in pairing


def test_early_stopping_monitor_follows_the_task():
    cfg = _cfg(**{"training.early_stopping.monitor": "val_mae"})
    check_training("p", cfg, "regression")
    with pytest.raises(ConfigError, match="loss, accuracy, val_loss, val_accuracy"):
        check_training("p", cfg, "multiclass")


def test_every_shipped_sweep_passes_the_preflight_check_of_its_dataset_task():
    """Each sweep against its own data config's task: no head the task refuses."""
    from pathlib import Path

    from pipeline.config import expand_grid, load_data_config, load_sweep_config

    root = Path(__file__).resolve().parents[2] / "conf"
    for path in sorted((root / "sweep").glob("*.yaml")):
        sweep = load_sweep_config(path)
        data = load_data_config(root / "data" / f"{sweep.dataset}.yaml")
        kind = "vector" if data.source.features else "image"
        for point in expand_grid(sweep):
            check_task(point.name, point.config, _manifest(data.task, kind))
            check_training(point.name, point.config, data.task)
