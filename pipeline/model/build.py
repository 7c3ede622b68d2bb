"""Architectures and the model builder.

The training model ends in logits when the loss applies the output activation itself
(softmax + cross-entropy, sigmoid + binary cross-entropy); the inference model, which
is what MLflow stores, always ends in the configured output activation. For tabular data
the inference model also takes raw features (it standardizes them as prepare did), and for
regression it returns the targets' original units (it undoes their standardization).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from pipeline.config import ModelConfig, RunConfig
from pipeline.errors import ConfigError
from pipeline.model import blocks, names
from pipeline.registry import Registry
from pipeline.tasks import Problem

keras = tf.keras


@dataclass
class BuiltModel:
    train: keras.Model        # what fit() optimizes
    inference: keras.Model    # what is evaluated, logged and served
    loss: keras.losses.Loss
    label_encoding: str
    warnings: list[str]
    # Custom ("module:attr") activations by the name Keras saves them under, for loading.
    custom_objects: dict[str, Callable] = field(default_factory=dict)
    problem: Problem | None = None
    metric: Callable | None = None  # the task's per-epoch Keras metric (pipeline.tasks)
    from_logits: bool = False
    output_activation: str = "softmax"


class _Layers:
    """Dense/conv layer factory with the configuration's activation and initializers."""

    def __init__(self, cfg: ModelConfig, seed: int) -> None:
        self.cfg = cfg
        self._seed = seed

    def _init(self, name: str) -> keras.initializers.Initializer:
        self._seed += 1  # a distinct but reproducible stream per layer
        return blocks.initializer(name, self._seed)

    def dense(self, units: int, activation: str) -> keras.layers.Layer:
        return keras.layers.Dense(units, activation=blocks.activation(activation),
                                  kernel_initializer=self._init(self.cfg.kernel_initializer),
                                  bias_initializer=self._init(self.cfg.bias_initializer))

    def conv(self, filters: int) -> keras.layers.Layer:
        return keras.layers.Conv2D(filters, 3, padding="same",
                                   activation=blocks.activation(self.cfg.hidden_activation),
                                   kernel_initializer=self._init(self.cfg.kernel_initializer),
                                   bias_initializer=self._init(self.cfg.bias_initializer))


# name -> body(inputs, layers) returning the last hidden tensor (before the output layer)
ARCHITECTURES: Registry[Callable[[tf.Tensor, _Layers], tf.Tensor]] = Registry("architecture")


@ARCHITECTURES("logreg")
def _logreg(x: tf.Tensor, layers: _Layers) -> tf.Tensor:
    return keras.layers.Flatten()(x)


@ARCHITECTURES("mlp")
def _mlp(x: tf.Tensor, layers: _Layers) -> tf.Tensor:
    x = keras.layers.Flatten()(x)
    for units in layers.cfg.hidden_layers:
        x = layers.dense(units, layers.cfg.hidden_activation)(x)
        if layers.cfg.dropout > 0:
            x = keras.layers.Dropout(layers.cfg.dropout)(x)
    return x


