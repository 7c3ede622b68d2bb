"""Outputs on a really full disk (a small tmpfs, filled): one clear line and exit status 2 for
datasets and reports, never a partial one that looks complete; checkpoints that cannot be
written leave training going, with a warning, and the last complete checkpoint in force."""

from __future__ import annotations

import subprocess

import pytest
from mlflow.tracking import MlflowClient

from pipeline.cli import run_job
from pipeline.data.manifest import load_manifest
from pipeline.tracking import store as tracking
from tests.helpers import load_job, write_data_config, write_npz
from tests.helpers.disk import fill, mount_tmpfs, unmount
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration

SWEEP = """
name: full
dataset: tiny
base:
  model: {hidden_layers: [8]}
  training: {epochs: 2, batch_size: 32}
"""


def _one_error_line(capsys) -> str:
    [line] = capsys.readouterr().err.strip().splitlines()
    return line


def _tiny_config(folder, output=None):
    cfg = write_data_config(folder, write_npz(folder / "d.npz", n_train=160, n_test=32, side=8))
    if output is not None:
        cfg.write_text(cfg.read_text().replace(f"output: {folder / 'processed'}",
                                               f"output: {output}"))
    return cfg


def test_prepare_on_a_full_disk_leaves_no_dataset_and_works_once_there_is_room(
        tmp_path, spark, small_disk, capsys):
    disk = small_disk(1024)
    cfg = _tiny_config(tmp_path, output=disk)
    filler = fill(disk)
    prepare = load_job("prepare_data").main
    assert run_job(prepare, ["--config", str(cfg)], "prepare_data") == 2
    line = _one_error_line(capsys)
    assert line == f"prepare_data: error: {disk}: no space left on device while writing the dataset"
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no dataset, no staging left

    filler.unlink()
    assert run_job(prepare, ["--config", str(cfg)], "prepare_data") == 0
    manifest = load_manifest(disk / "tiny", verify=True)
    assert manifest.splits["train"].rows + manifest.splits["val"].rows == 160


@pytest.fixture(scope="module")
def swept(tmp_path_factory, spark):
    """A one-configuration sweep whose --checkpoint-dir is on a full tmpfs."""
    root = tmp_path_factory.mktemp("full")
    assert load_job("prepare_data").main(["--config", str(_tiny_config(root))]) == 0
    (root / "sweep.yaml").write_text(SWEEP)
    disk = mount_tmpfs(root / "ckpt-disk", 256)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", sqlite_store(root / "mlflow.db"))
    try:
        fill(disk)
        code = run_job(load_job("train_sweep").main,
                       ["--config", str(root / "sweep.yaml"), "--data",
                        str(root / "processed" / "tiny"), "--checkpoint-dir",
                        str(disk / "ckpt")], "train_sweep")
        yield {"root": root, "code": code, "disk": disk}
    finally:
        mp.undo()
        unmount(disk)


def test_unwritable_checkpoints_warn_and_training_still_finishes(swept):
    assert swept["code"] == 0
    client = MlflowClient(f"sqlite:///{swept['root'] / 'mlflow.db'}")
    exp = client.get_experiment_by_name("full")
    [run] = tracking.children(client, exp.experiment_id)
    assert run.data.tags["status"] == "finished"
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 2
    warning = run.data.tags["checkpoint_warning"]
    folder = swept["disk"] / "ckpt" / exp.experiment_id / run.data.tags["config_hash"]
    assert warning.startswith(f"checkpoint of epoch 1 not written to {folder}: no space left")
    assert "resumes from the start" in warning
    # Nothing half-written was left behind to be mistaken for a checkpoint.
    assert not list((swept["disk"] / "ckpt").rglob("epoch-*"))
    assert not list((swept["disk"] / "ckpt").rglob("latest.json"))


def test_report_on_a_full_disk_keeps_the_previous_report_whole(swept, small_disk, capsys,
                                                                monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{swept['root'] / 'mlflow.db'}")
    disk = small_disk(2048)
    out = disk / "report"
    args = ["--experiment", "full", "--output", str(out), "--no-register"]
    compare = load_job("compare").main
    assert run_job(compare, args, "compare") == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"leaderboard.csv", "heatmap.png", "curves.png", "index.html"} <= set(before)
    capsys.readouterr()

    filler = fill(disk)
    assert run_job(compare, args, "compare") == 2
    assert _one_error_line(capsys) == (f"compare: error: {out}: no space left on device while "
                                       "writing the report")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old report untouched
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "report"]  # no staging left

    filler.unlink()
    assert run_job(compare, args, "compare") == 0


def test_any_job_turns_a_full_or_read_only_disk_into_one_line(small_disk, capsys):
    full = small_disk(64)
    fill(full)
    read_only = small_disk(64)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only)], check=True)

    def write(path):
        def main(argv):
            with path.open("w") as f:
                f.write("x" * 65536)
            return 0
        return main

    assert run_job(write(full / "out.txt"), [], "job") == 2
    assert _one_error_line(capsys) == "job: error: no space left on device while writing"
    assert run_job(write(read_only / "out.txt"), [], "job") == 2
    assert _one_error_line(capsys) == f"job: error: {read_only / 'out.txt'}: read-only file system"
