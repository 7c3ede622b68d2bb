"""Heads, target encodings, per-epoch metrics and the served model, by task."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import RunConfig, apply_overrides
from pipeline.errors import ConfigError
from pipeline.model import blocks
from pipeline.model.build import build_for, encode_targets, served_input
from pipeline.tasks import Problem

FEATURES = Problem("regression", (3,), 2, "vector", feature_mean=(1.0, -2.0, 10.0),
                   feature_std=(2.0, 0.5, 4.0), target_mean=(100.0, -5.0),
                   target_std=(20.0, 0.1))


def _cfg(loss: str, output: str, **overrides) -> RunConfig:
    return apply_overrides(RunConfig(), {"model.hidden_layers": [8], "loss": loss,
                                         "model.output_activation": output, **overrides})


@pytest.mark.parametrize(("problem", "loss", "output", "units"), [
    (Problem("binary", (6, 6, 1), 1), "binary_crossentropy", "sigmoid", 1),
    (Problem("multilabel", (6, 6, 1), 4), "binary_crossentropy", "sigmoid", 4),
    (FEATURES, "mse", "linear", 2),
    (Problem.classes((6, 6, 1), 3), "categorical_crossentropy", "softmax", 3)])
def test_head_has_one_unit_per_output(problem, loss, output, units):
    built = build_for(_cfg(loss, output), problem)
    x = np.zeros((5, *problem.input_shape), np.float32)
    assert built.train(x).shape == (5, units)
    assert built.inference(x).shape == (5, units)


def test_target_encodings():
    binary = Problem("binary", (2,), 1)
    np.testing.assert_array_equal(encode_targets(np.array([0, 1]), binary, "onehot"), [[0], [1]])
    np.testing.assert_array_equal(encode_targets(np.array([0, 1]), binary, "pm1"), [[-1], [1]])
    multi = Problem("multilabel", (2,), 3)
    y = np.array([[1, 0, 1]], np.float32)
    np.testing.assert_array_equal(encode_targets(y, multi, "onehot"), y)
    np.testing.assert_array_equal(encode_targets(y, multi, "pm1"), [[1, -1, 1]])
    standardized = np.array([[0.5, -1.0]], np.float32)
    np.testing.assert_array_equal(encode_targets(standardized, FEATURES, "onehot"), standardized)


def test_binary_accuracy_on_logits_and_on_margins():
    fused = build_for(_cfg("binary_crossentropy", "sigmoid"), Problem("binary", (2,), 1))
    assert fused.from_logits
    y, logits = tf.constant([[1.0], [0.0], [1.0]]), tf.constant([[0.3], [-2.0], [-0.1]])
    np.testing.assert_array_equal(fused.metric(y, logits), [1, 1, 0])
    margin = build_for(_cfg("hinge", "linear"), Problem("multilabel", (2,), 2))
    y_pm1 = tf.constant([[1.0, -1.0], [-1.0, -1.0]])
    np.testing.assert_allclose(margin.metric(y_pm1, tf.constant([[0.2, -0.4], [0.1, -3.0]])),
                               [1.0, 0.5])
    assert margin.metric.__name__ == fused.metric.__name__ == "accuracy"


def test_regression_mae_metric_is_in_original_units():
    built = build_for(_cfg("mse", "linear"), FEATURES)
    got = built.metric(tf.constant([[0.0, 0.0]]), tf.constant([[1.0, -2.0]]))
    np.testing.assert_allclose(got, [(1.0 * 20.0 + 2.0 * 0.1) / 2])
    assert built.metric.__name__ == "mae"


def test_served_model_takes_raw_features_and_returns_original_units(tmp_path):
    built = build_for(_cfg("mse", "linear"), FEATURES)
    stored = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    raw = served_input(stored, FEATURES)
    np.testing.assert_allclose(raw, stored * [2.0, 0.5, 4.0] + [1.0, -2.0, 10.0], rtol=1e-6)
    expected = built.train(stored).numpy() * [20.0, 0.1] + [100.0, -5.0]
    np.testing.assert_allclose(built.inference(raw).numpy(), expected, rtol=1e-4, atol=1e-4)
    path = tmp_path / "m.h5"  # the format MLflow logs it in (pipeline.tracking.models)
    built.inference.save(path, save_format="h5")
    loaded = tf.keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(loaded(raw).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_cnn_refuses_tabular_features():
    with pytest.raises(ConfigError, match="architecture cnn needs images"):
        build_for(_cfg("mse", "linear", **{"model.architecture": "cnn"}), FEATURES)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_regression_loss_goes_down(loss):
    """y = x w on 512 standardized rows: every regression loss learns it."""
    problem = Problem("regression", (3,), 1, "vector", (0.0,) * 3, (1.0,) * 3, (0.0,), (1.0,))
    cfg = _cfg(loss, "linear", **{"optimizer.learning_rate": 0.01})
    built = build_for(cfg, problem)
    built.train.compile(optimizer=blocks.optimizer(cfg.optimizer, 0.01), loss=built.loss,
                        metrics=[built.metric])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 3)).astype(np.float32)
    y = (x @ np.array([[0.5], [-1.0], [0.25]])).astype(np.float32)
    history = built.train.fit(x, y, batch_size=64, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["mae"][-1] < history["mae"][0]


def test_multilabel_loss_goes_down():
    problem = Problem("multilabel", (4,), 2, "vector", (0.0,) * 4, (1.0,) * 4)
    cfg = _cfg("binary_crossentropy", "sigmoid", **{"optimizer.learning_rate": 0.01})
    built = build_for(cfg, problem)
    built.train.compile(optimizer=blocks.optimizer(cfg.optimizer, 0.01), loss=built.loss,
                        metrics=[built.metric])
    rng = np.random.default_rng(2)
    x = rng.normal(size=(512, 4)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0], axis=1).astype(np.float32)
    history = built.train.fit(x, encode_targets(y, problem, built.label_encoding),
                              batch_size=64, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["accuracy"][-1] > 0.85


@pytest.mark.parametrize(("problem", "loss", "output"), [
    (Problem("binary", (6, 6, 1), 1), "binary_crossentropy", "sigmoid"),
    (Problem("multilabel", (6, 6, 1), 4), "hinge", "linear"),
    (FEATURES, "mse", "linear"),
    (Problem.classes((6, 6, 1), 3), "categorical_crossentropy", "softmax")])
def test_the_declared_signature_is_the_one_mlflow_infers_by_predicting(problem, loss, output):
    from mlflow.models import infer_signature

    from pipeline.tracking.models import declared_signature

    built = build_for(_cfg(loss, output), problem)
    stored = np.random.default_rng(0).integers(0, 255, (5, *problem.input_shape))
    example = served_input(stored.astype(np.uint8 if problem.input_kind == "image"
                                         else np.float32), problem)
    predicted = infer_signature(example, built.inference.predict(example, verbose=0))
    declared = declared_signature(built.inference, example)
    assert declared == predicted and declared.outputs.inputs[0].shape == (-1, problem.outputs)


def test_a_model_with_two_outputs_leaves_its_signature_to_mlflow():
    import tensorflow as tf

    from pipeline.tracking.models import declared_signature

    x = tf.keras.Input((4,))
    model = tf.keras.Model(x, [tf.keras.layers.Dense(2)(x), tf.keras.layers.Dense(3)(x)])
    assert declared_signature(model, np.zeros((2, 4), np.float32)) is None
