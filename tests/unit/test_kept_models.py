"""A paused trial's model is kept for its next rung only while it is exactly what the
checkpoint holds, and only if every rank of the group kept it (rank.kept_models). The
collective is replaced here by each case's sum over ranks; the real one runs in
tests/integration/test_concurrent_trials.py (halving's promoted runs, resumed exactly)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.train.checkpoints import CheckpointState
from pipeline.train.rank import distributed
from pipeline.train.rank.kept_models import Kept, KeptModels


@pytest.fixture
def ranks(monkeypatch):
    """``ranks["others_missing"]``: how many other ranks lack the model."""
    state = {"others_missing": 0.0}
    monkeypatch.setattr(distributed, "allreduce_sum",
                        lambda values, name: values + np.array([state["others_missing"]]))
    return state


def _state(run_id: str, epoch: int) -> CheckpointState:
    return CheckpointState(epoch, f"/ckpt/epoch-{epoch:04d}", run_id)


def _kept(run_id: str = "run", epoch: int = 2) -> Kept:
    return Kept(built=object(), ckpt=object(), run_id=run_id, epoch=epoch)


def test_the_kept_model_is_used_when_it_is_the_checkpoints_state(ranks):
    models = KeptModels()
    kept = _kept()
    models.keep("h", kept)
    assert models.take("h", _state("run", 2)) is kept
    assert len(models) == 0  # taken: trained on, it is no longer what was paused


@pytest.mark.parametrize("state", [_state("run", 1),  # an older checkpoint
                                   _state("other", 2)])
def test_a_model_that_is_not_the_checkpoints_state_is_dropped(ranks, state):
    models = KeptModels()
    models.keep("h", _kept())
    assert models.take("h", state) is None and len(models) == 0


def test_no_rank_uses_its_kept_model_unless_every_rank_kept_it(ranks):
    models = KeptModels()
    models.keep("h", _kept())
    ranks["others_missing"] = 1.0  # e.g. a rank of a relaunched group
    assert models.take("h", _state("run", 2)) is None


def test_the_oldest_goes_first_past_the_limit(ranks):
    models = KeptModels(limit=2)
    for name in "abc":
        models.keep(name, _kept(run_id=name))
    assert len(models) == 2 and models.take("a", _state("a", 2)) is None
    assert models.take("c", _state("c", 2)) is not None


def test_the_oldest_goes_first_past_the_byte_budget(ranks):
    models = KeptModels(limit=10, limit_bytes=100)
    for name in "abc":
        models.keep(name, Kept(object(), object(), name, 2, nbytes=40))
    assert len(models) == 2 and models.take("a", _state("a", 2)) is None


def test_a_kept_models_bytes_count_its_weights_and_optimizer_slots():
    import tensorflow as tf

    from pipeline.train.rank.kept_models import variable_bytes

    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    opt = tf.keras.optimizers.Adam()
    model.compile(optimizer=opt, loss="mse")
    model.fit(tf.zeros((4, 3)), tf.zeros((4, 2)), verbose=0)  # the slots now exist
    weights = (3 * 2 + 2) * 4  # float32 kernel and bias
    assert variable_bytes(tf.train.Checkpoint(model=model, optimizer=opt)) >= 3 * weights