@ARCHITECTURES("cnn")
def _cnn(x: tf.Tensor, layers: _Layers) -> tf.Tensor:
    for filters in (32, 64):
        x = layers.conv(filters)(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    if layers.cfg.dropout > 0:
        x = keras.layers.Dropout(layers.cfg.dropout)(x)
    for units in layers.cfg.hidden_layers:
        x = layers.dense(units, layers.cfg.hidden_activation)(x)
    return x


def build(cfg: RunConfig, input_shape: Sequence[int], num_classes: int) -> BuiltModel:
    """Build the train and inference models of a multi-class image configuration."""
    return build_for(cfg, Problem.classes(tuple(input_shape), num_classes))


def build_for(cfg: RunConfig, problem: Problem) -> BuiltModel:
    """Build the train and inference models for one configuration on ``problem``'s data."""
    m = cfg.model
    if m.architecture == "cnn" and problem.input_kind != "image":
        raise ConfigError("architecture cnn needs images; this dataset has tabular features "
                          "(use mlp or logreg)")
    loss, from_logits = blocks.build_loss(cfg.loss, m.output_activation,
                                          cfg.training.loss_reduction)
    encoding = names.label_encoding(cfg.loss)
    layers = _Layers(m, cfg.training.seed * 1000)
    name = "image" if problem.input_kind == "image" else "features"
    inputs = keras.Input(shape=tuple(problem.input_shape), name=name)
    hidden = ARCHITECTURES.get(m.architecture)(inputs, layers)
    head = layers.dense(problem.outputs, "linear" if from_logits else m.output_activation)(hidden)
    train = keras.Model(inputs, head, name=f"{m.architecture}_train")
    activated = keras.layers.Activation(m.output_activation) if from_logits else None
    if problem.input_kind == "image" and problem.task != "regression":
        inference = keras.Model(inputs, activated(head) if activated else head,
                                name=m.architecture)
    else:
        inference = _served(train, problem, activated, name, m.architecture)
    custom = {fn.__name__: fn for name in (m.hidden_activation, m.output_activation)
              if callable(fn := blocks.activation(name))}
    check = names.check_head(problem.task, cfg.loss, m.output_activation)
    metric = epoch_metric(problem, names.decision_threshold(m.output_activation, encoding,
                                                            from_logits), encoding)
    return BuiltModel(train, inference, loss, encoding, check.warnings, custom, problem,
                      metric, from_logits, m.output_activation)


def _served(train: keras.Model, problem: Problem, activated: keras.layers.Layer | None,
            input_name: str, name: str) -> keras.Model:
    """The training network between the data's own units: raw features in, original target
    units out (the standardization prepare applied, undone by fixed layers)."""
    raw = keras.Input(shape=tuple(problem.input_shape), name=input_name)
    x = raw
    if problem.feature_mean is not None:
        x = keras.layers.Normalization(mean=list(problem.feature_mean),
                                       variance=[s * s for s in problem.feature_std])(x)
    y = train(x)
    if activated is not None:
        y = activated(y)
    if problem.task == "regression" and problem.target_mean is not None:
        y = keras.layers.Rescaling(scale=list(problem.target_std),
                                   offset=list(problem.target_mean))(y)
    return keras.Model(raw, y, name=name)


def served_input(x: np.ndarray, problem: Problem) -> np.ndarray:
    """Stored inputs as the inference model takes them: images in [0, 1], raw features."""
    if problem.input_kind == "image":
        return x.astype(np.float32) / 255.0
    return (x * np.asarray(problem.feature_std, np.float32)
            + np.asarray(problem.feature_mean, np.float32)).astype(np.float32)


# ---------------------------------------------------------------------------
# Labels and metrics


def encode_labels(labels: np.ndarray | tf.Tensor, num_classes: int, encoding: str) -> tf.Tensor:
    """Integer labels in the form the loss expects: integers, one-hot, or +-1 per class."""
    labels = tf.cast(labels, tf.int32)
    if encoding == "sparse":
        return labels
    onehot = tf.one_hot(labels, num_classes, dtype=tf.float32)
    return onehot * 2.0 - 1.0 if encoding == "pm1" else onehot


def class_accuracy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Accuracy of argmax(y_pred) for any label encoding; argmax is the same on logits."""
    if y_true.shape.rank == 1 or y_true.shape[-1] == 1:
        true = tf.cast(tf.reshape(y_true, [-1]), tf.int64)
    else:
        true = tf.argmax(y_true, axis=-1)
    return tf.cast(tf.equal(tf.argmax(y_pred, axis=-1), true), tf.float32)


class_accuracy.__name__ = "accuracy"


def encode_targets(y: np.ndarray | tf.Tensor, problem: Problem, encoding: str) -> tf.Tensor:
    """Stored targets in the form the loss expects: class labels as ``encode_labels``; binary
    and multi-label 0/1 targets as floats (or +-1 for margin losses); regression as stored."""
    if problem.task == "multiclass":
        return encode_labels(y, problem.outputs, encoding)
    y = tf.cast(y, tf.float32)
    if problem.task == "binary":
        y = tf.reshape(y, [-1, 1])
    if problem.task != "regression" and encoding == "pm1":
        return y * 2.0 - 1.0
    return y


def epoch_metric(problem: Problem, threshold: float, encoding: str) -> Callable:
    """The task's per-epoch Keras metric: accuracy for classification (thresholded per label
    for binary and multi-label), mean absolute error in original units for regression."""
    if problem.task == "multiclass":
        return class_accuracy
    if problem.task == "regression":
        std = tf.constant(problem.target_std or (1.0,) * problem.outputs, tf.float32)

        def mae(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(tf.abs(y_true - y_pred) * std, axis=-1)
        return mae
    truth = 0.0 if encoding == "pm1" else 0.5

    def accuracy(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        hit = tf.equal(y_pred > threshold, y_true > truth)
        return tf.reduce_mean(tf.cast(hit, tf.float32), axis=-1)
    return accuracy
