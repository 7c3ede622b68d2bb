"""A checkpoint survives a host crash once ``latest.json`` names it (files and folder fsynced),
and a checkpoint that cannot be read back (a crash before the data reached the disk, a
damaged file) starts the configuration afresh with a warning and a tag, never a failed
launch on every relaunch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline.tracking.recorder import NullRecorder
from pipeline.tracking.vocab import TAG_CHECKPOINT_WARNING
from pipeline.train import checkpoints
from pipeline.train.rank import distributed, epoch_checkpoint


class _Tags(NullRecorder):
    run_id = "run-1"

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}

    def set_tag(self, key: str, value: str) -> None:
        self.tags[key] = value


def _model_and_checkpoint(seed: int = 0):
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    return model, tf.train.Checkpoint(model=model)


def _saved(folder: Path) -> tuple[list[np.ndarray], dict]:
    model, ckpt = _model_and_checkpoint()
    epoch_checkpoint.EpochCheckpoint(folder, ckpt, _Tags()).on_epoch_end(0, {"loss": 1.0})
    return model.get_weights(), checkpoints.read_state(folder)


@pytest.fixture
def one_rank(monkeypatch):
    """The collective of a single rank: its own value."""
    monkeypatch.setattr(distributed, "allreduce_sum", lambda values, name: np.asarray(values))


def test_the_checkpoint_and_latest_json_are_fsynced_file_and_folder(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    folder = tmp_path / "trial"
    _, state = _saved(folder)
    prefix = state.prefix
    written = [str(p) for p in folder.glob("epoch-0001*")]
    assert written and all(p in synced for p in written)
    assert f"{prefix}.index" in synced
    # latest.json's content before its rename, the folder after it (the rename is durable)
    assert str(folder / f".{checkpoints.STATE}.tmp") in synced
    assert synced[-1] == str(folder)


@pytest.mark.parametrize("damage", ["truncated data", "missing data", "garbage index"])
def test_an_unreadable_checkpoint_starts_afresh_with_a_warning_and_a_tag(
        tmp_path, one_rank, damage):
    folder = tmp_path / "trial"
    _, state = _saved(folder)
    [data] = folder.glob("epoch-0001.data-*")
    if damage == "truncated data":
        data.write_bytes(data.read_bytes()[:7])
    elif damage == "missing data":
        data.unlink()
    else:
        Path(f"{state.prefix}.index").write_bytes(b"not an index")
    _, ckpt = _model_and_checkpoint(seed=1)
    recorder = _Tags()
    said: list[str] = []
    assert not epoch_checkpoint.restored_everywhere(ckpt, state, recorder, said.append)
    warning = recorder.tags[TAG_CHECKPOINT_WARNING]
    assert f"checkpoint {state.prefix} (epoch 1) could not be restored" in warning
    assert "starting afresh from epoch 0" in warning and "\n" not in warning
    assert said == [f"    WARNING: {warning}"]


def test_a_readable_checkpoint_is_restored(tmp_path, one_rank):
    weights, state = _saved(tmp_path / "trial")
    model, ckpt = _model_and_checkpoint(seed=1)
    recorder = _Tags()
    assert epoch_checkpoint.restored_everywhere(ckpt, state, recorder, print)
    for restored, saved in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(restored, saved)
    assert recorder.tags == {}


def test_a_failure_on_another_rank_starts_every_rank_afresh(tmp_path, monkeypatch):
    _, state = _saved(tmp_path / "trial")
    monkeypatch.setattr(distributed, "allreduce_sum",
                        lambda values, name: np.asarray(values) + 1.0)  # one rank failed
    _, ckpt = _model_and_checkpoint(seed=1)
    recorder = _Tags()
    assert not epoch_checkpoint.restored_everywhere(ckpt, state, recorder, print)
    assert "on another rank" in recorder.tags[TAG_CHECKPOINT_WARNING]

