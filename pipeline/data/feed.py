"""A rank's own Parquet shards -> tf.data; images scaled to [0, 1] on the fly.

Two feeds with the same batches' statistics:

- ``memory``: the rank's shards are read once into arrays and reused by every
  configuration of a sweep (fastest when the data fits comfortably).
- ``stream``: the training shards are read chunk by chunk every epoch and shuffled
  within a window of rows, so a rank's memory does not grow with the dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data.arrow import pa, pq
from pipeline.data.layout import LABEL, TARGET, Layout, as_layout
from pipeline.data.manifest import Manifest
from pipeline.errors import DataError

if TYPE_CHECKING:  # TensorFlow is imported only where a rank trains
    import tensorflow as tf

Batch = tuple[np.ndarray, np.ndarray]
CHUNK_ROWS = 4096  # rows decoded at a time from a shard
WINDOW_ROWS = 16384  # rows shuffled together by the streaming feed (~12 MiB of MNIST)
# Rows made ready ahead of the training step (~25 MiB of MNIST as float32): enough to
# cover the generator's pause at each new window (bench/README.md).
PREFETCH_ROWS = 8192


def decode_fixed(column: pa.Array | pa.ChunkedArray, shape: Sequence[int],
                 dtype: type[np.generic], where: Path) -> np.ndarray:
    """``[N, *shape]`` values of ``dtype`` straight from a binary column's data buffer.

    Every value has the same length, so the values are one contiguous block: one copy,
    instead of a Python bytes object per row.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(arr) == 0:
        return np.zeros((0, *shape), dtype)
    if arr.null_count or not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        raise DataError(f"{where}: column is not non-null binary")
    kind = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], kind)[arr.offset:arr.offset + len(arr) + 1]
    if np.any(np.diff(offsets) != width):
        raise DataError(f"{where}: values are not {list(shape)} {np.dtype(dtype).name}")
    data = np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0]:offsets[-1]]
    return data.view(dtype).reshape(-1, *shape).copy()


def decode_images(column: pa.Array | pa.ChunkedArray, image_shape: list[int],
                  where: Path) -> np.ndarray:
    """uint8 ``[N, *image_shape]`` from the binary image column."""
    return decode_fixed(column, image_shape, np.uint8, where)


def _decode(table: pa.Table | pa.RecordBatch, layout: Layout, where: Path) -> Batch:
    x = decode_fixed(table.column(layout.input_column), layout.input_shape, layout.input_dtype,
                     where)
    if layout.target_column == TARGET:
        return x, decode_fixed(table.column(TARGET), layout.target_shape, np.float32, where)
    # to_numpy, then widen: np.asarray(column, dtype=int64) converted the int32 labels
    # one Python object at a time, ~2.4 us a row, most of the streaming feed's cost.
    return x, _numpy(table.column(LABEL)).astype(np.int64)


def _numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        return column.to_numpy()
    return column.to_numpy(zero_copy_only=False)


def read_shards(files: list[Path], layout: Layout | Sequence[int]) -> Batch:
    """Inputs and targets from the given shard files (a bare shape: uint8 images, labels)."""
    layout = as_layout(layout)
    parts = [_decode(pq.read_table(p, columns=layout.columns), layout, p) for p in files]
    if not parts:
        return layout.empty()
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def rank_split(root: Path, manifest: Manifest, split: str, rank: int, size: int) -> Batch:
    """The part of ``split`` that this rank owns (every size-th shard)."""
    return read_shards(manifest.shard_files(root, split, rank, size), manifest.layout)


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


def unit_scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1], as every feed delivers them to the model; other
    inputs (standardized features) go to the model as they are stored."""
    if images.dtype != np.uint8:
        return images.astype(np.float32, copy=False)
    return images.astype(np.float32) / 255.0


def to_dataset(images: np.ndarray, labels: np.ndarray | tf.Tensor, batch: int,
               shuffle_seed: int | None = None, repeat: bool = False) -> tf.data.Dataset:
    """Batches of (float32 inputs, images scaled to [0, 1]; labels already encoded)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch, drop_remainder=repeat)
    return _scaled(ds, batch)


# ---------------------------------------------------------------------------
# Streaming


