"""The driver's plan and the sweep file's checks: numbers out of range are refused with one line
naming the key before anything starts; grid points resolving to one configuration run once."""

from __future__ import annotations

import pytest

from jobs import train_sweep
from pipeline.cli import run_job
from pipeline.config import SweepConfig, apply_overrides, load_sweep_config
from pipeline.data.manifest import Manifest, Shard, SplitInfo
from pipeline.errors import ConfigError
from pipeline.train.driver.plan import plan_trials


def _manifest() -> Manifest:
    split = SplitInfo(400, [Shard("part-0.parquet", 200), Shard("part-1.parquet", 200)],
                      [200, 200])
    return Manifest(dataset="d", fingerprint="fp", source_format="npz", source_sha256="x",
                    image_shape=[4, 4, 1], num_classes=2, pixel_dtype="uint8",
                    splits={"train": split, "val": split, "test": split})


def _sweep(**overrides: object) -> SweepConfig:
    base = apply_overrides(SweepConfig(name="s", dataset="d").base,
                           {"training.batch_size": 8, **overrides})
    return SweepConfig(name="s", dataset="d", base=base)


def test_grid_points_resolving_to_one_configuration_are_planned_once():
    sweep = SweepConfig(name="s", dataset="d", base=_sweep().base,
                        grid={"optimizer.learning_rate": [0.001, 1.0e-3, 0.01]})
    said: list[str] = []
    trials = plan_trials(sweep, _manifest(), 1, None, log=said.append)
    assert len(trials) == len({t.config_hash for t in trials}) == 2
    assert any("same configuration" in line and "planned once" in line for line in said)
    replicated = plan_trials(sweep, _manifest(), 1, None, repeats=3, log=said.append)
    assert len(replicated) == len({t.config_hash for t in replicated}) == 6


@pytest.mark.parametrize(("key", "value", "message"), [
    ("training.epochs", 0, "training.epochs must be at least 1"),
    ("training.batch_size", 0, "training.batch_size must be at least 1"),
    ("optimizer.learning_rate", float("nan"), "optimizer.learning_rate must be a finite"),
    ("optimizer.learning_rate", -0.1, "optimizer.learning_rate must be a finite"),
    ("optimizer.momentum", float("inf"), "optimizer.momentum must be"),
    ("optimizer.decay_rate", 0.0, "optimizer.decay_rate must be"),
    ("optimizer.decay_steps", 0, "optimizer.decay_steps must be at least 1"),
    ("optimizer.warmup_epochs", -1.0, "optimizer.warmup_epochs must be"),
    ("model.dropout", 1.0, "model.dropout must be in [0, 1)"),
    ("model.hidden_layers", [8, 0], "model.hidden_layers: every layer needs at least 1 unit"),
    ("training.seed", -1, "training.seed must be in [0, 2**32)"),
    ("training.early_stopping.patience", -1, "training.early_stopping.patience must be"),
    ("training.early_stopping.min_delta", float("nan"), "min_delta must be"),
])
def test_numbers_out_of_range_are_refused_before_anything_starts(key, value, message):
    with pytest.raises(ConfigError) as caught:
        plan_trials(_sweep(**{key: value}), _manifest(), 1, None)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_epochs_override_of_zero_is_refused():
    with pytest.raises(ConfigError, match="--epochs: must be at least 1, got 0"):
        plan_trials(_sweep(), _manifest(), 1, epochs=0)


@pytest.mark.parametrize("repeats", [0, -1])
def test_a_repeats_override_below_one_is_refused(repeats):
    with pytest.raises(ConfigError, match=f"--repeats: must be at least 1, got {repeats}"):
        plan_trials(_sweep(), _manifest(), 1, None, repeats=repeats)


@pytest.mark.parametrize(("tracking", "key"), [
    ("{lease_seconds: .nan}", "tracking.lease_seconds"),
    ("{lease_seconds: .inf}", "tracking.lease_seconds"),
    ("{backoff_seconds: .nan}", "tracking.backoff_seconds"),
    ("{claim_settle_seconds: .nan}", "tracking.claim_settle_seconds"),
])
def test_tracking_numbers_must_be_finite(tmp_path, tracking, key):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\ndataset: d\ntracking: {tracking}\n")
    with pytest.raises(ConfigError, match=key):
        load_sweep_config(path)


def test_the_sweep_job_says_so_in_one_line_and_exits_2(tmp_path, capsys, mlflow_uri):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndataset: d\ntracking: {lease_seconds: .nan}\n")
    assert run_job(train_sweep.main, ["--config", str(path)], "train_sweep") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tracking.lease_seconds" in err[0]
    assert not (tmp_path / "mlflow.db").exists()  # nothing written
