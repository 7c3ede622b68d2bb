"""Learning-rate schedules, warm-up and loss reduction."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import OptimizerConfig
from pipeline.model import blocks


def _lr(schedule, step: int) -> float:
    return float(schedule(step)) if callable(schedule) else float(schedule)


def test_constant_is_a_plain_float():
    assert blocks.learning_rate(OptimizerConfig(learning_rate=0.1), 0.1, 50) == 0.1


def test_per_epoch_decay_steps_once_per_epoch():
    cfg = OptimizerConfig(schedule="per_epoch", decay_rate=0.999)
    s = blocks.learning_rate(cfg, 0.1, steps_per_epoch=50)
    assert _lr(s, 0) == pytest.approx(0.1)
    assert _lr(s, 49) == pytest.approx(0.1)
    assert _lr(s, 50) == pytest.approx(0.1 * 0.999)
    assert _lr(s, 50 * 9) == pytest.approx(0.1 * 0.999 ** 9)


def test_exponential_and_inverse_time():
    exp = blocks.learning_rate(OptimizerConfig(schedule="exponential", decay_rate=0.5,
                                               decay_steps=10), 1.0, 5)
    inv = blocks.learning_rate(OptimizerConfig(schedule="inverse_time", decay_rate=1.0,
                                               decay_steps=10), 1.0, 5)
    assert _lr(exp, 10) == pytest.approx(0.5)
    assert _lr(inv, 10) == pytest.approx(0.5)


def test_warmup_ramps_linearly_to_the_schedule():
    cfg = OptimizerConfig(warmup_epochs=2)
    s = blocks.learning_rate(cfg, 0.8, steps_per_epoch=10, warmup_start=0.25)
    assert _lr(s, 0) == pytest.approx(0.8 * (0.25 + 0.75 / 20))
    assert _lr(s, 19) == pytest.approx(0.8)
    assert _lr(s, 100) == pytest.approx(0.8)
    assert _lr(s, 9) < _lr(s, 10) < _lr(s, 19)


def test_sum_reduction_is_batch_size_times_mean():
    y = tf.one_hot([0, 1, 2, 1], 3)
    logits = tf.constant(np.random.default_rng(0).normal(size=(4, 3)), tf.float32)
    mean, _ = blocks.build_loss("categorical_crossentropy", "softmax", "mean")
    total, _ = blocks.build_loss("categorical_crossentropy", "softmax", "sum")
    assert float(total(y, logits)) == pytest.approx(4 * float(mean(y, logits)), rel=1e-5)


def test_per_example_loss_ignores_the_training_reduction():
    from pipeline.train.rank.evaluation import per_example_loss

    y = tf.one_hot([0, 1, 2], 3)
    logits = tf.constant([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.5]])
    mean, _ = blocks.build_loss("categorical_crossentropy", "softmax", "mean")
    total, _ = blocks.build_loss("categorical_crossentropy", "softmax", "sum")
    a, b = per_example_loss(mean, y, logits), per_example_loss(total, y, logits)
    assert a.shape == (3,)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert float(a.mean()) == pytest.approx(float(mean(y, logits)), rel=1e-5)
