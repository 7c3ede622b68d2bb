"""Fault injection for tests: importable by Horovod ranks as ``tests.helpers.faults:<name>``."""

from __future__ import annotations

from pathlib import Path


def explode(x: object) -> object:
    """An activation that fails when the model is built, on every rank."""
    raise RuntimeError("injected failure: activation 'explode'")


def stall_marker(tracking_uri: str) -> Path:
    """Where the first stall is recorded: beside the test's SQLite store (ranks get only a
    chosen environment, the tracking URI among it)."""
    return Path(tracking_uri.removeprefix("sqlite:///")).parent / "stalled"


def stall_once(x: object) -> object:
    """ReLU, except that Horovod rank 1, the first time any rank builds the model, enters a
    collective of its own (an allreduce no other rank calls) while rank 0 enters the next
    one in the code (the claim's broadcast): the mismatch that hangs a launch. Later
    launches build normally."""
    import os

    import numpy as np
    import tensorflow as tf

    from pipeline.train.rank import distributed

    marker = stall_marker(os.environ["MLFLOW_TRACKING_URI"])
    if os.environ.get("HOROVOD_RANK") == "1" and not marker.exists():
        marker.write_text(str(os.getpid()))
        with tf.init_scope():  # out of the layer's symbolic call, into eager execution
            distributed.allreduce_sum(np.zeros(1), name="only_rank_1_enters_this")
    return tf.nn.relu(x)
