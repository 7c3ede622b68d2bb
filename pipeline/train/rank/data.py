"""A rank's share of the prepared dataset, and the tf.data pipelines over it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data import feed
from pipeline.data.manifest import Manifest

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass
class RankData:
    """This rank's share of each split: val and test in memory, train in memory or streamed."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    train_files: list[Path]
    stream: bool
    probe: tuple[np.ndarray, np.ndarray] | None = None  # the diagnostics' rows (uint8, labels)


def load_rank_data(root: Path, manifest: Manifest, rank: int, size: int, stream: bool,
                   probe_rows: int = 0, probe_seed: int = 0) -> RankData:
    """Val and test arrays now; train arrays too unless the training shards are streamed."""
    splits = {s: feed.rank_split(root, manifest, s, rank, size) for s in ("val", "test")}
    if not stream:
        splits["train"] = feed.rank_split(root, manifest, "train", rank, size)
    probe = probe_batch(root, manifest, probe_rows, probe_seed) if probe_rows else None
    return RankData(splits, manifest.shard_files(root, "train", rank, size), stream, probe)


def probe_batch(root: Path, manifest: Manifest, rows: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same validation rows on every rank and for any rank count: drawn from the whole
    validation split (every rank reads it, a few MB) with the sweep's seed."""
    from pipeline.train.rank.diagnostics import probe_indices

    x, y = feed.read_shards(manifest.shard_files(root, "val", 0, 1), manifest.layout)
    keep = probe_indices(len(y), rows, seed)
    return x[keep], y[keep]


def datasets(data: RankData, manifest: Manifest, encoding: str, local_batch: int,
             shuffle_seed: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """(train, validation) batches, targets encoded as the loss expects."""
    from pipeline.model.build import encode_targets

    problem = manifest.problem()
    x_va, y_va = data.splits["val"]
    val = feed.to_dataset(x_va, encode_targets(y_va, problem, encoding), local_batch)
    if data.stream:
        train = feed.stream_dataset(data.train_files, manifest.layout, local_batch,
                                    shuffle_seed, lambda y: encode_targets(y, problem, encoding))
    else:
        x_tr, y_tr = data.splits["train"]
        train = feed.to_dataset(x_tr, encode_targets(y_tr, problem, encoding), local_batch,
                                shuffle_seed=shuffle_seed, repeat=True)
    return train, val
