"""A rank's own Parquet shards -> arrays -> tf.data, scaled to [0, 1] on the fly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from pipeline.data.manifest import Manifest
from pipeline.errors import DataError

if TYPE_CHECKING:  # TensorFlow is imported only where a rank trains
    import tensorflow as tf


def read_shards(files: list[Path], image_shape: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 ``[N, *image_shape]`` and int64 labels from the given shard files."""
    images, labels = [], []
    pixels = int(np.prod(image_shape))
    for path in files:
        table = pq.read_table(path, columns=["image", "label"])
        blob = b"".join(table.column("image").to_pylist())
        if len(blob) != table.num_rows * pixels:
            raise DataError(f"{path}: images are not {image_shape} uint8")
        images.append(np.frombuffer(blob, dtype=np.uint8).reshape(-1, *image_shape))
        labels.append(table.column("label").to_numpy().astype(np.int64))
    if not images:
        return np.zeros((0, *image_shape), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images), np.concatenate(labels)


def rank_split(root: Path, manifest: Manifest, split: str, rank: int,
               size: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``split`` that this rank owns (every size-th shard)."""
    return read_shards(manifest.shard_files(root, split, rank, size), manifest.image_shape)


def steps_per_epoch(manifest: Manifest, split: str, size: int, local_batch: int) -> int:
    """Steps every rank can take: the smallest rank's rows // batch.

    Computed from the manifest alone, so all ranks arrive at the same number without
    talking; a rank running more steps than another would wait forever in allreduce.
    """
    smallest = min(manifest.rank_rows(split, r, size) for r in range(size))
    steps = smallest // local_batch
    if steps == 0:
        raise DataError(f"{manifest.dataset}: a rank holds {smallest} {split} rows, fewer than "
                        f"one batch of {local_batch}; lower batch_size or use fewer ranks")
    return steps


def to_dataset(images: np.ndarray, labels: np.ndarray | tf.Tensor, batch: int,
               shuffle_seed: int | None = None, repeat: bool = False) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 1], labels); labels already encoded for the loss."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch, drop_remainder=repeat)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
