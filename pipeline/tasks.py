"""Problem types (tasks): what each one trains, measures and serves. TensorFlow-free.

One table, read by the driver (checks, the metric names MLflow gets), the ranks (which test
metrics to compute, which Keras metric to log per epoch) and the report (the primary metric
and its direction, what the champion model returns). The pairing rules of output
activations and losses per task live beside the registries, in ``pipeline.model.names``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.errors import ConfigError

TaskName = Literal["multiclass", "binary", "multilabel", "regression"]
TASKS: tuple[str, ...] = ("multiclass", "binary", "multilabel", "regression")


@dataclass(frozen=True)
class TaskSpec:
    """What one task trains, measures and serves.

    ``final_metrics``: the test metrics every run of the task logs to MLflow (computed exactly
    over the whole test split, see ``pipeline.train.rank.metrics``), in display order.
    ``directions``: for each of them, whether higher is better.
    ``epoch_metric``: the Keras metric logged every epoch as ``<name>`` and ``val_<name>``.
    ``head``: how many output units the model gets. ``prediction``: what the served model
    (the MLflow pyfunc of the champion) returns for a batch of N inputs.
    """

    name: str
    primary_metric: str
    final_metrics: tuple[str, ...]
    directions: dict[str, bool]
    epoch_metric: str
    head: str
    prediction: str

    @property
    def higher_is_better(self) -> bool:
        """The direction of the primary metric."""
        return self.directions[self.primary_metric]


_HIGHER = {"test_accuracy": True, "test_auc": True, "test_micro_f1": True,
           "test_macro_f1": True, "test_subset_accuracy": True, "test_r2": True,
           "test_loss": False, "test_log_loss": False, "test_hamming_loss": False,
           "test_mae": False, "test_rmse": False}


def _spec(name: str, primary: str, metrics: tuple[str, ...], epoch_metric: str, head: str,
          prediction: str) -> TaskSpec:
    return TaskSpec(name, primary, metrics, {m: _HIGHER[m] for m in metrics}, epoch_metric,
                    head, prediction)


SPECS: dict[str, TaskSpec] = {
    "multiclass": _spec(
        "multiclass", "test_accuracy", ("test_accuracy", "test_loss"), "accuracy",
        "one unit per class",
        "float32 [N, classes]: the output activation's values per class (probabilities for "
        "softmax, raw scores for linear); the predicted class is the argmax"),
    # AUC ranks the binary champion: it does not depend on a decision threshold, which a
    # hinge or MSE head places differently from a sigmoid one.
    "binary": _spec(
        "binary", "test_auc", ("test_auc", "test_accuracy", "test_log_loss", "test_loss"),
        "accuracy", "one unit",
        "float32 [N, 1]: the score of the positive class (a probability for sigmoid; for "
        "tanh/linear heads a score whose decision threshold is 0, or 0.5 with 0/1 targets)"),
    "multilabel": _spec(
        "multilabel", "test_micro_f1",
        ("test_micro_f1", "test_macro_f1", "test_hamming_loss", "test_subset_accuracy",
         "test_loss"),
        "accuracy", "one unit per label",
        "float32 [N, labels]: one independent score per label, in the order of the manifest's "
        "target.names (probabilities for sigmoid, a label present above 0.5; the same "
        "thresholds as binary for tanh/linear heads)"),
    # RMSE ranks the regression champion, lower first; MAE and R² are logged beside it.
    "regression": _spec(
        "regression", "test_rmse", ("test_rmse", "test_mae", "test_r2", "test_loss"), "mae",
        "one unit per target column",
        "float32 [N, targets]: predictions in the targets' original units (the model undoes "
        "the standardization); tabular features are given raw, in their original units"),
}


def task_spec(task: str) -> TaskSpec:
    """The table row of ``task``; ConfigError listing the known tasks otherwise."""
    try:
        return SPECS[task]
    except KeyError:
        raise ConfigError(f"unknown task {task!r} (known: {', '.join(TASKS)})") from None


def primary_metric(task: str) -> tuple[str, bool]:
    """(metric name, higher_is_better) the report ranks a task's runs by."""
    spec = task_spec(task)
    return spec.primary_metric, spec.higher_is_better


def final_metrics(task: str) -> tuple[str, ...]:
    """The test metrics a run of ``task`` logs to MLflow."""
    return task_spec(task).final_metrics


def higher_is_better(task: str, metric: str) -> bool:
    """The direction of one of the task's final metrics."""
    spec = task_spec(task)
    if metric not in spec.directions:
        raise ConfigError(f"{metric!r} is not a metric of task {task} "
                          f"(known: {', '.join(spec.final_metrics)})")
    return spec.directions[metric]


_EPOCH_HIGHER = {"accuracy": True, "mae": False}


def validation_metric(task: str) -> tuple[str, bool]:
    """(per-epoch validation metric, higher_is_better): what successive halving compares
    cells by at a rung (the loss is not comparable across losses)."""
    m = task_spec(task).epoch_metric
    return f"val_{m}", _EPOCH_HIGHER[m]


def epoch_metrics(task: str) -> tuple[str, ...]:
    """The per-epoch Keras log keys of ``task``: loss, its metric, and their val_ twins."""
    m = task_spec(task).epoch_metric
    return ("loss", m, "val_loss", f"val_{m}")


@dataclass(frozen=True)
class Problem:
    """What the model builder needs to know of a prepared dataset, as plain values.

    ``input_kind``: "image" (float32 pixels in [0, 1]) or "vector" (tabular features, which
    training sees standardized and the served model takes raw: it standardizes them with
    ``feature_mean``/``feature_std``). Regression targets are trained standardized; the served
    model returns ``prediction * target_std + target_mean``.
    """

    task: str
    input_shape: tuple[int, ...]
    outputs: int
    input_kind: str = "image"
    feature_mean: tuple[float, ...] | None = None
    feature_std: tuple[float, ...] | None = None
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None

    @classmethod
    def classes(cls, input_shape: tuple[int, ...], num_classes: int) -> Problem:
        """Multi-class images: what the pipeline trained before there were tasks."""
        return cls("multiclass", tuple(input_shape), num_classes)
