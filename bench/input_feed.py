"""Input feed: one rank's Parquet shards streamed into tf.data against the same rows from memory.

Both feeds run in one process set up as a rank of two (one thread, rank 0's shards), first
alone (rows/s the feed can deliver) and then driving the MLP (training samples/s), alternately.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import compiled_model, in_fresh_process, median, samples_per_sec, set_threads


def _datasets(data_dir: str, batch: int):
    from pipeline.data import feed
    from pipeline.data.manifest import load_manifest
    from pipeline.model.build import encode_labels

    root = Path(data_dir)
    manifest = load_manifest(root)
    encode = lambda y: encode_labels(y, 10, "onehot")  # noqa: E731
    x, y = feed.rank_split(root, manifest, "train", 0, 2)
    files = manifest.shard_files(root, "train", 0, 2)
    return manifest, {
        "memory": feed.to_dataset(x, encode(y), batch, shuffle_seed=1, repeat=True),
        "stream": feed.stream_dataset(files, manifest.image_shape, batch, 1, encode),
    }


def feed_rank(data_dir: str, batch: int, epochs: int, repeats: int) -> dict:
    set_threads(1)
    from pipeline.data import feed

    manifest, datasets = _datasets(data_dir, batch)
    steps = feed.steps_per_epoch(manifest, "train", 2, batch)
    out = {f"{k}_{m}": [] for k in ("memory", "stream") for m in ("rows_per_sec", "train")}
    for _ in range(repeats):
        for kind, ds in datasets.items():
            out[f"{kind}_rows_per_sec"].append(_drain(ds, steps, batch))
            built = compiled_model("mlp", 128, manifest.image_shape)
            out[f"{kind}_train"].append(samples_per_sec(built.train, ds, epochs, steps, batch))
    return out


def _drain(ds, steps: int, batch: int) -> float:
    it = iter(ds)
    next(it)  # start-up (threads, first read) is not throughput
    started = time.perf_counter()
    for _ in range(steps):
        next(it)
    return steps * batch / (time.perf_counter() - started)


def measure(data_dir: str, batch: int = 128, epochs: int = 3, repeats: int = 3) -> dict:
    runs = in_fresh_process(feed_rank, data_dir, batch, epochs, repeats)
    med = {k: median(v) for k, v in runs.items()}
    return {"batch": batch, "epochs": epochs, "repeats": repeats, "runs": runs,
            "medians": med,
            "ratio_rows": med["stream_rows_per_sec"] / med["memory_rows_per_sec"],
            "ratio_train": med["stream_train"] / med["memory_train"]}
