"""Every registered name of a sweep file checked as the file is read: file, key path and the
closest known names in one line; what a dataset's task refuses of a head, from its manifest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_sweep_config
from pipeline.config.known import NAME_KEYS, REGISTRIES, check_heads
from pipeline.data.manifest import Shard, SplitInfo, write_manifest
from pipeline.errors import ConfigError
from pipeline.train.driver.plan import check_heads_before_session
from tests.unit.test_plan import _manifest


def _write(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "dataset": "d", **fields}))
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_sweep_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_misspelt_loss_in_a_grid_list_names_file_index_and_suggestion(tmp_path):
    path = _write(tmp_path, grid={"loss": ["mse", "mae", "categorical_crossentrpy"]})
    message = _refusal(path)
    assert message.startswith(f"{path}: grid.loss[2]: unknown loss 'categorical_crossentrpy'")
    assert "did you mean 'categorical_crossentropy'" in message


def test_a_misspelt_name_in_the_base_names_its_key(tmp_path):
    path = _write(tmp_path, base={"model": {"hidden_activation": "rleu"}})
    message = _refusal(path)
    assert message.startswith(f"{path}: base.model.hidden_activation: unknown activation 'rleu'")
    assert "did you mean 'relu'" in message


def test_a_name_inside_a_grid_mapping_names_axis_index_and_key(tmp_path):
    head = [{"model.output_activation": "softmax", "loss": "mse"},
            {"model.output_activation": "lineer", "loss": "categorical_hinge"}]
    message = _refusal(_write(tmp_path, grid={"head": head}))
    assert ": grid.head[1].model.output_activation: unknown activation 'lineer'" in message
    assert "did you mean 'linear'" in message


@pytest.mark.parametrize("key, bad", [
    ("model.kernel_initializer", "he_normall"), ("model.bias_initializer", "zeroes"),
    ("optimizer.name", "adamw"), ("optimizer.schedule", "exponentail"),
    ("model.architecture", "mpl"),
])
def test_every_kind_of_name_is_checked_in_the_grid(tmp_path, key, bad):
    message = _refusal(_write(tmp_path, grid={key: [bad]}))
    assert f": grid.{key}[0]: unknown {NAME_KEYS[key]} {bad!r}" in message


def test_a_name_with_nothing_close_gets_the_known_list_only(tmp_path):
    message = _refusal(_write(tmp_path, base={"loss": "zzzzzz"}))
    assert "did you mean" not in message
    assert f"(known: {', '.join(REGISTRIES['loss'])})" in message


def test_custom_objects_and_every_registered_name_pass(tmp_path):
    grid = {key: list(REGISTRIES[kind]) for key, kind in NAME_KEYS.items()
            if key not in ("loss", "model.output_activation")}
    grid["loss"] = ["my.losses:focal"]
    # Only the names are checked here: a 1-value-per-axis grid keeps expansion small.
    for key, values in grid.items():
        load_sweep_config(_write(tmp_path, grid={key: values}))


def test_a_head_the_task_refuses_names_the_key_that_set_it(tmp_path):
    path = _write(tmp_path, grid={"model.hidden_activation": ["relu", "tanh"],
                                  "head": [{"model.output_activation": "sigmoid",
                                            "loss": "binary_crossentropy"},
                                           {"model.output_activation": "sigmoid",
                                            "loss": "categorical_crossentropy"}]})
    sweep = load_sweep_config(path)
    with pytest.raises(ConfigError, match=rf"^{path}: grid\.head\[1\]\.loss: loss "
                                          "categorical_crossentropy on a binary target"):
        check_heads(sweep, "binary", path)
    check_heads(sweep, "multiclass", path)  # the same heads are fine there


def test_a_head_from_the_base_names_the_base_key(tmp_path):
    path = _write(tmp_path, base={"model": {"output_activation": "softmax"}},
                  grid={"loss": ["binary_crossentropy"]})
    with pytest.raises(ConfigError, match=r"base\.model\.output_activation: output activation "
                                          "softmax on a binary target"):
        check_heads(load_sweep_config(path), "binary", path)


def test_heads_are_checked_from_the_manifest_on_disk(tmp_path):
    data = tmp_path / "data"
    for split in ("train", "val", "test"):
        (data / split).mkdir(parents=True)
        (data / split / "p0").write_bytes(b"")
    split = SplitInfo(10, [Shard("p0", 10)], [5, 5])
    manifest = dataclasses.replace(_manifest(), num_classes=2, task="binary",
                                   splits={s: split for s in ("train", "val", "test")})
    write_manifest(data, manifest)
    path = _write(tmp_path, base={"model": {"output_activation": "softmax"}})
    with pytest.raises(ConfigError, match=r"base\.loss: loss categorical_crossentropy on a binary"):
        check_heads_before_session(load_sweep_config(path), path, data)
    # No manifest yet (or one a killed prepare left aside): the sweep checks it later.
    check_heads_before_session(load_sweep_config(path), path, tmp_path / "absent")


def test_a_cnn_on_tabular_features_names_the_key_that_asked_for_it(tmp_path):
    path = _write(tmp_path, grid={"model.architecture": ["mlp", "cnn"]})
    sweep = load_sweep_config(path)
    with pytest.raises(ConfigError, match=r"grid\.model\.architecture\[1\]: architecture cnn "
                                          "needs images"):
        check_heads(sweep, "multiclass", path, images=False)
    check_heads(sweep, "multiclass", path, images=True)
