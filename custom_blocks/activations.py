"""A hidden activation of your own, used by a sweep without touching the project.

conf/sweep/custom_activation.yaml names it as ``custom_blocks.activations:scaled_tanh``: a
``package.module:attr`` name is imported inside the Horovod ranks (pipeline/registry.py), so
the module must be importable there (from a checkout: ``PYTHONPATH=$PWD``). Any function from
a tensor to a tensor of the same shape is a Keras activation; the models logged to MLflow carry
it as a custom object under its ``__name__``. A loss is named the same way and must be a Keras
loss: a function ``(y_true, y_pred) -> per-example loss`` or a ``tf.keras.losses.Loss``.

tests/unit/test_custom_activation.py loads that sweep file and trains a step with this function.
"""

from __future__ import annotations

import tensorflow as tf


def scaled_tanh(x: tf.Tensor) -> tf.Tensor:
    """LeCun's scaled tanh, 1.7159 * tanh(2x / 3) ("Efficient BackProp", 1998).

    Chosen so that f(1) = 1 and f(-1) = -1: its gain near zero is about 1.14 rather than tanh's
    1, and it saturates at +-1.7159, so unit-variance inputs keep roughly unit variance.
    """
    return 1.7159 * tf.math.tanh(x * (2.0 / 3.0))
