"""Measured training diagnostics: why an activation/loss/initializer pairing trains or not.

Every measurement runs one forward and one backward pass over a small fixed *probe* batch
(the same rows on every rank, see ``probe_indices``) and yields MLflow metrics under the
prefix ``diag.``, logged at step = epochs completed (0 = initialization):

``diag.<layer>.<stat>``, ``<layer>`` being ``c1``, ``c2``, ... for Conv2D layers and ``h1``,
``h2``, ... for hidden Dense layers, each in model order, and ``out`` for the output layer:

- ``sat``: fraction of units x examples (x positions) whose output lies within
  ``saturation x (hi - lo)`` of a bound (``names.ACTIVATIONS``); bounded activations only.
- ``dead``: fraction of units (channels) at or below ``dead_below`` on every probe example
  (and position); ReLU-like activations only.
- ``pre_mean``, ``pre_std``: the pre-activation (kernel and bias applied, activation not).
- ``act_mean``, ``act_std``: the activation. For ``out`` this is always the configured
  output activation, also when the training model emits logits for a fused loss.
- ``grad_norm``: L2 norm of d(mean probe loss)/d(kernel).
- ``update_ratio``: ||W_end - W_start|| / max(||W_start||, 1e-12) for the kernel over the
  epoch just finished (absent at the first step). A kernel that starts at exactly zero
  gives a huge but finite ratio, which is the honest answer: it has moved off zero.

``diag.out.grad_logits``: mean over probe examples of ||d loss_i / d logits_i||, per example
so it does not depend on the batch size: ||p - y|| for cross-entropy, far smaller for
MSE/MAE through a saturated softmax when confidently wrong.
``diag.seconds``: wall time of the measurement (the first includes tracing).

Gradients are those of the deterministic network (``training=False``: no dropout).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from pipeline.model import blocks, names

keras = tf.keras
PREFIX = "diag."


@dataclass(frozen=True)
class Probe:
    """A fixed batch: ``x`` scaled as the model expects, ``y`` encoded as the loss expects."""

    x: np.ndarray | tf.Tensor
    y: np.ndarray | tf.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"probe x has {len(self.x)} rows, y has {len(self.y)}")


def probe_indices(n_rows: int, size: int, seed: int) -> np.ndarray:
    """Sorted row indices of a reproducible probe: the same on every rank for the same seed."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=min(size, n_rows), replace=False))


