"""Exact test metrics over every rank's shards: per-rank sums are allreduced, not averages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data import feed
from pipeline.data.manifest import Manifest
from pipeline.train.rank import distributed
from pipeline.train.rank.data import RankData

if TYPE_CHECKING:
    import tensorflow as tf

    from pipeline.model.build import BuiltModel


@dataclass(frozen=True)
class TestResult:
    metrics: dict[str, float]
    confusion: np.ndarray  # [true class, predicted class] counts over the whole test split


def evaluate_test(built: BuiltModel, data: RankData, manifest: Manifest) -> TestResult:
    """Every rank calls this (a collective): loss sum, row count and confusion matrix."""
    from pipeline.model.build import encode_labels

    x, y = data.splits["test"]
    k = manifest.num_classes
    outputs = predict_eager(built.train, x)
    targets = encode_labels(y, k, built.label_encoding)
    loss_sum = float(np.sum(per_example_loss(built.loss, targets, outputs))) if len(y) else 0.0
    confusion = np.zeros((k, k), np.float64)
    np.add.at(confusion, (y, np.argmax(outputs, axis=-1)), 1.0)
    local = np.concatenate([[loss_sum, float(len(y))], confusion.ravel()])
    total = distributed.allreduce_sum(local, name="test_sums")  # [hvd] sum over ranks
    n = total[1]
    confusion = total[2:].reshape(k, k).astype(np.int64)
    return TestResult({"test_loss": total[0] / n,
                       "test_accuracy": float(np.trace(confusion)) / n}, confusion)


def predict_eager(model: tf.keras.Model, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The model's outputs for uint8 ``images``, computed eagerly chunk by chunk.

    ``predict()`` traces a new graph for every model, about a second per configuration
    here; a few eager calls on large chunks compute the same outputs in milliseconds.
    """
    parts = [model(feed.unit_scale(images[i:i + chunk]), training=False).numpy()
             for i in range(0, len(images), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, *model.output_shape[1:]), np.float32)


def per_example_loss(loss: tf.keras.losses.Loss, targets: tf.Tensor,
                     outputs: np.ndarray) -> np.ndarray:
    """The loss of every example, whatever reduction training used (mean or sum)."""
    import tensorflow as tf

    if isinstance(loss, tf.keras.losses.Loss):
        config = {**loss.get_config(), "reduction": tf.keras.losses.Reduction.NONE}
        loss = loss.__class__.from_config(config)
    return np.asarray(loss(targets, outputs))  # custom functions return per-example values
