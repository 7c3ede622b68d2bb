"""Registries and the model builder: every registered name builds and trains a step."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import RunConfig, apply_overrides
from pipeline.errors import ConfigError
from pipeline.model import blocks
from pipeline.model.build import ARCHITECTURES, build, class_accuracy, encode_labels

SHAPE, CLASSES = (8, 8, 1), 3


def _one_step(cfg: RunConfig) -> float:
    built = build(cfg, SHAPE, CLASSES)
    opt = blocks.optimizer(cfg.optimizer, cfg.optimizer.learning_rate)
    built.train.compile(optimizer=opt, loss=built.loss, metrics=[class_accuracy])
    x = np.random.default_rng(0).random((6, *SHAPE), dtype=np.float32)
    y = encode_labels(np.array([0, 1, 2, 0, 1, 2]), CLASSES, built.label_encoding)
    history = built.train.fit(x, y, batch_size=6, epochs=1, verbose=0)
    probs = built.inference.predict(x, verbose=0)
    assert probs.shape == (6, CLASSES)
    return history.history["loss"][0]


def _cfg(**overrides) -> RunConfig:
    return apply_overrides(RunConfig(), {"model.hidden_layers": [4], **overrides})


@pytest.mark.parametrize("name", blocks.ACTIVATIONS.names())
def test_every_activation_trains_a_step(name):
    loss = _one_step(_cfg(**{"model.hidden_activation": name}))
    assert np.isfinite(loss)


@pytest.mark.parametrize("name", blocks.LOSSES.names())
def test_every_loss_trains_a_step(name):
    out = "softmax" if name not in ("hinge", "squared_hinge", "categorical_hinge") else "linear"
    out = "sigmoid" if name == "binary_crossentropy" else out
    loss = _one_step(_cfg(loss=name, **{"model.output_activation": out}))
    assert np.isfinite(loss)


@pytest.mark.parametrize("name", blocks.INITIALIZERS.names())
def test_every_initializer_trains_a_step(name):
    assert np.isfinite(_one_step(_cfg(**{"model.kernel_initializer": name})))


@pytest.mark.parametrize("name", blocks.OPTIMIZERS.names())
def test_every_optimizer_trains_a_step(name):
    assert np.isfinite(_one_step(_cfg(**{"optimizer.name": name})))


@pytest.mark.parametrize("name", ARCHITECTURES.names())
def test_every_architecture_trains_a_step(name):
    assert np.isfinite(_one_step(_cfg(**{"model.architecture": name})))


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown activation 'rellu' \(known: linear, relu"):
        blocks.activation("rellu")
    with pytest.raises(ConfigError, match="unknown loss 'xent'.*categorical_crossentropy"):
        blocks.LOSSES.get("xent")


def test_custom_activation_by_module_and_attribute():
    assert blocks.activation("tensorflow.nn:relu6") is tf.nn.relu6
    with pytest.raises(ConfigError, match="cannot be imported"):
        blocks.activation("no_such_module:thing")


def test_label_encodings():
    y = np.array([2, 0])
    np.testing.assert_array_equal(encode_labels(y, 3, "sparse"), [2, 0])
    np.testing.assert_array_equal(encode_labels(y, 3, "onehot"), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(encode_labels(y, 3, "pm1"), [[-1, -1, 1], [1, -1, -1]])


def test_softmax_cross_entropy_is_fused_into_logits():
    built = build(_cfg(), SHAPE, CLASSES)
    assert built.train.layers[-1].get_config()["activation"] == "linear"
    x = np.random.default_rng(1).random((4, *SHAPE), dtype=np.float32)
    y = encode_labels(np.array([0, 1, 2, 1]), CLASSES, "onehot")
    fused = built.loss(y, built.train(x))
    plain = tf.keras.losses.CategoricalCrossentropy()(y, built.inference(x))
    np.testing.assert_allclose(float(fused), float(plain), rtol=1e-5)
    np.testing.assert_allclose(built.inference(x).numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_odd_combination_runs_with_a_warning():
    built = build(_cfg(**{"model.output_activation": "relu"}), SHAPE, CLASSES)
    assert built.warnings and "categorical_crossentropy" in built.warnings[0]
    assert not build(_cfg(), SHAPE, CLASSES).warnings


def test_class_accuracy_for_every_encoding():
    logits = tf.constant([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0]])
    for enc in ("sparse", "onehot", "pm1"):
        y = encode_labels(np.array([1, 2]), 3, enc)
        np.testing.assert_array_equal(class_accuracy(y, logits), [1.0, 0.0])
