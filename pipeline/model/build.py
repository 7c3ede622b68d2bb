"""Architectures and the model builder.

The training model ends in logits when the loss applies the output activation itself
(softmax + cross-entropy, sigmoid + binary cross-entropy); the inference model, which
is what MLflow stores, always ends in the configured output activation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from pipeline.config import ModelConfig, RunConfig
from pipeline.model import blocks, names
from pipeline.registry import Registry

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
    """Build the train and inference models for one configuration."""
    m = cfg.model
    loss, from_logits = blocks.build_loss(cfg.loss, m.output_activation,
                                          cfg.training.loss_reduction)
    encoding = names.label_encoding(cfg.loss)
    layers = _Layers(m, cfg.training.seed * 1000)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    hidden = ARCHITECTURES.get(m.architecture)(inputs, layers)
    head = layers.dense(num_classes, "linear" if from_logits else m.output_activation)(hidden)
    train = keras.Model(inputs, head, name=f"{m.architecture}_train")
    outputs = keras.layers.Activation(m.output_activation)(head) if from_logits else head
    inference = keras.Model(inputs, outputs, name=m.architecture)
    custom = {fn.__name__: fn for name in (m.hidden_activation, m.output_activation)
              if callable(fn := blocks.activation(name))}
    return BuiltModel(train, inference, loss, encoding,
                      names.loss_warnings(cfg.loss, m.output_activation), custom)


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
