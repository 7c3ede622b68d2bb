"""The training feeds on real Parquet files: decoding, streaming order and coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import feed
from pipeline.errors import DataError

SHAPE = [4, 4, 1]


def write_shards(folder: Path, rows_per_shard: list[int]) -> list[Path]:
    """Shards whose label is the row's global index and whose pixels encode it too."""
    files, start = [], 0
    for k, n in enumerate(rows_per_shard):
        ids = np.arange(start, start + n)
        images = [bytes([i % 256]) * 16 for i in ids]
        path = folder / f"part-{k:05d}.parquet"
        pq.write_table(pa.table({"label": ids, "image": pa.array(images, pa.binary())}), path)
        files.append(path)
        start += n
    return files


def test_read_shards_decodes_images_and_labels(tmp_path):
    files = write_shards(tmp_path, [30, 20])
    x, y = feed.read_shards(files, SHAPE)
    assert x.shape == (50, 4, 4, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, np.arange(50))
    np.testing.assert_array_equal(x[:, 0, 0, 0], np.arange(50) % 256)


def test_images_of_the_wrong_size_are_refused(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"label": [0, 1], "image": [b"\x00" * 16, b"\x00" * 15]}), path)
    with pytest.raises(DataError, match="not \\[4, 4, 1\\] uint8"):
        feed.read_shards([path], SHAPE)


def _take(files: list[Path], batches: int, batch: int, seed: int, window: int) -> np.ndarray:
    stream = feed.stream_batches(files, SHAPE, batch, seed, window)
    out = [next(stream) for _ in range(batches)]
    for x, y in out:  # pixels travel with their label through the shuffles
        np.testing.assert_array_equal(x[:, 0, 0, 0], y % 256)
    return np.concatenate([y for _, y in out])


def test_stream_visits_every_row_once_per_epoch_in_shuffled_order(tmp_path):
    files = write_shards(tmp_path, [250, 250, 250, 250])
    ids = _take(files, 20, 100, seed=3, window=300)  # two epochs of 1,000 rows
    for epoch in (ids[:1000], ids[1000:]):
        np.testing.assert_array_equal(np.sort(epoch), np.arange(1000))
        assert not np.array_equal(epoch, np.arange(1000))
    assert not np.array_equal(ids[:1000], ids[1000:])  # reshuffled each epoch


def test_stream_is_reproducible_from_its_seed(tmp_path):
    files = write_shards(tmp_path, [120, 80, 100])
    a = _take(files, 7, 64, seed=5, window=128)
    assert np.array_equal(a, _take(files, 7, 64, seed=5, window=128))
    assert not np.array_equal(a, _take(files, 7, 64, seed=6, window=128))


def test_stream_batches_are_full_and_leftovers_are_carried(tmp_path):
    files = write_shards(tmp_path, [70, 70])  # 140 rows, batch 64: epochs do not align
    ids = _take(files, 11, 64, seed=1, window=64)  # 704 rows: five epochs and four rows
    counts = np.bincount(ids, minlength=140)
    assert len(ids) == 704 and set(counts) <= {5, 6} and (counts == 6).sum() == 4


def test_stream_with_no_shards_is_an_error():
    with pytest.raises(DataError, match="no shards"):
        next(feed.stream_batches([], SHAPE, 8, seed=1))


def test_stream_dataset_delivers_the_batches_stream_batches_describes(tmp_path):
    """tf.data cuts Python's windows into the same batches, scaled and with encoded labels."""
    import tensorflow as tf

    files = write_shards(tmp_path, [70, 70])
    expected = _take(files, 9, 32, seed=4, window=64)
    ds = feed.stream_dataset(files, SHAPE, 32, 4, lambda y: tf.one_hot(y, 140), window_rows=64)
    got = list(ds.take(9).as_numpy_iterator())
    assert all(x.shape == (32, 4, 4, 1) and x.dtype == np.float32 for x, _ in got)
    np.testing.assert_array_equal(np.concatenate([y.argmax(axis=1) for _, y in got]), expected)
    for x, y in got:  # pixels still travel with their label, now scaled to [0, 1]
        np.testing.assert_allclose(x[:, 0, 0, 0], (y.argmax(axis=1) % 256) / 255.0, rtol=1e-6)


def test_feeds_run_with_tf_data_autotuning_off(tmp_path):
    """Autotuning's thread delayed every fit()'s teardown by seconds on a one-core rank."""
    import tensorflow as tf

    files = write_shards(tmp_path, [40])
    streamed = feed.stream_dataset(files, SHAPE, 8, 1, lambda y: tf.one_hot(y, 40))
    in_memory = feed.to_dataset(np.zeros((16, *SHAPE), np.uint8), np.zeros(16), 8)
    for ds in (streamed, in_memory):
        assert ds.options().autotune.enabled is False
        assert len(list(ds.take(2))) == 2
