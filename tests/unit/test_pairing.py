"""The pre-flight check of pairings: each rule fires on its case and stays quiet otherwise."""

from __future__ import annotations

import pytest

from pipeline.config import ModelConfig, RunConfig
from pipeline.model import names, pairing


def _cfg(loss: str = "categorical_crossentropy", **model: object) -> RunConfig:
    return RunConfig(model=ModelConfig(**model), loss=loss)


@pytest.mark.parametrize("cfg, rule", [
    (_cfg(kernel_initializer="zeros"), "symmetric-init"),
    (_cfg(hidden_activation="selu"), "selu-init"),
    (_cfg("mse", output_activation="softmax"), "regression-loss-on-softmax"),
    (_cfg("mae", output_activation="softmax"), "regression-loss-on-softmax"),
    (_cfg("categorical_hinge", output_activation="softmax"), "regression-loss-on-softmax"),
    (_cfg(output_activation="relu"), "cross-entropy-on-unnormalized"),
    (_cfg("hinge", output_activation="sigmoid"), "margin-loss-on-bounded-output"),
    (_cfg(hidden_activation="sigmoid", hidden_layers=(64, 64, 64)), "deep-saturating"),
    (_cfg(hidden_layers=(64, 64, 64), kernel_initializer="standard"), "relu-init"),
    (_cfg(hidden_activation="tanh", kernel_initializer="he_normal"), "saturating-he-init"),
])
def test_each_rule_names_its_case_with_a_reason(cfg, rule):
    found = {f.rule: f.reason for f in pairing.check(cfg)}
    assert rule in found and len(found[rule]) > 20


@pytest.mark.parametrize("cfg", [
    _cfg(),  # relu hidden, softmax + cross-entropy, glorot
    _cfg("categorical_hinge", output_activation="linear"),
    _cfg(architecture="logreg", kernel_initializer="zeros"),  # no hidden units to be symmetric
    _cfg(hidden_activation="selu", kernel_initializer="lecun_normal"),
    _cfg("mse", output_activation="tanh", architecture="logreg"),
    _cfg(hidden_layers=(64, 64, 64), kernel_initializer="he_normal"),
    _cfg(hidden_layers=(64,), kernel_initializer="standard"),  # one layer: no compounding
])
def test_sound_pairings_pass_quietly(cfg):
    assert pairing.check(cfg) == []


def test_preflight_lines_name_the_configuration():
    zeros = _cfg(kernel_initializer="zeros")
    lines = pairing.preflight([("a", zeros), ("b", _cfg())])
    assert lines == [f"a: symmetric-init: {pairing.check(zeros)[0].reason}"]


def test_the_tensorflow_registries_hold_exactly_the_driver_side_names():
    from pipeline.model import blocks

    assert blocks.ACTIVATIONS.names() == list(names.ACTIVATIONS)
    assert sorted(blocks.LOSSES.names()) == sorted(names.LOSSES)
    assert sorted(blocks.INITIALIZERS.names()) == sorted(names.INITIALIZERS)
    assert sorted(blocks.OPTIMIZERS.names()) == sorted(names.OPTIMIZERS)
    assert sorted(blocks.SCHEDULES.names()) == sorted(names.SCHEDULES)


def test_standard_initializer_draws_within_one_over_sqrt_fan_in():
    """Glorot & Bengio's "standard" heuristic: U[-1/sqrt(n), 1/sqrt(n)], n the fan-in."""
    import numpy as np

    from pipeline.model import blocks

    w = np.asarray(blocks.initializer("standard", seed=1)((400, 50)))
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # uniform's sd: bound/sqrt(3)