def named_layers(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """The Dense/Conv2D layers with their metric names; the last one must be the output."""
    found = [lay for lay in model.layers
             if isinstance(lay, keras.layers.Dense | keras.layers.Conv2D)]
    if not found or found[-1].output is not model.outputs[0]:
        raise ValueError(f"{model.name}: diagnostics need a model ending in its Dense layer")
    counts = {"c": 0, "h": 0}
    out = []
    for lay in found[:-1]:
        kind = "c" if isinstance(lay, keras.layers.Conv2D) else "h"
        counts[kind] += 1
        out.append((f"{kind}{counts[kind]}", lay))
    return [*out, ("out", found[-1])]


def _pre_activation(layer: keras.layers.Layer, x: tf.Tensor) -> tf.Tensor:
    """The layer's kernel and bias applied to its input, as Keras 2 does before activating."""
    if isinstance(layer, keras.layers.Conv2D):
        z = layer.convolution_op(x, layer.kernel)
        fmt = "NHWC" if layer.data_format == "channels_last" else "NCHW"
        return tf.nn.bias_add(z, layer.bias, data_format=fmt) if layer.use_bias else z
    z = tf.tensordot(x, layer.kernel, [[x.shape.rank - 1], [0]])
    return z + layer.bias if layer.use_bias else z


def _per_example(loss: Callable, y: tf.Tensor, out: tf.Tensor) -> tf.Tensor:
    """Unreduced loss, one value per example, whatever reduction the loss object has."""
    values = loss.call(y, out) if isinstance(loss, keras.losses.Loss) else loss(y, out)
    # Keras reduces over every element, so a per-element loss averages within each example.
    return tf.reduce_mean(tf.reshape(values, [tf.shape(out)[0], -1]), axis=1)


def _unit_stats(info: names.ActivationInfo, pre: tf.Tensor, act: tf.Tensor) -> dict:
    stats = {"pre_mean": tf.reduce_mean(pre), "pre_std": tf.math.reduce_std(pre),
             "act_mean": tf.reduce_mean(act), "act_std": tf.math.reduce_std(act)}
    if info.bounds is not None:
        lo, hi = info.bounds
        margin = info.saturation * (hi - lo)
        near = tf.logical_or(act <= lo + margin, act >= hi - margin)
        stats["sat"] = tf.reduce_mean(tf.cast(near, tf.float32))
    if info.dead_below is not None:
        # A unit (channel) is dead when it is off on every example and every position.
        axes = list(range(act.shape.rank - 1))
        off = tf.reduce_all(act <= info.dead_below, axis=axes)
        stats["dead"] = tf.reduce_mean(tf.cast(off, tf.float32))
    return stats


class Measurer:
    """Diagnostics of one model on probe batches; build once, call once per epoch.

    Pre-activations are not tensors of a Keras 2 graph (Dense applies its activation inside
    ``call``), so a sub-model returns each Dense/Conv2D layer's *input*, and the layer's
    kernel/bias math is replayed on it. The loss is computed from the replayed output layer,
    whose input comes from the real forward pass, so every kernel gradient flows through the
    model's own computation; the replayed hidden layers only feed statistics. No weights or
    layers are modified, so this is safe to run between ``fit`` epochs.
    """

    def __init__(self, model: keras.Model, loss: Callable, output_activation: str,
                 hidden_activation: str, compiled: bool = True) -> None:
        self.layers = named_layers(model)
        self._inputs = keras.Model(model.inputs, [lay.input for _, lay in self.layers])
        self._loss = loss
        # The training model ends in logits when the loss applies the output activation.
        config = loss.get_config() if isinstance(loss, keras.losses.Loss) else {}
        self._logits = bool(config.get("from_logits", False))
        self._out_fn = keras.activations.get(blocks.activation(output_activation))
        self._info = {n: names.activation_info(hidden_activation) for n, _ in self.layers}
        self._info["out"] = names.activation_info(output_activation)
        self._run = tf.function(self._compute) if compiled else self._compute

    def __call__(self, probe: Probe) -> dict[str, float]:
        x = tf.convert_to_tensor(probe.x, tf.float32)
        values = self._run(x, tf.convert_to_tensor(probe.y))
        return {key: float(value) for key, value in values.items()}

    def _compute(self, x: tf.Tensor, y: tf.Tensor) -> dict[str, tf.Tensor]:
        kernels = [lay.kernel for _, lay in self.layers]
        with tf.GradientTape() as tape:
            inputs = self._inputs(x, training=False)
            inputs = inputs if isinstance(inputs, list | tuple) else [inputs]
            pres = [_pre_activation(lay, inp) for (_, lay), inp in zip(self.layers, inputs,
                                                                        strict=True)]
            head = self.layers[-1][1].activation(pres[-1])
            per_example = _per_example(self._loss, y, head)
            # Always the batch mean: a SUM-reduced loss divided by the batch size, so that
            # gradient norms compare across configurations and probe sizes.
            batch_loss = tf.reduce_mean(per_example)
        grads = tape.gradient(batch_loss, [*kernels, pres[-1]],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        out: dict[str, tf.Tensor] = {}
        for (name, lay), pre, grad in zip(self.layers, pres, grads[:-1], strict=True):
            act = lay.activation(pre)
            if name == "out" and self._logits:
                act = self._out_fn(pre)
            stats = {**_unit_stats(self._info[name], pre, act), "grad_norm": tf.norm(grad)}
            out.update({f"{PREFIX}{name}.{k}": v for k, v in stats.items()})
        # d(mean)/d(logits) row i is (1/B) d loss_i / d logits_i: undo the 1/B per example.
        logit_grads = grads[-1] * tf.cast(tf.shape(x)[0], grads[-1].dtype)
        logit_grads = tf.reshape(logit_grads, [tf.shape(x)[0], -1])
        out[f"{PREFIX}out.grad_logits"] = tf.reduce_mean(tf.norm(logit_grads, axis=1))
        return out


def measure(model: keras.Model, loss: keras.losses.Loss, probe: Probe,
            output_activation: str, hidden_activation: str) -> dict[str, float]:
    """One-off diagnostics (eager: no tracing cost); see the module docstring for keys."""
    return Measurer(model, loss, output_activation, hidden_activation, compiled=False)(probe)


class UpdateTracker:
    """Relative kernel change over an epoch: ``diag.<layer>.update_ratio``."""

    def __init__(self, model: keras.Model) -> None:
        self.layers = named_layers(model)
        self._start: dict[str, np.ndarray] = {}

    def snapshot(self) -> None:
        self._start = {name: lay.kernel.numpy().copy() for name, lay in self.layers}

    def ratios(self) -> dict[str, float]:
        """Empty before the first snapshot."""
        out = {}
        for name, lay in self.layers:
            if name in self._start:
                start = self._start[name]
                moved = np.linalg.norm(lay.kernel.numpy() - start)
                out[f"{PREFIX}{name}.update_ratio"] = float(
                    moved / max(float(np.linalg.norm(start)), 1e-12))
        return out


# Up to this many measurements in a run, each one runs eagerly; beyond it, the measurement is
# traced once as a tf.function. Tracing costs as much as 9 to 36 eager measurements (bench/
# diagnostics_modes.py, BENCHMARKS.md "Diagnostics"), so most sweeps are cheaper without it.
TRACE_AFTER = 10


class DiagnosticsCallback(keras.callbacks.Callback):
    """Measures at the start of training (step ``initial_epoch``) and after every epoch
    (step = epochs completed), and hands the metrics to ``sink(step, metrics)``.

    Every rank measures, with no collectives: the probe and the weights are the same on
    every rank, so all ranks spend the same time and stay in step; only rank 0's sink
    records, the others' do nothing.
    """

    def __init__(self, probe: Probe, loss: Callable, output_activation: str,
                 hidden_activation: str, sink: Callable[[int, dict[str, float]], None],
                 initial_epoch: int = 0) -> None:
        super().__init__()
        self.probe = Probe(tf.convert_to_tensor(probe.x, tf.float32),
                           tf.convert_to_tensor(probe.y))
        self.loss, self.sink, self.initial_epoch = loss, sink, initial_epoch
        self.activations = (output_activation, hidden_activation)
        self._measurer: Measurer | None = None
        self._tracker: UpdateTracker | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        measurements = 1 + int(self.params.get("epochs", 0)) - self.initial_epoch
        self._measurer = Measurer(self.model, self.loss, *self.activations,
                                  compiled=measurements > TRACE_AFTER)
        self._tracker = UpdateTracker(self.model)
        self._emit(self.initial_epoch)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._tracker.snapshot()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._emit(epoch + 1)

    def _emit(self, step: int) -> None:
        start = time.perf_counter()
        metrics = {**self._measurer(self.probe), **self._tracker.ratios()}
        metrics[f"{PREFIX}seconds"] = time.perf_counter() - start
        self.sink(step, metrics)
