"""A rank's own Parquet shards -> tf.data, scaled to [0, 1] on the fly.

Two feeds with the same batches' statistics:

- ``memory``: the rank's shards are read once into arrays and reused by every
  configuration of a sweep (fastest when the data fits comfortably).
- ``stream``: the training shards are read chunk by chunk every epoch and shuffled
  within a window of rows, so a rank's memory does not grow with the dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.data.manifest import Manifest
from pipeline.errors import DataError

if TYPE_CHECKING:  # TensorFlow is imported only where a rank trains
    import tensorflow as tf

Batch = tuple[np.ndarray, np.ndarray]
CHUNK_ROWS = 4096  # rows decoded at a time from a shard
WINDOW_ROWS = 16384  # rows shuffled together by the streaming feed (~12 MiB of MNIST)


def decode_images(column: pa.Array | pa.ChunkedArray, image_shape: list[int],
                  where: Path) -> np.ndarray:
    """uint8 ``[N, *image_shape]`` straight from the binary column's data buffer.

    Every value has the same length, so the values are one contiguous block: one copy,
    instead of a Python bytes object per image.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    pixels = int(np.prod(image_shape))
    if len(arr) == 0:
        return np.zeros((0, *image_shape), np.uint8)
    if arr.null_count or not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        raise DataError(f"{where}: image column is not non-null binary")
    width = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], width)[arr.offset:arr.offset + len(arr) + 1]
    if np.any(np.diff(offsets) != pixels):
        raise DataError(f"{where}: images are not {image_shape} uint8")
    data = np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0]:offsets[-1]]
    return data.reshape(-1, *image_shape).copy()


def _decode(table: pa.Table | pa.RecordBatch, image_shape: list[int], where: Path) -> Batch:
    images = decode_images(table.column("image"), image_shape, where)
    labels = np.asarray(table.column("label"), dtype=np.int64)
    return images, labels


def read_shards(files: list[Path], image_shape: list[int]) -> Batch:
    """Images as uint8 ``[N, *image_shape]`` and int64 labels from the given shard files."""
    parts = [_decode(pq.read_table(p, columns=["image", "label"]), image_shape, p)
             for p in files]
    if not parts:
        return np.zeros((0, *image_shape), np.uint8), np.zeros(0, np.int64)
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def rank_split(root: Path, manifest: Manifest, split: str, rank: int, size: int) -> Batch:
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
    return _scaled(ds)


# ---------------------------------------------------------------------------
# Streaming


def _chunks(files: list[Path], image_shape: list[int]) -> Iterator[Batch]:
    for path in files:
        reader = pq.ParquetFile(path)
        for record_batch in reader.iter_batches(CHUNK_ROWS, columns=["image", "label"]):
            yield _decode(record_batch, image_shape, path)


def _windows(files: list[Path], image_shape: list[int], seed: int,
             window_rows: int) -> Iterator[Batch]:
    """Endless shuffled windows: shard order reshuffled each epoch, rows within a window."""
    for epoch in itertools.count():
        rng = np.random.default_rng((seed, epoch))
        pending: list[Batch] = []
        ordered = [files[i] for i in rng.permutation(len(files))]
        for chunk in _chunks(ordered, image_shape):
            pending.append(chunk)
            if sum(len(y) for _, y in pending) >= window_rows:
                yield _shuffled(pending, rng)
                pending = []
        if pending:
            yield _shuffled(pending, rng)


def _shuffled(parts: list[Batch], rng: np.random.Generator) -> Batch:
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    order = rng.permutation(len(y))
    return x[order], y[order]


def stream_batches(files: list[Path], image_shape: list[int], batch: int, seed: int,
                   window_rows: int = WINDOW_ROWS) -> Iterator[Batch]:
    """Endless full batches; rows left over at a window's end lead the next window."""
    if not files:
        raise DataError("no shards to stream")
    carry_x, carry_y = np.zeros((0, *image_shape), np.uint8), np.zeros(0, np.int64)
    for x, y in _windows(files, image_shape, seed, max(window_rows, batch)):
        x, y = np.concatenate([carry_x, x]), np.concatenate([carry_y, y])
        full = len(y) // batch * batch
        for i in range(0, full, batch):
            yield x[i:i + batch], y[i:i + batch]
        carry_x, carry_y = x[full:], y[full:]


def stream_dataset(files: list[Path], image_shape: list[int], batch: int, seed: int,
                   encode: Callable[[tf.Tensor], tf.Tensor],
                   window_rows: int = WINDOW_ROWS) -> tf.data.Dataset:
    """Endless training batches streamed from ``files``; labels encoded by ``encode``."""
    import tensorflow as tf

    signature = (tf.TensorSpec([batch, *image_shape], tf.uint8),
                 tf.TensorSpec([batch], tf.int64))
    ds = tf.data.Dataset.from_generator(
        lambda: stream_batches(files, image_shape, batch, seed, window_rows),
        output_signature=signature)
    return _scaled(ds.map(lambda x, y: (x, encode(y))))


def _scaled(ds: tf.data.Dataset) -> tf.data.Dataset:
    import tensorflow as tf

    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
