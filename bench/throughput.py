"""Training throughput: Horovod on Spark (2 ranks) against plain single-process Keras.

Both sides train the same model on the same prepared data, with the same global batch and
the same total number of threads; the Horovod side runs the way the sweep runs its ranks
(own cores per rank, the sweep's Horovod cycle time). Measured alternately, as a ratio.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import (
    ROOT,
    compiled_model,
    in_fresh_process,
    median,
    samples_per_sec,
    set_threads,
)


@dataclass(frozen=True)
class Setup:
    data_dir: str
    arch: str = "mlp"
    hidden: int = 128
    global_batch: int = 256
    epochs: int = 3
    max_steps: int = 0  # 0: whole epochs; otherwise at most this many steps per epoch
    threads_total: int = 2
    ranks: int = 2


def _steps(setup: Setup, manifest, size: int) -> int:
    from pipeline.data import feed

    steps = feed.steps_per_epoch(manifest, "train", size, setup.global_batch // size)
    return min(steps, setup.max_steps) if setup.max_steps else steps


def plain_keras(setup: Setup) -> float:
    """One process, all threads, the whole train split in memory."""
    set_threads(setup.threads_total)
    from pipeline.data import feed
    from pipeline.data.manifest import load_manifest
    from pipeline.model.build import encode_labels

    root = Path(setup.data_dir)
    manifest = load_manifest(root)
    x, y = feed.rank_split(root, manifest, "train", 0, 1)
    built = compiled_model(setup.arch, setup.hidden, manifest.image_shape)
    ds = feed.to_dataset(x, encode_labels(y, 10, built.label_encoding), setup.global_batch,
                         shuffle_seed=1, repeat=True)
    return samples_per_sec(built.train, ds, setup.epochs, _steps(setup, manifest, 1),
                           setup.global_batch)


def horovod_rank(setup: Setup) -> float:
    """Every rank: its own shards, 1/ranks of the batch and of the threads."""
    set_threads(max(1, setup.threads_total // setup.ranks))
    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    from pipeline.data import feed
    from pipeline.data.manifest import load_manifest
    from pipeline.model.build import encode_labels
    from pipeline.train.rank.pinning import pin_cores

    hvd.init()
    pin_cores(hvd.local_rank(), hvd.local_size(), setup.threads_total // setup.ranks)
    root = Path(setup.data_dir)
    manifest = load_manifest(root)
    x, y = feed.rank_split(root, manifest, "train", hvd.rank(), hvd.size())
    local = setup.global_batch // hvd.size()
    built = compiled_model(setup.arch, setup.hidden, manifest.image_shape,
                           wrap=hvd.DistributedOptimizer)
    ds = feed.to_dataset(x, encode_labels(y, 10, built.label_encoding), local,
                         shuffle_seed=1 + hvd.rank(), repeat=True)

    class Broadcast(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            hvd_tf.broadcast_variables(self.model.variables, root_rank=0)

    return samples_per_sec(built.train, ds, setup.epochs, _steps(setup, manifest, hvd.size()),
                           setup.global_batch, [Broadcast()])


def measure_horovod(setup: Setup) -> float:
    import horovod.spark

    from pipeline.train.driver.launch import horovod_cycle_time_ms

    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
           "HOROVOD_CYCLE_TIME": horovod_cycle_time_ms([setup.arch])}
    return horovod.spark.run(horovod_rank, args=(setup,), num_proc=setup.ranks,
                             use_gloo=True, verbose=0, env=env)[0]


def measure(setup: Setup, repeats: int, log=print) -> dict:
    plain, hvd = [], []
    for i in range(repeats):  # alternate, so drift in machine load hits both sides
        plain.append(in_fresh_process(plain_keras, setup))
        hvd.append(measure_horovod(setup))
        log(f"  {setup.arch} run {i + 1}/{repeats}: plain {plain[-1]:.0f}/s, "
            f"horovod {hvd[-1]:.0f}/s")
    return {**asdict(setup), "repeats": repeats, "plain": plain, "horovod": hvd,
            "plain_median": median(plain), "horovod_median": median(hvd),
            "ratio": median(hvd) / median(plain)}
