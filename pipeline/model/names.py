"""Registered names and what is known about each, without TensorFlow.

The driver validates a sweep against these tables before anything starts, and never imports
TensorFlow to do so; ``pipeline.model.blocks`` maps the same names to Keras objects (a test
checks that the two agree). Facts that rules and diagnostics need about an activation or a
loss live here, beside its name, so there is one place to read and change them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.errors import ConfigError

LabelEncoding = Literal["sparse", "onehot", "pm1"]


@dataclass(frozen=True)
class ActivationInfo:
    """What an activation's outputs look like.

    ``bounds``: the output range of a bounded unit, else None. A unit counts as *saturated*
    on an example when its output lies within ``saturation`` of either bound, measured as a
    fraction of the range (0.05: the outer 5% at each end, where the derivative is small).
    ``dead_below``: ReLU-like units output this or less wherever their gradient is zero; a
    unit is *dead* when that holds for every probe example.
    """

    bounds: tuple[float, float] | None = None
    saturation: float = 0.05
    dead_below: float | None = None


ACTIVATIONS: dict[str, ActivationInfo] = {
    "linear": ActivationInfo(),
    "relu": ActivationInfo(dead_below=0.0),
    "leaky_relu": ActivationInfo(),
    "elu": ActivationInfo(),
    "selu": ActivationInfo(),
    "gelu": ActivationInfo(),
    "swish": ActivationInfo(),
    "sigmoid": ActivationInfo(bounds=(0.0, 1.0)),
    "hard_sigmoid": ActivationInfo(bounds=(0.0, 1.0)),
    "tanh": ActivationInfo(bounds=(-1.0, 1.0)),
    "softplus": ActivationInfo(),
    "softsign": ActivationInfo(bounds=(-1.0, 1.0)),
    "softmax": ActivationInfo(bounds=(0.0, 1.0)),
}


@dataclass(frozen=True)
class LossInfo:
    """How a loss wants its labels and outputs.

    ``fuses``: the output activation the loss can apply itself, from logits (numerically
    stable); the training model then emits logits. ``outputs``: output activations the loss
    is meant for (others run with a warning); empty means any.
    ``kind``: ``probability`` losses compare probabilities, ``margin`` losses raw scores,
    ``regression`` losses any real output.
    """

    labels: LabelEncoding
    kind: Literal["probability", "margin", "regression"]
    fuses: str | None = None
    outputs: tuple[str, ...] = ()


_PROBS = ("softmax",)
_SCORES = ("linear", "tanh", "softsign")

LOSSES: dict[str, LossInfo] = {
    "mse": LossInfo("onehot", "regression"),
    "mae": LossInfo("onehot", "regression"),
    "huber": LossInfo("onehot", "regression"),
    "log_cosh": LossInfo("onehot", "regression"),
    "binary_crossentropy": LossInfo("onehot", "probability", "sigmoid", ("sigmoid",)),
    "categorical_crossentropy": LossInfo("onehot", "probability", "softmax", _PROBS),
    "sparse_categorical_crossentropy": LossInfo("sparse", "probability", "softmax", _PROBS),
    "kl_divergence": LossInfo("onehot", "probability", None, _PROBS),
    "poisson": LossInfo("onehot", "regression", None, ("softmax", "softplus", "relu")),
    "hinge": LossInfo("pm1", "margin", None, _SCORES),
    "squared_hinge": LossInfo("pm1", "margin", None, _SCORES),
    "categorical_hinge": LossInfo("onehot", "margin", None, _SCORES),
}

INITIALIZERS: tuple[str, ...] = (
    "zeros", "ones", "constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
    "lecun_normal", "lecun_uniform", "random_normal", "random_uniform")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "rmsprop", "adagrad")
SCHEDULES: tuple[str, ...] = ("constant", "exponential", "inverse_time", "per_epoch")
ARCHITECTURES: tuple[str, ...] = ("logreg", "mlp", "cnn")

KINDS = {"activation": tuple(ACTIVATIONS), "loss": tuple(LOSSES),
         "initializer": INITIALIZERS, "optimizer": OPTIMIZERS, "architecture": ARCHITECTURES}


def check(kind: str, name: str) -> None:
    """Raise ConfigError for an unknown ``name`` of ``kind``, listing the known ones.

    ``"package.module:attr"`` names a user's own object; it is imported inside the ranks,
    where TensorFlow is loaded, so the driver only checks its form here.
    """
    known = KINDS[kind]
    if name in known:
        return
    if ":" in name and all(name.partition(":")[::2]):
        return
    raise ConfigError(f"unknown {kind} {name!r} (known: {', '.join(known)})")


def activation_info(name: str) -> ActivationInfo:
    """Facts about a registered activation; a custom one is treated as unbounded."""
    return ACTIVATIONS.get(name, ActivationInfo())


def loss_info(name: str) -> LossInfo | None:
    """Facts about a registered loss; None for a custom ``module:attr`` loss."""
    return LOSSES.get(name)


def label_encoding(loss: str) -> LabelEncoding:
    info = loss_info(loss)
    return info.labels if info else "onehot"


def loss_warnings(loss: str, output_activation: str) -> list[str]:
    """Combinations that run but make little sense for classification."""
    info = loss_info(loss)
    if info and info.outputs and output_activation not in info.outputs:
        return [f"{loss} is meant for {'/'.join(info.outputs)} outputs, "
                f"not {output_activation}"]
    return []
