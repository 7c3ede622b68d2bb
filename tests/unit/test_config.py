from pathlib import Path

import pytest

from pipeline.config import (
    RunConfig,
    SweepConfig,
    apply_overrides,
    config_hash,
    expand_grid,
    flatten,
    load_data_config,
    load_sweep_config,
    parse,
    to_dict,
)
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "conf" / "sweep").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_sweep_loads_and_expands(path):
    sweep = load_sweep_config(path)
    trials = expand_grid(sweep)
    assert trials, "a sweep must have at least one configuration"
    assert len({t.name for t in trials}) == len(trials), "configuration names must be unique"


@pytest.mark.parametrize("path", sorted((ROOT / "conf" / "data").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_data_config_loads(path):
    cfg = load_data_config(path)
    assert cfg.shards >= 1


def test_unknown_key_names_its_full_path():
    with pytest.raises(ConfigError, match=r"unknown key .base\.model\.activaton"):
        parse(SweepConfig, {"name": "s", "dataset": "d", "base": {"model": {"activaton": "relu"}}})


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"base\.training\.epochs: expected int, got str"):
        parse(SweepConfig, {"name": "s", "dataset": "d",
                            "base": {"training": {"epochs": "three"}}})


def test_bool_is_not_accepted_as_a_number():
    with pytest.raises(ConfigError, match="dropout"):
        parse(RunConfig, {"model": {"dropout": True}})


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key 'dataset'"):
        parse(SweepConfig, {"name": "s"})


def test_grid_is_the_cartesian_product_in_file_order():
    sweep = parse(SweepConfig, {
        "name": "s", "dataset": "d",
        "grid": {"model.hidden_activation": ["relu", "tanh"],
                 "head": [{"loss": "mse", "model.output_activation": "softmax"},
                          {"loss": "hinge", "model.output_activation": "linear"}]},
    })
    trials = expand_grid(sweep)
    assert [(t.config.model.hidden_activation, t.config.loss) for t in trials] == [
        ("relu", "mse"), ("relu", "hinge"), ("tanh", "mse"), ("tanh", "hinge")]
    assert trials[1].config.model.output_activation == "linear"
    assert trials[1].name == "hidden_activation=relu,loss=hinge,output_activation=linear"


def test_empty_grid_axis_is_rejected():
    sweep = parse(SweepConfig, {"name": "s", "dataset": "d", "grid": {"loss": []}})
    with pytest.raises(ConfigError, match=r"grid\.loss: empty"):
        expand_grid(sweep)


def test_grid_override_of_unknown_key_is_rejected():
    sweep = parse(SweepConfig, {"name": "s", "dataset": "d", "grid": {"model.nope": [1]}})
    with pytest.raises(ConfigError, match="model.nope"):
        expand_grid(sweep)


def test_grid_override_is_type_checked():
    sweep = parse(SweepConfig, {"name": "s", "dataset": "d",
                                "grid": {"training.batch_size": [64, "big"]}})
    with pytest.raises(ConfigError, match="batch_size"):
        expand_grid(sweep)


def test_hash_depends_on_values_and_dataset_only():
    a = RunConfig()
    b = apply_overrides(a, {"model.hidden_activation": "tanh"})
    assert config_hash(a, "fp1") == config_hash(RunConfig(), "fp1")
    assert config_hash(a, "fp1") != config_hash(b, "fp1")
    assert config_hash(a, "fp1") != config_hash(a, "fp2")


def test_flatten_gives_dotted_params():
    flat = flatten(to_dict(RunConfig()))
    assert flat["model.hidden_activation"] == "relu"
    assert flat["optimizer.learning_rate"] == 0.001
    assert flat["model.hidden_layers"] == [128]


def test_malformed_yaml_gives_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n  dataset: [\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_sweep_config(bad)


@pytest.mark.parametrize("path", sorted((ROOT / "conf" / "augment").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_augment_config_loads(path):
    from pipeline.config import load_augment_config

    assert load_augment_config(path).copies >= 1


def test_tracking_keys_are_checked(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndataset: d\ntracking: {retries: -1}\n")
    with pytest.raises(ConfigError, match=r"tracking\.retries: must be at least 0"):
        load_sweep_config(path)
    path.write_text("name: s\ndataset: d\ntracking: {lease_seconds: 1, claim_settle_seconds: 1}\n")
    with pytest.raises(ConfigError, match=r"tracking\.lease_seconds"):
        load_sweep_config(path)
    path.write_text("name: s\ndataset: d\ntracking: {lease: 10}\n")
    with pytest.raises(ConfigError, match=r"unknown key .tracking\.lease"):
        load_sweep_config(path)
