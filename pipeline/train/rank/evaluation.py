"""Exact test metrics over every rank's shards: per-rank sums are allreduced, not averages
(the metrics by task are in ``pipeline.train.rank.metrics``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data import feed
from pipeline.data.manifest import Manifest
from pipeline.train.rank import distributed, metrics
from pipeline.train.rank.data import RankData

if TYPE_CHECKING:
    import tensorflow as tf

    from pipeline.model.build import BuiltModel


@dataclass(frozen=True)
class TestResult:
    metrics: dict[str, float]
    # [true class, predicted class] counts over the whole test split (multiclass, binary)
    confusion: np.ndarray | None


def evaluate_test(built: BuiltModel, data: RankData, manifest: Manifest) -> TestResult:
    """Every rank calls this (a collective): the task's sums, allreduced, and for binary
    tasks every rank's (score, label) pairs, allgathered for the exact AUC."""
    from pipeline.model.build import encode_targets, served_input

    x, y = data.splits["test"]
    problem = built.problem or manifest.problem()
    outputs = predict_eager(built.train, x)
    targets = encode_targets(y, problem, built.label_encoding)
    loss_sum = float(np.sum(per_example_loss(built.loss, targets, outputs))) if len(y) else 0.0
    s = metrics.scoring(problem, built.output_activation, built.label_encoding)
    # Multi-class needs only the argmax, the same on logits; other tasks are scored on what
    # the served model returns (probabilities, original units).
    served = outputs if s.task == "multiclass" else predict_eager(built.inference,
                                                                  served_input(x, problem))
    local = metrics.local_sums(s, y, served, loss_sum)
    total = distributed.allreduce_sum(local, name="test_sums")  # [hvd] sum over ranks
    pairs = metrics.local_pairs(s, y, served)
    if s.task == "binary":  # the same task on every rank: all enter the collective or none
        pairs = distributed.allgather(pairs, name="test_pairs")  # [hvd] every rank's rows
    scores, confusion = metrics.finish(s, total, pairs)
    return TestResult(scores, confusion)


def predict_eager(model: tf.keras.Model, images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The model's outputs for ``images`` (uint8 scaled to [0, 1]; float inputs as they
    are), computed eagerly chunk by chunk.

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
