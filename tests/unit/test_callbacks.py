"""The epoch clock: per-epoch timings in the logs and the end of training."""

from __future__ import annotations

import time

import numpy as np


def test_epoch_clock_logs_each_epoch_and_notes_when_training_ended():
    import tensorflow as tf

    from pipeline.train.rank.callbacks import EpochClock

    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    clock = EpochClock(samples_per_epoch=32)
    began = time.perf_counter()
    history = model.fit(np.ones((32, 3)), np.zeros((32, 2)), batch_size=8, epochs=2,
                        callbacks=[clock], verbose=0)
    returned = time.perf_counter()
    seconds = history.history["epoch_seconds"]
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    np.testing.assert_allclose(history.history["samples_per_sec"],
                               [32 / s for s in seconds], rtol=1e-6)
    assert clock.ended is not None and began + sum(seconds) <= clock.ended <= returned
