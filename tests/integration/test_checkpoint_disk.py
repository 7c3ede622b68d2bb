"""EpochCheckpoint with real TensorFlow on a real tmpfs that fills up between two epochs: the
failed epoch leaves nothing behind, latest.json still names the last complete checkpoint, and
a later run with room again resumes from exactly that state, not from a half-written one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline.cli import console_logging
from pipeline.tracking.recorder import RunRecorder
from pipeline.tracking.spool import Retry
from pipeline.tracking.vocab import TAG_CHECKPOINT_WARNING
from pipeline.train import checkpoints
from pipeline.train.rank import epoch_checkpoint
from tests.helpers.disk import fill

pytestmark = pytest.mark.integration


def _model_and_checkpoint(tf):
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    return model, tf.train.Checkpoint(model=model)


def test_a_failed_checkpoint_write_never_becomes_the_resume_point(small_disk, mlflow_store,
                                                                    capsys, tmp_path):
    import tensorflow as tf

    console_logging()  # the warning is a log line on the console, as in a rank
    client = MlflowClient(mlflow_store)
    run_id = client.create_run(client.create_experiment("ckpt")).info.run_id
    recorder = RunRecorder(client, run_id, tmp_path / "spool", Retry(1, 0.01))
    folder = small_disk(256) / "trial"
    model, ckpt = _model_and_checkpoint(tf)
    saver = epoch_checkpoint.EpochCheckpoint(folder, ckpt, recorder)
    saver.on_epoch_end(0, {"loss": 1.0})
    epoch_one = [w.copy() for w in model.get_weights()]

    model.set_weights([w + 1.0 for w in epoch_one])  # epoch 2 changed the weights...
    filler = fill(folder.parent)  # ...and the disk is full when they are saved
    saver.on_epoch_end(1, {"loss": 0.5})

    warning = capsys.readouterr().out
    assert f"checkpoint of epoch 2 not written to {folder}: no space left on device" in warning
    assert "an interruption now resumes from epoch 1" in warning
    assert client.get_run(run_id).data.tags[TAG_CHECKPOINT_WARNING] in warning
    assert sorted(p.name for p in folder.iterdir() if "0002" in p.name) == []  # no remnants
    assert json.loads((folder / checkpoints.STATE).read_text())["epoch"] == 1

    # The rerun, with room again: resumes from epoch 1's weights exactly, then saves on.
    filler.unlink()
    state = checkpoints.read_state(folder)
    assert state.epoch == 1
    fresh, fresh_ckpt = _model_and_checkpoint(tf)
    epoch_checkpoint.restore(fresh_ckpt, state)
    for restored, saved in zip(fresh.get_weights(), epoch_one, strict=True):
        np.testing.assert_array_equal(restored, saved)
    epoch_checkpoint.EpochCheckpoint(folder, fresh_ckpt, recorder).on_epoch_end(1, {"loss": 0.5})
    assert checkpoints.read_state(folder).epoch == 2
    assert not list(folder.glob("epoch-0001*"))  # the older checkpoint was retired
