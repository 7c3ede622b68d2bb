"""The driver's plan: replicates per cell, de-duplicated grid points, the batch plan, and no
TensorFlow in the driver process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pipeline.config import RunConfig, SweepConfig, TrainingConfig, parse
from pipeline.data.manifest import Manifest, Shard, SplitInfo
from pipeline.errors import ConfigError
from pipeline.train.contract import plan_batches
from pipeline.train.driver.plan import plan_trials
from tests.helpers import ROOT


def _manifest(rows_per_shard: int = 100, shards: int = 4) -> Manifest:
    split = SplitInfo(rows_per_shard * shards, [Shard(f"p{i}", rows_per_shard)
                                                for i in range(shards)], [rows_per_shard * shards])
    return Manifest("tiny", "fp", "npz", "sha", [4, 4, 1], 1, "uint8",
                    {s: split for s in ("train", "val", "test")})


def _sweep(**fields: object) -> SweepConfig:
    return parse(SweepConfig, {"name": "s", "dataset": "tiny", **fields})


def test_each_cell_gets_its_replicates_with_distinct_seeds_and_hashes():
    sweep = _sweep(repeats=3, base={"training": {"seed": 7, "batch_size": 20}},
                   grid={"model.hidden_activation": ["relu", "tanh"]})
    trials = plan_trials(sweep, _manifest(), 2, epochs=None, log=lambda m: None)
    assert len(trials) == 6
    assert len({t.config_hash for t in trials}) == 6  # each replicate resumes on its own
    assert len({t.cell_hash for t in trials}) == 2
    relu = [t for t in trials if t.config.model.hidden_activation == "relu"]
    assert [t.config.training.seed for t in relu] == [7, 8, 9]
    assert [t.replicate for t in relu] == [0, 1, 2]
    assert relu[0].name.endswith(" #1") and relu[2].name.endswith(" #3")
    # replicate 0 is the cell itself: a single-seed sweep of it has the same identity
    single = plan_trials(_sweep(base={"training": {"seed": 7, "batch_size": 20}},
                                grid={"model.hidden_activation": ["relu"]}),
                         _manifest(), 2, None, log=lambda m: None)
    assert single[0].config_hash == relu[0].config_hash == relu[0].cell_hash


def test_repeats_from_the_command_line_win():
    trials = plan_trials(_sweep(repeats=3, base={"training": {"batch_size": 20}}), _manifest(),
                         2, None, repeats=1, log=lambda m: None)
    assert len(trials) == 1


def test_grid_points_resolving_to_the_same_configuration_are_planned_once():
    said = []
    sweep = _sweep(base={"training": {"batch_size": 20}},
                   grid={"model.hidden_activation": ["relu", "relu"]})
    trials = plan_trials(sweep, _manifest(), 2, None, log=said.append)
    assert len(trials) == 1
    assert any("same configuration" in line for line in said)


def test_unknown_names_fail_on_the_driver_with_the_known_ones():
    sweep = _sweep(base={"model": {"hidden_activation": "rellu"}, "training": {"batch_size": 20}})
    with pytest.raises(ConfigError, match=r"unknown activation 'rellu' \(known: linear, relu"):
        plan_trials(sweep, _manifest(), 2, None, log=lambda m: None)


@pytest.mark.parametrize("training, message", [
    ({"batch_size": 30}, "not divisible by 4 ranks"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"epochs": 0, "batch_size": 20}, "epochs must be at least 1"),
])
def test_bad_training_numbers_fail_with_one_line(training, message):
    with pytest.raises(ConfigError, match=message):
        plan_trials(_sweep(base={"training": training}), _manifest(), 4, None,
                    log=lambda m: None)


def test_batch_plan_global_and_per_rank():
    manifest = _manifest(rows_per_shard=100, shards=4)  # 200 rows per rank on 2 ranks
    global_plan = plan_batches(RunConfig(training=TrainingConfig(batch_size=40)), manifest, 2, "g")
    assert (global_plan.local_batch, global_plan.global_batch) == (20, 40)
    assert global_plan.steps_per_epoch == 10 and global_plan.samples_per_epoch == 400
    assert global_plan.lr_scale == 1.0 and global_plan.warmup_start == 0.0
    per_rank = plan_batches(RunConfig(training=TrainingConfig(batch_size=40, batch_mode="per_rank",
                                                              loss_reduction="sum")),
                            manifest, 2, "p")
    assert (per_rank.local_batch, per_rank.global_batch, per_rank.steps_per_epoch) == (40, 80, 5)
    assert per_rank.lr_scale == 2.0 and per_rank.warmup_start == 0.5
    assert per_rank.summed_gradients


def test_the_driver_plans_and_prepares_a_launch_without_importing_tensorflow():
    code = textwrap.dedent("""
        import sys
        from pipeline.config import load_sweep_config
        from pipeline.train.driver import launch, plan, sweep  # noqa: F401
        from pipeline.train.rank import entry  # what the driver pickles for the ranks
        from pipeline.model import pairing
        from tests.unit.test_plan import _manifest
        cfg = load_sweep_config("conf/sweep/default.yaml")
        trials = plan.plan_trials(cfg, _manifest(1024), 2, 1, log=lambda m: None)
        sweep.preflight(trials, cfg.name, log=lambda m: None)
        launch.rank_env(__import__("tests.helpers", fromlist=["rank_job"]).rank_job(trials))
        assert trials and "tensorflow" not in sys.modules, sorted(
            m for m in sys.modules if m.startswith("tensorflow"))[:5]
        print("ok", len(trials))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok ")
