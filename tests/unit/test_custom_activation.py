"""The README's worked example of a custom activation: conf/sweep/custom_activation.yaml names
custom_blocks.activations:scaled_tanh, and that sweep loads, plans and trains a step with it."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import expand_grid, load_data_config, load_sweep_config
from pipeline.data.manifest import Manifest
from pipeline.model import blocks
from pipeline.model.build import build, class_accuracy, encode_labels
from pipeline.train.driver.plan import check_task, check_training
from tests.helpers import ROOT

SWEEP = ROOT / "conf" / "sweep" / "custom_activation.yaml"
NAME = "custom_blocks.activations:scaled_tanh"


@pytest.fixture
def importable(monkeypatch):
    """The checkout on the import path, as ``PYTHONPATH=$PWD`` puts it for a real sweep."""
    monkeypatch.syspath_prepend(str(ROOT))


def _points():
    return [p for p in expand_grid(load_sweep_config(SWEEP))
            if p.config.model.hidden_activation == NAME]


def test_the_example_sweep_names_the_example_activation_and_passes_the_driver_checks():
    sweep = load_sweep_config(SWEEP)
    points = _points()
    assert len(points) == 2  # one per head
    data = load_data_config(ROOT / "conf" / "data" / f"{sweep.dataset}.yaml")
    manifest = Manifest("d", "f", "parquet", "s", [4], 0, "uint8", task=data.task,
                        input_kind="image")
    for point in expand_grid(sweep):
        check_task(point.name, point.config, manifest)
        check_training(point.name, point.config, data.task)


def test_the_example_activation_is_what_it_says(importable):
    from custom_blocks.activations import scaled_tanh

    assert blocks.activation(NAME) is scaled_tanh
    x = np.array([-1.0, 0.0, 1.0, 50.0], dtype=np.float32)
    np.testing.assert_allclose(scaled_tanh(x).numpy(), [-1.0, 0.0, 1.0, 1.7159], atol=1e-4)


def test_the_example_sweep_builds_and_trains_a_step_with_it(importable):
    cfg = _points()[0].config
    built = build(cfg, (8, 8, 1), 3)
    hidden = next(layer for layer in built.train.layers if layer.name.startswith("dense"))
    assert hidden.activation.__name__ == "scaled_tanh"
    assert set(built.custom_objects) == {"scaled_tanh"}  # what a logged model is loaded with
    opt = blocks.optimizer(cfg.optimizer, cfg.optimizer.learning_rate)
    built.train.compile(optimizer=opt, loss=built.loss, metrics=[class_accuracy])
    x = np.random.default_rng(0).random((6, 8, 8, 1), dtype=np.float32)
    y = encode_labels(np.array([0, 1, 2, 0, 1, 2]), 3, built.label_encoding)
    history = built.train.fit(x, y, batch_size=6, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert built.inference.predict(x, verbose=0).shape == (6, 3)
