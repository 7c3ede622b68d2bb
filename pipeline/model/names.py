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

# "standard": U[-1/sqrt(fan_in), 1/sqrt(fan_in)], the "commonly used heuristic" Glorot & Bengio
# (2010, eq. 1) compare their normalized initialization (glorot_uniform) against.
INITIALIZERS: tuple[str, ...] = (
    "zeros", "ones", "constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
    "lecun_normal", "lecun_uniform", "random_normal", "random_uniform", "standard")
# Initializer families, for the pairing rules: which activations each was derived for.
GLOROT_INITS = ("glorot_normal", "glorot_uniform")
HE_INITS = ("he_normal", "he_uniform")
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


# ---------------------------------------------------------------------------
# Heads and losses by task (pipeline.tasks)


@dataclass(frozen=True)
class Rule:
    """A loss or output activation a task refuses (``error``) or runs with a warning."""

    verdict: Literal["warn", "error"]
    why: str


def _rules(verdict: Literal["warn", "error"], why: str, *names: str) -> dict[str, Rule]:
    return {name: Rule(verdict, why) for name in names}


_ONE_NODE = "a single output unit: softmax over one unit is always 1, so nothing is learned"
_DISTRIBUTIONS = ("categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence")

# Losses per task. A name absent from a task's table is accepted; the pairing of a loss with
# its output activation (LossInfo.outputs) still warns as for any task.
TASK_LOSSES: dict[str, dict[str, Rule]] = {
    "multiclass": {},
    "binary": {
        **_rules("error", f"compares a distribution over classes; a binary head has {_ONE_NODE}",
                 *_DISTRIBUTIONS),
        **_rules("warn", "scores the best wrong class against the true one; with one unit it "
                 "reduces to hinge, use hinge", "categorical_hinge"),
    },
    "multilabel": {
        **_rules("error", "needs one class index per example; a multi-label target has several",
                 "sparse_categorical_crossentropy"),
        **_rules("warn", "assumes exactly one true label per example: the labels compete for "
                 "one unit of probability; binary_crossentropy decides each on its own",
                 "categorical_crossentropy", "kl_divergence", "categorical_hinge"),
    },
    "regression": {
        **_rules("error", "compares probabilities; a regression target is a real number",
                 "binary_crossentropy", *_DISTRIBUTIONS),
        **_rules("error", "needs class labels of +1/-1; a regression target is a real number",
                 "hinge", "squared_hinge", "categorical_hinge"),
        **_rules("error", "needs non-negative targets; regression targets are standardized to "
                 "mean 0 at prepare time", "poisson"),
    },
}

_BOUNDED_01 = "outputs lie in [0, 1], standardized targets (mean 0, sd 1) do not"
# Output activations per task; absent names are accepted.
TASK_OUTPUTS: dict[str, dict[str, Rule]] = {
    "multiclass": {},
    "binary": _rules("error", _ONE_NODE, "softmax"),
    "multilabel": _rules("warn", "outputs sum to 1, so the labels compete instead of each "
                         "being decided on its own; use sigmoid", "softmax"),
    "regression": {
        **_rules("error", "outputs sum to 1 and, on a single unit, are always 1; a regression "
                 "head is linear", "softmax"),
        **_rules("warn", _BOUNDED_01, "sigmoid", "hard_sigmoid"),
        **_rules("warn", "outputs lie in [-1, 1]; standardized targets reach beyond it",
                 "tanh", "softsign"),
        **_rules("warn", "outputs are never negative; half the standardized targets are",
                 "relu", "softplus"),
    },
}


@dataclass(frozen=True)
class HeadCheck:
    errors: list[str]
    warnings: list[str]


def check_head(task: str, loss: str, output_activation: str) -> HeadCheck:
    """What ``task`` says of this loss and output activation: errors refuse the
    configuration before training, warnings are printed and tagged on its run."""
    errors, warnings = [], []
    for kind, name, table in (("loss", loss, TASK_LOSSES[task]),
                              ("output activation", output_activation, TASK_OUTPUTS[task])):
        rule = table.get(name)
        if rule is not None:
            line = f"{kind} {name} on a {task} target: {rule.why}"
            (errors if rule.verdict == "error" else warnings).append(line)
    return HeadCheck(errors, warnings + loss_warnings(loss, output_activation))


def rules_table(task: str) -> list[str]:
    """The task's rules as lines, errors first: for the sweep's pre-flight output and docs."""
    lines = []
    for verdict in ("error", "warn"):
        for kind, table in (("loss", TASK_LOSSES[task]), ("output", TASK_OUTPUTS[task])):
            for name, rule in table.items():
                if rule.verdict == verdict:
                    lines.append(f"{task}: {verdict} {kind} {name}: {rule.why}")
    return lines


def decision_threshold(output_activation: str, encoding: str, from_logits: bool = False) -> float:
    """Where a binary or multi-label output separates "yes" from "no".

    Logits and the outputs of a bounded activation split at their middle (0 for logits and
    tanh, 0.5 for sigmoid); an unbounded output splits halfway between its two targets:
    0 for +-1 (margin losses), 0.5 for 0/1.
    """
    if from_logits:
        return 0.0
    bounds = activation_info(output_activation).bounds
    if bounds is not None:
        return (bounds[0] + bounds[1]) / 2
    return 0.0 if encoding == "pm1" else 0.5
