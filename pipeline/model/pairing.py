"""Pre-flight check of pairings: combinations known to train badly, each with its reason.

Rules warn and never refuse: seeing a poor pairing fail is often the point of a sweep. They
read only the TF-free facts in ``names``, so the driver checks a sweep before anything
trains; the sweep prints the findings once and records them on its parent run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.config import RunConfig
from pipeline.model import names

_CONSTANT_INITS = ("zeros", "ones", "constant")
_SATURATING = ("sigmoid", "hard_sigmoid", "tanh", "softsign")


@dataclass(frozen=True)
class Finding:
    rule: str
    reason: str

    def line(self) -> str:
        return f"{self.rule}: {self.reason}"


def _has_hidden(cfg: RunConfig) -> bool:
    return cfg.model.architecture == "cnn" or (
        cfg.model.architecture == "mlp" and len(cfg.model.hidden_layers) > 0)


def _symmetric_init(cfg: RunConfig) -> str | None:
    if _has_hidden(cfg) and cfg.model.kernel_initializer in _CONSTANT_INITS:
        return (f"{cfg.model.kernel_initializer} kernels make every hidden unit compute the "
                "same function and receive the same gradient, so they never differ")
    return None


def _selu_init(cfg: RunConfig) -> str | None:
    if cfg.model.hidden_activation == "selu" and cfg.model.kernel_initializer != "lecun_normal":
        return ("selu keeps activations normalized only with lecun_normal kernels, not "
                f"{cfg.model.kernel_initializer}")
    return None


_RELU_LIKE = ("relu", "leaky_relu", "elu")


def _relu_init(cfg: RunConfig) -> str | None:
    init = cfg.model.kernel_initializer
    if (cfg.model.hidden_activation in _RELU_LIKE and len(cfg.model.hidden_layers) >= 3
            and init in (*names.GLOROT_INITS, "standard", "lecun_normal", "lecun_uniform")):
        return (f"{cfg.model.hidden_activation} zeroes half its inputs, so {init} kernels halve "
                "the activations' variance at every layer; he_normal keeps it (He et al. 2015)")
    return None


def _saturating_he_init(cfg: RunConfig) -> str | None:
    init = cfg.model.kernel_initializer
    if cfg.model.hidden_activation in _SATURATING and _has_hidden(cfg) and init in names.HE_INITS:
        return (f"{init} kernels double the variance Glorot's derivation asks for, driving "
                f"{cfg.model.hidden_activation} units into saturation; use glorot_uniform")
    return None


def _regression_loss_on_probabilities(cfg: RunConfig) -> str | None:
    info = names.loss_info(cfg.loss)
    if cfg.model.output_activation == "softmax" and info and info.kind in ("regression",
                                                                            "margin"):
        return (f"{cfg.loss} through softmax probabilities: when the network is confidently "
                "wrong the softmax is saturated and the gradient is small, so it learns slowly")
    return None


def _cross_entropy_on_unnormalized(cfg: RunConfig) -> str | None:
    info = names.loss_info(cfg.loss)
    out = cfg.model.output_activation
    if info and info.kind == "probability" and info.fuses != out and out not in info.outputs:
        return (f"{cfg.loss} expects probabilities, but {out} outputs are not normalized "
                "(they can be negative, zero or exceed one)")
    return None


def _margin_loss_on_bounded(cfg: RunConfig) -> str | None:
    info = names.loss_info(cfg.loss)
    out = cfg.model.output_activation
    bounds = names.activation_info(out).bounds
    if info and info.kind == "margin" and bounds is not None and bounds[0] >= 0:
        return (f"{cfg.loss} wants raw scores of either sign; {out} outputs lie in "
                f"[{bounds[0]:g}, {bounds[1]:g}], so the margin can never be met for -1 targets")
    return None


def _deep_saturating(cfg: RunConfig) -> str | None:
    depth = len(cfg.model.hidden_layers)
    if cfg.model.hidden_activation in _SATURATING and depth >= 3:
        return (f"{depth} {cfg.model.hidden_activation} layers: each multiplies the gradient "
                "by a derivative below one, so early layers learn slowly (vanishing gradient)")
    return None


RULES: dict[str, Callable[[RunConfig], str | None]] = {
    "symmetric-init": _symmetric_init,
    "selu-init": _selu_init,
    "relu-init": _relu_init,
    "saturating-he-init": _saturating_he_init,
    "regression-loss-on-softmax": _regression_loss_on_probabilities,
    "cross-entropy-on-unnormalized": _cross_entropy_on_unnormalized,
    "margin-loss-on-bounded-output": _margin_loss_on_bounded,
    "deep-saturating": _deep_saturating,
}


def check(cfg: RunConfig) -> list[Finding]:
    """Every rule that ``cfg`` trips, in the order of RULES."""
    found = []
    for rule, test in RULES.items():
        reason = test(cfg)
        if reason:
            found.append(Finding(rule, reason))
    return found


def preflight(configs: Iterable[tuple[str, RunConfig]]) -> list[str]:
    """One line per (configuration, finding), for the console and the parent run's tag."""
    return [f"{name}: {f.line()}" for name, cfg in configs for f in check(cfg)]
