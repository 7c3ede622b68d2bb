"""Diagnostics on tiny hand-set models whose saturation, dead units and gradients are known."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import ModelConfig, RunConfig, TrainingConfig
from pipeline.model.build import build, encode_labels
from pipeline.train.rank.diagnostics import (
    TRACE_AFTER,
    DiagnosticsCallback,
    Measurer,
    Probe,
    UpdateTracker,
    measure,
    probe_indices,
)

keras = tf.keras
STATS = {"pre_mean", "pre_std", "act_mean", "act_std", "grad_norm"}


def _x(rows: int = 32, shape: tuple[int, ...] = (4,), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, *shape), dtype=np.float32)


def _onehot(labels: list[int] | np.ndarray, classes: int = 3) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[np.asarray(labels)]


def _hand_model(hidden: str, kernel: float | np.ndarray, bias: float | np.ndarray,
                out: str = "softmax") -> keras.Model:
    """4 inputs -> 8 ``hidden`` units with the given weights -> 3 ``out`` units."""
    inputs = keras.Input((4,))
    h = keras.layers.Dense(8, activation=hidden)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation=out)(h))
    layer = model.layers[1]
    layer.set_weights([np.broadcast_to(kernel, (4, 8)).astype(np.float32),
                       np.broadcast_to(bias, (8,)).astype(np.float32)])
    return model


def _measure_hidden(hidden: str, kernel, bias) -> dict[str, float]:
    model = _hand_model(hidden, kernel, bias)
    probe = Probe(_x(), _onehot(np.arange(32) % 3))
    return measure(model, keras.losses.MeanSquaredError(), probe, "softmax", hidden)


def _cfg(architecture: str = "mlp", loss: str = "categorical_crossentropy",
         **model) -> RunConfig:
    return RunConfig(model=ModelConfig(architecture=architecture, **model), loss=loss)


def _built_probe(cfg: RunConfig, shape=(4,), rows: int = 16):
    built = build(cfg, shape, 3)
    y = encode_labels(np.arange(rows) % 3, 3, built.label_encoding)
    return built, Probe(_x(rows, shape), y.numpy())


def test_saturated_sigmoids_report_sat_one_and_small_weights_zero():
    signs = np.where(np.arange(8) % 2 == 0, 40.0, -40.0)  # half pinned at 1, half at 0
    saturated = _measure_hidden("sigmoid", 0.0, signs)
    assert saturated["diag.h1.sat"] == pytest.approx(1.0)
    calm = _measure_hidden("sigmoid", 0.01, 0.0)
    assert calm["diag.h1.sat"] == pytest.approx(0.0)
    assert "diag.h1.dead" not in calm  # sigmoid has no dead region


def test_relu_with_large_negative_bias_is_dead():
    kernel = np.random.default_rng(1).normal(0, 0.1, (4, 8))
    assert _measure_hidden("relu", kernel, -100.0)["diag.h1.dead"] == pytest.approx(1.0)
    alive = _measure_hidden("relu", kernel, 100.0)
    assert alive["diag.h1.dead"] == pytest.approx(0.0)
    assert "diag.h1.sat" not in alive  # ReLU is unbounded
    # Half the units pinned off; units off on only some examples are not dead.
    half = _measure_hidden("relu", kernel, np.where(np.arange(8) < 4, -100.0, 100.0))
    assert half["diag.h1.dead"] == pytest.approx(0.5)
    on_feature0 = np.zeros((4, 8))
    on_feature0[0] = 1.0  # x0 is uniform on [0, 1): off on about half the examples
    assert _measure_hidden("relu", on_feature0, -0.5)["diag.h1.dead"] == 0.0


def _confidently_wrong(loss: str) -> dict[str, float]:
    """Logistic regression sure of class 0 (logit 10) on examples of class 1."""
    built, _ = _built_probe(_cfg("logreg", loss))
    head = built.train.layers[-1]
    head.set_weights([np.zeros((4, 3), np.float32), np.array([10.0, 0.0, 0.0], np.float32)])
    y = encode_labels(np.ones(16, np.int32), 3, built.label_encoding).numpy()
    return measure(built.train, built.loss, Probe(_x(16), y), "softmax", "relu")


def test_mse_and_mae_through_softmax_have_small_gradients_when_confidently_wrong():
    ce = _confidently_wrong("categorical_crossentropy")
    # Cross-entropy from logits: p - y ~ (1, -1, 0), norm sqrt(2).
    assert ce["diag.out.grad_logits"] == pytest.approx(np.sqrt(2), rel=1e-3)
    # Saturation and act_mean are those of the softmax, not of the raw logits.
    assert ce["diag.out.sat"] == pytest.approx(1.0)
    assert ce["diag.out.act_mean"] == pytest.approx(1 / 3, rel=1e-5)
    for loss in ("mse", "mae"):
        other = _confidently_wrong(loss)
        assert other["diag.out.grad_logits"] < 0.01 * ce["diag.out.grad_logits"], loss
        assert other["diag.out.sat"] == pytest.approx(1.0)


def test_grad_norm_matches_keras_and_ignores_reduction_and_batch_size():
    cfg = _cfg(hidden_layers=(6,), hidden_activation="tanh")
    built, probe = _built_probe(cfg)
    with tf.GradientTape() as tape:
        value = built.loss(probe.y, built.train(probe.x, training=False))
    expected = float(tf.norm(tape.gradient(value, built.train.layers[-1].kernel)))
    got = measure(built.train, built.loss, probe, "softmax", "tanh")
    assert got["diag.out.grad_norm"] == pytest.approx(expected, rel=1e-5)
    summed = build(RunConfig(cfg.model, cfg.loss, training=TrainingConfig(loss_reduction="sum")),
                   (4,), 3)
    summed.train.set_weights(built.train.get_weights())
    doubled = Probe(np.concatenate([probe.x] * 2), np.concatenate([probe.y] * 2))
    again = measure(summed.train, summed.loss, doubled, "softmax", "tanh")
    for key in ("diag.out.grad_norm", "diag.h1.grad_norm", "diag.out.grad_logits"):
        assert again[key] == pytest.approx(got[key], rel=1e-5), key


@pytest.mark.parametrize("architecture, layer, name", [("mlp", 2, "h1"), ("cnn", 1, "c1")])
def test_replayed_activations_match_the_keras_layer(architecture, layer, name):
    cfg = _cfg(architecture, hidden_layers=(5,), hidden_activation="elu",
               bias_initializer="random_normal")
    built, probe = _built_probe(cfg, (6, 6, 1))
    seen = keras.Model(built.train.inputs, built.train.layers[layer].output)(probe.x)
    got = measure(built.train, built.loss, probe, "softmax", "elu")
    assert got[f"diag.{name}.act_mean"] == pytest.approx(float(tf.reduce_mean(seen)), rel=1e-5)
    assert got[f"diag.{name}.act_std"] == pytest.approx(float(tf.math.reduce_std(seen)), rel=1e-5)


def test_diagnostics_are_deterministic_across_builds_and_calls():
    """Each rank measures the same probe on the same weights: two independent builds from
    the same seed stand for two ranks, and must agree exactly."""
    cfg = _cfg(hidden_layers=(8,), hidden_activation="sigmoid", loss="mse")
    results = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        built, probe = _built_probe(cfg)
        measurer = Measurer(built.train, built.loss, "softmax", "sigmoid")
        results += [measurer(probe), measurer(probe)]
    assert all(r == results[0] for r in results[1:])
    assert np.array_equal(probe_indices(1000, 256, 7), probe_indices(1000, 256, 7))
    rows = probe_indices(1000, 256, 7)
    assert len(np.unique(rows)) == 256 and np.all(np.diff(rows) > 0)
    assert len(probe_indices(10, 256, 7)) == 10


def test_architectures_produce_the_documented_keys():
    built, probe = _built_probe(_cfg("logreg"))
    keys = set(measure(built.train, built.loss, probe, "softmax", "relu"))
    assert keys == {f"diag.out.{s}" for s in {*STATS, "sat"}} | {"diag.out.grad_logits"}

    cfg = _cfg("cnn", hidden_layers=(8,), hidden_activation="relu", dropout=0.5)
    built, probe = _built_probe(cfg, (8, 8, 1))
    keys = set(measure(built.train, built.loss, probe, "softmax", "relu"))
    hidden = {f"diag.{n}.{s}" for n in ("c1", "c2", "h1") for s in {*STATS, "dead"}}
    assert keys == hidden | {f"diag.out.{s}" for s in {*STATS, "sat"}} | {"diag.out.grad_logits"}


def test_update_tracker_ratio_and_zero_start():
    model = _hand_model("relu", 0.0, 0.0)
    tracker = UpdateTracker(model)
    assert tracker.ratios() == {}
    tracker.snapshot()
    assert tracker.ratios()["diag.h1.update_ratio"] == 0.0
    model.layers[1].kernel.assign(tf.ones((4, 8)))
    moved = tracker.ratios()["diag.h1.update_ratio"]
    assert np.isfinite(moved) and moved == pytest.approx(np.sqrt(32) / 1e-12)
    tracker.snapshot()
    model.layers[1].kernel.assign(tf.ones((4, 8)) * 1.5)
    assert tracker.ratios()["diag.h1.update_ratio"] == pytest.approx(0.5)


@pytest.mark.parametrize("initial_epoch", [0, 2])
def test_callback_reports_initialization_and_every_epoch(initial_epoch):
    cfg = _cfg(hidden_layers=(8,), hidden_activation="sigmoid", loss="mse")
    built, probe = _built_probe(cfg)
    built.train.compile(optimizer=keras.optimizers.legacy.SGD(0.5), loss=built.loss)
    calls: list[tuple[int, dict[str, float]]] = []
    callback = DiagnosticsCallback(probe, built.loss, "softmax", "sigmoid",
                                   lambda step, metrics: calls.append((step, metrics)),
                                   initial_epoch=initial_epoch)
    x, y = _x(64, seed=5), _onehot(np.arange(64) % 3)
    built.train.fit(x, y, batch_size=16, epochs=initial_epoch + 3, verbose=0,
                    initial_epoch=initial_epoch, callbacks=[callback])
    assert [step for step, _ in calls] == [initial_epoch + e for e in range(4)]
    first = set(calls[0][1])
    assert "diag.seconds" in first and "diag.h1.sat" in first
    ratios = {"diag.h1.update_ratio", "diag.out.update_ratio"}
    assert not first & ratios
    for _, metrics in calls[1:]:
        assert set(metrics) == first | ratios
        assert all(metrics[k] > 0 for k in ratios)
    # Measured on the weights of the moment: the gradient changes as training goes on.
    assert calls[0][1]["diag.out.grad_norm"] != calls[-1][1]["diag.out.grad_norm"]


@pytest.mark.parametrize(("epochs", "initial_epoch", "traced"),
                         [(3, 0, False), (TRACE_AFTER - 1, 0, False), (TRACE_AFTER, 0, True),
                          (TRACE_AFTER + 2, 5, False)])
def test_short_runs_measure_eagerly_and_long_ones_trace_once(epochs, initial_epoch, traced):
    # A run makes 1 + (epochs - initial_epoch) measurements; tracing pays only beyond
    # TRACE_AFTER of them (bench/diagnostics_modes.py). Both give the same numbers.
    cfg = _cfg(hidden_layers=(8,), hidden_activation="tanh")
    built, probe = _built_probe(cfg)
    callback = DiagnosticsCallback(probe, built.loss, "softmax", "tanh", lambda *a: None,
                                   initial_epoch=initial_epoch)
    callback.set_model(built.train)
    callback.set_params({"epochs": epochs, "verbose": 0, "steps": 1})
    callback.on_train_begin()
    measurer = callback._measurer
    assert isinstance(measurer._run, tf.types.experimental.GenericFunction) == traced
    other = Measurer(built.train, built.loss, "softmax", "tanh", compiled=not traced)
    got, want = measurer(probe), other(probe)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)