def _chunks(files: list[Path], layout: Layout) -> Iterator[Batch]:
    for path in files:
        reader = pq.ParquetFile(path)
        for record_batch in reader.iter_batches(CHUNK_ROWS, columns=layout.columns):
            yield _decode(record_batch, layout, path)


def _windows(files: list[Path], layout: Layout, seed: int,
             window_rows: int) -> Iterator[tuple[list[Batch], np.random.Generator]]:
    """Endless windows of chunks (unshuffled) with the generator that shuffles them;
    shard order is reshuffled each epoch."""
    for epoch in itertools.count():
        rng = np.random.default_rng((seed, epoch))
        pending: list[Batch] = []
        ordered = [files[i] for i in rng.permutation(len(files))]
        for chunk in _chunks(ordered, layout):
            pending.append(chunk)
            if sum(len(y) for _, y in pending) >= window_rows:
                yield pending, rng
                pending = []
        if pending:
            yield pending, rng


def stream_blocks(files: list[Path], layout: Layout | Sequence[int], batch: int, seed: int,
                  window_rows: int = WINDOW_ROWS) -> Iterator[Batch]:
    """Endless blocks of whole batches, ``[n, batch, *input_shape]`` and
    ``[n, batch, *target_shape]``.

    One block per shuffled window, led by the rows the previous window left over (fewer
    than a batch), so every batch is full and every row comes within two windows.
    """
    if not files:
        raise DataError("no shards to stream")
    layout = as_layout(layout)
    carry: Batch = layout.empty()
    for parts, rng in _windows(files, layout, seed, max(window_rows, batch)):
        # One concatenation and one gather: every copy here runs on the rank's only core.
        x = np.concatenate([carry[0], *(p[0] for p in parts)])
        y = np.concatenate([carry[1], *(p[1] for p in parts)])
        lead = len(carry[1])
        order = np.concatenate([np.arange(lead), lead + rng.permutation(len(y) - lead)])
        full = len(y) // batch * batch
        if full:
            keep = order[:full]
            yield (x[keep].reshape(-1, batch, *layout.input_shape),
                   y[keep].reshape(-1, batch, *layout.target_shape))
        carry = x[order[full:]], y[order[full:]]


def stream_batches(files: list[Path], layout: Layout | Sequence[int], batch: int, seed: int,
                   window_rows: int = WINDOW_ROWS) -> Iterator[Batch]:
    """Endless full batches, in the order ``stream_dataset`` delivers them."""
    for xs, ys in stream_blocks(files, layout, batch, seed, window_rows):
        yield from zip(xs, ys, strict=True)


def stream_dataset(files: list[Path], layout: Layout | Sequence[int], batch: int, seed: int,
                   encode: Callable[[tf.Tensor], tf.Tensor],
                   window_rows: int = WINDOW_ROWS) -> tf.data.Dataset:
    """Endless training batches streamed from ``files``; labels encoded by ``encode``.

    Python hands tf.data a whole window at a time and tf.data cuts it into batches, so the
    generator runs a few times an epoch rather than once per batch (bench/README.md).
    """
    import tensorflow as tf

    layout = as_layout(layout)
    signature = (tf.TensorSpec([None, batch, *layout.input_shape], layout.input_dtype),
                 tf.TensorSpec([None, batch, *layout.target_shape], layout.target_dtype))
    ds = tf.data.Dataset.from_generator(
        lambda: stream_blocks(files, layout, batch, seed, window_rows),
        output_signature=signature)
    return _scaled(ds.unbatch(), batch, encode)


def _scaled(ds: tf.data.Dataset, batch: int,
            encode: Callable[[tf.Tensor], tf.Tensor] | None = None) -> tf.data.Dataset:
    """Images to float32 in [0, 1] (and labels encoded) in one parallel map, then prefetch.
    Features are stored standardized float32 and pass unchanged."""
    import tensorflow as tf

    def convert(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        scaled = tf.cast(x, tf.float32) / 255.0 if x.dtype == tf.uint8 else x
        return scaled, (encode(y) if encode else y)

    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(max(2, PREFETCH_ROWS // batch))
    # Autotuning off: on a rank's single core its thread held up the teardown of every
    # fit()'s iterator for 1-4 s, and the fixed prefetch above trained faster than
    # autotuning did (bench/README.md).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
